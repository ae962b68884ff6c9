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
import datetime as _dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import DataFormatError, OutputExistsError

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
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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
                f"{where}{key} is a bare float; wrap it in Quantity(value, units) so its unit is stored"
            )
        else:
            raise DataFormatError(f"cannot store {where}{key} of type {type(value).__name__}")


def read_model_file(path, *, file_type: str | None = None) -> tuple[str, dict[str, Any], Provenance]:
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
