"""PCM-like drift fit: per-device power law with a read-noise-corrected exponent spread.

Model of the reads of one device: ln g(t_k) = a - nu L_k + e_k with
L_k = ln((t_k + t0)/t0), u_k = ln((t_k + t0 + t_r)/(2 t_r)) and e the 1/f read noise of
a :class:`~xbarlab.devices.blocks.ReadNoiseStructure`, chosen by held-out likelihood
(:func:`~xbarlab.calibration.structure.choose_structure`): accumulated, Q W(u_k) with W
a Wiener process; drawn independently at every read, Q sqrt(u_k) z_k; or the sum of
both. The two latter are fitted by per-device generalised least squares under their
covariance (:func:`~xbarlab.calibration.readnoise.gls_fits`,
:func:`~xbarlab.calibration.structure.structure_fit`) with the same per-level moments as
below. For the random walk, increments of consecutive reads are independent:
dy = -nu dL + Q dW, var(dW) = du, so the generalised-least-squares exponent of a device
is nu_hat = -sum(dy dL/du) / S with S = sum(dL^2/du) and var(nu_hat | nu) = Q^2/S. Per
level, Q^2 is the pooled residual variance per unit u and the device-to-device spread is
deconvolved: sigma_nu^2 = var(nu_hat) - Q^2 mean(1/S) (a method-of-moments hierarchical
fit). t0 maximises the profile likelihood with each level's own Q^2. Curves across
levels are smoothed by the candidate chosen by cross-validation (polynomials, the
per-level values, or monotone fits, which pool the levels where a curve is flat: PCM's mean
exponent over the targets above 5 uS); bootstrap replicates resample devices and remake
the choice.

Reads at or below 0 S (the clamp of the instrument or of a device model: xbarlab's PCM
model clamps g_prog and every read at 0 S) have no logarithm; they are handled as follows
(:func:`censoring`, counts in :class:`PowerLawInfo` and the report):

- a cell whose reads are all <= 0 S is one the model programs to g_prog = 0 (the clamp of
  the programming error; g(t) = 0 then holds at every t whatever nu is). Its likelihood
  does not depend on nu or Q, so leaving it out of the drift fit is exact; it stays in
  the programming-error fit as g_prog = 0;
- in a cell with some positive reads, a read <= 0 S is left-censored. It is dropped and
  the increment is taken between the positive reads around it (the Wiener increments add:
  du of the bridged step is the sum of both). That is the exact likelihood of the
  remaining reads; what it ignores is the information "this read was low", a bias that
  stays small while such reads are a small minority. The fit therefore refuses (with
  the counts) when more than :data:`MAX_CENSORED` of the reads of the cells with positive
  reads are censored, or when a level keeps fewer than :data:`MIN_USABLE` cells with >= 3
  positive reads (the fewest that give a residual for Q).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..devices.blocks import ReadNoiseLaw, ReadNoiseStructure
from ..devices.curves import FittedCurve
from ..devices.fitted import FittedPowerLaw
from ..enums import coerce_enum
from .readnoise import (
    independent_drift_ml,
    linear_amplitude,
    linear_amplitude_ml,
    linear_drift_ml,
    linear_log_moments,
    predictive_loglik,
)
from .smooth import smooth_cv
from .structure import (
    T_R,
    Reads,
    best_t0,
    choose_structure,
    index_groups,
    level_stats,
    pick_w,
    structure_fit,
    t0_cost,
    w_fits,
)

#: Largest share of censored reads (<= 0 S) among the reads of cells with positive reads.
MAX_CENSORED = 0.10
#: Fewest cells per level with >= 3 positive reads a power-law fit needs.
MIN_USABLE = 5
#: Held-out gain per read, in standard errors, that the linear read-noise law needs over
#: the law on ln g (the default) to be chosen.
LAW_MARGIN_SE = 2.0
#: Noise std s = Q sqrt(u) (in ln g) from which a level's relative read-noise amplitude
#: is fitted by likelihood in g rather than from its log variance (:func:`_level_q`).
LINEAR_ML_ABOVE = 0.3
#: Under the linear law, mu_nu, sigma_nu and Q are fitted together at the levels where Q is
#: fitted in g: by the likelihood of each read given the first where the independent
#: share w of the read noise is below this [1] (at 1: every structure with a random-walk
#: part), by the likelihood of all of a device's reads together elsewhere (independent
#: reads; see :func:`_level_q`).
JOINT_BELOW_SHARE = 1.0
#: Independent share w [1] from which the joint fit of those levels uses the likelihood of
#: all of a device's reads together (it assumes independent reads: 1; inf turns it off,
#: and the exponents there stay those of the fit in ln g).
DEVICE_ML_FROM_SHARE = 1.0


@dataclass
class PowerLawInfo:
    """Per-level estimates of the power-law fit: ``levels_g`` [S], ``mu_nu``,
    ``sigma_nu`` (deconvolved), ``sigma_nu_raw`` (spread of the per-device estimates),
    ``q_read`` [1] (amplitude of the read noise of the fitted structure; under "both" of
    its random walk); ``t0`` [s] (fitted or given) and ``t0_fitted``; smoothing choices."""

    levels_g: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mu_nu: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma_nu: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma_nu_raw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    q_read: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t0: float = np.nan
    t0_fitted: bool = False
    choices: dict = field(default_factory=dict)
    censoring: dict = field(default_factory=dict)
    """Counts from :func:`censoring` (reads <= 0 S) of the devices the fit used."""
    read_noise: str = "random-walk"
    """The read-noise structure fitted (a :class:`ReadNoiseStructure` value)."""
    read_noise_evidence: dict = field(default_factory=dict)
    """What chose it (:func:`choose_structure`; empty when the structure was given)."""
    q_independent: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per-level amplitude of the independent part under "both" [1] (``q_read`` then
    holds the random walk's)."""
    w_independent: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per-level independent share w of the read-noise variance [1] (empty: random walk)."""
    w_levels_g: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Under "both", the levels [S] whose reads fitted the shared w (those where ln g is
    near normal, :func:`~xbarlab.calibration.structure.w_levels`)."""
    law: str = "log"
    """How the read noise enters the reads (a :class:`ReadNoiseLaw` value); under "linear"
    ``q_read`` and ``q_independent`` are the amplitudes of g (1 + e)."""
    law_evidence: dict = field(default_factory=dict)
    """What chose the law (:func:`choose_law`; empty when the law was given)."""


def censoring(pv, sel) -> dict:
    """Counts of reads <= 0 S among devices ``sel`` (bool mask), columns with t > 0.

    Keys: ``cells``; ``zero_cells``: cells with no positive read (left out of the drift
    fit as g_prog = 0); ``zero_cell_reads``: their reads; ``censored``: reads <= 0 S in
    cells with positive reads (dropped, bridged); ``reads``: reads of those cells;
    ``fraction``: censored / reads [1]; ``usable_min``: the fewest cells with >= 3
    positive reads in one level (filled by the caller)."""
    g = pv.g[sel][:, pv.tp > 0]
    fin = np.isfinite(g)
    pos = fin & (g > 0)
    n_pos = pos.sum(axis=1)
    zero = fin.any(axis=1) & (n_pos == 0)
    live = n_pos > 0
    cens = int((fin & ~pos)[live].sum())
    reads = int(fin[live].sum())
    return {"cells": int(sel.sum()), "zero_cells": int(zero.sum()),
            "zero_cell_reads": int(fin[zero].sum()), "censored": cens, "reads": reads,
            "fraction": cens / max(reads, 1)}


def check_censoring(pv, lev, keep) -> tuple[dict, str | None]:
    """Counts (:func:`censoring`) over the levels ``keep`` and the reason a power law
    cannot be fitted (None when it can)."""
    sel = np.isin(lev, keep)
    c = censoring(pv, sel)
    g = pv.g[:, pv.tp > 0]
    usable = np.sum(np.isfinite(g) & (g > 0), axis=1) >= 3
    per = {int(L): int(np.sum(usable & (lev == L))) for L in keep}
    c["usable_min"] = min(per.values())
    why = None
    if c["fraction"] > MAX_CENSORED:
        why = (f"{c['censored']} of the {c['reads']} reads of cells with positive reads "
               f"({100 * c['fraction']:.1f} %) are <= 0 S (at most "
               f"{100 * MAX_CENSORED:.0f} % can be treated as censored)")
    elif c["usable_min"] < MIN_USABLE:
        L = min(per, key=per.get)
        why = (f"level {L} keeps {per[L]} cells with >= 3 positive reads (a power law needs "
               f">= {MIN_USABLE}; {c['zero_cells']} cells read <= 0 S throughout)")
    return c, why


def _device_fits(pv, t0):
    """Per-device (nu_hat, S, residual sum of squares per u, dof, sum of ln du) (the last
    for the profile likelihood)."""
    g = pv.g
    t = np.where(np.isfinite(pv.t), pv.t, pv.tp[None, :])
    ok = np.isfinite(g) & (g > 0)
    y = np.where(ok, np.log(np.where(ok, g, 1.0)), np.nan)
    L = np.log((t + t0) / t0)
    u = np.log((t + t0 + T_R) / (2 * T_R))
    n = g.shape[0]
    num = np.zeros(n)
    S = np.zeros(n)
    rss = np.zeros(n)
    dof = np.zeros(n)
    # consecutive available reads per device (columns are sorted by nominal time)
    prev_y = np.full(n, np.nan)
    prev_L = np.full(n, np.nan)
    prev_u = np.full(n, np.nan)
    incs = []
    logdu = np.zeros(n)
    for k in range(g.shape[1]):
        has = ok[:, k]
        both = has & np.isfinite(prev_y)
        dy = np.where(both, y[:, k] - prev_y, 0.0)
        dL = np.where(both, L[:, k] - prev_L, 0.0)
        du = np.where(both, np.maximum(u[:, k] - prev_u, 1e-12), 1.0)
        num += dy * dL / du
        S += dL * dL / du
        dof += both
        logdu += np.where(both, np.log(du), 0.0)
        incs.append((dy, dL, du, both))
        prev_y = np.where(has, y[:, k], prev_y)
        prev_L = np.where(has, L[:, k], prev_L)
        prev_u = np.where(has, u[:, k], prev_u)
    with np.errstate(invalid="ignore", divide="ignore"):
        nu = -num / S
    for dy, dL, du, both in incs:
        r = dy + nu * dL
        rss += np.where(both, r * r / du, 0.0)
    return nu, S, rss, dof - 1, logdu


def _profile_cost(nu, S, rss, dof, logdu, sel=None, groups=None):
    """-2 log-likelihood (up to a constant) of the increments with Q^2 profiled out:
    N ln(rss/N) + sum ln du, N the number of increments (a t0 that stretches du is paid
    for by the log-determinant term). ``groups`` (index arrays, one per level, into the
    devices or into ``sel``): each level its own Q^2 (Q varies ~10x over a PCM range; one
    pooled Q^2 can put t0 an order of magnitude off); None: one Q^2 for all."""
    good = np.isfinite(nu) & (dof >= 1)
    if sel is not None:
        good = good[sel]
        nu, S, rss, dof, logdu = nu[sel], S[sel], rss[sel], dof[sel], logdu[sel]
    total = 0.0
    for ix in ([np.arange(nu.size)] if groups is None else groups):
        g = ix[good[ix]]
        n_inc = (dof[g] + 1).sum()
        total += n_inc * np.log(rss[g].sum() / max(n_inc, 1)) + logdu[g].sum()
    return total


def choose_t0(pv, groups=None) -> float:
    """t0 [s] maximising the profile likelihood of the per-device increment fits (coarse
    grid in log t0, then a bounded scalar minimisation around the best grid point);
    ``groups``: device indices of each level (each its own Q^2), None: one Q^2."""
    return best_t0(lambda lt0: _profile_cost(*_device_fits(pv, 10.0**lt0), groups=groups))


def first_positive(pv):
    """Column index of each device's earliest positive read (its earliest read when it
    has none) and the time of that read [s]."""
    pos = np.isfinite(pv.g) & (pv.g > 0)
    first = np.where(pos.any(axis=1), np.argmax(pos, axis=1),
                     np.argmax(np.isfinite(pv.g), axis=1))
    rows = np.arange(pv.n_dev)
    t1 = np.where(np.isfinite(pv.t[rows, first]), pv.t[rows, first], pv.tp[first])
    return first, t1


def fit_power_law(pv, lev, centres, keep, *, t0, rng, n_boot=100, read_noise="auto",
                  law="log"):
    """Fit a :class:`FittedPowerLaw`; returns ``(block, info)``.

    ``read_noise``: "auto" (the structure chosen by :func:`choose_structure`, on a
    generator spawned from ``rng`` so that the bootstrap draws stay those of the other
    structures' fits) or a :class:`ReadNoiseStructure`. A random walk is fitted from
    read-to-read increments (:func:`_device_fits`); the other structures by per-device
    generalised least squares under their covariance (:func:`structure_fit`). ``law``:
    "auto" (chosen by :func:`choose_law` for that structure, on another spawned
    generator) or a :class:`ReadNoiseLaw` (how the noise enters the reads; "linear" is
    fitted by :func:`_fit_linear`)."""
    evidence, law_evidence = {}, {}
    if read_noise == "auto":
        structure, evidence = choose_structure(pv, lev, np.asarray(keep), t0=t0,
                                               rng=rng.spawn(1)[0])
    else:
        structure = coerce_enum(ReadNoiseStructure, read_noise, "read_noise")
    keep = np.asarray(keep)[np.argsort(centres[keep])]
    if law == "auto":
        law, law_evidence = choose_law(pv, lev, centres, keep, structure, t0=t0,
                                       rng=rng.spawn(1)[0])
    law = coerce_enum(ReadNoiseLaw, law, "law")
    block, info = _fit_law(pv, lev, centres, keep, structure, law, t0=t0, rng=rng,
                           n_boot=n_boot)
    info.read_noise = structure.value
    info.read_noise_evidence = evidence
    info.law_evidence = law_evidence
    return block, info


def _fit_law(pv, lev, centres, keep, structure, law, *, t0, rng, n_boot, first=None):
    """The fit of one structure and law (``keep`` sorted by conductance); ``first``: the
    info of this structure's fit in ln g without bootstrap on the same data, when the
    caller has it (the linear law's first step)."""
    if law is ReadNoiseLaw.LINEAR:
        return _fit_linear(pv, lev, centres, keep, structure, t0=t0, rng=rng, n_boot=n_boot,
                           first=first)
    if structure is ReadNoiseStructure.RANDOM_WALK:
        return _fit_random_walk(pv, lev, centres, keep, t0=t0, rng=rng, n_boot=n_boot)
    return _fit_structure(pv, lev, centres, keep, structure, t0=t0, rng=rng, n_boot=n_boot)


def _clocks(pv, t0):
    """Read times [s] (nominal where missing), drift clock L and 1/f clock u [1] of every
    read of ``pv``."""
    t = np.where(np.isfinite(pv.t), pv.t, pv.tp[None, :])
    return t, np.log((t + t0) / t0), np.log((t + t0 + T_R) / (2 * T_R))


def _total_q(info):
    """Per-level amplitude of all the read noise [1] (under "both" of its two parts)."""
    return np.hypot(info.q_read, info.q_independent) if info.q_independent.size else info.q_read


def _shares(info):
    """Per-level independent share w [1] (0 for a random walk)."""
    return info.w_independent if info.w_independent.size else np.zeros(info.levels_g.size)


def _fit_linear(pv, lev, centres, keep, structure, *, t0, rng, n_boot, first=None):
    """Power law with relative read noise, reads g(t) (1 + e) clamped at 0 S.

    ln(1 + e) has mean m(s) < 0 for e of std s = Q sqrt(u) (given a positive read,
    :func:`~xbarlab.calibration.readnoise.linear_log_moments`), which grows with u and so
    with L: in ln g it would bias nu by about Q^2 / 2. A first fit in ln g (no bootstrap)
    gives each level's mu_nu, sigma_nu and t0, with which each level's Q is fitted in g
    (:func:`_level_q`); every positive read is divided by e^(m(Q sqrt(u))) and the fit in
    ln g, bootstrap included, redone; each level's Q is fitted again with its mu_nu and
    sigma_nu (where the noise is large, the three together, :func:`_level_q`), the
    amplitude curves (values and replicates; under "both" both parts) are scaled by Q
    over the fit's amplitude in ln g, and the mu_nu and sigma_nu
    curves moved by the refit's change of each level's value, both interpolated between
    levels.
    ``first``: that first fit's info when the caller has it (it draws nothing from
    ``rng``, so the result is the same)."""
    if first is None:
        _, first = _fit_law(pv, lev, centres, keep, structure, ReadNoiseLaw.LOG, t0=t0,
                            rng=rng, n_boot=0)
    q_dev = np.zeros(pv.n_dev)
    for L, q in zip(keep, _level_q(pv, lev, keep, first)[0], strict=True):
        q_dev[lev == L] = q
    _, _, u = _clocks(pv, first.t0)
    m, _ = linear_log_moments(q_dev[:, None] * np.sqrt(u))
    ok = np.isfinite(pv.g) & (pv.g > 0)
    shifted = replace(pv, g=np.where(ok, pv.g * np.exp(-m), pv.g))
    block, info = _fit_law(shifted, lev, centres, keep, structure, ReadNoiseLaw.LOG, t0=t0,
                           rng=rng, n_boot=n_boot)
    q_ml, mu_ml, sig_ml = _level_q(pv, lev, keep, info, joint=True)
    ratio = q_ml / np.maximum(_total_q(info), 1e-12)
    both = block.q_independent is not None
    curves = [block.q_read] + ([block.q_independent] if both else [])
    new = []
    for c in curves:
        r = np.interp(c.g, info.levels_g, ratio)
        new.append(FittedCurve(c.g, c.value * r, "1", c.boot * r if c.boot.size else c.boot))
    moved = [_moved(c, info.levels_g, d, lo) for c, d, lo in (
        (block.mu_nu, mu_ml - info.mu_nu, -np.inf), (block.sigma_nu, sig_ml - info.sigma_nu, 0.0))]
    block = replace(block, q_read=new[0], q_independent=new[1] if both else None,
                    mu_nu=moved[0], sigma_nu=moved[1], law=ReadNoiseLaw.LINEAR)
    info.mu_nu, info.sigma_nu = mu_ml, sig_ml
    info.q_read = info.q_read * ratio
    if both:
        info.q_independent = info.q_independent * ratio
    info.law = ReadNoiseLaw.LINEAR.value
    return block, info


def _moved(curve, levels_g, delta, lo):
    """``curve`` (values and replicates) plus the per-level ``delta`` [1] at ``levels_g``
    [S], interpolated between levels, and held >= ``lo``."""
    dv = np.interp(curve.g, levels_g, delta)
    boot = np.maximum(curve.boot + dv, lo) if curve.boot.size else curve.boot
    return FittedCurve(curve.g, np.maximum(curve.value + dv, lo), "1", boot)


def _pairs(pv, lev, keep, t0):
    """Every read after each device's first positive read, paired with that read: a dict
    of per-read arrays ``dev`` (device), ``k`` (position of its level in ``keep``),
    ``g1``, ``g`` [S], ``dL`` = L - L_1, ``u1``, ``u`` [1] (clocks at ``t0`` [s])."""
    where = {int(L): i for i, L in enumerate(keep)}
    k = np.array([where.get(int(v), -1) for v in lev])
    first, _ = first_positive(pv)
    rows = np.arange(pv.n_dev)
    _, L, u = _clocks(pv, t0)
    cols = np.arange(pv.g.shape[1])[None, :]
    later = ((cols > first[:, None]) & np.isfinite(pv.g)
             & ((pv.g[rows, first] > 0) & (k >= 0))[:, None])
    d, c = np.nonzero(later)
    f = first[d]
    return {"dev": d, "k": k[d], "g1": pv.g[d, f], "g": pv.g[d, c], "dL": L[d, c] - L[d, f],
            "u1": u[d, f], "u": u[d, c]}


def _level_q(pv, lev, keep, info, most=1000, joint=False):
    """Per level (``keep`` order), the amplitude Q [1] of relative read noise g (1 + e),
    with each level's mu_nu and sigma_nu [1]: ``(q, mu, sigma)``, the latter two those of
    ``info`` except where ``joint`` refits them (below).

    Where the noise is moderate (Q_log sqrt(u) < :data:`LINEAR_ML_ABOVE` at every read,
    Q_log the level's amplitude in ln g from ``info``) the Q whose log variance matches
    Q_log over the level's reads
    (:func:`~xbarlab.calibration.readnoise.linear_amplitude`); elsewhere fitted in g
    (:func:`~xbarlab.calibration.readnoise.linear_amplitude_ml`, within a factor 4 of the
    former) with the level's mu_nu, sigma_nu and share w from ``info`` and its t0, on
    the reads of at most ``most`` devices of the level (evenly spaced). The former
    assumes one Q per level and fails where Q sqrt(u) nears 1 (the log variance
    saturates; with a random walk the log increments of reads near 0 S explode); the
    latter, a likelihood of each read given the first with a flat prior on ln g_prog,
    reads Q 3-5 % high at moderate noise (aihwkit-style reads, true mu_nu and sigma_nu,
    targets 0.6-12.5 uS).

    With ``joint``, where Q is fitted in g and the read noise has a random-walk part (share
    w < :data:`JOINT_BELOW_SHARE`), mu_nu, sigma_nu and Q are fitted there together
    (:func:`~xbarlab.calibration.readnoise.linear_drift_ml`): the exponents of the fit in
    ln g are biased where reads near 0 S make the log increments explode, and Q fitted
    with them absorbs it (pcm-ibm-2020's equations, targets 0 and 0.625 uS: mu_nu 0.112 and
    0.091 against the generator's 0.100 and 0.082, sigma_nu 0.030 and 0.030 against 0.044
    and 0.039, Q 0.253 and 0.134 against 0.180 and 0.114). Under the random walk the
    predictive mean of a later read given the first does not depend on the prior of g_prog;
    with independent reads (w = 1) it does, the flat prior on ln g_prog misplaces the
    lowest level's cells, and that fit made its sigma_nu 0.098 against 0.044 (the fit in
    ln g: 0.058). There the three are fitted by the likelihood of all of a device's reads
    together (:func:`~xbarlab.calibration.readnoise.independent_drift_ml`, g_prog
    integrated out; aihwkit-style reads at 0 uS: mu_nu 0.099, sigma_nu 0.043, Q 0.170
    against 0.100, 0.044 and 0.180), on the same devices."""
    p = _pairs(pv, lev, keep, info.t0)
    _, clock_L, clock_u = _clocks(pv, info.t0)
    q_log = _total_q(info)
    out = np.empty(len(keep))
    mu, sig = info.mu_nu.copy(), info.sigma_nu.copy()
    w = _shares(info)
    for i in range(len(keep)):
        at = p["k"] == i
        if not at.any():
            out[i] = q_log[i]
            continue
        # reads sharing a clock value enter once, weighted by their count
        uq, cnt = np.unique(p["u"][at], return_counts=True)
        out[i] = linear_amplitude(q_log[i], uq, weights=cnt)
        if q_log[i] * np.sqrt(uq[-1]) < LINEAR_ML_ABOVE:
            continue
        devs = np.unique(p["dev"][p["k"] == i])
        if devs.size > most:
            devs = devs[np.linspace(0, devs.size - 1, most).astype(np.intp)]
        sel = np.isin(p["dev"], devs)
        args = (p["g1"][sel], p["g"][sel], p["dL"][sel], p["u1"][sel], p["u"][sel])
        out[i] = linear_amplitude_ml(*args, mu=info.mu_nu[i], s=info.sigma_nu[i],
                                     w=w[i], q_range=(out[i] / 4, out[i] * 4))
        if joint and w[i] < JOINT_BELOW_SHARE:
            mu[i], sig[i], out[i] = linear_drift_ml(*args, mu=info.mu_nu[i],
                                                    s=max(info.sigma_nu[i], 1e-3), q=out[i],
                                                    w=w[i])
        elif joint and w[i] >= DEVICE_ML_FROM_SHARE:
            mu[i], sig[i], out[i] = independent_drift_ml(
                pv.g[devs], clock_L[devs], clock_u[devs], mu=info.mu_nu[i],
                s=max(info.sigma_nu[i], 1e-3), q=out[i])
    return out, mu, sig


def _predictive(pv, lev, keep, info, linear):
    """Held-out :func:`~xbarlab.calibration.readnoise.predictive_loglik` of every read
    after each device's first positive read, with its level's mu_nu, sigma_nu, amplitude
    and share from ``info``: (per-device sum [ln(1/S)], per-device reads, per read
    log-likelihood, per read whether it is positive)."""
    p = _pairs(pv, lev, keep, info.t0)
    k = p["k"]
    lp = predictive_loglik(p["g1"], p["g"], p["dL"], p["u1"], p["u"], mu=info.mu_nu[k],
                           s=info.sigma_nu[k], q=_total_q(info)[k], w=_shares(info)[k],
                           linear=linear)
    return (np.bincount(p["dev"], weights=lp, minlength=pv.n_dev),
            np.bincount(p["dev"], minlength=pv.n_dev), lp, p["g"] > 0)


def choose_law(pv, lev, centres, keep, structure, *, t0, rng) -> tuple[ReadNoiseLaw, dict]:
    """The read-noise law (:class:`ReadNoiseLaw`) of the higher held-out log-likelihood
    per read, for the read-noise ``structure``.

    Each law is fitted (no bootstrap) on a random half of the devices of every level
    (``rng`` draws the split); every read of the other half after a device's first
    positive read is scored given that read
    (:func:`~xbarlab.calibration.readnoise.predictive_loglik`, read by read; a read at
    0 S by each law's probability of it). "linear" is chosen only when its gain per read
    exceeds :data:`LAW_MARGIN_SE` standard errors (paired over held-out devices). Returns
    the law and the evidence: ``loglik`` (law -> mean log-likelihood per read
    [ln(1/S)]), ``loglik_positive`` (the same over the positive reads), ``gain`` and
    ``gain_se`` (linear less log, per read), ``devices``, ``reads`` and ``zero_reads``
    scored."""
    train, test = [], []
    for L in keep:
        p = rng.permutation(np.nonzero(lev == L)[0])
        train.append(p[: p.size // 2])
        test.append(p[p.size // 2:])
    rows_tr, rows_te = np.concatenate(train), np.concatenate(test)
    sub_tr, sub_te = pv.devices(rows_tr), pv.devices(rows_te)
    ll, ll_pos, per, infos = {}, {}, {}, {}
    for law in ReadNoiseLaw:  # LOG first: the linear fit starts from its fit in ln g
        _, info = _fit_law(sub_tr, lev[rows_tr], centres, keep, structure, law, t0=t0,
                           rng=rng, n_boot=0, first=infos.get(ReadNoiseLaw.LOG))
        infos[law] = info
        dev, n, lp, pos = _predictive(sub_te, lev[rows_te], keep, info,
                                      law is ReadNoiseLaw.LINEAR)
        per[law] = dev
        ll[law.value] = float(lp.sum() / max(lp.size, 1))
        ll_pos[law.value] = float(lp[pos].sum() / max(pos.sum(), 1))
    live = n > 0
    diff = (per[ReadNoiseLaw.LINEAR] - per[ReadNoiseLaw.LOG])[live]
    reads = int(n.sum())
    gain = float(diff.sum() / max(reads, 1))
    se = float(diff.std(ddof=1) * np.sqrt(diff.size) / max(reads, 1)) if diff.size > 1 else np.inf
    choice = ReadNoiseLaw.LINEAR if gain > LAW_MARGIN_SE * se else ReadNoiseLaw.LOG
    ev = {"loglik": ll, "loglik_positive": ll_pos, "gain": gain, "gain_se": se,
          "devices": int(live.sum()), "reads": reads, "zero_reads": int(pos.size - pos.sum())}
    return choice, ev


def _fit_structure(pv, lev, centres, keep, structure, *, t0, rng, n_boot):
    """Power law with independent (or both) read noise: GLS per device under the
    structure's covariance, per-level moments, curves smoothed, devices bootstrapped (t0
    re-estimated in every replicate as in :func:`_fit_random_walk`, and under "both" w:
    restricted likelihood of the replicate over the grid of w at the full-data t0, from the
    levels that fitted w).

    Under "both" the independent share w of the read-noise variance is one for all
    levels (a level's own w is poorly determined by a few reads per device: at 150
    devices per level it scatters over 0.2-1 around a truth of 0.5), so the two parts'
    amplitudes Q sqrt(1 - w) and Q sqrt(w) share the level dependence of Q. It is fitted
    on the levels where ln g is near normal
    (:func:`~xbarlab.calibration.structure.w_levels`; the structure's choice,
    :func:`~xbarlab.calibration.structure.choose_structure`, scores "both" as fitted to
    every level)."""
    t0_fitted = t0 is None
    idx = [np.nonzero(lev == L)[0] for L in keep]
    rows = np.concatenate(idx)
    groups = index_groups(idx)
    t0, w_lev, f, use = structure_fit(pv, rows, groups, structure, t0, shared_w=True,
                                      normal_levels=True)
    reads = Reads(pv, rows)
    gk = centres[keep]
    wd = np.concatenate([np.full(ix.size, w) for ix, w in zip(idx, w_lev, strict=True)])

    def stats(fits, picks):
        return np.array([level_stats(fits["nu"][pk], fits["S"][pk], fits["rss"][pk],
                                      fits["dof"][pk], np.ones(pk.size, bool)) for pk in picks])

    st = stats(f, groups)
    mu, sig, raw, q, n = st.T
    q_rw, q_ind = q * np.sqrt(1 - w_lev), q * np.sqrt(w_lev)
    wt = n / np.maximum(raw, 1e-12) ** 2
    s_mu, s_sig = smooth_cv(gk, mu, wt, monotone=True), smooth_cv(gk, sig, wt, monotone=True)
    both = structure is ReadNoiseStructure.BOTH
    s_q = smooth_cv(gk, q_rw if both else q, n, monotone=True)
    s_qi = smooth_cv(gk, q_ind, n, monotone=True) if both else None
    grid = np.unique(np.concatenate([gk, np.linspace(gk.min(), gk.max(), 64)]))
    bm, bsg, bq, bqi = (np.zeros((n_boot, grid.size)) for _ in range(4))
    h = 0.03
    # t0's cost at three trial values: a replicate's t0 from the parabola through them
    cost3 = ([t0_cost(pv, rows, groups, reads, 10.0**lt, wd) for lt in
              (np.log10(t0) - h, np.log10(t0), np.log10(t0) + h)]
             if t0_fitted and n_boot else [])
    fits_w = w_fits(reads, t0) if both and n_boot else []
    for b in range(n_boot):
        picks = [ix[rng.integers(0, ix.size, ix.size)] for ix in groups]
        cur, t_b, w_b = f, t0, w_lev
        if cost3:
            c = [cost(picks) for cost in cost3]
            den = c[0] - 2 * c[1] + c[2]
            step = 0.5 * (c[0] - c[2]) / den if den > 0 else 0.0
            t_b = 10.0 ** (np.log10(t0) + h * float(np.clip(step, -1, 1)))
        if fits_w:
            w_b = pick_w(fits_w, picks, True, use)
        if cost3 or fits_w:
            cur = reads.gls(t_b, np.full(rows.size, w_b[0]) if both else wd)
        r = stats(cur, picks)
        bm[b] = s_mu(grid, r[:, 0])
        bsg[b] = np.maximum(s_sig(grid, r[:, 1]), 0.0)
        bq[b] = np.maximum(s_q(grid, r[:, 3] * np.sqrt(1 - w_b) if both else r[:, 3]), 0.0)
        if both:
            bqi[b] = np.maximum(s_qi(grid, r[:, 3] * np.sqrt(w_b)), 0.0)
    block = FittedPowerLaw(
        mu_nu=FittedCurve(grid, s_mu(grid), "1", bm),
        sigma_nu=FittedCurve(grid, np.maximum(s_sig(grid), 0.0), "1", bsg), t0=t0,
        q_read=FittedCurve(grid, np.maximum(s_q(grid), 0.0), "1", bq), t_r=T_R,
        read_noise=structure,
        q_independent=FittedCurve(grid, np.maximum(s_qi(grid), 0.0), "1", bqi) if both else None)
    ch = {"mu_nu": s_mu.choice, "sigma_nu": s_sig.choice, "q_read": s_q.choice}
    if both:
        ch["q_independent"] = s_qi.choice
    info = PowerLawInfo(levels_g=gk, mu_nu=mu, sigma_nu=sig, sigma_nu_raw=raw,
                        q_read=q_rw if both else q, t0=t0, t0_fitted=t0_fitted, choices=ch,
                        censoring=check_censoring(pv, lev, keep)[0],
                        q_independent=q_ind if both else np.zeros(0), w_independent=w_lev,
                        w_levels_g=(gk if use is None else gk[use]) if both else np.zeros(0))
    return block, info


def _fit_random_walk(pv, lev, centres, keep, *, t0, rng, n_boot):
    """Power law with random-walk read noise, from read-to-read increments."""
    t0_fitted = t0 is None
    idx = [np.nonzero(lev == L)[0] for L in keep]
    t0 = choose_t0(pv, idx) if t0 is None else float(t0)
    nu, S, rss, dof, _ = _device_fits(pv, t0)
    gk = centres[keep]
    st = np.array([level_stats(nu, S, rss, dof, lev == L) for L in keep])
    mu, sig, raw, q, n = st.T
    s_mu = smooth_cv(gk, mu, n / np.maximum(raw, 1e-12) ** 2, monotone=True)
    s_sig = smooth_cv(gk, sig, n / np.maximum(raw, 1e-12) ** 2, monotone=True)
    s_q = smooth_cv(gk, q, n, monotone=True)
    grid = np.unique(np.concatenate([gk, np.linspace(gk.min(), gk.max(), 64)]))
    bm = np.zeros((n_boot, grid.size))
    bsg = np.zeros_like(bm)
    bq = np.zeros_like(bm)
    fits = {}
    if t0_fitted and n_boot:
        # t0 is re-estimated in every replicate (a parabola through three trial values of
        # log t0 around the full-data estimate), so the bands carry its uncertainty
        h = 0.03
        for j, lt in enumerate((np.log10(t0) - h, np.log10(t0), np.log10(t0) + h)):
            fits[j] = _device_fits(pv, 10.0**lt)
    for b in range(n_boot):
        picks = [ix[rng.integers(0, ix.size, ix.size)] for ix in idx]
        cur = (nu, S, rss, dof)
        if fits:
            allp = np.concatenate(picks)
            c = [_profile_cost(*fits[j], sel=allp, groups=index_groups(picks)) for j in range(3)]
            den = c[0] - 2 * c[1] + c[2]
            step = 0.5 * (c[0] - c[2]) / den if den > 0 else 0.0
            lt_b = np.log10(t0) + h * float(np.clip(step, -1.0, 1.0))
            cur = _device_fits(pv, 10.0**lt_b)
        rows = [level_stats(cur[0][pk], cur[1][pk], cur[2][pk], cur[3][pk],
                             np.ones(pk.size, bool)) for pk in picks]
        r = np.array(rows)
        bm[b] = s_mu(grid, r[:, 0])
        bsg[b] = np.maximum(s_sig(grid, r[:, 1]), 0.0)
        bq[b] = np.maximum(s_q(grid, r[:, 3]), 0.0)
    block = FittedPowerLaw(mu_nu=FittedCurve(grid, s_mu(grid), "1", bm),
                          sigma_nu=FittedCurve(grid, np.maximum(s_sig(grid), 0.0), "1", bsg),
                          t0=t0, q_read=FittedCurve(grid, np.maximum(s_q(grid), 0.0), "1", bq),
                          t_r=T_R)
    ch = {"mu_nu": s_mu.choice, "sigma_nu": s_sig.choice, "q_read": s_q.choice}
    info = PowerLawInfo(levels_g=gk, mu_nu=mu, sigma_nu=sig, sigma_nu_raw=raw, q_read=q, t0=t0,
                        t0_fitted=t0_fitted, choices=ch,
                        censoring=check_censoring(pv, lev, keep)[0])
    return block, info
