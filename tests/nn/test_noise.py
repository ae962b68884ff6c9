"""Weight-noise models (Gaussian, offset, quantile tables) and their attachment to layers."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
from _toy import KS_C, _batch, _net
from scipy import stats
from torch import nn
from xbarlab.errors import ConfigError
from xbarlab.nn import (
    GaussianNoise,
    OffsetNoise,
    QuantileNoise,
    attach_noise,
    detach_noise,
    noisy_tensors,
    resample_noise,
)
from xbarlab.nn import noise as noise_module


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


def test_offset_noise_moments_and_antithetic_partner():
    """OffsetNoise: Δw = (μ + σ z)·max|w| per tensor. Truth: over 200,000 draws the mean of
    every entry is μ·max|w| and the std σ·max|w| (within 4 standard errors), the same for
    every weight whatever its value; -z mirrors the noise about the offset."""
    w = torch.tensor([[0.5, -2.0, 0.0], [1.0, 0.25, -0.75]], dtype=torch.float64)
    noise = OffsetNoise(0.05, 0.1)
    z = torch.randn((200_000, *w.shape), generator=torch.Generator().manual_seed(3),
                    dtype=torch.float64)
    d = noise.perturbation(w, z)
    peak = 2.0
    se = 0.05 * peak / 200_000 ** 0.5
    assert torch.all((d.mean(0) - 0.1 * peak).abs() < 4 * se)
    assert torch.all((d.std(0) / (0.05 * peak) - 1).abs() < 4 / (2 * 200_000) ** 0.5)
    assert torch.allclose(noise.perturbation(w, -z[:3]) + d[:3], torch.full_like(d[:3], 0.4))


def test_offset_noise_rejects_bad_values():
    with pytest.raises(ConfigError, match="sigma"):
        OffsetNoise(-0.1, 0.0)
    with pytest.raises(ConfigError, match="offset"):
        OffsetNoise(0.05, float("nan"))


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


def test_checkpoint_of_noisy_model_loads_into_clean_model_and_back():
    """A noise-attached model's state_dict is a clean model's, in both directions.

    Expected: the keys equal the clean model's (no ``parametrizations.*``), the tensors are
    the clean weights bit for bit, ``load_state_dict`` into a clean model of the same
    architecture succeeds (strict) with equal tensors, a clean state_dict loads into a
    noise-attached model (its clean weights replaced, noise still attached), and after
    detach_noise no hook is left behind.
    """
    net = _net(bn=True)
    ref = copy.deepcopy(net.state_dict())
    attach_noise(net, GaussianNoise(0.1), generator=torch.Generator().manual_seed(0))
    sd = net.state_dict()
    assert list(sd) == list(ref)
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    clean = _net(bn=True, seed=5)
    clean.load_state_dict(sd)
    assert all(torch.equal(v, ref[k]) for k, v in clean.state_dict().items())
    other = _net(bn=True, seed=7).state_dict()
    net.load_state_dict(other)
    assert torch.equal(net[0].parametrizations.weight.original, other["0.weight"])
    assert not torch.equal(net[0].weight, other["0.weight"])  # still noisy
    detach_noise(net)
    assert not any(m._state_dict_hooks or m._load_state_dict_pre_hooks for m in net.modules())


def test_torch_save_of_noisy_model_round_trips():
    """``torch.save(model)`` of a noise-attached model and ``torch.load`` give it back.

    Expected: the loaded model has the same outputs (same perturbation), its generator
    continues the saved one's stream (the next resample equals the original's), and
    detach_noise on it restores the clean outputs.
    """
    net = _net(bn=True).eval()
    x, _ = _batch()
    y_clean = net(x)
    attach_noise(net, GaussianNoise(0.1), generator=torch.Generator().manual_seed(0))
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)
    assert torch.equal(back(x), net(x))
    resample_noise(net)
    resample_noise(back)
    assert torch.equal(back(x), net(x))
    detach_noise(back)
    assert torch.equal(back(x), y_clean)


def test_generator_moves_with_the_weights(monkeypatch):
    """After the weights move to another device the next resample uses a new generator there.

    No second device here: the device comparison is made to report a move (the new
    generator is then created on the CPU). Expected: all
    layers that shared the generator share one new generator, seeded from the old one, so
    two identically seeded models draw identical perturbations; generator_on returns the
    generator itself when it already lives on the device.
    """
    g = torch.Generator().manual_seed(0)
    assert noise_module.generator_on(g, "cpu") is g
    assert noise_module.same_device("cpu", torch.device("cpu"))
    outs, gens = [], []
    for _ in range(2):
        net = _net(bn=False)
        old = torch.Generator().manual_seed(4)
        attach_noise(net, GaussianNoise(0.1), generator=old)
        with monkeypatch.context() as mp:
            mp.setattr(noise_module, "same_device", lambda a, b: False)
            resample_noise(net)
        ps = [p for m in net.modules() if hasattr(m, "parametrizations")
              for pl in m.parametrizations.values() for p in pl]
        gens.append({id(p.generator) for p in ps})
        assert len(gens[-1]) == 1 and old not in [p.generator for p in ps]
        outs.append([p.delta for p in ps])
    assert all(torch.equal(a, b) for a, b in zip(*outs, strict=True))


@pytest.mark.gpu
def test_generator_follows_model_cuda():
    """attach_noise on the CPU, then model.cuda(): resample_noise draws on the GPU."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    net = _net(bn=False, dtype=torch.float32)
    attach_noise(net, GaussianNoise(0.1), generator=torch.Generator().manual_seed(0))
    net.cuda()
    resample_noise(net)
    assert net[0].weight.is_cuda
    assert net[0].parametrizations.weight[0].generator.device.type == "cuda"


def test_no_gradient_through_noise_scale():
    """Δω is a constant: its tensors do not require grad even when w does."""
    lin = nn.Linear(5, 4)
    d = GaussianNoise(0.5, shift=0.1).perturbation(lin.weight, torch.randn(3, 4, 5))
    assert not d.requires_grad and d.shape == (3, 4, 5)


def test_attach_twice_is_refused():
    """Attaching noise to an already-noisy model raises ConfigError naming the layer."""
    net = _net()
    attach_noise(net, GaussianNoise(0.1), generator=torch.Generator())
    with pytest.raises(ConfigError, match="already parametrized"):
        attach_noise(net, GaussianNoise(0.1), generator=torch.Generator())


def test_generator_is_checked_against_every_tensor():
    """attach_noise refuses a generator on another device than ANY noisy tensor, not only the
    first: a model whose first layer is on the CPU and whose second is on the meta device
    raises ConfigError naming the meta device (the first tensor alone would pass)."""
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, device="meta"))
    with pytest.raises(ConfigError, match="meta"):
        attach_noise(net, GaussianNoise(0.1), generator=torch.Generator())
    assert not any(hasattr(m, "parametrizations") for m in net)


@pytest.mark.parametrize("bad", [
    lambda: GaussianNoise(-0.1),
    lambda: GaussianNoise(float("nan")),
    lambda: attach_noise(nn.Sequential(nn.ReLU()), GaussianNoise(0.1),
                         generator=torch.Generator()),
    lambda: noisy_tensors(_net(), layers=["1"]),  # BatchNorm2d cannot carry noise
    lambda: attach_noise(_net(), "gaussian", generator=torch.Generator()),
    lambda: QuantileNoise([0.0, 1.0], [0.2, 0.8], [[0.0, -1.0], [0.0, 1.0]]),
])
def test_bad_input_raises_config_error(bad):
    """Negative σ, a model without noisy layers, a BatchNorm named as a noisy layer, a
    non-NoiseModel, a non-monotone quantile table -> ConfigError (a ValueError)."""
    with pytest.raises(ConfigError):
        bad()
