"""Circuit-level crossbar simulation: exact solves of the resistive grid.

Geometry, conventions and the canonical grid: :mod:`xbarlab.crossbar.circuit` (with a drawing);
solvers and the math behind them: :mod:`xbarlab.crossbar.solvers`; SPICE export and the
ngspice cross-check: :mod:`xbarlab.crossbar.spice`.
"""

from .circuit import Crossbar, Drive, Grid, Sense, Solution, WireParams, column_currents
from .solvers import direct, pcg
from .spice import ngspice_column_currents, read_rawfile, run_ngspice, to_spice

__all__ = [
    "column_currents",
    "Crossbar",
    "WireParams",
    "Sense",
    "Drive",
    "Solution",
    "Grid",
    "pcg",
    "direct",
    "to_spice",
    "run_ngspice",
    "read_rawfile",
    "ngspice_column_currents",
]
