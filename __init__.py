"""xbarlab: analog non-volatile-memory compute-in-memory simulator.

Subpackages (imported on demand, so ``import xbarlab`` stays light):
``xbarlab.devices`` (device physics), ``xbarlab.crossbar`` (circuit solver),
``xbarlab.energy`` (energy, latency and area of a read), ``xbarlab.calibration`` (fits from
measured data), ``xbarlab.nn`` (torch bridge).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
