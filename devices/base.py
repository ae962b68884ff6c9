"""The device-model protocol shared by devices/, calibration/, crossbar/ and nn/.

A device model turns requested conductances into what a chip shows:

- ``program(g, rng) -> DeviceState``: write the cells once (programming error,
  stuck-at faults, per-cell drift exponents... are drawn here and kept).
- ``drift(state, t) -> g(t)`` [S]: the deterministic part of the evolution after
  programming, without read noise.
- ``read(state, t, rng) -> g(t)`` [S]: drift plus read noise.
- ``sample(g, t, rng)``: program anew and read.

``g`` is the target conductance for ``conditioning == "target"`` models and the
cell's first read for ``conditioning == "initial read"`` models (a fitted
:class:`~xbarlab.devices.composite.CompositeDevice` of labelled levels also takes each
cell's level conductance, ``g_level``, as a keyword of ``program`` and ``sample``). ``t`` [s] is a
scalar (result shaped like ``g``) or a 1-D array of T times (result shaped
``(T, *g.shape)``, one trajectory per cell). Nothing mutates its inputs.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = [
    "Conditioning",
    "DeviceState",
    "DeviceModel",
    "DeviceModelBase",
    "IdealDevice",
    "check_conductance",
    "check_times",
    "check_dtype",
]


class Conditioning(enum.StrEnum):
    """What the input conductance of a model means."""

    TARGET = "target"
    INITIAL_READ = "initial read"


@dataclass(frozen=True, eq=False)
class DeviceState:
    """Per-cell state after programming (arrays all shaped like the input ``g``).

    ``g_input``: the conductance handed to ``program`` [S];
    ``g_prog``: the programmed conductance at t = 0 [S];
    ``seed``: key of the counter-based generator that later reads draw from;
    ``fields``: model-specific per-cell arrays (e.g. the drift exponent ``nu`` [1]).
    """

    g_input: np.ndarray
    g_prog: np.ndarray
    seed: int = 0
    fields: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.g_prog.shape


@runtime_checkable
class DeviceModel(Protocol):
    """What every device model offers (see the module docstring)."""

    conditioning: str
    g_range: tuple[float, float]

    def program(self, g, rng: np.random.Generator) -> DeviceState: ...

    def drift(self, state: DeviceState, t) -> np.ndarray: ...

    def read(self, state: DeviceState, t, rng: np.random.Generator) -> np.ndarray: ...

    def sample(self, g, t, rng: np.random.Generator, *, dtype=np.float64) -> np.ndarray: ...

    def to_file(self, path, *, force: bool = False, provenance=None) -> Path: ...


def check_conductance(g, name: str = "g", *, allow_negative: bool = False) -> np.ndarray:
    """Return ``g`` as a float64 array [S] after checking it is finite (and >= 0)."""
    try:
        arr = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numeric conductances in S, got {g!r}") from None
    if not np.all(np.isfinite(arr)):
        bad = arr[~np.isfinite(arr)].ravel()[0]
        raise ConfigError(f"{name} must be finite conductances in S, found {bad}")
    if not allow_negative and np.any(arr < 0):
        raise ConfigError(f"{name} must be >= 0 S, found {arr.min():.6g} S")
    return arr


def check_times(t, name: str = "t") -> tuple[np.ndarray, bool]:
    """Return ``(times as a 1-D float64 array [s], was_scalar)``; rejects t < 0 and NaN."""
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be times in s, got {t!r}") from None
    if arr.ndim > 1:
        raise ConfigError(f"{name} must be a scalar or a 1-D array of times, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite times in s, got {arr}")
    if np.any(arr < 0):
        raise ConfigError(f"{name} must be >= 0 s (time after programming), got {arr.min()} s")
    return np.atleast_1d(arr), arr.ndim == 0


def check_dtype(dtype) -> np.dtype:
    """``dtype`` as a numpy dtype; ConfigError unless it is float64 or float32."""
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ConfigError(f"dtype must be float64 or float32, got {dtype}")
    return dtype


class DeviceModelBase(abc.ABC):
    """Shared machinery: ``sample``, file round trip. Subclasses implement the physics."""

    kind: ClassVar[str] = ""
    conditioning: str = Conditioning.TARGET.value
    #: (lowest, highest) input conductance the model accepts [S].
    g_range: tuple[float, float] = (0.0, np.inf)

    @abc.abstractmethod
    def program(self, g, rng: np.random.Generator) -> DeviceState: ...

    @abc.abstractmethod
    def drift(self, state: DeviceState, t) -> np.ndarray: ...

    @abc.abstractmethod
    def read(self, state: DeviceState, t, rng: np.random.Generator) -> np.ndarray: ...

    def sample(self, g, t, rng: np.random.Generator, *, dtype=np.float64) -> np.ndarray:
        """Program ``g`` [S] anew and read at ``t`` [s]; float64 unless ``dtype`` says float32."""
        dtype = check_dtype(dtype)
        state = self.program(g, rng)
        return np.asarray(self.read(state, t, rng), dtype=dtype)

    # -- files ------------------------------------------------------------------------------

    @abc.abstractmethod
    def to_tree(self) -> dict[str, Any]:
        """Parameters as a tree of :class:`xbarlab.formats.Quantity` and plain values."""

    @classmethod
    @abc.abstractmethod
    def from_tree(cls, tree: Mapping[str, Any], *, provenance=None) -> DeviceModelBase:
        """Inverse of :meth:`to_tree` (checks units); ``provenance``: the file's."""

    def to_file(self, path, *, force: bool = False, provenance=None) -> Path:
        """Save to an HDF5 device-model file (atomic; refuses to overwrite unless asked).

        ``provenance``: written to the file's header; default: the model's own
        ``provenance`` attribute, if it has one.
        """
        from .. import formats

        if provenance is None:
            provenance = getattr(self, "provenance", None)
        tree = dict(self.to_tree())
        tree["conditioning"] = self.conditioning
        return formats.write_model_file(
            path,
            file_type="xbarlab-device-model",
            kind=self.kind,
            tree=tree,
            provenance=provenance,
            force=force,
        )


class IdealDevice(DeviceModelBase):
    """A perfect device: programs exactly, never drifts, reads without noise."""

    kind: ClassVar[str] = "ideal"

    def __init__(self, *, g_min: float = 0.0, g_max: float = np.inf):
        """``g_min``, ``g_max``: the accepted conductance range [S]."""
        if not (np.isfinite(g_min) and g_min >= 0):
            raise ConfigError(f"g_min must be a finite conductance >= 0 S, got {g_min}")
        if not g_max > g_min:
            raise ConfigError(f"g_max must exceed g_min = {g_min} S, got {g_max}")
        self.g_range = (float(g_min), float(g_max))

    def __repr__(self) -> str:
        return f"IdealDevice(g_min={self.g_range[0]!r}, g_max={self.g_range[1]!r})"

    def program(self, g, rng: np.random.Generator) -> DeviceState:
        arr = check_conductance(g)
        lo, hi = self.g_range
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ConfigError(f"g must lie in [{lo}, {hi}] S, got [{arr.min()}, {arr.max()}] S")
        return DeviceState(g_input=arr.copy(), g_prog=arr.copy(), seed=0)

    def drift(self, state: DeviceState, t) -> np.ndarray:
        times, scalar = check_times(t)
        if scalar:
            return state.g_prog.copy()
        return np.broadcast_to(state.g_prog, (times.size, *state.shape)).copy()

    def read(self, state: DeviceState, t, rng: np.random.Generator) -> np.ndarray:
        return self.drift(state, t)

    def to_tree(self) -> dict[str, Any]:
        from ..formats import Quantity

        return {"g_min": Quantity(self.g_range[0], "S"), "g_max": Quantity(self.g_range[1], "S")}

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any], *, provenance=None) -> IdealDevice:
        try:
            return cls(g_min=float(tree["g_min"].expect("S", "g_min")),
                       g_max=float(tree["g_max"].expect("S", "g_max")))
        except KeyError as exc:
            raise DataFormatError(f"ideal device-model file lacks {exc}") from None
