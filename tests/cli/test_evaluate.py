"""``xbarlab evaluate`` (xbarlab/cli/evaluate.py): the weight-mapping options."""

from __future__ import annotations

import json

import torch
from xbarlab.cli import main
from xbarlab.nn.data import build_model, model_config


def test_evaluate_mapping_options_reach_the_evaluation(tmp_path, capsys):
    """`xbarlab evaluate --scheme reference --g-min 1e-6` (digits MLP, 1 programming, 1 s):
    evaluation.json's settings.mapping reads back to WeightMapping(g_max = 25 µS, g_min = 1 µS,
    scheme = reference) and the folder's manifest records exactly the words passed to main;
    `--pairs 0` exits 2 naming --pairs."""
    from xbarlab.devices.mapping import WeightMapping

    cfg = model_config("mlp", "digits", (1, 8, 8))
    torch.manual_seed(0)
    mdir = tmp_path / "m"
    mdir.mkdir()
    torch.save({"state_dict": build_model(cfg).state_dict(), "config": cfg}, mdir / "model.pt")
    base = ["evaluate", str(mdir), "--device-model", "pcm-ibm-2020", "--times", "1s",
            "--programmings", "1", "--compensation", "none"]
    words = [*base, "--scheme", "reference", "--g-min", "1e-6", "-o", str(tmp_path / "ev")]
    assert main(words) == 0
    manifest = json.loads((tmp_path / "ev" / "xbarlab-manifest.json").read_text())
    assert [r["command"] for r in manifest["runs"]] == [" ".join(words)]
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert WeightMapping.from_dict(ev["settings"]["mapping"]) == WeightMapping(
        g_max=25e-6, g_min=1e-6, scheme="reference")
    assert "g_min" not in ev["settings"]["tile"]  # the tile carries no range: the mapping does
    capsys.readouterr()
    assert main([*base, "--pairs", "0", "-o", str(tmp_path / "ev2")]) == 2
    assert "--pairs must be >= 1" in capsys.readouterr().err
