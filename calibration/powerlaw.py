"""PCM-like drift fit: per-device power law with a read-noise-corrected exponent spread.

Model of the reads of one device: ln g(t_k) = a - nu L_k + Q W(u_k) with
L_k = ln((t_k + t0)/t0), u_k = ln((t_k + t0 + t_r)/(2 t_r)) and W a Wiener process
(the accumulated 1/f read noise). Increments of consecutive reads are independent:
dy = -nu dL + Q dW, var(dW) = du, so the generalised-least-squares exponent of a device
is nu_hat = -sum(dy dL/du) / S with S = sum(dL^2/du) and var(nu_hat | nu) = Q^2/S. Per
level, Q^2 is the pooled residual variance per unit u and the device-to-device spread is
deconvolved: sigma_nu^2 = var(nu_hat) - Q^2 mean(1/S) (a method-of-moments hierarchical
fit). Curves across levels are smoothed with the degree chosen by cross-validation;
bootstrap replicates resample devices.

Reads at or below 0 S (the clamp of the instrument or of a device model: xbarlab's PCM
model clamps g_prog and every read at 0 S) have no logarithm; they are handled as follows
(:func:`censoring`, counts in :class:`PowerLawInfo` and the report):

- a cell whose reads are all <= 0 S is one the model programs to g_prog = 0 (the clamp of
  the programming error; g(t) = 0 then holds at every t whatever nu is). Its likelihood
  does not depend on nu or Q, so leaving it out of the drift fit is exact; it stays in
  the programming-error fit as g_prog = 0 (:func:`programmed_estimate`);
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

from ..devices.curves import FittedCurve
from ..devices.fitted import FittedPowerLaw
from .smooth import smooth_cv

T_R = 250e-9
_T0_GRID = np.geomspace(0.1, 1000.0, 21)
#: Largest share of censored reads (<= 0 S) among the reads of cells with positive reads.
MAX_CENSORED = 0.10
#: Fewest cells per level with >= 3 positive reads a power-law fit needs.
MIN_USABLE = 5


@dataclass
class PowerLawInfo:
    """Per-level estimates of the power-law fit: ``levels_g`` [S], ``mu_nu``,
    ``sigma_nu`` (deconvolved), ``sigma_nu_raw`` (spread of the per-device estimates),
    ``q_read`` [1]; ``t0`` [s] (fitted or given) and ``t0_fitted``; smoothing choices."""

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


def _profile_cost(nu, S, rss, dof, logdu, sel=None):
    """-2 log-likelihood (up to a constant) of the increments with Q^2 profiled out:
    N ln(rss/N) + sum ln du, N the number of increments (a t0 that stretches du is paid
    for by the log-determinant term)."""
    good = np.isfinite(nu) & (dof >= 1)
    if sel is not None:
        good = good[sel]
        nu, S, rss, dof, logdu = nu[sel], S[sel], rss[sel], dof[sel], logdu[sel]
    n_inc = (dof[good] + 1).sum()
    return n_inc * np.log(rss[good].sum() / max(n_inc, 1)) + logdu[good].sum()


def choose_t0(pv) -> float:
    """t0 [s] maximising the profile likelihood of the per-device increment fits (coarse
    grid in log t0, then a bounded scalar minimisation around the best grid point)."""
    from scipy.optimize import minimize_scalar

    def cost(lt0):
        return _profile_cost(*_device_fits(pv, 10.0**lt0))

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


def programmed_estimate(pv, *, t0=None):
    """Each device's programmed conductance g_prog [S] from its earliest positive read,
    undoing the drift since programming with its own fitted exponent (the read itself
    when it is at t = 0); 0 S for a device with no positive read (the clamp at 0 S)."""
    t0 = choose_t0(pv) if t0 is None else t0
    nu, *_ = _device_fits(pv, t0)
    first, t1 = first_positive(pv)
    g1 = np.maximum(pv.g[np.arange(pv.n_dev), first], 0.0)
    nu = np.where(np.isfinite(nu), nu, 0.0)
    return g1 * ((t1 + t0) / t0) ** nu


def fit_power_law(pv, lev, centres, keep, *, t0, rng, n_boot=100):
    """Fit a :class:`FittedPowerLaw`; returns ``(block, info)``."""
    t0_fitted = t0 is None
    t0 = choose_t0(pv) if t0 is None else float(t0)
    nu, S, rss, dof, _ = _device_fits(pv, t0)
    keep = np.asarray(keep)[np.argsort(centres[keep])]
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
    idx = [np.nonzero(lev == L)[0] for L in keep]
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
            c = [_profile_cost(*fits[j], sel=allp) for j in range(3)]
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
