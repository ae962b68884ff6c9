"""``fit``: measured table -> :class:`CompositeDevice` with provenance and a fit report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..checks import check_rng
from ..devices.base import Conditioning
from ..devices.blocks import ReadNoiseLaw, ReadNoiseStructure
from ..devices.composite import CompositeDevice, warn_disjoint_ranges
from ..devices.fitted import FittedPowerLaw, WhiteReadNoise
from ..enums import coerce_enum
from ..errors import ConfigError, DataFormatError
from . import tables

YEAR = 365.25 * 86400.0


@dataclass
class FitReport:
    """The evidence behind a fit (not stored in the model file; written by the report).

    ``conditioning``; ``programming``/``relaxation``/``power_law``: the info objects of
    each block (None if not fitted); ``drift_choice``: "power-law" or "relaxation" or "";
    ``drift_loglik``: held-out mean log-likelihood per read of each drift model [1];
    ``skipped``: levels skipped for too few devices as (conductance [S], devices, part);
    ``read_noise``: per-level read-noise estimates; ``notes``: sentences for the report.
    """

    conditioning: str = "target"
    programming: object = None
    relaxation: object = None
    power_law: object = None
    drift_choice: str = ""
    drift_loglik: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    read_noise: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    n_devices: int = 0
    n_reads: int = 0
    time_points: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _conditioning(cols, conditioning):
    has_t = cols["g_target"] is not None
    has_i = cols["g_initial"] is not None
    if conditioning is None:
        return Conditioning.TARGET if has_t else Conditioning.INITIAL_READ
    c = coerce_enum(Conditioning, conditioning, "conditioning")
    if c is Conditioning.TARGET and not has_t:
        raise DataFormatError("conditioning='target' needs a g_target column; the data have "
                              "none (use conditioning='initial read')")
    if c is Conditioning.INITIAL_READ and not (has_i or cols["time"] is not None
                                               or cols["time_point"] is not None):
        raise DataFormatError("conditioning='initial read' needs a g_initial column or reads "
                              "at several times")
    return c


def fit(measurements, *, conditioning: str | None = None, drift: str = "auto",
        family: str = "auto", window: float | None = None, t0: float | None = None,
        t_max: float = 10 * YEAR, min_devices: int = 20, n_boot: int = 100,
        rng: np.random.Generator, sources=None, progress=None,
        programming_from: CompositeDevice | None = None,
        read_noise_structure="auto", read_noise_law="auto") -> CompositeDevice:
    """Fit a device model to measured reads.

    ``measurements``: a :class:`Measurements` table (or a list of them, or a mapping of
    role -> array) with at least ``g`` [S]; ``conditioning``: "target" or "initial read"
    (default: target when a ``g_target`` column exists); ``drift``: "auto" (chosen by
    held-out likelihood), "power-law", "relaxation" or "none"; ``family``: programming
    error family, "auto" or one of normal, bounded, student-t, mixture; ``window``:
    write-verify half-width [S] (estimated when None); ``t0``: power-law reference time
    [s] (fitted when None); ``t_max``: last time the relaxation table is extrapolated to
    [s]; ``min_devices``: levels with fewer devices are skipped and listed; ``n_boot``:
    bootstrap replicates (devices resampled); ``rng``: the numpy Generator that draws
    the bootstrap resamples and the held-out split (required); ``sources``: data file
    paths for the provenance (default: those recorded in the measurements); ``progress``:
    callable ``progress(step: str)`` called between stages; ``programming_from``: a
    target-conditioned model whose programming error is composed with this fit's
    relaxation (the result is then target-conditioned; a
    :class:`~xbarlab.errors.CompositionWarning` when its fitted range and the data's first
    reads do not overlap); ``read_noise_structure``, ``read_noise_law``: the power law's
    read noise, each "auto" or a value of its enum (:func:`_read_noise`).

    Returns a :class:`~xbarlab.devices.composite.CompositeDevice` of fitted blocks
    (:mod:`xbarlab.devices.fitted`, :mod:`xbarlab.devices.relaxation_table`) that accepts
    any g >= 0 S (``range_policy`` "edge", ``g_fit`` the range of the data's first reads),
    whose ``report`` holds the evidence and whose ``provenance`` records the data files'
    SHA-256, the method and the settings.
    """
    from ..formats import Provenance

    check_rng(rng)
    if min_devices < 2:
        raise ConfigError(f"min_devices must be >= 2, got {min_devices}")
    if drift not in ("auto", "power-law", "relaxation", "none"):
        raise ConfigError(f"drift must be one of auto, power-law, relaxation, none; got {drift!r}")
    rn = _read_noise(read_noise_structure, read_noise_law)
    step = progress or (lambda s: None)
    cols = tables.columns(measurements)
    cond = _conditioning(cols, conditioning)
    use_initial = cols["g_initial"] is not None  # the first read is g_0 whenever given
    layout = (measurements.get("layout") if isinstance(measurements, dict)
              else getattr(measurements, "layout", None))
    if layout == "timeseries":
        return _fit_timeseries(measurements, cols, step, sources)
    step("pivot")
    pv = tables.pivot(cols, use_initial=use_initial)
    rep = FitReport(conditioning=cond.value, n_devices=pv.n_dev, n_reads=int(cols["g"].size),
                    time_points=pv.tp)
    if pv.n_dev < 5:
        raise DataFormatError(f"the data hold {pv.n_dev} devices; a fit needs at least 5")
    has_time = np.sum(pv.tp > 0) >= 1 and np.any(np.isfinite(pv.g[:, pv.tp > 0]))
    programming = None
    drift_law = None
    read_noise = None

    # ---- drift / relaxation
    if drift != "none":
        n_times = int(np.sum([np.any(np.isfinite(pv.g[:, k])) for k in np.nonzero(pv.tp > 0)[0]]))
        if n_times == 0 and drift in ("power-law", "relaxation"):
            raise DataFormatError(
                f"a {drift} fit needs reads at times after the first read; the data hold "
                f"{pv.tp.size} time point(s): {list(pv.tp)}")
        if n_times >= 1:
            step("drift / relaxation")
            drift_law = _fit_drift(pv, cond, drift, rep, rng=rng, t0=t0, t_max=t_max,
                                   min_devices=min_devices, n_boot=n_boot,
                                   read_noise=rn)

    # ---- programming error (target-conditioned data)
    if cond is Conditioning.TARGET:
        step("programming error")
        programming = _fit_programming_error(pv, drift_law, rep, has_time=has_time,
                                             has_cycles=cols["cycle"] is not None, rng=rng,
                                             min_devices=min_devices, n_boot=n_boot,
                                             family=family, window=window)

    # ---- read noise from repeated reads
    if cols["cycle"] is not None:
        step("read noise")
        from .readnoise import fit_read_noise

        read_noise, rinfo = fit_read_noise(cols, min_reads=5)
        rep.read_noise = rinfo

    if programming is None and drift_law is None and read_noise is None:
        raise DataFormatError(
            "the data support no fit: a programming-error fit needs g_target with >= 2 "
            "targets, a drift fit reads at >= 2 times, a read-noise fit a cycle column")

    if programming_from is not None:
        if cond is not Conditioning.INITIAL_READ:
            raise ConfigError("programming_from composes with a fit conditioned on the initial "
                              "read; this fit is conditioned on the target")
        programming = programming_from.programming
        cond = Conditioning.TARGET
        _note_composition(programming_from, pv, rep)
    elif cond is Conditioning.INITIAL_READ:
        rep.notes.append(
            "The model is conditioned on each cell's first read: mapping weights onto it maps "
            "them to first reads, not programming targets. Compose it with a programming-error "
            "model (fit(..., programming_from=model) or xbarlab.devices.compose) for a "
            "target-conditioned model.")

    g_lo = float(np.nanmin(pv.g0))
    g_hi = float(np.nanmax(pv.g0))
    srcs = list(sources) if sources is not None else tables.sources_of(measurements)
    if programming_from is not None and getattr(programming_from, "provenance", None):
        srcs += [s_["path"] for s_ in programming_from.provenance.sources]
    settings = {"conditioning": cond.value, "drift": drift, "family": family,
                "window_S": window, "t0_s": t0, "t_max_s": t_max, "min_devices": min_devices,
                "n_boot": n_boot, "drift_choice": rep.drift_choice,
                "read_noise_structure": str(rn[0]), "read_noise_law": str(rn[1])}
    prov = Provenance.for_files("calibration.fit", [s for s in srcs if _exists(s)], settings)
    return _fitted_model(cond.value, programming, drift_law, read_noise,
                         (max(g_lo, 0.0), g_hi), prov, rep)


def _read_noise(structure, law):
    """The power law's read-noise structure and law: each "auto" or the enum
    (``ReadNoiseStructure``; :class:`~xbarlab.devices.blocks.ReadNoiseLaw`: "log", reads
    g e^e, or "linear", reads g (1 + e) clamped at 0 S); "auto" is chosen by
    :func:`~xbarlab.calibration.powerlaw.choose_structure` or
    :func:`~xbarlab.calibration.powerlaw.choose_law`. With ``drift`` "auto" the power law
    competes with the relaxation table under the law "log" and is then fitted under
    ``law``."""
    return (structure if structure == "auto" else
            coerce_enum(ReadNoiseStructure, structure, "read_noise_structure"),
            law if law == "auto" else coerce_enum(ReadNoiseLaw, law, "read_noise_law"))


def _note_composition(programming_from, pv, rep):
    """Note in ``rep`` where the composed programming error comes from, and warn (and
    note) when its fitted range and the data's first reads [S] do not overlap."""
    src = getattr(getattr(programming_from, "provenance", None), "sources", ())
    rep.notes.append(f"Programming error composed from another model (sources: {src}).")
    clash = warn_disjoint_ranges(programming_from.stat_range,
                                 (max(float(np.nanmin(pv.g0)), 0.0), float(np.nanmax(pv.g0))),
                                 stacklevel=4)
    if clash is not None:
        rep.notes.append(f"Warning: {clash}.")


def _fit_programming_error(pv, drift_law, rep, *, has_time, has_cycles, rng, min_devices,
                           n_boot, family, window):
    """The programming-error block of a target-conditioned fit (None when no level has
    enough devices but other parts can be fitted); fills ``rep``."""
    from .programming import fit_programming

    if pv.target is None:
        raise DataFormatError("a target-conditioned fit needs a g_target column")
    x = pv.g0
    noise_var = None
    if isinstance(drift_law, FittedPowerLaw):
        from .powerlaw import first_positive

        # g_prog from the first positive read, its drift undone with the fitted mean
        # exponent of that conductance (a device's own exponent, from a few noisy reads,
        # can be off by far more than the exponent spread: at the lowest levels it blew
        # the estimates up tenfold); the spread of the exponents then stays in x and is
        # deconvolved with the read noise
        first, t1 = first_positive(pv)
        g1 = np.maximum(pv.g[np.arange(pv.n_dev), first], 0.0)
        lnd = np.log((t1 + drift_law.t0) / drift_law.t0)
        x = g1 * np.exp(drift_law.mu_nu(g1) * lnd)
        noise_var = (x * drift_law.q_read(x)) ** 2 * drift_law.u(t1)
        if drift_law.q_independent is not None:  # "both": the independent part adds
            noise_var = noise_var + (x * drift_law.q_independent(x)) ** 2 * drift_law.u(t1)
        noise_var = noise_var + (x * drift_law.sigma_nu(g1) * lnd) ** 2
    n_targets = np.unique(pv.target).size
    if n_targets < 2 and not has_time:
        raise DataFormatError(
            f"the data hold one programming target ({pv.target[0]:.6g} S) and no reads "
            "after programming; a programming-error fit needs at least 2 targets")
    programming, pinfo, skipped = fit_programming(
        pv.target, x, min_devices=min_devices, rng=rng, n_boot=n_boot, family=family,
        window=window, noise_var=noise_var, labels=pv.level,
        noise_law=drift_law.law if isinstance(drift_law, FittedPowerLaw) else ReadNoiseLaw.LOG)
    rep.programming = pinfo
    rep.skipped += [(g, n, "programming") for g, n in skipped]
    clamped = [(g, int(z), int(n)) for g, z, n, c in zip(
        pinfo.levels_g, pinfo.zeros, pinfo.n, pinfo.censored, strict=True) if c]
    if clamped:
        rep.notes.append(
            "Programming levels read at the 0 S clamp (target [uS]: cells at 0 S of cells): "
            + ", ".join(f"{g * 1e6:.4g}: {z} of {n}" for g, z, n in clamped)
            + "; their bias and spread are those of the error before the clamp, fitted by "
            "the censored likelihood (a cell at 0 S has probability Phi(-(g_T + b)/s)).")
    if programming is None and not has_cycles and drift_law is None:
        raise DataFormatError(
            f"no programming target has >= {min_devices} devices "
            f"(targets [S] and devices: {skipped}); lower min_devices or add devices")
    return programming


def _fitted_model(conditioning, programming, drift, read_noise, g_fit, provenance, report):
    """The device model of fitted blocks: any g >= 0 S accepted, edge statistics beyond
    ``g_fit`` [S]."""
    return CompositeDevice(conditioning=conditioning, programming=programming, drift_law=drift,
                           read_noise=read_noise, g_range=(0.0, np.inf), range_policy="edge",
                           g_fit=g_fit, provenance=provenance, report=report)


def _fit_timeseries(measurements, cols, step, sources):
    """Read-noise-only fit of time series (one device per row): std of the reads vs level
    and the 1/f exponent of the averaged power spectrum."""
    from ..formats import Provenance
    from .readnoise import fit_psd_exponent, fit_read_noise

    step("read noise")
    if cols["time"] is None:
        raise DataFormatError("a time-series fit needs the sample times (time column)")
    if cols["cycle"] is None:
        cols = dict(cols)
        cols["cycle"] = np.zeros(cols["g"].size)
    cols = dict(cols)
    cols["time_point"] = np.zeros(cols["g"].size)  # one repeated-read group per device
    block, info = fit_read_noise(cols, min_reads=64)
    alphas = []
    fs = None
    for d in np.unique(cols["device"]):
        m = cols["device"] == d
        t = cols["time"][m]
        o = np.argsort(t)
        dt = np.median(np.diff(t[o]))
        fs = 1.0 / dt
        alphas.append(fit_psd_exponent(cols["g"][m][o], fs)[0])
    alpha = float(np.median(alphas))
    info["psd_exponent_per_device"] = np.asarray(alphas)
    info["sample_rate_Hz"] = fs
    block = WhiteReadNoise(block.sigma, psd_exponent=alpha)
    rep = FitReport(conditioning="initial read", read_noise=info,
                    n_devices=int(np.unique(cols["device"]).size), n_reads=int(cols["g"].size))
    rep.notes.append(f"Time series: read noise only; 1/f exponent (median over series) "
                     f"{alpha:.3f}, per series {np.round(alphas, 3).tolist()}.")
    srcs = list(sources) if sources is not None else tables.sources_of(measurements)
    prov = Provenance.for_files("calibration.fit", [s for s in srcs if _exists(s)],
                                {"layout": "timeseries"})
    g = info["g"]
    return _fitted_model("initial read", None, None, block, (float(g.min()), float(g.max())),
                         prov, rep)


def _exists(p) -> bool:
    from pathlib import Path

    try:
        return Path(p).is_file()
    except (OSError, TypeError):
        return False


def _fit_drift(pv, cond, drift, rep, *, rng, t0, t_max, min_devices, n_boot, read_noise):

    by = "level" if pv.level is not None else ("target" if cond is Conditioning.TARGET else "g0")
    lev, centres = tables.level_labels(pv, by=by)
    has_late = np.any(np.isfinite(pv.g[:, pv.tp > 0]), axis=1)
    keep, skipped, most = [], [], 0
    for L in range(centres.size):
        n = int(np.sum((lev == L) & has_late))
        most = max(most, n)
        (keep if n >= min_devices else skipped).append(L)
    rep.skipped += [(float(centres[L]), int(np.sum(lev == L)), "drift") for L in skipped]
    if len(keep) < 1:
        hint = (f"; the largest level has {most}: set min_devices <= {most}" if most >= 2
                else "")
        raise DataFormatError(f"no level has >= {min_devices} devices with reads after the "
                              f"first, so a drift fit is impossible{hint}")
    kinds = [drift] if drift != "auto" else ["relaxation", "power-law"]
    if "power-law" in kinds:
        # reads <= 0 S: cells without a positive read are g_prog = 0 (left out of the drift
        # fit, exactly), the others' reads <= 0 S are censored (see _powerlaw)
        from .powerlaw import check_censoring

        cens, why = check_censoring(pv, lev, keep)
        if why is not None:
            if drift == "power-law":
                raise DataFormatError(f"a power-law drift fit is impossible: {why}")
            kinds = ["relaxation"]
            rep.notes.append(f"Power law not considered: {why}.")
        elif cens["zero_cells"] or cens["censored"]:
            rep.notes.append(
                f"Reads <= 0 S: {cens['zero_cells']} of {cens['cells']} cells read <= 0 S at "
                f"every time ({cens['zero_cell_reads']} reads): the power law takes them as "
                f"programmed to 0 S (the clamp) and leaves them out of the drift fit; "
                f"{cens['censored']} more reads <= 0 S ({100 * cens['fraction']:.2f} % of "
                "the other cells' reads) are censored: dropped from the log-space fit, the "
                "drift increment bridging them. The held-out likelihood scores a read at "
                "<= 0 S by each model's probability of reading 0 S.")
    if len(kinds) == 1:
        block = _fit_one(kinds[0], pv, lev, centres, keep, rep, rng=rng, t0=t0, t_max=t_max,
                         n_boot=n_boot, read_noise=read_noise,
                         by_target=cond is Conditioning.TARGET)
        rep.drift_choice = kinds[0]
        return block
    # held-out likelihood: fit each on half of the devices (the power law with its read-noise
    # structure and law chosen or given, as in the final fit), score reads of the other half
    from .selection import heldout_loglik, programming_prior

    perm = rng.permutation(pv.n_dev)
    half = np.zeros(pv.n_dev, bool)
    half[perm[: pv.n_dev // 2]] = True
    for kind in kinds:
        sub = pv.devices(half)
        scratch = type(rep)()
        blk = _fit_one(kind, sub, lev[half], centres, keep, scratch, rng=rng, t0=t0,
                       t_max=t_max, n_boot=0, read_noise=read_noise,
                       by_target=cond is Conditioning.TARGET)
        if kind == "power-law":
            pl = scratch.power_law
            ev = pl.law_evidence
            gain = (f" ('linear' less 'log': {ev['gain']:.4f} +- {ev['gain_se']:.4f} per read "
                    f"held out within that half)" if "gain" in ev else "")
            rep.notes.append(f"Drift choice: the power law fitted on half of the devices took "
                             f"the read-noise structure '{pl.read_noise}' and law "
                             f"'{pl.law}'{gain}.")
        # a target-conditioned power law scores a later read given the first read with
        # its level's programming distribution as the prior of g_prog (a high first read
        # is partly noise), as it samples them
        prior = (programming_prior(blk, sub.g0, lev[half], lev)
                 if kind == "power-law" and cond is Conditioning.TARGET else None)
        rep.drift_loglik[kind] = heldout_loglik(
            blk, pv, ~half & np.isin(lev, keep), g_level=centres[lev],
            g0_is_input=cond is Conditioning.INITIAL_READ, prior=prior)
    choice = max(rep.drift_loglik, key=rep.drift_loglik.get)
    rep.drift_choice = choice
    return _fit_one(choice, pv, lev, centres, keep, rep, rng=rng, t0=t0, t_max=t_max,
                    n_boot=n_boot, read_noise=read_noise,
                    by_target=cond is Conditioning.TARGET)


def _fit_one(kind, pv, lev, centres, keep, rep, *, rng, t0, t_max, n_boot, read_noise,
             by_target=False):
    """The drift block ``kind`` fitted on ``pv``; ``read_noise``: the power law's read-noise
    structure and law; ``by_target``: the relaxation table's levels are the programming targets (a
    target-conditioned fit)."""
    if kind == "relaxation":
        from .relaxation import fit_relaxation

        block, info = fit_relaxation(pv, lev, centres, keep, t_max=t_max, rng=rng,
                                     n_boot=n_boot, level_by_target=by_target,
                                     level_by_label=pv.level is not None and not by_target)
        rep.relaxation = info
        return block
    from .powerlaw import fit_power_law

    block, info = fit_power_law(pv, lev, centres, keep, t0=t0, rng=rng, n_boot=n_boot,
                                read_noise=read_noise[0], law=read_noise[1])
    rep.power_law = info
    return block


__all__ = ["fit", "FitReport"]
