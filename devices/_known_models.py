"""Import every module that registers device-model kinds (used when loading files)."""

from . import base, composite, fitted_calibrated  # noqa: F401
