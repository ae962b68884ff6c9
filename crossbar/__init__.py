"""Circuit-level crossbar simulation: exact solves of the resistive grid.

Modules, each importing only those above it:

* :mod:`~xbarlab.crossbar.validation`: checks of conductances, resistances and voltages;
* :mod:`~xbarlab.crossbar.grid`: geometry and conventions (with a drawing), the wiring
  (:class:`WireParams`) and the canonical grid every solver receives;
* :mod:`~xbarlab.crossbar.solvers` (with its Numba kernels): grid solvers and the math behind
  them;
* :mod:`~xbarlab.crossbar.circuit`: :class:`Crossbar`, the exact solve of a standard array;
* :mod:`~xbarlab.crossbar.topologies`: other topologies as netlists; then
  :mod:`~xbarlab.crossbar.nonlinear`: nonlinear cells (Newton);
* :mod:`~xbarlab.crossbar.spice`: :func:`to_spice` (any topology and cell) and the ngspice
  cross-check;
* :mod:`~xbarlab.crossbar.currents`: :func:`column_currents` (any topology and cell);
* :mod:`~xbarlab.crossbar.converters`: DAC/ADC models; :mod:`~xbarlab.crossbar.tiling`: tiling
  of large layers; :mod:`~xbarlab.crossbar.study`: the IR-drop study.
"""

from .circuit import Crossbar, Solution
from .converters import ADC, DAC
from .currents import column_currents
from .grid import Drive, Grid, Sense, WireParams
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
