"""Tests of the torch bridge: noise models, parametrizations, HA-SGD and the STE quantizer."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from torch.func import functional_call
from xbarlab.errors import ConfigError
from xbarlab.nn import (
    HASGD,
    GaussianNoise,
    QuantileNoise,
    attach_adc,
    attach_noise,
    detach_adc,
    detach_noise,
    noisy_tensors,
    quantize_ste,
    resample_noise,
)

# KS critical value at significance 0.001 for large n: D_crit = 1.95 / sqrt(n)
KS_C = 1.95


def _net(dtype=torch.float64, bn=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        layers = [nn.Conv2d(1, 4, 3, padding=1)]
        if bn:
            layers.append(nn.BatchNorm2d(4))
        layers += [nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 12), nn.ReLU(),
                   nn.Linear(12, 5)]
        return nn.Sequential(*layers).to(dtype)


def _batch(n=16, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 1, 6, 6, generator=g, dtype=dtype),
            torch.randint(0, 5, (n,), generator=g))


def test_gaussian_samples_ks_weight_and_bias():
    """Attached Gaussian noise: (Δw - μw)/(σ·max|w|) and (Δb - μb)/(σ·max|b|) are N(0, 1).

    Expected: KS distance below 1.95/sqrt(n) (significance 0.001) for both tensors, with
    σ = 0.2, μ = 0.1, float64 weights; the draws stay float64.
    """
    lin = nn.Linear(300, 200).double()
    w0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    attach_noise(lin, GaussianNoise(0.2, shift=0.1), generator=torch.Generator().manual_seed(3))
    for cur, ref in ((lin.weight, w0), (lin.bias, b0)):
        assert cur.dtype == torch.float64
        z = ((cur.detach() - ref) - 0.1 * ref) / (0.2 * ref.abs().max())
        d = stats.kstest(z.flatten().numpy(), "norm").statistic
        assert d < KS_C / math.sqrt(z.numel()), d


def test_hasgd_draws_ks_and_antithetic_pairs():
    """HASGD.draw_perturbations: L=6 antithetic draws; each pair sums to exactly 2μw.

    Expected: Δ[2k] + Δ[2k+1] == 2·μ·w to rounding (1e-12 absolute), and the first
    member of each pair, standardised, passes the KS test against N(0, 1).
    """
    net = _net(bn=False)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    h = HASGD(net, opt, GaussianNoise(0.3, shift=-0.05), samples=6, antithetic=True,
              generator=torch.Generator().manual_seed(0))
    d = h.draw_perturbations()
    base = h.base_tensors()
    zs = []
    for n, w in base.items():
        assert d[n].shape == (6, *w.shape)
        pair = d[n][0::2] + d[n][1::2]
        torch.testing.assert_close(pair, (2 * -0.05 * w.detach()).expand_as(pair),
                                   rtol=0, atol=1e-12)
        zs.append(((d[n][0::2] + 0.05 * w.detach()) / (0.3 * w.detach().abs().max())).flatten())
    z = torch.cat(zs).numpy()
    assert stats.kstest(z, "norm").statistic < KS_C / math.sqrt(z.size)


def test_quantile_noise_reproduces_gaussian_table():
    """QuantileNoise built from N(m(u), s²) quantiles on 199 levels samples that normal law.

    Table: rows u in {-1, 0, 1}, mean m(u) = 0.1·u, s = 0.05 (relative to max|w|).
    Expected: for weights at u = ±1 and 0, (Δw/max|w| - m)/s passes KS vs N(0, 1) at
    1.95/sqrt(n) + 0.01 (the table's piecewise-linear error), and scale=2 doubles s.
    """
    levels = np.linspace(0.005, 0.995, 199)
    grid = np.array([-1.0, 0.0, 1.0])
    q = 0.1 * grid[:, None] + 0.05 * stats.norm.ppf(levels)[None, :]
    noise = QuantileNoise(grid, levels, q, mean=0.1 * grid)
    w = torch.tensor([-1.0, 0.0, 1.0]).repeat(20000)
    for scale, s in ((1.0, 0.05), (2.0, 0.10)):
        z = torch.randn(w.shape, generator=torch.Generator().manual_seed(5), dtype=w.dtype)
        d = noise.scaled(scale).perturbation(w, z)
        zz = ((d - 0.1 * w) / s).numpy()
        # the table holds Q constant outside [0.005, 0.995]: compare inside that band
        lo, hi = stats.norm.ppf(0.005), stats.norm.ppf(0.995)
        zi = zz[(zz > lo) & (zz < hi)]
        ref = stats.truncnorm(lo, hi)
        assert stats.kstest(zi, ref.cdf).statistic < KS_C / math.sqrt(zi.size) + 0.01


def test_attach_detach_restores_model():
    """attach_noise then detach_noise gives back the same parameters and state-dict keys.

    Expected: keys identical, every tensor bit-equal, outputs bit-equal; while attached
    with σ = 0 the output equals the clean output exactly; resample changes weights by
    a nonzero amount for σ = 0.1.
    """
    net = _net(bn=True)
    net.eval()
    x, _ = _batch()
    ref = copy.deepcopy(net.state_dict())
    y0 = net(x)
    g = torch.Generator().manual_seed(0)
    attach_noise(net, GaussianNoise(0.0), generator=g)
    assert torch.equal(net(x), y0)
    detach_noise(net)
    attach_noise(net, GaussianNoise(0.1), generator=g)
    assert resample_noise(net) == 6  # 3 layers × (weight, bias)
    assert not torch.equal(net[0].weight, ref["0.weight"])
    detach_noise(net)
    sd = net.state_dict()
    assert list(sd) == list(ref)
    for k in ref:
        assert torch.equal(sd[k], ref[k]), k
    assert torch.equal(net(x), y0)


def test_sigma0_L1_takes_exactly_the_base_optimizer_step():
    """HA-SGD with σ = 0, L = 1 and Adam: three steps equal plain Adam steps bit for bit."""
    a = _net(dtype=torch.float32)
    b = copy.deepcopy(a)
    oa = torch.optim.Adam(a.parameters(), lr=1e-2)
    ob = torch.optim.Adam(b.parameters(), lr=1e-2)
    h = HASGD(b, ob, GaussianNoise(0.0), samples=1, generator=torch.Generator().manual_seed(0))
    for s in range(3):
        x, y = _batch(dtype=torch.float32, seed=s)
        oa.zero_grad()
        nn.functional.cross_entropy(a(x), y).backward()
        oa.step()
        h.step(x, y)
    for (n, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), n


@pytest.mark.parametrize("mode", ["vmap", "parallel", "sequential"])
@pytest.mark.parametrize("antithetic", [False, True])
def test_averaged_gradient_is_mean_of_per_sample_gradients(mode, antithetic):
    """For L = 4 the HA-SGD gradient equals (1/L)·Σ_ℓ ∇J(w + Δω_ℓ), computed one by one.

    Reference: for each drawn Δω_ℓ, copy the model, add Δω_ℓ to its weights in place
    and backpropagate the loss (train mode, BatchNorm on batch statistics).
    Expected: agreement to rtol 1e-6 (float64) for every parameter, BatchNorm's affine
    parameters included; BatchNorm running means equal the mean of the per-pass ones.
    """
    net = _net(bn=True)
    x, y = _batch()
    h = HASGD(net, torch.optim.SGD(net.parameters(), lr=0.1), GaussianNoise(0.2, shift=0.02),
              samples=4, antithetic=antithetic, mode=mode,
              generator=torch.Generator().manual_seed(7))
    deltas = h.draw_perturbations()
    start = copy.deepcopy(net)
    grads, rmeans = [], []
    for l in range(4):
        m = copy.deepcopy(start)
        with torch.no_grad():
            for n, p in m.named_parameters():
                if n in deltas:
                    p += deltas[n][l]
        m.zero_grad()
        nn.functional.cross_entropy(m(x), y).backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
        rmeans.append(m[1].running_mean.clone())
    net.zero_grad()
    h.gradient(x, y, perturbations=deltas)
    for n, p in net.named_parameters():
        ref = torch.stack([g[n] for g in grads]).mean(0)
        torch.testing.assert_close(p.grad, ref, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(net[1].running_mean, torch.stack(rmeans).mean(0),
                               rtol=1e-12, atol=1e-14)
    assert int(net[1].num_batches_tracked) == 1


def test_antithetic_pair_is_exact_for_quadratic_loss():
    """Linear model + MSE: the loss is quadratic in w, so its gradient is affine in Δω.

    Expected: an antithetic pair (L = 2, zero-mean noise) gives the clean gradient to
    1e-10 relative; two independent draws (L = 2) differ from it by > 1e-3 relative.
    """
    lin = nn.Linear(8, 3).double()
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = torch.randn(32, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    lin.zero_grad()
    nn.functional.mse_loss(lin(x), t).backward()
    clean = lin.weight.grad.clone()
    for anti, close in ((True, True), (False, False)):
        h = HASGD(lin, torch.optim.SGD(lin.parameters(), lr=0.1), GaussianNoise(0.3),
                  samples=2, antithetic=anti, loss_fn=nn.functional.mse_loss,
                  generator=torch.Generator().manual_seed(2))
        lin.zero_grad()
        h.gradient(x, t)
        rel = float((lin.weight.grad - clean).norm() / clean.norm())
        assert (rel < 1e-10) if close else (rel > 1e-3), rel


def test_no_gradient_through_noise_scale():
    """Δω is a constant: its tensors do not require grad even when w does."""
    lin = nn.Linear(5, 4)
    d = GaussianNoise(0.5, shift=0.1).perturbation(lin.weight, torch.randn(3, 4, 5))
    assert not d.requires_grad and d.shape == (3, 4, 5)


def test_straight_through_backward_is_exactly_the_clip_mask():
    """quantize_ste: backward returns grad·1[|y| <= r] exactly; forward on the 2^B grid.

    Expected: y.grad == g·mask bit for bit (r = 1.5, B = 3, values inside and outside);
    forward values lie on -r + k·2r/7, within half a step of clip(y) inside the range.
    """
    g = torch.Generator().manual_seed(0)
    y = (torch.randn(1000, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    gout = torch.randn(1000, generator=g, dtype=torch.float64)
    q = quantize_ste(y, bits=3, out_range=1.5)
    (q * gout).sum().backward()
    mask = (y.detach().abs() <= 1.5).to(torch.float64)
    assert 0 < int(mask.sum()) < 1000
    assert torch.equal(y.grad, gout * mask)
    step = 3.0 / 7
    k = (q.detach() + 1.5) / step
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-9)
    assert float((q.detach() - y.detach().clamp(-1.5, 1.5)).abs().max()) <= step / 2 + 1e-12


def test_adc_hooks_quantize_every_layer_output():
    """attach_adc with 2 bits and range 1: a Linear's outputs take only the values ±1, ±1/3."""
    lin = nn.Linear(6, 50)
    attach_adc(lin, bits=2, ranges=1.0)
    out = lin(torch.randn(20, 6))
    vals = torch.unique(out.detach())
    grid = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    assert float((vals[:, None] - grid[None, :]).abs().min(1).values.max()) < 1e-6
    detach_adc(lin)
    assert torch.unique(lin(torch.randn(20, 6)).detach()).numel() > 4


@pytest.mark.parametrize("bad", [
    lambda: GaussianNoise(-0.1),
    lambda: GaussianNoise(float("nan")),
    lambda: HASGD(_net(), None, GaussianNoise(0.1), samples=-1, generator=torch.Generator()),
    lambda: HASGD(_net(), None, GaussianNoise(0.1), samples=3, antithetic=True,
                  generator=torch.Generator()),
    lambda: HASGD(_net(), None, GaussianNoise(0.1), samples=2, generator=torch.Generator(),
                  mode="fast"),
    lambda: HASGD(_net(), None, None, samples=2, generator=torch.Generator()),
    lambda: attach_noise(nn.Sequential(nn.ReLU()), GaussianNoise(0.1),
                         generator=torch.Generator()),
    lambda: noisy_tensors(_net(), layers=["1"]),  # BatchNorm2d cannot carry noise
    lambda: attach_noise(_net(), "gaussian", generator=torch.Generator()),
    lambda: quantize_ste(torch.zeros(3), bits=0, out_range=1.0),
    lambda: quantize_ste(torch.zeros(3), bits=4, out_range=-1.0),
    lambda: QuantileNoise([0.0, 1.0], [0.2, 0.8], [[0.0, -1.0], [0.0, 1.0]]),
])
def test_bad_input_raises_config_error(bad):
    """Negative σ, L < 0, odd L with antithetic pairs, unknown mode, no noise model, a model
    without noisy layers, a BatchNorm named as a noisy layer, a non-NoiseModel, bad ADC
    bits/range, a non-monotone quantile table -> ConfigError (a ValueError)."""
    with pytest.raises(ConfigError):
        bad()


def test_attach_twice_is_refused():
    """Attaching noise to an already-noisy model raises ConfigError naming the layer."""
    net = _net()
    attach_noise(net, GaussianNoise(0.1), generator=torch.Generator())
    with pytest.raises(ConfigError, match="already parametrized"):
        attach_noise(net, GaussianNoise(0.1), generator=torch.Generator())


def test_training_reduces_loss_and_uses_functional_weights():
    """HA-SGD (L = 3, σ = 0.1) on a separable toy problem: the loss after 60 steps is below
    half the first loss, and functional_call with the clean weights reproduces model(x)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    h = HASGD(net, torch.optim.Adam(net.parameters(), lr=1e-2), GaussianNoise(0.1), samples=3,
              generator=g)
    first = h.step(x, y)
    for _ in range(59):
        last = h.step(x, y)
    assert last < 0.5 * first
    params = dict(net.named_parameters())
    assert torch.equal(functional_call(net, params, (x,)), net(x))


@pytest.mark.parametrize("mode", ["sequential", "parallel", "vmap"])
def test_attached_noise_is_bypassed_during_hasgd(mode):
    """HA-SGD draws its own perturbations: with noise attached to the model (σ = 0.5) the
    gradient equals that of the same model without it (same draws), to rtol 1e-12, and
    the attached noise is active again afterwards."""
    a = _net(bn=False)
    b = copy.deepcopy(a)
    attach_noise(b, GaussianNoise(0.5), generator=torch.Generator().manual_seed(9))
    x, y = _batch()
    grads = []
    for m in (a, b):
        h = HASGD(m, torch.optim.SGD(m.parameters(), lr=0.1), GaussianNoise(0.1), samples=3,
                  mode=mode, generator=torch.Generator().manual_seed(4))
        m.zero_grad()
        h.gradient(x, y)
        grads.append([p.grad.clone() for p in m.parameters()])
    for ga, gb in zip(*grads, strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-12, atol=0)
    assert not torch.equal(b(x), a(x))


def test_cuda_graph_refuses_cpu_tensors():
    net = _net(dtype=torch.float32)
    h = HASGD(net, torch.optim.SGD(net.parameters(), lr=0.1), GaussianNoise(0.1), samples=2,
              generator=torch.Generator().manual_seed(0))
    x, y = _batch(dtype=torch.float32)
    with pytest.raises(ConfigError, match="CUDA"):
        h.cuda_graph(x, y)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["auto", "sequential", "parallel", "vmap"])
def test_cuda_graph_step_equals_eager_steps(mode):
    """A step replayed from a CUDA graph does what the eager step does.

    From the same generator state (a registered generator advances on each replay as
    it does eagerly), five replayed HA-SGD steps with L = 4,
    SGD with momentum and BatchNorm leave the same weights, running statistics and
    momentum as five eager steps (float64, rtol 1e-9), and capturing does not train.
    """
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    dev = torch.device("cuda")
    a = _net(dtype=torch.float64).to(dev)
    b = copy.deepcopy(a)
    oa = torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9)
    ob = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    ga = torch.Generator(device=dev).manual_seed(3)
    gb = torch.Generator(device=dev).manual_seed(3)
    ha = HASGD(a, oa, GaussianNoise(0.2), samples=4, generator=ga, mode=mode)
    hb = HASGD(b, ob, GaussianNoise(0.2), samples=4, generator=gb, mode=mode)
    x, y = (t.to(dev) for t in _batch(dtype=torch.float64))
    before = copy.deepcopy(a.state_dict())
    step = ha.cuda_graph(x, y, warmup=2)
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not oa.state or all(float(s["momentum_buffer"].abs().max()) == 0
                               for s in oa.state.values())
    for s in range(5):
        xs, ys = (t.to(dev) for t in _batch(dtype=torch.float64, seed=10 + s))
        deltas = hb.draw_perturbations()  # what the graph draws from the same state
        ob.zero_grad(set_to_none=True)
        lb = hb.gradient(xs, ys, perturbations=deltas)
        ob.step()
        la = step(xs, ys)
        torch.testing.assert_close(la, lb, rtol=1e-9, atol=0)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, rtol=1e-9, atol=1e-12, msg=k)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(oa.state[pa]["momentum_buffer"],
                                   ob.state[pb]["momentum_buffer"], rtol=1e-9, atol=1e-12)
