"""Circuit-level crossbar simulation: exact solves of the resistive grid.

Geometry, conventions and the canonical grid: :mod:`xbarlab.crossbar.circuit` (with a drawing);
solvers and the math behind them: :mod:`xbarlab.crossbar.solvers`; SPICE export and the
ngspice cross-check: :mod:`xbarlab.crossbar.spice`; nonlinear cells (Newton):
:mod:`xbarlab.crossbar.nonlinear`; other topologies: :mod:`xbarlab.crossbar.topologies`;
DAC/ADC models: :mod:`xbarlab.crossbar.converters`; tiling of large layers:
:mod:`xbarlab.crossbar.tiling`.
"""

from .circuit import Crossbar, Drive, Grid, Sense, Solution, WireParams, column_currents
from .converters import ADC, DAC
from .nonlinear import PolynomialCell, SinhCell
from .solvers import direct, pcg
from .spice import ngspice_column_currents, read_rawfile, run_ngspice, to_spice
from .tiling import TileConfig, TiledMatrix, tiled_conv2d, tiled_matmul
from .topologies import Topology

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
    "DAC",
    "ADC",
    "PolynomialCell",
    "SinhCell",
    "Topology",
    "TileConfig",
    "TiledMatrix",
    "tiled_matmul",
    "tiled_conv2d",
]
