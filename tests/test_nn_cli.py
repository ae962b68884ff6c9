"""Tests of ``xbarlab train``: outputs, reproducibility, data sets and bad input; the weight
mapping options of ``xbarlab export-noise`` and ``xbarlab evaluate``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from xbarlab.cli import main
from xbarlab.errors import ConfigError
from xbarlab.nn.data import build_model, load_dataset, model_config
from xbarlab.nn.train import accuracy, load_trained, run_training

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
    ({"--samples": "-1"}, "--samples"),
    ({"--samples": "0"}, "--samples 0"),
    ({"--eval-noise": "0,-1"}, "--eval-noise"),
    ({"--eval-draws": "0"}, "eval draws"),
    ({"--train-noise": "noise.h5"}, "does not exist"),
    ({"--adc-bits": "0"}, "--adc-bits"),
])
def test_bad_input_gives_clear_error(tmp_path, capsys, change, needle):
    """σ < 0, L < 0, --samples 0 with σ = 0.2, negative eval level, zero draws, a missing
    noise file, 0 ADC bits: exit status 2 and a message naming the problem."""
    args = list(ARGS)
    for k, v in change.items():
        if k in args:
            args[args.index(k) + 1] = v
        else:
            args += [k, v]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err


def test_bad_noise_file_is_refused(tmp_path):
    """A file with the HDF5 signature but nothing readable -> DataFormatError/ConfigError
    (both ValueError) naming the file; a shift flag with a noise file -> ConfigError."""
    f = tmp_path / "noise.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="noise.h5"):
        run_training(dataset="digits", model="mlp", train_noise=str(f), samples=2, epochs=1,
                     seed=0, eval_noise="0", out=tmp_path / "o")
    with pytest.raises(ConfigError, match="mean shift"):
        run_training(dataset="digits", model="mlp", train_noise=str(f), samples=2, epochs=1,
                     seed=0, eval_noise="0", train_shift=0.1, out=tmp_path / "o")


def test_unknown_dataset_and_model():
    """An unknown data set or model name -> ConfigError listing the valid ones; argparse
    refuses them at the command line (exit 2)."""
    with pytest.raises(ConfigError, match="digits"):
        load_dataset("cifar")
    with pytest.raises(ConfigError, match="mlp"):
        model_config("resnet", "digits", (1, 8, 8))
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "cifar", *ARGS[3:], "--out", "x"])
    assert e.value.code == 2


@pytest.mark.parametrize("name, n_train, n_test, shape", [
    ("digits", 1437, 360, (1, 8, 8)),
    ("mnist5k", 4000, 1000, (1, 28, 28)),
    ("mnist1d", 4000, 1000, (1, 40)),
])
def test_datasets_load_offline_with_documented_splits(name, n_train, n_test, shape):
    """Split sizes 1437/360 (digits), 4000/1000 (MNIST-5k and MNIST-1D); images in [0, 1]
    with max exactly 1; each class present in both splits; mlp and cnn both map a
    batch to 10 logits."""
    d = load_dataset(name)
    assert d.x_train.shape == (n_train, *shape) and d.x_test.shape == (n_test, *shape)
    assert set(d.y_train.tolist()) == set(range(10)) == set(d.y_test.tolist())
    if name != "mnist1d":
        assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    for kind in ("mlp", "cnn"):
        net = build_model(model_config(kind, d))
        assert net(d.x_test[:5]).shape == (5, 10)


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
