"""Device-model file kinds and the function that rebuilds each from its tree.

Files store a ``kind`` next to the model's tree. :data:`LOADERS` maps every kind that
xbarlab writes or wrote to a loader ``(tree, provenance) -> model``; it is a plain dict
filled here, so that loading a file needs no module to have been imported before.

- ``"composite"``: :class:`~xbarlab.devices.composite.CompositeDevice` (every preset and
  fitted model; layout versions 1 and 2);
- ``"calibrated"``: fitted models in the layout of xbarlab 0.1.0, read into the same class
  with the same blocks (:func:`~xbarlab.devices.fitted.model_args_from_calibrated_tree`);
- ``"ideal"``: :class:`~xbarlab.devices.base.IdealDevice`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DataFormatError
from .base import DeviceModelBase, IdealDevice

__all__ = ["LOADERS", "model_from_tree"]


def _composite(tree: Mapping[str, Any], provenance) -> DeviceModelBase:
    # imported here: the composite model imports the Numba kernels
    from .composite import CompositeDevice

    return CompositeDevice.from_tree(tree, provenance=provenance)


def _calibrated(tree: Mapping[str, Any], provenance) -> DeviceModelBase:
    from .composite import CompositeDevice
    from .fitted import model_args_from_calibrated_tree

    return CompositeDevice(**model_args_from_calibrated_tree(tree), provenance=provenance)


def _ideal(tree: Mapping[str, Any], provenance) -> DeviceModelBase:
    return IdealDevice.from_tree(tree, provenance=provenance)


#: kind stored in a device-model file -> loader ``(tree, provenance) -> model``.
LOADERS: dict[str, Callable[[Mapping[str, Any], Any], DeviceModelBase]] = {
    "composite": _composite,
    "calibrated": _calibrated,
    "ideal": _ideal,
}


def model_from_tree(kind: str, tree: Mapping[str, Any], provenance=None) -> DeviceModelBase:
    """Rebuild a model from the ``kind`` and tree of a model file (``provenance``: the
    file's, kept on models that carry one)."""
    if kind not in LOADERS:
        raise DataFormatError(
            f"device-model kind {kind!r} is unknown; known kinds: {sorted(LOADERS)}")
    return LOADERS[kind](tree, provenance)
