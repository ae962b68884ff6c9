"""Fits of device statistics from measured data.

``fit(measurements, ...)`` returns a :class:`CalibratedDevice` (a device model with the
``program``/``drift``/``read``/``sample`` verbs, provenance and a fit report);
``write_report`` writes the plots and ``report.md``; ``ks_table`` scores any device
model against measured reads; ``split_devices`` makes the held-out splits of the tests.
Submodules are imported on first use, so importing this package stays light.
"""

from __future__ import annotations

import importlib

# The measurement readers live in xbarlab.formats (numpy only, no numba).
from ..formats import Measurements, read_measurements

__all__ = [
    "read_measurements",
    "Measurements",
    "fit",
    "FitReport",
    "CalibratedDevice",
    "Family",
    "ks_table",
    "KSTable",
    "split_devices",
    "baseline_tables",
    "write_report",
    "fit_psd_exponent",
]

_LAZY = {
    "fit": "._fit",
    "FitReport": "._fit",
    "CalibratedDevice": "._model",
    "Family": "._model",
    "ks_table": "._score",
    "KSTable": "._goodness",
    "split_devices": "._score",
    "baseline_tables": "._score",
    "write_report": "._report",
    "fit_psd_exponent": "._readnoise",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
