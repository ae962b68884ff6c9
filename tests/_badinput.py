"""Bad measurement inputs shared by the reader tests and the CLI tests.

Each case builds files in a folder and returns ``(paths, options)``; ``options`` are
keyword arguments of ``read_measurements`` and map one-to-one onto CLI flags
(:func:`cli_args`). ``CASES`` lists ``(id, builder, error class name, regex)``: the
regex names the file (or option) and what was expected.
"""

from __future__ import annotations

import gzip

import h5py
import numpy as np


def _w(folder, name, text):
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


def missing_column(d):
    return [_w(d, "t.csv", "device,time,g\n1,0,1e-5\n")], {"columns": "g=G"}


def misspelled_column(d):
    return [_w(d, "t.csv", "device,time,g\n1,0,1e-5\n")], {"columns": "time=tme"}


def no_g_column(d):
    return [_w(d, "t.csv", "device,time,cond\n1,0,1e-5\n")], {}


def position_out_of_range(d):
    return [_w(d, "t.tsv", "1\t2\n3\t4\n")], {"columns": "g=5"}


def non_numeric_cell(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n2,abc\n")], {}


def empty_cell(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n2,\n")], {}


def nan_conductance(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n2,nan\n")], {}


def inf_conductance(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n2,1e-5\n3,-inf\n")], {}


def negative_time(d):
    return [_w(d, "t.csv", "device,time,g\n1,0,1e-5\n1,-1,1e-5\n")], {}


def unknown_unit(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n")], {"units": "g=uF"}


def unknown_role(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n")], {"columns": "conductance=g"}


def unit_in_header_disagrees(d):
    return [_w(d, "t.csv", "device,g_uS\n1,10\n")], {"columns": "g=g_uS"}


def ragged_row(d):
    return [_w(d, "t.csv", "device,time,g\n1,0,1e-5\n2,0\n")], {}


def long_row(d):
    return [_w(d, "t.tsv", "0\t0\t1e-5\n1\t0\t1e-5\t7\n")], {"columns": "device=0,g=2"}


def truncated_gz(d):
    p = d / "t.csv.gz"
    body = "device,time,g\n" + "".join(f"{i},0,{1e-5 * (1 + i % 7)}\n" for i in range(5000))
    raw = gzip.compress(body.encode())
    p.write_bytes(raw[: len(raw) // 2])
    return [p], {}


def gz_suffix_not_gzip(d):
    return [_w(d, "t.csv.gz", "device,g\n1,1e-5\n")], {}


def gzip_without_gz_suffix(d):
    p = d / "t.csv"
    p.write_bytes(gzip.compress(b"device,g\n1,1e-5\n"))
    return [p], {}


def text_named_h5(d):
    return [_w(d, "t.h5", "device,g\n1,1e-5\n")], {}


def text_named_npz(d):
    return [_w(d, "t.npz", "device,g\n1,1e-5\n")], {}


def hdf5_named_csv(d):
    p = d / "t.csv"
    with h5py.File(p, "w") as f:
        f["x"] = np.zeros(3)
    return [p], {}


def binary_named_csv(d):
    p = d / "t.csv"
    p.write_bytes(b"device,g\n\xff\xfe\x00\x01binary\n")
    return [p], {}


def hdf5_without_units(d):
    p = d / "t.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("measurements")
        g["g"] = np.array([1e-5, 2e-5])
        g["device"] = np.array([0, 1])
        g["device"].attrs["units"] = "1"
    return [p], {}


def hdf5_without_group(d):
    p = d / "t.h5"
    with h5py.File(p, "w") as f:
        f["g"] = np.array([1e-5])
        f["g"].attrs["units"] = "S"
    return [p], {}


def hdf5_newer_version(d):
    p = d / "t.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "xbarlab-measurements"
        f.attrs["format_version"] = 99
        g = f.create_group("measurements")
        g["g"] = np.array([1e-5])
        g["g"].attrs["units"] = "S"
    return [p], {}


def empty_file(d):
    return [_w(d, "t.csv", "")], {}


def blank_file(d):
    return [_w(d, "t.csv", "\n  \n# only a comment\n")], {}


def header_only(d):
    return [_w(d, "t.csv", "device,time,g\n")], {}


def negative_read_strict(d):
    return [_w(d, "t.csv", "device,g\n1,1e-5\n2,-1e-7\n")], {"strict": True}


def negative_resistance(d):
    return [_w(d, "t.csv", "device,r\n1,1000\n2,-5\n")], {"columns": "g=r", "units": "g=Ohm"}


def wide_header_without_target(d):
    return [_w(d, "w.csv", "Target_100uS,comment\n99,1\n")], {"layout": "wide", "units": "g=uS"}


def timeseries_without_rate(d):
    return [_w(d, "s.tsv", "0\t0\t1e-5\t2e-5\n")], {"layout": "timeseries", "samples_from": 2}


def non_integer_level(d):
    return [_w(d, "t.csv", "device,level,g\n1,2.5,1e-5\n")], {}


def missing_file(d):
    return [d / "nope.csv"], {}


CASES = [
    # (id, builder, error class, regex the message must match)
    ("missing column", missing_column, "DataFormatError",
     r"t\.csv has no column 'G' \(for role g\)"),
    ("misspelled column", misspelled_column, "DataFormatError",
     r"t\.csv has no column 'tme'.*did you mean 'time'"),
    ("no g column", no_g_column, "DataFormatError", r"t\.csv: no column for role g"),
    ("position out of range", position_out_of_range, "DataFormatError",
     r"t\.tsv: column 5 \(for role g\) does not exist; the file has 2 columns"),
    ("non-numeric cell", non_numeric_cell, "DataFormatError",
     r"t\.csv, line 3, column 1 \('g'\): 'abc' is not a number"),
    ("empty cell", empty_cell, "DataFormatError",
     r"t\.csv, line 3, column 1 \('g'\): an empty cell is not a number"),
    ("NaN conductance", nan_conductance, "DataFormatError",
     r"t\.csv, line 3, column 1 \('g'\): g is nan; expected a finite number"),
    ("infinite conductance", inf_conductance, "DataFormatError",
     r"t\.csv, line 4, column 1 \('g'\): g is -inf; expected a finite number"),
    ("negative time", negative_time, "DataFormatError",
     r"t\.csv, line 3, column 1 \('time'\): time is -1 s .*expected >= 0"),
    ("unknown unit", unknown_unit, "ConfigError", r"unknown unit 'uF' for role g.*valid units"),
    ("unknown role", unknown_role, "ConfigError", r"unknown key 'conductance'; valid keys"),
    ("unit in header disagrees", unit_in_header_disagrees, "ConfigError",
     r"t\.csv: column 'g_uS' \(role g\) is named in uS.*--units g=uS"),
    ("ragged row", ragged_row, "DataFormatError",
     r"t\.csv, line 3: found 2 columns, expected 3"),
    ("row too long", long_row, "DataFormatError", r"t\.tsv, line 2: found 4 columns, expected 3"),
    ("truncated gz", truncated_gz, "DataFormatError", r"t\.csv\.gz: the gzip stream is truncated"),
    ("named .gz, not gzip", gz_suffix_not_gzip, "DataFormatError",
     r"t\.csv\.gz is named \.gz but is not gzip"),
    ("gzip named .csv", gzip_without_gz_suffix, "DataFormatError",
     r"t\.csv is gzip-compressed but not named \.gz"),
    ("text named .h5", text_named_h5, "DataFormatError",
     r"t\.h5 is named like HDF5 but is not an HDF5 file"),
    ("text named .npz", text_named_npz, "DataFormatError", r"t\.npz is named \.npz but is not"),
    ("HDF5 named .csv", hdf5_named_csv, "DataFormatError",
     r"t\.csv is an HDF5 file but not named \.h5"),
    ("binary named .csv", binary_named_csv, "DataFormatError", r"t\.csv is not a UTF-8 text"),
    ("HDF5 dataset without units", hdf5_without_units, "DataFormatError",
     r"t\.h5: dataset /measurements/g has no 'units' attribute"),
    ("HDF5 without /measurements", hdf5_without_group, "DataFormatError",
     r"t\.h5 has no /measurements group"),
    ("newer format version", hdf5_newer_version, "DataFormatError",
     r"t\.h5 has format_version 99, newer than this xbarlab reads"),
    ("empty file", empty_file, "DataFormatError", r"t\.csv is empty"),
    ("blank file", blank_file, "DataFormatError", r"t\.csv holds no table"),
    ("header without data", header_only, "DataFormatError",
     r"t\.csv has a header but no data rows"),
    ("strict rejects reads below zero", negative_read_strict, "DataFormatError",
     r"t\.csv, line 3, column 1 \('g'\): conductance -1e-07 S is below zero; strict"),
    ("negative resistance", negative_resistance, "DataFormatError",
     r"t\.csv, line 3, column 1 \('r'\): resistance -5.0 Ohm for g; expected a resistance > 0"),
    ("wide header without target", wide_header_without_target, "DataFormatError",
     r"w\.csv: wide layout, column 1 \('comment'\) has no target value"),
    ("timeseries without sample rate", timeseries_without_rate, "ConfigError",
     r"timeseries layout needs sample_rate"),
    ("non-integer level", non_integer_level, "DataFormatError",
     r"t\.csv, line 2, column 1 \('level'\): level is 2.5; expected a whole number"),
    ("missing file", missing_file, "DataFormatError", r"nope\.csv: no such file"),
]


def cli_args(paths, options) -> list[str]:
    """``xbarlab inspect`` arguments equivalent to ``read_measurements(paths, **options)``."""
    args = [str(p) for p in paths]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        else:
            args += [flag, str(value)]
    return args
