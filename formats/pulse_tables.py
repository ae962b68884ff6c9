"""Pulse-response data: conductance ramps under identical pulses and step-size tables.

Two layouts hold what a pulsed-update device is fitted from:

- **ramps**: the conductance read after each of a series of identical pulses, one series
  (a ramp) per column, or one row per read with ``pulse``, ``direction`` and ``g`` columns
  (and optionally ``device`` and ``ramp``); up (SET, potentiation) and down (RESET,
  depression) ramps. :class:`PulseRamps`, read by :func:`read_pulse_ramps`.
- **step table**: per conductance bin, the distribution of the conductance change one pulse
  causes, up and down; either quantiles at given CDF points (one file per direction: a title
  line, the bin centres, the CDF points, then one row of steps per CDF point), or one row per
  measured step with ``g``, ``direction`` and ``step`` columns. :class:`PulseStepTable`, read
  by :func:`read_step_table`.

:func:`pulse_layout` tells the two apart from the files' content. Every problem raises
:class:`~xbarlab.errors.DataFormatError` naming the file, line or column, the value and
what was expected.
"""

from __future__ import annotations

import csv
import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError

__all__ = ["PulseLayout", "PulseRamps", "PulseStepTable", "pulse_layout", "read_pulse_ramps",
           "read_step_table", "parse_direction", "direction_from_name"]


class PulseLayout(enum.StrEnum):
    """How pulse-response data are laid out (closed choice)."""

    RAMP_COLUMNS = "ramp columns"  #: one ramp per column, one file per direction
    RAMP_ROWS = "ramp rows"  #: one row per read: pulse, direction, g [, device, ramp]
    STEP_QUANTILES = "step quantiles"  #: bins, CDF points, steps per (CDF point, bin)
    STEP_ROWS = "step rows"  #: one row per measured step: g, direction, step


_UP_WORDS = ("up", "set", "pot", "potentiation", "increasing", "inc", "increase", "+1", "1",
             "+")
_DOWN_WORDS = ("down", "reset", "dep", "depression", "decreasing", "dec", "decrease", "-1",
               "-")


def parse_direction(value, *, what: str = "direction") -> int:
    """+1 for an up (SET, potentiation, increasing) label, -1 for a down one.

    Parameters
    ----------
    value : str or float
        A label such as ``"up"``, ``"SET"``, ``"reset"``, ``"+1"``, ``-1``.
    what : str
        What the value is, for the error message.

    Returns
    -------
    int
        +1 or -1.
    """
    text = str(value).strip().strip('"').lower()
    with_num = text
    try:
        num = float(text)
        if np.isfinite(num) and num in (1.0, -1.0):
            with_num = "+1" if num > 0 else "-1"
    except ValueError:
        pass
    if with_num in _UP_WORDS:
        return 1
    if with_num in _DOWN_WORDS:
        return -1
    raise DataFormatError(f"{what} {value!r} is neither up ({', '.join(_UP_WORDS[:6])}, +1) "
                          f"nor down ({', '.join(_DOWN_WORDS[:6])}, -1)")


def direction_from_name(path: Path) -> int | None:
    """+1 when a file's name says up (set, up, pot, potentiation, increasing, inc, ltp as
    a word), -1 when it says down (reset, down, dep, depression, decreasing, dec, ltd),
    None when it says neither or both."""
    words = re.split(r"[^a-z]+", path.name.lower())
    up = any(w in ("set", "up", "pot", "potentiation", "increasing", "inc", "ltp")
             for w in words)
    down = any(w in ("reset", "down", "dep", "depression", "decreasing", "dec", "ltd")
               for w in words)
    if up == down:
        return None
    return 1 if up else -1


@dataclass(frozen=True, eq=False)
class PulseRamps:
    """Conductance ramps under identical pulses, in SI units.

    ``g[i]`` is the read after pulse ``pulse[i]`` of ramp ``ramp[i]``; rows of one ramp are
    contiguous and in increasing pulse order. Per ramp: its direction and device.
    """

    #: Conductance G read after each pulse [S], float64, shape (n,).
    g: np.ndarray
    #: Pulse index within its ramp (increasing), int64, shape (n,).
    pulse: np.ndarray
    #: Ramp id 0 .. n_ramps-1 of each read, int64, shape (n,).
    ramp: np.ndarray
    #: Direction of each ramp, +1 up (SET) / -1 down (RESET), int64, shape (n_ramps,).
    direction: np.ndarray
    #: Device id 0 .. n_devices-1 of each ramp, int64, shape (n_ramps,).
    device: np.ndarray
    #: Source files, in reading order.
    sources: tuple[str, ...] = ()
    #: Label of each ramp (column header or ramp column value), length n_ramps.
    ramp_labels: tuple[str, ...] = ()
    #: The layout the ramps were read from.
    layout: str = PulseLayout.RAMP_COLUMNS.value

    def __post_init__(self):
        g = np.asarray(self.g, dtype=np.float64)
        n = g.shape[0]
        object.__setattr__(self, "g", g)
        for name in ("pulse", "ramp"):
            v = np.asarray(getattr(self, name), dtype=np.int64)
            if v.shape != (n,):
                raise ConfigError(f"PulseRamps.{name} must have shape ({n},), got {v.shape}")
            object.__setattr__(self, name, v)
        n_ramps = int(self.ramp.max()) + 1 if n else 0
        for name in ("direction", "device"):
            v = np.asarray(getattr(self, name), dtype=np.int64)
            if v.shape != (n_ramps,):
                raise ConfigError(f"PulseRamps.{name} must have one entry per ramp "
                                  f"({n_ramps}), got shape {v.shape}")
            object.__setattr__(self, name, v)
        if not np.all(np.isfinite(g)):
            raise ConfigError("PulseRamps.g must be finite conductances in S")
        if not set(np.unique(self.direction).tolist()) <= {-1, 1}:
            raise ConfigError("PulseRamps.direction must be +1 or -1 per ramp")

    @property
    def n_ramps(self) -> int:
        """Number of ramps."""
        return int(self.direction.size)

    @property
    def n_devices(self) -> int:
        """Number of devices."""
        return int(self.device.max()) + 1 if self.device.size else 0

    def steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Single-pulse steps: ``(g_before [S], step [S], ramp id)``, one entry per pair of
        reads of one ramp whose pulse indices differ by one."""
        same = (self.ramp[1:] == self.ramp[:-1]) & (np.diff(self.pulse) == 1)
        return self.g[:-1][same], np.diff(self.g)[same], self.ramp[:-1][same]

    def subset(self, ramps) -> PulseRamps:
        """The ramps ``ramps`` (ids, repeats allowed: a bootstrap resample) renumbered
        0..k-1 in the given order."""
        ramps = np.asarray(ramps, dtype=np.int64)
        starts = np.searchsorted(self.ramp, np.arange(self.n_ramps + 1))
        rows = [np.arange(starts[r], starts[r + 1]) for r in ramps]
        idx = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        new_ramp = np.repeat(np.arange(ramps.size), [r.size for r in rows])
        labels = tuple(self.ramp_labels[r] for r in ramps) if self.ramp_labels else ()
        return PulseRamps(g=self.g[idx], pulse=self.pulse[idx], ramp=new_ramp,
                          direction=self.direction[ramps], device=self.device[ramps],
                          sources=self.sources, ramp_labels=labels, layout=self.layout)


@dataclass(frozen=True, eq=False)
class PulseStepTable:
    """Distribution of the one-pulse conductance step per conductance bin, up and down.

    ``steps_up[k, j]`` is the ``cdf[k]`` quantile of the step one up pulse causes from a
    conductance in bin ``j`` (centre ``g_bins[j]``); likewise ``steps_down`` (negative
    steps for a depressing pulse).
    """

    #: Conductance bin centres G_j [S], increasing, shape (n_bins,).
    g_bins: np.ndarray
    #: CDF points p_k in [0, 1], nondecreasing, shape (n_cdf,).
    cdf: np.ndarray
    #: Step quantiles of an up pulse ΔG [S], shape (n_cdf, n_bins).
    steps_up: np.ndarray
    #: Step quantiles of a down pulse ΔG [S], shape (n_cdf, n_bins).
    steps_down: np.ndarray
    #: Source files.
    sources: tuple[str, ...] = ()
    #: The layout the table was read from.
    layout: str = PulseLayout.STEP_QUANTILES.value

    def __post_init__(self):
        g = np.asarray(self.g_bins, dtype=np.float64)
        p = np.asarray(self.cdf, dtype=np.float64)
        object.__setattr__(self, "g_bins", g)
        object.__setattr__(self, "cdf", p)
        for name in ("steps_up", "steps_down"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.shape != (p.size, g.size):
                raise ConfigError(f"PulseStepTable.{name} must have shape ({p.size}, {g.size}), "
                                  f"got {v.shape}")
            object.__setattr__(self, name, v)
        if g.size < 2 or not np.all(np.diff(g) > 0):
            raise ConfigError("PulseStepTable.g_bins must be >= 2 increasing conductances in S")
        if p.size < 2 or not (np.all(np.diff(p) >= 0) and p[0] >= 0 and p[-1] <= 1):
            raise ConfigError("PulseStepTable.cdf must be >= 2 nondecreasing points in [0, 1]")


def _paths(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("pulse data need at least one file")
    for p in paths:
        if not p.is_file():
            raise DataFormatError(f"{p} does not exist or is not a file")
    return paths


def _lines(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank, non-comment line; fields split on commas
    (tabs or runs of whitespace when a line has no comma), empty trailing fields kept."""
    out = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not a UTF-8 text table ({exc.reason} at byte "
                              f"{exc.start})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if "," in s:
            fields = next(csv.reader([s]))
        elif "\t" in s:
            fields = s.split("\t")
        else:
            fields = s.split()
        out.append((lineno, [f.strip() for f in fields]))
    if not out:
        raise DataFormatError(f"{path} holds no table (only blank or comment lines)")
    return out


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _is_numeric_row(fields: list[str]) -> bool:
    vals = [f for f in fields if f]
    return bool(vals) and all(_number(f) is not None for f in vals)


def pulse_layout(paths) -> PulseLayout:
    """The layout of pulse-response files, learned from their content.

    A title line followed by numeric rows whose second row never decreases and runs from
    [0, 0.05] to [0.95, 1] (CDF points) is a step table of quantiles; a header naming a
    ``step`` column is a step
    table of rows; a header naming ``pulse`` and ``direction`` columns is ramps in rows;
    otherwise a header over numeric columns is one ramp per column.

    Parameters
    ----------
    paths : path or sequence of paths
        The files (all of one layout).

    Returns
    -------
    PulseLayout
    """
    found = set()
    for path in _paths(paths):
        lines = _lines(path)
        head = [f.lower() for f in lines[0][1]]
        numeric = [f for _, f in lines[1:] if _is_numeric_row(f)]
        if (not _is_numeric_row(lines[0][1]) and len(numeric) >= 3
                and _looks_like_cdf(numeric[1])):
            found.add(PulseLayout.STEP_QUANTILES)
        elif "step" in head:
            found.add(PulseLayout.STEP_ROWS)
        elif "pulse" in head and "direction" in head:
            found.add(PulseLayout.RAMP_ROWS)
        elif not _is_numeric_row(lines[0][1]):
            found.add(PulseLayout.RAMP_COLUMNS)
        else:
            raise DataFormatError(f"{path}: no header line; expected a header naming one ramp "
                                  "per column, the columns pulse, direction, g (ramps in rows), "
                                  "g, direction, step (a step table), or a title line over bins "
                                  "and CDF points (a step table of quantiles)")
    if len(found) > 1:
        raise DataFormatError(f"the files hold different layouts ({sorted(found)}); give "
                              "files of one layout")
    return found.pop()


def _looks_like_cdf(fields: list[str]) -> bool:
    v = np.array([_number(f) for f in fields if f], dtype=np.float64)
    return v.size >= 2 and bool(np.all(np.diff(v) >= 0) and v[0] >= 0 and v[0] <= 0.05
                                and v[-1] <= 1 and v[-1] >= 0.95)


def _to_si(values: np.ndarray, unit: str) -> np.ndarray:
    from .. import units as _units

    return _units.to_si(values, _units.check_unit(unit, "conductance", what="g"),
                        "conductance", what="g")


def read_pulse_ramps(paths, *, layout: PulseLayout | str | None = None, unit: str = "S",
                     direction: int | None = None) -> PulseRamps:
    """Read conductance ramps under identical pulses into one :class:`PulseRamps` (SI).

    Parameters
    ----------
    paths : path or sequence of paths
        Text tables (comma-, tab- or space-separated).
    layout : PulseLayout or str, optional
        ``"ramp columns"``: a header, then one column per ramp (its reads after each
        pulse, shorter ramps ending in blank cells), all files of one device; the
        direction of a file comes from
        ``direction``, else from its name (set/reset, up/down, pot/dep,
        increasing/decreasing), else from the sign of each ramp's net change.
        ``"ramp rows"``: columns ``pulse``, ``direction``, ``g`` and optionally ``device``
        and ``ramp``; without a ramp column a new ramp starts where the device or the
        direction changes; equal device labels in several files are one device. Default:
        learned with :func:`pulse_layout`.
    unit : str
        Unit of the conductance values (``"S"``, ``"uS"``, ...; a resistance unit converts).
    direction : {+1, -1}, optional
        The direction of every ramp of a ramp-columns file (overrides the file name).

    Returns
    -------
    PulseRamps
        Raises DataFormatError for a missing value (NaN), a blank cell inside a ramp, a
        pulse index that does not increase within a ramp, or data holding ramps of one
        direction only.
    """
    paths = _paths(paths)
    if layout is None:
        layout = pulse_layout(paths)
    try:
        layout = PulseLayout(layout)
    except ValueError:
        raise ConfigError(f"layout {layout!r} is not one of "
                          f"{[e.value for e in PulseLayout][:2]}") from None
    if layout not in (PulseLayout.RAMP_COLUMNS, PulseLayout.RAMP_ROWS):
        raise DataFormatError(f"{paths[0]} holds a step table ({layout.value}), not ramps; "
                              "read it with read_step_table")
    if direction is not None and direction not in (1, -1):
        raise ConfigError(f"direction {direction!r} must be +1 (up) or -1 (down)")
    parts = []
    for k, path in enumerate(paths):
        read = _ramp_columns if layout is PulseLayout.RAMP_COLUMNS else _ramp_rows
        parts.append(read(path, unit, direction, prefix=f"{k}:" if len(paths) > 1 else ""))
    g, pulse, ramp, dirs, devs, labels = [], [], [], [], [], []
    n_r = 0
    dev_ids: dict[str, int] = {}
    for part in parts:
        g.append(part["g"])
        pulse.append(part["pulse"])
        ramp.append(part["ramp"] + n_r)
        n_r += len(part["direction"])
        dirs += part["direction"]
        devs += [dev_ids.setdefault(d, len(dev_ids)) for d in part["device"]]
        labels += part["labels"]
    _check_plausible(np.concatenate(g), paths)
    out = PulseRamps(g=np.concatenate(g), pulse=np.concatenate(pulse),
                     ramp=np.concatenate(ramp), direction=np.array(dirs), device=np.array(devs),
                     sources=tuple(str(p) for p in paths), ramp_labels=tuple(labels),
                     layout=layout.value)
    _check_both_directions(out, paths)
    return out


def _check_plausible(g: np.ndarray, paths) -> None:
    """PlausibilityWarning for conductances above 1 S (values in uS read without a unit)."""
    import warnings

    from ..errors import PlausibilityWarning
    from .plausibility import G_PLAUSIBLE_MAX

    top = float(np.max(np.abs(g))) if g.size else 0.0
    if top > G_PLAUSIBLE_MAX:
        warnings.warn(f"{paths[0]}: conductances up to {top:.3g} S; memory devices conduct "
                      "well below 1 S. Are these values in uS or mS read without a unit "
                      "(unit='uS')?", PlausibilityWarning, stacklevel=3)


def _check_both_directions(ramps: PulseRamps, paths) -> None:
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files ({paths[0]}, ...)"
    for dev in range(ramps.n_devices):
        d = ramps.direction[ramps.device == dev]
        for sign, name in ((1, "up (SET)"), (-1, "down (RESET)")):
            if not np.any(d == sign):
                other = int(np.sum(d == -sign))
                who = f"device {dev}" if ramps.n_devices > 1 else "the data"
                raise DataFormatError(
                    f"{where}: {who} has no {name} ramps (found {other} ramps the other way); "
                    "a pulse fit needs ramps in both directions (give the other file, or "
                    "name files set/reset)")
        counts = np.bincount(ramps.ramp, minlength=ramps.n_ramps)
        short = np.flatnonzero(counts < 2)
        if short.size:
            lab = ramps.ramp_labels[short[0]] if ramps.ramp_labels else str(short[0])
            raise DataFormatError(f"{where}: ramp {lab!r} has {counts[short[0]]} read; "
                                  "expected at least 2 reads per ramp")


def _ramp_columns(path: Path, unit: str, direction: int | None, prefix: str) -> dict:
    lines = _lines(path)
    names = lines[0][1]
    if _is_numeric_row(names):
        raise DataFormatError(f"{path}: the first line is numeric; expected a header naming "
                              "one ramp per column")
    n_cols = len(names)
    table = np.full((len(lines) - 1, n_cols), np.nan)
    for i, (lineno, fields) in enumerate(lines[1:]):
        if len(fields) > n_cols:
            raise DataFormatError(f"{path}, line {lineno}: found {len(fields)} columns, "
                                  f"expected {n_cols} (as in the header)")
        for j, cell in enumerate(fields):
            if not cell:
                continue
            v = _number(cell.strip('"'))
            if v is None or not np.isfinite(v):
                shown = repr(cell)
                raise DataFormatError(f"{path}, line {lineno}, column {j} ({names[j]!r}): "
                                      f"{shown} is not a finite number (a conductance read)")
            table[i, j] = v
    line_of = [ln for ln, _ in lines[1:]]
    if direction is None:
        direction = direction_from_name(path)
    g, pulse, ramp, dirs = [], [], [], []
    for j in range(n_cols):
        col = table[:, j]
        present = np.flatnonzero(~np.isnan(col))
        if present.size == 0:
            continue
        last = present[-1]
        gaps = np.flatnonzero(np.isnan(col[:last]))
        if gaps.size:
            raise DataFormatError(f"{path}, line {line_of[gaps[0]]}, column {j} "
                                  f"({names[j]!r}): a blank cell inside a ramp; expected a "
                                  "read after every pulse up to the ramp's last read")
        vals = _to_si(col[: last + 1], unit)
        d = direction
        if d is None:
            d = 1 if vals[-1] > vals[0] else -1
        g.append(vals)
        pulse.append(np.arange(vals.size))
        ramp.append(np.full(vals.size, len(dirs)))
        dirs.append(d)
    if not dirs:
        raise DataFormatError(f"{path} has a header but no reads")
    return {"g": np.concatenate(g), "pulse": np.concatenate(pulse),
            "ramp": np.concatenate(ramp), "direction": dirs, "device": [""] * len(dirs),
            "labels": [prefix + names[j] for j in range(n_cols)
                       if not np.all(np.isnan(table[:, j]))]}


def _header(path: Path, lines, need: tuple[str, ...], what: str) -> list[str]:
    """The lower-cased column names of a rows file; a missing needed column is refused."""
    names = [f.lower() for f in lines[0][1]]
    for name in need:
        if name not in names:
            raise DataFormatError(f"{path}: no column {name!r}; {what} columns "
                                  f"{', '.join(need)} (found {lines[0][1]})")
    return names


def _ramp_rows(path: Path, unit: str, direction: int | None, prefix: str) -> dict:
    lines = _lines(path)
    names = _header(path, lines, ("pulse", "direction", "g"), "ramps in rows need")
    col = {c: names.index(c) for c in ("pulse", "direction", "g", "device", "ramp")
           if c in names}
    g, pulse, ramp, dirs, devs, labels = [], [], [], [], [], []
    prev_key = None
    prev_pulse = None
    for lineno, fields in lines[1:]:
        if len(fields) != len(names):
            raise DataFormatError(f"{path}, line {lineno}: found {len(fields)} columns, "
                                  f"expected {len(names)} (as in the header)")
        cells = {c: fields[j].strip('"') for c, j in col.items()}
        for c in ("pulse", "g"):
            v = _number(cells[c])
            if v is None or not np.isfinite(v):
                raise DataFormatError(f"{path}, line {lineno}, column {c!r}: {cells[c]!r} is "
                                      "not a finite number")
        p = float(cells["pulse"])
        if p != round(p):
            raise DataFormatError(f"{path}, line {lineno}, column 'pulse': {cells['pulse']} is "
                                  "not a whole number (a pulse index)")
        d = parse_direction(cells["direction"], what=f"{path}, line {lineno}: direction")
        key = (cells.get("device", ""), cells.get("ramp", ""), d)
        if key != prev_key:
            prev_key = key
            dirs.append(d)
            devs.append(key[0])
            labels.append(prefix + (key[1] or f"{key[0]}{'+' if d > 0 else '-'}{len(dirs)}"))
        elif p <= prev_pulse:
            raise DataFormatError(f"{path}, line {lineno}, column 'pulse': pulse index "
                                  f"{int(p)} follows {int(prev_pulse)} within one ramp; "
                                  "expected increasing pulse indices (start a new ramp with "
                                  "a ramp column)")
        prev_pulse = p
        g.append(float(cells["g"]))
        pulse.append(int(p))
        ramp.append(len(dirs) - 1)
    if not dirs:
        raise DataFormatError(f"{path} has a header but no reads")
    return {"g": _to_si(np.array(g), unit), "pulse": np.array(pulse), "ramp": np.array(ramp),
            "direction": dirs, "device": devs, "labels": labels}


def read_step_table(paths, *, layout: PulseLayout | str | None = None, unit: str = "S",
                    n_cdf: int = 101) -> PulseStepTable:
    """Read a step-size table (steps per conductance bin, up and down) in SI units.

    Parameters
    ----------
    paths : path or sequence of paths
        ``"step quantiles"``: two files, one per direction (named increasing/decreasing,
        set/reset, up/down, ...), each a title line, then the bin centres, the CDF points,
        and one row of steps per CDF point (a row may wrap over several lines; the file is
        read as one stream of numbers). ``"step rows"``: one file (or several) with columns
        ``g`` (the conductance before the pulse), ``direction`` and ``step``; steps are
        binned by ``g`` into the distinct ``g`` values, or into 20 equal bins when there are
        more than 20.
    layout : PulseLayout or str, optional
        Default: learned with :func:`pulse_layout`.
    unit : str
        Unit of conductances and steps (``"S"``, ``"uS"``, ...).
    n_cdf : int
        Quantile points kept per bin for the step-rows layout.

    Returns
    -------
    PulseStepTable
        Raises DataFormatError for a missing value (NaN), an empty bin (no steps, in either
        direction), or a direction without a table.
    """
    paths = _paths(paths)
    if layout is None:
        layout = pulse_layout(paths)
    layout = PulseLayout(layout)
    if layout is PulseLayout.STEP_QUANTILES:
        return _step_quantiles(paths, unit)
    if layout is PulseLayout.STEP_ROWS:
        return _step_rows(paths, unit, n_cdf)
    raise DataFormatError(f"{paths[0]} holds ramps ({layout.value}), not a step table; read it "
                          "with read_pulse_ramps")


def _numbers_of(path: Path, lineno: int, fields: list[str]) -> list[float]:
    out = []
    for j, f in enumerate(fields):
        if not f:
            continue
        v = _number(f)
        if v is None or not np.isfinite(v):
            raise DataFormatError(f"{path}, line {lineno}, field {j}: {f!r} is not a finite "
                                  "number")
        out.append(v)
    return out


def _step_quantiles(paths, unit: str) -> PulseStepTable:
    tables = {}
    for path in paths:
        d = direction_from_name(path)
        if d is None:
            raise DataFormatError(f"{path}: the file name does not say the direction; name it "
                                  "increasing/decreasing, set/reset or up/down")
        if d in tables:
            raise DataFormatError(f"{path}: a second {'up' if d > 0 else 'down'} table "
                                  f"(the first is {tables[d][3]})")
        lines = _lines(path)[1:]
        rows = [(ln, _numbers_of(path, ln, f)) for ln, f in lines]
        # the bins and the CDF points: first rows; rows may wrap, so read a stream
        stream = [(ln, v) for ln, vals in rows for v in vals]
        n_bins = len(rows[0][1])
        bins = np.array([v for _, v in stream[:n_bins]])
        rest = stream[n_bins:]
        n_cdf = len(rows[1][1]) if len(rows) > 1 else 0
        if n_cdf < 2 or len(rest) != n_cdf + n_cdf * n_bins:
            where = rows[1][0] if len(rows) > 1 else "?"
            raise DataFormatError(f"{path}: {len(stream)} numbers after the title; expected "
                                  f"{n_bins} bins, then n CDF points and n x {n_bins} steps "
                                  f"(read n = {n_cdf} from line {where})")
        cdf = np.array([v for _, v in rest[:n_cdf]])
        steps = np.array([v for _, v in rest[n_cdf:]]).reshape(n_cdf, n_bins)
        tables[d] = (bins, cdf, steps, path)
    for d, name in ((1, "up (increasing)"), (-1, "down (decreasing)")):
        if d not in tables:
            raise DataFormatError(f"{paths[0]}: no {name} step table; give both files")
    bu, cu, su, pu = tables[1]
    bd, cd, sd, pd = tables[-1]
    if bu.shape != bd.shape or not np.allclose(bu, bd) or cu.shape != cd.shape or not \
            np.allclose(cu, cd):
        raise DataFormatError(f"{pu} and {pd} have different bins or CDF points")
    for steps, path in ((su, pu), (sd, pd)):
        flat = np.flatnonzero(np.ptp(steps, axis=0) == 0)
        if flat.size and np.all(steps[:, flat[0]] == 0):
            raise DataFormatError(f"{path}: bin {flat[0]} (G = {bu[flat[0]]:.6g} {unit}) is "
                                  "empty (all steps zero); expected a measured distribution in "
                                  "every bin")
    _check_plausible(_to_si(bu, unit), paths)
    return PulseStepTable(g_bins=_to_si(bu, unit), cdf=cu, steps_up=_to_si(su, unit),
                          steps_down=_to_si(sd, unit), sources=tuple(str(p) for p in paths),
                          layout=PulseLayout.STEP_QUANTILES.value)


def _step_rows(paths, unit: str, n_cdf: int) -> PulseStepTable:
    g, d, s = [], [], []
    for path in paths:
        lines = _lines(path)
        names = _header(path, lines, ("g", "direction", "step"),
                        "a step table in rows needs")
        jg, jd, js = names.index("g"), names.index("direction"), names.index("step")
        for lineno, fields in lines[1:]:
            if len(fields) != len(names):
                raise DataFormatError(f"{path}, line {lineno}: found {len(fields)} columns, "
                                      f"expected {len(names)}")
            for c, j in (("g", jg), ("step", js)):
                v = _number(fields[j])
                if v is None or not np.isfinite(v):
                    raise DataFormatError(f"{path}, line {lineno}, column {c!r}: {fields[j]!r} "
                                          "is not a finite number")
            g.append(float(fields[jg]))
            s.append(float(fields[js]))
            d.append(parse_direction(fields[jd], what=f"{path}, line {lineno}: direction"))
    g, d, s = _to_si(np.array(g), unit), np.array(d), _to_si(np.array(s), unit)
    levels = np.unique(g)
    if levels.size > 20:
        edges = np.linspace(g.min(), g.max(), 21)
        idx = np.clip(np.searchsorted(edges, g, side="right") - 1, 0, 19)
        centres = 0.5 * (edges[1:] + edges[:-1])
    else:
        idx = np.searchsorted(levels, g)
        centres = levels
    cdf = np.linspace(0.0, 1.0, n_cdf)
    out = {}
    for sign, name in ((1, "up"), (-1, "down")):
        q = np.empty((n_cdf, centres.size))
        for j in range(centres.size):
            sel = s[(d == sign) & (idx == j)]
            if sel.size == 0:
                raise DataFormatError(f"{paths[0]}: bin {j} (G = {centres[j]:.6g} S) has no "
                                      f"{name} steps; expected steps in every bin, both ways")
            q[:, j] = np.quantile(sel, cdf)
        out[sign] = q
    return PulseStepTable(g_bins=centres, cdf=cdf, steps_up=out[1], steps_down=out[-1],
                          sources=tuple(str(p) for p in paths), layout=PulseLayout.STEP_ROWS.value)
