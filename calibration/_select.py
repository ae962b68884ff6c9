"""Held-out likelihood of drift models (to choose power law vs relaxation table)."""

from __future__ import annotations

import numpy as np

from ._model import PowerLawBlock, RelaxationBlock

_LOG_FLOOR = -50.0


def _relaxation_logpdf(block: RelaxationBlock, g0, t, g):
    """log density [ln(1/S)] of reads g at time t given first reads g0: a Gaussian kernel
    density over the tabulated quantile points (equally spaced in probability)."""
    p = block.p[::4]
    n = g0.size
    qs = np.empty((n, p.size))
    for j in range(p.size):
        qs[:, j] = block.delta(g0, t, np.full(n, p[j]))
    sd = qs.std(axis=1)
    iqr = qs[:, int(0.75 * (p.size - 1))] - qs[:, int(0.25 * (p.size - 1))]
    h = 0.9 * np.maximum(np.minimum(sd, iqr / 1.34), 1e-12) * p.size ** (-0.2)
    z = ((g - g0)[:, None] - qs) / h[:, None]
    dens = np.exp(-0.5 * z * z).mean(axis=1) / (h * np.sqrt(2 * np.pi))
    floor = _LOG_FLOOR + np.log(1 / np.maximum(sd, 1e-12))
    return np.maximum(np.log(np.maximum(dens, 1e-300)), floor)


def _power_logpdf(block: PowerLawBlock, g0, t, g):
    """log density of reads g at time t given first reads g0 (read at t = 0): ln g - ln g0
    is normal with mean -mu L and variance sigma^2 L^2 + Q^2 (u_t - u_0)."""
    L = np.log((t + block.t0) / block.t0)
    du = block.u(t) - block.u(0.0)
    q = block.q_read(g0)
    var = (block.sigma_nu(g0) * L) ** 2 + q * q * du
    var = np.maximum(var, 1e-12)
    ok = g > 0
    x = np.log(np.where(ok, g, 1.0) / np.maximum(g0, 1e-30)) + block.mu_nu(g0) * L
    lp = -0.5 * x * x / var - 0.5 * np.log(2 * np.pi * var) - np.log(np.where(ok, g, 1.0))
    return np.where(ok, lp, _LOG_FLOOR + np.log(1 / np.maximum(g0, 1e-30)))


def heldout_loglik(block, pv, mask, *, max_devices: int = 4000) -> float:
    """Mean log-likelihood per read [ln(1/S)] of the reads at t > 0 of devices ``mask``
    (an evenly spaced subset of at most ``max_devices`` of them)."""
    total, count = 0.0, 0
    idx = np.nonzero(mask)[0]
    if idx.size > max_devices:
        idx = idx[np.linspace(0, idx.size - 1, max_devices).astype(np.intp)]
    for k in np.nonzero(pv.tp > 0)[0]:
        g = pv.g[idx, k]
        ok = np.isfinite(g)
        if not np.any(ok):
            continue
        t = float(np.nanmedian(pv.t[idx, k]))
        g0 = pv.g0[idx][ok]
        if isinstance(block, RelaxationBlock):
            lp = _relaxation_logpdf(block, g0, t, g[ok])
        else:
            lp = _power_logpdf(block, g0, t, g[ok])
        total += float(lp.sum())
        count += int(ok.sum())
    return total / max(count, 1)
