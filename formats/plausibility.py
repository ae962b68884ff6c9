"""Plausibility of a measurement table once read: repeated reads, device labels, magnitudes.

:func:`check_measurements` refuses what would silently double-count or mislabel data
(the same (device, time) read twice, a device labelled NaN) and warns about values that are
legal but orders of magnitude away from what a memory device conducts.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ..errors import ConfigError, DataFormatError, PlausibilityWarning

__all__ = ["DUPLICATE_POLICIES", "G_PLAUSIBLE_MAX", "check_device_labels",
           "check_measurements"]

#: What to do with reads that repeat a (device, time[, cycle]) read: refuse the table
#: ("refuse"), keep the first of each group ("first") or their mean conductance ("mean").
DUPLICATE_POLICIES = ("refuse", "first", "mean")
#: Conductance above which a warning says the values look like another unit [S].
G_PLAUSIBLE_MAX = 1.0


def check_device_labels(keys: np.ndarray, path) -> None:
    """Refuse device labels that are NaN/inf (or the text ``nan``): they would all be one
    device. ``path``: the file they come from (named in the message)."""
    keys = np.asarray(keys)
    if keys.dtype.kind == "f":
        bad = ~np.isfinite(keys)
    elif keys.dtype.kind in "US":
        low = np.char.lower(np.char.strip(keys.astype("U")))
        bad = np.isin(low, ["nan", "inf", "-inf", "+inf", ""])
    else:
        return
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(f"{path}: device label {keys[i].item()!r} (read {i + 1} of the "
                              "file) is not a label; expected a finite number or a name per "
                              "device")


def _key_order(m) -> tuple[np.ndarray, np.ndarray]:
    """Row order sorted by (device, time[, cycle]) and a mask: row equals the previous one."""
    keys = [m.device, m.time] + ([m.cycle] if m.cycle is not None else [])
    order = np.lexsort(keys[::-1])
    same = np.ones(order.size - 1, dtype=bool) if order.size else np.zeros(0, dtype=bool)
    for k in keys:
        s = k[order]
        same &= s[1:] == s[:-1]
    return order, same


def check_measurements(m, *, duplicates: str = "refuse"):
    """Check a merged table for repeated reads and implausible magnitudes.

    Parameters
    ----------
    m : Measurements
        The table as read.
    duplicates : {"refuse", "first", "mean"}
        Reads that share device, time (and cycle, when given): refused ("refuse"), reduced
        to the first read of each group ("first") or to one read with the group's mean
        conductance ("mean").

    Returns
    -------
    Measurements
        ``m``, or a copy without the repeated reads.

    Raises
    ------
    DataFormatError
        Repeated reads with ``duplicates="refuse"`` (the message says whether their values
        agree or conflict).

    Warns
    -----
    PlausibilityWarning
        A conductance above :data:`G_PLAUSIBLE_MAX` (values in µS given without a unit).
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates {duplicates!r} is not one of {DUPLICATE_POLICIES}")
    g_top = float(np.max(np.abs(m.g))) if m.g.size else 0.0
    if g_top > G_PLAUSIBLE_MAX:
        warnings.warn(f"{', '.join(m.sources) or 'table'}: conductances up to {g_top:.3g} S; "
                      "memory devices conduct well below 1 S. Are these values in µS or mS "
                      "read without a unit (units='g=uS')?", PlausibilityWarning, stacklevel=3)
    if m.time is None or m.g.size < 2:
        return m
    order, same = _key_order(m)
    if not same.any():
        return m
    first_dup = int(np.flatnonzero(same)[0])
    a, b = int(order[first_dup]), int(order[first_dup + 1])
    conflicting = bool(np.any(m.g[order[1:]][same] != m.g[order[:-1]][same]))
    if duplicates == "refuse":
        agree = "with different conductances" if conflicting else "with equal values"
        raise DataFormatError(
            f"{', '.join(m.sources)}: {int(same.sum()):,} reads repeat a (device, time) read "
            f"{agree} (e.g. reads {a + 1} and {b + 1}: device {_label(m, a)} at "
            f"{m.time[a]:g} s); counting them twice would be wrong. Pass duplicates='first' "
            "or 'mean' to keep one read each")
    start = np.concatenate([[True], ~same])             # first row of each group, sorted order
    group = np.cumsum(start) - 1
    keep_sorted = order[start]
    g = m.g.copy()
    if duplicates == "mean":
        sums = np.bincount(group, weights=m.g[order])
        counts = np.bincount(group)
        g[keep_sorted] = sums / counts
    keep = np.zeros(m.g.size, dtype=bool)
    keep[keep_sorted] = True
    fields = {f.name: getattr(m, f.name) for f in dataclasses.fields(m)}
    new = {"g": g[keep]}
    for name, value in fields.items():
        if (name != "g" and isinstance(value, np.ndarray) and name != "device_labels"
                and value.shape == m.g.shape):
            new[name] = value[keep]
    counts = np.cumsum(keep)
    new["source_rows"] = tuple(0 if r == 0 else int(counts[r - 1]) for r in m.source_rows)
    return dataclasses.replace(m, **new)


def _label(m, i: int) -> str:
    """Read ``i``'s device label as the file wrote it (a number without ``.0``)."""
    d = int(m.device[i])
    if m.device_labels is None:
        return str(d)
    label = m.device_labels[d].item()
    return f"{label:g}" if isinstance(label, float) else repr(label)
