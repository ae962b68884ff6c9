"""The quantile relaxation table: a drift block fitted by :mod:`xbarlab.calibration`.

g(t) = max(g_0 + Q(g_0, t, p), 0): tabulated quantiles Q of the change since the first read
(or since programming) over a grid of g_0, times t and probabilities p; one uniform deviate
p per cell, drawn at programming, so one cell follows one trajectory. Between grid points
the table is interpolated linearly (in g_0, in p, and in u = ln(1 + t/tau) between times);
outside its conductance grid and after its last time it holds its edge values.
Sampled with numpy by :class:`~xbarlab.devices.composite.CompositeDevice`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..formats import Quantity
from .curves import tree_array

__all__ = ["RelaxationTable", "bracket"]


def bracket(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index i and weight w so that x ~ (1 - w) grid[i] + w grid[i + 1]; edges held.

    ``grid``: increasing 1-D array; ``x``: points (any shape). Returns (i, w) shaped
    like ``x``.
    """
    if grid.size == 1:
        return np.zeros(x.shape, np.intp), np.zeros(x.shape)
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    w = np.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return i, w


@dataclass(frozen=True, eq=False)
class RelaxationTable:
    """RRAM-like relaxation: quantiles of g(t) - g_0 tabulated over (g_0, t, p)."""

    g: np.ndarray
    """Grid of first-read (or programmed) conductances g_0 [S], increasing."""
    t: np.ndarray
    """Times after the first read [s]; the first is 0 s, where every quantile is 0 S."""
    p: np.ndarray
    """Probabilities [1] from 0 to 1."""
    q: np.ndarray
    """Quantiles of g(t) - g_0 shaped (len(g), len(t), len(p)) [S]."""
    tau: float
    """Time scale of the coordinate u = ln(1 + t/tau) used between table times [s]."""
    boot_mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    """Bootstrap replicates of the mean of g(t) - g_0, shaped (B, len(g), len(t)) [S]."""
    boot_std: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    """Bootstrap replicates of its standard deviation, shaped (B, len(g), len(t)) [S]."""
    t_fit_max: float = np.inf
    """Last measured time the table is fitted on [s]; later rows are extrapolated."""

    def __post_init__(self):
        for name in ("g", "t", "p", "q", "boot_mean", "boot_std"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        if self.q.shape != (self.g.size, self.t.size, self.p.size):
            raise ConfigError(f"relaxation table q has shape {self.q.shape}, expected "
                              f"{(self.g.size, self.t.size, self.p.size)}")
        if self.t.size < 2 or self.t[0] != 0 or np.any(np.diff(self.t) <= 0):
            raise ConfigError("relaxation table times must start at 0 s and increase")
        if not self.tau > 0:
            raise ConfigError(f"tau must be > 0 s, got {self.tau}")

    @property
    def mean(self) -> np.ndarray:
        """Mean of g(t) - g_0 on the (g, t) grid [S] (trapezoid over p)."""
        return np.trapezoid(self.q, self.p, axis=-1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of g(t) - g_0 on the (g, t) grid [S]."""
        m = self.mean
        return np.sqrt(np.maximum(np.trapezoid(self.q**2, self.p, axis=-1) - m**2, 0.0))

    def delta(self, g0: np.ndarray, t: float, p: np.ndarray) -> np.ndarray:
        """Change since the first read [S] of cells at ``g0`` [S] with deviates ``p`` [1]
        (1-D arrays of one length) at time ``t`` [s]."""
        ig, wg = bracket(self.g, g0)
        u_grid = np.log1p(self.t / self.tau)
        it, wt = bracket(u_grid, np.atleast_1d(np.log1p(t / self.tau)))
        it, wt = int(it[0]), float(wt[0])
        ip, wp = bracket(self.p, p)
        ip_hi = np.minimum(ip + 1, self.p.size - 1)
        out = np.zeros(g0.shape)
        for dg, fg in ((0, 1 - wg), (1, wg)):
            jg = np.minimum(ig + dg, self.g.size - 1)
            for dt, ft in ((0, 1 - wt), (1, wt)):
                if ft == 0:
                    continue
                # gather the two bracketing quantiles per cell only (not a whole row each)
                jt = min(it + dt, self.t.size - 1)
                lo = self.q[jg, jt, ip]
                hi = self.q[jg, jt, ip_hi]
                out += fg * ft * (lo + wp * (hi - lo))
        return out

    # -- the sampling steps of the numpy path (see composite.py) ----------------------------

    def draw(self, g_prog: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-cell state drawn at programming: the deviate ``p`` ~ U(0, 1) [1]."""
        return {"p": rng.random(g_prog.size)}

    def evolve(self, g0: np.ndarray, fields: Mapping[str, np.ndarray], t: float) -> np.ndarray:
        """g(t) [S] of cells programmed to ``g0`` [S] (1-D) with per-cell ``fields``."""
        return np.maximum(g0 + self.delta(g0, t, fields["p"]), 0.0)

    # -- files ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The table as quantities (type "relaxation_table")."""
        def q(v, u):
            return Quantity(np.asarray(v, dtype=np.float64), u)

        return {"type": "relaxation_table", "g": q(self.g, "S"), "t": q(self.t, "s"),
                "p": q(self.p, "1"), "quantiles": q(self.q, "S"), "tau": q(self.tau, "s"),
                "bootstrap_mean": q(self.boot_mean, "S"), "bootstrap_std": q(self.boot_std, "S"),
                "t_fit_max": q(self.t_fit_max, "s")}

    @staticmethod
    def from_dict(tree: Mapping[str, Any]) -> RelaxationTable:
        """Inverse of :meth:`to_dict` (the "type" key is not read)."""
        def get(key, units):
            return tree_array(tree, key, units, "drift")

        return RelaxationTable(get("g", "S"), get("t", "s"), get("p", "1"), get("quantiles", "S"),
                               float(get("tau", "s")), get("bootstrap_mean", "S"),
                               get("bootstrap_std", "S"), float(get("t_fit_max", "s")))
