r"""Energy of charging the array's lines: ``C V^2`` per toggle, toggles from the actual inputs.

A line of capacitance ``C`` [F] switched from level ``V_a`` to ``V_b`` by the rail at
``V_b`` draws the charge ``C (V_b - V_a)`` from that rail, i.e. the energy
``C V_b (V_b - V_a)``. Over a sequence that starts and ends at the rest level this is the
energy dissipated by the switching; for binary inputs at amplitude ``V`` it is ``C V^2`` per
rising edge (half dissipated while charging, half when the line is discharged).

The capacitance of a line of ``n`` cells is ``n (c_wire p + c_junction)``: the wire's
capacitance per length ``c_wire`` [F/m] over the cell pitch ``p`` [m], and one junction
(cell) capacitance ``c_junction`` [F] to the crossing line, which sits at a fixed potential
(the sense amplifiers' virtual ground, or a driver) during a read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .params import check_quantity, dataclass_from_dict, dataclass_to_dict

__all__ = ["LineCapacitance", "line_capacitance", "charging_energy", "rising_edges"]


@dataclass(frozen=True)
class LineCapacitance:
    """Capacitances of the array's wiring (one value per technology and layout)."""

    c_wire: float
    """c_wire [F/m]: wire capacitance per unit length (to ground and neighbours)."""
    c_junction: float
    """c_junction [F]: capacitance of one cell between its row and its column line."""
    pitch: float
    """p [m]: cell pitch along a line (square cells: the same along rows and columns)."""

    def __post_init__(self):
        check_quantity("LineCapacitance", "c_wire", self.c_wire, "F/m")
        check_quantity("LineCapacitance", "c_junction", self.c_junction, "F")
        check_quantity("LineCapacitance", "pitch", self.pitch, "m", positive=True)

    @property
    def per_cell(self) -> float:
        """C per cell of a line [F]: ``c_wire pitch + c_junction``."""
        return self.c_wire * self.pitch + self.c_junction

    def to_dict(self) -> dict[str, Any]:
        """Field name -> float (SI units: F/m, F, m)."""
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineCapacitance:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        return dataclass_from_dict(cls, d)


def line_capacitance(caps: LineCapacitance, n_cells: int) -> float:
    """Capacitance C [F] of one line crossing ``n_cells`` cells: ``n (c_wire p + c_junction)``.

    Parameters
    ----------
    caps : LineCapacitance
        Wire and junction capacitances and the pitch.
    n_cells : int
        Cells on the line (N for a row of an M x N array, M for a column), >= 1.
    """
    if isinstance(n_cells, bool) or not isinstance(n_cells, int | np.integer) or n_cells < 1:
        raise ConfigError(f"n_cells must be an integer >= 1, got {n_cells!r}")
    return int(n_cells) * caps.per_cell


def charging_energy(c_line, levels, *, v_rest: float = 0.0) -> np.ndarray:
    """Energy [J] drawn from the rails to drive lines through a sequence of levels.

    Each step from ``V_a`` to ``V_b`` costs ``C V_b (V_b - V_a)`` (the rail at ``V_b``
    delivers the charge ``C (V_b - V_a)``); the sequence starts at ``v_rest`` and returns to
    it after the last level. Binary inputs at amplitude ``V`` give ``C V^2`` per rising edge.

    Parameters
    ----------
    c_line : float or array [F]
        Capacitance of each line, >= 0, broadcast against ``levels[..., 0]``.
    levels : (..., T) array [V]
        Line voltage during each of ``T`` cycles (bit-serial bits times the read voltage,
        multi-level DAC outputs, ...), finite.
    v_rest : float
        Rest level [V] before the first and after the last cycle.

    Returns
    -------
    array [J]
        Energy per line, shape ``levels.shape[:-1]`` broadcast with ``c_line``.
    """
    c = np.asarray(c_line, dtype=np.float64)
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        bad = c[~(np.isfinite(c) & (c >= 0))].ravel()[0]
        raise ConfigError(f"c_line must be finite and >= 0 [F], got {bad!r}")
    lv = np.asarray(levels, dtype=np.float64)
    if lv.ndim < 1 or not np.all(np.isfinite(lv)):
        raise ConfigError(f"levels must be a finite array (..., T) [V], got shape {lv.shape}")
    if isinstance(v_rest, bool) or not isinstance(v_rest, int | float) or not np.isfinite(v_rest):
        raise ConfigError(f"v_rest must be a finite voltage [V], got {v_rest!r}")
    rest = float(v_rest)
    pad = np.full(lv.shape[:-1] + (1,), rest)
    seq = np.concatenate([pad, lv, pad], axis=-1)
    steps = seq[..., 1:] * (seq[..., 1:] - seq[..., :-1])
    return c * steps.sum(axis=-1)


def rising_edges(bits) -> np.ndarray:
    """Number of 0 -> 1 transitions of each bit stream (starting from 0), ``(...)`` int.

    Parameters
    ----------
    bits : (..., T) array of 0/1
        Bit streams, one per line, over ``T`` cycles.
    """
    b = np.asarray(bits)
    if b.ndim < 1 or not np.all((b == 0) | (b == 1)):
        raise ConfigError("bits must be an array (..., T) of 0 and 1")
    b = b.astype(np.int8)
    prev = np.concatenate([np.zeros(b.shape[:-1] + (1,), np.int8), b[..., :-1]], axis=-1)
    return ((b == 1) & (prev == 0)).sum(axis=-1)
