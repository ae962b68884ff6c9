"""RRAM-like relaxation fit: level-conditioned change since the first read, in log time.

At each measured time the change d = g(t) - g_0 of a level is represented by quantiles
conditioned on where the cell's first read g_0 landed in its level,
Q(p | g_0) = q(p) + s(p) (g_0 - g_ref) (:func:`conditional_quantiles`: a location-scale
law); per measured time the levels' rows
of q and s are smoothed across levels (a polynomial in g, a local-linear fit over
neighbouring levels, or none, chosen by Stein's unbiased estimate of the error against
the truth, with each row's noise from the difference of its two halves:
:func:`~.smooth.smooth_rows_cv`; slopes left unpooled are shrunk by their standard
errors, so that a level without a resolvable dependence keeps its empirical quantiles),
since one level's quantiles from ~1,000 cells carry as much sampling noise as the
held-out reads they are scored on (levels read at 0 S on more than CLAMPED of their
cells keep their own rows). Levels given by a level
column (labelled) may overlap in the first read; the table then takes each cell's level
with its first read (``RelaxationTable.level_by_label``). Beyond the last measured time the
change at each level's reference grows in variance linearly in v = u - u0,
u = ln(1 + t/tau), and in mean linearly in v_m = u_m - u0_m, u_m = ln(1 + t/tau_m)
(u0, u0_m: the last time without any change; tau from the variances' misfit, tau_m from
the means', each on the same least-squares footing as its slope), slopes through the
origin smoothed across levels (degree chosen by cross-validation). The added variance is
an increment independent of the change so far but of the same standardised shape as the
last anchor's change (a level that relaxes with a skewed change keeps relaxing with one),
so the tails seen at short times are diluted as the increments add up, but not to a
normal; the within-level slope scales with the mean and the spread.
A second form, "geometric", continues each quantile of the conductance at the level's
reference on its own trajectory: its logarithm keeps its least-squares slope against v_m
over the anchors, decay only (a PCM cell's conductance g_0 D^-nu decays geometrically in
log time, a cell that drifted more so far keeps drifting faster, and none crosses 0 S by
drifting). Which extrapolation form (FORMS: these increments, the geometric decay, or
carrying the last law forward) is used is decided by a held-out time point: each level's
last well-read time predicted from the anchors at least SPAN_HELD earlier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..devices.relaxation_table import RelaxationTable, sorted_quantiles
from .goodness import ks_distance
from .smooth import smooth_cv, smooth_rows_cv

N_P = 201
_TAUS = np.logspace(-4, 0, 17)
#: Extrapolation forms beyond the last measured time (see :func:`fit_relaxation`).
FORMS = ("increments", "persistence", "geometric")
#: The held-out time is predicted from anchors at least this factor earlier [1].
SPAN_HELD = 10.0
#: Within-level slopes that are not pooled across levels are shrunk by
#: max(0, 1 - SHRINK se^2 / slope^2) [1] (4: a slope under twice its standard error is
#: dropped). Slopes smoothed across levels are pooled unshrunk: shrunk first, every
#: level's slope moved toward 0 together and the pooled slope with them, so cells
#: programmed far below their target changed as much as those at it (the shipped PCM
#: example's 1.25 uS cells at 0 S at 1 d: 1.19 %, unshrunk 0.80 %, preset 0.45 %).
SHRINK = 4.0
#: A (level, time) whose reads are at 0 S (clamped) on more than this share of its cells
#: keeps its own rows and is left out of the smoothing across levels [1]: its law is
#: censored, unlike its neighbours' (smoothed with them, the shipped PCM example's lowest
#: target read 0 S at 1 y on 40 % of the cells, against 30 % left out and 23 % in the
#: generating preset).
CLAMPED = 0.01
#: Beyond the last anchor the within-level slope's mean scales with the mean of the change
#: only where that mean exceeds this many standard errors at the anchor [1] (else it is held:
#: a ratio of a mean near 0 S is noise; scaling it anyway put set (iii) of the synthetic
#: round trips, fitted to 1 d, at 1.44-2.39x the sampling floor at 7 d-1 y).
MEAN_RESOLVED = 2.0
#: At least this many cells at 0 S at the first read are needed to estimate the probability
#: that such a cell stays at 0 S (:func:`_zero_stay`; fewer: none stays) [1].
ZERO_CELLS = 5
#: At most this many of them (evenly spaced) estimate the table's own share at 0 S [1].
ZERO_SAMPLE = 20_000


@dataclass
class RelaxationInfo:
    """What the relaxation fit decided: ``tau`` [s] and ``tau_mean`` [s] (the time scales of
    the variance's and the mean's growth), per-level slopes ``beta`` [S] and
    ``gamma`` [S^2] per unit of u of the mean and variance of the change (through the
    origin; they extend a level without anchors), the smoothing choices, the table times [s]
    and the last measured time used [s]; ``within_level``: whether the change is conditioned on the
    first read within a level; ``extrapolation``: the form chosen (one of FORMS);
    ``extrapolation_ks``: each form's median KS over levels [1] at the held-out time
    ``t_holdout`` [s] (NaN: no level had enough anchors, the first form is used);
    ``growth_mean`` [S] and ``growth_var`` [S^2]: per level, the smoothed growth per unit
    of v_m of the mean and per unit of v of the variance of the change at the level's
    reference, smoothed across levels by ``growth_choice`` (mean, variance: the
    :func:`~.smooth.smooth_cv` candidates chosen); ``zero_cells``: cells at 0 S at the first
    read, ``zero_share`` [1]: the share of their later reads at 0 S (NaN: none),
    ``zero_table`` [1]: the share the table's own changes would leave there,
    ``zero_stay`` [1]: the probability that such a cell stays at 0 S (:func:`_zero_stay`);
    ``level_smoothing``: per measured time [s], how the quantile rows q and the slopes s
    were smoothed across levels (:func:`~.smooth.smooth_rows_cv`'s choices). The stored
    bootstrap bands follow the chosen form beyond the last anchor
    (:func:`_bootstrap_moments`)."""

    tau: float = np.nan
    tau_mean: float = np.nan
    levels_g: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gamma: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beta_choice: str = ""
    gamma_choice: str = ""
    t_table: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t_fit_max: float = np.nan
    within_level: bool = False
    extrapolation: str = ""
    extrapolation_ks: dict = field(default_factory=dict)
    t_holdout: float = np.nan
    growth_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    growth_var: np.ndarray = field(default_factory=lambda: np.zeros(0))
    growth_choice: tuple = ("", "")
    level_smoothing: dict = field(default_factory=dict)
    zero_cells: int = 0
    zero_share: float = np.nan
    zero_table: float = np.nan
    zero_stay: float = 0.0


def _zero_stay(block, pv, cols, t_nom, g_level):
    """``(cells, share, table, s)`` for the cells at 0 S at the first read (``pv.g0``):
    their number, the share of their later reads (``pv.g[:, cols]``, finite ones) at 0 S
    [1], the share ``z`` that ``block``'s own changes would leave at 0 S (a change <= 0 S
    from g_0 = 0 S, over a grid of deviates, at each read's nominal time ``t_nom`` [s], the
    cell's level coordinate ``g_level`` [S] or None) and the probability that such a cell
    stays at 0 S for good, s = (share - z) / (1 - z) clipped to [0, 1] (0 with fewer than
    :data:`ZERO_CELLS` cells): cells that stay read 0 S always, the others as the table
    says. NaN share and table where no cell reads 0 S."""
    zero = np.nonzero(pv.g0 == 0)[0]
    later = pv.g[zero][:, cols]
    seen = np.isfinite(later)
    if not seen.any():
        return zero.size, np.nan, np.nan, 0.0
    share = float(np.mean(later[seen] == 0))
    pg = (np.arange(101) + 0.5) / 101
    n = zero.size
    # z from at most ZERO_SAMPLE of the cells, evenly spaced (memory: cells x 101 deviates)
    sub = np.arange(0, n, max(1, -(-n // ZERO_SAMPLE)))
    zero, later, seen = zero[sub], later[sub], seen[sub]
    lv = None if g_level is None else np.repeat(g_level[zero], pg.size)
    z = np.empty(later.shape)
    for j, t in enumerate(t_nom):
        d = block.delta(np.zeros(sub.size * pg.size), float(t), np.tile(pg, sub.size), lv)
        z[:, j] = np.mean(d.reshape(sub.size, pg.size) <= 0, axis=1)
    z_mean = float(np.mean(z[seen]))
    if n < ZERO_CELLS or z_mean >= 1.0:
        return n, share, z_mean, 0.0
    return n, share, z_mean, float(np.clip((share - z_mean) / (1.0 - z_mean), 0.0, 1.0))


def _slopes(us, mus, vs):
    """Least-squares slopes through the origin of mean and variance against u."""
    uu = us @ us
    if not uu > 0:  # no read after the first at this level (a thin bootstrap draw): no slope
        return 0.0, 0.0
    return (us @ mus) / uu, (us @ vs) / uu


def _grid_tau(cost) -> float:
    """The tau [s] of the grid _TAUS with the smallest ``cost(tau)`` (the first on ties)."""
    costs = [cost(tau) for tau in _TAUS]
    return float(_TAUS[int(np.argmin(costs))])


def _choose_tau(cells):
    """tau minimising the misfit of log variance = log(gamma u) over all (level, time) cells."""
    def cost(tau):
        c = 0.0
        for ts, _, vs, _ in cells:
            if ts.size < 2:
                continue
            u = np.log1p(ts / tau)
            g = max((u @ vs) / (u @ u), 1e-300)
            c += np.sum((np.log(np.maximum(vs, 1e-300)) - np.log(g * u)) ** 2)
        return c

    return _grid_tau(cost)


def _choose_tau_mean(levels):
    """tau_m minimising the misfit of the mean of the change, mean = b v_m with
    v_m = ln(1 + t/tau_m) - u0_m, b the least-squares slope through the origin over each
    level's anchors after its last time without any change (as the growth slope is
    fitted), summed over levels; the first of the grid where no level has such anchors."""
    def cost(tau):
        c = 0.0
        for lv in levels:
            um = np.log1p(lv["t"] / tau)
            v = um - float(np.max(um[lv["zero"]], initial=0.0))
            ok = v > 0
            if ok.any():
                b = _slopes(v[ok], lv["ms"][ok], lv["vs"][ok])[0]
                c += np.sum((lv["ms"][ok] - b * v[ok]) ** 2)
        return c

    return _grid_tau(cost)


def _sum_quantiles(z, a, b, p, n_fine=4000):
    """Quantiles at ``p`` of ``a z1 + b z2``, z1 and z2 independent, each with the quantile
    function ``z`` on ``p`` (histograms on a fine grid convolved by FFT, then the CDF
    inverted)."""
    if not b > 0:
        return a * z
    from scipy.signal import fftconvolve

    zf = np.interp((np.arange(n_fine) + 0.5) / n_fine, p, z)
    x1, x2 = a * zf, b * zf
    n = 4096
    span = (x1.max() - x1.min()) + (x2.max() - x2.min())
    dx = span / n if span > 0 else 1.0
    h1 = np.histogram(x1, bins=x1.min() + np.arange(n + 1) * dx)[0].astype(np.float64)
    h2 = np.histogram(x2, bins=x2.min() + np.arange(n + 1) * dx)[0].astype(np.float64)
    dens = fftconvolve(h1, h2, mode="full")
    return _density_quantiles(dens, x1.min() + x2.min() + np.arange(dens.size + 1) * dx, p)


def _density_quantiles(dens, edges, p):
    """Quantiles at ``p`` (clipped to [5e-4, 1 - 5e-4]) of a histogram density ``dens`` on
    bins ``edges`` (one more than ``dens``), by inverting its cumulative sum linearly
    within bins; FFT round-off below 0 is set to 0."""
    F = np.concatenate([[0.0], np.cumsum(np.maximum(dens, 0.0))])
    F /= F[-1]
    # F is non-decreasing; interp needs strictly increasing abscissae
    keep = np.concatenate([[True], np.diff(F) > 0])
    return np.interp(np.clip(p, 5e-4, 1 - 5e-4), F[keep], edges[keep])


def _mixture_quantiles(d, m, s2, p):
    """Quantiles at p of the mixture mean_i N(d_i + m, s2): the sample's histogram on a
    fine grid convolved with the normal kernel (FFT), then the CDF inverted."""
    if s2 <= 0:
        return np.quantile(d + m, p)
    from scipy.signal import fftconvolve

    s = np.sqrt(s2)
    lo = d.min() + m - 7 * s
    hi = d.max() + m + 7 * s
    n = 4096
    edges = np.linspace(lo, hi, n + 1)
    dx = edges[1] - edges[0]
    hist = np.histogram(d + m, bins=edges)[0].astype(np.float64)
    half = min(int(np.ceil(7 * s / dx)), n)
    xk = np.arange(-half, half + 1) * dx
    kern = np.exp(-0.5 * (xk / s) ** 2)
    return _density_quantiles(fftconvolve(hist, kern / kern.sum(), mode="same"), edges, p)


def _pool(values, counts, pool_below):
    """Per level, ``{time: array}`` of ``values``; a sparsely measured (level, time) (fewer
    than ``pool_below`` devices and fewer than half of the level's most-read time) averages
    its array with the neighbour levels' (weights min(n_nb/2, n); see
    :func:`fit_relaxation`)."""
    pooled = []
    for i in range(len(values)):
        d = {}
        for t, qv in values[i].items():
            n_i = counts[i][t]
            if n_i >= pool_below or n_i >= 0.5 * max(counts[i].values()):
                d[t] = qv
                continue
            acc, wsum = qv * n_i, float(n_i)
            for nb in (i - 1, i + 1):
                if 0 <= nb < len(values) and t in values[nb]:
                    w = min(0.5 * counts[nb][t], n_i)
                    acc = acc + w * values[nb][t]
                    wsum += w
            d[t] = acc / wsum
        pooled.append(d)
    return pooled


def _shrunk(slope, yc, xc, vx, shrink=SHRINK):
    """``slope`` of yc on xc times max(0, 1 - shrink se^2 / slope^2) (se: its standard
    error)."""
    if not (vx > 0 and slope != 0) or xc.size < 3:
        return 0.0
    res = yc - slope * xc
    se2 = (res @ res) / (xc.size - 2) / vx
    return float(slope * max(0.0, 1.0 - shrink * se2 / slope**2))


def conditional_quantiles(x, d, p, x_lo: float, x_hi: float, *, shrink: float = SHRINK):
    """Quantiles of the change ``d`` [S] given the offset ``x`` [S] of each cell's first
    read from its level's reference, as Q(p | x) = q(p) + s(p) x.

    A location-scale law fitted by least squares: d = a + b x + (c0 + c1 x) e, with b the
    regression slope of d on x, c0 + c1 x the regression line of |d - a - b x| on x (kept
    >= 0 on [``x_lo``, ``x_hi``] [S], the level's range of offsets, so that Q is increasing
    in p there) and e's empirical quantiles at ``p`` [1]. Each slope is shrunk by the
    factor max(0, 1 - ``shrink`` se^2 / slope^2) (se: its standard error; ``shrink`` [1],
    default :data:`SHRINK`; 0: unshrunk), so that a level without
    a resolvable dependence keeps its empirical quantiles. Returns ``(q [S], s [1])``.
    """
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    xm, dm = x.mean(), d.mean()
    xc = x - xm
    vx = xc @ xc
    b = _shrunk((xc @ (d - dm)) / vx if vx > 0 else 0.0, d - dm, xc, vx, shrink)
    r = d - dm - b * xc
    ar = np.abs(r)
    arm = ar.mean()
    c1 = _shrunk((xc @ (ar - arm)) / vx if vx > 0 else 0.0, ar - arm, xc, vx, shrink)
    c0 = arm - c1 * xm
    if not c0 > 0:
        c0, c1 = arm, 0.0
    c1 = float(np.clip(c1, -c0 / x_hi if x_hi > 0 else -np.inf,
                       c0 / -x_lo if x_lo < 0 else np.inf))
    sig = c0 + c1 * x
    e = np.where(sig > 0, r / np.maximum(sig, 0.1 * c0 if c0 > 0 else 1.0), 0.0)
    qe = np.quantile(e, p)
    a = dm - b * xm
    return a + c0 * qe, b + c1 * qe


def _level_pairs(d_all, g0, devices, cols, t_nom, min_cell):
    """The measured times of ``devices`` read on at least ``min_cell`` of them, with the
    first reads [S] and changes [S] of the devices read there: a list of (t, g0, d)."""
    out = []
    for j, k in enumerate(cols):
        d = d_all[devices, k]
        ok = np.isfinite(d)
        if ok.sum() >= min_cell:
            out.append((float(t_nom[j]), g0[devices][ok], d[ok]))
    return out


def _anchors(d_all, devices, cols, t_nom, min_cell):
    """The measured times of ``devices`` (a mask or indices into the rows of ``d_all``) read on
    at least ``min_cell`` of them: times [s], mean [S] and variance [S^2] of d = g - g_0 there,
    and the finite d of each time [S]."""
    ts, mus, vs, samples = [], [], [], []
    for j, k in enumerate(cols):
        d = d_all[devices, k]
        d = d[np.isfinite(d)]
        if d.size >= min_cell:
            ts.append(t_nom[j])
            mus.append(d.mean())
            vs.append(d.var())
            samples.append(d)
    return np.array(ts), np.array(mus), np.array(vs), samples


def _bootstrap_moments(d_all, lev, keep, cols, t_nom, taus, t_table, extrap, gk, *, rng,
                       n_boot, min_cell):
    """Bootstrap over devices: mean and std of d = g - g_0 at the table times ``t_table``
    [s], shaped (n_boot, levels, times) [S]. Between anchors they are interpolated in u;
    beyond a level's last anchor they follow the table's extrapolation form ``extrap`` =
    (form, (u0, u0_m) per level, smoother of the mean's growth, smoother of the
    variance's, references g_ref [S] per level): "persistence" holds the last anchor's
    moments, "increments" grows the mean linearly in v_m = u_m - u0_m and the variance in
    v = u - u0 (``taus`` = (tau, tau_m) [s]) with the replicate's slopes through the origin
    (:func:`_slopes` over its anchors after u0), smoothed across levels as the fit's;
    "geometric" decays the replicate's quantiles of g_ref + d at the last anchor with their
    own rates (:func:`_geometric_rate` over its anchors after u0_m)."""
    form, u0s, s_bc, s_gc, refs = extrap
    pg = np.linspace(0.0, 1.0, 101)
    tau, tau_m = taus
    u_table = np.log1p(t_table / tau)
    um_table = np.log1p(t_table / tau_m)
    boot_mean = np.zeros((n_boot, len(keep), u_table.size))
    boot_std = np.zeros_like(boot_mean)
    for b in range(n_boot):
        bb = np.zeros(len(keep))
        gg = np.zeros(len(keep))
        mom = []
        for i, L in enumerate(keep):
            idx = np.nonzero(lev == L)[0]
            pick = idx[rng.integers(0, idx.size, idx.size)]
            ts_, mus_, vs_, smp = _anchors(d_all, pick, cols, t_nom, min_cell)
            ua = np.log1p(ts_ / tau)
            uma = np.log1p(ts_ / tau_m)
            v, vm = ua - u0s[i, 0], uma - u0s[i, 1]
            if form == "increments":
                bb[i] = _slopes(vm[vm > 0], mus_[vm > 0], vs_[vm > 0])[0]
                gg[i] = _slopes(v[v > 0], mus_[v > 0], vs_[v > 0])[1]
            geo = None
            if form == "geometric" and ts_.size:
                G = np.array([refs[i] + sorted_quantiles(np.sort(x), pg) for x in smp])
                geo = (G[-1], _geometric_rate(G[vm > 0], vm[vm > 0]))
            mom.append((ua, uma, mus_, vs_, geo))
        if form == "increments":
            bb = s_bc(gk, bb)
            gg = np.maximum(s_gc(gk, gg), 0.0)
        for i, (ua, uma, mus_, vs_, geo) in enumerate(mom):
            uq = np.concatenate([[0.0], ua])
            umq = np.concatenate([[0.0], uma])
            mq = np.concatenate([[0.0], mus_])
            vq = np.concatenate([[0.0], vs_])
            inside = u_table <= uq[-1] + 1e-12
            mean = np.where(inside, np.interp(u_table, uq, mq),
                            mq[-1] + bb[i] * (um_table - umq[-1]))
            var = np.where(inside, np.interp(u_table, uq, vq),
                           vq[-1] + gg[i] * (u_table - uq[-1]))
            if geo is not None:
                out = ~inside
                Gt = geo[0][None, :] * np.exp(np.outer(um_table[out] - umq[-1], geo[1]))
                m_g, s_g = _moments_p(Gt - refs[i], pg)
                mean[out], var[out] = m_g, s_g**2
            boot_mean[b, i] = mean
            boot_std[b, i] = np.sqrt(np.maximum(var, 0.0))

    return boot_mean, boot_std


def _geometric_rate(G, v):
    """Per quantile (column), the least-squares slope of ln G against v over the anchors
    (rows; v: the anchors' v_m > 0), clipped at 0: decay only [1 per unit of v_m]; 0 for a
    quantile at or below 0 S at any anchor, or with fewer than two anchors."""
    if v.size < 2 or not np.ptp(v) > 0:
        return np.zeros(G.shape[-1])
    pos = np.all(G > 0, axis=0)
    L = np.log(np.where(pos, G, 1.0))
    vc = v - v.mean()
    rate = (vc @ (L - L.mean(axis=0))) / (vc @ vc)
    return np.where(pos, np.minimum(rate, 0.0), 0.0)


def _moments_p(q, p):
    """Mean [S] and standard deviation [S] of quantile rows ``q`` (..., len(p))."""
    m = np.trapezoid(q, p, axis=-1)
    return m, np.sqrt(np.maximum(np.trapezoid((q - m[..., None]) ** 2, p, axis=-1), 0.0))


def _growth_slopes(lv, p):
    """Slopes through the origin of the mean [S] against v_m = u_m - u0_m and of the
    variance [S^2] against v = u - u0, of a level's change at its reference first read (its
    own quantile rows, before the smoothing across levels: the slopes are smoothed across
    levels afterwards; from the smoothed rows tech C's extrapolation from 4 s to 1e5 s
    scored KS 0.093, from its own 0.086, both with tau_m = tau)."""
    m, sd = _moments_p(lv["q_own"], p)
    v = lv["u"] - lv["u0"]
    vm = lv["um"] - lv["u0m"]
    ok, okm = v > 0, vm > 0
    return _slopes(vm[okm], m[okm], sd[okm] ** 2)[0], _slopes(v[ok], m[ok], sd[ok] ** 2)[1]


def _extrapolate(form, lv, u, um, p, *, beta, gamma):
    """(q, s) rows [S], [1] of one level at u > its last anchor u_a (u_m: the same time in
    the mean's coordinate), by ``form``.

    With v = u - u0 and v_m = u_m - u0_m (u0, u0_m: the last time with no change at all),
    the mean of the change at the level's reference grows by ``beta`` [S] per unit of v_m
    and its variance by ``gamma`` [S^2] per unit of v beyond the last anchor; the
    within-level slope's mean scales with the mean and its spread with the standard
    deviation, so a cell whose change is pinned at 0 S stays there (where the anchor's mean
    is resolved, :data:`MEAN_RESOLVED`; else the slope's mean is held). "increments": the
    added variance is an increment independent of the anchor's change with the anchor's
    standardised shape (the sum's shape is diluted toward a normal as it grows, its skew
    kept in sign): tech C's held-out 1e5 s reads, predicted from 4 s, score a median KS of
    0.068, against 0.084 with a normal increment, 0.085 with tau_m = tau and 0.086 with
    both (scaling the anchor's shape instead scored 0.109 against 0.091 before the rows
    were smoothed across levels); "persistence": the last anchor's law held; "geometric":
    each quantile G(p) = g_ref + q(p) of the conductance at the level's reference decays
    as exp(k(p) v_m) beyond the anchor, k(p) <= 0 its log's least-squares slope over the
    anchors (:func:`_geometric_rate`), the within-level slope scaled alike (a change
    multiplicative in the cell's conductance: g_0 + Q(g_0, p) -> (g_0 + Q(g_0, p)) r(p)).
    """
    qa, sa = lv["q"][-1], lv["s"][-1]
    if form == "persistence":
        return qa, sa
    if form == "geometric":
        vm = lv["um"] - lv["u0m"]
        g_ref = lv["ref"][0]
        ok = vm > 0
        r = np.exp(_geometric_rate(g_ref + lv["q"][ok], vm[ok]) * (um - lv["um"][-1]))
        return (g_ref + qa) * r - g_ref, (1.0 + sa) * r - 1.0
    v_a = max(lv["u"][-1] - lv["u0"], 0.0)
    dv = u - lv["u0"] - v_a
    vm_a = max(lv["um"][-1] - lv["u0m"], 0.0)
    dvm = um - lv["u0m"] - vm_a
    m_a, sd_a = _moments_p(qa, p)
    var_t = max(sd_a**2 + gamma * dv, 0.0)
    m_t = m_a + beta * dvm
    if not sd_a > 0:
        return _mixture_quantiles(qa, beta * dv, gamma * dv, p), sa
    rs = np.sqrt(var_t) / sd_a
    # the slope's mean follows the mean's growth only where the anchor's mean is resolved
    # (a relaxation toward the level's centre has mean ~0 there and a slope near -1)
    resolved = abs(m_a) > MEAN_RESOLVED * sd_a / np.sqrt(max(lv["n"][-1], 1))
    rm = (float(np.clip(m_t / m_a, 0.0, 4.0 * (vm_a + dvm) / vm_a))
          if m_a != 0 and vm_a > 0 and resolved else 1.0)
    z = (qa - m_a) / sd_a
    ms = np.trapezoid(sa, p)
    c1 = np.trapezoid((sa - ms) * z, p)
    rho = 1.0 - 1.0 / rs**2 if rs > 1 else 0.0
    z_t = _sum_quantiles(z, np.sqrt(1.0 - rho), np.sqrt(rho), p)
    return m_t + np.sqrt(var_t) * z_t, ms * rm + c1 * rs * z_t


def _sample_at(q, s, x, n_rep, p):
    """Changes [S] of cells at offsets ``x`` [S], ``n_rep`` evenly spaced deviates each."""
    pp = (np.arange(n_rep) + 0.5) / n_rep
    return (np.interp(pp, p, q)[None, :] + np.interp(pp, p, s)[None, :] * x[:, None]).ravel()


def _choose_form(levels, p):
    """Extrapolation form chosen on a held-out time point: each level's last time read on
    at least 90 % of its most-read time's devices is predicted, from the anchors at least
    SPAN_HELD earlier, by each of FORMS; the form with the smallest median KS over levels
    wins (ties to the earlier in FORMS). Returns (form, {form: median KS}, latest held-out
    time [s], NaN when no level has three anchors)."""
    scores = {f: [] for f in FORMS}
    t_out = np.nan
    for lv in levels:
        full = np.nonzero(lv["n"] >= 0.9 * lv["n"].max())[0] if lv["n"].size else []
        if len(full) == 0 or full[-1] < 2:
            continue
        k = int(full[-1])
        # predicted from the anchors at least SPAN_HELD earlier (a span like the one
        # extrapolated), or else from all earlier anchors
        n_e = int(np.sum(lv["t"][:k] <= lv["t"][k] / SPAN_HELD))
        n_e = n_e if n_e >= 2 else k
        t_out = max(t_out, lv["t"][k]) if np.isfinite(t_out) else lv["t"][k]
        early = {key: (v[:n_e] if key in ("u", "um", "q", "q_own", "s", "t", "ms", "vs")
                       else v)
                 for key, v in lv.items()}
        beta, gamma = _growth_slopes(early, p)
        x_out, d_out = lv["pairs"][k]
        for f in FORMS:
            q, s = _extrapolate(f, early, lv["u"][k], lv["um"][k], p, beta=beta,
                                gamma=max(gamma, 0.0))
            scores[f].append(ks_distance(d_out, _sample_at(q, s, x_out, 8, p)))
    med = {f: float(np.median(v)) for f, v in scores.items() if v}
    if not med:
        return FORMS[0], {}, np.nan
    return min(med, key=med.get), med, float(t_out)


def _smooth_levels(rows, noise, gk, skip):
    """Per time, the rows of the levels read there smoothed across the levels at ``gk``
    [S] (:func:`~.smooth.smooth_rows_cv`, each level weighted by the inverse of its row's
    ``noise[i][t]``), leaving out (and unchanged) the levels where ``skip[i][t]``:
    ``(rows, {time [s]: choice})``. A noise is floored at 1 % of the time's median
    positive noise over levels (a level whose change is exactly 0 S has none; NaN, too
    few cells to tell, takes the floor)."""
    out = [dict(r) for r in rows]
    choices = {}
    for t in sorted(set().union(*rows)):
        have = [i for i, r in enumerate(rows) if t in r and not skip[i].get(t, False)]
        if not have:
            choices[t] = "own"
            continue
        nz = np.array([noise[i][t] for i in have])
        pos = nz[nz > 0]
        floor = 0.01 * float(np.median(pos)) if pos.size else 1.0
        nz = np.maximum(np.where(np.isfinite(nz), nz, floor), floor)
        sm, choices[t] = smooth_rows_cv(gk[have], np.array([rows[i][t] for i in have]),
                                        1.0 / nz, noise=nz)
        for k, i in enumerate(have):
            out[i][t] = sm[k]
    return out, choices


def _rows(x, d, p, lo, hi, within, shrink=SHRINK):
    """Quantile row q [S] and slope row s [1] of changes ``d`` [S] at offsets ``x`` [S]
    (:func:`conditional_quantiles`, or the marginal quantiles and zero slopes)."""
    if within:
        return conditional_quantiles(x, d, p, lo, hi, shrink=shrink)
    return np.quantile(d, p), np.zeros(p.size)


def _row_noise(x, d, p, lo, hi, within):
    """Noise of the rows of ``(x, d)``, each summed over p [S^2], [1]: a quarter of the
    squared difference of the unshrunk rows of the two halves (alternate cells), whose
    rows have twice the full sample's variance (shrunk, both halves' slopes would move
    toward 0 together and hide their noise); NaN with fewer than 4 cells."""
    if d.size < 4:
        return np.nan, np.nan
    a = _rows(x[::2], d[::2], p, lo, hi, within, 0.0)
    b = _rows(x[1::2], d[1::2], p, lo, hi, within, 0.0)
    return float(np.sum((a[0] - b[0]) ** 2)) / 4.0, float(np.sum((a[1] - b[1]) ** 2)) / 4.0


def _pooled_noise(raw, k):
    """Per level and time, the noise of row ``k`` (0: q [S^2], 1: s [1]) as its level's
    scale, var(d)/n (q) or var(d)/(n var(x)) (s), times one factor per time: the mean over
    the levels of their split-half noise (:func:`_row_noise`) over their scale. One
    level's split-half noise of a slope row has about one degree of freedom; weighted by
    its inverse, the smoothing followed the levels whose noise it underestimated."""
    out = [dict() for _ in raw]
    for t in sorted(set().union(*raw)):
        have = [i for i, r in enumerate(raw) if t in r]
        xs = [raw[i][t][2][0] for i in have]
        ds = [raw[i][t][2][1] for i in have]
        scale = np.array([d.var() / d.size / (x.var() if k else 1.0) if (x.var() > 0 or not k)
                          else 0.0 for x, d in zip(xs, ds, strict=True)])
        noise = np.array([raw[i][t][3][k] for i in have])
        ok = (scale > 0) & np.isfinite(noise)
        kappa = float(np.mean(noise[ok] / scale[ok])) if np.any(ok) else np.nan
        for j, i in enumerate(have):
            out[i][t] = kappa * scale[j]
    return out


def _level_tables(d_all, g0, lev, keep, cols, t_nom, min_cell, pool_below, within, p, gk,
                  from_zero=False):
    """Per level: its anchors (times [s], u-independent fields) with conditional (or
    marginal) quantile rows q [S] and slopes s [1], pooled across neighbours where
    sparse and smoothed across the levels at ``gk`` [S] (:func:`_smooth_levels`; a slope
    row the smoothing leaves as it was is shrunk instead, :data:`SHRINK`), and
    the level's reference and range of first reads [S] (``from_zero``: the range starts
    at 0 S, where a change proportional to g_0 vanishes). Returns the levels and the
    smoothing choices ({time [s]: (of q, of s)})."""
    raw, counts, refs = [], [], []
    for L in keep:
        m = lev == L
        g_l = g0[m]
        lo = min(float(np.min(g_l)), 0.0) if from_zero else float(np.min(g_l))
        ref = (float(np.mean(g_l)), lo, float(np.max(g_l)))
        refs.append(ref)
        rows = {}
        for t, x0, d in _level_pairs(d_all, g0, m, cols, t_nom, min_cell):
            args = (x0 - ref[0], d, p, ref[1] - ref[0], ref[2] - ref[0], within)
            rows[t] = (_rows(*args, 0.0) + ((x0 - ref[0], d), _row_noise(*args))
                       + (_rows(*args),))
        raw.append(rows)
        counts.append({t: r[2][1].size for t, r in rows.items()})
    # a (level, time) read at 0 S on more than CLAMPED of its cells keeps its own rows
    skip = [{t: np.mean(refs[i][0] + r[2][0] + r[2][1] <= 0) > CLAMPED for t, r in rows.items()}
            for i, rows in enumerate(raw)]
    ps, cs = _smooth_levels(_pool([{t: r[1] for t, r in rows.items()} for rows in raw],
                                  counts, pool_below), _pooled_noise(raw, 1), gk, skip)
    # where the slope rows are not pooled, a level takes its shrunk rows, q and s (SHRINK)
    alone = [{t: skip[i][t] or cs[t] == "own" for t in rows} for i, rows in enumerate(raw)]
    own = _pool([{t: r[4][0] if alone[i][t] else r[0] for t, r in rows.items()}
                 for i, rows in enumerate(raw)], counts, pool_below)
    pq, cq = _smooth_levels(own, _pooled_noise(raw, 0), gk, skip)
    for i, rows in enumerate(raw):
        for t, r in rows.items():
            if alone[i][t]:
                ps[i][t] = r[4][1]
    levels = []
    for i, rows in enumerate(raw):
        ts = np.array(sorted(rows))
        pairs = [rows[t][2] for t in ts]
        levels.append({
            "t": ts, "q": np.array([pq[i][t] for t in ts]).reshape(ts.size, p.size),
            "q_own": np.array([own[i][t] for t in ts]).reshape(ts.size, p.size),
            "s": np.array([ps[i][t] for t in ts]).reshape(ts.size, p.size),
            "ms": np.array([d.mean() for _, d in pairs]),
            "vs": np.array([d.var() for _, d in pairs]),
            "zero": np.array([not np.any(d) for _, d in pairs], dtype=bool),
            "pairs": pairs, "n": np.array([d.size for _, d in pairs]),
            "base": (pq[i][ts[-1]] if within else np.sort(pairs[-1][1])) if pairs
            else np.zeros(1),
            "ref": refs[i], "within": within})
    return levels, {t: (cq[t], cs[t]) for t in cq}


def _level_fields(levels, sl, gk, pv, lev, keep, within_level, by_target, level_by_label):
    """``(grid [S], fields)``: the table's level grid (the targets when the levels are
    targets in increasing order, else ``gk``) and its within-level and level-kind fields
    (slopes ``sl`` [1] with each level's reference and range of first reads [S])."""
    within: dict = {}
    if within_level:
        refs = np.array([lv["ref"] for lv in levels]).reshape(-1, 3)
        within = {"slope": sl, "g_ref": refs[:, 0], "g_lo": refs[:, 1], "g_hi": refs[:, 2]}
        targets = (np.array([np.median(pv.target[lev == L]) for L in keep])
                   if by_target else None)
        if targets is not None and np.all(np.diff(targets) > 0):
            gk = targets
            within["level_by_target"] = True
    if level_by_label and not within.get("level_by_target"):
        within["level_by_label"] = True
    return gk, within


def fit_relaxation(pv, lev, centres, keep, *, t_max: float, rng: np.random.Generator,
                   n_boot: int = 100, min_cell: int = 10, tau: float | None = None,
                   pool_below: int = 200, within_level: bool = True,
                   level_by_target: bool = False, level_by_label: bool = False):
    """Fit a :class:`RelaxationTable` from pivoted reads.

    ``pv``: the :class:`~.tables.Pivot`; ``lev``: level index per device; ``centres``:
    level conductances [S]; ``keep``: indices of levels to fit; ``t_max``: last table
    time [s]; ``pool_below``: a (level, time) measured on fewer devices, and on fewer than
    half of the level's devices (a time point read on a subset of cells), averages its
    quantiles with the neighbouring levels' (weights min(n_nb/2, n));
    ``within_level``: the change depends on each cell's first read within its level
    (:func:`conditional_quantiles`; False: drawn independently of it);
    ``level_by_target``: the levels are programming targets (``pv.target``), the table's
    grid holds each level's median target and a sampled cell follows its target's level
    (for a target-conditioned fit: the change then depends on the target and, within its
    level, on g_0, as a PCM drift exponent that depends on the target does; the
    within-level law then holds from 0 S, where the programming error may put a cell,
    to the level's highest first read); ``level_by_label``: the levels are labelled (a
    level column) and may overlap in the first read, so a sampled cell is given its
    level's conductance (the table's grid, each level's median first read [S]) with its
    first read (``RelaxationTable.level_by_label``; ignored when the levels are targets).
    Beyond the last
    measured time the table follows the extrapolation form (FORMS) that best predicts
    each level's last measured time from the earlier ones (:func:`_choose_form`).
    Cells at 0 S at the first read stay there with the probability the data give
    (:func:`_zero_stay`, ``RelaxationTable.zero_stay``); they stay in the table too, where
    their change of 0 S at g_0 = 0 S informs the within-level slopes.
    Returns ``(block, info)``.
    """
    cols = np.nonzero(pv.tp > 0)[0]
    t_nom = np.array([np.nanmedian(pv.t[:, k]) for k in cols])
    order = np.argsort(centres[keep])
    keep = np.asarray(keep)[order]
    d_all = pv.g - pv.g0[:, None]
    p = np.linspace(0.0, 1.0, N_P)
    by_target = level_by_target and pv.target is not None
    levels, smoothing = _level_tables(d_all, pv.g0, lev, keep, cols, t_nom, min_cell,
                                      pool_below, within_level, p, centres[keep],
                                      from_zero=by_target)
    cells = [(lv["t"], lv["ms"], lv["vs"], None) for lv in levels]
    tau = _choose_tau(cells) if tau is None else float(tau)
    tau_m = _choose_tau_mean(levels)
    for lv in levels:
        lv["u"] = np.log1p(lv["t"] / tau)
        lv["u0"] = float(np.max(lv["u"][lv["zero"]], initial=0.0))
        lv["um"] = np.log1p(lv["t"] / tau_m)
        lv["u0m"] = float(np.max(lv["um"][lv["zero"]], initial=0.0))
    t_last = float(t_nom.max())
    extra = 10.0 ** np.arange(np.floor(np.log10(t_last) * 2) / 2 + 0.5,
                              np.log10(t_max) + 1e-9, 0.5)
    t_table = np.unique(np.concatenate([[0.0], t_nom, extra, [max(t_max, t_last)]]))
    u_table = np.log1p(t_table / tau)

    beta = np.empty(len(keep))
    gamma = np.empty(len(keep))
    b_c = np.empty(len(keep))
    g_c = np.empty(len(keep))
    for i, lv in enumerate(levels):
        beta[i], gamma[i] = _slopes(lv["u"], lv["ms"], lv["vs"])
        b_c[i], g_c[i] = _growth_slopes(lv, p)
    gk = centres[keep]
    n_dev = np.array([np.sum(lev == L) for L in keep], dtype=np.float64)
    s_beta = smooth_cv(gk, beta, n_dev)
    s_gamma = smooth_cv(gk, gamma, n_dev)
    beta_s = s_beta(gk)
    gamma_s = np.maximum(s_gamma(gk), 0.0)
    s_bc, s_gc = smooth_cv(gk, b_c, n_dev), smooth_cv(gk, g_c, n_dev)
    b_c = s_bc(gk)
    g_c = np.maximum(s_gc(gk), 0.0)
    form, scores, t_out = _choose_form(levels, p)

    q = np.zeros((len(keep), t_table.size, N_P))
    sl = np.zeros_like(q)
    for i, lv in enumerate(levels):
        ua = lv["u"]
        for j, uu in enumerate(u_table):
            if t_table[j] == 0:
                continue
            if ua.size and uu <= ua[-1] + 1e-12:
                # interpolate in u between measured anchors (0 at t = 0)
                uq = np.concatenate([[0.0], ua])
                k = np.clip(np.searchsorted(uq, uu) - 1, 0, uq.size - 2)
                w = (uu - uq[k]) / (uq[k + 1] - uq[k])
                for arr, key in ((q, "q"), (sl, "s")):
                    rows = np.vstack([np.zeros(N_P), lv[key]])
                    arr[i, j] = (1 - w) * rows[k] + w * rows[k + 1]
            elif ua.size:
                um = float(np.log1p(t_table[j] / tau_m))
                q[i, j], sl[i, j] = _extrapolate(form, lv, uu, um, p, beta=b_c[i],
                                                 gamma=g_c[i])
            else:
                q[i, j] = _mixture_quantiles(np.zeros(1), beta_s[i] * uu, gamma_s[i] * uu, p)
        if not within_level:
            q[i] = np.sort(q[i], axis=-1)

    u0s = np.array([(lv["u0"], lv["u0m"]) for lv in levels]).reshape(-1, 2)
    g_refs = np.array([lv["ref"][0] for lv in levels])
    boot_mean, boot_std = _bootstrap_moments(d_all, lev, keep, cols, t_nom, (tau, tau_m),
                                             t_table,
                                             (form, u0s, s_bc, s_gc, g_refs), gk, rng=rng,
                                             n_boot=n_boot, min_cell=min_cell)
    gk, within = _level_fields(levels, sl, gk, pv, lev, keep, within_level, by_target,
                               level_by_label)
    block = RelaxationTable(g=gk, t=t_table, p=p, q=q, tau=tau, boot_mean=boot_mean,
                            boot_std=boot_std, t_fit_max=t_last, **within)
    g_level = (pv.target if block.level_by_target else
               centres[lev] if block.level_by_label else None)
    zero = _zero_stay(block, pv, cols, t_nom, g_level)
    if zero[3] > 0:
        block = dataclasses.replace(block, zero_stay=zero[3])
    info = RelaxationInfo(tau=tau, tau_mean=tau_m, levels_g=gk, beta=beta, gamma=gamma,
                          beta_choice=s_beta.choice, gamma_choice=s_gamma.choice,
                          t_table=t_table, t_fit_max=t_last, within_level=within_level,
                          extrapolation=form, extrapolation_ks=scores, t_holdout=t_out,
                          growth_mean=b_c, growth_var=g_c,
                          growth_choice=(s_bc.choice, s_gc.choice), level_smoothing=smoothing,
                          zero_cells=zero[0], zero_share=zero[1], zero_table=zero[2],
                          zero_stay=zero[3])
    return block, info
