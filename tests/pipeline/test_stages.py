"""The stage bodies of ``xbarlab run`` (xbarlab/pipeline/stages.py): several training seeds."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from _tiny_run import run


@pytest.mark.slow
def test_training_seeds_give_the_gap_interval_and_keep_the_first_seed(tiny_run, tmp_path):
    """The tiny run again with ``[train] seeds = 2``: the first seed's networks and table are
    bit for bit those of the one-seed run; evaluation.json's seed_gaps hold, per range,
    compensation and time, the first seed's gap = HA-SGD mean - SGD mean of its rows, and
    gap_mean ± t_{0.975, 1} |g_1 - g_2| / 2 (t = tan(0.475 pi) = 12.7062047, the Cauchy
    quantile: the 95 % t-interval of two values); the report shows the gap table."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    shutil.copy(cfg0.parent / "tiny.csv", tmp_path / "tiny.csv")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(cfg0.read_text().replace("train_time", "seeds = 2\ntrain_time"))
    res = run(cfg, out)
    assert {s for s, v in res["status"].items() if v == "ran"} == {
        "train-sgd", "train-hasgd", "evaluate", "report"}
    for sub in ("train-sgd", "train-hasgd", "train-hasgd/compare"):
        a, b = (torch.load(o / sub / "model.pt", weights_only=True)["state_dict"]
                for o in (out, out0))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert (out / sub / "seed-1" / "model.pt").is_file()
    ev0 = json.loads((out0 / "evaluate" / "evaluation.json").read_text())
    ev = json.loads((out / "evaluate" / "evaluation.json").read_text())
    assert ev["rows"] == ev0["rows"] and ev0["seed_gaps"] == []
    means = {(r["range"], r["method"], r["compensation"], r["t"]): r["accuracy_mean"]
             for r in ev["rows"]}
    assert len(ev["seed_gaps"]) == 2 * 2 * 2  # ranges x compensations x times
    for g in ev["seed_gaps"]:
        key = (g["range"], g["compensation"], g["t"])
        assert g["gaps"][0] == pytest.approx(means[(key[0], "HA-SGD", *key[1:])]
                                             - means[(key[0], "SGD", *key[1:])], abs=1e-15)
        half = math.tan(0.475 * math.pi) * abs(g["gaps"][0] - g["gaps"][1]) / 2
        mean = (g["gaps"][0] + g["gaps"][1]) / 2
        assert g["gap_mean"] == pytest.approx(mean, abs=1e-15)
        assert g["gap_ci95"] == pytest.approx([mean - half, mean + half], abs=1e-9)
    assert "HA-SGD − SGD accuracy gap over 2 training seeds" in (out / "report.md").read_text()
    assert not math.isnan(ev["seed_gaps"][0]["gap_mean"])
