"""Hessian-Aware SGD: perturbation draws, averaged gradients, modes, CUDA graphs."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from _toy import KS_C, _batch, _net
from scipy import stats
from torch import nn
from torch.func import functional_call
from xbarlab.errors import ConfigError
from xbarlab.nn import (
    HASGD,
    GaussianNoise,
    attach_noise,
)


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


@pytest.mark.parametrize("bad", [
    lambda: HASGD(_net(), None, GaussianNoise(0.1), samples=-1, generator=torch.Generator()),
    lambda: HASGD(_net(), None, GaussianNoise(0.1), samples=3, antithetic=True,
                  generator=torch.Generator()),
    lambda: HASGD(_net(), None, GaussianNoise(0.1), samples=2, generator=torch.Generator(),
                  mode="fast"),
    lambda: HASGD(_net(), None, None, samples=2, generator=torch.Generator()),
])
def test_bad_input_raises_config_error(bad):
    """L < 0, odd L with antithetic pairs, unknown mode, no noise model -> ConfigError."""
    with pytest.raises(ConfigError):
        bad()


def _mlp(seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 4))


@pytest.mark.parametrize("samples,antithetic", [(2, False), (2, True), (4, False), (4, True)])
def test_interrupted_and_resumed_run_equals_uninterrupted_run(samples, antithetic):
    """HA-SGD stopped after k = 3 steps and resumed in new objects equals the straight run.

    A small MLP with Adam, L = 2 and 4, antithetic on and off, 7 steps in all. The resumed
    run builds a new model, optimizer and HASGD (fresh generator with another seed),
    loads the model's state_dict and HASGD.state_dict() (through torch.save/torch.load)
    and takes the remaining 4 steps. Expected: every parameter and the optimizer state
    bit-equal (torch.equal) to the uninterrupted run's, and the step count 7.
    """
    g = torch.Generator().manual_seed(11)
    batches = [(torch.randn(8, 6, generator=g), torch.randint(0, 4, (8,), generator=g))
               for _ in range(7)]

    def make(seed):
        net = _mlp(0)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        return net, HASGD(net, opt, GaussianNoise(0.2), samples=samples, antithetic=antithetic,
                          generator=torch.Generator().manual_seed(seed))

    ref, h_ref = make(5)
    for x, y in batches:
        h_ref.step(x, y)
    first, h_first = make(5)
    for x, y in batches[:3]:
        h_first.step(x, y)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "hasgd": h_first.state_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    again, h_again = make(99)
    again.load_state_dict(ck["model"])
    h_again.load_state_dict(ck["hasgd"])
    for x, y in batches[3:]:
        h_again.step(x, y)
    assert h_again.steps == 7
    for (k, a), b in zip(ref.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    for pa, pb in zip(ref.parameters(), again.parameters(), strict=True):
        for key, va in h_ref.optimizer.state[pa].items():
            assert torch.equal(va, h_again.optimizer.state[pb][key]), key


def test_hasgd_state_rejects_incomplete_state():
    """load_state_dict of a dict without the optimizer/generator/steps raises ConfigError."""
    net = _mlp(0)
    h = HASGD(net, torch.optim.SGD(net.parameters(), lr=0.1), GaussianNoise(0.1), samples=2,
              generator=torch.Generator())
    with pytest.raises(ConfigError, match="lacks"):
        h.load_state_dict({"optimizer": {}})
