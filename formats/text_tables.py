"""Text measurement tables (CSV/TSV, plain or gzip) in the long, wide and timeseries layouts.

numpy's C reader parses the data lines; when it fails, the first bad line is found and
named (line, column, what was expected).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from .roles import (
    ReadOptions,
    TableLayout,
    TablePart,
    TimeOrigin,
    check_name_unit,
    factorize,
    finish_role,
    role_columns,
)

__all__ = ["read_text_part"]

_GZIP_MAGIC = b"\x1f\x8b"


def read_text_part(path: Path, opts: ReadOptions) -> TablePart:
    """Read one text table in the layout ``opts.layout`` (SI arrays, not yet merged)."""
    text = _sniff_text(path, opts)
    try:
        if opts.layout is TableLayout.WIDE:
            return _read_wide_text(text, opts)
        if opts.layout is TableLayout.TIMESERIES:
            return _read_timeseries_text(text, opts)
        return _read_long_text(text, opts)
    except _BadCell as exc:  # internal subclass: users see a plain DataFormatError
        raise DataFormatError(str(exc)) from None
    except (IndexError, csv.Error) as exc:  # a shape no check above foresaw
        raise DataFormatError(f"{path}: not a table xbarlab can read ({exc})") from None


@dataclass
class _Text:
    path: Path
    delimiter: str | None  # None: runs of whitespace
    names: list[str] | None
    n_cols: int
    skip: int  # physical lines before the first data line
    meta: dict[str, str]


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if path.name.lower().endswith(".gz"):
        if magic != _GZIP_MAGIC:
            raise DataFormatError(f"{path} is named .gz but is not gzip-compressed")
        return gzip.open(path, "rt", encoding="utf-8-sig")
    if magic == _GZIP_MAGIC:
        raise DataFormatError(f"{path} is gzip-compressed but not named .gz; rename it")
    return open(path, encoding="utf-8-sig")


@contextlib.contextmanager
def _text_errors(path: Path):
    """Turn decoding and decompression failures into DataFormatError."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path} is not a UTF-8 text table ({exc.reason} at byte "
                              f"{exc.start}); is it a binary file?") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataFormatError(f"{path}: the gzip stream is truncated or corrupt ({exc})") from None


def _split(line: str, delimiter: str | None, path: Path | None = None,
           lineno: int = 0) -> list[str]:
    line = line.rstrip("\r\n")
    if delimiter is None:
        return line.split()
    if delimiter == ",":
        try:
            return next(csv.reader([line]), [])
        except csv.Error as exc:
            raise DataFormatError(f"{path}, line {lineno}: not a CSV line ({exc})") from None
    return line.split(delimiter)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _sniff_text(path: Path, opts: ReadOptions) -> _Text:
    """Find delimiter, header and where data start (reads only the first lines)."""
    skip = 0
    first = None
    meta: dict[str, str] = {}
    with _text_errors(path), _open_text(path) as fh:
        for line in fh:
            skip += 1
            s = line.strip()
            if not s:
                continue
            if s.startswith("#"):
                m = re.search(r"time_origin=(programming|first read)", s)
                if m:
                    meta["time_origin"] = m.group(1)
                continue
            first = line
            break
        if "\x00" in (first or ""):
            raise DataFormatError(f"{path} holds binary data (NUL bytes), not a text table")
    if first is None:
        raise DataFormatError(f"{path} holds no table (only blank or comment lines)")
    name = path.name.lower().removesuffix(".gz")
    delimiter = opts.delimiter
    if delimiter is None:
        if name.endswith((".tsv", ".tab")):
            delimiter = "\t"
        elif name.endswith(".csv"):
            delimiter = ","
        elif "\t" in first:
            delimiter = "\t"
        elif "," in first:
            delimiter = ","
        elif ";" in first:
            delimiter = ";"
    fields = [f.strip() for f in _split(first, delimiter, path, skip)]
    header = opts.header
    if opts.layout is TableLayout.WIDE:
        if header is False:
            raise ConfigError("the wide layout needs a header line naming each target")
        header = True
    if header is None:
        header = not all(_is_number(f) for f in fields)
    if header:
        return _Text(path, delimiter, fields, len(fields), skip, meta)
    return _Text(path, delimiter, None, len(fields), skip - 1, meta)


def _col_name(text: _Text, j: int) -> str:
    return f"{j} ({text.names[j]!r})" if text.names else str(j)


def _iter_data_lines(text: _Text):
    """Yield (line number, fields) of each data line (after the header; no comments/blanks)."""
    with _text_errors(text.path), _open_text(text.path) as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno <= text.skip:
                continue
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            yield lineno, _split(line, text.delimiter, text.path, lineno)


def _line_of_row(text: _Text, row: int) -> int:
    for i, (lineno, _f) in enumerate(_iter_data_lines(text)):
        if i == row:
            return lineno
    return -1


def _diagnose(text: _Text, usecols) -> tuple[str, int, int, str] | None:
    """Find the first bad data line: ("ragged" | "value", line, column, message)."""
    check = list(range(text.n_cols)) if usecols is None else list(usecols)
    what = "the header" if text.names else "the first data line"
    for lineno, fields in _iter_data_lines(text):
        if usecols is None and len(fields) != text.n_cols:
            return ("ragged", lineno, -1,
                    f"{text.path}, line {lineno}: found {len(fields)} columns, expected "
                    f"{text.n_cols} (as in {what})")
        for j in check:
            if j >= len(fields):
                return ("ragged", lineno, j,
                        f"{text.path}, line {lineno}: found {len(fields)} columns, expected "
                        f"{text.n_cols} (as in {what})")
            cell = fields[j].strip().strip('"')
            if not _is_number(cell):
                shown = "an empty cell" if not cell else repr(cell)
                return ("value", lineno, j,
                        f"{text.path}, line {lineno}, column {_col_name(text, j)}: {shown} is "
                        "not a number")
    return None


def _check_ragged(text: _Text) -> None:
    for lineno, fields in _iter_data_lines(text):
        if len(fields) != text.n_cols:
            raise DataFormatError(f"{text.path}, line {lineno}: found {len(fields)} columns, "
                                  f"expected {text.n_cols}")


def _loadtxt(text: _Text, usecols=None, dtype=np.float64) -> np.ndarray:
    """Parse data lines with numpy's C reader; on failure find the line and say why."""
    try:
        with _text_errors(text.path), _open_text(text.path) as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked
            arr = np.loadtxt(fh, delimiter=text.delimiter, skiprows=text.skip, comments="#",
                             ndmin=2, dtype=dtype, usecols=usecols,
                             quotechar='"' if text.delimiter == "," else None)
    except ValueError as exc:
        if isinstance(exc, DataFormatError):
            raise
        found = _diagnose(text, usecols)
        if found is None:
            raise DataFormatError(f"{text.path}: {exc}") from None
        raise _BadCell(*found) from None
    if arr.shape[0] == 0:
        if text.names:
            raise DataFormatError(f"{text.path} has a header but no data rows")
        raise DataFormatError(f"{text.path} has no data rows")
    return arr


class _BadCell(DataFormatError):
    def __init__(self, kind: str, line: int, col: int, message: str):
        super().__init__(message)
        self.kind, self.line, self.col = kind, line, col


def _read_long_text(text: _Text, opts: ReadOptions) -> TablePart:
    cols = role_columns(text.names, text.n_cols, opts, text.path)
    if "g" not in cols:
        raise DataFormatError(_no_g_message(text.path, text.names, text.n_cols))
    for role, j in cols.items():
        check_name_unit(text.names[j] if text.names else None, role, opts, text.path)
    needed = sorted(set(cols.values()))
    device_text = None
    usecols = None  # first try all columns: numpy itself then rejects ragged rows
    text_device = False
    while True:
        try:
            arr = _loadtxt(text, usecols=usecols)
            break
        except _BadCell as bad:
            dev_only = (cols.get("device") == bad.col
                        and list(cols.values()).count(bad.col) == 1)
            if bad.kind != "value" or (bad.col in needed and not dev_only) or (
                    usecols is not None and not dev_only) or text_device:
                raise
            # A text column no role uses, or text device labels: read what the roles need.
            text_device = text_device or dev_only
            usecols = [j for j in needed if not (text_device and j == cols["device"])]
    if usecols is None and arr.shape[1] != text.n_cols:
        _check_ragged(text)  # names the first line whose column count differs
        raise DataFormatError(f"{text.path}: the data rows have {arr.shape[1]} columns, the "
                              f"{'header' if text.names else 'first line'} {text.n_cols}")
    if usecols is not None:
        if text_device:
            device_text = _loadtxt(text, usecols=[cols["device"]], dtype=str)[:, 0]
        _check_ragged(text)
    pos = {j: (j if usecols is None else usecols.index(j)) for j in needed
           if usecols is None or j in usecols}
    n = arr.shape[0]
    # One contiguous array per needed column, then the parsed 2-D table is freed; separate
    # arrays let columns that end up converted (device ids, levels) be freed on their own.
    raw = {j: np.ascontiguousarray(arr[:, pos[j]]) for j in sorted(pos)}
    del arr

    def locate(row: int, j: int) -> str:
        return f"line {_line_of_row(text, row)}, column {_col_name(text, j)}"

    arrays = {}
    for role, j in cols.items():
        if role == "device":
            continue
        # a column used by two roles is copied once so each role converts on its own
        shared = list(cols.values()).count(j) > 1
        arrays[role] = finish_role(role, raw[j].copy() if shared else raw[j], opts,
                                    text.path, lambda i, j=j: locate(i, j))
    keys = None
    if "device" in cols:
        keys = device_text if device_text is not None else raw[cols["device"]]
    return TablePart(path=text.path, n=n, arrays=arrays, device_keys=keys,
                 device_ids=None if keys is not None else np.arange(n, dtype=np.int64),
                 columns={r: _col_name(text, j) for r, j in cols.items()},
                 units={r: opts.units[r] for r in cols if r != "device"},
                 time_origin=text.meta.get("time_origin"))


def _no_g_message(path, names, n_cols) -> str:
    if names:
        return (f"{path}: no column for role g (measured conductance); name it with "
                f"--columns g=SOURCE (columns: {names})")
    return (f"{path}: no column for role g (measured conductance); the file has no header, so "
            f"name it by 0-based position with --columns g=N (N in 0..{n_cols - 1})")


def _read_timeseries_text(text: _Text, opts: ReadOptions) -> TablePart:
    k = int(opts.samples_from)
    if k >= text.n_cols:
        raise ConfigError(f"{text.path}: samples_from = {k} but the file has only {text.n_cols} "
                          "columns")
    for role in ("g", "time", "cycle"):
        if role in opts.columns:
            raise ConfigError(f"timeseries layout: {role} comes from the samples (columns "
                              f">= {k}); do not name it with --columns")
    cols = role_columns(text.names, text.n_cols, opts, text.path, exclude=("g", "time", "cycle"))
    for role, j in cols.items():
        if j >= k:
            raise ConfigError(f"{text.path}: column {_col_name(text, j)} for role {role} lies "
                              f"among the samples (columns >= {k}); metadata columns come first")
    arr = _loadtxt(text)
    n_series, n_samples = arr.shape[0], text.n_cols - k
    samples = arr[:, k:]

    def locate_sample(i: int) -> str:
        r, s = divmod(i, n_samples)
        return f"line {_line_of_row(text, r)}, column {k + s}"

    g = finish_role("g", np.ascontiguousarray(samples).ravel(), opts, text.path, locate_sample)
    t_one = np.arange(n_samples, dtype=np.float64) / float(opts.sample_rate)
    arrays = {"g": g, "time": np.tile(t_one, n_series),
              "cycle": np.tile(np.arange(n_samples, dtype=np.int64), n_series)}
    keys = None
    for role, j in cols.items():
        meta = arr[:, j].copy()
        if role == "device":
            keys = np.repeat(meta, n_samples)
            continue
        meta = finish_role(role, meta, opts, text.path,
                            lambda i, j=j: f"line {_line_of_row(text, i)}, column {j}")
        arrays[role] = np.repeat(meta, n_samples)
    del arr, samples
    columns = {r: _col_name(text, j) for r, j in cols.items()}
    columns.update(g=f"{k}..{text.n_cols - 1} (samples)",
                   time=f"sample index / {opts.sample_rate:g} Hz", cycle="sample index")
    units = {r: opts.units[r] for r in arrays if r != "cycle"}
    units["time"] = "s"
    return TablePart(path=text.path, n=g.size, arrays=arrays, device_keys=keys,
                 device_ids=None if keys is not None else np.repeat(
                     np.arange(n_series, dtype=np.int64), n_samples),
                 columns=columns, units=units, time_origin=TimeOrigin.FIRST_READ.value)


_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _read_wide_text(text: _Text, opts: ReadOptions) -> TablePart:
    for role in ("g", "g_target"):
        if role in opts.columns:
            raise ConfigError(f"wide layout: {role} comes from the target columns (values and "
                              "headers); do not name it with --columns")
    names = text.names
    cols = role_columns(names, text.n_cols, opts, text.path, exclude=("g", "g_target"))
    for role, j in cols.items():
        check_name_unit(names[j], role, opts, text.path)
    used = set(cols.values())
    targets_idx = [j for j in range(text.n_cols) if j not in used]
    if not targets_idx:
        raise DataFormatError(f"{text.path}: wide layout but no target columns are left after "
                              f"the role columns {sorted(cols)}")
    target_vals = []
    for j in targets_idx:
        m = _NUMBER_RE.search(names[j])
        if not m:
            raise DataFormatError(f"{text.path}: wide layout, column {_col_name(text, j)} has no "
                                  "target value in its header (expected e.g. 'Target_100uS'); "
                                  f"if it is not a target, give it a role with --columns")
        check_name_unit(names[j], "g", opts, text.path)
        target_vals.append(float(m.group(0)))
    rows: list[list[float]] = []
    lines: list[int] = []
    nan = float("nan")
    for lineno, fields in _iter_data_lines(text):
        if len(fields) != text.n_cols:
            raise DataFormatError(f"{text.path}, line {lineno}: found {len(fields)} "
                                  f"columns, expected {text.n_cols} (as in the header)")
        row = []
        for j, cell in enumerate(fields):
            cell = cell.strip().strip('"')
            if not cell and j in targets_idx:
                row.append(nan)  # blank: this target column has no read in this row
                continue
            try:
                v = float(cell)
            except ValueError:
                shown = "an empty cell" if not cell else repr(cell)
                raise DataFormatError(f"{text.path}, line {lineno}, column "
                                      f"{_col_name(text, j)}: {shown} is not a number") from None
            if not np.isfinite(v):
                raise DataFormatError(f"{text.path}, line {lineno}, column {_col_name(text, j)}: "
                                      f"{cell} is not a finite number")
            row.append(v)
        rows.append(row)
        lines.append(lineno)
    if not rows:
        raise DataFormatError(f"{text.path} has a header but no data rows")
    table = np.array(rows, dtype=np.float64)
    values = table[:, targets_idx]  # (rows, targets)
    present = ~np.isnan(values)
    # target-major order: all reads of the first target, then the second, ...
    r_idx, t_idx = np.nonzero(present.T)[1], np.nonzero(present.T)[0]
    g_raw = values[r_idx, t_idx]
    n = g_raw.size

    def locate(i: int) -> str:
        return f"line {lines[r_idx[i]]}, column {_col_name(text, targets_idx[t_idx[i]])}"

    arrays = {"g": finish_role("g", g_raw, opts, text.path, locate)}
    tv = finish_role("g_target", np.array(target_vals), ReadOptions(
        **{**opts.__dict__, "units": {**opts.units, "g_target": opts.units["g"]}}),
        text.path, lambda i: f"header, column {_col_name(text, targets_idx[i])}")
    arrays["g_target"] = tv[t_idx]
    keys = None
    ids = None
    for role, j in cols.items():
        col = table[r_idx, j]
        if role == "device":
            keys = col
            continue
        arrays[role] = finish_role(role, col, opts, text.path,
                                    lambda i, j=j: f"line {lines[r_idx[i]]}, column {j}")
    if keys is not None:
        # a device label names a row; each (row label, target) pair is one device
        lab_ids, _ = factorize(keys)
        keys = lab_ids * len(targets_idx) + t_idx
    elif "time" in cols:
        ids = t_idx.astype(np.int64)  # reads over time: each target column is one device
    else:
        ids = np.arange(n, dtype=np.int64)  # one read per device after programming
    columns = {r: _col_name(text, j) for r, j in cols.items()}
    columns["g"] = f"{len(targets_idx)} target columns"
    columns["g_target"] = "target column headers"
    units = {r: opts.units[r] for r in arrays}
    units["g_target"] = opts.units["g"]
    return TablePart(path=text.path, n=n, arrays=arrays, device_keys=keys, device_ids=ids,
                 columns=columns, units=units, n_missing=int((~present).sum()),
                 time_origin=text.meta.get("time_origin"))
