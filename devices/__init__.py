"""Device physics: programming error, drift/relaxation and read noise of analog NVM cells.

Public names: the :class:`DeviceModel` protocol, :func:`load`, :func:`available_presets`;
the one device model :class:`CompositeDevice` and its blocks (``composite.py``;
parametric blocks in ``blocks.py``/``curves.py``, fitted ones in ``fitted.py`` and
``relaxation_table.py``), the file kinds (``registry.py``) and the weight-conductance
mapping (``mapping.py``) are imported from their modules, so that ``import
xbarlab.devices`` does not compile Numba kernels. Pulsed-update devices for training in
situ (``pulsed.py``, presets in ``pulsed_presets.py``) are imported from their modules too.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import (
    Conditioning,
    DeviceModel,
    DeviceModelBase,
    DeviceState,
    IdealDevice,
)
from .registry import model_from_tree

__all__ = [
    "Conditioning",
    "DeviceModel",
    "DeviceModelBase",
    "DeviceState",
    "IdealDevice",
    "available_presets",
    "load",
    "model_from_tree",
    "CompositeDevice",
    "compose",
    "WeightMapping",
]

# imported on first use, so that ``import xbarlab.devices`` compiles no Numba kernel
_LAZY = {"CompositeDevice": ".composite", "compose": ".composite", "WeightMapping": ".mapping"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PRESETS: dict[str, object] = {"ideal": IdealDevice}


def available_presets() -> list[str]:
    """Names accepted by :func:`load` besides file paths."""
    from .presets import preset_names

    return sorted({*_PRESETS, *preset_names()})


def load(name_or_path) -> DeviceModel:
    """A preset by name, or a device-model file (the model carries the file's provenance).

    A :class:`pathlib.Path`, a string with a path separator or an ``.h5``/``.hdf5``
    suffix is a file; anything else is a preset name.
    """
    is_path = isinstance(name_or_path, Path) or (
        isinstance(name_or_path, str)
        and ("/" in name_or_path or "\\" in name_or_path
             or name_or_path.lower().endswith((".h5", ".hdf5")))
    )
    if is_path:
        from .. import formats
        from ..errors import malformed_file

        kind, tree, prov = formats.read_model_file(name_or_path, file_type="xbarlab-device-model")
        with malformed_file(name_or_path, f"an xbarlab device model of kind {kind!r}"):
            return model_from_tree(kind, tree, prov)
    if not isinstance(name_or_path, str) or name_or_path not in available_presets():
        raise ConfigError(
            f"unknown device preset {name_or_path!r}; valid names: {available_presets()}"
        )
    if name_or_path in _PRESETS:
        return _PRESETS[name_or_path]()
    from .presets import build

    return build(name_or_path)
