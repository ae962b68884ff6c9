"""PCM-like drift fit: per-device power law with a read-noise-corrected exponent spread.

Model of the reads of one device: ln g(t_k) = a - nu L_k + e_k with
L_k = ln((t_k + t0)/t0), u_k = ln((t_k + t0 + t_r)/(2 t_r)) and e the 1/f read noise of
a :class:`~xbarlab.devices.blocks.ReadNoiseStructure`, chosen by held-out likelihood
(:func:`choose_structure`): accumulated, Q W(u_k) with W a Wiener process; drawn
independently at every read, Q sqrt(u_k) z_k; or the sum of both. The two latter are
fitted by per-device generalised least squares under their covariance
(:func:`~xbarlab.calibration.readnoise.gls_fits`, :func:`structure_fit`) with the same
per-level moments as below. For the random walk, increments of consecutive reads are
independent:
dy = -nu dL + Q dW, var(dW) = du, so the generalised-least-squares exponent of a device
is nu_hat = -sum(dy dL/du) / S with S = sum(dL^2/du) and var(nu_hat | nu) = Q^2/S. Per
level, Q^2 is the pooled residual variance per unit u and the device-to-device spread is
deconvolved: sigma_nu^2 = var(nu_hat) - Q^2 mean(1/S) (a method-of-moments hierarchical
fit). t0 maximises the profile likelihood with each level's own Q^2. Curves across
levels are smoothed with the degree chosen by cross-validation; bootstrap replicates
resample devices.

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

from dataclasses import dataclass, field

import numpy as np

from ..devices.blocks import ReadNoiseStructure
from ..devices.curves import FittedCurve
from ..devices.fitted import FittedPowerLaw
from ..enums import coerce_enum
from .readnoise import contrast_loglik, gls_fits, reml_cost, share_groups
from .smooth import smooth_cv

T_R = 250e-9
_T0_GRID = np.geomspace(0.1, 1000.0, 21)
#: Largest share of censored reads (<= 0 S) among the reads of cells with positive reads.
MAX_CENSORED = 0.10
#: Fewest cells per level with >= 3 positive reads a power-law fit needs.
MIN_USABLE = 5
#: Held-out gain per read, in standard errors, that "both" needs over the better single
#: read-noise structure to be chosen (it has one more parameter per level).
BOTH_MARGIN_SE = 2.0
_W_GRID = np.linspace(0.0, 1.0, 21)
_PURE_W = {ReadNoiseStructure.RANDOM_WALK: 0.0, ReadNoiseStructure.INDEPENDENT: 1.0}


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


def _level_stats(nu, S, rss, dof, sel):
    good = sel & np.isfinite(nu) & (S > 0) & (dof >= 1)
    q2 = rss[good].sum() / max(dof[good].sum(), 1)
    mu = nu[good].mean()
    raw = nu[good].var(ddof=1)
    sig2 = raw - q2 * np.mean(1 / S[good])
    return mu, np.sqrt(max(sig2, 0.0)), np.sqrt(raw), np.sqrt(q2), int(good.sum())


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
    from scipy.optimize import minimize_scalar

    def cost(lt0):
        return _profile_cost(*_device_fits(pv, 10.0**lt0), groups=groups)

    lg = np.log10(_T0_GRID)
    c = np.array([cost(v) for v in lg])
    i = int(np.argmin(c))
    lo, hi = lg[max(i - 1, 0)], lg[min(i + 1, lg.size - 1)]
    res = minimize_scalar(cost, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-3})
    return float(10.0 ** res.x)


def first_positive(pv):
    """Column index of each device's earliest positive read (its earliest read when it
    has none) and the time of that read [s]."""
    pos = np.isfinite(pv.g) & (pv.g > 0)
    first = np.where(pos.any(axis=1), np.argmax(pos, axis=1),
                     np.argmax(np.isfinite(pv.g), axis=1))
    rows = np.arange(pv.n_dev)
    t1 = np.where(np.isfinite(pv.t[rows, first]), pv.t[rows, first], pv.tp[first])
    return first, t1


def _design(pv, t0, rows):
    """Log reads, drift clock L, 1/f clock u and usable-read mask of devices ``rows``."""
    g = pv.g[rows]
    t = np.where(np.isfinite(pv.t[rows]), pv.t[rows], pv.tp[None, :])
    ok = np.isfinite(g) & (g > 0)
    y = np.log(np.where(ok, g, 1.0))
    return y, np.log((t + t0) / t0), np.log((t + t0 + T_R) / (2 * T_R)), ok


class _Reads:
    """Log reads [ln S], usable-read mask and read times [s] of devices ``rows``, taken
    once for the many fits at trial t0 and w; devices sharing a read schedule share
    their covariance and design (:func:`~xbarlab.calibration.readnoise.share_groups`)."""

    def __init__(self, pv, rows):
        g = pv.g[rows]
        self.t = np.where(np.isfinite(pv.t[rows]), pv.t[rows], pv.tp[None, :])
        self.ok = np.isfinite(g) & (g > 0)
        self.y = np.log(np.where(self.ok, g, 1.0))
        self.share = share_groups(self.t, self.ok)

    def gls(self, t0, w_dev):
        """:func:`~xbarlab.calibration.readnoise.gls_fits` at ``t0`` [s] and per-device
        independent shares ``w_dev`` [1]."""
        w = np.broadcast_to(np.asarray(w_dev, dtype=np.float64), (self.y.shape[0],))
        share = self.share if np.all(w == w[0]) else share_groups(self.t, self.ok, w)
        first, inverse = self.share
        tg = self.t[first]
        L = np.log((tg + t0) / t0)[inverse]
        u = np.log((tg + t0 + T_R) / (2 * T_R))[inverse]
        return gls_fits(self.y, L, u, self.ok, w, share=share)


def _best_t0(cost, lt0=None):
    """t0 [s] minimising ``cost(log10 t0)``: the grid, or a bracket around ``lt0``, then a
    bounded scalar minimisation."""
    from scipy.optimize import minimize_scalar

    lg = np.log10(_T0_GRID) if lt0 is None else lt0 + np.array([-0.3, 0.0, 0.3])
    c = np.array([cost(v) for v in lg])
    i = int(np.argmin(c))
    lo, hi = lg[max(i - 1, 0)], lg[min(i + 1, lg.size - 1)]
    res = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return float(10.0 ** res.x)


def _w_fits(reads, t0):
    """Per-device fits at every independent share w of the grid (t0 fixed)."""
    return [reads.gls(t0, np.full(reads.y.shape[0], w)) for w in _W_GRID]


def _pick_w(fits_w, groups, shared):
    """Independent share w in [0, 1] of each level, or one shared by all levels, from
    :func:`_w_fits` (restricted likelihood over the grid of w, refined by a parabola
    through the best grid point and its neighbours)."""
    costs = np.array([[reml_cost(f, [ix]) for ix in groups] for f in fits_w])
    if shared:
        costs = np.repeat(costs.sum(axis=1, keepdims=True), len(groups), axis=1)
    out = np.empty(len(groups))
    for k in range(len(groups)):
        i = int(np.argmin(costs[:, k]))
        w = _W_GRID[i]
        if 0 < i < _W_GRID.size - 1:
            c0, c1, c2 = costs[i - 1:i + 2, k]
            den = c0 - 2 * c1 + c2
            if den > 0:
                w += 0.5 * (c0 - c2) / den * (_W_GRID[1] - _W_GRID[0])
        out[k] = np.clip(w, 0.0, 1.0)
    return out


def structure_fit(pv, rows, groups, structure, t0, *, shared_w=False):
    """Fit one read-noise structure to devices ``rows`` (``groups``: index arrays into
    ``rows``, one per level): ``(t0 [s], w per level, per-device fits)``. t0 (when None)
    maximises the likelihood of the reads' contrasts (nu profiled) and, under ``BOTH``,
    each level's independent share w the restricted likelihood (alternately: t0 at
    w = 1/2, w, then t0 again); ``shared_w``: one w for all levels."""
    def w_dev(w_lev):
        out = np.zeros(rows.size)
        for ix, w in zip(groups, w_lev, strict=True):
            out[ix] = w
        return out

    reads = _Reads(pv, rows)
    w_lev = np.full(len(groups), _PURE_W.get(structure, 0.5))
    rounds = 2 if structure is ReadNoiseStructure.BOTH else 1
    t_fit = t0
    for r in range(rounds):
        if t0 is None:
            wd = w_dev(w_lev)
            t_fit = _best_t0(lambda lt, wd=wd: reml_cost(reads.gls(10.0**lt, wd), groups,
                                                         restricted=False),
                             None if r == 0 else np.log10(t_fit))
        if structure is ReadNoiseStructure.BOTH:
            w_lev = _pick_w(_w_fits(reads, t_fit), groups, shared_w)
    return t_fit, w_lev, reads.gls(t_fit, w_dev(w_lev))


def _score(pv, rows, groups, t0, w_lev, stats):
    """Held-out :func:`contrast_loglik` of devices ``rows`` with each level's (mu, sigma,
    Q^2, w): per-device log-likelihoods and read counts."""
    y, L, u, ok = _design(pv, t0, rows)
    par = np.zeros((rows.size, 4))
    for ix, w, st in zip(groups, w_lev, stats, strict=True):
        par[ix] = (st[0], st[1], st[3] ** 2, w)
    return contrast_loglik(y, L, u, ok, mu=par[:, 0], s=par[:, 1], a2=par[:, 2], w=par[:, 3])


def choose_structure(pv, lev, keep, *, t0, rng) -> tuple[ReadNoiseStructure, dict]:
    """The read-noise structure with the highest held-out log-likelihood per read.

    Each structure is fitted (:func:`structure_fit`, per-level mu_nu, sigma_nu, Q) on a
    random half of the devices of every level (``rng`` draws the split) and scores the
    reads of the other half after their first read (:func:`contrast_loglik`, joint over a
    device's reads). ``BOTH`` is scored with one independent share w for all levels (one
    parameter more than either single structure; a random walk in u much like a random
    drift exponent, the two are hard to tell apart level by level) and chosen only when
    its gain per read over the better single structure exceeds :data:`BOTH_MARGIN_SE`
    standard errors (paired over held-out devices). Returns the structure and the
    evidence: ``loglik`` (structure -> mean log-likelihood per read [ln(1/S)]),
    ``both_gain`` and ``both_gain_se`` [ln(1/S) per read], ``devices`` and ``reads``
    held out, ``w_both`` (the shared independent share under ``BOTH``) [1]."""
    idx = [np.nonzero(lev == L)[0] for L in keep]
    train, test = [], []
    for ix in idx:
        p = rng.permutation(ix)
        train.append(p[: p.size // 2])
        test.append(p[p.size // 2:])
    rows_tr, rows_te = np.concatenate(train), np.concatenate(test)
    g_tr = _groups(train)
    g_te = _groups(test)
    ll, per_dev, w_both = {}, {}, None
    for st in ReadNoiseStructure:
        t_s, w_lev, f = structure_fit(pv, rows_tr, g_tr, st, t0, shared_w=True)
        stats = [_level_stats(f["nu"][ix], f["S"][ix], f["rss"][ix], f["dof"][ix],
                              np.ones(ix.size, bool)) for ix in g_tr]
        lp, n = _score(pv, rows_te, g_te, t_s, w_lev, stats)
        per_dev[st] = (lp, n)
        ll[st.value] = float(lp.sum() / max(n.sum(), 1))
        if st is ReadNoiseStructure.BOTH:
            w_both = w_lev
    pure = max((ReadNoiseStructure.RANDOM_WALK, ReadNoiseStructure.INDEPENDENT),
               key=lambda s_: ll[s_.value])
    n = per_dev[pure][1]
    diff = per_dev[ReadNoiseStructure.BOTH][0] - per_dev[pure][0]
    gain = float(diff.sum() / max(n.sum(), 1))
    se = float(diff.std(ddof=1) * np.sqrt(diff.size) / max(n.sum(), 1)) if diff.size > 1 else np.inf
    inside = 0.0 < w_both[0] < 1.0  # at w = 0 or 1 "both" is a single structure
    choice = ReadNoiseStructure.BOTH if inside and gain > BOTH_MARGIN_SE * se else pure
    ev = {"loglik": ll, "both_gain": gain, "both_gain_se": se, "devices": int(rows_te.size),
          "reads": int(n.sum()), "w_both": float(w_both[0])}
    return choice, ev


def structure_summary(info: PowerLawInfo) -> str:
    """One sentence for the report: the fitted read-noise structure and what chose it
    (held-out log-likelihood per read of each structure, the gain of "both" with its
    standard error and shared share w)."""
    ev = info.read_noise_evidence
    amp = ("Q is the random walk's amplitude; the independent part's is listed as Q_i"
           if info.read_noise == "both" else "Q is its amplitude")
    if not ev:
        return f"Read noise: **{info.read_noise}** (asked for); {amp}."
    ll = ", ".join(f"{k}: {v:.4f}" for k, v in ev["loglik"].items())
    return (f"Read noise: **{info.read_noise}**, chosen by held-out log-likelihood per read "
            f"({ev['devices']} devices, {ev['reads']} reads after their first: {ll}); "
            f"'both' (one independent share w = {ev['w_both']:.3f} for all levels) gains "
            f"{ev['both_gain']:.5f} +- {ev['both_gain_se']:.5f} per read over the better "
            f"single structure and is taken only above {BOTH_MARGIN_SE:g} standard errors; "
            f"{amp}.")


def _groups(parts):
    """Index arrays into the concatenation of ``parts``."""
    out, start = [], 0
    for p in parts:
        out.append(np.arange(start, start + p.size))
        start += p.size
    return out


def fit_power_law(pv, lev, centres, keep, *, t0, rng, n_boot=100, read_noise="auto"):
    """Fit a :class:`FittedPowerLaw`; returns ``(block, info)``.

    ``read_noise``: "auto" (the structure chosen by :func:`choose_structure`, on a
    generator spawned from ``rng`` so that the bootstrap draws stay those of the other
    structures' fits) or a :class:`ReadNoiseStructure`. A random walk is fitted from
    read-to-read increments (:func:`_device_fits`); the other structures by per-device
    generalised least squares under their covariance (:func:`structure_fit`)."""
    evidence = {}
    if read_noise == "auto":
        structure, evidence = choose_structure(pv, lev, np.asarray(keep), t0=t0,
                                               rng=rng.spawn(1)[0])
    else:
        structure = coerce_enum(ReadNoiseStructure, read_noise, "read_noise")
    keep = np.asarray(keep)[np.argsort(centres[keep])]
    if structure is ReadNoiseStructure.RANDOM_WALK:
        block, info = _fit_random_walk(pv, lev, centres, keep, t0=t0, rng=rng, n_boot=n_boot)
    else:
        block, info = _fit_structure(pv, lev, centres, keep, structure, t0=t0, rng=rng,
                                     n_boot=n_boot)
    info.read_noise = structure.value
    info.read_noise_evidence = evidence
    return block, info


def _fit_structure(pv, lev, centres, keep, structure, *, t0, rng, n_boot):
    """Power law with independent (or both) read noise: GLS per device under the
    structure's covariance, per-level moments, curves smoothed, devices bootstrapped (t0
    re-estimated in every replicate as in :func:`_fit_random_walk`, and under "both" w:
    restricted likelihood of the replicate over the grid of w at the full-data t0).

    Under "both" the independent share w of the read-noise variance is one for all
    levels (a level's own w is poorly determined by a few reads per device: at 150
    devices per level it scatters over 0.2-1 around a truth of 0.5), so the two parts'
    amplitudes Q sqrt(1 - w) and Q sqrt(w) share the level dependence of Q."""
    t0_fitted = t0 is None
    idx = [np.nonzero(lev == L)[0] for L in keep]
    rows = np.concatenate(idx)
    groups = _groups(idx)
    t0, w_lev, f = structure_fit(pv, rows, groups, structure, t0, shared_w=True)
    reads = _Reads(pv, rows)
    gk = centres[keep]
    wd = np.concatenate([np.full(ix.size, w) for ix, w in zip(idx, w_lev, strict=True)])

    def stats(fits, picks):
        return np.array([_level_stats(fits["nu"][pk], fits["S"][pk], fits["rss"][pk],
                                      fits["dof"][pk], np.ones(pk.size, bool)) for pk in picks])

    st = stats(f, groups)
    mu, sig, raw, q, n = st.T
    q_rw, q_ind = q * np.sqrt(1 - w_lev), q * np.sqrt(w_lev)
    wt = n / np.maximum(raw, 1e-12) ** 2
    s_mu, s_sig = smooth_cv(gk, mu, wt), smooth_cv(gk, sig, wt)
    both = structure is ReadNoiseStructure.BOTH
    s_q = smooth_cv(gk, q_rw if both else q, n)
    s_qi = smooth_cv(gk, q_ind, n) if both else None
    grid = np.unique(np.concatenate([gk, np.linspace(gk.min(), gk.max(), 64)]))
    bm, bsg, bq, bqi = (np.zeros((n_boot, grid.size)) for _ in range(4))
    h = 0.03
    fits3 = ({j: reads.gls(10.0**lt, wd) for j, lt in
              enumerate((np.log10(t0) - h, np.log10(t0), np.log10(t0) + h))}
             if t0_fitted and n_boot else {})
    fits_w = _w_fits(reads, t0) if both and n_boot else []
    for b in range(n_boot):
        picks = [ix[rng.integers(0, ix.size, ix.size)] for ix in groups]
        cur, t_b, w_b = f, t0, w_lev
        if fits3:
            c = [reml_cost(fits3[j], picks, restricted=False) for j in range(3)]
            den = c[0] - 2 * c[1] + c[2]
            step = 0.5 * (c[0] - c[2]) / den if den > 0 else 0.0
            t_b = 10.0 ** (np.log10(t0) + h * float(np.clip(step, -1, 1)))
        if fits_w:
            w_b = _pick_w(fits_w, picks, True)
        if fits3 or fits_w:
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
                        q_independent=q_ind if both else np.zeros(0), w_independent=w_lev)
    return block, info


def _fit_random_walk(pv, lev, centres, keep, *, t0, rng, n_boot):
    """Power law with random-walk read noise, from read-to-read increments."""
    t0_fitted = t0 is None
    idx = [np.nonzero(lev == L)[0] for L in keep]
    t0 = choose_t0(pv, idx) if t0 is None else float(t0)
    nu, S, rss, dof, _ = _device_fits(pv, t0)
    gk = centres[keep]
    st = np.array([_level_stats(nu, S, rss, dof, lev == L) for L in keep])
    mu, sig, raw, q, n = st.T
    s_mu = smooth_cv(gk, mu, n / np.maximum(raw, 1e-12) ** 2)
    s_sig = smooth_cv(gk, sig, n / np.maximum(raw, 1e-12) ** 2)
    s_q = smooth_cv(gk, q, n)
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
            c = [_profile_cost(*fits[j], sel=allp, groups=_groups(picks)) for j in range(3)]
            den = c[0] - 2 * c[1] + c[2]
            step = 0.5 * (c[0] - c[2]) / den if den > 0 else 0.0
            lt_b = np.log10(t0) + h * float(np.clip(step, -1.0, 1.0))
            cur = _device_fits(pv, 10.0**lt_b)
        rows = [_level_stats(cur[0][pk], cur[1][pk], cur[2][pk], cur[3][pk],
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
