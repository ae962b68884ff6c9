"""``xbarlab train`` (xbarlab/cli/train.py): outputs, reproducibility, --force, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from xbarlab.cli import main
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
    ({"--samples": "-1"}, "--samples must be >= 0, got -1"),
    ({"--samples": "0"}, "samples=0"),
    ({"--eval-noise": "0,-1"}, "--eval-noise"),
    ({"--eval-draws": "0"}, "--eval-draws must be >= 1, got 0"),
    ({"--train-noise": "noise.h5"}, "does not exist"),
    ({"--adc-bits": "0"}, "--adc-bits must be in [2, 24], got 0"),
    ({"--adc-bits": "1"}, "--adc-bits must be in [2, 24], got 1"),
    ({"--threads": "-1"}, "--threads"),
    ({"--nproc": "0"}, "--nproc must be >= 1, got 0"),
    ({"--samples": "3", "--nproc": "2"}, "samples (L=3) must be a multiple of the number of "
                                         "processes (nproc=2)"),
    ({"--tile": "64x64"}, "--tile and --mapping-scaling apply to --noise-scaling tile"),
    ({"--noise-scaling": "tile", "--tile": "64"}, "--tile '64' is not ROWSxCOLS"),
])
def test_bad_input_gives_clear_error(tmp_path, capsys, change, needle):
    """σ < 0, L < 0, --samples 0 with σ = 0.2, negative eval level, zero draws, a missing
    noise file, 0 or 1 ADC bits (the signed ADC has a zero code, so >= 2), a negative
    thread count, no process or L not a multiple of the processes: exit status 2 and a
    message naming the problem (the library's parameter, or the flag the CLI parses)."""
    args = list(ARGS)
    for k, v in change.items():
        if k in args:
            args[args.index(k) + 1] = v
        else:
            args += [k, v]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("threads", [None, "2"])
def test_threads_option_is_applied_and_restored(tmp_path, capsys, threads):
    """``--threads`` sets torch's thread count for the run (default 0: torch's own count,
    one per core in a fresh process): metrics.json records it, the last line names it,
    torch's count is as before afterwards, and with stderr not a terminal no progress bar
    is written."""
    before = torch.get_num_threads()
    args = [*ARGS[:ARGS.index("--epochs")], "--epochs", "0", *ARGS[ARGS.index("--seed"):]]
    extra = [] if threads is None else ["--threads", threads]
    assert main([*args, *extra, "--out", str(tmp_path / "o")]) == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["torch_threads"] == (before if threads is None else 2)
    assert torch.get_num_threads() == before
    cap = capsys.readouterr()
    assert f"{m['torch_threads']} thread(s)" in cap.out and "epoch" not in cap.err


def test_unknown_dataset_is_refused_by_the_parser():
    """An unknown data set name is refused at the command line (exit 2)."""
    assert main(["train", "--dataset", "cifar", *ARGS[3:], "--out", "x"]) == 2


def test_bad_noise_file_is_refused(tmp_path, capsys):
    """A file with the HDF5 signature but nothing readable as --train-noise: exit 1 (a bad
    file) naming the file; a shift flag with a noise file: exit 2 (a bad command line)
    naming the mean shift."""
    f = tmp_path / "noise.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n")
    base = [*ARGS[:ARGS.index("--train-noise")], "--train-noise", str(f),
            *ARGS[ARGS.index("--samples"):], "--out", str(tmp_path / "o")]
    assert main(base) == 1
    assert "noise.h5" in capsys.readouterr().err
    assert main([*base, "--train-shift", "0.1"]) == 2
    assert "mean shift" in capsys.readouterr().err


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


def test_train_cli_tile_noise_scaling_uses_the_noise_files_mapping(pcm_file, tmp_path):
    """`--noise-scaling tile --tile 64x64` with a noise file: metrics.json records the file's
    mapping (the one export_noise wrote) and the tile; `--mapping-scaling column` with a
    noise file is refused (the file brings its own scaling)."""
    from xbarlab.cli import main

    path, tab = pcm_file
    base = ["train", "--dataset", "digits", "--model", "mlp", "--samples", "1", "--epochs", "0",
            "--seed", "0", "--eval-noise", "1", "--eval-draws", "1", "--train-noise", str(path),
            "--noise-scaling", "tile", "--tile", "64x64"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["noise_scaling"] == {"scaling": "tile", "mapping": tab.mapping.to_dict(),
                                  "tile": {"rows": 64, "cols": 64,
                                           "layout": "differential-columns"}}
    assert main(base + ["--mapping-scaling", "column", "--out", str(tmp_path / "b")]) == 2


@pytest.mark.slow
def test_two_processes_train_the_network_of_one(tmp_path, capsys):
    """``--nproc 2`` (gloo on 127.0.0.1, one of the L = 2 passes per process) against
    ``--nproc 1``: the same perturbations, so after one epoch of Adam on digits the weights
    agree to float32 rounding grown over the epoch (rtol 1e-4, atol 1e-6) and the epoch loss
    within rtol 1e-5; metrics.json records nproc."""
    ms, nets = [], []
    for n in (1, 2):
        out = tmp_path / f"n{n}"
        assert main([*ARGS, "--nproc", str(n), "--out", str(out)]) == 0
        ms.append(json.loads((out / "metrics.json").read_text()))
        nets.append(load_trained(out)[0])
    assert [m["nproc"] for m in ms] == [1, 2]
    assert "in each of 2 processes" in capsys.readouterr().out
    assert ms[1]["history"][0]["loss"] == pytest.approx(ms[0]["history"][0]["loss"], rel=1e-5)
    for (k, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values(),
                         strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=k)
