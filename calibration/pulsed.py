"""Pulsed-update devices fitted from measured pulse data (ramps or a step table).

The mean step of one pulse vs the conductance before it, up and down, is fitted for each
step rule of :mod:`xbarlab.devices.pulsed` (constant, soft bounds, power step, exponential
step: least squares on all single-pulse steps, bounds shared by both directions) and as a
lookup table (:class:`~xbarlab.devices.pulsed.StepTable`, step quantiles per conductance
bin); the rule with the highest held-out Gaussian log-likelihood per step wins (whole ramps
held out, 5-fold; for a step table, whole bins).

**Step spread vs measurement noise.** A read is ``G_n + e_n`` with a read error ``e_n`` that
does not accumulate; a pulse adds a step with mean ``A(G)`` and a spread ``s`` that does
accumulate. The residual of a measured step, ``r_n = eps_n + e_{n+1} - e_n``, therefore has
variance ``s^2 + 2 sigma_read^2`` and lag-1 covariance ``-sigma_read^2`` within a ramp, so
``sigma_read^2 = -mean(r_n r_{n+1})`` and the step spread is what is left. The step spread is
split into a relative part ``c2c`` (std proportional to the mean step) and an additive
``write_noise`` by non-negative least squares of ``r_n^2 - 2 sigma_read^2`` on
``A(G_n)^2`` and 1. A step table holds no sequence, so its spread is the step spread plus
read noise plus device-to-device spread, not separable: it is carried whole as the device's
step spread and reported as not identifiable.

**Device-to-device spread** (several devices in the ramps): the std of the per-device gain
of the fitted mean step (least squares, per direction) across devices, less its sampling
variance; the up/down imbalance of the gains gives ``d2d_asymmetry``.

Bands: ramps resampled with replacement within each direction (a step table: bins
resampled), the chosen rule refitted; 2.5 and 97.5 % quantiles.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..checks import check_rng
from ..devices.pulsed import (
    ConstantStep,
    ExpStep,
    Interpolation,
    PowStep,
    PulsedDevice,
    SoftBounds,
    StepTable,
)
from ..errors import ConfigError, DataFormatError
from ..formats.pulse_tables import PulseRamps, PulseStepTable

__all__ = ["StepForm", "PulseFit", "fit_pulsed_ramps", "fit_step_table", "step_table_rule",
           "split_step_noise", "derived_quantities", "DERIVED"]


class StepForm(enum.StrEnum):
    """The mean step-vs-state rules a pulse fit compares (closed choice)."""

    CONSTANT = "constant"  #: :class:`~xbarlab.devices.pulsed.ConstantStep`
    SOFT_BOUNDS = "soft bounds"  #: :class:`~xbarlab.devices.pulsed.SoftBounds`
    POWER = "power step"  #: :class:`~xbarlab.devices.pulsed.PowStep`
    EXPONENTIAL = "exponential step"  #: :class:`~xbarlab.devices.pulsed.ExpStep`
    TABLE = "lookup table"  #: :class:`~xbarlab.devices.pulsed.StepTable`


#: Names and units of the derived quantities with bands (see :func:`derived_quantities`).
DERIVED = {"g_min": "S", "g_max": "S", "symmetric_point": "S", "n_states": "1",
           "asymmetry": "1", "step_up_mid": "S", "step_down_mid": "S", "c2c_spread": "1",
           "c2c": "1", "write_noise": "S", "sigma_read": "S"}

#: Quantile levels of a lookup table fitted from ramps [1].
_LEVELS = np.linspace(0.02, 0.98, 49)


@dataclass
class PulseFit:
    """A fitted :class:`~xbarlab.devices.pulsed.PulsedDevice` with the evidence for it."""

    #: The fitted device (SI units; save it with ``device.to_json()``).
    device: PulsedDevice
    #: The chosen rule.
    form: StepForm
    #: Held-out Gaussian log-likelihood per step (ramps) or per bin (a table) of each rule [1].
    held_out: dict[str, float]
    #: Std of the non-accumulating read error of a conductance read [S] (NaN: a table).
    sigma_read: float
    #: Derived quantities of the fit (:data:`DERIVED` names, SI units).
    values: dict[str, float]
    #: 2.5 and 97.5 % bootstrap quantiles of each derived quantity and rule parameter.
    bands: dict[str, tuple[float, float]]
    #: Rule parameters (a_up, a_down, gamma_up, gamma_down where the rule has them).
    params: dict[str, float]
    #: Bootstrap replicates kept / asked for.
    n_boot: tuple[int, int] = (0, 0)
    #: "ramps" or "step table".
    data_kind: str = "ramps"
    #: Counts of the data: ramps, steps, devices (ramps) or bins (a table).
    counts: dict[str, int] = field(default_factory=dict)
    #: Sentences the report shows (identifiability, skipped replicates ...).
    notes: list[str] = field(default_factory=list)
    #: Bootstrap replicates of the mean step magnitude on ``grid`` (n_boot, 2, n_grid) [S].
    boot_curves: np.ndarray | None = None
    #: Conductances the mean-step curves are evaluated at [S].
    grid: np.ndarray | None = None


# ------------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class _Steps:
    """Single-pulse steps in the pulse's direction: ``y = d * dG``."""

    g: np.ndarray  # conductance before the pulse [S]
    y: np.ndarray  # step in the pulse's direction [S]
    d: np.ndarray  # +1 / -1
    ramp: np.ndarray  # ramp id of each step
    lag: np.ndarray  # indices i with step i+1 the next pulse of the same ramp

    @classmethod
    def of(cls, ramps: PulseRamps) -> _Steps:
        g, dg, ramp = ramps.steps()
        first = np.flatnonzero((ramps.ramp[1:] == ramps.ramp[:-1])
                               & (np.diff(ramps.pulse) == 1))  # read index of each step
        # consecutive steps of one ramp: the second starts at the first's end read
        lag = np.flatnonzero(np.diff(first) == 1)
        d = ramps.direction[ramp]
        return cls(g=g, y=d * dg, d=d, ramp=ramp, lag=lag)


def split_step_noise(residual, lag_pairs, mean_magnitude) -> tuple[float, float, float]:
    """Split step residuals into read noise and step spread (see the module docstring).

    Parameters
    ----------
    residual : array_like
        Measured step minus the fitted mean, in the pulse's direction [S].
    lag_pairs : array_like of int
        Indices i whose residual i + 1 belongs to the next pulse of the same ramp.
    mean_magnitude : array_like
        Fitted mean step magnitude A(G) of each step [S].

    Returns
    -------
    c2c : float
        Relative step spread [1].
    write_noise : float
        Additive step spread [S].
    sigma_read : float
        Std of the read error [S].
    """
    r = np.asarray(residual, dtype=np.float64)
    a = np.asarray(mean_magnitude, dtype=np.float64)
    lag = np.asarray(lag_pairs, dtype=np.int64)
    var_read = max(-float(np.mean(r[lag] * r[lag + 1])), 0.0) if lag.size else 0.0
    c2c2, w2 = _nonneg_fit(a**2, r**2 - 2.0 * var_read)
    return math.sqrt(c2c2), math.sqrt(w2), math.sqrt(var_read)


def _nonneg_fit(x, v) -> tuple[float, float]:
    """Least squares v ~ b x + c with b, c >= 0 (the four cases of the active set)."""
    x = np.asarray(x, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    best = (0.0, 0.0, float(np.sum(v**2)))
    xm, vm = float(x.mean()), float(v.mean())
    sxx = float(np.sum((x - xm) ** 2))
    cands = [(0.0, max(vm, 0.0)), (max(float(np.sum(x * v)) / max(float(np.sum(x * x)),
                                                                     1e-300), 0.0), 0.0)]
    if sxx > 0:
        b = float(np.sum((x - xm) * (v - vm))) / sxx
        cands.append((b, vm - b * xm))
    for b, c in cands:
        if b >= 0 and c >= 0:
            sse = float(np.sum((v - b * x - c) ** 2))
            if sse < best[2]:
                best = (b, c, sse)
    return best[0], best[1]


# ------------------------------------------------------------------- parametric fits


def _rule(form: StepForm, p) -> object:
    if form is StepForm.CONSTANT:
        return ConstantStep(a_up=p[0], a_down=p[1])
    if form is StepForm.SOFT_BOUNDS:
        return SoftBounds(a_up=p[0], a_down=p[1])
    if form is StepForm.POWER:
        return PowStep(a_up=p[0], a_down=p[1], gamma_up=p[2], gamma_down=p[3])
    return ExpStep(a_up=p[0], a_down=p[1], gamma_up=p[2], gamma_down=p[3])


def _free_bounds(form: StepForm) -> bool:
    return form in (StepForm.SOFT_BOUNDS, StepForm.POWER)


def _fit_mean(form: StepForm, g, y, d, weight, g_lo: float, g_hi: float) -> PulsedDevice:
    """Least-squares fit of one parametric rule's mean step (bounds shared by both ways)."""
    from scipy.optimize import least_squares

    span = g_hi - g_lo
    s = float(np.median(np.abs(y))) or float(np.mean(np.abs(y))) or 1e-12
    up = d > 0
    a0 = [max(float(np.mean(y[up])), 1e-3 * s) / s, max(float(np.mean(y[~up])), 1e-3 * s) / s]
    if form is StepForm.CONSTANT:
        return PulsedDevice(rule=_rule(form, [a0[0] * s, a0[1] * s]), g_min=g_lo, g_max=g_hi)
    x0 = list(a0)
    lo = [1e-6, 1e-6]
    hi = [1e3, 1e3]
    if form in (StepForm.POWER, StepForm.EXPONENTIAL):
        x0 += [1.0, 1.0]
        lo += [0.02, 0.02] if form is StepForm.POWER else [0.0, 0.0]
        hi += [20.0, 20.0] if form is StepForm.POWER else [50.0, 50.0]
    if _free_bounds(form):
        x0 += [-0.1, 1.1]
        lo += [max(-g_lo / span, -20.0), 1.0]
        hi += [0.0, 21.0]
    x0 = np.clip(x0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)

    def unpack(p):
        rule = _rule(form, [p[0] * s, p[1] * s, *p[2:4]])
        if _free_bounds(form):
            return rule, g_lo + p[-2] * span, g_lo + p[-1] * span
        return rule, g_lo, g_hi

    gb, yb, db, wb = _binned(g, y, d, weight, g_lo, g_hi)

    def resid(p):
        rule, gmin, gmax = unpack(p)
        return (rule.mean(gb, db, gmin, gmax) - yb) * wb / s

    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", max_nfev=400)
    rule, gmin, gmax = unpack(sol.x)
    return PulsedDevice(rule=rule, g_min=max(gmin, 0.0), g_max=gmax)


def _binned(g, y, d, weight, g_lo: float, g_hi: float, n: int = 96):
    """Steps pooled in ``n`` conductance bins per direction: mean g, mean step, direction
    and weight * sqrt(count) (least squares on these equals that on the steps up to the
    curvature of the mean within a bin)."""
    if g.size <= 4 * n:
        return g, y, d, np.broadcast_to(weight, g.shape)
    w = np.broadcast_to(np.asarray(weight, dtype=np.float64), g.shape)
    k = np.clip(((g - g_lo) / (g_hi - g_lo) * n).astype(np.int64), 0, n - 1)
    key = k + n * (d < 0)
    cnt = np.bincount(key, minlength=2 * n)
    ok = cnt > 0
    mean = [np.bincount(key, v, minlength=2 * n)[ok] / cnt[ok] for v in (g, y, w)]
    dd = np.where(np.arange(2 * n) < n, 1.0, -1.0)[ok]
    return mean[0], mean[1], dd, mean[2] * np.sqrt(cnt[ok])


def _table_edges(g, d, g_lo: float, g_hi: float, min_steps: int = 10) -> np.ndarray:
    """Equal-width bins over [g_lo, g_hi], the most of 32, 16, 8, 4, 2 whose every bin holds
    ``min_steps`` steps of each direction."""
    for n in (32, 16, 8, 4, 2):
        e = np.linspace(g_lo, g_hi, n + 1)
        e[-1] = np.nextafter(g_hi, np.inf)
        ok = True
        for sign in (1, -1):
            cnt = np.bincount(np.clip(np.searchsorted(e, g[d == sign], side="right") - 1, 0,
                                      n - 1), minlength=n)
            ok &= bool(np.all(cnt >= min_steps))
        if ok:
            return e
    raise DataFormatError(f"the steps do not fill two conductance bins with {min_steps} steps "
                          "each way; a lookup table needs steps of both directions across "
                          "the range")


def _fit_table(st: _Steps, edges: np.ndarray, var_read: float) -> PulsedDevice:
    """A lookup table of the steps, each bin's spread shrunk about its mean by the read
    noise (2 sigma_read^2 of the step variance is read error, not step spread)."""
    ys = st.y.copy()
    nb = edges.size - 1
    idx = np.clip(np.searchsorted(edges, st.g, side="right") - 1, 0, nb - 1)
    for sign in (1, -1):
        for i in range(nb):
            m = (st.d == sign) & (idx == i)
            if m.sum() < 2:
                continue
            mu, var = ys[m].mean(), ys[m].var()
            k = math.sqrt(max(var - 2 * var_read, 0.0) / var) if var > 0 else 0.0
            ys[m] = mu + (ys[m] - mu) * k
    up = st.d > 0
    tab = StepTable.from_samples(edges, st.g[up], ys[up], st.g[~up], ys[~up], levels=_LEVELS,
                                 interpolation=Interpolation.LINEAR)
    return PulsedDevice(rule=tab, g_min=float(edges[0]), g_max=float(edges[-1]))


def _fit_form(form: StepForm, st: _Steps, g_lo: float, g_hi: float, edges=None):
    """(device with its noise split, sigma_read) of one rule fitted to steps ``st``."""
    up = st.d > 0
    weight = np.where(up, 1.0 / max(np.std(st.y[up]), 1e-30),
                      1.0 / max(np.std(st.y[~up]), 1e-30))
    if form is StepForm.TABLE:
        e = _table_edges(st.g, st.d, g_lo, g_hi) if edges is None else edges
        raw = _fit_table(st, e, 0.0)
        r = st.y - raw.mean_magnitude(st.g, st.d)
        _, _, sig = split_step_noise(r, st.lag, raw.mean_magnitude(st.g, st.d))
        return _fit_table(st, e, sig**2), sig
    dev = _fit_mean(form, st.g, st.y, st.d, weight, g_lo, g_hi)
    a = dev.mean_magnitude(st.g, st.d)
    c2c, wn, sig = split_step_noise(st.y - a, st.lag, a)
    return replace(dev, c2c=c2c, write_noise=wn), sig


def _loglik(dev: PulsedDevice, sig: float, g, y, d) -> np.ndarray:
    """Gaussian log-density of measured steps: mean A(G), variance step + 2 sigma_read^2."""
    m = dev.mean_magnitude(g, d)
    v = dev.step_variance(g, d) + 2 * sig**2
    v = np.maximum(v, 1e-12 * float(np.mean(m**2)) + 1e-300)
    return -0.5 * (np.log(2 * np.pi * v) + (y - m) ** 2 / v)


def _check_forms(forms):
    return [f if isinstance(f, StepForm) else _form(f) for f in forms]


def _check_fit_options(forms, n_boot, rng) -> list:
    """The options both pulse fits share: the generator, the rules (as StepForm), n_boot."""
    _check_rng(rng)
    if int(n_boot) != n_boot or n_boot < 0:
        raise ConfigError(f"n_boot must be an integer >= 0, got {n_boot!r}")
    return _check_forms(forms)


def _form(value) -> StepForm:
    try:
        return StepForm(value)
    except ValueError:
        raise ConfigError(f"form {value!r} is not one of "
                          f"{', '.join(repr(f.value) for f in StepForm)}") from None


# ------------------------------------------------------------------- derived values


def derived_quantities(device: PulsedDevice, sigma_read: float = math.nan) -> dict[str, float]:
    """Quantities a pulsed device is judged by (names and units in :data:`DERIVED`).

    ``symmetric_point`` [S] and ``n_states`` [1] as the device defines them;
    ``asymmetry`` [1]: (mean A_up - mean A_down) / (mean A_up + mean A_down) over the range;
    ``step_up_mid``, ``step_down_mid`` [S]: mean step magnitudes at mid-range;
    ``c2c_spread`` [1]: std of one pulse's step over its mean at the symmetric point (at
    mid-range when there is none), averaged over both directions.

    Parameters
    ----------
    device : PulsedDevice
        The device.
    sigma_read : float
        Std of the read error [S], copied into the result.

    Returns
    -------
    dict of str to float
    """
    g = np.linspace(device.g_min, device.g_max, 513)
    au, ad = device.mean_magnitude(g, 1), device.mean_magnitude(g, -1)
    gs = device.symmetric_point()
    mid = 0.5 * (device.g_min + device.g_max)
    at = mid if math.isnan(gs) else gs
    rel = [math.sqrt(float(device.step_variance(at, k))) / float(device.mean_magnitude(at, k))
           for k in (1, -1)]
    return {"g_min": device.g_min, "g_max": device.g_max, "symmetric_point": gs,
            "n_states": device.n_states(),
            "asymmetry": float((au.mean() - ad.mean()) / (au.mean() + ad.mean())),
            "step_up_mid": float(device.mean_magnitude(mid, 1)),
            "step_down_mid": float(device.mean_magnitude(mid, -1)),
            "c2c_spread": float(np.mean(rel)), "c2c": device.c2c,
            "write_noise": device.write_noise, "sigma_read": float(sigma_read)}


def _params(device: PulsedDevice) -> dict[str, float]:
    r = device.rule
    return {k: float(getattr(r, k)) for k in ("a_up", "a_down", "gamma_up", "gamma_down")
            if hasattr(r, k)}


def _bands(reps: list[dict]) -> dict[str, tuple[float, float]]:
    if not reps:
        return {}
    out = {}
    for k in reps[0]:
        v = np.array([r[k] for r in reps], dtype=np.float64)
        v = v[np.isfinite(v)]
        out[k] = (tuple(float(q) for q in np.quantile(v, [0.025, 0.975])) if v.size >= 2
                  else (math.nan, math.nan))
    return out


def _check_rng(rng):
    check_rng(rng)


def _fold_of_ramps(ramps: PulseRamps, n_folds: int, rng) -> np.ndarray:
    """Fold 0..n_folds-1 of each ramp, dealt out within each direction."""
    fold = np.empty(ramps.n_ramps, dtype=np.int64)
    for sign in (1, -1):
        ids = np.flatnonzero(ramps.direction == sign)
        fold[rng.permutation(ids)] = np.arange(ids.size) % n_folds
    return fold


def _d2d(dev: PulsedDevice, st: _Steps, ramps: PulseRamps) -> tuple[float, float]:
    """(d2d, d2d_asymmetry) from per-device least-squares gains of the mean step."""
    if ramps.n_devices < 2:
        return 0.0, 0.0
    a = dev.mean_magnitude(st.g, st.d)
    var = dev.step_variance(st.g, st.d)
    dev_of = ramps.device[st.ramp]
    gains = np.full((ramps.n_devices, 2), np.nan)
    se2 = np.full((ramps.n_devices, 2), np.nan)
    for k in range(ramps.n_devices):
        for j, sign in enumerate((1, -1)):
            m = (dev_of == k) & (st.d == sign)
            den = float(np.sum(a[m] ** 2))
            if den > 0:
                gains[k, j] = float(np.sum(a[m] * st.y[m])) / den
                se2[k, j] = float(np.sum(a[m] ** 2 * var[m])) / den**2
    gain = gains.mean(axis=1)
    imb = (gains[:, 0] - gains[:, 1]) / (gains[:, 0] + gains[:, 1])
    ok = np.isfinite(gain) & np.isfinite(imb)
    if ok.sum() < 2:
        return 0.0, 0.0
    g_mean = float(np.mean(gain[ok]))
    s2 = float(np.mean(se2[ok].sum(axis=1))) / 4.0
    d2d = math.sqrt(max(float(np.var(gain[ok], ddof=1)) - s2, 0.0)) / g_mean
    asym = math.sqrt(max(float(np.var(imb[ok], ddof=1)) - s2 / g_mean**2, 0.0))
    return d2d, asym


def fit_pulsed_ramps(ramps: PulseRamps, *, form: StepForm | str | None = None,
                     forms=tuple(StepForm), n_boot: int = 100, n_folds: int = 5,
                     rng: np.random.Generator) -> PulseFit:
    """Fit a :class:`~xbarlab.devices.pulsed.PulsedDevice` to conductance ramps.

    Parameters
    ----------
    ramps : PulseRamps
        Ramps of both directions (:func:`~xbarlab.formats.pulse_tables.read_pulse_ramps`).
    form : StepForm or str, optional
        The rule to fit; None chooses among ``forms`` by held-out log-likelihood.
    forms : sequence of StepForm
        The rules compared (all by default).
    n_boot : int
        Bootstrap replicates (ramps resampled within each direction), >= 0.
    n_folds : int
        Folds of whole ramps for the held-out likelihood, >= 2.
    rng : numpy.random.Generator
        Draws the folds, then the bootstrap resamples.

    Returns
    -------
    PulseFit
    """
    forms = _check_fit_options(forms, n_boot, rng)
    if int(n_folds) != n_folds or n_folds < 2:
        raise ConfigError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    for sign, name in ((1, "up"), (-1, "down")):
        if np.sum(ramps.direction == sign) < n_folds:
            raise DataFormatError(f"{np.sum(ramps.direction == sign)} {name} ramps; the "
                                  f"held-out choice needs at least n_folds = {n_folds} "
                                  "ramps each way")
    st = _Steps.of(ramps)
    g_lo, g_hi = float(ramps.g.min()), float(ramps.g.max())
    fold = _fold_of_ramps(ramps, n_folds, rng)[st.ramp]
    edges = _table_edges(st.g, st.d, g_lo, g_hi)
    held: dict[str, float] = {}
    if form is None:
        for f in forms:
            total = 0.0
            for k in range(n_folds):
                tr, te = _sub(st, fold != k), _sub(st, fold == k)
                dev, sig = _fit_form(f, tr, g_lo, g_hi, edges)
                total += float(np.sum(_loglik(dev, sig, te.g, te.y, te.d)))
            held[f.value] = total / st.y.size
        chosen = StepForm(max(held, key=held.get))
    else:
        chosen = _form(form)
    dev, sig = _fit_form(chosen, st, g_lo, g_hi, edges)
    d2d, asym = _d2d(dev, st, ramps)
    dev = replace(dev, d2d=d2d, d2d_asymmetry=asym)
    grid = np.linspace(g_lo, g_hi, 65)
    reps, curves, skipped = [], [], 0
    for _ in range(int(n_boot)):
        pick = np.concatenate([rng.choice(np.flatnonzero(ramps.direction == s),
                                          np.sum(ramps.direction == s)) for s in (1, -1)])
        sub = ramps.subset(pick)
        try:
            b, bs = _fit_form(chosen, _Steps.of(sub), g_lo, g_hi, edges)
        except (ConfigError, DataFormatError):
            skipped += 1
            continue
        reps.append({**derived_quantities(b, bs), **_params(b)})
        curves.append([b.mean_magnitude(grid, 1), b.mean_magnitude(grid, -1)])
    notes = []
    if ramps.n_devices < 2:
        notes.append("One device: device-to-device spread is not identifiable (set to 0).")
    if chosen in (StepForm.TABLE, StepForm.CONSTANT, StepForm.EXPONENTIAL):
        notes.append("Bounds G_min, G_max are the lowest and highest measured reads (this "
                     "rule does not identify them from the steps).")
    if chosen is StepForm.TABLE:
        notes.append("The lookup table carries the step spread itself (each bin's measured "
                     "spread less the read error), so c2c and write noise are 0; the "
                     "cycle-to-cycle spread is the table's.")
    if skipped:
        notes.append(f"{skipped} of {n_boot} bootstrap replicates left a table bin without "
                     "steps and were skipped.")
    return PulseFit(device=dev, form=chosen, held_out=held, sigma_read=sig,
                    values={**derived_quantities(dev, sig), "d2d": d2d,
                            "d2d_asymmetry": asym}, bands=_bands(reps), params=_params(dev),
                    n_boot=(len(reps), int(n_boot)), data_kind="ramps",
                    counts={"ramps": ramps.n_ramps, "steps": int(st.y.size),
                            "devices": ramps.n_devices,
                            "up ramps": int(np.sum(ramps.direction > 0)),
                            "down ramps": int(np.sum(ramps.direction < 0))},
                    notes=notes, boot_curves=np.array(curves) if curves else None, grid=grid)


def _sub(st: _Steps, mask) -> _Steps:
    idx = np.flatnonzero(mask)
    pos = np.full(mask.size, -1)
    pos[idx] = np.arange(idx.size)
    lag = pos[st.lag[mask[st.lag] & mask[st.lag + 1]]]
    return _Steps(g=st.g[idx], y=st.y[idx], d=st.d[idx], ramp=st.ramp[idx], lag=lag)


# ------------------------------------------------------------------- step tables


def step_table_rule(table: PulseStepTable, levels=None) -> StepTable:
    """The measured step table as a :class:`~xbarlab.devices.pulsed.StepTable` rule.

    Bin edges lie halfway between the bin centres (the outer ones half a spacing beyond);
    quantiles are the table's, interpolated to ``levels``; down steps become magnitudes
    (the ``p`` quantile of a down step's magnitude is minus the ``1 - p`` quantile of the
    change).

    Parameters
    ----------
    table : PulseStepTable
        The measured table.
    levels : array_like, optional
        Probability levels kept [1], strictly inside (0, 1); default 100 levels from 0.005
        to 0.995.

    Returns
    -------
    StepTable
    """
    if levels is None:
        levels = np.linspace(0.005, 0.995, 100)
    c = table.g_bins
    mid = 0.5 * (c[1:] + c[:-1])
    edges = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    lv = np.asarray(levels, dtype=np.float64)
    up = np.array([np.interp(lv, table.cdf, table.steps_up[:, j]) for j in range(c.size)])
    down = np.array([-np.interp(1.0 - lv, table.cdf, table.steps_down[:, j])
                     for j in range(c.size)])
    return StepTable(edges=edges, levels=lv, up=np.maximum.accumulate(up, axis=1),
                     down=np.maximum.accumulate(down, axis=1),
                     interpolation=Interpolation.LINEAR)


def _table_moments(table: PulseStepTable):
    """Per-bin mean [S] and variance [S^2] of the step magnitude, (2, n_bins) each."""
    rule = step_table_rule(table)
    c = table.g_bins
    m = np.array([rule.mean(c, np.full(c.size, s)) for s in (1, -1)])
    v = np.array([rule.variance(c, np.full(c.size, s)) for s in (1, -1)])
    return rule, m, v


def _fit_bins(form: StepForm, c, m, v, keep, g_lo, g_hi, rule_all: StepTable):
    """Device of ``form`` fitted to the bins ``keep`` (mean and spread)."""
    g = np.concatenate([c[keep], c[keep]])
    d = np.concatenate([np.ones(keep.sum()), -np.ones(keep.sum())])
    y = np.concatenate([m[0, keep], m[1, keep]])
    var = np.concatenate([v[0, keep], v[1, keep]])
    if form is StepForm.TABLE:
        return None
    dev = _fit_mean(form, g, y, d, 1.0 / np.sqrt(np.maximum(var, 1e-30)), g_lo, g_hi)
    a = dev.mean_magnitude(g, d)
    c2c2, w2 = _nonneg_fit(a**2, var)
    return replace(dev, c2c=math.sqrt(c2c2), write_noise=math.sqrt(w2))


def _bin_loglik(mean, var, m_obs, v_obs):
    """Expected Gaussian log-density of a bin's step distribution (mean m_obs, variance
    v_obs) under a model of mean ``mean`` and variance ``var``."""
    var = np.maximum(var, 1e-30)
    return -0.5 * (np.log(2 * np.pi * var) + (v_obs + (m_obs - mean) ** 2) / var)


def fit_step_table(table: PulseStepTable, *, form: StepForm | str | None = None,
                   forms=tuple(StepForm), n_boot: int = 100, n_folds: int = 5,
                   rng: np.random.Generator) -> PulseFit:
    """Fit a :class:`~xbarlab.devices.pulsed.PulsedDevice` to a step table.

    Each parametric rule's mean step is fitted to the bins' mean steps (weights: one over
    each bin's step std) and its spread (``c2c``, ``write_noise``) to their variances; the
    lookup table is the measured table itself. Held-out: whole bins, ``n_folds``-fold; a
    held-out bin scores the expected Gaussian log-density of its step distribution (the
    table predicts it by linear interpolation of its neighbours' mean and variance).
    Bounds of the constant, exponential and table rules are the outer bin edges.

    Parameters
    ----------
    table : PulseStepTable
        The measured table (:func:`~xbarlab.formats.pulse_tables.read_step_table`).
    form : StepForm or str, optional
        The rule to fit; None chooses among ``forms`` by held-out log-likelihood.
    forms : sequence of StepForm
        The rules compared.
    n_boot : int
        Bootstrap replicates (bins resampled), >= 0.
    n_folds : int
        Folds of bins for the held-out likelihood, >= 2.
    rng : numpy.random.Generator
        Draws the folds, then the bootstrap resamples.

    Returns
    -------
    PulseFit
    """
    forms = _check_fit_options(forms, n_boot, rng)
    rule, m, v = _table_moments(table)
    c = table.g_bins
    nb = c.size
    if int(n_folds) != n_folds or not 2 <= n_folds <= nb - 2:
        raise ConfigError(f"n_folds must be an integer in [2, {nb - 2}], got {n_folds!r}")
    g_lo, g_hi = float(rule.edges[0]), float(rule.edges[-1])
    fold = rng.permutation(np.arange(nb) % n_folds)
    held: dict[str, float] = {}
    if form is None:
        for f in forms:
            total = 0.0
            for k in range(n_folds):
                tr, te = fold != k, fold == k
                for j, s in enumerate((1, -1)):
                    if f is StepForm.TABLE:
                        mu = np.interp(c[te], c[tr], m[j, tr])
                        var = np.interp(c[te], c[tr], v[j, tr])
                    else:
                        dev = _fit_bins(f, c, m, v, tr, g_lo, g_hi, rule)
                        mu = dev.mean_magnitude(c[te], s)
                        var = dev.step_variance(c[te], s)
                    total += float(np.sum(_bin_loglik(mu, var, m[j, te], v[j, te])))
            held[f.value] = total / (2 * nb)
        chosen = StepForm(max(held, key=held.get))
    else:
        chosen = _form(form)
    all_bins = np.ones(nb, dtype=bool)

    def fit_of(keep):
        if chosen is StepForm.TABLE:
            sub = rule if keep.all() else step_table_rule(PulseStepTable(
                g_bins=c[keep], cdf=table.cdf, steps_up=table.steps_up[:, keep],
                steps_down=table.steps_down[:, keep]))
            return PulsedDevice(rule=sub, g_min=max(g_lo, 0.0), g_max=g_hi)
        return _fit_bins(chosen, c, m, v, keep, g_lo, g_hi, rule)

    dev = fit_of(all_bins)
    grid = np.linspace(g_lo, g_hi, 65)
    reps, curves = [], []
    for _ in range(int(n_boot)):
        w = np.bincount(rng.integers(0, nb, nb), minlength=nb) > 0
        if w.sum() < 3:
            continue
        b = fit_of(w)
        reps.append({**derived_quantities(b), **_params(b)})
        curves.append([b.mean_magnitude(grid, 1), b.mean_magnitude(grid, -1)])
    notes = ["A step table holds no sequence of reads and no device labels: its step spread "
             "mixes cycle-to-cycle spread, device-to-device spread and read noise, which are "
             "not identifiable from it. The device carries the whole spread as its "
             "cycle-to-cycle spread (an upper bound: the table's own spread, or c2c and write "
             "noise for a parametric rule); its device-to-device spread is 0 (not estimated)."]
    if chosen is StepForm.TABLE:
        notes.append("The lookup table is the measured table itself; its bands come from "
                     "resampling bins (the table rebuilt from the bins drawn, interpolated "
                     "across the others): they measure how much the result rests on single "
                     "bins, not the steps' sampling error, which the table does not record.")
    return PulseFit(device=dev, form=chosen, held_out=held, sigma_read=math.nan,
                    values={**derived_quantities(dev), "d2d": math.nan,
                            "d2d_asymmetry": math.nan},
                    bands=_bands(reps), params=_params(dev), n_boot=(len(reps), int(n_boot)),
                    data_kind="step table", counts={"bins": nb, "CDF points": table.cdf.size},
                    notes=notes, boot_curves=np.array(curves) if curves else None, grid=grid)
