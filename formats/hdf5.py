"""HDF5 files of xbarlab: model files (device and noise models) and measurement tables.

This is the only module of xbarlab that imports h5py (lazily, inside the functions
that need it), so ``import xbarlab`` and the torch side stay light.

Every xbarlab HDF5 file starts with the same root attributes (:func:`_write_header`)::

    /                      attrs: format ("xbarlab-device-model" | "xbarlab-noise-model" |
                                  "xbarlab-measurements"), format_version (int),
                                  xbarlab_version, created (ISO 8601 UTC), provenance (JSON:
                                  method, settings, sources = [{"path", "sha256"}], notes),
                                  and kind (model files) or time_origin (measurements)

Model files (device models and noise models) share one layout, documented in
``data/README.md``::

    /<name>                dataset, attr units (required; "1" for dimensionless)
    /<group>/...           nested groups mirror nested dicts; str/int/bool values are attrs

A tree is a nested ``dict`` whose leaves are :class:`Quantity` (numbers with
units, stored as datasets) or plain ``str``/``int``/``bool``/``None`` values
(stored as attributes; ``None`` as the string ``"__none__"``). A measurement file holds
one 1-D dataset per role under ``/measurements``, each with its ``units``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import DataFormatError
from .hdf5_check import DEFAULT_MAX_DATASET_BYTES, check_hdf5_file, note_written
from .output import atomic_output
from .provenance import FORMAT_VERSION, Provenance, check_format_version, utc_now

__all__ = [
    "KNOWN_UNITS",
    "Quantity",
    "MODEL_FILE_TYPES",
    "MEASUREMENTS_FORMAT",
    "HDF5_MAGIC",
    "write_model_file",
    "read_model_file",
    "file_kind",
    "write_measurement_file",
    "read_measurement_group",
]

#: Unit strings accepted in the ``units`` attribute of a dataset (SI only).
KNOWN_UNITS = frozenset({"1", "S", "Ohm", "V", "A", "s", "Hz", "K", "S/s", "1/s", "A/V", "V/A"})
#: ``format`` attribute of model files.
MODEL_FILE_TYPES = ("xbarlab-device-model", "xbarlab-noise-model")
#: ``format`` attribute (and .npz ``_xbarlab`` format) of measurement tables.
MEASUREMENTS_FORMAT = "xbarlab-measurements"
#: First eight bytes of every HDF5 file.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: Root attributes every xbarlab HDF5 file carries (read by :func:`_read_header`).
_HEADER = ("format", "format_version", "xbarlab_version", "created", "provenance")

_NONE = "__none__"


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



def _h5py():
    import h5py  # local import: only file I/O needs it

    return h5py


def _write_header(f, file_type: str, provenance: Provenance, **attrs: Any) -> None:
    """Write the root attributes every xbarlab HDF5 file carries; ``attrs``: extra ones."""
    prov = provenance.to_dict()
    prov.update(xbarlab_version=__version__, created=utc_now(), format_version=FORMAT_VERSION)
    f.attrs["format"] = file_type
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["xbarlab_version"] = __version__
    f.attrs["created"] = prov["created"]
    for key, value in attrs.items():
        f.attrs[key] = value
    f.attrs["provenance"] = json.dumps(prov)


def _read_format(f, path: Path) -> str:
    """The file's ``format`` attribute ("" when absent); checks ``format_version`` if given."""
    fmt = _attr_str(f.attrs.get("format", ""), path, "/", "format")
    if "format_version" in f.attrs:
        check_format_version(path, f.attrs["format_version"])
    return fmt


def _open(path: Path, *, allow_external: bool = False,
          max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES):
    """Open ``path`` for reading after :func:`check_hdf5_file` walked it in a child process."""
    check_hdf5_file(path, allow_external=allow_external, max_dataset_bytes=max_dataset_bytes)
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataFormatError(f"{path} is not a readable HDF5 file ({exc})") from None


#: What h5py raises on a file whose content is not what the reader expects.
_H5_ERRORS = (OSError, RuntimeError, KeyError, TypeError, ValueError, AttributeError,
              IndexError)


@contextlib.contextmanager
def _unreadable_as_format_error(path: Path, what: str):
    """Turn what h5py raises inside the block into one DataFormatError naming ``path``."""
    try:
        yield
    except DataFormatError:
        raise
    except _H5_ERRORS as exc:
        raise DataFormatError(f"{path}: not a readable {what} ({type(exc).__name__}: "
                              f"{exc})") from None


# --------------------------------------------------------------------------- model files


def write_model_file(
    path,
    *,
    file_type: str,
    kind: str,
    tree: Mapping[str, Any],
    provenance: Provenance | None = None,
    force: bool = False,
) -> Path:
    """Write a device- or noise-model file atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write (an existing file is replaced only with ``force``).
    file_type : str
        ``"xbarlab-device-model"`` or ``"xbarlab-noise-model"``.
    kind : str
        The model class name that :func:`read_model_file` callers dispatch on.
    tree : Mapping
        Nested dict of :class:`Quantity` / str / int / bool / None leaves.
    provenance : Provenance, optional
        Where the model came from (version and creation time are filled in).
    force : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if file_type not in MODEL_FILE_TYPES:
        raise DataFormatError(f"file_type {file_type!r} is not one of {MODEL_FILE_TYPES}")
    h5py = _h5py()
    prov = provenance or Provenance()
    with atomic_output(path, force=force, suffix=".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as f:
            _write_header(f, file_type, prov, kind=kind)
            _write_tree(f, tree, "/")
            largest = _largest_dataset(f)
    note_written(path, largest)
    return Path(path)


def _largest_dataset(f) -> int:
    """Largest dataset of an open (own, just written) HDF5 file [bytes]."""
    h5py = _h5py()
    sizes = [0]
    f.visititems(lambda _name, obj: sizes.append(obj.nbytes)
                 if isinstance(obj, h5py.Dataset) else None)
    return max(sizes)


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
    path, *, file_type: str | None = None, allow_external: bool = False,
    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
) -> tuple[str, dict[str, Any], Provenance]:
    """Read a model file; return ``(kind, tree, provenance)``.

    Checks: the file is HDF5 whose structure a child process could walk
    (:func:`check_hdf5_file`; external links and virtual datasets refused unless
    ``allow_external``, datasets above ``max_dataset_bytes`` [bytes] refused), its
    ``format`` is an xbarlab model (and equals ``file_type`` when given), its
    ``format_version`` is not newer than :data:`FORMAT_VERSION`, its provenance is a JSON
    object, and every dataset has a known ``units`` attribute.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    with _open(path, allow_external=allow_external, max_dataset_bytes=max_dataset_bytes) as f:
        with _unreadable_as_format_error(path, "model file"):
            return _read_model(f, path, file_type)


def _read_model(f, path: Path, file_type: str | None):
    fmt = _attr_str(f.attrs.get("format", ""), path, "/", "format")
    if fmt not in MODEL_FILE_TYPES:
        raise DataFormatError(f"{path} is not an xbarlab model file (format attribute {fmt!r})")
    if file_type is not None and fmt != file_type:
        raise DataFormatError(f"{path} holds a {fmt!r}, expected a {file_type!r}")
    check_format_version(path, f.attrs.get("format_version", -1))
    kind = _attr_str(f.attrs.get("kind", ""), path, "/", "kind")
    try:
        prov = json.loads(_attr_str(f.attrs.get("provenance", "{}"), path, "/", "provenance"))
    except ValueError as exc:
        raise DataFormatError(f"{path}: provenance attribute is not JSON ({exc})") from None
    if not isinstance(prov, dict):
        raise DataFormatError(f"{path}: attribute provenance of / is a JSON "
                              f"{type(prov).__name__}, expected a JSON object")
    try:
        provenance = Provenance.from_dict(prov)
    except (TypeError, ValueError, AttributeError) as exc:
        raise DataFormatError(f"{path}: attribute provenance of / has an entry of the wrong "
                              f"type ({exc}); expected method, settings (object), sources "
                              "(list of objects), notes, format_version (integer)") from None
    tree = _read_group(f, path, "/", skip={*_HEADER, "kind"})
    return kind, tree, provenance


def file_kind(path, *, allow_external: bool = False) -> str | None:
    """``"xbarlab-device-model"``, ``"xbarlab-noise-model"``, ``"hdf5"`` (other HDF5) or None.

    An HDF5 file is first walked in a child process (:func:`check_hdf5_file`); one that
    fails that check raises DataFormatError.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(8)
    if magic != HDF5_MAGIC:
        return None
    with _open(path, allow_external=allow_external) as f:
        try:
            fmt = _attr_str(f.attrs.get("format", ""), path, "/", "format")
        except _H5_ERRORS:
            return "hdf5"
    return fmt if fmt in MODEL_FILE_TYPES else "hdf5"


def _attr_str(v, path=None, where: str = "/", key: str = "") -> str:
    """A text attribute as ``str``; DataFormatError naming the file and the attribute when it
    is not UTF-8 text or not a single string."""
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "SUO":
        v = v.reshape(()).item()
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise DataFormatError(f"{path}: attribute {key!r} of {where} is not UTF-8 text"
                                  ) from None
    if not isinstance(v, str):
        raise DataFormatError(f"{path}: attribute {key!r} of {where} is "
                              f"{type(v).__name__} {_short(v)}, expected a string")
    return v


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_group(group, path: Path, where: str, skip=frozenset()) -> dict[str, Any]:
    h5py = _h5py()
    out: dict[str, Any] = {}
    for key, value in group.attrs.items():
        if key in skip:
            continue
        if isinstance(value, (bytes, str)):
            s = _attr_str(value, path, where, key)
            out[key] = None if s == _NONE else s
        elif isinstance(value, (np.bool_, bool)):
            out[key] = bool(value)
        elif isinstance(value, (np.integer, int)):
            out[key] = int(value)
        else:
            out[key] = value
    for key in group:
        item = group.get(key)
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item, path, f"{where}{key}/")
        elif not isinstance(item, h5py.Dataset):
            raise DataFormatError(f"{path}: {where}{key} is a {type(item).__name__}, expected a "
                                  "group or a dataset")
        else:
            if "units" not in item.attrs:
                raise DataFormatError(
                    f"{path}: dataset {where}{key} has no 'units' attribute; every dataset must "
                    "carry one (use '1' for dimensionless)"
                )
            units = _attr_str(item.attrs["units"], path, f"{where}{key}", "units")
            if units not in KNOWN_UNITS:
                raise DataFormatError(
                    f"{path}: dataset {where}{key} has units {units!r}, expected one of "
                    f"{sorted(KNOWN_UNITS)}"
                )
            data = item[()]
            out[key] = Quantity(data if np.ndim(data) else data.item(), units)
    return out


# --------------------------------------------------------------------------- measurement tables


def write_measurement_file(path, arrays: Mapping[str, np.ndarray], units: Mapping[str, str], *,
                           time_origin: str, provenance: Provenance,
                           force: bool = False) -> Path:
    """Write a measurement table as HDF5, atomically: ``/measurements/<role>`` datasets.

    Parameters
    ----------
    path : str or os.PathLike
        Where to write.
    arrays : Mapping[str, numpy.ndarray]
        role -> 1-D array in SI units (text arrays are stored as bytes).
    units : Mapping[str, str]
        role -> SI unit stored in the dataset's ``units`` attribute.
    time_origin : str
        What ``time = 0`` means ("programming" or "first read").
    provenance : Provenance
        Where the table came from.
    force : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    h5py = _h5py()
    with atomic_output(path, force=force, suffix=".h5.tmp") as tmp:
        with h5py.File(tmp, "w") as f:
            _write_header(f, MEASUREMENTS_FORMAT, provenance, time_origin=time_origin)
            grp = f.create_group("measurements")
            for role, arr in arrays.items():
                data = arr.astype("S") if arr.dtype.kind == "U" else arr
                ds = grp.create_dataset(role, data=data)
                ds.attrs["units"] = units[role]
            largest = _largest_dataset(f)
    note_written(path, largest)
    return Path(path)


def read_measurement_group(path, select: Callable[[list[str]], Iterable[str]], *,
                           allow_external: bool = False,
                           max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
                           ) -> tuple[dict[str, np.ndarray], dict[str, str], str | None]:
    """Read the ``/measurements`` datasets of an HDF5 measurement table.

    Parameters
    ----------
    path : pathlib.Path
        The HDF5 file.
    select : callable
        Given the dataset names, returns the names to load (the others are not read).
    allow_external : bool
        Follow external links and virtual datasets (default: refuse the file).
    max_dataset_bytes : int
        Largest declared dataset size read [bytes].

    Returns
    -------
    data : dict[str, numpy.ndarray]
        name -> the loaded 1-D dataset, for the selected names.
    units : dict[str, str]
        name -> its ``units`` attribute, for every dataset.
    time_origin : str or None
        The file's ``time_origin`` attribute, if any.
    """
    with _open(path, allow_external=allow_external, max_dataset_bytes=max_dataset_bytes) as f:
        with _unreadable_as_format_error(path, "measurement file"):
            return _read_measurements(f, path, select)


def _read_measurements(f, path: Path, select):
    h5py = _h5py()
    fmt = _read_format(f, path)
    if fmt in MODEL_FILE_TYPES:
        raise DataFormatError(f"{path} is a {fmt} file, not a measurement table; "
                              "`xbarlab inspect` shows what it holds")
    if fmt and fmt != MEASUREMENTS_FORMAT:
        raise DataFormatError(f"{path}: format attribute {fmt!r}, expected "
                              f"{MEASUREMENTS_FORMAT!r}")
    grp = f.get("measurements")
    if not isinstance(grp, h5py.Group):
        raise DataFormatError(f"{path} has no /measurements group; a measurement HDF5 file "
                              "holds one 1-D dataset per column under /measurements, each "
                              "with a 'units' attribute (see data/README.md)")
    items, file_units = {}, {}
    for name in grp:
        item = grp.get(name)
        if not isinstance(item, h5py.Dataset):
            raise DataFormatError(f"{path}: /measurements/{name} is a "
                                  f"{type(item).__name__}; expected only 1-D datasets there")
        if "units" not in item.attrs:
            raise DataFormatError(f"{path}: dataset /measurements/{name} has no 'units' "
                                  "attribute; every dataset must carry one ('1' for "
                                  "dimensionless, e.g. device ids)")
        file_units[name] = _attr_str(item.attrs["units"], path, f"/measurements/{name}", "units")
        items[name] = item
    loaded = {name: items[name][()] for name in set(select(list(items)))}
    origin = f.attrs.get("time_origin")
    origin = _attr_str(origin, path, "/", "time_origin") if origin is not None else None
    return loaded, file_units, origin
