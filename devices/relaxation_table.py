"""The quantile relaxation table: a drift block fitted by :mod:`xbarlab.calibration`.

g(t) = max(g_0 + Q(g_0, t, p), 0): tabulated quantiles Q of the change since the first read
(or since programming) over a grid of g_0, times t and probabilities p; one uniform deviate
p per cell, drawn at programming, so one cell follows one trajectory. Between grid points
the table is interpolated linearly (in g_0, in p, and in u = ln(1 + t/tau) between times);
outside its conductance grid and after its last time it holds its edge values.

Conditioned on where the cell landed: at grid level i the quantile is linear in the cell's
own g_0 within that level (the grid holds programming targets when ``level_by_target``,
and a cell then follows its target's level),

    Q_i(g_0, t, p) = q[i, t, p] + slope[i, t, p] (clip(g_0, g_lo[i], g_hi[i]) - g_ref[i]),

so the change depends on the programmed (or first-read) value inside a level, as a PCM
change proportional to g_0 or a relaxation toward the level's centre does. A cell inside
one level's range [g_lo, g_hi] follows that level alone (where a level's change depends on
g_0); levels whose ranges overlap are interpolated in g_0, and a gap between ranges is
bridged linearly. Where the levels are labelled (``level_by_label``: fitted on reads with a
level column) they may overlap in g_0, and g_0 alone cannot tell which level's centre a
cell relaxes toward: a cell given its level's conductance ``g_level`` at programming
(:meth:`~xbarlab.devices.composite.CompositeDevice.program`) follows that level (levels
between grid points interpolated in ``g_level``), within it conditioned on its own g_0;
a cell given no level is placed by its g_0 as above. A table without
``slope`` (the default; every file written before the field existed) draws the change
independently of g_0 within a level.
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

__all__ = ["RelaxationTable", "bracket", "sorted_quantiles"]


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


def sorted_quantiles(sorted_x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Quantiles at probabilities ``p`` [1] of values already sorted along the last axis,
    by numpy's default ('linear') rule: (..., n) -> (..., len(p)), in the values' unit.
    Sorting once and reading the order statistics avoids ``np.quantile``'s partition per
    probability (ten times faster for 101 probabilities of 2,000 values)."""
    n = sorted_x.shape[-1]
    pos = np.asarray(p, dtype=np.float64) * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    return sorted_x[..., lo] * (1 - frac) + sorted_x[..., hi] * frac


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
    slope: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    """d Q / d g_0 within a level, shaped like ``q`` [1]; empty (the default): the change
    does not depend on g_0 within a level."""
    g_ref: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per level, the g_0 at which ``q`` holds [S] (the level's mean first read); empty
    with ``slope``."""
    g_lo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per level, the lowest g_0 the slope applies to [S] (lower g_0 are held there)."""
    g_hi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per level, the highest g_0 the slope applies to [S] (higher g_0 are held there)."""
    level_by_target: bool = False
    """True: ``g`` holds programming targets and a cell follows its target's level (the
    change within it conditioned on g_0); False: ``g`` holds first reads g_0."""
    level_by_label: bool = False
    """True: ``g`` holds the conductances of labelled levels (each level's median first read
    [S]) and a cell programmed with its level's conductance ``g_level`` follows that level
    (the change within it conditioned on g_0); False (every file written before the field
    existed): a cell is placed among the levels by its g_0 (or its target)."""
    zero_stay: float = 0.0
    """s [1], in [0, 1]: the probability that a cell at g_0 = 0 S stays at 0 S for good (a
    cell with no conductance to drift or relax). Such a cell stays when its deviate p < s
    and otherwise changes as the table says at the deviate (p - s) / (1 - s) (one uniform
    serves both, so the stream and every other cell's change are those of ``s = 0``),
    clamped at 0 S. 0 (every file written before the field existed): no cell stays."""

    def __post_init__(self):
        for name in ("g", "t", "p", "q", "boot_mean", "boot_std", "slope", "g_ref", "g_lo",
                     "g_hi"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        if self.q.shape != (self.g.size, self.t.size, self.p.size):
            raise ConfigError(f"relaxation table q has shape {self.q.shape}, expected "
                              f"{(self.g.size, self.t.size, self.p.size)}")
        if self.slope.size:
            if self.slope.shape != self.q.shape:
                raise ConfigError(f"relaxation table slope has shape {self.slope.shape}, "
                                  f"expected that of q, {self.q.shape}")
            for name in ("g_ref", "g_lo", "g_hi"):
                if getattr(self, name).shape != self.g.shape:
                    raise ConfigError(f"relaxation table {name} has shape "
                                      f"{getattr(self, name).shape}, expected {self.g.shape}")
            if np.any(self.g_lo > self.g_hi):
                raise ConfigError("relaxation table needs g_lo <= g_hi at every level")
        if self.t.size < 2 or self.t[0] != 0 or np.any(np.diff(self.t) <= 0):
            raise ConfigError("relaxation table times must start at 0 s and increase")
        if not self.tau > 0:
            raise ConfigError(f"tau must be > 0 s, got {self.tau}")
        if not 0.0 <= self.zero_stay <= 1.0:
            raise ConfigError(f"zero_stay must lie in [0, 1], got {self.zero_stay!r}")
        if self.level_by_label and self.level_by_target:
            raise ConfigError("a relaxation table's levels are either programming targets "
                              "(level_by_target) or labelled levels (level_by_label), not both")

    @property
    def conditional(self) -> bool:
        """Whether the change depends on g_0 within a level (the table has a ``slope``)."""
        return bool(self.slope.size)

    @property
    def mean(self) -> np.ndarray:
        """Mean of g(t) - g_0 on the (g, t) grid [S] (trapezoid over p; at ``g_ref`` when
        the table is conditional)."""
        return np.trapezoid(self.q, self.p, axis=-1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of g(t) - g_0 on the (g, t) grid [S]."""
        m = self.mean
        return np.sqrt(np.maximum(np.trapezoid(self.q**2, self.p, axis=-1) - m**2, 0.0))

    def delta(self, g0: np.ndarray, t: float, p: np.ndarray,
              g_level: np.ndarray | None = None) -> np.ndarray:
        """Change since the first read [S] of cells at ``g0`` [S] with deviates ``p`` [1]
        (1-D arrays of one length) at time ``t`` [s]; ``g_level`` [S]: the cells' level
        coordinate (their programming targets, for a table with ``level_by_target``; their
        levels' conductances, for one with ``level_by_label``), default: placed by ``g0``.
        A cell at g_0 = 0 S with p < :attr:`zero_stay` changes by 0 S; one with p >= s
        takes the deviate (p - s) / (1 - s)."""
        s = self.zero_stay
        if s > 0:
            zero = g0 <= 0
            stay = zero & (p < s)
            if s < 1:
                p = np.where(zero & ~stay, (p - s) / (1.0 - s), p)
            return np.where(stay, 0.0, self._delta(g0, t, p, g_level))
        return self._delta(g0, t, p, g_level)

    def _delta(self, g0, t, p, g_level):
        if g_level is not None:
            ig, wg = bracket(self.g, g_level)
        else:
            ig, wg = bracket(self.g, g0)
            if self.conditional and self.g.size > 1:
                wg = self._level_weight(ig, wg, g0)
        u_grid = np.log1p(self.t / self.tau)
        it, wt = bracket(u_grid, np.atleast_1d(np.log1p(t / self.tau)))
        it, wt = int(it[0]), float(wt[0])
        ip, wp = bracket(self.p, p)
        ip_hi = np.minimum(ip + 1, self.p.size - 1)
        out = np.zeros(g0.shape)
        for dg, fg in ((0, 1 - wg), (1, wg)):
            jg = np.minimum(ig + dg, self.g.size - 1)
            if self.conditional:
                dx = np.clip(g0, self.g_lo[jg], self.g_hi[jg]) - self.g_ref[jg]
            for dt, ft in ((0, 1 - wt), (1, wt)):
                if ft == 0:
                    continue
                # gather the two bracketing quantiles per cell only (not a whole row each)
                jt = min(it + dt, self.t.size - 1)
                lo = self.q[jg, jt, ip]
                hi = self.q[jg, jt, ip_hi]
                if self.conditional:
                    lo = lo + self.slope[jg, jt, ip] * dx
                    hi = hi + self.slope[jg, jt, ip_hi] * dx
                out += fg * ft * (lo + wp * (hi - lo))
        return out

    def _level_weight(self, ig, wg, g0):
        """Weight of level ig + 1 for cells at ``g0`` [S]: a cell inside one level's range of
        first reads only follows that level; between two ranges it is interpolated across
        the gap; inside both (overlapping levels), or where neither level's change depends
        on g_0, it keeps the weight in g."""
        hi, lo = self.g_hi[ig], self.g_lo[ig + 1]
        moving = np.any(self.slope != 0, axis=(1, 2))
        in_a, in_b = g0 <= hi, g0 >= lo
        in_a = in_a | ~(moving[ig] | moving[ig + 1])  # no level depends on g_0: weight in g
        in_b = in_b | ~(moving[ig] | moving[ig + 1])
        gap = np.clip((g0 - hi) / np.where(lo > hi, lo - hi, 1.0), 0.0, 1.0)
        return np.where(in_a & ~in_b, 0.0, np.where(~in_a & in_b, 1.0,
                                                    np.where(~in_a & ~in_b, gap, wg)))

    # -- the sampling steps of the numpy path (see composite.py) ----------------------------

    def draw(self, g_prog: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-cell state drawn at programming: the deviate ``p`` ~ U(0, 1) [1]."""
        return {"p": rng.random(g_prog.size)}

    def evolve(self, g0: np.ndarray, fields: Mapping[str, np.ndarray], t: float) -> np.ndarray:
        """g(t) [S] of cells programmed to ``g0`` [S] (1-D) with per-cell ``fields``
        (``p``; ``g_level`` [S]: the targets, when the table's levels are targets, or the
        levels' conductances given at programming, when they are labelled)."""
        g_level = (fields.get("g_level") if self.level_by_target or self.level_by_label
                   else None)
        return np.maximum(g0 + self.delta(g0, t, fields["p"], g_level), 0.0)

    # -- files ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The table as quantities (type "relaxation_table"); the within-level fields
        (``slope``, ``g_ref``, ``g_lo``, ``g_hi``) only when the table is conditional,
        ``level_by_label`` and ``zero_stay`` only when set."""
        def q(v, u):
            return Quantity(np.asarray(v, dtype=np.float64), u)

        out = {"type": "relaxation_table", "g": q(self.g, "S"), "t": q(self.t, "s"),
               "p": q(self.p, "1"), "quantiles": q(self.q, "S"), "tau": q(self.tau, "s"),
               "bootstrap_mean": q(self.boot_mean, "S"), "bootstrap_std": q(self.boot_std, "S"),
               "t_fit_max": q(self.t_fit_max, "s")}
        if self.conditional:
            out.update(slope=q(self.slope, "1"), g_ref=q(self.g_ref, "S"),
                       g_lo=q(self.g_lo, "S"), g_hi=q(self.g_hi, "S"),
                       level_by_target=q(float(self.level_by_target), "1"))
        if self.level_by_label:
            out["level_by_label"] = q(1.0, "1")
        if self.zero_stay > 0:
            out["zero_stay"] = q(self.zero_stay, "1")
        return out

    @staticmethod
    def from_dict(tree: Mapping[str, Any]) -> RelaxationTable:
        """Inverse of :meth:`to_dict` (the "type" key is not read; a tree without
        ``slope`` is a table independent of g_0 within a level, one without
        ``level_by_label`` places cells by g_0, one without ``zero_stay`` lets every cell
        at 0 S change)."""
        def get(key, units):
            return tree_array(tree, key, units, "drift")

        within = {}
        if "slope" in tree:
            within = {"slope": get("slope", "1"), "g_ref": get("g_ref", "S"),
                      "g_lo": get("g_lo", "S"), "g_hi": get("g_hi", "S"),
                      "level_by_target": bool(get("level_by_target", "1"))}
        if "level_by_label" in tree:
            within["level_by_label"] = bool(get("level_by_label", "1"))
        if "zero_stay" in tree:
            within["zero_stay"] = float(get("zero_stay", "1"))
        return RelaxationTable(get("g", "S"), get("t", "s"), get("p", "1"), get("quantiles", "S"),
                               float(get("tau", "s")), get("bootstrap_mean", "S"),
                               get("bootstrap_std", "S"), float(get("t_fit_max", "s")),
                               **within)
