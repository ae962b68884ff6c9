"""0 S as an absorbing state of the relaxation table: cells that read 0 S stay there where the
data say so (calibration/relaxation.py ZERO_HOLDS, devices/relaxation_table.py zero_holds)."""

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


def test_table_keeps_cells_at_zero_and_round_trips():
    """With zero_holds a cell at g_0 = 0 S changes by 0 S whatever its deviate, one above
    0 S as without; the flag survives to_dict/from_dict, and a table without it writes no
    key."""
    g = np.array([1e-6])
    t = np.array([0.0, 100.0])
    p = np.linspace(0, 1, 5)
    q = np.zeros((1, 2, 5))
    q[0, 1] = np.linspace(-0.2e-6, 0.2e-6, 5)
    tab = RelaxationTable(g, t, p, q, tau=1.0, zero_holds=True)
    plain = RelaxationTable(g, t, p, q, tau=1.0)
    g0 = np.array([0.0, 0.0, 0.5e-6])
    u = np.array([0.9, 0.1, 0.9])
    np.testing.assert_array_equal(tab.delta(g0, 100.0, u)[:2], [0.0, 0.0])
    assert tab.delta(g0, 100.0, u)[2] == plain.delta(g0, 100.0, u)[2] > 0
    assert plain.delta(g0, 100.0, u)[0] > 0
    assert RelaxationTable.from_dict(tab.to_dict()).zero_holds
    assert "zero_holds" not in plain.to_dict()
    assert not RelaxationTable.from_dict(plain.to_dict()).zero_holds


def test_zero_absorbs_where_the_data_stay_at_zero():
    """PCM equations (_pcm, 1,000 cells a target, reads 1 s - 1e4 s), relaxation fit: every
    later read of a cell at 0 S at 1 s is 0 S, so the fit makes 0 S absorbing; sampled at
    the targets, the model's share of cells at 0 S never falls with time (the equations'
    cannot) and at 1e4 s lies within 0.02 of the equations' own (200,000 cells a target;
    the fit's first read carries its programming model's error at 1 s, within 0.02 too).
    Under an additive read noise drawn at every read (_additive) about half of such reads
    are above 0 S (a cell programmed to 0 S reads 0 S half the time) and the fit leaves
    0 S free."""
    model = fit(_pcm(1000, np.random.default_rng(0)), drift="relaxation",
                rng=np.random.default_rng(1), n_boot=2)
    ri = model.report.relaxation
    assert ri.zero_holds and ri.zero_cells > 50 and ri.zero_share == 1.0
    assert model.drift_law.zero_holds
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
    assert rf.zero_cells > 50 and 0.4 < rf.zero_share < 0.7 and not rf.zero_holds
    assert not free.drift_law.zero_holds
