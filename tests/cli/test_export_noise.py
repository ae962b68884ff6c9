"""``xbarlab export-noise`` (xbarlab/cli/export_noise.py): the weight-mapping options; a file
the torch side loads."""

from __future__ import annotations

import json

import pytest
import torch
from xbarlab.cli import main
from xbarlab.nn.data import build_model, model_config

H, D = 3600.0, 86400.0


@pytest.mark.parametrize("opts, expected", [
    ([], {}),
    (["--scheme", "reference", "--g-min", "1e-6"], {"scheme": "reference", "g_min": 1e-6}),
    (["--pairs", "2", "--significance", "3", "--pair-levels", "2", "--scaling", "column"],
     {"n_pairs": 2, "significance": 3.0, "levels": 2, "scaling": "column"}),
])
def test_export_noise_mapping_options_are_recorded(tmp_path, opts, expected):
    """`xbarlab export-noise pcm-ibm-2020` with mapping options writes a file whose mapping
    equals WeightMapping(g_max = 25 µS (the preset's range), **options)."""
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.noise_file import NoiseFile

    out = tmp_path / "n.h5"
    assert main(["export-noise", "pcm-ibm-2020", "--time", "1h", "--grid", "5", "--samples",
                 "500", *opts, "-o", str(out)]) == 0
    assert NoiseFile.load(out).tables.mapping == WeightMapping(g_max=25e-6, **expected)


@pytest.mark.parametrize("opts, needle", [
    (["--pairs", "0"], "--pairs must be >= 1"),
    (["--scheme", "reference", "--pairs", "2"], "reference scheme"),
    (["--pairs", "2", "--significance", "5"], "2 * levels"),
    (["--significance", "3"], "--pairs > 1"),
    (["--g-max", "30e-6"], "does not cover"),
])
def test_bad_mapping_options_give_clear_errors(tmp_path, capsys, opts, needle):
    """Zero pairs, a reference scheme with two pairs, F > 2 L, a significance for one pair,
    g_max beyond the preset's range: exit status 2 and a message naming the problem; an
    unknown scheme or scaling is refused by the parser (exit 2, valid choices listed)."""
    base = ["export-noise", "pcm-ibm-2020", "--time", "1h", "--samples", "500"]
    assert main([*base, *opts, "-o", str(tmp_path / "n.h5")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "n.h5").exists()
    for bad in (["--scheme", "pair"], ["--scaling", "row"]):
        assert main([*base, *bad, "-o", str(tmp_path / "n.h5")]) == 2
        assert "invalid choice" in capsys.readouterr().err


def test_cli_export_noise_and_evaluate(tmp_path):
    """`xbarlab export-noise` writes a file the torch side loads (2 times, 11-point grid);
    `xbarlab evaluate` on a saved digits MLP writes evaluation.json (schema, 2 times x 2
    compensations, accuracies in [0, 1]) and the PNG; a second run without --force fails."""
    from xbarlab.cli import main
    from xbarlab.nn.noise_file import NoiseFile

    out = tmp_path / "n.h5"
    assert main(["export-noise", "pcm-ibm-2020", "--time", "1h", "--time", "1d", "--grid", "11",
                 "--samples", "2000", "-o", str(out)]) == 0
    nf = NoiseFile.load(out)
    assert list(nf.times) == [H, D] and nf.tables.w_grid.size == 11
    cfg = model_config("mlp", "digits", (1, 8, 8))
    torch.manual_seed(0)
    mdir = tmp_path / "m"
    mdir.mkdir()
    torch.save({"state_dict": build_model(cfg).state_dict(), "config": cfg}, mdir / "model.pt")
    ev_dir = tmp_path / "ev"
    args = ["evaluate", str(mdir), "--device-model", "pcm-ibm-2020", "--times", "1s,1d",
            "--programmings", "2", "-o", str(ev_dir)]
    assert main(args) == 0
    ev = json.loads((ev_dir / "evaluation.json").read_text())
    assert ev["schema"] == "xbarlab-evaluation/1" and len(ev["results"]) == 4
    assert all(0 <= e["accuracy_mean"] <= 1 for e in ev["results"])
    assert (ev_dir / "accuracy_vs_time.png").stat().st_size > 1000
    assert main(args) == 2
