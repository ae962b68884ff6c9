"""The sense currents of any crossbar array: :func:`column_currents` picks the solve.

Standard arrays of linear cells go to the grid solve of :mod:`xbarlab.crossbar.circuit`; other
topologies (:mod:`xbarlab.crossbar.topologies`) and nonlinear cells
(:mod:`xbarlab.crossbar.nonlinear`, Newton's method) to the netlist of the topology. Which
solver serves what is listed in :mod:`xbarlab.crossbar.topologies`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError
from .circuit import standard_currents
from .grid import Drive, Sense, WireParams
from .nonlinear import newton_solve
from .topologies import (
    Circuit,
    Topology,
    grid_currents,
    is_grid_solver,
    is_standard_linear,
    physical_inputs,
)

__all__ = ["column_currents"]


def column_currents(
    G,
    v,
    *,
    topology: Topology | str = Topology.STANDARD,
    cell=None,
    r_row=0.0,
    r_col=0.0,
    r_driver=0.0,
    r_sense=0.0,
    r_access=0.0,
    r_source=0.0,
    v_read: float | None = None,
    sense: Sense | str = Sense.BOTTOM,
    drive: Drive | str = Drive.LEFT,
    source_end: str = "top",
    solver: Callable | None = None,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> np.ndarray:
    """Exact sense-amplifier currents I [A] of a crossbar array of any topology, linear or
    nonlinear cells.

    Parameters
    ----------
    G : (M, N) array [S], or (G_pos, G_neg) for the differential topologies
        Cell conductances (row i = input wire, column j = output wire). The standard topology
        with linear cells also takes (K, M, N): K independent arrays, with ``v`` (K, M) or
        (K, B, M) and a result (K, N) or (K, B, N).
    v : (M,) or (B, M) array [V]
        Row driver voltages; for ``topology="source-line"`` the gate states 0 or 1 per row.
    topology : Topology or str
        "standard", "source-line", "differential-columns" or "differential-rows" (see
        :mod:`xbarlab.crossbar.topologies`).
    cell : PolynomialCell, SinhCell or None
        None for linear cells (``I = G V``), else a model of :mod:`xbarlab.crossbar.nonlinear`
        solved by Newton's method.
    r_row, r_col, r_driver, r_sense, r_access : float or array [Ohm]
        Series resistances as in :class:`~xbarlab.crossbar.grid.WireParams` (shapes of the
        physical array for the differential topologies).
    r_source : float or (M, N) array [Ohm]
        Source-line segment per cell (``topology="source-line"`` only).
    v_read : float [V] or None
        Source-line supply voltage (``topology="source-line"`` only).
    sense : Sense or {"bottom", "top"}
        Where the sense amplifiers sit.
    drive : Drive or {"left", "both"}
        Which ends of the rows are driven.
    source_end : {"top", "bottom"}
        Where the source lines are driven (``topology="source-line"``).
    solver : callable or None
        None (each path's default), a grid solver (:func:`~xbarlab.crossbar.pcg`,
        :func:`~xbarlab.crossbar.direct`) or a sparse netlist solver ``solver(K, b) -> x``
        such as :func:`~xbarlab.crossbar.topologies.direct_solver` (which selects the netlist
        solve even for a standard array of linear cells).
    tol : float
        Kirchhoff residual accepted by the netlist and Newton solves (relative to the terms
        of the node current sums); the grid solve checks its own (``RESIDUAL_RTOL``).
    max_iter : int
        Newton iterations at most (nonlinear cells).

    Returns
    -------
    (N,) or (B, N) float64 array [A]
        The sense currents; for "differential-columns" the subtracted pair outputs.
    """
    if solver is not None and not callable(solver):
        raise ConfigError(f"solver must be a callable like pcg() or direct(), got {solver!r}")
    netlist_solver = solver is not None and not is_grid_solver(solver)
    if is_standard_linear(topology, cell, v_read, r_source) and not netlist_solver:
        wires = WireParams(
            r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense, r_access=r_access
        )
        return standard_currents(G, v, wires=wires, sense=sense, drive=drive, solver=solver)
    phys = physical_inputs(G, v, topology, cell=cell, v_read=v_read)
    out = np.empty((phys.v.shape[0], phys.G.shape[1]))
    for circ, v_src, rows in phys.circuits(
        r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense, r_access=r_access,
        r_source=r_source, sense=sense, drive=drive, source_end=source_end,
    ):
        out[rows] = _solve(circ, phys.G, v_src, cell, solver, tol, max_iter)
    out = phys.combine(out)
    return out[0] if phys.single else out


def _solve(circ: Circuit, Gp, v_src, cell, solver, tol, max_iter) -> np.ndarray:
    """Sense currents (B, n_sense) [A] of one netlist: linear cells by the sparse netlist solve
    (``solver(K, b)``, default :func:`~xbarlab.crossbar.topologies.direct_solver`) or, with a
    grid solver, by the grid's ``Crossbar``; nonlinear cells by
    :func:`~xbarlab.crossbar.nonlinear.newton_solve`."""
    if cell is None:
        if is_grid_solver(solver):
            return grid_currents(circ, Gp, v_src, solver)
        _, I = circ.solve_linear(Gp.ravel(), v_src, solver=solver, tol=tol)
        return I
    return newton_solve(circ, cell, Gp, v_src, solver=solver, tol=tol, max_iter=max_iter).currents
