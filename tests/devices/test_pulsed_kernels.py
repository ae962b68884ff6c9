"""The Numba kernel of the stochastic pulse-train update against closed forms: its bits are
Bernoulli(p) (every lane, Binomial(BL, p) per train), its update equals a direct count of
the same bits, and its steps with cycle-to-cycle noise follow the exact mixture
distribution of n ~ Binomial(BL, p q) pulses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from xbarlab.devices.pulsed import ConstantStep, PulsedDevice, StepTable, WeightDomain
from xbarlab.devices.pulsed_kernels import train_words
from xbarlab.errors import ConfigError
from xbarlab.nn.pulsed_update import PulsedArray

R = 1e-5


def _lanes(words, bl):
    return ((words[..., None] >> np.arange(bl, dtype=np.uint64)) & np.uint64(1)).astype(float)


@pytest.mark.parametrize("p", [0.0, 1e-3, 0.2, 0.5, 0.77, 1.0])
def test_train_words_are_bernoulli(p):
    """20,000 trains of BL 31 at probability p: every lane's frequency within 4.5 standard
    errors of p (exactly 0 / 1 at p = 0 / 1), and the bits per train have the Binomial(31,
    p) variance within 4 standard errors."""
    bits = _lanes(train_words(np.full((40, 500), p), 31, seed=12345), 31).reshape(-1, 31)
    n = bits.shape[0]
    if p in (0.0, 1.0):
        assert np.all(bits == p)
        return
    se = math.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(bits.mean(0) - p) < 4.5 * se)
    # pooled over the lanes, and no lane silent (at p = 1e-3 one lane's 4.5 se exceeds p;
    # P(a lane of 20,000 draws holds no bit) = 0.999^20000 = 2e-9)
    assert abs(bits.mean() - p) < 4.5 * math.sqrt(p * (1 - p) / bits.size)
    assert np.all(bits.sum(0) > 0)
    k = bits.sum(1)
    var = 31 * p * (1 - p)
    assert abs(k.var() / var - 1) < 4 * math.sqrt(2 / n) + 4 / math.sqrt(n * var)


def test_trains_differ_by_seed_and_index():
    """Different seeds and train indices give different words (p = 0.5: equal words have
    probability 2^-31)."""
    a = train_words(np.full((1, 1000), 0.5), 31, seed=1)
    b = train_words(np.full((1, 1000), 0.5), 31, seed=2)
    c = train_words(np.full((1, 1000), 0.5), 31, seed=1, base=1)
    assert np.mean(a == b) < 0.01 and np.mean(a[0, 1:] == c[0, :-1]) == 1.0


def _seed_of(g: torch.Generator) -> int:
    """The update's seed: one int64 draw of a copy of ``g`` (as PulsedArray.update draws)."""
    copy_ = torch.Generator().set_state(g.get_state())
    return int(torch.randint(-2 ** 63, 2 ** 63 - 1, (), generator=copy_,
                             dtype=torch.int64)) % 2 ** 64


def _table_domain():
    tab = StepTable([0.0, 5e-6, 1e-5], [0.25, 0.75], [[1e-8, 1e-8], [3e-8, 3e-8]],
                    [[2e-8, 2e-8], [1e-8, 1e-8]], interpolation="linear")
    return WeightDomain(PulsedDevice(tab, 0.0, R), 1.0)


@pytest.mark.parametrize("which", ["constant", "table"])
def test_update_equals_a_direct_count_of_the_same_bits(which):
    """Noise-free cells (a constant step; a step table of zero spread): the kernel's Delta w
    of each cell is n_up mu_up(w0) - n_down mu_down(w0) (then the clip to the range), with
    the counts taken directly from the bits train_words gives for the update's seed (pulse
    probabilities with update management worked out here: A = sqrt(k m_d / m_x), B =
    sqrt(k m_x / m_d), k = lr / (BL dw_min)); mean steps from the device's closed form
    (the table: within 1e-3)."""
    dom = (WeightDomain(PulsedDevice(ConstantStep(1e-8, 1e-8), 0.0, R), 1.0)
           if which == "constant" else _table_domain())
    g = torch.Generator().manual_seed(3)
    B, n_in, n_out, lr, bl = 4, 30, 20, 0.3, 31
    x = torch.randn(B, n_in, generator=g, dtype=torch.float64)
    d = torch.randn(B, n_out, generator=g, dtype=torch.float64)
    x[:, 5] = 0.0
    w0 = 0.8 * (torch.rand(n_out, n_in, generator=g, dtype=torch.float64) - 0.5)
    arr = PulsedArray(dom, (n_out, n_in), generator=g, dtype=torch.float64)
    seed = _seed_of(g)
    w = w0.clone()
    arr.update(w, x, d, lr=lr, mode="stochastic", bit_length=bl, generator=g, engine="numba")
    xn, dn = x.numpy(), d.numpy()
    k = lr / (bl * dom.dw_min)
    mx, md = np.abs(xn).max(1, keepdims=True), np.abs(dn).max(1, keepdims=True)
    px = np.minimum(np.abs(xn) * np.sqrt(k * md / mx), 1)
    pd = np.minimum(np.abs(dn) * np.sqrt(k * mx / md), 1)
    wx = train_words(px, bl, seed)
    wd = train_words(pd, bl, seed, base=B * n_in)
    both = np.bitwise_count(wd[:, :, None] & wx[:, None, :]).astype(float)  # (B, out, in)
    up_dir = (-np.sign(dn)[:, :, None] * np.sign(xn)[:, None, :]) > 0
    n_up, n_down = (both * up_dir).sum(0), (both * ~up_dir).sum(0)
    assert 0 < n_up.sum() and 0 < n_down.sum()
    gc = dom.to_conductance(w0.numpy())
    mu_up = dom.device.expected_step(gc, 1) / dom.scale
    mu_down = -dom.device.expected_step(gc, -1) / dom.scale
    truth = np.clip(w0.numpy() + n_up * mu_up - n_down * mu_down, arr.w_min, arr.w_max)
    tol = 1e-12 if which == "constant" else 1e-3 * np.abs(truth - w0.numpy()).max()
    np.testing.assert_allclose(w.numpy(), truth, rtol=0, atol=tol)
    assert arr.pulses == n_up.sum() + n_down.sum()


@pytest.mark.parametrize("chunks", [2, 3, 7])
def test_rows_split_over_threads_give_the_same_bits(chunks, monkeypatch):
    """An array large enough to move its rows in parallel chunks gives exactly the weights
    and pulse count of one chunk (noisy cells with gains: every draw keyed by its counters),
    for 2, 3 and 7 chunks."""
    import types

    from xbarlab.devices import pulsed_kernels

    dev = PulsedDevice(ConstantStep(1e-8, 1.3e-8), 0.0, R, c2c=0.3, write_noise=2e-9,
                       d2d=0.2)
    dom = WeightDomain(dev, 1.0)
    B, n_in, n_out = 5, 40, 23

    def run(k):
        monkeypatch.setattr(pulsed_kernels, "PARALLEL_CELLS", 1 if k > 1 else 1 << 40)
        monkeypatch.setattr(pulsed_kernels, "numba",
                            types.SimpleNamespace(get_num_threads=lambda: k))
        g = torch.Generator().manual_seed(5)
        x = torch.rand(B, n_in, generator=g, dtype=torch.float64)
        d = torch.randn(B, n_out, generator=g, dtype=torch.float64)
        arr = PulsedArray(dom, (n_out, n_in), generator=g, dtype=torch.float64)
        w = 0.3 * torch.randn(n_out, n_in, generator=g, dtype=torch.float64)
        arr.update(w, x, d, lr=0.2, mode="stochastic", bit_length=31, generator=g,
                   engine="numba")
        return w.numpy(), arr.pulses

    w1, n1 = run(1)
    wk, nk = run(chunks)
    assert n1 > 0 and nk == n1
    np.testing.assert_array_equal(wk, w1)


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_noisy_steps_follow_the_pulse_count_mixture(engine):
    """x = 1, d = -1, no update management, p = q = 0.4, constant step mu with c2c 0.3:
    each diagonal cell (independent trains) moves by mu n + 0.3 mu sqrt(n) z, n ~
    Binomial(31, 0.16), z ~ N(0, 1); 2,000 cells pass a KS test (p > 0.001) against that
    mixture's CDF, with the Numba kernel and with torch's operations."""
    dom = WeightDomain(PulsedDevice(ConstantStep(1e-8, 1e-8), 0.0, R, c2c=0.3), 1.0)
    mu, bl, n = dom.dw_min, 31, 100
    lr = 0.16 * bl * mu
    g = torch.Generator().manual_seed(11)
    arr = PulsedArray(dom, (n, n), generator=g, dtype=torch.float64)
    out = []
    for _ in range(20):
        w = torch.zeros(n, n, dtype=torch.float64)
        arr.update(w, torch.ones(1, n, dtype=torch.float64), -torch.ones(1, n,
                   dtype=torch.float64), lr=lr, mode="stochastic", bit_length=bl,
                   update_management=False, generator=g, engine=engine)
        out.append(w.diagonal().numpy().copy())
    dw = np.concatenate(out)
    ks = np.arange(bl + 1)
    pk = stats.binom.pmf(ks, bl, 0.16)

    def cdf(v):
        v = np.asarray(v, dtype=float)[..., None]
        sd = 0.3 * mu * np.sqrt(np.maximum(ks, 1))
        c = np.where(ks == 0, (v >= 0).astype(float), stats.norm.cdf((v - ks * mu) / sd))
        return (c * pk).sum(-1)

    assert stats.kstest(dw, cdf).pvalue > 1e-3


def test_engine_choice_is_checked():
    """An unknown engine and a bit length the kernel cannot hold are refused by name."""
    dom = WeightDomain(PulsedDevice(ConstantStep(1e-8, 1e-8), 0.0, R), 1.0)
    g = torch.Generator()
    arr = PulsedArray(dom, (2, 3), generator=g)
    args = {"lr": 0.1, "mode": "stochastic", "generator": g}
    with pytest.raises(ConfigError, match="engine='gpu' is not one of"):
        arr.update(torch.zeros(2, 3), torch.ones(1, 3), torch.ones(1, 2), engine="gpu", **args)
    with pytest.raises(ConfigError, match=r"engine='numba' needs a bit length in \[1, 64\]"):
        arr.update(torch.zeros(2, 3), torch.ones(1, 3), torch.ones(1, 2), engine="numba",
                   bit_length=65, **args)
    with pytest.raises(ConfigError, match="p must be"):
        train_words(np.full((1, 2), 1.5), 31, seed=0)


def test_updater_refuses_bad_settings_and_inputs():
    """Bad shapes, non-finite or negative tables and gains, a non-positive dw_min or lr and
    a non-bool update management are refused naming the value, before any update."""
    from xbarlab.devices.pulsed_kernels import PulseUpdater

    ok = {"dw_min": 0.01, "w_range": (-1.0, 1.0), "tables": np.full((2, 5), 0.01),
          "linear": None, "variances": False, "gains": None, "c2c": 0.0, "write_noise": 0.0}
    bad = [((-2, 3), {}, "shape"), ((2, 3), {"dw_min": float("inf")}, "dw_min"),
           ((2, 3), {"dw_min": "a"}, "dw_min"), ((2, 3), {"c2c": -0.1}, "c2c"),
           ((2, 3), {"tables": np.full((2, 5), np.nan)}, "tables"),
           ((2, 3), {"linear": (1.0, 2.0)}, "linear"),
           ((2, 3), {"gains": (np.full((2, 3), np.nan), np.ones((2, 3)))}, "gains")]
    for shape, kw, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            PulseUpdater(shape, np.float64, **{**ok, **kw})
    up = PulseUpdater((2, 3), np.float64, **ok)
    w, x, d = np.zeros((2, 3)), np.ones((1, 3)), np.ones((1, 2))
    with pytest.raises(ConfigError, match="lr"):
        up.update(w, x, d, lr="a", bit_length=31, update_management=True, seed=1)
    with pytest.raises(ConfigError, match="update_management"):
        up.update(w, x, d, lr=0.1, bit_length=31, update_management="yes", seed=1)
    with pytest.raises(ConfigError, match="base"):
        train_words(np.full((1, 2), 0.5), 31, seed=1, base=1.5)
