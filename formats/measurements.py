"""Measurement tables: the :class:`Measurements` object, reading and writing them.

The unit of measured data is a table, one row per read. Readers bring every
layout (long / wide / time series) and container (CSV/TSV, plain or .gz; HDF5;
.npz) to one long table of SI arrays, :class:`Measurements`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataFormatError
from .array_tables import read_hdf5_part, read_npz_part
from .hdf5 import HDF5_MAGIC, MEASUREMENTS_FORMAT, write_measurement_file
from .output import atomic_output
from .plausibility import DUPLICATE_POLICIES, check_device_labels, check_measurements
from .provenance import FORMAT_VERSION, Provenance
from .roles import (
    FLOAT_ROLES,
    INT_ROLES,
    ROLES,
    SI_UNITS,
    UNIT_FALLBACK,
    ReadOptions,
    TableLayout,
    TablePart,
    TimeOrigin,
    choice,
    factorize,
)
from .text_tables import read_text_part

__all__ = ["Measurements", "read_measurements", "write_measurements"]

_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, eq=False)
class Measurements:
    """A measurement table in SI units: one entry per read, arrays of equal length ``n``.

    Every array is 1-D numpy. Optional roles are ``None`` when the source has no
    such column. Build one with :func:`read_measurements`.
    """

    #: Measured conductance G [S], float64. Reads below zero are kept (see ``n_negative``).
    g: np.ndarray
    #: Device index 0 .. n_devices-1 per read, int64 (``device_labels[i]`` names device i).
    device: np.ndarray
    #: Read time t [s] after programming, or after the first read (see ``time_origin``).
    time: np.ndarray | None = None
    #: Nominal time point a read belongs to [s] (e.g. Stanford ``timept``).
    time_point: np.ndarray | None = None
    #: Programming target G_target [S].
    g_target: np.ndarray | None = None
    #: The cell's first read after programming G_0 [S].
    g_initial: np.ndarray | None = None
    #: Programmed level index, int64.
    level: np.ndarray | None = None
    #: Repeated-read index, int64.
    cycle: np.ndarray | None = None
    #: Read voltage V_read [V].
    v_read: np.ndarray | None = None
    #: Temperature T [K].
    temperature: np.ndarray | None = None
    #: What ``time = 0`` means: "programming" or "first read".
    time_origin: str = TimeOrigin.PROGRAMMING.value
    #: The layout the table was read from ("long", "wide", "timeseries").
    layout: str = TableLayout.LONG.value
    #: Source files, in reading order.
    sources: tuple[str, ...] = ()
    #: Row offsets of each source: reads of ``sources[k]`` are ``source_rows[k]:source_rows[k+1]``.
    source_rows: tuple[int, ...] = ()
    #: Original label of each device (length n_devices), or None when each row or
    #: cell is its own device (no device column).
    device_labels: np.ndarray | None = None
    #: role -> source column it was read from (for reports and provenance).
    columns: Mapping[str, str] = field(default_factory=dict)
    #: role -> unit of the source column before conversion to SI.
    units: Mapping[str, str] = field(default_factory=dict)
    #: Blank cells skipped (wide layout: a target column shorter than the others).
    n_missing: int = 0

    def __post_init__(self):
        g = np.asarray(self.g, dtype=np.float64)
        if g.ndim != 1:
            raise ConfigError(f"Measurements.g must be 1-D, got shape {g.shape}")
        n = g.shape[0]
        object.__setattr__(self, "g", g)
        dev = np.asarray(self.device)
        if dev.shape != (n,) or dev.dtype.kind not in "iu":
            raise ConfigError(
                f"Measurements.device must be {n} integer ids, got {dev.dtype} shape {dev.shape}"
            )
        object.__setattr__(self, "device", dev.astype(np.int64, copy=False))
        for role in FLOAT_ROLES[1:] + INT_ROLES:
            v = getattr(self, role)
            if v is None:
                continue
            v = np.asarray(v, dtype=np.int64 if role in INT_ROLES else np.float64)
            if v.shape != (n,):
                raise ConfigError(f"Measurements.{role} must have shape ({n},), got {v.shape}")
            object.__setattr__(self, role, v)
        if not np.all(np.isfinite(g)):
            raise ConfigError("Measurements.g must be finite conductances in S")
        for role in ("time", "time_point"):
            v = getattr(self, role)
            if v is not None and not (np.all(np.isfinite(v)) and (n == 0 or v.min() >= 0)):
                raise ConfigError(f"Measurements.{role} must be finite times >= 0 s")
        object.__setattr__(self, "time_origin",
                           choice(TimeOrigin, self.time_origin, "time_origin").value)
        if not self.source_rows:
            object.__setattr__(self, "source_rows", (0, n))
        if self.source_rows[-1] != n:
            raise ConfigError(f"Measurements.source_rows must end at {n}, got {self.source_rows}")

    # -- views -------------------------------------------------------------------------------

    @property
    def n_reads(self) -> int:
        """Number of reads (rows)."""
        return int(self.g.shape[0])

    @property
    def n_devices(self) -> int:
        """Number of distinct devices."""
        if self.device_labels is not None:
            return int(len(self.device_labels))
        return int(self.device.max()) + 1 if self.device.size else 0

    @property
    def n_negative(self) -> int:
        """Number of reads below 0 S (instrument offset; kept, counted, rejected by strict)."""
        return int(np.count_nonzero(self.g < 0))

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles present, in :data:`ROLES` order."""
        return tuple(r for r in ROLES if r == "device" or getattr(self, r) is not None)

    def column(self, role: str) -> np.ndarray | None:
        """The array of ``role`` (None when absent)."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; valid roles: {', '.join(ROLES)}")
        return getattr(self, role)

    def summary(self) -> dict[str, Any]:
        """What the table holds, as plain Python values (conductances in S, times in s)."""
        out: dict[str, Any] = {
            "sources": list(self.sources),
            "layout": self.layout,
            "reads": self.n_reads,
            "devices": self.n_devices,
            "roles": {r: {"column": self.columns.get(r, ""), "unit": self.units.get(r, "")}
                      for r in self.roles},
            "time_origin": self.time_origin,
            "reads_below_zero": self.n_negative,
            "missing_cells": int(self.n_missing),
        }
        if self.n_reads:
            out["reads_at_zero"] = int(np.count_nonzero(self.g == 0.0))
            out["g_min"] = float(self.g.min())
            out["g_max"] = float(self.g.max())
            out["g_mean"] = float(self.g.mean())
            counts = np.bincount(self.device, minlength=self.n_devices)
            out["reads_per_device"] = [int(counts.min()), float(np.median(counts)),
                                       int(counts.max())]
        for role, key in (("level", "levels"), ("g_target", "targets"),
                          ("time_point", "time_points")):
            v = getattr(self, role)
            if v is not None:
                u = np.unique(v)
                out[key] = {"count": int(u.size), "min": u.min().item(), "max": u.max().item(),
                            "values": u.tolist() if u.size <= 16 else None}
        if self.g_target is not None and self.n_reads:
            # distinct devices per target (a device may be programmed to several targets)
            t_ids = np.unique(self.g_target, return_inverse=True)[1].ravel()
            pairs = np.unique(t_ids * np.int64(max(self.n_devices, 1)) + self.device)
            per = np.bincount(pairs // max(self.n_devices, 1))
            out["devices_per_target"] = [int(per.min()), int(per.max())]
        if self.time is not None and self.n_reads:
            out["time_range"] = [float(self.time.min()), float(self.time.max())]
        if self.n_negative:
            out["g_negative_min"] = float(self.g.min())
        return out


def read_measurements(
    paths,
    *,
    columns=None,
    units=None,
    layout: str = "long",
    sample_rate: float | None = None,
    samples_from: int | None = None,
    strict: bool = False,
    header: bool | None = None,
    delimiter: str | None = None,
    same_devices: bool = False,
    time_origin: str | None = None,
    duplicates: str = "refuse",
) -> Measurements:
    """Read one or several measurement files into one :class:`Measurements` (SI units).

    ``paths``: a path or a list of paths (CSV/TSV plain or ``.gz``, HDF5 ``.h5``/``.hdf5``,
    ``.npz``). ``columns``: role -> source column, a dict or ``"g=3,time=1"``; a source is
    a header name or, without a header, a 0-based position; one source may fill two roles.
    Columns named exactly like a role are used without being named. ``units``: role ->
    unit, a dict or ``"g=uS,time=h"`` (default SI; ``g_target``/``g_initial`` default to
    ``g``'s unit and ``time_point`` to ``time``'s; a resistance unit converts to
    conductance). ``layout``: "long", "wide" (one column per target, the target value in
    the header; ``g``'s unit applies to both) or "timeseries" (``sample_rate`` [Hz],
    samples from 0-based column ``samples_from`` on; one row per device or level).
    ``strict``: reject reads below 0 S (else they are kept and counted). ``header``:
    None detects a header line (a line with a non-numeric field). ``same_devices``:
    equal device labels in different files are one device (default: each file's
    devices are distinct and, when several files are read, labelled ``"k:label"`` with k
    the file's index). ``time_origin``: overrides the rule "first read when
    ``g_initial`` is given (or for a time series), else programming".
    ``duplicates``: reads repeating a (device, time[, cycle]) read are refused
    ("refuse", the default), or reduced to the first ("first") or the mean conductance
    ("mean") of each group. The
    same file given twice is refused; conductances above 1 S give a
    :class:`~xbarlab.errors.PlausibilityWarning`.

    Every problem raises :class:`DataFormatError` (the file's content) or
    :class:`ConfigError` (the options), naming the file, line/column and what was expected.
    """
    from .. import units as _units

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("read_measurements needs at least one file")
    layout = choice(TableLayout, layout, "layout")
    cols = {role: str(src) for role, src in
            _units.parse_mapping(columns, what="columns", allowed_keys=tuple(ROLES)).items()}
    unit_map = _units.parse_mapping(units, what="units", allowed_keys=tuple(ROLES))
    for role, unit in unit_map.items():
        unit_map[role] = _units.check_unit(unit, ROLES[role][0], what=f"role {role}")
    given_units = dict(unit_map)
    for role, (kind, _) in ROLES.items():
        if role not in unit_map:
            src = UNIT_FALLBACK.get(role)
            unit_map[role] = unit_map.get(src, SI_UNITS[kind]) if src else SI_UNITS[kind]
    if time_origin is not None:
        time_origin = choice(TimeOrigin, time_origin, "time_origin").value
    if layout is TableLayout.TIMESERIES:
        if sample_rate is None or samples_from is None:
            raise ConfigError("the timeseries layout needs sample_rate (Hz, --sample-rate) and "
                              "samples_from (0-based column, --samples-from)")
        if not (np.isfinite(sample_rate) and sample_rate > 0):
            raise ConfigError(f"sample_rate must be a frequency > 0 Hz, got {sample_rate!r}")
        if int(samples_from) != samples_from or samples_from < 0:
            raise ConfigError(f"samples_from must be a column index >= 0, got {samples_from!r}")
    elif sample_rate is not None or samples_from is not None:
        raise ConfigError("sample_rate/samples_from apply to the timeseries layout only "
                          f"(layout is {layout.value!r}); pass layout='timeseries'")
    opts = ReadOptions(layout=layout, columns=cols, units=unit_map, given_units=given_units,
                        strict=bool(strict), header=header, delimiter=delimiter,
                        sample_rate=sample_rate, samples_from=samples_from)
    if duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates {duplicates!r} is not one of {DUPLICATE_POLICIES}")
    _refuse_repeated_files(paths)
    parts = [_read_part(p, opts) for p in paths]
    m = _merge_parts(parts, opts, same_devices=same_devices, time_origin=time_origin)
    return check_measurements(m, duplicates=duplicates)


def _refuse_repeated_files(paths: list[Path]) -> None:
    seen: dict[tuple[int, int], Path] = {}
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue  # _read_part names a missing file
        key = (st.st_dev, st.st_ino)
        if key in seen:
            raise ConfigError(f"{p} is given twice (also as {seen[key]}); its reads would be "
                              "counted twice")
        seen[key] = p


def write_measurements(path, m: Measurements, *, force: bool = False,
                       provenance: Provenance | None = None,
                       float_format: str = "%.17g") -> Path:
    """Write ``m`` atomically as a long table, format chosen by the suffix.

    ``.h5``/``.hdf5``: the HDF5 layout of ``data/README.md`` (``/measurements/<role>``
    datasets with SI ``units``); ``.npz``: one array per role plus ``_xbarlab`` (JSON:
    format, version, units, time origin); ``.csv``/``.tsv`` (optionally ``.gz``): a header
    of role names, SI values written with ``float_format`` (default exact float64 text).
    Devices are written as their labels.
    """
    path = Path(path)
    name = path.name.lower()
    arrays: dict[str, np.ndarray] = {}
    for role in m.roles:
        if role == "device":
            arrays[role] = (m.device_labels[m.device] if m.device_labels is not None
                            else m.device)
        else:
            arrays[role] = getattr(m, role)
    units = {r: SI_UNITS[ROLES[r][0]] for r in arrays}
    meta = {"format": MEASUREMENTS_FORMAT, "format_version": FORMAT_VERSION,
            "time_origin": m.time_origin, "units": units}
    if name.endswith((".h5", ".hdf5")):
        write_measurement_file(path, arrays, units, time_origin=m.time_origin,
                               provenance=provenance or Provenance(method="write_measurements"),
                               force=force)
    elif name.endswith(".npz"):
        with atomic_output(path, force=force, suffix=".npz.tmp") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, _xbarlab=np.array(json.dumps(meta)), **arrays)
    elif name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt", ".txt.gz")):
        delim = "\t" if ".tsv" in name else ","
        fmts = ["%s" if a.dtype.kind in "USO" else "%d" if a.dtype.kind in "iu" else float_format
                for a in arrays.values()]
        head = (f"# xbarlab measurements: format_version={FORMAT_VERSION} "
                f"time_origin={m.time_origin}; units: "
                + ", ".join(f"{r} [{u}]" for r, u in units.items()) + "\n")
        with atomic_output(path, force=force, suffix=".txt.tmp") as tmp:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(tmp, "wt", encoding="utf-8", newline="\n") as fh:
                fh.write(head)
                fh.write(delim.join(arrays) + "\n")
                cols = list(arrays.values())
                step = 65536
                for lo in range(0, m.n_reads, step):
                    chunk = [c[lo:lo + step] for c in cols]
                    for row in zip(*chunk, strict=True):
                        fh.write(delim.join(f % v for f, v in zip(fmts, row, strict=True))
                                 + "\n")
    else:
        raise ConfigError(f"{path}: unknown measurement file suffix; use .csv, .tsv (optionally "
                          ".gz), .h5/.hdf5 or .npz")
    return path


def _read_part(path: Path, opts: ReadOptions) -> TablePart:
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    if path.is_dir():
        raise DataFormatError(f"{path} is a folder, expected a measurement file")
    name = path.name.lower()
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if not magic:
        raise DataFormatError(f"{path} is empty; expected a measurement table")
    if name.endswith((".h5", ".hdf5")):
        if magic != HDF5_MAGIC:
            raise DataFormatError(f"{path} is named like HDF5 but is not an HDF5 file "
                                  f"(first bytes {magic[:4]!r})")
        return read_hdf5_part(path, opts)
    if name.endswith(".npz"):
        if not magic.startswith(_ZIP_MAGIC):
            raise DataFormatError(f"{path} is named .npz but is not a numpy .npz (zip) archive "
                                  f"(first bytes {magic[:4]!r})")
        return read_npz_part(path, opts)
    if magic == HDF5_MAGIC:
        raise DataFormatError(f"{path} is an HDF5 file but not named .h5/.hdf5; rename it")
    if magic.startswith(_ZIP_MAGIC):
        raise DataFormatError(f"{path} is a zip archive (e.g. .npz or .xlsx), not a text table; "
                              "export the sheet as CSV or name an .npz file .npz")
    return read_text_part(path, opts)


def _merge_parts(parts: list[TablePart], opts: ReadOptions, *, same_devices: bool,
                 time_origin: str | None) -> Measurements:
    roles = set(parts[0].arrays)
    for p in parts[1:]:
        if set(p.arrays) != roles or (p.device_keys is None) != (parts[0].device_keys is None):
            raise DataFormatError(
                f"{p.path} gives roles {sorted(p.arrays)} but {parts[0].path} gives "
                f"{sorted(parts[0].arrays)}; files read together must give the same roles")
    offsets = np.cumsum([0] + [p.n for p in parts]).tolist()
    arrays = {r: (parts[0].arrays[r] if len(parts) == 1
                  else np.concatenate([p.arrays[r] for p in parts])) for r in roles}
    labels = None
    for p in parts:
        if p.device_keys is not None:
            check_device_labels(p.device_keys, p.path)
    if parts[0].device_keys is not None:
        if same_devices or len(parts) == 1:
            try:
                keys = (parts[0].device_keys if len(parts) == 1
                        else np.concatenate([p.device_keys for p in parts]))
            except (TypeError, ValueError):
                raise DataFormatError("device labels of the files differ in type; they cannot "
                                      "be matched with same_devices") from None
            device, labels = factorize(keys)
        else:
            ids, labs = [], []
            base = 0
            for k, p in enumerate(parts):
                i, lab = factorize(p.device_keys)
                ids.append(i + base)
                labs.append(np.array([f"{k}:{x}" for x in lab.tolist()]))
                base += lab.size
            device, labels = np.concatenate(ids), np.concatenate(labs)
    else:
        ids, base = [], 0
        for p in parts:
            ids.append(p.device_ids + base)
            base += int(p.device_ids.max()) + 1
        device = ids[0] if len(ids) == 1 else np.concatenate(ids)
    if time_origin is None:
        file_origins = {p.time_origin for p in parts if p.time_origin}
        if len(file_origins) > 1:
            raise DataFormatError(f"the files disagree on the time origin ({sorted(file_origins)})")
        if file_origins:
            time_origin = file_origins.pop()
        elif "g_initial" in roles or opts.layout is TableLayout.TIMESERIES:
            time_origin = TimeOrigin.FIRST_READ.value
        else:
            time_origin = TimeOrigin.PROGRAMMING.value
    return Measurements(
        device=device, time_origin=time_origin, layout=opts.layout.value,
        sources=tuple(str(p.path) for p in parts), source_rows=tuple(int(o) for o in offsets),
        device_labels=labels, columns=parts[0].columns, units=parts[0].units,
        n_missing=sum(p.n_missing for p in parts), **arrays,
    )
