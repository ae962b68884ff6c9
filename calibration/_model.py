"""The calibrated device model lives in :mod:`xbarlab.devices.fitted_calibrated`."""

from ..devices.fitted_calibrated import (  # noqa: F401
    CalibratedDevice,
    Curve,
    Family,
    PowerLawBlock,
    ProgrammingBlock,
    ReadNoiseBlock,
    RelaxationBlock,
)

__all__ = [
    "Family",
    "Curve",
    "ProgrammingBlock",
    "PowerLawBlock",
    "RelaxationBlock",
    "ReadNoiseBlock",
    "CalibratedDevice",
]
