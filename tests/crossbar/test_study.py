"""The IR-drop / ADC study (xbarlab.crossbar.study) and the ``xbarlab crossbar`` command."""

import csv

import numpy as np
import pytest
from xbarlab.cli import main
from xbarlab.crossbar.study import StudyConfig, run_study
from xbarlab.devices import IdealDevice
from xbarlab.devices.mapping import WeightMapping
from xbarlab.errors import ConfigError


def test_study_physics_ideal_device():
    """Ideal device, sizes 8 and 16, r = 0, 0.5, 1 Ohm: IR-drop error exactly 0 at r = 0 (to
    1e-14), grows with n, and doubles from 0.5 to 1 Ohm within 5 % (linear regime); device
    error 0; a calibrated 8-bit ADC errs less than 1 %."""
    rows = run_study(IdealDevice(), StudyConfig(sizes=(8, 16), r_wire=(0.0, 0.5, 1.0),
                                                vectors=4), mapping=WeightMapping(g_max=25e-6),
                     progress=False)
    by = {(r["n"], r["r_wire_ohm"]): r for r in rows}
    assert len(rows) == 6
    for n in (8, 16):
        assert by[(n, 0.0)]["ir_drop"] <= 1e-14
        assert by[(n, 1.0)]["ir_drop"] / by[(n, 0.5)]["ir_drop"] == pytest.approx(2.0, rel=0.05)
        assert by[(n, 0.5)]["device"] <= 1e-14
        assert by[(n, 0.5)]["adc_cal"] < 0.01
    assert by[(16, 1.0)]["ir_drop"] > by[(8, 1.0)]["ir_drop"]


def test_crossbar_cli_writes_table_and_plot(tmp_path, capsys):
    """`xbarlab crossbar --device ideal --sizes 8,16 --r-wire 0,1` exits 0, prints the
    markdown table and writes a 4-row CSV, the markdown table and a PNG (PNG signature)."""
    out = tmp_path / "study"
    rc = main(["crossbar", "--device", "ideal", "--g-max", "25e-6", "--sizes", "8,16",
               "--r-wire", "0,1", "--vectors", "2", "--no-progress", "-o", str(out)])
    assert rc == 0
    assert "| n | r [Ω] |" in capsys.readouterr().out
    with open(out / "ir_drop_study.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["n"]), float(r["r_wire_ohm"])) for r in rows] == [(8, 0), (8, 1), (16, 0),
                                                                      (16, 1)]
    assert np.isclose(float(rows[0]["ir_drop"]), 0.0, atol=1e-14)
    assert (out / "ir_drop_study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "ir_drop_study.md").read_text().count("\n") >= 6


def test_crossbar_cli_bad_input(tmp_path, capsys):
    """Odd array size, negative wire resistance, unknown preset: exit code 2 and a one-line
    error naming the argument; a foreign non-empty folder is refused without --force."""
    base = ["crossbar", "--no-progress", "--vectors", "2", "-o", str(tmp_path / "o")]
    assert main(base + ["--sizes", "7"]) == 2
    assert "sizes" in capsys.readouterr().err
    assert main(base + ["--r-wire", "-1"]) == 2
    assert "--r-wire entries must be >= 0" in capsys.readouterr().err
    assert main(base + ["--device", "no-such-device"]) == 2
    assert "no-such-device" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    assert main(["crossbar", "--device", "ideal", "--g-max", "25e-6", "--sizes", "8",
                 "--r-wire", "1", "--no-progress", "-o", str(foreign)]) == 2
    assert (foreign / "keep.txt").read_text() == "x"
    with pytest.raises(ConfigError, match="vectors"):
        StudyConfig(vectors=0)


def test_write_study_leaves_matplotlib_backend(tmp_path, monkeypatch):
    """write_study draws on its own Agg canvas: matplotlib's backend (set to "svg" here) is the
    same afterwards, and the PNG is written."""
    import matplotlib
    from xbarlab.crossbar.study import write_study

    monkeypatch.setitem(matplotlib.rcParams, "backend", "svg")
    rows = [dict(n=n, r_wire_ohm=r, vectors=2, ir_drop=1e-3 * n * r, adc_max=1e-2, adc_cal=5e-3,
                 device=1e-2, total=2e-2, solve_s=0.1) for n in (4, 8) for r in (0.1, 1.0)]
    paths = write_study(rows, tmp_path)
    assert matplotlib.get_backend() == "svg"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



@pytest.mark.slow
def test_workers_give_the_numbers_of_one_process():
    """The same study with its solves on 2 worker processes: every error column equal, bit
    for bit, to the solves in this process (the arrays come from the seed's one stream)."""
    from xbarlab import devices

    cfg = StudyConfig(sizes=(8, 16), r_wire=(0.5, 2.0), vectors=4, seed=3)
    pcm = devices.load("pcm-ibm-2020")
    here, there = (run_study(pcm, cfg, progress=False, workers=w) for w in (None, 2))
    keys = ("n", "r_wire_ohm", "vectors", "ir_drop", "adc_max", "adc_cal", "device", "total")
    assert [[r[k] for k in keys] for r in here] == [[r[k] for k in keys] for r in there]
