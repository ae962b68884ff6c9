"""``xbarlab train-insitu`` (xbarlab/cli/train_insitu.py): outputs, a device from a JSON
file, the pipeline's clock cycles, bad input."""

from __future__ import annotations

import json

import pytest
from xbarlab.cli import main
from xbarlab.devices.pulsed import PulsedDevice, SoftBounds

ARGS = ["train-insitu", "--dataset", "digits", "--epochs", "1", "--mode", "mean_field"]


@pytest.mark.slow
def test_writes_metrics_and_report(tmp_path):
    """One mean-field epoch of Analog SGD on digits from a device JSON file, pipelined over
    3 stages, synchronous, 2 micro-batches of 10 per update: 1,437 samples are 144
    micro-batches (the last of 7), 72 updates of M + K - 1 = 4 cycles, 288 cycles; the
    report and the histograms are written, pulses are counted for each of the 3 layers."""
    dev = tmp_path / "dev.json"
    dev.write_text(PulsedDevice(SoftBounds(3e-8, 3e-8), 1e-6, 21e-6).to_json())
    out = tmp_path / "run"
    assert main([*ARGS, "--update", "analog-sgd", "--device", str(dev), "--stages", "3",
                 "--micro-batches", "2", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    (row,) = m["history"]
    assert row["samples"] == 1437 and row["cycles"] == 288
    assert 0.0 <= m["final_test_accuracy"] <= 1.0
    assert sorted(row["pulses"]) == ["0", "2", "4"]
    assert m["weight_range"] == pytest.approx([-0.6, 0.6])
    for name in ("report.md", "report.html", "accuracy.png", "weights.png"):
        assert (out / name).exists()


@pytest.mark.parametrize("extra,match", [
    (["--device", "no-such-device"], r"--device 'no-such-device' is neither a preset"),
    (["--tau", "0"], r"--tau must be > 0"),
    (["--stages", "5"], r"stages must be an integer in 1..3 .*got 5"),
    (["--stages", "4"], r"stages must be an integer in 1..3 .*got 4"),
    (["--hidden", "256,128,64", "--stages", "5"],
     r"stages must be an integer in 1..4 \(the FCN's Linear layers\), got 5"),
    (["--hidden", "256,0,64"], r"--hidden: expected comma-separated integers >= 1 .*'256,0,64'"),
    (["--hidden", "256,,64"], r"--hidden: expected comma-separated integers >= 1"),
    (["--hidden", "256,x"], r"--hidden: expected comma-separated integers >= 1 .*'256,x'"),
    (["--hidden", "-3"], r"--hidden: expected comma-separated integers >= 1"),
])
def test_bad_input(tmp_path, capsys, extra, match):
    """Bad options: exit status 2 and one error line naming the value."""
    assert main([*ARGS, "--update", "analog-sgd", *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert pytest.importorskip("re").search(match, err[0]), err[0]


@pytest.mark.parametrize("hidden", [(), [256, 0], (64, 2.5), (True,), "256,128", None])
def test_hidden_refused_by_the_library(hidden):
    """train_insitu and fcn refuse hidden widths that are not a non-empty sequence of
    integers >= 1, before any data is loaded."""
    import torch
    from xbarlab.errors import ConfigError
    from xbarlab.nn.insitu_run import fcn, train_insitu

    with pytest.raises(ConfigError, match=r"hidden must be a non-empty sequence of integers"):
        train_insitu(dataset="digits", algorithm="digital", device=None, tau=0.6, epochs=1,
                     seed=0, lr=0.1, hidden=hidden)
    with pytest.raises(ConfigError, match=r"hidden must be a non-empty sequence of integers"):
        fcn(64, torch.Generator().manual_seed(0), hidden)


def test_deeper_fcn_layers():
    """hidden (256, 128, 64): Linear layers 64-256, 256-128, 128-64, 64-10 with a sigmoid
    between them; the default is the 3-layer 64-256-128-10 drawn from the same stream."""
    import torch
    from torch import nn
    from xbarlab.nn.insitu_run import fcn

    net = fcn(64, torch.Generator().manual_seed(0), (256, 128, 64))
    lins = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lins] == [(64, 256), (256, 128),
                                                               (128, 64), (64, 10)]
    assert sum(isinstance(m, nn.Sigmoid) for m in net) == 3
    for m in lins:  # uniform on +-1/sqrt(fan_in)
        assert float(m.weight.detach().abs().max()) <= 1 / m.in_features ** 0.5
    a = fcn(64, torch.Generator().manual_seed(0))
    b = fcn(64, torch.Generator().manual_seed(0), [256, 128])
    assert len([m for m in a if isinstance(m, nn.Linear)]) == 3
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
