"""RRAM-like relaxation toward the level centre, drawn from equations written here (not
with xbarlab's sampler), for round trips of the relaxation fit.

Each level L has a centre g_c; a cell's first read is g_1 = g_c + w U, U ~ U(-1, 1) (a
write-verify window of half-width w); at time t after the first read

    g(t) = g_1 + (g_c - g_1) (1 - exp(-(t / tau)^beta)) + s_n sqrt(ln(1 + t / t_n)) Z_t,

with Z_t ~ N(0, 1) the same for every t of one cell (a change that broadens in log time),
so the change d(t) = g(t) - g_1 is correlated with g_1 at -sd(x)(1 - e^{-(t/tau)^beta}) /
sd(d(t)) inside a level. Reads are clamped at 0 S.
"""

from __future__ import annotations

import numpy as np

__all__ = ["relaxation_toward_centre"]


def relaxation_toward_centre(centres, per_level: int, times, rng: np.random.Generator, *,
                             window: float = 1.0e-6, tau: float = 100.0, beta: float = 0.5,
                             s_n: float = 0.3e-6, t_n: float = 1.0):
    """Role -> array table (device, g, time, g_initial, level) of the generator above.

    ``centres``: level centres g_c [S]; ``per_level``: cells per level; ``times``: read
    times after the first read [s] (0 s is the first read); ``window``: w [S]; ``tau`` [s],
    ``beta`` [1]: the relaxation's stretched exponential; ``s_n`` [S], ``t_n`` [s]: the
    log-time broadening.
    """
    centres = np.asarray(centres, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    level = np.repeat(np.arange(centres.size), per_level)
    gc = centres[level]
    g1 = gc + window * rng.uniform(-1.0, 1.0, gc.size)
    z = rng.standard_normal(gc.size)
    frac = 1.0 - np.exp(-((times / tau) ** beta))
    g = (g1[None, :] + (gc - g1)[None, :] * frac[:, None]
         + s_n * np.sqrt(np.log1p(times / t_n))[:, None] * z[None, :])
    g = np.maximum(g, 0.0)
    n = gc.size
    return {"device": np.tile(np.arange(n), times.size), "g": g.ravel(),
            "time": np.repeat(times, n), "g_initial": np.tile(g1, times.size),
            "level": np.tile(level, times.size)}
