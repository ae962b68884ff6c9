r"""Energy dissipated in a crossbar read, from the exact circuit solve.

For one read pulse of duration ``t`` [s] the solve of :class:`xbarlab.crossbar.Crossbar`
gives every node voltage; each two-terminal branch (cell, access device, row and column wire
segment, driver output resistance, sense-amplifier input resistance) dissipates
``I dV t = G dV^2 t``. The sum over branches equals the energy the row drivers deliver,
``t sum_i v_i I_i`` with ``I_i`` the current driver ``i`` sends into its row (Tellegen's
theorem; the sense amplifiers hold 0 V and deliver nothing). :class:`ArrayEnergy` keeps both
sums so a caller (and the tests) can check one against the other.

Readout: current-mode sensing (the column held at virtual ground while the pulse lasts, the
geometry of :mod:`xbarlab.crossbar.grid`). Voltage-mode (integrating) readout, where the
column voltage rises on a capacitor during the pulse, is
:func:`xbarlab.energy.readout.integrating_readout` (closed form, ideal lines). Standard
arrays of linear cells (the grid solve). The differential topologies are standard arrays
physically: pass the physical array and drives of
:func:`xbarlab.crossbar.topologies.differential_array`. The 1T1R source-line topology and
nonlinear cells are not covered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..crossbar import Crossbar, Drive, Sense
from ..crossbar.validation import as_shape, as_voltages
from ..errors import ConfigError

__all__ = ["ArrayEnergy", "array_energy", "pulse_width_energy", "branch_powers"]


@dataclass(frozen=True, eq=False)
class ArrayEnergy:
    """Energy of a crossbar read by branch type, one value per input vector, each (B,) [J]."""

    cells: np.ndarray
    """E_cell [J]: dissipated in the memory cells (``I^2 / G``)."""
    access: np.ndarray
    """E_access [J]: dissipated in the cells' series access resistances."""
    row_wires: np.ndarray
    """E_row [J]: dissipated in the row-wire segments."""
    col_wires: np.ndarray
    """E_col [J]: dissipated in the column-wire segments."""
    drivers: np.ndarray
    """E_driver [J]: dissipated in the row drivers' output resistances."""
    sense: np.ndarray
    """E_sense [J]: dissipated in the sense amplifiers' input resistances."""
    source: np.ndarray
    """E_source [J]: delivered by the row drivers, ``t sum_i v_i I_i``; equals :attr:`total`
    up to rounding (Tellegen's theorem)."""

    @property
    def total(self) -> np.ndarray:
        """E [J]: the sum of the dissipated parts, (B,)."""
        return (self.cells + self.access + self.row_wires + self.col_wires + self.drivers
                + self.sense)

    def to_dict(self) -> dict[str, Any]:
        """Field name -> float64 array [J]."""
        return {f.name: np.array(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArrayEnergy:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ConfigError."""
        names = [f.name for f in dataclasses.fields(cls)]
        if set(d) != set(names):
            raise ConfigError(f"ArrayEnergy: keys {sorted(d)}; expected exactly {sorted(names)}")
        return cls(**{k: np.asarray(d[k], dtype=np.float64) for k in names})


def _seg_power(g: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """``g dv^2`` [W] with merged (infinite-conductance) segments dissipating 0."""
    fin = np.isfinite(g)
    return np.where(fin, np.where(fin, g, 0.0) * dv * dv, 0.0)


def _split(p: np.ndarray, r_a: np.ndarray, r_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split the power ``p`` of two series resistances ``r_a + r_b`` (same current)."""
    tot = r_a + r_b
    frac = np.divide(r_a, tot, out=np.zeros_like(tot), where=tot > 0)
    return p * frac, p * (1.0 - frac)


def branch_powers(xbar: Crossbar, v) -> dict[str, np.ndarray]:
    """Power [W] dissipated in each branch type of ``xbar`` for driver voltages ``v``.

    Parameters
    ----------
    xbar : Crossbar
        The array and its wiring (standard topology, linear cells).
    v : (M,) or (B, M) array [V]
        Row driver voltages.

    Returns
    -------
    dict
        ``cells``, ``access``, ``row_wires``, ``col_wires``, ``drivers``, ``sense``: (B,) [W]
        dissipated; ``source``: (B,) [W] delivered by the drivers.
    """
    if not isinstance(xbar, Crossbar):
        raise ConfigError(f"xbar must be a Crossbar, got {type(xbar).__name__}")
    M, N = xbar.shape
    v2, _ = as_voltages(v, M)
    sol = xbar.solve(v2)
    vr, vc = sol.row_voltages, sol.col_voltages
    grid, w = xbar.grid, xbar.wires
    both = xbar.drive is Drive.BOTH
    r_row = as_shape("r_row", w.r_row, (M, N + 1 if both else N))
    r_drv = as_shape("r_driver", w.r_driver, (M,))
    r_col = as_shape("r_col", w.r_col, (M, N))
    r_sns = as_shape("r_sense", w.r_sense, (N,))
    r_acc = as_shape("r_access", w.r_access, (M, N))
    vcol = v2[:, :, None]
    rext = np.concatenate([vcol, vr, vcol], axis=2)
    p_row = _seg_power(grid.g_row, rext[:, :, :-1] - rext[:, :, 1:])  # (B, M, N+1)
    p_drv, p_first = _split(p_row[:, :, 0], r_drv, r_row[:, 0])
    row_w = p_first.sum(axis=1) + p_row[:, :, 1:N].sum(axis=(1, 2))
    drv = p_drv.sum(axis=1)
    if both:
        p_drv2, p_last = _split(p_row[:, :, N], r_drv, r_row[:, N])
        drv = drv + p_drv2.sum(axis=1)
        row_w = row_w + p_last.sum(axis=1)
    zero = np.zeros((v2.shape[0], 1, N))
    cext = np.concatenate([zero, vc, zero], axis=1)
    p_col = _seg_power(grid.g_col, cext[:, :-1, :] - cext[:, 1:, :])  # (B, M+1, N)
    end = M if xbar.sense is Sense.BOTTOM else 0
    seg_end = r_col[M - 1] if end == M else r_col[0]
    p_sns, p_colend = _split(p_col[:, end, :], r_sns, seg_end)
    col_w = p_colend.sum(axis=1) + p_col[:, 1:M, :].sum(axis=(1, 2))
    icell = grid.g * (vr - vc)  # access resistance folded into grid.g
    G = xbar.G
    inv_g = np.divide(1.0, G, out=np.zeros_like(G), where=G > 0)
    isq = icell * icell
    return {
        "cells": (isq * inv_g).sum(axis=(1, 2)),
        "access": (isq * r_acc).sum(axis=(1, 2)),
        "row_wires": row_w,
        "col_wires": col_w,
        "drivers": drv,
        "sense": p_sns.sum(axis=1),
        "source": (v2 * icell.sum(axis=2)).sum(axis=1),
    }


def _duration(t, name: str) -> float:
    if isinstance(t, bool) or not isinstance(t, int | float) or not np.isfinite(t) or t < 0:
        raise ConfigError(f"{name} must be a finite duration >= 0 [s], got {t!r}")
    return float(t)


def array_energy(xbar: Crossbar, v, t_pulse: float) -> ArrayEnergy:
    """Energy [J] of read pulses of duration ``t_pulse`` with driver voltages ``v``.

    Each row of ``v`` is one pulse (one bit-serial cycle, or one multi-level input); the
    circuit is taken as settled for the whole pulse (current-mode sensing).

    Parameters
    ----------
    xbar : Crossbar
        The array and its wiring.
    v : (M,) or (B, M) array [V]
        Row driver voltages, one vector per pulse.
    t_pulse : float
        Pulse duration t [s], >= 0.

    Returns
    -------
    ArrayEnergy
        Per pulse (B,) [J]; ``total`` sums the branches, ``source`` is the drivers' energy.
    """
    t = _duration(t_pulse, "t_pulse")
    p = branch_powers(xbar, v)
    return ArrayEnergy(**{k: a * t for k, a in p.items()})


def pulse_width_energy(xbar: Crossbar, widths, v_read) -> ArrayEnergy:
    """Energy [J] of pulse-width-encoded inputs: row ``i`` is driven at ``v_read[i]`` for
    ``widths[i]`` seconds from t = 0 and held at 0 V afterwards.

    The set of driven rows changes each time a pulse ends; between two consecutive pulse ends
    the circuit is solved (settled) with the rows still on, and the energies of the intervals
    are summed: ``E = sum_k P(rows with width >= t_k) (t_k - t_{k-1})``.

    Parameters
    ----------
    xbar : Crossbar
        The array and its wiring.
    widths : (M,) or (B, M) array [s]
        Pulse widths, finite and >= 0.
    v_read : float or (M,) array [V]
        Pulse amplitude of each row (its sign included).

    Returns
    -------
    ArrayEnergy
        One value per input vector, (B,) [J].
    """
    M = xbar.shape[0]
    w = np.asarray(widths, dtype=np.float64)
    if w.ndim not in (1, 2) or w.shape[-1] != M:
        raise ConfigError(f"widths has shape {w.shape}; expected ({M},) or (B, {M}) [s]")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        bad = w[~(np.isfinite(w) & (w >= 0))].ravel()[0]
        raise ConfigError(f"widths must be finite and >= 0 [s], got {bad!r}")
    amp = np.asarray(v_read, dtype=np.float64)
    if amp.shape not in ((), (M,)):
        raise ConfigError(f"v_read has shape {amp.shape}; expected a scalar or ({M},) [V]")
    amp = as_voltages(np.broadcast_to(amp, (M,)), M, "v_read")[0][0]
    w2 = np.atleast_2d(w)
    parts: list[dict[str, float]] = []
    for row in w2:
        ends = np.unique(row[row > 0])
        acc = dict.fromkeys((f.name for f in dataclasses.fields(ArrayEnergy)), 0.0)
        if ends.size:
            drive = np.where(row[None, :] >= ends[:, None], amp[None, :], 0.0)
            dt = np.diff(np.concatenate([[0.0], ends]))
            for k, a in branch_powers(xbar, drive).items():
                acc[k] = float(a @ dt)
        parts.append(acc)
    return ArrayEnergy(**{k: np.array([p[k] for p in parts]) for k in parts[0]})
