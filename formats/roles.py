"""Roles of a measurement table's columns and the checks every reader applies to them.

A measurement table is one row per read; each column plays a role (``g``, ``time``,
``device``, ...; :data:`ROLES`). The readers of every layout and container (text tables in
:mod:`.text_tables`, HDF5/.npz in :mod:`.array_tables`) find their columns with
:func:`role_columns` and convert them to SI with :func:`finish_role`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = ["TableLayout", "TimeOrigin", "ROLES", "SI_UNITS", "FLOAT_ROLES", "INT_ROLES",
           "UNIT_FALLBACK", "choice", "ReadOptions", "TablePart", "role_columns",
           "check_name_unit", "same_unit", "finish_role", "factorize"]


class TableLayout(enum.StrEnum):
    """How a measurement table is laid out (closed choice)."""

    LONG = "long"  #: one row per read, one column per role
    WIDE = "wide"  #: one column per programmed target, the target value in its header
    TIMESERIES = "timeseries"  #: one row per device/level, samples along the row


class TimeOrigin(enum.StrEnum):
    """What ``time = 0`` means in a table."""

    PROGRAMMING = "programming"  #: time counts from the end of programming
    FIRST_READ = "first read"  #: time counts from the cell's first read (``g_initial``)


#: role -> (quantity kind, description). The SI unit of a kind is in :data:`SI_UNITS`.
ROLES: dict[str, tuple[str, str]] = {
    "device": ("dimensionless", "device id (any label)"),
    "g": ("conductance", "measured conductance [S]"),
    "time": ("time", "read time [s] after programming (or after the first read)"),
    "time_point": ("time", "nominal time a read belongs to [s]"),
    "g_target": ("conductance", "programming target [S]"),
    "g_initial": ("conductance", "the cell's first read after programming [S]"),
    "level": ("dimensionless", "programmed level index"),
    "cycle": ("dimensionless", "repeated-read index"),
    "v_read": ("voltage", "read voltage [V]"),
    "temperature": ("temperature", "temperature [K]"),
}
#: SI unit per quantity kind.
SI_UNITS = {"conductance": "S", "time": "s", "voltage": "V", "temperature": "K",
            "dimensionless": "1"}
FLOAT_ROLES = ("g", "time", "time_point", "g_target", "g_initial", "v_read", "temperature")
INT_ROLES = ("level", "cycle")
#: Roles whose unit defaults to another role's unit when ``units`` does not name them.
UNIT_FALLBACK = {"g_target": "g", "g_initial": "g", "time_point": "time"}


def choice(enum_cls, value, what: str):
    """``enum_cls(value)``; a ConfigError naming ``what`` and the valid values otherwise."""
    try:
        return enum_cls(value)
    except ValueError:
        valid = ", ".join(repr(e.value) for e in enum_cls)
        raise ConfigError(f"{what} {value!r} is not one of {valid}") from None


@dataclass
class ReadOptions:
    """The reading options of :func:`~xbarlab.formats.read_measurements`, checked."""

    layout: TableLayout
    columns: dict[str, str]
    units: dict[str, str]
    given_units: dict[str, str]
    strict: bool
    header: bool | None
    delimiter: str | None
    sample_rate: float | None
    samples_from: int | None


@dataclass
class TablePart:
    """One file's table before merging: SI arrays, device keys, where each row came from."""

    path: Path
    n: int
    arrays: dict[str, np.ndarray]
    device_keys: np.ndarray | None  # raw labels per row (None: implicit ids below)
    device_ids: np.ndarray | None  # implicit device ids per row (cell/row/column index)
    columns: dict[str, str]
    units: dict[str, str]
    n_missing: int = 0
    time_origin: str | None = None
    locate: Any = None  # row index -> "line L, column C" text


def _resolve(text_names, n_cols: int | None, source: str, role: str, path: Path) -> int | str:
    """Index (text) or name (HDF5/npz) of the column ``source`` names for ``role``."""
    import difflib

    if text_names is not None and source in text_names:
        if text_names.count(source) > 1:
            raise DataFormatError(f"{path}: column name {source!r} (for role {role}) appears "
                                  f"{text_names.count(source)} times in the header; name it "
                                  "by 0-based position instead")
        return text_names.index(source) if n_cols is not None else source
    if n_cols is not None and source.isdigit():
        j = int(source)
        if j < n_cols:
            return j
        raise DataFormatError(f"{path}: column {j} (for role {role}) does not exist; the file "
                              f"has {n_cols} columns, 0..{n_cols - 1}")
    if text_names:
        close = difflib.get_close_matches(source, text_names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataFormatError(f"{path} has no column {source!r} (for role {role}); its columns "
                              f"are {text_names}{hint}")
    raise DataFormatError(f"{path} has no header, so name columns by 0-based position "
                          f"0..{(n_cols or 1) - 1}; {source!r} (for role {role}) is not one")


def role_columns(names, n_cols, opts: ReadOptions, path: Path, *, exclude=()) -> dict:
    """role -> column index/name: the ``columns`` option, then header names equal to roles."""
    found = {}
    for role, src in opts.columns.items():
        found[role] = _resolve(names, n_cols, src, role, path)
    if names is not None:
        for role in ROLES:
            if role not in found and role not in exclude and names.count(role) == 1:
                found[role] = names.index(role) if n_cols is not None else role
    return found


def check_name_unit(name: str | None, role: str, opts: ReadOptions, path: Path) -> None:
    """A column named in one unit (``..._uS``) but read in another is a forgotten --units."""
    from .. import units as _units

    kind = ROLES[role][0]
    if not name or kind == "dimensionless":
        return
    hint = _units.unit_in_name(name, kind)
    unit = opts.units[role]
    if hint is None or same_unit(hint, unit):
        return
    how = "given" if role in opts.given_units else "the default"
    raise ConfigError(f"{path}: column {name!r} (role {role}) is named in {hint}, but {role} "
                      f"is read in {unit} ({how}); pass --units {role}={hint}")


def same_unit(a: str, b: str) -> bool:
    from .. import units as _units

    for table in (_units.CONDUCTANCE_UNITS, _units.RESISTANCE_UNITS, _units.TIME_UNITS,
                  _units.VOLTAGE_UNITS):
        if a in table and b in table:
            return table[a] == table[b]
    return a.replace("°", "") == b.replace("°", "")


def finish_role(role: str, values: np.ndarray, opts: ReadOptions, path: Path, locate):
    """Check one role's raw column, convert it to SI (in place), return it."""
    from .. import units as _units

    kind = ROLES[role][0]
    unit = opts.units[role]
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataFormatError(f"{path}, {locate(i)}: {role} is {values[i]}; expected a finite "
                              f"number ({ROLES[role][1]})")
    del finite
    if role in INT_ROLES:
        frac = values != np.round(values)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise DataFormatError(f"{path}, {locate(i)}: {role} is {values[i]}; expected a "
                                  "whole number (an index)")
        huge = np.abs(values) >= 2.0**53
        if huge.any():
            i = int(np.flatnonzero(huge)[0])
            raise DataFormatError(f"{path}, {locate(i)}: {role} is {values[i]:.6g}; expected an "
                                  "index below 2**53")
        return values.astype(np.int64)
    if kind == "conductance" and _units.is_resistance_unit(unit):
        bad = values <= 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{path}, {locate(i)}: resistance {values[i]} {unit} for "
                                  f"{role}; expected a resistance > 0 (read a conductance "
                                  "column instead for reads at or below zero)")
    values = _units.to_si(values, unit, kind, what=role, copy=False)
    if role in ("time", "time_point") or role == "g_target":
        neg = values < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise DataFormatError(f"{path}, {locate(i)}: {role} is {values[i]:.6g} "
                                  f"{SI_UNITS[kind]} after conversion from {unit}; expected "
                                  f">= 0 ({ROLES[role][1]})")
    if role == "temperature" and values.size and values.min() < 0:
        i = int(np.argmin(values))
        raise DataFormatError(f"{path}, {locate(i)}: temperature {values[i]:.6g} K is below "
                              f"absolute zero; is the unit ({unit}) right?")
    if role == "g" and opts.strict:
        neg = values < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise DataFormatError(f"{path}, {locate(i)}: conductance {values[i]:.6g} S is "
                                  "below zero; strict mode rejects such reads (without it "
                                  "they are kept and counted)")
    return values


def factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids 0..k-1 per entry, the k sorted distinct labels); O(n) for compact integers."""
    keys = np.asarray(keys)
    n = keys.size
    if keys.dtype.kind in "fiu" and n:
        lo, hi = keys.min(), keys.max()
        span = hi - lo
        integral = keys.dtype.kind in "iu" or bool(np.all(keys == np.floor(keys)))
        if integral and np.isfinite(span) and span < max(4 * n, 1 << 20):
            k = (keys - lo).astype(np.int64)
            present = np.zeros(int(span) + 1, dtype=bool)
            present[k] = True
            lut = np.cumsum(present, dtype=np.int64) - 1
            labels = np.flatnonzero(present) + lo
            return lut[k], labels.astype(keys.dtype)
    labels, ids = np.unique(keys, return_inverse=True)
    return ids.astype(np.int64, copy=False).ravel(), labels
