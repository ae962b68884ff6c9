"""Fits of device statistics from measured data.

``fit(measurements, ...)`` returns a :class:`~xbarlab.devices.composite.CompositeDevice`
made of fitted blocks (the one device model, with provenance and a fit report);
``write_report`` writes the plots, ``report.md`` and ``report.html``; ``ks_table`` scores any
device model against measured reads and ``goodness_table`` puts that beside its sampling floor
and two baselines; ``split_devices`` makes the held-out splits of the tests. Pulsed-update devices:
``fit_pulsed_ramps`` (conductance ramps) and ``fit_step_table`` (a step table) return a
:class:`~xbarlab.calibration.pulsed.PulseFit`; ``ramp_goodness`` / ``table_goodness`` score
it and ``write_pulse_report`` writes its report.
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
    "ks_table",
    "KSTable",
    "goodness_table",
    "GoodnessTable",
    "split_devices",
    "baseline_tables",
    "write_report",
    "fit_psd_exponent",
    "fit_pulsed_ramps",
    "fit_step_table",
    "PulseFit",
    "StepForm",
    "ramp_goodness",
    "table_goodness",
    "write_pulse_report",
]

_LAZY = {
    "fit": ".fitting",
    "FitReport": ".fitting",
    "ks_table": ".goodness",
    "KSTable": ".goodness",
    "goodness_table": ".goodness",
    "GoodnessTable": ".goodness",
    "split_devices": ".goodness",
    "baseline_tables": ".goodness",
    "write_report": ".report",
    "fit_psd_exponent": ".readnoise",
    "fit_pulsed_ramps": ".pulsed",
    "fit_step_table": ".pulsed",
    "PulseFit": ".pulsed",
    "StepForm": ".pulsed",
    "ramp_goodness": ".pulsed_goodness",
    "table_goodness": ".pulsed_goodness",
    "write_pulse_report": ".pulsed_report",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
