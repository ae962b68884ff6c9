"""Measurement tables (xbarlab/formats/measurements.py): the Measurements object, the time
origin rule, writing and reading back every container, several files, bad input."""

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xbarlab.calibration
from _badinput import CASES
from hypothesis import given, settings
from hypothesis import strategies as st
from xbarlab import errors
from xbarlab.formats import Measurements, read_measurements, write_measurements


def test_calibration_reexports_the_reader():
    """xbarlab.calibration.read_measurements is formats.read_measurements (same object)."""
    assert xbarlab.calibration.read_measurements is read_measurements
    assert xbarlab.calibration.Measurements is Measurements


def test_time_origin_rule(tmp_path):
    """g_initial given -> time counts from the first read; otherwise from programming;
    time_origin= overrides."""
    path = tmp_path / "o.csv"
    path.write_text("device,time,g,g_initial\n1,0,1e-5,1e-5\n1,5,9e-6,1e-5\n")
    assert read_measurements(path).time_origin == "first read"
    assert read_measurements(path, columns="g=g").time_origin == "first read"
    path2 = tmp_path / "p.csv"
    path2.write_text("device,time,g\n1,0,1e-5\n")
    assert read_measurements(path2).time_origin == "programming"
    assert read_measurements(path2, time_origin="first read").time_origin == "first read"
    with pytest.raises(errors.ConfigError, match="time_origin 'later'"):
        read_measurements(path2, time_origin="later")


@pytest.mark.parametrize("name", ["m.h5", "m.npz", "m.csv", "m.tsv.gz"])
def test_write_read_round_trip(long_table, tmp_path, name):
    """write_measurements then read_measurements gives back every role bit for bit
    (including the read below zero and the 'first read' time origin)."""
    m = Measurements(g=long_table.g, device=np.array([0, 0, 1, 1, 2, 2]), time=long_table.time,
                     g_initial=np.repeat(long_table.g[::2], 2), level=np.array([1, 1, 2, 2, 3, 3]),
                     temperature=np.full(6, 300.0), device_labels=np.array([7, 9, 11]),
                     time_origin="first read")
    path = write_measurements(tmp_path / name, m)
    back = read_measurements(path)
    for role in ("g", "time", "g_initial", "level", "temperature", "device"):
        np.testing.assert_array_equal(getattr(back, role), getattr(m, role), err_msg=role)
    np.testing.assert_array_equal(back.device_labels, [7, 9, 11])
    assert back.time_origin == "first read" and back.n_negative == 1
    with pytest.raises(errors.OutputExistsError):
        write_measurements(path, m)


def test_several_files(long_table, tmp_path):
    """Two files: devices are distinct per file by default (3 + 3 = 6), shared with
    same_devices (3); source_rows mark each file's reads; files with other roles clash."""
    a = long_table.write(tmp_path / "a.csv")
    b = long_table.write(tmp_path / "b.tsv", sep="\t")
    m = read_measurements([a, b])
    assert (m.n_reads, m.n_devices, m.source_rows) == (12, 6, (0, 6, 12))
    assert m.sources == (str(a), str(b))
    # the same reads of the same devices twice: refused unless told how to reduce them
    assert read_measurements([a, b], same_devices=True, duplicates="first").n_devices == 3
    with pytest.raises(errors.DataFormatError, match="repeat a .device, time. read"):
        read_measurements([a, b], same_devices=True)
    c = tmp_path / "c.csv"
    c.write_text("device,g\n1,1e-5\n")
    with pytest.raises(errors.DataFormatError, match="must give the same roles"):
        read_measurements([a, c])


def test_negative_reads_kept_unless_strict(long_table, tmp_path):
    """Without strict a read below zero is kept (n_negative = 1); strict raises naming the
    line; the Measurements constructor rejects NaN conductance."""
    path = long_table.write(tmp_path / "a.csv")
    assert read_measurements(path).n_negative == 1
    with pytest.raises(errors.DataFormatError, match=r"line 4, .*below zero"):
        read_measurements(path, strict=True)
    with pytest.raises(errors.ConfigError, match="finite"):
        Measurements(g=np.array([np.nan]), device=np.array([0]))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path, case):
    """Each bad input raises its DataFormatError/ConfigError whose message names the file
    (or option) and what was expected (regex in tests/_badinput.py)."""
    _id, build, cls, regex = case
    paths, options = build(tmp_path)
    with pytest.raises(getattr(errors, cls)) as info:
        read_measurements(paths, **options)
    assert type(info.value) is getattr(errors, cls)
    assert re.search(regex, str(info.value)), str(info.value)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_csv_round_trip_property(data):
    """Any table of finite conductances (either sign), distinct times >= 0 and integer device
    labels written as CSV reads back bit for bit, with the same device grouping."""
    n = data.draw(st.integers(1, 40))
    floats = st.floats(-1e-3, 1e-3, allow_nan=False, allow_subnormal=False)
    g = np.array(data.draw(st.lists(floats, min_size=n, max_size=n)))
    # distinct times: a repeated (device, time) read is refused (duplicates="refuse")
    t = np.array(data.draw(st.lists(st.floats(0, 1e9, allow_subnormal=False),
                                    min_size=n, max_size=n, unique=True)))
    labels = np.array(data.draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n)))
    ids, uniq = np.unique(labels, return_inverse=True)[1], np.unique(labels)
    m = Measurements(g=g, device=ids, time=t, device_labels=uniq)
    with tempfile.TemporaryDirectory() as d:
        back = read_measurements(write_measurements(Path(d) / "p.csv", m))
    np.testing.assert_array_equal(back.g, g)
    np.testing.assert_array_equal(back.time, t)
    np.testing.assert_array_equal(back.device_labels[back.device], labels)
    assert back.n_negative == int(np.sum(g < 0))
