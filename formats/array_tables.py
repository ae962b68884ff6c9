"""HDF5 and .npz measurement tables: one named 1-D array per column (long layout only)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from .hdf5 import read_measurement_group
from .provenance import check_format_version
from .roles import ROLES, ReadOptions, TableLayout, TablePart, finish_role, role_columns, same_unit

__all__ = ["read_hdf5_part", "read_npz_part"]


def _named_part(path: Path, data: Mapping[str, np.ndarray], file_units: Mapping[str, str],
                opts: ReadOptions, *, where: str, time_origin=None) -> TablePart:
    """A long table from named 1-D arrays (HDF5 datasets or npz members)."""
    from .. import units as _units

    if opts.layout is not TableLayout.LONG:
        raise ConfigError(f"{path}: the {opts.layout.value} layout applies to text tables; "
                          "HDF5 and .npz tables are long (one 1-D array per role)")
    names = list(data)
    cols = role_columns(names, None, opts, path)
    if "g" not in cols:
        raise DataFormatError(f"{path}: no array for role g (measured conductance) in {where}; "
                              f"name it with --columns g=NAME (arrays: {names})")
    n, first = None, None
    for role, name in cols.items():
        a = data[name]
        if a.ndim != 1:
            raise DataFormatError(f"{path}: {where}{name} (role {role}) has shape {a.shape}; "
                                  "expected a 1-D array, one entry per read")
        if n is None:
            n, first = a.shape[0], name
        elif a.shape[0] != n:
            raise DataFormatError(f"{path}: {where}{name} has {a.shape[0]} entries, expected {n} "
                                  f"like {where}{first}")
    if n == 0:
        raise DataFormatError(f"{path}: {where}{cols['g']} holds no reads")
    arrays = {}
    used_units = {}
    opts_file = ReadOptions(**{**opts.__dict__, "units": dict(opts.units)})
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
            if role in opts.given_units and not same_unit(opts.given_units[role], unit):
                raise ConfigError(f"{path}: {where}{name} says units {unit!r} but --units gives "
                                  f"{role}={opts.given_units[role]}; the file's unit is used, "
                                  "drop the option")
            opts_file.units[role] = unit
        a = data[name]
        if a.dtype.kind not in "fiub":
            raise DataFormatError(f"{path}: {where}{name} (role {role}) holds {a.dtype}; "
                                  "expected numbers")
        arrays[role] = finish_role(role, np.array(a, dtype=np.float64), opts_file, path,
                                    lambda i, name=name: f"{where}{name}[{i}]")
        used_units[role] = opts_file.units[role]
    keys = None
    if "device" in cols:
        keys = np.asarray(data[cols["device"]])
        if keys.dtype.kind == "S":
            keys = keys.astype(str)
        if keys.ndim != 1 or keys.shape[0] != n:
            raise DataFormatError(f"{path}: {where}{cols['device']} must be {n} device labels")
    return TablePart(path=path, n=n, arrays=arrays, device_keys=keys,
                 device_ids=None if keys is not None else np.arange(n, dtype=np.int64),
                 columns={r: f"{where}{c}" for r, c in cols.items()}, units=used_units,
                 time_origin=time_origin)


def read_hdf5_part(path: Path, opts: ReadOptions) -> TablePart:
    """Read an HDF5 measurement table (``/measurements/<column>`` datasets)."""
    loaded, file_units, origin = read_measurement_group(
        path, lambda names: role_columns(names, None, opts, path).values())
    return _named_part(path, loaded, file_units, opts, where="/measurements/",
                       time_origin=origin)


def read_npz_part(path: Path, opts: ReadOptions) -> TablePart:
    """Read a .npz measurement table (one member per column, ``_xbarlab`` metadata)."""
    import struct
    import zipfile
    import zlib

    try:
        # the file is opened here so that it is closed whatever zipfile raises (on an
        # unsupported compression method it leaves its own handle open)
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError,
            struct.error, zlib.error) as exc:
        # NotImplementedError: a zip version or compression method zipfile does not read
        raise DataFormatError(f"{path} is not a readable .npz archive ({exc})") from None
    file_units: dict[str, str] = {}
    origin = None
    meta = data.pop("_xbarlab", None)
    if meta is not None:
        try:
            meta = json.loads(str(meta))
        except ValueError:
            raise DataFormatError(f"{path}: member _xbarlab is not JSON") from None
        check_format_version(path, meta.get("format_version", -1))
        file_units = dict(meta.get("units", {}))
        origin = meta.get("time_origin")
    return _named_part(path, data, file_units, opts, where="", time_origin=origin)
