"""RRAM-like relaxation fit: level-conditioned change since the first read, in log time.

At each measured time the change d = g(t) - g_0 of a level is represented by its
empirical quantiles. Beyond the last measured time the change keeps growing as a
process with independent increments in u = ln(1 + t/tau): d(T) = d(t_a) + a normal
increment with mean beta (u_T - u_a) and variance gamma (u_T - u_a), where beta and gamma
are the slopes of the level's mean and variance of d against u over the measured times
(smoothed across levels, degree chosen by cross-validation). The heavy tails seen at
short times are thereby diluted as the increments add up, as the data show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..devices.relaxation_table import RelaxationTable
from .smooth import smooth_cv

N_P = 201
_TAUS = np.logspace(-4, 0, 17)


@dataclass
class RelaxationInfo:
    """What the relaxation fit decided: ``tau`` [s], per-level slopes ``beta`` [S] and
    ``gamma`` [S^2] per unit of u, the smoothing choices, the table times [s] and the
    last measured time used [s]."""

    tau: float = np.nan
    levels_g: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beta: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gamma: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beta_choice: str = ""
    gamma_choice: str = ""
    t_table: np.ndarray = field(default_factory=lambda: np.zeros(0))
    t_fit_max: float = np.nan


def _slopes(us, mus, vs):
    """Least-squares slopes through the origin of mean and variance against u."""
    uu = us @ us
    return (us @ mus) / uu, (us @ vs) / uu


def _choose_tau(cells):
    """tau minimising the misfit of log variance = log(gamma u) over all (level, time) cells."""
    best, best_cost = _TAUS[0], np.inf
    for tau in _TAUS:
        cost = 0.0
        for ts, _, vs, _ in cells:
            if ts.size < 2:
                continue
            u = np.log1p(ts / tau)
            g = max((u @ vs) / (u @ u), 1e-300)
            cost += np.sum((np.log(np.maximum(vs, 1e-300)) - np.log(g * u)) ** 2)
        if cost < best_cost:
            best, best_cost = tau, cost
    return float(best)


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
    dens = np.maximum(fftconvolve(hist, kern / kern.sum(), mode="same"), 0.0)
    F = np.concatenate([[0.0], np.cumsum(dens)])
    F /= F[-1]
    pc = np.clip(p, 5e-4, 1 - 5e-4)
    # F is non-decreasing; interp needs strictly increasing abscissae
    keep = np.concatenate([[True], np.diff(F) > 0])
    return np.interp(pc, F[keep], edges[keep])


def _pooled_anchor_quantiles(cells, p, pool_below):
    """Quantiles at ``p`` of each level's measured anchors ({time: quantiles}); a sparsely
    measured (level, time) borrows from its neighbour levels (see :func:`fit_relaxation`)."""
    anchor_q = [{float(t): np.quantile(smp, p) for t, smp in zip(ts, samples, strict=True)}
                for ts, _, _, samples in cells]
    anchor_n = [{float(t): smp.size for t, smp in zip(ts, samples, strict=True)}
                for ts, _, _, samples in cells]
    pooled = []
    for i in range(len(cells)):
        d = {}
        for t, qv in anchor_q[i].items():
            n_i = anchor_n[i][t]
            if n_i >= pool_below or n_i >= 0.5 * max(anchor_n[i].values()):
                d[t] = qv
                continue
            acc, wsum = qv * n_i, float(n_i)
            for nb in (i - 1, i + 1):
                if 0 <= nb < len(cells) and t in anchor_q[nb]:
                    w = min(0.5 * anchor_n[nb][t], n_i)
                    acc = acc + w * anchor_q[nb][t]
                    wsum += w
            d[t] = acc / wsum
        pooled.append(d)
    return pooled


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


def _bootstrap_moments(d_all, lev, keep, cols, t_nom, tau, u_table, s_beta, s_gamma, gk, *,
                       rng, n_boot, min_cell):
    """Bootstrap over devices: mean and std of d = g - g_0 at the table times, shaped
    (n_boot, levels, times) [S]."""
    boot_mean = np.zeros((n_boot, len(keep), u_table.size))
    boot_std = np.zeros_like(boot_mean)
    for b in range(n_boot):
        bb = np.empty(len(keep))
        gg = np.empty(len(keep))
        mom = []
        for i, L in enumerate(keep):
            idx = np.nonzero(lev == L)[0]
            pick = idx[rng.integers(0, idx.size, idx.size)]
            ts_, mus_, vs_, _ = _anchors(d_all, pick, cols, t_nom, min_cell)
            bb[i], gg[i] = _slopes(np.log1p(ts_ / tau), mus_, vs_)
            mom.append((np.log1p(ts_ / tau), mus_, vs_))
        bb = s_beta(gk, bb)
        gg = np.maximum(s_gamma(gk, gg), 0.0)
        for i, (ua, mus_, vs_) in enumerate(mom):
            uq = np.concatenate([[0.0], ua])
            mq = np.concatenate([[0.0], mus_])
            vq = np.concatenate([[0.0], vs_])
            inside = u_table <= uq[-1] + 1e-12
            mean = np.where(inside, np.interp(u_table, uq, mq),
                            mq[-1] + bb[i] * (u_table - uq[-1]))
            var = np.where(inside, np.interp(u_table, uq, vq),
                           vq[-1] + gg[i] * (u_table - uq[-1]))
            boot_mean[b, i] = mean
            boot_std[b, i] = np.sqrt(np.maximum(var, 0.0))

    return boot_mean, boot_std


def fit_relaxation(pv, lev, centres, keep, *, t_max: float, rng: np.random.Generator,
                   n_boot: int = 100, min_cell: int = 10, tau: float | None = None,
                   pool_below: int = 200):
    """Fit a :class:`RelaxationTable` from pivoted reads.

    ``pv``: the :class:`~.tables.Pivot`; ``lev``: level index per device; ``centres``:
    level conductances [S]; ``keep``: indices of levels to fit; ``t_max``: last table
    time [s]; ``pool_below``: a (level, time) measured on fewer devices, and on fewer than
    half of the level's devices (a time point read on a subset of cells), averages its
    quantiles with the neighbouring levels' (weights min(n_nb/2, n)); returns
    ``(block, info)``.
    """
    cols = np.nonzero(pv.tp > 0)[0]
    t_nom = np.array([np.nanmedian(pv.t[:, k]) for k in cols])
    order = np.argsort(centres[keep])
    keep = np.asarray(keep)[order]
    d_all = pv.g - pv.g0[:, None]
    # per level: anchors (measured times with enough devices)
    cells = []
    for L in keep:
        ts, mus, vs, samples = _anchors(d_all, lev == L, cols, t_nom, min_cell)
        cells.append((ts, mus, vs, [np.sort(d) for d in samples]))
    tau = _choose_tau(cells) if tau is None else float(tau)
    t_last = float(t_nom.max())
    extra = 10.0 ** np.arange(np.floor(np.log10(t_last) * 2) / 2 + 0.5,
                              np.log10(t_max) + 1e-9, 0.5)
    t_table = np.unique(np.concatenate([[0.0], t_nom, extra, [max(t_max, t_last)]]))
    u_table = np.log1p(t_table / tau)
    p = np.linspace(0.0, 1.0, N_P)

    beta = np.empty(len(keep))
    gamma = np.empty(len(keep))
    for i, (ts, mus, vs, _) in enumerate(cells):
        beta[i], gamma[i] = _slopes(np.log1p(ts / tau), mus, vs)
    gk = centres[keep]
    n_dev = np.array([np.sum(lev == L) for L in keep], dtype=np.float64)
    s_beta = smooth_cv(gk, beta, n_dev)
    s_gamma = smooth_cv(gk, gamma, n_dev)
    beta_s = s_beta(gk)
    gamma_s = np.maximum(s_gamma(gk), 0.0)

    pooled = _pooled_anchor_quantiles(cells, p, pool_below)

    q = np.zeros((len(keep), t_table.size, N_P))
    for i, (ts, _mus, _vs, samples) in enumerate(cells):
        ua = np.log1p(ts / tau)
        for j, (tt, uu) in enumerate(zip(t_table, u_table, strict=True)):
            if tt == 0:
                continue
            if ts.size and uu <= ua[-1] + 1e-12:
                # interpolate quantiles in u between measured anchors (0 at t = 0)
                qa = np.vstack([np.zeros(N_P)] + [pooled[i][float(t)] for t in ts])
                uq = np.concatenate([[0.0], ua])
                k = np.clip(np.searchsorted(uq, uu) - 1, 0, uq.size - 2)
                w = (uu - uq[k]) / (uq[k + 1] - uq[k])
                q[i, j] = (1 - w) * qa[k] + w * qa[k + 1]
            else:
                base = samples[-1] if ts.size else np.zeros(1)
                du = uu - (ua[-1] if ts.size else 0.0)
                q[i, j] = _mixture_quantiles(base, beta_s[i] * du, gamma_s[i] * du, p)
        q[i] = np.sort(q[i], axis=-1)

    boot_mean, boot_std = _bootstrap_moments(d_all, lev, keep, cols, t_nom, tau, u_table,
                                             s_beta, s_gamma, gk, rng=rng, n_boot=n_boot,
                                             min_cell=min_cell)

    block = RelaxationTable(g=gk, t=t_table, p=p, q=q, tau=tau, boot_mean=boot_mean,
                            boot_std=boot_std, t_fit_max=t_last)
    info = RelaxationInfo(tau=tau, levels_g=gk, beta=beta, gamma=gamma,
                          beta_choice=s_beta.choice, gamma_choice=s_gamma.choice,
                          t_table=t_table, t_fit_max=t_last)
    return block, info
