"""Cells at 0 S that stay there: the probability the data give (calibration/relaxation.py
_zero_stay) and the sampling rule (devices/relaxation_table.py zero_stay)."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.calibration import fit
from xbarlab.devices.relaxation_table import RelaxationTable

TIMES = np.array([1.0, 10.0, 100.0, 1e3, 1e4])
TARGETS = np.array([0.3e-6, 0.6e-6, 1.2e-6])


def _pcm(n, rng, times=TIMES):
    """PCM equations (Nandakumar et al. 2019, as in IBM aihwkit's PCM-like model):
    g_prog = max(g_T + 0.3 uS z, 0), g(t) = g_prog ((t + 20 s) / 20 s)^-nu with
    nu ~ |N(0.06, 0.02)| per cell, read noise g(t) 0.05 z_t (independent per read): a cell
    programmed to 0 S reads 0 S at every time. Returns the measurement table and the cells'
    g_prog, nu per target (for exact truths)."""
    tg = np.repeat(TARGETS, n)
    g_prog = np.maximum(tg + 0.3e-6 * rng.standard_normal(tg.size), 0.0)
    nu = np.abs(0.06 + 0.02 * rng.standard_normal(tg.size))
    g = g_prog[None, :] * ((times[:, None] + 20.0) / 20.0) ** -nu[None, :]
    g = np.maximum(g * (1 + 0.05 * rng.standard_normal(g.shape)), 0.0)
    k = tg.size
    return {"device": np.tile(np.arange(k), times.size), "g": g.ravel(),
            "time": np.repeat(times, k), "g_target": np.tile(tg, times.size)}


def _additive(n, rng):
    """The same targets and programming, but an additive read noise of 0.15 uS drawn at
    every read and clamped at 0 S: a cell reading 0 S at 1 s mostly reads more later."""
    tg = np.repeat(TARGETS, n)
    g_prog = np.maximum(tg + 0.3e-6 * rng.standard_normal(tg.size), 0.0)
    g = np.maximum(g_prog[None, :] + 0.15e-6 * rng.standard_normal((TIMES.size, tg.size)), 0)
    k = tg.size
    return {"device": np.tile(np.arange(k), TIMES.size), "g": g.ravel(),
            "time": np.repeat(TIMES, k), "g_target": np.tile(tg, TIMES.size)}


def test_table_keeps_cells_at_zero_with_its_probability_and_round_trips():
    """With zero_stay s = 0.25 a cell at g_0 = 0 S changes by 0 S when its deviate p < s
    and otherwise by the table's quantile at (p - s) / (1 - s); a cell above 0 S changes
    as without (same deviate); s = 1 keeps every cell at 0 S. zero_stay survives
    to_dict/from_dict, a table without it writes no key, and s outside [0, 1] is refused."""
    from xbarlab.errors import ConfigError

    g = np.array([1e-6])
    t = np.array([0.0, 100.0])
    p = np.linspace(0, 1, 5)
    q = np.zeros((1, 2, 5))
    q[0, 1] = np.linspace(-0.2e-6, 0.2e-6, 5)
    tab = RelaxationTable(g, t, p, q, tau=1.0, zero_stay=0.25)
    plain = RelaxationTable(g, t, p, q, tau=1.0)
    g0 = np.array([0.0, 0.0, 0.0, 0.5e-6])
    u = np.array([0.1, 0.25, 0.85, 0.85])
    got = tab.delta(g0, 100.0, u)
    want = plain.delta(g0, 100.0, np.array([0.1, 0.0, 0.8, 0.85]))
    np.testing.assert_allclose(got, [0.0, want[1], want[2], want[3]], rtol=1e-12, atol=0)
    assert want[2] > 0 and want[1] < 0
    all_stay = RelaxationTable(g, t, p, q, tau=1.0, zero_stay=1.0)
    np.testing.assert_array_equal(all_stay.delta(g0, 100.0, u)[:3], 0.0)
    assert RelaxationTable.from_dict(tab.to_dict()).zero_stay == 0.25
    assert "zero_stay" not in plain.to_dict()
    assert RelaxationTable.from_dict(plain.to_dict()).zero_stay == 0.0
    with pytest.raises(ConfigError, match=r"zero_stay must lie in \[0, 1\], got 1.5"):
        RelaxationTable(g, t, p, q, tau=1.0, zero_stay=1.5)


def test_cells_at_zero_stay_with_the_probability_the_data_give(tmp_path):
    """PCM equations (_pcm, 1,000 cells a target, reads 1 s - 1e4 s), relaxation fit: every
    later read of a cell at 0 S at 1 s is 0 S, so such a cell stays at 0 S with probability
    above 0.95; sampled at the targets, the model's share of cells at 0 S never falls with
    time (the equations' cannot) and lies within 0.02 of the equations' own at 1 s and
    1e4 s (200,000 cells a target; the first read carries the programming model's error).
    Under an additive read noise drawn at every read (_additive) about half of such reads
    are above 0 S (a cell programmed to 0 S reads 0 S half the time), about what the
    table's own changes give, and hardly a cell stays for good (s < 0.2); the report
    states the count, both shares and s."""
    model = fit(_pcm(1000, np.random.default_rng(0)), drift="relaxation",
                rng=np.random.default_rng(1), n_boot=2)
    ri = model.report.relaxation
    print("PCM equations:", ri.zero_cells, ri.zero_share, ri.zero_table, ri.zero_stay)
    assert ri.zero_cells > 50 and ri.zero_share == 1.0 and ri.zero_stay > 0.95
    assert model.drift_law.zero_stay == ri.zero_stay
    truth = _pcm(200_000, np.random.default_rng(2), times=np.array([1.0, 1e4]))
    rng = np.random.default_rng(3)
    for g_t in TARGETS:
        z = [np.mean(model.sample(np.full(200_000, g_t), t, rng) == 0) for t in TIMES]
        assert np.all(np.diff(z) >= -0.003), (g_t, z)
        want = [np.mean(truth["g"][(truth["g_target"] == g_t) & (truth["time"] == t)] == 0)
                for t in (1.0, 1e4)]
        assert z[0] == pytest.approx(want[0], abs=0.02) and z[-1] == pytest.approx(
            want[1], abs=0.02), (g_t, z, want)
    free = fit(_additive(1000, np.random.default_rng(4)), drift="relaxation",
               rng=np.random.default_rng(1), n_boot=2)
    rf = free.report.relaxation
    from xbarlab.calibration import write_report

    md = write_report(free, _additive(200, np.random.default_rng(6)), tmp_path / "rep",
                      rng=np.random.default_rng(7), n_replicates=20).read_text()
    assert (f"{rf.zero_cells} cells read 0 S at the first read; {rf.zero_share:.1%} of their "
            f"later reads are at 0 S, where the table's own changes would leave "
            f"{rf.zero_table:.1%}: a cell at 0 S stays there for good with probability "
            f"{rf.zero_stay:.3f}") in md
    print("additive read noise:", rf.zero_cells, rf.zero_share, rf.zero_table, rf.zero_stay)
    assert rf.zero_cells > 50 and 0.4 < rf.zero_share < 0.7 and rf.zero_stay < 0.2


def test_table_share_from_a_subset_of_the_cells_at_zero(monkeypatch):
    """The table's own share at 0 S is estimated from at most ZERO_SAMPLE cells at 0 S,
    evenly spaced: with 20 of the additive-noise fit's 177 cells it lies within 0.05 of
    the estimate from all of them, and the share of their later reads (from all cells) is
    the same."""
    from xbarlab.calibration import relaxation

    data = _additive(1000, np.random.default_rng(4))
    full = fit(data, drift="relaxation", rng=np.random.default_rng(1), n_boot=2).report
    monkeypatch.setattr(relaxation, "ZERO_SAMPLE", 20)
    part = fit(data, drift="relaxation", rng=np.random.default_rng(1), n_boot=2).report
    a, b = full.relaxation, part.relaxation
    assert a.zero_cells == b.zero_cells == 177 and a.zero_share == b.zero_share
    assert b.zero_table == pytest.approx(a.zero_table, abs=0.05) and b.zero_table != a.zero_table


@pytest.mark.xfail(strict=True, reason=(
    "under an additive read noise drawn at every read, reads at 0 S are the clamp of noise: "
    "the generator's share at 0 S at 0.3 uS is 0.14 at every time, the model's falls from "
    "0.16 at 1 s to 0.11 at 10 s-1e4 s. Its cells at 0 S leave as the data's do (s = 0.08, "
    "about half stay), but too few cells just above 0 S drop back to it: the within-level "
    "slope is linear in g_0 while the clamp makes the change of the lowest cells nonlinear"))
def test_share_at_zero_under_additive_read_noise():
    """_additive (1,000 cells a target), relaxation fit: the model's share of cells at 0 S
    at each target and time 1 s-1e4 s lies within 0.02 of the generator's own (its
    equations, 66,667 cells a target)."""
    model = fit(_additive(1000, np.random.default_rng(4)), drift="relaxation",
                rng=np.random.default_rng(1), n_boot=2)
    truth = _additive(66_667, np.random.default_rng(5))
    rng = np.random.default_rng(3)
    for g_t in TARGETS:
        for t in TIMES:
            z = np.mean(model.sample(np.full(200_000, g_t), t, rng) == 0)
            w = np.mean(truth["g"][(truth["g_target"] == g_t) & (truth["time"] == t)] == 0)
            assert z == pytest.approx(w, abs=0.02), (g_t, t, z, w)
