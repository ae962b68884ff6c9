"""Checks of the crossbar's inputs: resistances, conductances and voltages.

Each function returns the value as a float64 array (or float) and raises
:class:`~xbarlab.errors.ConfigError` naming the parameter when it is out of range.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

__all__ = ["as_float_array", "as_resistance", "as_shape", "as_conductance", "as_voltages"]


def as_float_array(value, name: str, what: str) -> np.ndarray:
    """``value`` as a float64 array (no copy where it is one already); ConfigError
    "``name`` must be ``what``" when it holds anything but numbers."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {what}, got {type(value).__name__}") from None


def as_resistance(name: str, value) -> float | np.ndarray:
    """A scalar or array of resistances [Ohm], checked: finite and >= 0.

    Returns a float for a scalar, else a read-only float64 array; raises ConfigError naming
    ``name`` otherwise."""
    arr = np.array(as_float_array(value, name, "a number or array of numbers [Ohm]"))
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
    G = as_float_array(G, name, "an array of conductances [S]")
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
    v = as_float_array(v, name, "an array of voltages [V]")
    if v.ndim not in (1, 2) or v.shape[-1] != M:
        raise ConfigError(f"{name} has shape {v.shape}; expected ({M},) or (B, {M}) [V]")
    # min and max catch NaN and +-inf without a temporary mask (keeps mvm near the bare product)
    if v.size and not (np.isfinite(v.min()) and np.isfinite(v.max())):
        raise ConfigError(f"{name} must be finite [V]; got a non-finite voltage")
    single = v.ndim == 1
    return np.ascontiguousarray(np.atleast_2d(v)), single
