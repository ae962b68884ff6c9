"""The figure scripts (xbarlab.nn.figures): small runs of each, slow full ones, isolation."""

from __future__ import annotations

import json

import pytest
from _toy import D, Y
from xbarlab.cli import main

GRID = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8"



def _run(out, sigma, samples):
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--train-noise", str(sigma),
                 "--samples", str(samples), "--epochs", "40", "--seed", "0", "--eval-noise",
                 GRID, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    return m["clean_accuracy"], {e["noise"]: e["accuracy_mean"] for e in m["eval"]}


@pytest.mark.slow
def test_digits_hasgd_keeps_two_thirds_of_what_plain_sgd_loses(tmp_path):
    """digits MLP, 40 epochs, seed 0. Expected: at the smallest test σ on the grid where
    plain training loses ≥ 30 accuracy points (0.4 on the reference machine), HA-SGD with
    L = 4 trained at that σ loses at most a third as much, both counted from plain
    training's clean accuracy (reference run: 44.8 vs 12.0 points)."""
    clean, plain = _run(tmp_path / "plain", 0, 0)
    sigma = next(s for s in sorted(plain) if clean - plain[s] >= 0.30)
    _, ha = _run(tmp_path / "ha", sigma, 4)
    assert clean - ha[sigma] <= (clean - plain[sigma]) / 3


def test_shift_offset_known_shift_is_compensated_by_training_with_it(tmp_path):
    """Poster Fig. 8 in small (digits, noise injection, 2 epochs): under a test offset of
    +0.1·max|w| the network trained with that offset beats the one trained without it by
    a wide margin (0.92 against 0.43 when written), and each is better than the other at
    its own training shift."""
    from xbarlab.nn.figures.mean_shift import run

    res = run(out=tmp_path, epochs=2, samples=1, kind="offset", train_shifts=(0.0, 0.1),
                    test_shifts=(0.0, 0.1), draws=3)
    acc = {(r["train_shift"], a["test_shift"]): a["accuracy_mean"]
           for r in res["rows"] for a in r["eval"]}
    assert acc[(0.1, 0.1)] > acc[(0.0, 0.1)] + 0.3
    assert acc[(0.0, 0.0)] > acc[(0.1, 0.0)]


def test_training_trajectory_measures_the_same_network_xbarlab_train_makes(tmp_path):
    """The training-trajectory figure retrains with xbarlab train's seed streams and measures
    copies, so at its last checkpoint the clean accuracy is exactly that of `xbarlab train` (digits,
    injection, 2 epochs, the same torch thread count: the losses' last bits depend on it), and
    passes per example count epochs × L."""
    import torch
    from xbarlab.nn.figures.training_trajectory import trajectory

    rows = trajectory("digits", 0.4, 1, 2, 1, (0.4,), draws=2)
    assert [r["passes_per_example"] for r in rows] == [1, 2]
    assert main(["train", "--dataset", "digits", "--model", "mlp", "--train-noise", "0.4",
                 "--samples", "1", "--epochs", "2", "--seed", "0", "--eval-noise", "0",
                 "--threads", str(torch.get_num_threads()),
                 "--out", str(tmp_path / "inj")]) == 0
    m = json.loads((tmp_path / "inj" / "metrics.json").read_text())
    assert rows[-1]["clean"] == m["clean_accuracy"]
    assert rows[-1]["train_loss"] == m["history"][-1]["loss"]


@pytest.mark.slow
def test_hasgd_against_exported_pcm_noise_beats_sgd_on_digits(tmp_path):
    """The README experiment (digits MLP, 15 epochs, seed 0; IBM PCM mapped to 0-2.5 µS,
    noise exported at 1 s, 1 h, 1 d, 1 y; HA-SGD L = 4 against their mixture): over 10
    programmings, HA-SGD's mean accuracy at 1 d and 1 y exceeds plain SGD's, with and
    without global drift compensation (statistical mode). Takes ~10 min on 2 cores."""
    from xbarlab.nn.figures.accuracy_over_time import run

    res = run(out=tmp_path, epochs=15, circuit_samples=0, progress=False)
    acc = {(m, e["compensation"], e["time_s"]): e["accuracy_mean"]
           for m, ev in res["evaluations"].items() for e in ev["results"]}
    for comp in ("none", "global"):
        for t in (D, Y):
            assert acc[("HA-SGD", comp, t)] > acc[("SGD", comp, t)], (comp, t)


@pytest.mark.slow
def test_cnn_compensation_restores_what_drift_takes_from_a_batchnorm_cnn(tmp_path):
    """The BatchNorm resnet on digits (2 epochs, L = 2, seed 0), IBM PCM over its full
    0-25 µS range, 3 programmings read at 1 s and 1 y: without compensation the 1 y read
    leaves the BatchNorm statistics off by the conductance decay (accuracy < 0.3); global
    and column compensation, against either reference, recover more than 0.3 of it for
    both networks. Takes ~2 min on 2 cores."""
    from xbarlab.nn.figures.cnn_compensation import run

    res = run(out=tmp_path, epochs=2, samples=2, times=(1.0, Y), programmings=3,
              noise_samples=20_000, grid=21, progress=False)
    for key, ev in res["evaluations"].items():
        acc = {(e["compensation"], e["time_s"]): e["accuracy_mean"] for e in ev["results"]}
        assert acc["none", Y] < 0.3, key
        for comp in ("global", "column"):
            assert acc[comp, Y] > acc["none", Y] + 0.3, (key, comp)


def test_library_never_imports_the_figures():
    """No module of xbarlab.nn outside nn/figures imports xbarlab.nn.figures or the CLI (the
    import statements, read with ast)."""
    import ast
    from pathlib import Path

    import xbarlab.nn

    root = Path(xbarlab.nn.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = "." * node.level + (node.module or "")
                assert "figures" not in name and not name.endswith("cli"), (path.name, name)
            elif isinstance(node, ast.Import):
                assert not any("figures" in a.name for a in node.names), path.name


def test_adc_bits_figure_on_small_networks(tmp_path, monkeypatch):
    """The ADC-bits figure with both logit options, on networks trained for one epoch (the
    cached runs): tables for logits through the ADC and in floating point, accuracies in
    [0, 1], 8-bit accuracy within 5 points of the float network."""
    import json

    from xbarlab.nn.figures import adc_bits, common

    def quick(out, dataset, sigma, samples, epochs=40, seed=0):
        return orig(out, dataset, sigma, samples, epochs=1, seed=seed)

    orig = common.trained_run
    monkeypatch.setattr(adc_bits, "trained_run", quick)
    monkeypatch.setattr(adc_bits, "NETWORKS", {"plain (L=0)": ("plain", 0.0, 0)})
    res = adc_bits.run(tmp_path, ("digits",), bits=(2, 8), draws=2, logits="both")
    assert set(res["digits"]) == {"logits_adc", "logits_float"}
    clean = json.loads((tmp_path / "exp1/digits/plain/metrics.json").read_text())
    for key in ("logits_adc", "logits_float"):
        c = res["digits"][key]["clean"]["plain (L=0)"]
        assert all(0 <= v[0] <= 1 for v in c.values())
        assert abs(c["8"][0] - clean["clean_accuracy"]) < 0.05
    assert "floating point" in (tmp_path / "exp3.md").read_text()


def test_adc_output_statistics_match_numpy():
    """output_statistics: per layer max|y| / 99th percentile of |y| and the share of |y|
    below half a 3-bit step (r / 6), recomputed with numpy from the layer's outputs."""
    import numpy as np
    import torch
    from torch import nn
    from xbarlab.nn.figures.adc_bits_cnn import output_statistics

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    x = torch.randn(400, 6, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y0 = net[0](x).abs().numpy()
        y2 = net[2](net[1](net[0](x))).abs().numpy()
    ranges = {"0": 2.0, "2": 0.9}
    st = output_statistics(net, x, ranges)
    for name, y in (("0", y0), ("2", y2)):
        assert st[name]["peak_over_p99"] == pytest.approx(y.max() / np.percentile(y, 99),
                                                          rel=1e-12)
        assert st[name]["zero_bin"] == pytest.approx(np.mean(y < ranges[name] / 6), rel=1e-12)


@pytest.mark.slow
def test_adc_bits_cnn_on_untrained_networks(tmp_path):
    """The CNN ADC-bits figure on untrained resnets (0 epochs): one row per (network,
    logits, bits) plus the no-ADC row, 2 programmings at 1 s each, accuracies in [0, 1];
    a networks folder without sgd/ is refused naming the figure that makes it."""
    from xbarlab.errors import ConfigError
    from xbarlab.nn.data import load_dataset, model_config
    from xbarlab.nn.figures.adc_bits_cnn import run
    from xbarlab.nn.train import train

    data = load_dataset("digits")
    for sub in ("sgd", "hasgd"):
        train(data, model_config("resnet", data), noise=None, samples=0, epochs=0, seed=0,
              out=tmp_path / "nets" / sub)
    res = run(networks=tmp_path / "nets", out=tmp_path / "o", bits=(2, 8), times=(1.0,),
              programmings=2)
    assert len(res["rows"]) == 2 * (1 + 2 * 2)
    for r in res["rows"]:
        assert len(r["accuracies"]["1.0"]) == 2 and all(0 <= a <= 1 for a in
                                                       r["accuracies"]["1.0"])
    assert (tmp_path / "o" / "table.md").exists()
    with pytest.raises(ConfigError, match="cnn_compensation"):
        run(networks=tmp_path, out=tmp_path / "p")
