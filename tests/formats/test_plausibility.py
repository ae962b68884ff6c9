"""Plausibility of read tables (xbarlab/formats/plausibility.py) and malformed text tables:
repeated reads, NaN labels, huge indices, the same file twice, implausible conductances, a
header wider than the rows, over-long fields; through the library and ``xbarlab inspect``."""

import numpy as np
import pytest
from xbarlab.cli import main
from xbarlab.errors import ConfigError, DataFormatError, PlausibilityWarning
from xbarlab.formats import read_measurements


def _write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_read_duplicated_refused_then_reduced(tmp_path):
    """Each (device, time) read twice with equal values: refused by default; 'first' and
    'mean' keep one read each."""
    path = _write(tmp_path, "device,time,g\n0,1,1e-5\n0,1,1e-5\n1,1,2e-5\n1,1,2e-5\n")
    with pytest.raises(DataFormatError, match=r"t\.csv: 2 reads repeat .* with equal values"):
        read_measurements(path)
    m = read_measurements(path, duplicates="first")
    assert m.n_reads == 2 and m.source_rows == (0, 2)
    np.testing.assert_array_equal(m.g, [1e-5, 2e-5])


def test_conflicting_reads_refused_or_averaged(tmp_path):
    """The same read three times with different values: refused naming them as conflicting;
    'mean' averages, 'first' keeps the first."""
    path = _write(tmp_path, "device,time,g\n0,1,1e-5\n0,1,2e-5\n0,1,3e-5\n0,2,4e-5\n")
    with pytest.raises(DataFormatError, match="with different conductances"):
        read_measurements(path)
    np.testing.assert_allclose(read_measurements(path, duplicates="mean").g, [2e-5, 4e-5])
    np.testing.assert_array_equal(read_measurements(path, duplicates="first").g, [1e-5, 4e-5])
    with pytest.raises(ConfigError, match="duplicates 'last' is not one of"):
        read_measurements(path, duplicates="last")


def test_reads_told_apart_by_cycle_accepted(tmp_path):
    """Repeated reads at one time with distinct cycle indices are distinct reads."""
    path = _write(tmp_path, "device,time,cycle,g\n0,1,0,1e-5\n0,1,1,2e-5\n")
    assert read_measurements(path).n_reads == 2


@pytest.mark.parametrize("g", ["12", "1e30"])
def test_implausible_conductance_warns(tmp_path, g):
    """Conductances of 10-20 S (µS without a unit) or 1e30 S give a PlausibilityWarning."""
    path = _write(tmp_path, f"device,time,g\n0,1,{g}\n1,1,15\n")
    with pytest.warns(PlausibilityWarning, match=r"conductances up to .*units='g=uS'"):
        m = read_measurements(path)
    assert m.n_reads == 2
    if g == "12":
        assert read_measurements(path, units="g=uS").g.max() < 1  # told the unit: no warning


def test_huge_level_refused(tmp_path):
    """A level of 1e30 is refused rather than cast to a negative int64."""
    path = _write(tmp_path, "device,time,g,level\n0,1,1e-5,1e30\n")
    with pytest.raises(DataFormatError, match=r"line 2, .*level is 1e\+30; expected an index"):
        read_measurements(path)


@pytest.mark.parametrize("label", ["nan", "NaN", "inf"])
def test_nan_device_label_refused(tmp_path, label):
    path = _write(tmp_path, f"device,time,g\n{label},1,1e-5\n{label},2,2e-5\n")
    with pytest.raises(DataFormatError, match=r"t\.csv: device label .* is not a label"):
        read_measurements(path)


def test_text_nan_label_among_names_refused(tmp_path):
    path = _write(tmp_path, "device,time,g\ncellA,1,1e-5\nnan,1,2e-5\n")
    with pytest.raises(DataFormatError, match="device label 'nan'"):
        read_measurements(path)


def test_same_file_twice_refused(tmp_path):
    path = _write(tmp_path, "device,time,g\n0,1,1e-5\n")
    with pytest.raises(ConfigError, match=r"t\.csv is given twice"):
        read_measurements([path, path])
    with pytest.raises(ConfigError, match="given twice"):
        read_measurements([path, tmp_path / "." / "t.csv"])


@pytest.mark.parametrize("text, match", [
    ("device,time,g,level\n0,1,1e-5\n0,2,2e-5\n", "line 2: found 3 columns, expected 4"),
    ("device,time,g\n0,1,1e-5,5\n", "line 2: found 4 columns, expected 3"),
    ("device,time,g\n0,1," + "1" * 140_000 + "\n", "line 2: not a CSV line"),
])
def test_malformed_text_tables_name_the_line(tmp_path, text, match):
    """A header wider or narrower than the rows, a field over the csv limit: one
    DataFormatError naming the file and line."""
    path = _write(tmp_path, text)
    with pytest.raises(DataFormatError, match=r"t\.csv.*" + match):
        read_measurements(path)


def test_inspect_reports_duplicates_in_one_line(tmp_path, capsys):
    path = _write(tmp_path, "device,time,g\n0,1,1e-5\n0,1,1e-5\n")
    assert main(["inspect", str(path)]) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "repeat a (device, time) read" in err[0]


def test_inspect_refuses_same_file_twice(tmp_path, capsys):
    path = _write(tmp_path, "device,time,g\n0,1,1e-5\n")
    assert main(["inspect", str(path), str(path)]) in (1, 2)
    assert "given twice" in capsys.readouterr().err
