"""Tests of ``xbarlab train``: outputs, reproducibility and bad input; ``xbarlab export-noise``
and ``xbarlab evaluate``, their weight-mapping options; training against a noise file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from xbarlab.cli import main
from xbarlab.nn.data import build_model, load_dataset, model_config
from xbarlab.nn.train import accuracy, load_trained

H, D = 3600.0, 86400.0

ARGS = ["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "0.2",
        "--samples", "2", "--epochs", "1", "--seed", "0", "--eval-noise", "0,0.3",
        "--eval-draws", "3"]


def test_help_imports_neither_torch_nor_numba():
    """`xbarlab --help` and `xbarlab train --help` exit 0 without importing torch or numba."""
    code = ("import sys\nfrom xbarlab.cli import main\n"
            "for a in (['--help'], ['train', '--help']):\n"
            "    try:\n        main(a)\n    except SystemExit as e:\n        assert e.code == 0\n"
            "print('torch' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"
    assert "--train-noise" in out.stdout


def test_train_writes_metrics_and_weights_reproducibly(tmp_path, capsys):
    """One epoch of HA-SGD (L = 2) on digits, twice with seed 0.

    Expected: metrics.json has one eval entry per level (0 and 0.3) with accuracy in
    [0, 1], n_draws 3 and std 0 at level 0; both runs give identical eval numbers and
    weights; the saved model rebuilt by load_trained reproduces clean_accuracy.
    """
    outs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        assert main([*ARGS, "--out", str(out)]) == 0
        m = json.loads((out / "metrics.json").read_text())
        outs.append((out, m))
        assert [e["noise"] for e in m["eval"]] == [0.0, 0.3]
        for e in m["eval"]:
            assert set(e) == {"noise", "accuracy_mean", "accuracy_std", "n_draws"}
            assert 0.0 <= e["accuracy_mean"] <= 1.0 and e["n_draws"] == 3
        assert m["eval"][0]["accuracy_std"] == 0.0
        assert m["eval"][0]["accuracy_mean"] == m["clean_accuracy"]
        assert (out / "xbarlab-manifest.json").exists()
    assert outs[0][1]["eval"] == outs[1][1]["eval"]
    net0, blob = load_trained(outs[0][0])
    net1, _ = load_trained(outs[1][0] / "model.pt")
    for a, b in zip(net0.state_dict().values(), net1.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    data = load_dataset("digits")
    assert accuracy(net0, data.x_test, data.y_test) == outs[0][1]["clean_accuracy"]
    assert blob["config"] == model_config("mlp", data)


def test_existing_outputs_need_force(tmp_path, capsys):
    """A second run into the same folder fails (exit 2) unless --force; --force replaces."""
    out = str(tmp_path / "r")
    args = [*ARGS[:ARGS.index("--epochs")], "--epochs", "0", *ARGS[ARGS.index("--seed"):]]
    assert main([*args, "--out", out]) == 0
    assert main([*args, "--out", out]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--out", out, "--force"]) == 0


@pytest.mark.parametrize("change, needle", [
    ({"--train-noise": "-0.1"}, ">= 0"),
    ({"--samples": "-1"}, "samples must be an integer >= 0"),
    ({"--samples": "0"}, "samples=0"),
    ({"--eval-noise": "0,-1"}, "--eval-noise"),
    ({"--eval-draws": "0"}, "eval_draws"),
    ({"--train-noise": "noise.h5"}, "does not exist"),
    ({"--adc-bits": "0"}, "ADC bits"),
    ({"--adc-bits": "1"}, "ADC bits"),
])
def test_bad_input_gives_clear_error(tmp_path, capsys, change, needle):
    """σ < 0, L < 0, --samples 0 with σ = 0.2, negative eval level, zero draws, a missing
    noise file, 0 or 1 ADC bits (the signed ADC has a zero code, so >= 2): exit status 2 and a
    message naming the problem (the library's parameter, or the flag the CLI parses)."""
    args = list(ARGS)
    for k, v in change.items():
        if k in args:
            args[args.index(k) + 1] = v
        else:
            args += [k, v]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err


def test_bad_noise_file_is_refused(tmp_path, capsys):
    """A file with the HDF5 signature but nothing readable as --train-noise: exit 2 naming the
    file; a shift flag with a noise file: exit 2 naming the mean shift."""
    f = tmp_path / "noise.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n")
    base = [*ARGS[:ARGS.index("--train-noise")], "--train-noise", str(f),
            *ARGS[ARGS.index("--samples"):], "--out", str(tmp_path / "o")]
    assert main(base) == 2
    assert "noise.h5" in capsys.readouterr().err
    assert main([*base, "--train-shift", "0.1"]) == 2
    assert "mean shift" in capsys.readouterr().err


def test_unknown_dataset_is_refused_by_the_parser():
    """An unknown data set name is refused at the command line (exit 2)."""
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "cifar", *ARGS[3:], "--out", "x"])
    assert e.value.code == 2


# ----------------------------------------------------- mapping options (export-noise, evaluate)


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
    (["--pairs", "0"], "n_pairs"),
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
        with pytest.raises(SystemExit) as e:
            main([*base, *bad, "-o", str(tmp_path / "n.h5")])
        assert e.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


def test_evaluate_mapping_options_reach_the_evaluation(tmp_path, capsys):
    """`xbarlab evaluate --scheme reference --g-min 1e-6` (digits MLP, 1 programming, 1 s):
    evaluation.json's settings.mapping reads back to WeightMapping(g_max = 25 µS, g_min = 1 µS,
    scheme = reference) and the folder's manifest records exactly the words passed to main;
    `--pairs 0` exits 2 naming n_pairs."""
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
    assert ev["settings"]["tile"]["g_min"] is None
    capsys.readouterr()
    assert main([*base, "--pairs", "0", "-o", str(tmp_path / "ev2")]) == 2
    assert "n_pairs" in capsys.readouterr().err


@pytest.mark.parametrize("args, line", [
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "256x256"],
     "xbarlab export-noise: error: --ir-drop '256x256' is not ROWSxCOLS@OHM, e.g. 256x256@1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--ir-drop", "8x8@1@2"],
     "xbarlab export-noise: error: --ir-drop '8x8@1@2' is not ROWSxCOLS@OHM, e.g. 256x256@1"),
    (["export-noise", "pcm-ibm-2020", "--time", "1h", "--grid", "1"],
     "xbarlab export-noise: error: --grid must be >= 2, got 1"),
    (["evaluate", "no-such-dir", "--device-model", "pcm-ibm-2020", "--times", "1s",
      "--tile", "256"], "xbarlab evaluate: error: --tile '256' is not ROWSxCOLS, e.g. 256x256"),
])
def test_bad_array_sizes_give_one_line_errors(tmp_path, capsys, args, line):
    """A malformed --ir-drop (no @OHM, two @) or --tile (no x), or --grid 1: exit status 2 and
    exactly this one stderr line, before any device is sampled or file written."""
    out = tmp_path / "o"
    assert main([*args, "-o", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    assert not out.exists()


# ----------------------------------------------------- export-noise, evaluate, noise files


@pytest.fixture(scope="module")
def pcm_file(tmp_path_factory):
    """PCM noise tables at 1 h and 1 d on a coarse grid, 2e5 pairs per (u, t)."""
    from xbarlab import devices
    from xbarlab.nn.export import export_noise

    tab = export_noise(devices.load("pcm-ibm-2020"), [H, D], np.random.default_rng(1),
                       w_grid=np.array([-1, -0.5, 0, 0.25, 0.5, 0.75, 1.0]), n_samples=200_000)
    path = tmp_path_factory.mktemp("noise") / "pcm.h5"
    tab.write(path)
    return path, tab


def test_cli_export_noise_and_evaluate(tmp_path):
    """`xbarlab export-noise` writes a file the torch side loads (2 times, 11-point grid);
    `xbarlab evaluate` on a saved digits MLP writes evaluation.json (schema, 2 times x 2
    compensations, accuracies in [0, 1]) and the PNG; a second run without --force fails."""
    from xbarlab.cli import main
    from xbarlab.nn.data import build_model, model_config
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


def test_train_cli_with_noise_file_and_train_time(pcm_file, tmp_path):
    """`xbarlab train --train-noise NOISE.h5 --train-time 1d` (digits MLP, 1 epoch, L = 1)
    writes metrics naming the file as noise_source, with the quantile noise of the 1 d
    table; an unstored time fails with exit code 2, as does --train-time with a σ."""
    from xbarlab.cli import main

    path = str(pcm_file[0])
    base = ["train", "--dataset", "digits", "--model", "mlp", "--samples", "1", "--epochs", "1",
            "--seed", "0", "--eval-noise", "1", "--eval-draws", "1"]
    assert main(base + ["--train-noise", path, "--train-time", "1d",
                        "--out", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["noise_source"] == path and m["train_noise"]["kind"] == "quantile"
    assert "t=86400s" in m["train_noise"]["source"]
    assert main(base + ["--train-noise", path, "--train-time", "1y",
                        "--out", str(tmp_path / "b")]) == 2
    assert main(base + ["--train-noise", "0.1", "--train-time", "1d",
                        "--out", str(tmp_path / "c")]) == 2
