"""Checks of the crossbar's inputs: resistances, conductances and voltages.

Each function returns the value as a float64 array (or float) and raises
:class:`~xbarlab.errors.ConfigError` naming the parameter when it is out of range.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["as_resistance", "as_shape", "as_conductance", "as_voltages"]


def as_resistance(name: str, value) -> float | np.ndarray:
    """A scalar or array of resistances [Ohm], checked: finite and >= 0.

    Returns a float for a scalar, else a read-only float64 array; raises ConfigError naming
    ``name`` otherwise."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be a number or array of numbers [Ohm], got {value!r}"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite [Ohm]; got a non-finite value")
    if np.any(arr < 0):
        raise ConfigError(f"{name} must be >= 0 [Ohm]; got minimum {arr.min()!r}")
    if arr.ndim == 0:
        return float(arr)
    arr.setflags(write=False)
    return arr


def as_shape(name: str, value, shape: tuple, alt: str = "") -> np.ndarray:
    """``value`` as a float64 array of ``shape``: a scalar is broadcast (a new array), an array
    must have that shape already (ConfigError naming ``name`` otherwise; ``alt`` is appended to
    the message, e.g. the option that selects the shape)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(shape, float(arr))
    if arr.shape != shape:
        raise ConfigError(f"{name} has shape {arr.shape}; expected a scalar or shape {shape}{alt}")
    return arr



def as_conductance(G, name: str = "G") -> np.ndarray:
    """Cell conductances [S] checked: a float64 array of shape (M, N), M, N >= 1, finite and
    >= 0; ConfigError naming ``name`` otherwise."""
    try:
        G = np.asarray(G, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be an array of conductances [S], got {type(G).__name__}"
        ) from None
    if G.ndim != 2 or 0 in G.shape:
        raise ConfigError(
            f"{name} must have shape (M, N) with M, N >= 1 [S]; got shape {G.shape}"
        )
    if not np.all(np.isfinite(G)):
        raise ConfigError(f"{name} must be finite [S]; got a non-finite conductance")
    if np.any(G < 0):
        raise ConfigError(f"{name} must be >= 0 [S]; got minimum {G.min()!r}")
    return G


def as_voltages(v, M: int, name: str = "v") -> tuple[np.ndarray, bool]:
    """Driver voltages [V] checked: ``v`` (M,) or (B, M), finite. Returns (a C-contiguous
    (B, M) float64 array, whether ``v`` was a single vector)."""
    try:
        v = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an array of voltages [V]") from None
    if v.ndim not in (1, 2) or v.shape[-1] != M:
        raise ConfigError(f"{name} has shape {v.shape}; expected ({M},) or (B, {M}) [V]")
    # min and max catch NaN and +-inf without a temporary mask (keeps mvm near the bare product)
    if v.size and not (np.isfinite(v.min()) and np.isfinite(v.max())):
        raise ConfigError(f"{name} must be finite [V]; got a non-finite voltage")
    single = v.ndim == 1
    return np.ascontiguousarray(np.atleast_2d(v)), single
