"""Relaxing cells written from their equations, for the calibration tests
(``from _relaxing_cells import relaxing_cells``)."""

from __future__ import annotations

import numpy as np

US = 1e-6
#: Level conductances g_T [S].
LEVELS = np.array([5.0, 10.0, 15.0, 20.0]) * US
#: Read times after the first read [s].
TIMES = np.array([1.0, 10.0, 100.0])


def relaxing_cells(n: int, spread: float, rng: np.random.Generator) -> dict:
    """A relaxation written from its equations: per level g_T (LEVELS), ``n`` cells with
    first reads g_0 = g_T + N(0, (0.5 uS)^2) and reads at t = 1, 10, 100 s
    g(t) = g_0 - a u + b W(u), u = ln(1 + t / 1 s), a = 0.05 uS, b = ``spread`` [S], W a
    standard Brownian path (independent increments of variance u_j - u_(j-1)). Returns a
    role -> array table (device, g, time, time_point, g_initial, level)."""
    g_t = np.repeat(LEVELS, n)
    g0 = g_t + 0.5 * US * rng.standard_normal(g_t.size)
    u = np.log1p(TIMES)
    w = np.cumsum(rng.standard_normal((g_t.size, TIMES.size)) * np.sqrt(np.diff(u, prepend=0)),
                  axis=1)
    g = g0[:, None] - 0.05 * US * u + spread * w
    k = TIMES.size
    return {"device": np.repeat(np.arange(g_t.size), k), "g": g.ravel(),
            "time": np.tile(TIMES, g_t.size), "time_point": np.tile(TIMES, g_t.size),
            "g_initial": np.repeat(g0, k),
            "level": np.repeat(np.repeat(np.arange(LEVELS.size), n), k)}
