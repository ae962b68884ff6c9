"""``xbarlab ppa`` (xbarlab/cli/ppa.py): the anchors table and refusals before any work."""

from __future__ import annotations

import pytest
from _shared import shared_path
from xbarlab.cli import main


@pytest.mark.slow
def test_anchors_table(capsys):
    """`xbarlab ppa --anchors` prints one row per published figure of the shipped chips
    (slow: about 1 s; tests/energy/test_anchors.py checks the rows themselves)."""
    survey = shared_path("data", "adc_survey")
    assert main(["ppa", "--anchors", "--adc-survey", str(survey)]) == 0
    out = capsys.readouterr().out
    assert out.count("| HERMES core |") == 3 and out.count("| NeuRRAM |") == 6
    assert "| HERMES core | 14nm | v_read = 0.3 |" in out
    assert main(["ppa", "--anchors", "--adc-survey", str(survey), "--node-value",
                 "14nm:v_read=0.2"]) == 0
    assert "node values changed: 14nm:v_read=0.2" in capsys.readouterr().out
    # --breakdown: one row per chip and operating point (14 of the 17 anchors), each total
    # the sum of its components
    assert main(["ppa", "--anchors", "--breakdown", "--adc-survey", str(survey)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "| latency [ns] |" in x
             or x.startswith("| HERMES core | one core") and x.count("|") > 9]
    head, core = lines[0].split("|")[1:-1], lines[1].split("|")[1:-1]
    from xbarlab.energy.cost import ENERGY_PARTS

    assert len(head) == len(core) == len(ENERGY_PARTS) + 4 and head[-2].strip() == "total [nJ]"
    parts = [float(v) for v in core[2:-2]]
    assert sum(parts) == pytest.approx(float(core[-2]), rel=0.01)


def test_breakdown_needs_anchors(tmp_path, capsys):
    """--breakdown without --anchors: exit 2 naming it, before any work."""
    survey = str(shared_path("data", "adc_survey"))
    assert main(["ppa", str(tmp_path), "--adc-survey", survey, "--device-model",
                 "pcm-hermes-2023", "--breakdown", "-o", str(tmp_path / "o")]) == 2
    assert "--breakdown is for --anchors only" in capsys.readouterr().err


@pytest.mark.parametrize("value, match", [
    ("14nm=3", "expected NODE:FIELD=VALUE"),
    ("14nm:v_read=x", "expected NODE:FIELD=VALUE"),
    ("14nm:v_read=nan", "expected NODE:FIELD=VALUE"),
])
def test_node_value_refused(tmp_path, capsys, value, match):
    """A --node-value that is not NODE:FIELD=<finite number>, or one given without
    --anchors: exit 2 with one line naming it, before any work."""
    survey = str(shared_path("data", "adc_survey"))
    assert main(["ppa", "--anchors", "--adc-survey", survey, "--node-value", value]) == 2
    err = capsys.readouterr().err
    assert match in err and value in err and err.count("\n") == 1
    assert main(["ppa", str(tmp_path), "--adc-survey", survey, "--device-model",
                 "pcm-hermes-2023", "--node-value", "14nm:v_read=0.2",
                 "-o", str(tmp_path / "o")]) == 2
    assert "--node-value is for --anchors only" in capsys.readouterr().err


def test_refusals(tmp_path, capsys):
    """No model folder, or a 3-bit ADC below the survey's span without --extrapolate, or an
    unknown chip: exit 2 with a one-line message naming the option or value."""
    survey = str(shared_path("data", "adc_survey"))
    assert main(["ppa", "--adc-survey", survey, "--device-model", "pcm-hermes-2023",
                 "-o", str(tmp_path / "o")]) == 2
    assert "MODEL_DIR is required" in capsys.readouterr().err
    assert main(["ppa", str(tmp_path), "--adc-survey", survey, "--device-model",
                 "pcm-hermes-2023", "--chip", "nochip", "-o", str(tmp_path / "o")]) == 2
    assert "chip file 'nochip' not found" in capsys.readouterr().err


def _model(tmp_path):
    import torch
    from xbarlab.nn.data import build_model, model_config

    cfg = model_config("mlp", "digits", (1, 8, 8))
    torch.manual_seed(0)
    mdir = tmp_path / "m"
    mdir.mkdir()
    torch.save({"state_dict": build_model(cfg).state_dict(), "config": cfg}, mdir / "model.pt")
    return mdir


def test_three_bits_need_extrapolate(tmp_path, capsys):
    """3-bit ADCs at the HERMES core's 13 MHz need SNDR 19.8 dB, below the survey's 20 dB:
    refused before any evaluation, naming --extrapolate; nothing is written."""
    survey = str(shared_path("data", "adc_survey"))
    out = tmp_path / "o"
    assert main(["ppa", str(_model(tmp_path)), "--adc-survey", survey, "--device-model",
                 "pcm-hermes-2023", "--adc-bits", "3,6", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bits=3 needs SNDR 19.82 dB" in err and "--extrapolate" in err
    assert not out.exists()


@pytest.mark.slow
def test_one_point_study_writes_its_folder(tmp_path):
    """A one-point study (6-bit ADC, 64 x 64 tiles, one conductance range, one programming,
    20 samples): ppa.json holds the point on the front, with the energy and accuracy the
    report prints, and the chip fields taken from the node file (the HERMES core's read
    voltage); report.md names them and links both plots."""
    import json

    survey = str(shared_path("data", "adc_survey"))
    out = tmp_path / "o"
    assert main(["ppa", str(_model(tmp_path)), "--adc-survey", survey, "--device-model",
                 "pcm-hermes-2023", "--adc-bits", "6", "--tiles", "64", "--g-max", "2e-5",
                 "--programmings", "1", "--circuit-samples", "20", "-o", str(out)]) == 0
    res = json.loads((out / "ppa.json").read_text())
    (p,) = res["points"]
    assert p["pareto"] and p["energy_J"] > 0 and 0 <= p["accuracy"] <= 1
    assert res["chip_from_node"] == {"v_read": 0.3}
    md = (out / "report.md").read_text()
    assert "plots/pareto.png" in md and "plots/energy_breakdown.png" in md
    assert "from the node file, as its paper does not give them: v_read = 0.3" in md
