"""``xbarlab calibrate`` on pulse data: ramp files are learned as pulse data, a pulsed device
is written as JSON with a report; bad pulse input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _synthetic_pulses import synthetic_ramps
from xbarlab.cli import main
from xbarlab.devices.pulsed import PulsedDevice, SoftBounds


def _write_columns(path, ramps, sign):
    cols = [ramps.g[ramps.ramp == r] for r in range(ramps.n_ramps) if ramps.direction[r] == sign]
    n = max(c.size for c in cols)
    lines = [",".join(f"rmp{k + 1}" for k in range(len(cols)))]
    lines += [",".join(repr(float(c[i])) if i < c.size else "" for c in cols) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ramp_files(tmp_path):
    r = synthetic_ramps(law="soft bounds", g_min=10e-6, g_max=50e-6, a_up=0.8e-6,
                        a_down=0.5e-6, c2c=0.2, sigma_read=0.05e-6, n_ramps=8, n_pulses=60)
    return (_write_columns(tmp_path / "set.csv", r, 1),
            _write_columns(tmp_path / "reset.csv", r, -1))


def test_calibrate_learns_pulse_ramps(ramp_files, tmp_path, capsys):
    """set.csv/reset.csv are fitted as a pulsed device (soft bounds forced): the JSON file
    rebuilds a PulsedDevice with the generating amplitudes within 10 %."""
    out = tmp_path / "dev.json"
    assert main(["calibrate", *map(str, ramp_files), "-o", str(out), "--bootstrap", "3",
                 "--step-rule", "soft bounds"]) == 0
    dev = PulsedDevice.from_json(out.read_text())
    assert isinstance(dev.rule, SoftBounds)
    assert dev.rule.a_up == pytest.approx(0.8e-6, rel=0.1)
    assert dev.rule.a_down == pytest.approx(0.5e-6, rel=0.1)
    assert "pulsed device, soft bounds" in capsys.readouterr().out


@pytest.mark.slow
def test_calibrate_pulse_report(ramp_files, tmp_path):
    """With --report (rule chosen by held-out likelihood): report.md holds the rule table
    and the verdict, goodness.json the median KS (< 0.2 on 8 + 8 short ramps), fit.json
    the device and the bands."""
    out, rep = tmp_path / "dev.json", tmp_path / "rep"
    assert main(["calibrate", *map(str, ramp_files), "-o", str(out), "--report", str(rep),
                 "--bootstrap", "5"]) == 0
    md = (rep / "report.md").read_text()
    assert "**Verdict**: median KS" in md and "| soft bounds |" in md
    assert 0 <= json.loads((rep / "goodness.json").read_text())["median_ks"] < 0.2
    assert json.loads((rep / "fit.json").read_text())["device"]["kind"] == "pulsed"


def test_calibrate_one_direction_missing(ramp_files, tmp_path, capsys):
    """Only the SET file: exit status 1 and one line naming the missing direction."""
    out = tmp_path / "dev.json"
    assert main(["calibrate", str(ramp_files[0]), "-o", str(out)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "has no down (RESET) ramps (found 8 ramps the other way)" in err[0]
    assert not out.exists()


def test_calibrate_model_pulsed_with_units(tmp_path, capsys):
    """Rows of (pulse, direction, g) in uS with --model pulsed --units g=uS: constant steps
    of +1 and -2 uS give a constant-step device with those amplitudes."""
    p = tmp_path / "ramps.csv"
    rows = ["pulse,direction,g"]
    rng = np.random.default_rng(0)
    for _ in range(6):
        g = 10.0
        for k in range(30):
            rows.append(f"{k},up,{g + 0.01 * rng.standard_normal()}")
            g += 1.0
        for k in range(15):
            rows.append(f"{k},down,{g + 0.01 * rng.standard_normal()}")
            g -= 2.0
    p.write_text("\n".join(rows) + "\n")
    out = tmp_path / "dev.json"
    assert main(["calibrate", str(p), "--model", "pulsed", "--units", "g=uS", "-o", str(out),
                 "--bootstrap", "0", "--step-rule", "constant"]) == 0
    dev = PulsedDevice.from_json(out.read_text())
    assert dev.rule.a_up == pytest.approx(1e-6, rel=0.01)
    assert dev.rule.a_down == pytest.approx(2e-6, rel=0.01)


def test_options_of_inference_fits_are_refused(ramp_files, tmp_path, capsys):
    """--drift relaxation with pulse data: exit status 2, one line naming the option."""
    out = tmp_path / "dev.json"
    assert main(["calibrate", *map(str, ramp_files), "-o", str(out), "--drift",
                 "relaxation"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--drift does not apply to pulse data" in err[0]
    assert not out.exists()
