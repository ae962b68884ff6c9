"""``xbarlab train`` (xbarlab/cli/train.py): outputs, reproducibility, --force, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from xbarlab.cli import main
from xbarlab.errors import ConfigError
from xbarlab.nn.data import load_dataset, model_config
from xbarlab.nn.train import accuracy, load_trained

ARGS = ["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "0.2",
        "--samples", "2", "--epochs", "1", "--seed", "0", "--eval-noise", "0,0.3",
        "--eval-draws", "3"]


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
