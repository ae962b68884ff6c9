"""Pipelined training: the cycle model (M + K - 1 cycles per synchronous update, one per
asynchronous update after K - 1 fill cycles) and the staleness of the asynchronous schedule
(stage k computes with weights K - k updates old), against a hand-written simulation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from xbarlab.errors import ConfigError
from xbarlab.nn.pipelines import Schedule, cycles_per_update, split_stages, train_pipelined


def _net(seed=0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 5), nn.Tanh(),
                        nn.Linear(5, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5)
    return net


def _data(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 4, generator=g, dtype=torch.float64),
             torch.randint(0, 3, (2,), generator=g)) for _ in range(n)]


def test_cycle_counts():
    """K = 3, M = 4: synchronous updates end at 6, 12, 18, ... cycles; asynchronous ones at
    3, 4, 5, ... (2 fill cycles, then one per micro-batch)."""
    net = _net()
    log = train_pipelined(net, torch.optim.SGD(net.parameters(), lr=0.1), _data(20), stages=3,
                          schedule="synchronous", per_update=4)
    assert log.cycles == [6 * (i + 1) for i in range(5)]
    assert log.samples == [8 * (i + 1) for i in range(5)]
    assert cycles_per_update(Schedule.SYNCHRONOUS, 3, 4) == 6
    net = _net()
    log = train_pipelined(net, torch.optim.SGD(net.parameters(), lr=0.1), _data(20), stages=3,
                          schedule="asynchronous")
    assert log.cycles == list(range(3, 23))


def test_synchronous_is_sgd_on_the_union():
    """A synchronous update of M micro-batches equals one SGD step on their union."""
    net, ref = _net(), _net()
    data = _data(6)
    train_pipelined(net, torch.optim.SGD(net.parameters(), lr=0.2), data, stages=3,
                    schedule="synchronous", per_update=3)
    opt = torch.optim.SGD(ref.parameters(), lr=0.2)
    for i in (0, 3):
        x = torch.cat([b[0] for b in data[i:i + 3]])
        y = torch.cat([b[1] for b in data[i:i + 3]])
        opt.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_asynchronous_staleness():
    """K = 3 stages of one layer each: at update t stage k's forward and backward use the
    weights after update t - (K - k) (the initial ones while t < K - k), and the gradient
    is applied to its current weights (simulated here with plain tensors and autograd)."""
    net = _net()
    data = _data(7)
    lr = 0.3
    train_pipelined(net, torch.optim.SGD(net.parameters(), lr=lr), data, stages=3,
                    schedule="asynchronous")
    ref = _net()
    hist = [[[p.detach().clone() for p in m.parameters()] for m in (ref[0], ref[2], ref[4])]]
    for t, (x, y) in enumerate(data):
        stale = [[p.clone().requires_grad_(True) for p in hist[max(0, t - (3 - k))][k - 1]]
                 for k in (1, 2, 3)]
        h = torch.tanh(x @ stale[0][0].T + stale[0][1])
        h = torch.tanh(h @ stale[1][0].T + stale[1][1])
        loss = nn.functional.cross_entropy(h @ stale[2][0].T + stale[2][1], y)
        loss.backward()
        hist.append([[cur - lr * s.grad for cur, s in zip(hist[t][k], stale[k], strict=True)]
                     for k in range(3)])
    for m, want in zip((net[0], net[2], net[4]), hist[-1], strict=True):
        for p, w in zip(m.parameters(), want, strict=True):
            torch.testing.assert_close(p.detach(), w.detach(), rtol=1e-12, atol=1e-14)


def _net4(seed=0):
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 6), nn.Sigmoid(), nn.Linear(6, 5), nn.Sigmoid(),
                        nn.Linear(5, 5), nn.Sigmoid(), nn.Linear(5, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5)
    return net


def test_cycle_counts_four_stages():
    """K = 4 stages of one layer each, M = 1 and M = 3: synchronous updates end at 4, 8, ...
    and 6, 12, ... cycles (M + K - 1 each); asynchronous ones at 4, 5, 6, ... (3 fill
    cycles, then one per micro-batch), counted here by stepping a cycle-by-cycle model of
    the pipeline (micro-batch i is in stage k at cycle i + k)."""
    for m in (1, 3):
        net = _net4()
        log = train_pipelined(net, torch.optim.SGD(net.parameters(), lr=0.1), _data(12),
                              stages=4, schedule="synchronous", per_update=m)
        # synchronous: an update's micro-batches enter at the cycle after the previous
        # update's last one left stage 4; the update ends when its last one leaves stage 4
        ends, start = [], 0
        for _ in range(12 // m):
            last_enters = start + m - 1
            ends.append(last_enters + 4)  # cycles are counted from 1: leaves stage 4 at end
            start = last_enters + 4
        assert log.cycles == ends
        assert cycles_per_update(Schedule.SYNCHRONOUS, 4, m) == m + 3
    net = _net4()
    log = train_pipelined(net, torch.optim.SGD(net.parameters(), lr=0.1), _data(12), stages=4,
                          schedule="asynchronous")
    # asynchronous: micro-batch i (0-based) enters at cycle i and leaves stage 4 at the end
    # of cycle i + 3, i.e. cycle i + 4 counted from 1
    assert log.cycles == [i + 4 for i in range(12)]
    assert cycles_per_update(Schedule.ASYNCHRONOUS, 4, 1) == 1


def test_asynchronous_staleness_four_stages():
    """K = 4 stages of one layer each: at update t stage k (1..4) computes its forward and
    backward with the weights after update t - (4 - k) (the initial ones while t < 4 - k)
    and the gradient is applied to its current weights (plain tensors and autograd)."""
    net = _net4()
    data = _data(9)
    lr = 0.4
    train_pipelined(net, torch.optim.SGD(net.parameters(), lr=lr), data, stages=4,
                    schedule="asynchronous")
    ref = _net4()
    lins = (ref[0], ref[2], ref[4], ref[6])
    hist = [[[p.detach().clone() for p in m.parameters()] for m in lins]]
    for t, (x, y) in enumerate(data):
        stale = [[p.clone().requires_grad_(True) for p in hist[max(0, t - (4 - k))][k - 1]]
                 for k in (1, 2, 3, 4)]
        h = x
        for w, b in stale[:3]:
            h = torch.sigmoid(h @ w.T + b)
        loss = nn.functional.cross_entropy(h @ stale[3][0].T + stale[3][1], y)
        loss.backward()
        hist.append([[cur - lr * s.grad for cur, s in zip(hist[t][k], stale[k], strict=True)]
                     for k in range(4)])
    for m, want in zip((net[0], net[2], net[4], net[6]), hist[-1], strict=True):
        for p, w in zip(m.parameters(), want, strict=True):
            torch.testing.assert_close(p.detach(), w.detach(), rtol=1e-12, atol=1e-14)
    # the staleness matters: the same data with fresh weights everywhere ends elsewhere
    fresh = _net4()
    train_pipelined(fresh, torch.optim.SGD(fresh.parameters(), lr=lr), data, stages=1,
                    schedule="asynchronous")
    assert not torch.allclose(fresh[0].weight, net[0].weight, rtol=0, atol=1e-6)


def test_bad_input():
    """Bad stage counts and schedules raise one ConfigError naming the value."""
    net = _net()
    with pytest.raises(ConfigError, match=r"stages must be an integer in 1..3 .*got 4"):
        split_stages(net, 4)
    with pytest.raises(ConfigError, match=r"per_update must be 1, got 2"):
        train_pipelined(net, torch.optim.SGD(net.parameters(), lr=0.1), _data(2), stages=2,
                        schedule="asynchronous", per_update=2)
    with pytest.raises(ConfigError, match=r"schedule='bubbly' is not one of"):
        cycles_per_update("bubbly", 2, 2)
