"""Read-noise structure of the power-law fit: per-device fits at trial t0 and
independent share w, the shared w, t0 by likelihood, and the structure chosen by held-out
likelihood (:func:`choose_structure`).

The reads of a device, ln g(t_k) = a - nu L_k + e_k, carry 1/f read noise e of a
:class:`~xbarlab.devices.blocks.ReadNoiseStructure` with covariance A^2 C(w),
C(w) = (1 - w) min(u_j, u_k) + w u_k delta_jk (w = 0: accumulated, a random walk in u;
w = 1: drawn independently at every read; between: their sum), L_k = ln((t_k + t0)/t0),
u_k = ln((t_k + t0 + t_r)/(2 t_r)). The algebra is that of
:mod:`~xbarlab.calibration.readnoise`; :mod:`~xbarlab.calibration.powerlaw` turns the
fits into curves across levels.
"""

from __future__ import annotations

import numpy as np

from ..devices.blocks import ReadNoiseStructure
from ..errors import ConfigError
from .readnoise import contrast_loglik, gls_fits, reml_cost, share_groups

#: Duration of one read, t_r of the 1/f clock u = ln((t + t0 + t_r)/(2 t_r)) [s].
T_R = 250e-9

#: Held-out gain per read, in standard errors, that "both" needs over the better single
#: read-noise structure to be chosen (it has one more parameter per level).
BOTH_MARGIN_SE = 2.0
#: The likelihood that fits t0 under independent or "both" read noise: "profile" (each
#: device's exponent profiled, each level's Q^2 profiled) or "marginal" (the exponent
#: integrated over its level's normal). On log-normal reads of t0 = 20 s (4 targets x
#: 5,000 devices, independent noise) "profile" gave t0 = 18.9 s from reads at 1 s - 1 y
#: and 17.4 s from reads up to 1 d, mu_nu 0.5 % and 2 % low; "marginal" 20.6 s and 21.0
#: s, mu_nu within 0.3 %. Tech C's drift choice (held-out likelihood) keeps the
#: relaxation table under either (11.84 per read against the power law's 10.82 under
#: "profile", 11.40 under "marginal").
T0_LIKELIHOOD = "marginal"
#: Trial t0 [s] of the coarse search (:func:`best_t0`).
T0_GRID = np.geomspace(0.1, 1000.0, 21)
#: The grid of the independent share w [1] over which its likelihood is evaluated.
W_GRID = np.linspace(0.0, 1.0, 21)
#: Largest read-noise std in ln g at a level's last read, sqrt(A^2 u) from the fit at
#: w = 1/2, of the levels whose restricted likelihood fits the shared independent share
#: w under "both". Above it ln g departs from a normal (noise on g of a few tens of
#: percent is skewed in ln g and clamped at 0 S), which reads as extra independent noise:
#: on the PCM round trips with both read noises (each part of amplitude Q_s, truth
#: w = 1/2; reads at 1 s - 1 y; nine draws) w was 0.51-0.61 fitted on every level and
#: 0.49-0.54 fitted on these levels (there the targets >= 6 uS).
W_LEVELS_BELOW = 0.2
#: The independent share w [1] of each single structure.
PURE_W = {ReadNoiseStructure.RANDOM_WALK: 0.0, ReadNoiseStructure.INDEPENDENT: 1.0}


def level_stats(nu, S, rss, dof, sel):
    """Per-level moments of per-device fits (``nu`` [1], ``S``, ``rss``, ``dof`` from
    :func:`~xbarlab.calibration.readnoise.gls_fits` or the increment fit) over the devices
    ``sel`` with a finite fit: (mu_nu, sigma_nu deconvolved with the read noise, the raw
    spread of the estimates, the read-noise amplitude A = sqrt(pooled rss / dof), all [1];
    the number of devices)."""
    good = sel & np.isfinite(nu) & (S > 0) & (dof >= 1)
    q2 = rss[good].sum() / max(dof[good].sum(), 1)
    mu = nu[good].mean()
    raw = nu[good].var(ddof=1)
    sig2 = raw - q2 * np.mean(1 / S[good])
    return mu, np.sqrt(max(sig2, 0.0)), np.sqrt(raw), np.sqrt(q2), int(good.sum())


class Reads:
    """Log reads [ln S], usable-read mask and read times [s] of devices ``rows``, taken
    once for the many fits at trial t0 and w; devices sharing a read schedule share
    their covariance and design (:func:`~xbarlab.calibration.readnoise.share_groups`)."""

    def __init__(self, pv, rows):
        g = pv.g[rows]
        self.t = np.where(np.isfinite(pv.t[rows]), pv.t[rows], pv.tp[None, :])
        self.ok = np.isfinite(g) & (g > 0)
        self.y = np.log(np.where(self.ok, g, 1.0))
        self.share = share_groups(self.t, self.ok)
        self._by_level = (None, None)

    def clocks(self, t0):
        """Drift clock L and 1/f clock u [1] of every read at ``t0`` [s]."""
        first, inverse = self.share
        tg = self.t[first]
        return (np.log((tg + t0) / t0)[inverse],
                np.log((tg + t0 + T_R) / (2 * T_R))[inverse])

    def level_share(self, groups):
        """:func:`~xbarlab.calibration.readnoise.share_groups` of these devices by read
        schedule and level (``groups``: index arrays, one per level), kept for the last
        ``groups`` asked."""
        if self._by_level[0] is not groups:
            lev = np.full(self.y.shape[0], -1.0)
            for i, ix in enumerate(groups):
                lev[ix] = i
            self._by_level = (groups, share_groups(self.t, self.ok, lev))
        return self._by_level[1]

    def gls(self, t0, w_dev):
        """:func:`~xbarlab.calibration.readnoise.gls_fits` at ``t0`` [s] and per-device
        independent shares ``w_dev`` [1]."""
        w = np.broadcast_to(np.asarray(w_dev, dtype=np.float64), (self.y.shape[0],))
        share = self.share if np.all(w == w[0]) else share_groups(self.t, self.ok, w)
        L, u = self.clocks(t0)
        return gls_fits(self.y, L, u, self.ok, w, share=share)


def best_t0(cost, lt0=None):
    """t0 [s] minimising ``cost(log10 t0)``: the grid, or a bracket around ``lt0``, then a
    bounded scalar minimisation."""
    from scipy.optimize import minimize_scalar

    lg = np.log10(T0_GRID) if lt0 is None else lt0 + np.array([-0.3, 0.0, 0.3])
    c = np.array([cost(v) for v in lg])
    i = int(np.argmin(c))
    lo, hi = lg[max(i - 1, 0)], lg[min(i + 1, lg.size - 1)]
    res = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3})
    return float(10.0 ** res.x)


def w_fits(reads, t0):
    """Per-device fits (:meth:`Reads.gls`) at every independent share w [1] of
    :data:`W_GRID`, at ``t0`` [s]."""
    return [reads.gls(t0, np.full(reads.y.shape[0], w)) for w in W_GRID]


def w_levels(fits_w, reads, t0, groups):
    """The levels (boolean per group) whose read-noise std in ln g at their last usable
    read, from the fits at w = 1/2 of :func:`w_fits` at ``t0`` [s], is at most
    :data:`W_LEVELS_BELOW`; when none is, the quarter (at least one) of the smallest."""
    f = fits_w[int(np.argmin(np.abs(W_GRID - 0.5)))]
    _, u = reads.clocks(t0)
    u_last = np.where(reads.ok, u, 0.0).max(axis=1)
    std = np.full(len(groups), np.inf)
    for k, ix in enumerate(groups):
        good = ix[f["dof"][ix] >= 1]
        d = f["dof"][good].sum()
        if d > 0:
            std[k] = np.sqrt(f["rss"][good].sum() / d * u_last[good].max())
    use = std <= W_LEVELS_BELOW
    if groups and not use.any():
        use = std <= np.sort(std)[max(len(groups) // 4, 1) - 1]
    return use


def pick_w(fits_w, groups, shared, use=None):
    """Independent share w in [0, 1] of each level, or one shared by all levels (from the
    levels ``use``, boolean per group, default all), from :func:`w_fits` (restricted
    likelihood over the grid of w, refined by a parabola through the best grid point and
    its neighbours). Raises ConfigError if ``use`` is not one boolean per group or
    selects no level."""
    if use is not None:
        use = np.asarray(use)
        if use.dtype != bool or use.shape != (len(groups),) or not use.any():
            raise ConfigError(f"use must be one boolean per level ({len(groups)}) selecting "
                              f"at least one, got {use.dtype} of shape {use.shape}")
    if shared:
        # one sum of the restricted likelihood over the chosen levels only
        picked = [ix for ix, k in zip(groups, use, strict=True) if k] if use is not None \
            else list(groups)
        costs = np.array([[reml_cost(f, picked)] for f in fits_w])
        costs = np.repeat(costs, len(groups), axis=1)
    else:
        costs = np.array([[reml_cost(f, [ix]) for ix in groups] for f in fits_w])
    out = np.empty(len(groups))
    for k in range(len(groups)):
        i = int(np.argmin(costs[:, k]))
        w = W_GRID[i]
        if 0 < i < W_GRID.size - 1:
            c0, c1, c2 = costs[i - 1:i + 2, k]
            den = c0 - 2 * c1 + c2
            if den > 0:
                w += 0.5 * (c0 - c2) / den * (W_GRID[1] - W_GRID[0])
        out[k] = np.clip(w, 0.0, 1.0)
    return out


def structure_fit(pv, rows, groups, structure, t0, *, shared_w=False, normal_levels=False):
    """Fit one read-noise structure to devices ``rows`` (``groups``: index arrays into
    ``rows``, one per level): ``(t0 [s], w per level, per-device fits)``. t0 (when None)
    maximises the likelihood of :data:`T0_LIKELIHOOD` (:func:`t0_cost`) and, under ``BOTH``,
    each level's independent share w the restricted likelihood (alternately: t0 at
    w = 1/2, w, then t0 again); ``shared_w``: one w for all levels, with
    ``normal_levels`` from the levels of :func:`w_levels` only. Returns ``(t0, w, fits,
    use)``, ``use`` the levels that fitted w (None: all). ``normal_levels`` without
    ``shared_w`` raises ConfigError (a level's own w has no levels to choose from)."""
    if normal_levels and not shared_w:
        raise ConfigError("normal_levels chooses the levels that fit a shared w; it needs "
                          "shared_w=True")

    def w_dev(w_lev):
        out = np.zeros(rows.size)
        for ix, w in zip(groups, w_lev, strict=True):
            out[ix] = w
        return out

    reads = Reads(pv, rows)
    w_lev = np.full(len(groups), PURE_W.get(structure, 0.5))
    rounds = 2 if structure is ReadNoiseStructure.BOTH else 1
    t_fit, use = t0, None
    for r in range(rounds):
        if t0 is None:
            wd = w_dev(w_lev)
            t_fit = best_t0(lambda lt, wd=wd: t0_cost(pv, rows, groups, reads,
                                                        10.0**lt, wd)(groups),
                             None if r == 0 else np.log10(t_fit))
        if structure is ReadNoiseStructure.BOTH:
            fits_w = w_fits(reads, t_fit)
            if shared_w and normal_levels and use is None:
                use = w_levels(fits_w, reads, t_fit, groups)
            w_lev = pick_w(fits_w, groups, shared_w, use)
    return t_fit, w_lev, reads.gls(t_fit, w_dev(w_lev)), use


def t0_cost(pv, rows, groups, reads, t0, wd):
    """The -2 log-likelihood that chooses t0 under :data:`T0_LIKELIHOOD` at ``t0`` [s]
    with the independent shares ``wd`` (per device of ``rows``) [1], as a function of the
    devices (index arrays into ``rows``, one per level: ``groups`` or a resample of it):
    "profile", :func:`~xbarlab.calibration.readnoise.reml_cost` of the reads' contrasts
    (nu profiled per device, each level's Q^2 profiled); "marginal", of the contrasts
    with nu integrated over its level's N(mu_nu, sigma_nu^2) (:func:`contrast_loglik`),
    each level's mu_nu, sigma_nu and Q^2 the moments of the GLS fits of ``groups`` at
    ``t0``."""
    f = reads.gls(t0, wd)
    if T0_LIKELIHOOD == "profile":
        return lambda picks: reml_cost(f, picks, restricted=False)
    stats = [level_stats(f["nu"][ix], f["S"][ix], f["rss"][ix], f["dof"][ix],
                          np.ones(ix.size, bool)) for ix in groups]
    w_lev = [wd[ix[0]] if ix.size else 0.0 for ix in groups]
    lp = held_out_score(pv, rows, groups, t0, w_lev, stats, reads)[0]
    return lambda picks: -2.0 * float(lp[np.concatenate(picks)].sum())


def held_out_score(pv, rows, groups, t0, w_lev, stats, reads=None):
    """Held-out :func:`contrast_loglik` of devices ``rows`` at ``t0`` [s] with each
    level's (mu [1], sigma [1], Q^2 [1], w [1]) (``w_lev`` per level, ``stats`` the
    :func:`level_stats` rows): per-device log-likelihoods [ln(1/S)] and read counts
    (``reads``: the :class:`Reads` of ``rows`` when the caller has it)."""
    reads = Reads(pv, rows) if reads is None else reads
    L, u = reads.clocks(t0)
    par = np.zeros((rows.size, 4))
    for ix, w, st in zip(groups, w_lev, stats, strict=True):
        par[ix] = (st[0], st[1], st[3] ** 2, w)
    return contrast_loglik(reads.y, L, u, reads.ok, mu=par[:, 0], s=par[:, 1],
                           a2=par[:, 2], w=par[:, 3], share=reads.level_share(groups))


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
    g_tr = index_groups(train)
    g_te = index_groups(test)
    ll, per_dev, w_both = {}, {}, None
    for st in ReadNoiseStructure:
        t_s, w_lev, f, _ = structure_fit(pv, rows_tr, g_tr, st, t0, shared_w=True)
        stats = [level_stats(f["nu"][ix], f["S"][ix], f["rss"][ix], f["dof"][ix],
                              np.ones(ix.size, bool)) for ix in g_tr]
        lp, n = held_out_score(pv, rows_te, g_te, t_s, w_lev, stats)
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


def index_groups(parts):
    """Index arrays into the concatenation of ``parts`` (arrays), one per part."""
    out, start = [], 0
    for p in parts:
        out.append(np.arange(start, start + p.size))
        start += p.size
    return out
