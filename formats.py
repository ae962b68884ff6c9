"""File formats of xbarlab: HDF5 model files, atomic writing, output folders.

This is the only module that imports h5py (lazily, inside the functions that
need it), so ``import xbarlab`` and the torch side stay light.

Model files (device models and noise models) share one HDF5 layout, documented
in ``data/README.md``::

    /                      attrs: format ("xbarlab-device-model" | "xbarlab-noise-model"),
                                  format_version (int), xbarlab_version, created (ISO 8601 UTC),
                                  kind (model class name), provenance (JSON: method, settings,
                                  sources = [{"path", "sha256"}], notes)
    /<name>                dataset, attr units (required; "1" for dimensionless)
    /<group>/...           nested groups mirror nested dicts; str/int/bool values are attrs

A tree is a nested ``dict`` whose leaves are :class:`Quantity` (numbers with
units, stored as datasets) or plain ``str``/``int``/``bool``/``None`` values
(stored as attributes; ``None`` as the string ``"__none__"``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import enum
import gzip
import hashlib
import json
import os
import re
import tempfile
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ConfigError, DataFormatError, OutputExistsError

__all__ = [
    "Quantity",
    "Provenance",
    "FORMAT_VERSION",
    "KNOWN_UNITS",
    "atomic_output",
    "prepare_output_dir",
    "sha256_file",
    "write_model_file",
    "read_model_file",
    "file_kind",
    "ROLES",
    "Layout",
    "TimeOrigin",
    "Measurements",
    "read_measurements",
    "write_measurements",
]

#: Current version of the model-file layout. Files with a larger number are refused;
#: smaller numbers stay readable (readers upgrade them in :func:`read_model_file`).
FORMAT_VERSION = 1

#: Unit strings accepted in the ``units`` attribute of a dataset (SI only).
KNOWN_UNITS = frozenset({"1", "S", "Ohm", "V", "A", "s", "Hz", "K", "S/s", "1/s", "A/V", "V/A"})

_NONE = "__none__"
MANIFEST_NAME = "xbarlab-manifest.json"
_FILE_TYPES = ("xbarlab-device-model", "xbarlab-noise-model")


@dataclass(frozen=True)
class Quantity:
    """A number or array with its unit, as stored in a model file.

    ``value``: float or ndarray, in ``units``; ``units``: one of :data:`KNOWN_UNITS`.
    """

    value: Any
    units: str

    def __post_init__(self):
        if self.units not in KNOWN_UNITS:
            raise DataFormatError(
                f"unit {self.units!r} is not an SI unit xbarlab stores; expected one of "
                f"{sorted(KNOWN_UNITS)}"
            )

    def expect(self, units: str, name: str = "value") -> Any:
        """Return the value after checking its unit is ``units`` (else DataFormatError)."""
        if self.units != units:
            raise DataFormatError(f"{name} has units {self.units!r}, expected {units!r}")
        return self.value


@dataclass(frozen=True)
class Provenance:
    """Where a model file came from.

    ``method``: how it was made (e.g. ``"preset"``, ``"calibration.fit"``);
    ``settings``: JSON-serialisable options of that method; ``sources``: list of
    ``{"path": str, "sha256": str}`` for each input data file; ``notes``: free text.
    ``xbarlab_version``, ``created`` and ``format_version`` are filled on writing and
    read back from the file.
    """

    method: str = "unknown"
    settings: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[Mapping[str, str], ...] = ()
    notes: str = ""
    xbarlab_version: str = __version__
    created: str = ""
    format_version: int = FORMAT_VERSION

    @staticmethod
    def for_files(method: str, paths, settings: Mapping[str, Any] | None = None, notes: str = ""):
        """Provenance for a result made from data files ``paths`` (hashes them)."""
        sources = tuple({"path": str(p), "sha256": sha256_file(p)} for p in paths)
        return Provenance(method=method, settings=dict(settings or {}), sources=sources,
                          notes=notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "settings": dict(self.settings),
            "sources": [dict(s) for s in self.sources],
            "notes": self.notes,
            "xbarlab_version": self.xbarlab_version,
            "created": self.created,
            "format_version": self.format_version,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Provenance:
        return Provenance(
            method=str(d.get("method", "unknown")),
            settings=dict(d.get("settings", {})),
            sources=tuple(dict(s) for s in d.get("sources", ())),
            notes=str(d.get("notes", "")),
            xbarlab_version=str(d.get("xbarlab_version", "")),
            created=str(d.get("created", "")),
            format_version=int(d.get("format_version", FORMAT_VERSION)),
        )


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- atomic writing


@contextlib.contextmanager
def atomic_output(path, *, overwrite: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is
    atomic: readers see the old file or the complete new one, never a partial
    write. If the body raises, the temporary file is removed and ``path`` is
    untouched. An existing ``path`` raises :class:`OutputExistsError` unless
    ``overwrite`` is true.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.exists() and not overwrite:  # appeared while we were writing
            raise OutputExistsError(f"{path} appeared during the write; not replacing it")
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def prepare_output_dir(path, *, force: bool = False, command: str = "") -> Path:
    """Create or reuse an xbarlab output folder and return it.

    A folder xbarlab created holds ``xbarlab-manifest.json``; reusing such a
    folder is allowed (later stages resume in it). A non-empty folder without a
    manifest is refused with :class:`OutputExistsError` unless ``force``.
    """
    path = Path(path)
    manifest = path / MANIFEST_NAME
    if path.exists():
        if not path.is_dir():
            raise OutputExistsError(f"{path} exists and is not a folder")
        if not manifest.exists() and any(path.iterdir()) and not force:
            raise OutputExistsError(
                f"{path} is a non-empty folder that xbarlab did not create (no {MANIFEST_NAME});"
                " choose another folder or pass --force"
            )
    path.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFormatError(f"{manifest} is not valid JSON: {exc}") from None
    else:
        data = {"created": _now(), "xbarlab_version": __version__, "runs": []}
    data.setdefault("runs", []).append(
        {"command": command, "time": _now(), "xbarlab_version": __version__}
    )
    write_text_atomic(manifest, json.dumps(data, indent=2) + "\n", overwrite=True)
    return path


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- model files


def _h5py():
    import h5py  # local import: only file I/O needs it

    return h5py


def write_model_file(
    path,
    *,
    file_type: str,
    kind: str,
    tree: Mapping[str, Any],
    provenance: Provenance | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a device- or noise-model file atomically.

    ``file_type``: ``"xbarlab-device-model"`` or ``"xbarlab-noise-model"``;
    ``kind``: the model class name that :func:`read_model_file` callers dispatch on;
    ``tree``: nested dict of :class:`Quantity` / str / int / bool / None leaves.
    """
    if file_type not in _FILE_TYPES:
        raise DataFormatError(f"file_type {file_type!r} is not one of {_FILE_TYPES}")
    h5py = _h5py()
    prov = provenance or Provenance()
    prov_dict = prov.to_dict()
    prov_dict.update(xbarlab_version=__version__, created=_now(), format_version=FORMAT_VERSION)
    with atomic_output(path, overwrite=overwrite, suffix=".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = file_type
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["xbarlab_version"] = __version__
            f.attrs["created"] = prov_dict["created"]
            f.attrs["kind"] = kind
            f.attrs["provenance"] = json.dumps(prov_dict)
            _write_tree(f, tree, "/")
    return Path(path)


def _write_tree(group, tree: Mapping[str, Any], where: str) -> None:
    for key, value in tree.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise DataFormatError(f"invalid HDF5 name {key!r} under {where}")
        if isinstance(value, Mapping):
            _write_tree(group.create_group(key), value, f"{where}{key}/")
        elif isinstance(value, Quantity):
            ds = group.create_dataset(key, data=np.asarray(value.value))
            ds.attrs["units"] = value.units
        elif value is None:
            group.attrs[key] = _NONE
        elif isinstance(value, (str, bool, int, np.integer, np.bool_)):
            group.attrs[key] = value
        elif isinstance(value, float):
            raise DataFormatError(
                f"{where}{key} is a bare float; wrap it in Quantity(value, units) so its unit "
                "is stored"
            )
        else:
            raise DataFormatError(f"cannot store {where}{key} of type {type(value).__name__}")


def read_model_file(
    path, *, file_type: str | None = None
) -> tuple[str, dict[str, Any], Provenance]:
    """Read a model file; return ``(kind, tree, provenance)``.

    Checks: the file is HDF5, its ``format`` is an xbarlab model (and equals
    ``file_type`` when given), its ``format_version`` is not newer than
    :data:`FORMAT_VERSION`, and every dataset has a known ``units`` attribute.
    """
    h5py = _h5py()
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path} is not a readable HDF5 file ({exc})") from None
    with f:
        fmt = _attr_str(f.attrs.get("format", ""))
        if fmt not in _FILE_TYPES:
            raise DataFormatError(f"{path} is not an xbarlab model file (format attribute {fmt!r})")
        if file_type is not None and fmt != file_type:
            raise DataFormatError(f"{path} holds a {fmt!r}, expected a {file_type!r}")
        version = int(f.attrs.get("format_version", -1))
        if version > FORMAT_VERSION:
            raise DataFormatError(
                f"{path} has format_version {version}, newer than this xbarlab reads "
                f"({FORMAT_VERSION}); upgrade xbarlab"
            )
        if version < 1:
            raise DataFormatError(f"{path} has an invalid format_version {version}")
        kind = _attr_str(f.attrs.get("kind", ""))
        try:
            prov = Provenance.from_dict(json.loads(_attr_str(f.attrs.get("provenance", "{}"))))
        except ValueError as exc:
            raise DataFormatError(f"{path}: provenance attribute is not JSON ({exc})") from None
        tree = _read_group(f, path, "/", skip={"format", "format_version", "xbarlab_version",
                                                "created", "kind", "provenance"})
    return kind, tree, prov


def file_kind(path) -> str | None:
    """``"xbarlab-device-model"``, ``"xbarlab-noise-model"``, ``"hdf5"`` (other HDF5) or None."""
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic != b"\x89HDF\r\n\x1a\n":
        return None
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            fmt = _attr_str(f.attrs.get("format", ""))
    except OSError:
        return None
    return fmt if fmt in _FILE_TYPES else "hdf5"


def _attr_str(v) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return str(v)


def _read_group(group, path: Path, where: str, skip=frozenset()) -> dict[str, Any]:
    h5py = _h5py()
    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if key in skip:
            continue
        if isinstance(value, (bytes, str)):
            s = _attr_str(value)
            out[key] = None if s == _NONE else s
        elif isinstance(value, (np.bool_, bool)):
            out[key] = bool(value)
        elif isinstance(value, (np.integer, int)):
            out[key] = int(value)
        else:
            out[key] = value
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item, path, f"{where}{key}/")
        else:
            if "units" not in item.attrs:
                raise DataFormatError(
                    f"{path}: dataset {where}{key} has no 'units' attribute; every dataset must "
                    "carry one (use '1' for dimensionless)"
                )
            units = _attr_str(item.attrs["units"])
            if units not in KNOWN_UNITS:
                raise DataFormatError(
                    f"{path}: dataset {where}{key} has units {units!r}, expected one of "
                    f"{sorted(KNOWN_UNITS)}"
                )
            data = item[()]
            out[key] = Quantity(data if np.ndim(data) else data.item(), units)
    return out


# --------------------------------------------------------------------------- measurement tables
#
# The unit of measured data is a table, one row per read. Readers bring every
# layout (long / wide / time series) and container (CSV/TSV, plain or .gz; HDF5;
# .npz) to one long table of SI arrays, :class:`Measurements`.


class Layout(enum.StrEnum):
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
_FLOAT_ROLES = ("g", "time", "time_point", "g_target", "g_initial", "v_read", "temperature")
_INT_ROLES = ("level", "cycle")
#: Roles whose unit defaults to another role's unit when ``units`` does not name them.
_UNIT_FALLBACK = {"g_target": "g", "g_initial": "g", "time_point": "time"}
MEASUREMENTS_FORMAT = "xbarlab-measurements"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"


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
    layout: str = Layout.LONG.value
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
        for role in _FLOAT_ROLES[1:] + _INT_ROLES:
            v = getattr(self, role)
            if v is None:
                continue
            v = np.asarray(v, dtype=np.int64 if role in _INT_ROLES else np.float64)
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
                           _choice(TimeOrigin, self.time_origin, "time_origin").value)
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


# -- reading ---------------------------------------------------------------------------------


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

    Every problem raises :class:`DataFormatError` (the file's content) or
    :class:`ConfigError` (the options), naming the file, line/column and what was expected.
    """
    from . import units as _units

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError("read_measurements needs at least one file")
    layout = _choice(Layout, layout, "layout")
    cols = {role: str(src) for role, src in
            _units.parse_mapping(columns, what="columns", allowed_keys=tuple(ROLES)).items()}
    unit_map = _units.parse_mapping(units, what="units", allowed_keys=tuple(ROLES))
    for role, unit in unit_map.items():
        unit_map[role] = _units.check_unit(unit, ROLES[role][0], what=f"role {role}")
    given_units = dict(unit_map)
    for role, (kind, _) in ROLES.items():
        if role not in unit_map:
            src = _UNIT_FALLBACK.get(role)
            unit_map[role] = unit_map.get(src, SI_UNITS[kind]) if src else SI_UNITS[kind]
    if time_origin is not None:
        time_origin = _choice(TimeOrigin, time_origin, "time_origin").value
    if layout is Layout.TIMESERIES:
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
    opts = _ReadOptions(layout=layout, columns=cols, units=unit_map, given_units=given_units,
                        strict=bool(strict), header=header, delimiter=delimiter,
                        sample_rate=sample_rate, samples_from=samples_from)
    parts = [_read_part(p, opts) for p in paths]
    return _merge_parts(parts, opts, same_devices=same_devices, time_origin=time_origin)


def write_measurements(path, m: Measurements, *, overwrite: bool = False,
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
        h5py = _h5py()
        prov = (provenance or Provenance(method="write_measurements")).to_dict()
        prov.update(xbarlab_version=__version__, created=_now(), format_version=FORMAT_VERSION)
        with atomic_output(path, overwrite=overwrite, suffix=".h5.tmp") as tmp:
            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = MEASUREMENTS_FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["xbarlab_version"] = __version__
                f.attrs["created"] = prov["created"]
                f.attrs["time_origin"] = m.time_origin
                f.attrs["provenance"] = json.dumps(prov)
                grp = f.create_group("measurements")
                for role, arr in arrays.items():
                    data = arr.astype("S") if arr.dtype.kind == "U" else arr
                    ds = grp.create_dataset(role, data=data)
                    ds.attrs["units"] = units[role]
    elif name.endswith(".npz"):
        with atomic_output(path, overwrite=overwrite, suffix=".npz.tmp") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, _xbarlab=np.array(json.dumps(meta)), **arrays)
    elif name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz", ".txt", ".txt.gz")):
        delim = "\t" if ".tsv" in name else ","
        fmts = ["%s" if a.dtype.kind in "USO" else "%d" if a.dtype.kind in "iu" else float_format
                for a in arrays.values()]
        head = (f"# xbarlab measurements: format_version={FORMAT_VERSION} "
                f"time_origin={m.time_origin}; units: "
                + ", ".join(f"{r} [{u}]" for r, u in units.items()) + "\n")
        with atomic_output(path, overwrite=overwrite, suffix=".txt.tmp") as tmp:
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


def _choice(enum_cls, value, what: str):
    try:
        return enum_cls(value)
    except ValueError:
        valid = ", ".join(repr(e.value) for e in enum_cls)
        raise ConfigError(f"{what} {value!r} is not one of {valid}") from None


@dataclass
class _ReadOptions:
    layout: Layout
    columns: dict[str, str]
    units: dict[str, str]
    given_units: dict[str, str]
    strict: bool
    header: bool | None
    delimiter: str | None
    sample_rate: float | None
    samples_from: int | None


@dataclass
class _Part:
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


def _read_part(path: Path, opts: _ReadOptions) -> _Part:
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
        if magic != _HDF5_MAGIC:
            raise DataFormatError(f"{path} is named like HDF5 but is not an HDF5 file "
                                  f"(first bytes {magic[:4]!r})")
        return _read_hdf5_part(path, opts)
    if name.endswith(".npz"):
        if not magic.startswith(_ZIP_MAGIC):
            raise DataFormatError(f"{path} is named .npz but is not a numpy .npz (zip) archive "
                                  f"(first bytes {magic[:4]!r})")
        return _read_npz_part(path, opts)
    if magic == _HDF5_MAGIC:
        raise DataFormatError(f"{path} is an HDF5 file but not named .h5/.hdf5; rename it")
    if magic.startswith(_ZIP_MAGIC):
        raise DataFormatError(f"{path} is a zip archive (e.g. .npz or .xlsx), not a text table; "
                              "export the sheet as CSV or name an .npz file .npz")
    text = _sniff_text(path, opts)
    try:
        if opts.layout is Layout.WIDE:
            return _read_wide_text(text, opts)
        if opts.layout is Layout.TIMESERIES:
            return _read_timeseries_text(text, opts)
        return _read_long_text(text, opts)
    except _BadCell as exc:  # internal subclass: users see a plain DataFormatError
        raise DataFormatError(str(exc)) from None


# -- text tables -------------------------------------------------------------------------------


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


def _split(line: str, delimiter: str | None) -> list[str]:
    line = line.rstrip("\r\n")
    if delimiter is None:
        return line.split()
    if delimiter == ",":
        return next(csv.reader([line]))
    return line.split(delimiter)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _sniff_text(path: Path, opts: _ReadOptions) -> _Text:
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
    fields = [f.strip() for f in _split(first, delimiter)]
    header = opts.header
    if opts.layout is Layout.WIDE:
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
            yield lineno, _split(line, text.delimiter)


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


def _role_columns(names, n_cols, opts: _ReadOptions, path: Path, *, exclude=()) -> dict:
    """role -> column index/name: the ``columns`` option, then header names equal to roles."""
    found = {}
    for role, src in opts.columns.items():
        found[role] = _resolve(names, n_cols, src, role, path)
    if names is not None:
        for role in ROLES:
            if role not in found and role not in exclude and names.count(role) == 1:
                found[role] = names.index(role) if n_cols is not None else role
    return found


def _check_name_unit(name: str | None, role: str, opts: _ReadOptions, path: Path) -> None:
    """A column named in one unit (``..._uS``) but read in another is a forgotten --units."""
    from . import units as _units

    kind = ROLES[role][0]
    if not name or kind == "dimensionless":
        return
    hint = _units.unit_in_name(name, kind)
    unit = opts.units[role]
    if hint is None or _same_unit(hint, unit):
        return
    how = "given" if role in opts.given_units else "the default"
    raise ConfigError(f"{path}: column {name!r} (role {role}) is named in {hint}, but {role} "
                      f"is read in {unit} ({how}); pass --units {role}={hint}")


def _same_unit(a: str, b: str) -> bool:
    from . import units as _units

    for table in (_units.CONDUCTANCE_UNITS, _units.RESISTANCE_UNITS, _units.TIME_UNITS,
                  _units.VOLTAGE_UNITS):
        if a in table and b in table:
            return table[a] == table[b]
    return a.replace("°", "") == b.replace("°", "")


def _read_long_text(text: _Text, opts: _ReadOptions) -> _Part:
    cols = _role_columns(text.names, text.n_cols, opts, text.path)
    if "g" not in cols:
        raise DataFormatError(_no_g_message(text.path, text.names, text.n_cols))
    for role, j in cols.items():
        _check_name_unit(text.names[j] if text.names else None, role, opts, text.path)
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
        arrays[role] = _finish_role(role, raw[j].copy() if shared else raw[j], opts,
                                    text.path, lambda i, j=j: locate(i, j))
    keys = None
    if "device" in cols:
        keys = device_text if device_text is not None else raw[cols["device"]]
    return _Part(path=text.path, n=n, arrays=arrays, device_keys=keys,
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


def _finish_role(role: str, values: np.ndarray, opts: _ReadOptions, path: Path, locate):
    """Check one role's raw column, convert it to SI (in place), return it."""
    from . import units as _units

    kind = ROLES[role][0]
    unit = opts.units[role]
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataFormatError(f"{path}, {locate(i)}: {role} is {values[i]}; expected a finite "
                              f"number ({ROLES[role][1]})")
    del finite
    if role in _INT_ROLES:
        frac = values != np.round(values)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise DataFormatError(f"{path}, {locate(i)}: {role} is {values[i]}; expected a "
                                  "whole number (an index)")
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


def _read_timeseries_text(text: _Text, opts: _ReadOptions) -> _Part:
    k = int(opts.samples_from)
    if k >= text.n_cols:
        raise ConfigError(f"{text.path}: samples_from = {k} but the file has only {text.n_cols} "
                          "columns")
    for role in ("g", "time", "cycle"):
        if role in opts.columns:
            raise ConfigError(f"timeseries layout: {role} comes from the samples (columns "
                              f">= {k}); do not name it with --columns")
    cols = _role_columns(text.names, text.n_cols, opts, text.path, exclude=("g", "time", "cycle"))
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

    g = _finish_role("g", np.ascontiguousarray(samples).ravel(), opts, text.path, locate_sample)
    t_one = np.arange(n_samples, dtype=np.float64) / float(opts.sample_rate)
    arrays = {"g": g, "time": np.tile(t_one, n_series),
              "cycle": np.tile(np.arange(n_samples, dtype=np.int64), n_series)}
    keys = None
    for role, j in cols.items():
        meta = arr[:, j].copy()
        if role == "device":
            keys = np.repeat(meta, n_samples)
            continue
        meta = _finish_role(role, meta, opts, text.path,
                            lambda i, j=j: f"line {_line_of_row(text, i)}, column {j}")
        arrays[role] = np.repeat(meta, n_samples)
    del arr, samples
    columns = {r: _col_name(text, j) for r, j in cols.items()}
    columns.update(g=f"{k}..{text.n_cols - 1} (samples)",
                   time=f"sample index / {opts.sample_rate:g} Hz", cycle="sample index")
    units = {r: opts.units[r] for r in arrays if r != "cycle"}
    units["time"] = "s"
    return _Part(path=text.path, n=g.size, arrays=arrays, device_keys=keys,
                 device_ids=None if keys is not None else np.repeat(
                     np.arange(n_series, dtype=np.int64), n_samples),
                 columns=columns, units=units, time_origin=TimeOrigin.FIRST_READ.value)


_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _read_wide_text(text: _Text, opts: _ReadOptions) -> _Part:
    for role in ("g", "g_target"):
        if role in opts.columns:
            raise ConfigError(f"wide layout: {role} comes from the target columns (values and "
                              "headers); do not name it with --columns")
    names = text.names
    cols = _role_columns(names, text.n_cols, opts, text.path, exclude=("g", "g_target"))
    for role, j in cols.items():
        _check_name_unit(names[j], role, opts, text.path)
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
        _check_name_unit(names[j], "g", opts, text.path)
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

    arrays = {"g": _finish_role("g", g_raw, opts, text.path, locate)}
    tv = _finish_role("g_target", np.array(target_vals), _ReadOptions(
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
        arrays[role] = _finish_role(role, col, opts, text.path,
                                    lambda i, j=j: f"line {lines[r_idx[i]]}, column {j}")
    if keys is not None:
        # a device label names a row; each (row label, target) pair is one device
        lab_ids, _ = _factorize(keys)
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
    return _Part(path=text.path, n=n, arrays=arrays, device_keys=keys, device_ids=ids,
                 columns=columns, units=units, n_missing=int((~present).sum()),
                 time_origin=text.meta.get("time_origin"))


# -- HDF5 and npz tables ---------------------------------------------------------------------


def _named_part(path: Path, data: Mapping[str, np.ndarray], file_units: Mapping[str, str],
                opts: _ReadOptions, *, where: str, time_origin=None) -> _Part:
    """A long table from named 1-D arrays (HDF5 datasets or npz members)."""
    from . import units as _units

    if opts.layout is not Layout.LONG:
        raise ConfigError(f"{path}: the {opts.layout.value} layout applies to text tables; "
                          "HDF5 and .npz tables are long (one 1-D array per role)")
    names = list(data)
    cols = _role_columns(names, None, opts, path)
    if "g" not in cols:
        raise DataFormatError(f"{path}: no array for role g (measured conductance) in {where}; "
                              f"name it with --columns g=NAME (arrays: {names})")
    n = None
    for role, name in cols.items():
        a = data[name]
        if a.ndim != 1:
            raise DataFormatError(f"{path}: {where}{name} (role {role}) has shape {a.shape}; "
                                  "expected a 1-D array, one entry per read")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise DataFormatError(f"{path}: {where}{name} has {a.shape[0]} entries, expected {n} "
                                  f"like {where}{cols['g']}")
    if n == 0:
        raise DataFormatError(f"{path}: {where}{cols['g']} holds no reads")
    arrays = {}
    used_units = {}
    opts_file = _ReadOptions(**{**opts.__dict__, "units": dict(opts.units)})
    for role, name in cols.items():
        if role == "device":
            continue
        kind = ROLES[role][0]
        if name in file_units:
            unit = file_units[name]
            try:
                unit = _units.check_unit(unit, kind, what=f"{where}{name}")
            except ConfigError as exc:
                raise DataFormatError(f"{path}: {exc}") from None
            if role in opts.given_units and not _same_unit(opts.given_units[role], unit):
                raise ConfigError(f"{path}: {where}{name} says units {unit!r} but --units gives "
                                  f"{role}={opts.given_units[role]}; the file's unit is used, "
                                  "drop the option")
            opts_file.units[role] = unit
        a = data[name]
        if a.dtype.kind not in "fiub":
            raise DataFormatError(f"{path}: {where}{name} (role {role}) holds {a.dtype}; "
                                  "expected numbers")
        arrays[role] = _finish_role(role, np.array(a, dtype=np.float64), opts_file, path,
                                    lambda i, name=name: f"{where}{name}[{i}]")
        used_units[role] = opts_file.units[role]
    keys = None
    if "device" in cols:
        keys = np.asarray(data[cols["device"]])
        if keys.dtype.kind == "S":
            keys = keys.astype(str)
        if keys.ndim != 1 or keys.shape[0] != n:
            raise DataFormatError(f"{path}: {where}{cols['device']} must be {n} device labels")
    return _Part(path=path, n=n, arrays=arrays, device_keys=keys,
                 device_ids=None if keys is not None else np.arange(n, dtype=np.int64),
                 columns={r: f"{where}{c}" for r, c in cols.items()}, units=used_units,
                 time_origin=time_origin)


def _check_version(path: Path, version) -> None:
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise DataFormatError(f"{path}: format_version {version!r} is not an integer") from None
    if version > FORMAT_VERSION:
        raise DataFormatError(f"{path} has format_version {version}, newer than this xbarlab "
                              f"reads ({FORMAT_VERSION}); upgrade xbarlab")
    if version < 1:
        raise DataFormatError(f"{path} has an invalid format_version {version}")


def _read_hdf5_part(path: Path, opts: _ReadOptions) -> _Part:
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(f"{path} is not a readable HDF5 file ({exc})") from None
    with f:
        fmt = _attr_str(f.attrs.get("format", ""))
        if fmt in _FILE_TYPES:
            raise DataFormatError(f"{path} is a {fmt} file, not a measurement table; "
                                  "`xbarlab inspect` shows what it holds")
        if fmt and fmt != MEASUREMENTS_FORMAT:
            raise DataFormatError(f"{path}: format attribute {fmt!r}, expected "
                                  f"{MEASUREMENTS_FORMAT!r}")
        if "format_version" in f.attrs:
            _check_version(path, f.attrs["format_version"])
        grp = f.get("measurements")
        if not isinstance(grp, h5py.Group):
            raise DataFormatError(f"{path} has no /measurements group; a measurement HDF5 file "
                                  "holds one 1-D dataset per column under /measurements, each "
                                  "with a 'units' attribute (see data/README.md)")
        data, file_units = {}, {}
        for name, item in grp.items():
            if not isinstance(item, h5py.Dataset):
                raise DataFormatError(f"{path}: /measurements/{name} is a group; expected only "
                                      "1-D datasets there")
            if "units" not in item.attrs:
                raise DataFormatError(f"{path}: dataset /measurements/{name} has no 'units' "
                                      "attribute; every dataset must carry one ('1' for "
                                      "dimensionless, e.g. device ids)")
            file_units[name] = _attr_str(item.attrs["units"])
            data[name] = item
        # read only the datasets the roles use
        cols = _role_columns(list(data), None, opts, path)
        loaded = {name: data[name][()] for name in set(cols.values())}
        origin = f.attrs.get("time_origin")
        origin = _attr_str(origin) if origin is not None else None
    return _named_part(path, loaded, file_units, opts, where="/measurements/",
                       time_origin=origin)


def _read_npz_part(path: Path, opts: _ReadOptions) -> _Part:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataFormatError(f"{path} is not a readable .npz archive ({exc})") from None
    file_units: dict[str, str] = {}
    origin = None
    meta = data.pop("_xbarlab", None)
    if meta is not None:
        try:
            meta = json.loads(str(meta))
        except ValueError:
            raise DataFormatError(f"{path}: member _xbarlab is not JSON") from None
        _check_version(path, meta.get("format_version", -1))
        file_units = dict(meta.get("units", {}))
        origin = meta.get("time_origin")
    return _named_part(path, data, file_units, opts, where="", time_origin=origin)


# -- merging ---------------------------------------------------------------------------------


def _factorize(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _merge_parts(parts: list[_Part], opts: _ReadOptions, *, same_devices: bool,
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
    if parts[0].device_keys is not None:
        if same_devices or len(parts) == 1:
            try:
                keys = (parts[0].device_keys if len(parts) == 1
                        else np.concatenate([p.device_keys for p in parts]))
            except (TypeError, ValueError):
                raise DataFormatError("device labels of the files differ in type; they cannot "
                                      "be matched with same_devices") from None
            device, labels = _factorize(keys)
        else:
            ids, labs = [], []
            base = 0
            for k, p in enumerate(parts):
                i, lab = _factorize(p.device_keys)
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
        elif "g_initial" in roles or opts.layout is Layout.TIMESERIES:
            time_origin = TimeOrigin.FIRST_READ.value
        else:
            time_origin = TimeOrigin.PROGRAMMING.value
    return Measurements(
        device=device, time_origin=time_origin, layout=opts.layout.value,
        sources=tuple(str(p.path) for p in parts), source_rows=tuple(int(o) for o in offsets),
        device_labels=labels, columns=parts[0].columns, units=parts[0].units,
        n_missing=sum(p.n_missing for p in parts), **arrays,
    )
