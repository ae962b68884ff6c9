"""Held-out likelihood of drift models (to choose power law vs relaxation table).

Both models clamp reads at 0 S, so a read is scored against a measure with an atom at
0 S: a positive read by its density [ln(1/S)], a read <= 0 S by the model's probability
of reading 0 S [ln 1]. Every held-out read (zeros included) is scored under each model,
so the comparison stays on the same reads; an event a model cannot produce gets the
floor exp(_LOG_FLOOR) (a probability, or that times the model's own density scale).
Each model is scored by the density of the reads it would sample: a power law fitted
conditioned on the first read takes that read as g_prog and reads it with the whole read
noise at t, and is scored so, not by the conditional of a later read given a noisy first
read (which it does not sample; on reads written from the PCM equations with random-walk
noise that conditional chose the power law where its held-out KS was the worse).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from ..devices.blocks import ReadNoiseLaw, ReadNoiseStructure
from ..devices.fitted import FittedPowerLaw
from ..devices.relaxation_table import RelaxationTable
from ..errors import ConfigError
from .programming import noise_free_powers
from .readnoise import LOG_FLOOR as _LOG_FLOOR
from .readnoise import predictive_loglik


def _relaxation_logpdf(block: RelaxationTable, g0, t, g, g_level=None):
    """log density [ln(1/S)] of reads g > 0 at time t given first reads g0 (and the cells'
    level conductances ``g_level`` [S], or None): a Gaussian
    kernel density over the tabulated quantile points (equally spaced in probability);
    for reads g <= 0 S the log probability that the clamped read max(g0 + d, 0) is 0 S
    (quantile points at or below -g0 count fully, the others by their kernel's tail)."""
    p = block.p[::4]
    n = g0.size
    qs = np.empty((n, p.size))
    for j in range(p.size):
        qs[:, j] = block.delta(g0, t, np.full(n, p[j]), g_level)
    sd = qs.std(axis=1)
    iqr = qs[:, int(0.75 * (p.size - 1))] - qs[:, int(0.25 * (p.size - 1))]
    h = 0.9 * np.maximum(np.minimum(sd, iqr / 1.34), 1e-12) * p.size ** (-0.2)
    z = ((g - g0)[:, None] - qs) / h[:, None]
    dens = np.exp(-0.5 * z * z).mean(axis=1) / (h * np.sqrt(2 * np.pi))
    floor = _LOG_FLOOR + np.log(1 / np.maximum(sd, 1e-12))
    lp = np.maximum(np.log(np.maximum(dens, 1e-300)), floor)
    zero = g <= 0
    if np.any(zero):
        below = qs[zero] <= -g0[zero, None]
        zc = (-g0[zero, None] - qs[zero]) / h[zero, None]
        p0 = np.where(below, 1.0, ndtr(zc)).mean(axis=1)
        lp[zero] = np.maximum(np.log(np.maximum(p0, 1e-300)), _LOG_FLOOR)
    return lp


def programming_prior(block: FittedPowerLaw, g0, lev, lev_all):
    """Per device, the mean [S] and standard deviation [S] of g_prog in its level, from the
    positive first reads ``g0`` [S] of the fitted devices (levels ``lev``) with the power
    law's read noise at the first read undone
    (:func:`~xbarlab.calibration.programming.noise_free_powers` under the block's law, the
    noise's relative variance Q^2 u(0), Q^2 the summed amplitudes at the reads' mean; the
    variance floored at 1 % of the reads'). Returned for the devices of levels
    ``lev_all``; a level without two positive first reads gets NaN for both (its reads
    keep the flat prior). ``g0`` and ``lev`` of different shapes raise
    :class:`~xbarlab.errors.ConfigError`."""
    if np.shape(g0) != np.shape(lev):
        raise ConfigError(f"programming_prior needs one level per first read, got first reads "
                          f"of shape {np.shape(g0)} and levels of shape {np.shape(lev)}")
    uq = np.unique(lev_all)
    m = np.full(uq.size, np.nan)
    sd = np.full(uq.size, np.nan)
    u0 = float(block.u(0.0))
    for i, L in enumerate(uq):
        x = g0[(lev == L) & (g0 > 0)]
        if x.size < 2:
            continue
        q2 = float(block.q_read(x.mean())) ** 2
        if block.q_independent is not None:
            q2 += float(block.q_independent(x.mean())) ** 2
        x1, x2 = noise_free_powers(x, q2 * u0, linear=block.law is ReadNoiseLaw.LINEAR)
        m[i] = x1.mean()
        sd[i] = np.sqrt(max(x2.mean() - m[i] ** 2, 0.01 * x.var()))
    k = np.searchsorted(uq, lev_all)
    return m[k], sd[k]


def _power_logpdf(block: FittedPowerLaw, g0, t, g, *, g0_is_input: bool = False,
                  prior=None):
    """log density of reads g > 0 at time t [s] given first reads g0 > 0 (read at t = 0).

    ``g0_is_input`` False: g0 is a noisy read of g_prog, which has a flat prior in ln:
    ln g - ln g0 is normal with mean -mu L and variance sigma^2 L^2 plus the read noise's
    contrast (:meth:`FittedPowerLaw.contrast_variance`; Q^2 (u_t - u_0) for a random walk).
    True: the model takes g0 as g_prog (a fit conditioned on the initial read; the
    composite model programs its input unchanged) and its read at t carries the whole
    read noise of that time: variance sigma^2 L^2 + (Q^2 + Q_i^2) u_t, the density of
    what the model samples. Under the law ``LINEAR`` the same two cases in g
    (:func:`~xbarlab.calibration.readnoise.predictive_loglik`).
    A first read <= 0 S means g_prog = 0 S (the programming clamp): every later read is
    0 S (log probability 0), a positive one impossible. Under the law ``LOG`` a read
    <= 0 S after a positive first read is impossible (log-normal reads): floor.
    ``prior``: None or per read the mean [S] and std [S] of g_prog
    (:func:`programming_prior`; g0_is_input False only): the first read is then scored as
    g_prog's noisy read given that distribution
    (:func:`~xbarlab.calibration.readnoise.predictive_loglik`)."""
    L = np.log((t + block.t0) / block.t0)
    live = g0 > 0
    gl = np.where(live, g0, 1.0)
    ok = g > 0
    lg = np.log(np.where(ok, g, 1.0))
    q2 = block.q_read(gl) ** 2
    qi2 = 0.0 if block.q_independent is None else block.q_independent(gl) ** 2
    w = (np.ones_like(gl) if block.read_noise is ReadNoiseStructure.INDEPENDENT
         else qi2 / np.maximum(q2 + qi2, 1e-300))
    kw = {"mu": block.mu_nu(gl), "s": block.sigma_nu(gl), "q": np.sqrt(q2 + qi2), "w": w,
          "linear": block.law is ReadNoiseLaw.LINEAR}
    args = (gl, np.where(live, g, 0.0), L, 0.0 if g0_is_input else block.u(0.0), block.u(t))
    has = (np.zeros(gl.shape, bool) if prior is None or g0_is_input
           else live & np.isfinite(prior[0]) & np.isfinite(prior[1]))
    lp = np.empty(gl.shape)
    # reads whose level has no prior keep the flat one
    for m, pr in ((~has, None), (has, None if prior is None else (prior[0], prior[1]))):
        if np.any(m):
            def pick(a, m=m):
                return np.asarray(a)[m] if np.ndim(a) else a
            lp[m] = predictive_loglik(*[pick(a) for a in args],
                                      **{k: pick(v) for k, v in kw.items()},
                                      prior=None if pr is None else (pick(pr[0]), pick(pr[1])))
    return np.where(live, lp, np.where(ok, _LOG_FLOOR - lg, 0.0))


def heldout_loglik(block, pv, mask, *, max_devices: int = 4000, g_level=None,
                   g0_is_input: bool = False, prior=None) -> float:
    """Mean log-likelihood per read [ln(1/S)] of the reads at t > 0 of devices ``mask``
    (an evenly spaced subset of at most ``max_devices`` of them); ``g_level``: per device
    of ``pv``, its level's conductance [S], given to a relaxation table with labelled
    levels (``level_by_label``; otherwise not used). A device's reference
    read g_0 (its first read, when no g_initial column is given) is what both models are
    conditioned on, not a held-out read: it is not scored (a table of g - g_0 puts all
    its mass on 0 there, a density without meaning). ``g0_is_input``: the model takes
    g_0 as its input (a fit conditioned on the initial read), so a power law is scored by
    the density it samples from, whole read noise at t included (:func:`_power_logpdf`);
    False: g_0 is a noisy read of the power law's g_prog, whose distribution per device of
    ``pv`` is ``prior`` (mean [S], std [S]: :func:`programming_prior`) or, when None, flat
    in ln g_prog."""
    total, count = 0.0, 0
    idx = np.nonzero(mask)[0]
    if idx.size > max_devices:
        idx = idx[np.linspace(0, idx.size - 1, max_devices).astype(np.intp)]
    first = np.argmax(np.isfinite(pv.g[idx]), axis=1)
    for k in np.nonzero(pv.tp > 0)[0]:
        g = pv.g[idx, k]
        ok = np.isfinite(g) & ~((first == k) & (g == pv.g0[idx]))
        if not np.any(ok):
            continue
        t = float(np.nanmedian(pv.t[idx, k]))
        g0 = pv.g0[idx][ok]
        if isinstance(block, RelaxationTable):
            lv = (g_level[idx][ok] if g_level is not None and block.level_by_label
                  else None)
            lp = _relaxation_logpdf(block, g0, t, g[ok], lv)
        else:
            pr = None if prior is None else (prior[0][idx][ok], prior[1][idx][ok])
            lp = _power_logpdf(block, g0, t, g[ok], g0_is_input=g0_is_input, prior=pr)
        total += float(lp.sum())
        count += int(ok.sum())
    return total / max(count, 1)
