"""In-situ optimizers: Analog SGD on a symmetric constant-step device in the mean field is
digital SGD; Tiki-Taka's transfer arithmetic; the least-squares problem of Wu et al. 2024
(Tiki-Taka v2 reaches the noise floor, Analog SGD stalls at an error that grows with
||W*||_inf / tau); bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from xbarlab.devices.pulsed import ConstantStep, PulsedDevice, SoftBounds, WeightDomain
from xbarlab.errors import ConfigError
from xbarlab.nn.insitu import AnalogSGD, PulseSettings, TikiTaka, make_optimizer

MEAN_FIELD = PulseSettings(mode="mean_field")


def _net():
    net = nn.Sequential(nn.Linear(5, 4), nn.Sigmoid(), nn.Linear(4, 3)).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5)
    return net


def _domain(rule=None, tau=1.0):
    return WeightDomain(PulsedDevice(rule or ConstantStep(1e-9, 1e-9), 0.0, 1e-5), tau)


def test_analog_sgd_mean_field_constant_step_is_sgd():
    """Symmetric constant step: F = 1, G = 0, so the mean-field Analog SGD step of every
    weight and bias equals torch.optim.SGD's on a copy of the network (inside the range)."""
    net = _net()
    ref = copy.deepcopy(net)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=g)
    opt = AnalogSGD(net, _domain(tau=4.0), lr=0.3, pulses=MEAN_FIELD, generator=g)
    sgd = torch.optim.SGD(ref.parameters(), lr=0.3)
    for model, o in ((net, opt), (ref, sgd)):
        for _ in range(3):
            o.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            o.step()
    for a, b in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_tiki_taka_transfer_arithmetic():
    """One step, symmetric constant step (mean field), one column per transfer, beta = 0.5:
    A = -lr d^T x; H[:, 0] = beta A[:, 0] - k dw_min and C[:, 0] = C0 + k dw_min with k =
    trunc(beta A[:, 0] / dw_min); the other columns of H and C unchanged."""
    net = nn.Linear(3, 2, bias=False).double()
    with torch.no_grad():
        net.weight.zero_()
    g = torch.Generator().manual_seed(2)
    dom = _domain(tau=1.0)
    opt = TikiTaka(net, dom, lr=0.5, pulses=MEAN_FIELD, generator=g, transfer_lr=0.5)
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    target = torch.tensor([[0.3, -0.4]], dtype=torch.float64)
    loss = 0.5 * ((net(x) - target) ** 2).sum()
    loss.backward()
    opt.step()
    d = -target  # dL/dy at W = 0
    a = -0.5 * d.T @ x
    torch.testing.assert_close(opt.a[""], a, rtol=1e-12, atol=1e-15)
    k = torch.trunc(0.5 * a[:, 0] / dom.dw_min)
    torch.testing.assert_close(net.weight[:, 0], k * dom.dw_min, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(opt.buffer[""][:, 0], 0.5 * a[:, 0] - k * dom.dw_min,
                               rtol=1e-9, atol=1e-15)
    assert float(net.weight[:, 1:].abs().sum()) == 0.0
    assert float(opt.buffer[""][:, 1:].abs().sum()) == 0.0


def _least_squares(algorithm, tau, mode, *, steps=2000, seed=0, **tt):
    """min_W E ||W x - y||^2 / 2, x ~ N(0, I_8), y = W* x + 0.1 n (Wu et al. 2024's linear
    model, ||W*||_inf = 0.5); batch 1, lr 0.05; mean squared error ||W - W*||^2 over the last
    500 steps."""
    g = torch.Generator().manual_seed(seed)
    w_star = torch.rand(4, 8, generator=g) * 2 - 1
    w_star *= 0.5 / w_star.abs().max()
    model = nn.Linear(8, 4, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    dev = PulsedDevice(SoftBounds(1e-8, 1e-8), 0.0, 1e-5, c2c=0.3 if mode == "stochastic"
                       else 0.0)
    opt = make_optimizer(algorithm, model, lr=0.05, domain=WeightDomain(dev, tau),
                         pulses=PulseSettings(mode=mode), generator=g, **tt)
    xs = torch.randn(steps, 1, 8, generator=g)
    ys = xs @ w_star.T + 0.1 * torch.randn(steps, 1, 4, generator=g)
    err = 0.0
    for t in range(steps):
        opt.zero_grad()
        (0.5 * ((model(xs[t]) - ys[t]) ** 2).sum()).backward()
        opt.step()
        if t >= steps - 500:
            err += float(((model.weight.detach() - w_star) ** 2).sum()) / 500
    return err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["mean_field", "stochastic"])
def test_least_squares_tiki_taka_reaches_noise_floor(mode):
    """Wu et al. 2024 on the asymmetric linear device (soft bounds, tau in {0.6, 0.8, 1.0}):
    Analog SGD's asymptotic error grows as tau falls (||W*||_inf / tau grows) and is > 3 x
    digital SGD's noise floor at tau = 0.6; Tiki-Taka v2 (beta = 0.01) stays at or below
    the digital noise floor (x 1.5) at every tau. About 20 s."""
    floor = _least_squares("digital", 1.0, mode)
    sgd = [_least_squares("analog-sgd", tau, mode) for tau in (0.6, 0.8, 1.0)]
    tt = [_least_squares("tiki-taka", tau, mode, transfer_lr=0.01) for tau in (0.6, 0.8, 1.0)]
    assert sgd[0] > sgd[1] > sgd[2]
    assert sgd[0] > 3 * floor
    assert all(e <= 1.5 * floor for e in tt), (floor, sgd, tt)


def test_bad_input():
    """Bad arguments raise one ConfigError naming the value."""
    g = torch.Generator()
    net = nn.Sequential(nn.Conv2d(1, 1, 3))
    with pytest.raises(ConfigError, match=r"no nn.Linear layer"):
        AnalogSGD(net, _domain(), lr=0.1, generator=g)
    with pytest.raises(ConfigError, match=r"lr must be > 0, got -1"):
        AnalogSGD(nn.Linear(2, 2), _domain(), lr=-1, generator=g)
    with pytest.raises(ConfigError, match=r"bit_length must be an integer >= 1, got 0"):
        PulseSettings(bit_length=0)
    with pytest.raises(ConfigError, match=r"max_pulses must be an integer >= 1, got 0"):
        TikiTaka(nn.Linear(2, 2), _domain(), lr=0.1, generator=g, max_pulses=0)
    opt = AnalogSGD(nn.Linear(2, 2), _domain(), lr=0.1, generator=g)
    with pytest.raises(ConfigError, match=r"needs a forward and loss.backward"):
        opt.step()
    with pytest.raises(ConfigError, match=r"algorithm='adam' is not one of"):
        make_optimizer("adam", nn.Linear(2, 2), lr=0.1)


def _graph_case(device, noise=0.0):
    """(model, AnalogSGD, batches) of a small sigmoid network on ``device``."""
    g = torch.Generator().manual_seed(3)
    net = nn.Sequential(nn.Linear(6, 5), nn.Sigmoid(), nn.Linear(5, 3))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.4 * (torch.rand(p.shape, generator=g) - 0.5))
    net = net.to(device)
    dom = WeightDomain(PulsedDevice(SoftBounds(2e-7, 2e-7), 0.0, 1e-5, c2c=noise), 1.0)
    gen = torch.Generator(device=device).manual_seed(5)
    opt = AnalogSGD(net, dom, lr=0.1, generator=gen)
    x = torch.rand((8, 4, 6), generator=g).to(device)
    y = torch.randint(0, 3, (8, 4), generator=g).to(device)
    return net, opt, x, y


def _eager_steps(net, opt, x, y):
    for xb, yb in zip(x, y, strict=True):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()


def test_cuda_graph_refuses_a_cpu_batch_and_a_bad_warmup():
    """AnalogSGD.cuda_graph needs a callable loss, the batch on a CUDA device and
    warmup >= 1."""
    net, opt, x, y = _graph_case("cpu")
    with pytest.raises(ConfigError, match="CUDA device"):
        opt.cuda_graph(x[0], y[0], loss_fn=nn.functional.cross_entropy)
    with pytest.raises(ConfigError, match="loss_fn must be callable"):
        opt.cuda_graph(x[0], y[0], loss_fn="cross_entropy")
    if torch.cuda.is_available():
        net, opt, x, y = _graph_case("cuda")
        with pytest.raises(ConfigError, match="warmup"):
            opt.cuda_graph(x[0], y[0], loss_fn=nn.functional.cross_entropy, warmup=0)


@pytest.mark.gpu
def test_cuda_graph_steps_equal_eager_steps():
    """On CUDA, eight steps replayed from the captured graph give bit for bit the weights
    and pulse counts of eight eager steps from the same seed (a device without step
    noise, so that the eager update's sparse path and the graph's dense path draw the
    same numbers), the warm-up leaves no trace, and a NaN batch is remembered."""
    net, opt, x, y = _graph_case("cuda")
    _eager_steps(net, opt, x, y)
    ref = [p.detach().clone() for p in net.parameters()], opt.pulse_counts()
    net, opt, x, y = _graph_case("cuda")
    before = [p.detach().clone() for p in net.parameters()]
    step = opt.cuda_graph(x[0], y[0], loss_fn=nn.functional.cross_entropy)
    for a, b in zip(before, net.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sum(opt.pulse_counts().values()) == 0
    for xb, yb in zip(x, y, strict=True):
        step(xb, yb)
    torch.cuda.synchronize()
    for a, b in zip(ref[0], net.parameters(), strict=True):
        assert torch.equal(a, b)
    assert opt.pulse_counts() == ref[1] and opt.finite_inputs()
    step(torch.full_like(x[0], float("nan")), y[0])
    assert not opt.finite_inputs()


@pytest.mark.gpu
def test_cuda_graph_noisy_steps_follow_the_eager_statistics():
    """With cycle-to-cycle noise the graph's dense update draws its noise for every cell:
    over 64 independent networks the mean and spread of the weights after eight graphed
    steps match the eager steps' (two-sample KS on the first layer's weights, p > 1e-3)."""
    from scipy import stats

    outs = {"eager": [], "graph": []}
    for seed in range(64):
        for kind in outs:
            net, opt, x, y = _graph_case("cuda", noise=0.3)
            opt.generator.manual_seed(100 + seed)
            if kind == "eager":
                _eager_steps(net, opt, x, y)
            else:
                step = opt.cuda_graph(x[0], y[0], loss_fn=nn.functional.cross_entropy)
                for xb, yb in zip(x, y, strict=True):
                    step(xb, yb)
            outs[kind].append(net[0].weight.detach().flatten().cpu())
    a, b = torch.stack(outs["eager"]), torch.stack(outs["graph"])
    assert stats.ks_2samp((a - a.mean(0)).flatten(), (b - a.mean(0)).flatten()).pvalue > 1e-3
