"""Pulsed array updates in torch against closed forms: E[Delta w] = -lr d^T x of the
stochastic trains within sampling error, binomial coincidence counts, the mean-field
update of Wu et al. 2024, deterministic pulse counts, the step noise of n pulses."""

from __future__ import annotations

import math

import pytest
import torch
from xbarlab.devices.pulsed import ConstantStep, PulsedDevice, SoftBounds, StepTable, WeightDomain
from xbarlab.errors import ConfigError
from xbarlab.nn.pulsed_update import PulsedArray, UpdateMode, coincidence_counts

R = 1e-5


def _domain(rule=None, tau=1.0, **kw):
    return WeightDomain(PulsedDevice(rule or SoftBounds(1e-8, 1e-8), 0.0, R, **kw), tau)


def _replicas(x, d, reps):
    """x (B, n_in), d (B, n_out) tiled ``reps`` times: the diagonal blocks of the big array
    are independent replicas of the small update (their bits are disjoint)."""
    return x.repeat(1, reps), d.repeat(1, reps)


def _diag_blocks(w, n_out, n_in, reps):
    return torch.stack([w[r * n_out:(r + 1) * n_out, r * n_in:(r + 1) * n_in]
                        for r in range(reps)])


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_stochastic_trains_mean_update(engine):
    """At w = 0 on a symmetric soft-bounds device each pulse moves dw_min, so E[Delta w] =
    -lr sum_b d_b x_b^T exactly (probabilities below 1); 200 independent replicas agree with
    it within 4.5 standard errors in every cell, with and without update management, with
    the Numba kernel and with torch's operations."""
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([[0.5, -0.2, 0.1, 0.0], [0.3, 0.3, -0.4, 0.2]], dtype=torch.float64)
    d = torch.tensor([[0.1, -0.3, 0.05], [0.2, 0.0, -0.1]], dtype=torch.float64)
    reps, lr = 200, 0.05
    truth = -lr * d.T @ x
    for um in (True, False):
        arr = PulsedArray(_domain(), (3 * reps, 4 * reps), generator=g, dtype=torch.float64)
        w = torch.zeros(3 * reps, 4 * reps, dtype=torch.float64)
        xr, dr = _replicas(x, d, reps)
        arr.update(w, xr, dr, lr=lr, mode=UpdateMode.STOCHASTIC, bit_length=31,
                   update_management=um, generator=g, engine=engine)
        blocks = _diag_blocks(w, 3, 4, reps)
        se = blocks.std(dim=0) / math.sqrt(reps)
        assert torch.all((blocks.mean(dim=0) - truth).abs() <= 4.5 * se + 1e-12)


def test_coincidence_counts_binomial():
    """One sample, BL = 31: each cell's count is Binomial(BL, p_j q_i); the mean and the
    variance BL r (1 - r) over 60,000 cells of equal r = 0.2 agree within 4 standard errors."""
    g = torch.Generator().manual_seed(1)
    n = 250
    x, d = torch.ones(1, n), -torch.ones(1, n)
    px, pd = torch.full((1, n), 0.5), torch.full((1, n), 0.4)
    up, down = coincidence_counts(x, d, px, pd, 31, g)
    assert float(down.abs().sum()) == 0.0  # -sign(d x) = +1: every pulse is up
    r, m = 0.2, up.flatten().double()
    # cells share bit trains; independent cells: those of distinct rows and columns
    diag = up.diagonal().double()
    assert abs(float(diag.mean()) - 31 * r) < 4 * math.sqrt(31 * r * (1 - r) / n)
    assert abs(float(m.mean()) - 31 * r) < 0.1
    assert abs(float(diag.var()) / (31 * r * (1 - r)) - 1) < 4 * math.sqrt(2 / n)


def test_mean_field_is_wu_update():
    """MEAN_FIELD on the asymmetric linear device: Delta w = -lr (d^T x) F(w) - lr (|d|^T
    |x|) G(w) with F = 1 and G = w / tau (q_up = 1 - w/tau, q_down = 1 + w/tau)."""
    g = torch.Generator().manual_seed(2)
    tau, lr = 0.6, 0.1
    w0 = (torch.rand(5, 6, generator=g, dtype=torch.float64) - 0.5)
    x = torch.randn(3, 6, generator=g, dtype=torch.float64)
    d = torch.randn(3, 5, generator=g, dtype=torch.float64)
    arr = PulsedArray(_domain(tau=tau), (5, 6), generator=g, dtype=torch.float64)
    w = w0.clone()
    arr.update(w, x, d, lr=lr, mode="mean_field")
    truth = w0 - lr * (d.T @ x) - lr * (d.abs().T @ x.abs()) * (w0 / tau)
    torch.testing.assert_close(w, truth.clamp(-tau, tau), rtol=1e-9, atol=1e-12)


def test_pulse_count_constant_step():
    """PULSE_COUNT on a symmetric constant-step device: Delta w = dw_min round(-lr d^T x /
    dw_min) exactly."""
    g = torch.Generator().manual_seed(3)
    dom = _domain(ConstantStep(1e-8, 1e-8))
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    d = torch.randn(4, 5, generator=g, dtype=torch.float64)
    arr = PulsedArray(dom, (5, 6), generator=g, dtype=torch.float64)
    w = torch.zeros(5, 6, dtype=torch.float64)
    arr.update(w, x, d, lr=0.01, mode="pulse_count")
    dw = dom.dw_min
    torch.testing.assert_close(w, dw * torch.round(-0.01 * (d.T @ x) / dw), rtol=0, atol=1e-15)


def test_step_noise_of_n_pulses():
    """n up pulses at w = 0 with c2c 0.3 and write noise s: Delta w has mean n mu and variance
    n ((0.3 mu)^2 + s^2) (mu = dw_min); 250,000 cells, 4 standard errors."""
    g = torch.Generator().manual_seed(4)
    dom = _domain(SoftBounds(1e-8, 1e-8), c2c=0.3, write_noise=2e-9)
    arr = PulsedArray(dom, (500, 500), generator=g, dtype=torch.float64)
    w = torch.zeros(500, 500, dtype=torch.float64)
    n = torch.full_like(w, 5.0)
    arr.apply_counts(w, n, torch.zeros_like(w), g)
    mu, s = dom.dw_min, 2e-9 / dom.scale
    var = 5 * ((0.3 * mu) ** 2 + s ** 2)
    assert abs(float(w.mean()) - 5 * mu) < 4 * math.sqrt(var / w.numel())
    assert abs(float(w.var()) / var - 1) < 4 * math.sqrt(2 / w.numel())


def test_table_steps_follow_the_device():
    """A step table's mean step in torch equals the device's expected step / scale at the
    table's grid (piecewise-linear interpolation of a 4,097-point table: within 1e-3 of the
    bin's step away from bin edges)."""
    tab = StepTable([0.0, 5e-6, 1e-5], [0.25, 0.75], [[1e-8, 3e-8], [2e-8, 2e-8]],
                    [[2e-8, 2e-8], [1e-8, 1e-8]])
    dom = WeightDomain(PulsedDevice(tab, 0.0, R), 1.0)
    arr = PulsedArray(dom, (1, 3), generator=torch.Generator(), dtype=torch.float64)
    w = torch.tensor([[-0.9, -0.2, 0.5]], dtype=torch.float64)
    up, down = arr.mean_steps(w)
    g = dom.to_conductance(w.numpy())
    torch.testing.assert_close(up, torch.as_tensor(dom.device.expected_step(g, 1) / dom.scale),
                               rtol=1e-3, atol=0)
    torch.testing.assert_close(down, torch.as_tensor(-dom.device.expected_step(g, -1)
                                                     / dom.scale), rtol=1e-3, atol=0)


def test_table_steps_at_the_bounds_in_float32():
    """A float32 array of a step table at and beyond its bounds: the steps are the table's
    end values (a weight at the upper bound once indexed past the table's last point)."""
    tab = StepTable([0.0, 5e-6, 1e-5], [0.25, 0.75], [[1e-8, 3e-8], [2e-8, 2e-8]],
                    [[2e-8, 2e-8], [1e-8, 1e-8]])
    dom = WeightDomain(PulsedDevice(tab, 0.0, R), 1.0)
    arr = PulsedArray(dom, (1, 4), generator=torch.Generator(), dtype=torch.float32)
    w = torch.tensor([[arr.w_min, arr.w_max, arr.w_max + 1.0, arr.w_min - 1.0]])
    up, down = arr.mean_steps(w)
    g = dom.to_conductance(torch.tensor([[arr.w_min, arr.w_max]], dtype=torch.float64).numpy())
    ends_up = torch.as_tensor(dom.device.expected_step(g, 1) / dom.scale, dtype=torch.float32)
    torch.testing.assert_close(up[:, :2], ends_up, rtol=1e-3, atol=0)
    torch.testing.assert_close(up[:, 2:], ends_up.flip(1), rtol=1e-3, atol=0)
    assert torch.isfinite(down).all()


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_same_seed_same_bits(engine):
    """Two updates from generators with one seed give identical weights, on one torch thread
    and on two."""
    from xbarlab.nn.train import torch_threads

    out = []
    for threads in (1, 2):
        g = torch.Generator().manual_seed(5)
        arr = PulsedArray(_domain(c2c=0.3, d2d=0.2), (7, 9), generator=g)
        w = torch.zeros(7, 9)
        with torch_threads(threads):
            arr.update(w, torch.randn(4, 9, generator=g), torch.randn(4, 7, generator=g),
                       lr=0.1, mode="stochastic", generator=g, engine=engine)
        out.append(w)
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("kw,match", [
    ({"lr": -0.1}, r"lr must be a positive finite number, got -0.1"),
    ({"bit_length": 0}, r"bit_length must be an integer >= 1, got 0"),
    ({"mode": "sometimes"}, r"mode='sometimes' is not one of"),
    ({"generator": None}, r"generator must be a torch.Generator, got NoneType"),
])
def test_bad_input(kw, match):
    """Bad arguments raise one ConfigError naming the value."""
    g = torch.Generator()
    arr = PulsedArray(_domain(), (2, 3), generator=g)
    args = {"lr": 0.1, "mode": "stochastic", "bit_length": 31, "generator": g, **kw}
    with pytest.raises(ConfigError, match=match):
        arr.update(torch.zeros(2, 3), torch.ones(1, 3), torch.ones(1, 2), **args)


@pytest.mark.parametrize("scale", [0.05, 1.0], ids=["few-coincidences", "many"])
def test_counts_equal_a_direct_count_of_the_same_bits(scale):
    """The counts (enumerated when coincidences are few, matrix products otherwise) equal a
    direct count over the bits drawn from a copy of the generator: cell (i, j) gets one
    pulse per slot where both bits are on, up where d_i x_j < 0."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 40, generator=g, dtype=torch.float64)
    d = torch.randn(3, 30, generator=g, dtype=torch.float64)
    px, pd = (x.abs() * scale).clamp(max=1), (d.abs() * scale).clamp(max=1)
    copy_ = torch.Generator().set_state(g.get_state())
    up, down = coincidence_counts(x, d, px, pd, 7, g)
    u = torch.rand((3, 7, 70), generator=copy_, dtype=torch.float64)
    bx, bd = (u[..., :40] < px[:, None]).double(), (u[..., 40:] < pd[:, None]).double()
    both = torch.einsum("bti,btj->bij", bd, bx)  # coincidences per sample
    sign = -torch.sign(d)[:, :, None] * torch.sign(x)[:, None, :]
    torch.testing.assert_close(up, (both * (sign > 0)).sum(0), rtol=0, atol=0)
    torch.testing.assert_close(down, (both * (sign < 0)).sum(0), rtol=0, atol=0)


def test_sparse_and_dense_application_agree():
    """Few coincidences (only the hit cells are moved) and the dense path move the weights
    identically in the mean (no noise): an update by torch's operations with tiny lr on a
    fresh array equals apply_counts of the direct counts."""
    g = torch.Generator().manual_seed(7)
    dom = _domain()
    arr = PulsedArray(dom, (30, 40), generator=g, dtype=torch.float64)
    x = torch.randn(3, 40, generator=g, dtype=torch.float64)
    d = torch.randn(3, 30, generator=g, dtype=torch.float64) * 1e-3
    w0 = (torch.rand(30, 40, generator=g, dtype=torch.float64) - 0.5)
    copy_ = torch.Generator().set_state(g.get_state())
    w = w0.clone()
    arr.update(w, x, d, lr=0.01, mode="stochastic", bit_length=31, generator=g,
               engine="torch")
    from xbarlab.nn.pulsed_update import pulse_probabilities
    px, pd = pulse_probabilities(x, d, lr=0.01, dw_min=dom.dw_min, bit_length=31,
                                 update_management=True)
    up, down = coincidence_counts(x, d, px, pd, 31, copy_)
    assert 0 < float((up + down).sum()) < 0.25 * w.numel()
    ref = w0.clone()
    arr.apply_counts(ref, up, down, None)
    torch.testing.assert_close(w, ref, rtol=1e-12, atol=1e-15)


@pytest.mark.gpu
def test_cuda_mean_update_and_determinism():
    """On CUDA: E[Delta w] = -lr d^T x within 4.5 standard errors over 200 replicas (as on
    the CPU), and one seed gives the same weights twice."""
    dev = torch.device("cuda")
    x = torch.tensor([[0.5, -0.2, 0.1, 0.0], [0.3, 0.3, -0.4, 0.2]], dtype=torch.float64,
                     device=dev)
    d = torch.tensor([[0.1, -0.3, 0.05], [0.2, 0.0, -0.1]], dtype=torch.float64, device=dev)
    reps, lr = 200, 0.05
    out = []
    for _ in range(2):
        g = torch.Generator(device=dev).manual_seed(0)
        arr = PulsedArray(_domain(c2c=0.3), (3 * reps, 4 * reps), generator=g, device=dev,
                          dtype=torch.float64)
        w = torch.zeros(3 * reps, 4 * reps, dtype=torch.float64, device=dev)
        xr, dr = _replicas(x, d, reps)
        arr.update(w, xr, dr, lr=lr, mode="stochastic", generator=g)
        out.append(w)
    assert torch.equal(out[0], out[1])
    blocks = _diag_blocks(out[0], 3, 4, reps)
    se = blocks.std(dim=0) / math.sqrt(reps)
    assert torch.all((blocks.mean(dim=0) - (-lr * d.T @ x)).abs() <= 4.5 * se + 1e-12)


def test_bad_shape_and_non_finite_inputs_are_refused():
    """A negative or one-dimensional array shape, and NaN activations or errors, are refused
    with a one-line error instead of a torch error or a silent zero update."""
    dom = _domain()
    for shape in ((-1, 3), (4,), ("a", 2)):
        with pytest.raises(ConfigError, match="shape"):
            PulsedArray(dom, shape, generator=torch.Generator())
    arr = PulsedArray(dom, (2, 3), generator=torch.Generator())
    w = torch.zeros(2, 3)
    for x, d in ((torch.full((4, 3), float("nan")), torch.ones(4, 2)),
                 (torch.ones(4, 3), torch.full((4, 2), float("inf")))):
        with pytest.raises(ConfigError, match="finite"):
            arr.update(w, x, d, lr=0.1, mode="stochastic", generator=torch.Generator())


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_pulse_count_equals_the_pulses_that_moved_the_cells(engine):
    """One input and one output on (few coincidences: the torch update's sparse path), a
    noise-free constant step mu, x > 0 and d < 0 (every pulse up): the array's pulse count
    equals the cell's move / mu, counted once."""
    from xbarlab.devices.pulsed import ConstantStep, PulsedDevice, WeightDomain
    from xbarlab.nn.pulsed_update import PulsedArray

    dom = WeightDomain(PulsedDevice(ConstantStep(1e-8, 1e-8), 0.0, 1e-5), 1.0)
    g = torch.Generator().manual_seed(2)
    arr = PulsedArray(dom, (64, 64), generator=g, dtype=torch.float64)
    w = torch.zeros(64, 64, dtype=torch.float64)
    x = torch.zeros(1, 64, dtype=torch.float64)
    d = torch.zeros(1, 64, dtype=torch.float64)
    x[0, 3], d[0, 5] = 1.0, -1.0
    arr.update(w, x, d, lr=0.5 * 31 * dom.dw_min, mode="stochastic", bit_length=31,
               update_management=False, generator=g, engine=engine)
    n = w[5, 3].item() / dom.dw_min
    assert n > 0 and abs(n - round(n)) < 1e-9
    assert arr.pulses == round(n)
