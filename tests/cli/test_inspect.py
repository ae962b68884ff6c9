"""``xbarlab inspect`` (xbarlab/cli/inspect.py): real measurement files, model files, and
one-line errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from _badinput import CASES, cli_args
from _shared import shared_path
from xbarlab import devices, formats
from xbarlab.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "examples" / "rram_relaxation.csv"
TECHC = ("data", "measured", "stanford_rram_relaxation", "techC", "relaxdata.min.tsv.gz")


def _run(capsys, *args):
    rc = main(["inspect", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_inspect_techc(capsys):
    """techC with the issue's columns: 16,292 devices, 6 time points (0 s .. 1.16 d),
    1 read below zero, 42 levels, 89,115 reads."""
    path = shared_path(*TECHC)
    rc, out, err = _run(capsys, path, "--columns",
                        "device=0,time=1,g=3,g_initial=4,level=5,time_point=6")
    assert (rc, err) == (0, "")
    assert "  devices      16,292 (4 to 6 reads each, median 5)\n" in out
    assert "  time points  6: 0 s, 10 ms, 100 ms, 1 s, 4 s, 1.16 d\n" in out
    assert "  below zero   1 read (lowest -0.1229 µS)\n" in out
    assert "  reads        89,115\n" in out
    assert "  levels       42: 0 to 51\n" in out
    assert "counted from the first read" in out


def test_inspect_hku_wide(capsys):
    """HKU fig3c --wide --units g=uS: 7 targets (100 to 400 µS) x 64 devices, reads
    95.06 to 404.3 µS (all within 95..405 µS)."""
    path = shared_path("data", "measured", "hku_readc_rram", "fig3c_conductance_value.csv")
    rc, out, _ = _run(capsys, path, "--wide", "--units", "g=uS")
    assert rc == 0
    assert "  targets      7 (100 to 400 µS) x 64 devices: 100, 150, 200, 250, 300, 350, " \
           "400 µS\n" in out
    lo, hi = map(float, re.search(r"conductance  ([\d.]+) to ([\d.]+) µS", out).groups())
    assert 95 <= lo < 96 and 404 < hi <= 405


def test_inspect_json_and_timeseries(capsys):
    """--json on techA's time series: 5 devices, 500,000 reads, levels [0, 8, 16, 24, 31],
    time 0 .. 249.9975 s, and the file's sha256."""
    path = shared_path("data", "measured", "stanford_rram_relaxation", "techA",
                       "tsdata.min.tsv.gz")
    rc, out, _ = _run(capsys, path, "--layout", "timeseries", "--sample-rate", "400",
                      "--columns", "level=0", "--samples-from", "2", "--json")
    s = json.loads(out)
    assert rc == 0 and s["what"] == "measurements"
    assert (s["devices"], s["reads"]) == (5, 500000)
    assert s["levels"]["values"] == [0, 8, 16, 24, 31]
    assert s["time_range"] == [0.0, 249.9975]
    assert s["sha256"][str(path)] == formats.sha256_file(path)


def test_inspect_shipped_example(capsys):
    """The shipped example (data/examples, see its generator): 64 devices, 4 levels
    (targets 10/20/30/40 µS), 4 time points 0 s, 1 s, 1 h, 1 d, no read below zero."""
    rc, out, _ = _run(capsys, EXAMPLE)
    assert rc == 0
    assert "  devices      64 (4 reads each)\n" in out
    assert "  targets      4 (10 to 40 µS) x 16 devices: 10, 20, 30, 40 µS\n" in out
    assert "  time points  4: 0 s, 1 s, 1 h, 1 d\n" in out
    assert "  below zero   0 reads\n" in out


def test_inspect_device_and_noise_model_files(capsys, tmp_path):
    """A device-model file shows its kind, format version, method and parameters in µS; a
    noise-model file its datasets; measurement options with a model file are an error."""
    path = devices.IdealDevice(g_min=1e-6, g_max=4e-4).to_file(
        tmp_path / "ideal.h5", provenance=formats.Provenance(method="preset"))
    rc, out, _ = _run(capsys, path)
    assert rc == 0
    assert out.startswith(f"device model file {path}\n  kind         ideal\n")
    assert "  method       preset\n" in out
    assert "  g_max        [scalar] = 400 µS\n" in out
    assert "  conditioning target\n" in out
    noise = formats.write_model_file(
        tmp_path / "noise.h5", file_type="xbarlab-noise-model", kind="gaussian",
        tree={"sigma": formats.Quantity(np.array([0.01, 0.03]), "1")})
    rc, out, _ = _run(capsys, noise)
    assert rc == 0 and "noise model file" in out and "  sigma        [2] 0.01 to 0.03 1\n" in out
    rc, _, err = _run(capsys, noise, "--wide")
    assert rc == 2 and "--wide apply to measurement tables" in err


def test_inspect_newer_model_file_is_one_line(capsys, tmp_path):
    """A model file of a newer format version: exit 1, one line naming file and version."""
    path = devices.IdealDevice().to_file(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = formats.FORMAT_VERSION + 1
    rc, out, err = _run(capsys, path)
    assert rc == 1 and out == ""
    assert err.count("\n") == 1
    assert re.match(r"xbarlab inspect: error: .*m\.h5 has format_version 2, newer", err)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line(capsys, tmp_path, case):
    """Each bad input: exit status 2 for a bad option (ConfigError), 1 for a bad file,
    nothing on stdout, exactly one stderr line 'xbarlab inspect: error: ...' carrying the
    reader's message (file, line/column, what was expected)."""
    _id, build, cls, regex = case
    paths, options = build(tmp_path)
    rc, out, err = _run(capsys, *cli_args(paths, options))
    assert (rc, out) == (2 if cls == "ConfigError" else 1, "")
    assert err.count("\n") == 1 and err.startswith("xbarlab inspect: error: ")
    assert re.search(regex, err), err


def test_real_process_prints_no_traceback(tmp_path):
    """Run as a process on a ragged table: exit status 1, stderr one line, no traceback."""
    bad = tmp_path / "bad.csv"
    bad.write_text("device,g\n1,1e-5\n2\n")
    proc = subprocess.run([sys.executable, "-m", "xbarlab.cli", "inspect", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"xbarlab inspect: error: {bad}, line 3: found 1 columns, expected 2 (as in the header)"]
    assert "Traceback" not in proc.stderr


def test_shipped_example_is_reproducible(tmp_path):
    """data/examples/make_examples.py with its seed regenerates rram_relaxation.csv byte for
    byte (the example is made by xbarlab's own writer, not edited by hand)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_examples",
                                                  EXAMPLE.parent / "make_examples.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.make(np.random.default_rng(mod.SEED))
    out = formats.write_measurements(tmp_path / "again.csv", m, float_format="%.6g")
    assert out.read_bytes() == EXAMPLE.read_bytes()


def test_inspect_measurement_hdf5(capsys, tmp_path):
    """The example table written as HDF5 inspects like the CSV: 64 devices, 4 targets x 16,
    4 time points; the HDF5 holds one dataset per role, each with SI units."""
    m = formats.read_measurements(EXAMPLE)
    path = formats.write_measurements(tmp_path / "ex.h5", m)
    with h5py.File(path, "r") as f:
        units = {k: f["measurements"][k].attrs["units"] for k in f["measurements"]}
    assert units == {"device": "1", "g": "S", "time": "s", "time_point": "s",
                     "g_target": "S", "level": "1"}
    rc, out, _ = _run(capsys, path)
    assert rc == 0
    assert "  devices      64 (4 reads each)\n" in out
    assert "  targets      4 (10 to 40 µS) x 16 devices: 10, 20, 30, 40 µS\n" in out
    assert "  time points  4: 0 s, 1 s, 1 h, 1 d\n" in out
