"""Shared checks and dictionary conversion of the energy models' parameter dataclasses."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["check_quantity", "dataclass_to_dict", "dataclass_from_dict"]


def check_quantity(owner: str, name: str, value, unit: str, *, positive: bool = False) -> float:
    """``value`` as a float if it is a finite number >= 0 (> 0 with ``positive``); otherwise a
    one-line :class:`~xbarlab.errors.ConfigError` naming ``owner.name``, the value and ``unit``.
    """
    ok = (not isinstance(value, bool) and isinstance(value, int | float)
          and math.isfinite(value) and (value > 0 if positive else value >= 0))
    if not ok:
        want = "> 0" if positive else ">= 0"
        raise ConfigError(f"{owner}.{name} must be a finite number {want} [{unit}], got {value!r}")
    return float(value)


def dataclass_to_dict(obj) -> dict[str, Any]:
    """Field name -> value of a flat dataclass of numbers and string enums."""
    return {f.name: (v.value if hasattr(v := getattr(obj, f.name), "value") else v)
            for f in dataclasses.fields(obj)}


def dataclass_from_dict(cls, d: Mapping[str, Any]):
    """``cls(**d)`` after refusing unknown keys with a ConfigError that lists the valid ones."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; "
                          f"valid: {sorted(names)}")
    return cls(**dict(d))
