"""The programming-error fit (calibration/programming.py) and its fitted block."""

from __future__ import annotations

import numpy as np
from scipy import stats
from xbarlab.calibration.goodness import ks_distance

HKU_TARGETS = np.arange(100.0, 401.0, 50.0) * 1e-6



def test_hku_bounded_fit_samples_like_the_parametric_block(hku):
    """The HKU fit's FittedProgramming (bounded family: beta on the +-5 uS verify window with
    the fitted bias and spread) and a parametric ProgrammingError with the same curves as
    Tables and the same ErrorDistribution (fused kernel) keep the family and window; at each
    of the 7 targets 20,000 samples of both (different seeds) have two-sample KS <= 0.03
    (0.019 at 99.9 %); with one seed both program the same values to 1e-12 relative (the
    same sampler), and the errors pass KS <= 0.02 against scipy.stats.beta with the
    method-of-moments shapes of the fitted bias and spread at 250 uS (computed here)."""
    from xbarlab.devices.blocks import ProgrammingError
    from xbarlab.devices.composite import CompositeDevice
    from xbarlab.devices.curves import Table

    _, model = hku
    pb = model.programming
    comp = CompositeDevice(programming=ProgrammingError(
        spread=Table(pb.spread.g, pb.spread.value), bias=Table(pb.bias.g, pb.bias.value),
        distribution=pb.distribution), g_range=model.stat_range, range_policy="edge")
    dist = comp.programming.distribution
    assert dist.family.value == "bounded" and dist.window == model.programming.window
    for t in HKU_TARGETS:
        g = np.full(20_000, t)
        a = model.sample(g, 0.0, np.random.default_rng(1))
        b = comp.sample(g, 0.0, np.random.default_rng(2))
        assert ks_distance(a, b) <= 0.03, t
        np.testing.assert_allclose(comp.program(g, np.random.default_rng(5)).g_prog,
                                   model.program(g, np.random.default_rng(5)).g_prog,
                                   rtol=1e-12, atol=0)
    w, t = model.programming.window, 250e-6
    bias, spread = float(model.programming.bias(t)), float(model.programming.spread(t))
    m = (bias + w) / (2 * w)
    k = m * (1 - m) / (spread / (2 * w)) ** 2 - 1
    e = comp.sample(np.full(20_000, t), 0.0, np.random.default_rng(3)) - t
    truth = stats.beta(m * k, (1 - m) * k, loc=-w, scale=2 * w)
    assert stats.kstest(e, truth.cdf).statistic <= 0.02


def test_levels_whose_read_noise_explains_all_their_spread_do_not_flatten_the_curve():
    """Three low levels whose error is all read noise (deconvolved spread 0) beside seven
    levels with a programming spread of 5 % of the target and no read noise: the smoothed
    spread at the seven levels stays within 15 % of 5 % (a weight of devices over the
    deconvolved variance, infinite at 0, pulled the whole curve to 0)."""
    from xbarlab.calibration.programming import fit_programming

    rng = np.random.default_rng(4)
    g = np.repeat(np.linspace(1e-6, 10e-6, 10), 400)
    low = g < 3.5e-6
    nv = np.where(low, (0.2e-6) ** 2, 0.0)
    x = g + np.where(low, np.sqrt(nv), 0.05 * g) * rng.standard_normal(g.size)
    block, info, _ = fit_programming(g, x, min_devices=20, rng=np.random.default_rng(5),
                                     n_boot=0, family="normal", noise_var=nv)
    assert np.all(np.asarray(info.spread)[:3] < 0.1e-6)  # read noise takes it all
    high = np.linspace(4e-6, 10e-6, 7)
    rel = block.spread(high) / (0.05 * high)
    assert np.all(np.abs(rel - 1) < 0.15), rel


def test_family_is_judged_where_programming_error_dominates():
    """Normal programming errors (5 % of the target) at seven levels; at three low levels
    the read noise explains all the spread and a tenth of the cells read 0 S with no read
    noise to deconvolve (as cells clamped at 0 S do). The families' AICs stay comparable
    (the normal one within 100 of the best): scored over every level, those cells' small
    per-device scale put the normal AIC thousands above the best (near 1e49 in the
    synthetic PCM sets, where the scale is ~0 S)."""
    from xbarlab.calibration.programming import fit_programming

    rng = np.random.default_rng(6)
    g = np.repeat(np.linspace(1e-6, 10e-6, 10), 400)
    low = g < 3.5e-6
    nv = np.where(low, (0.25e-6) ** 2, 0.0)
    x = g + np.where(low, 0.2e-6, 0.05 * g) * rng.standard_normal(g.size)
    zero = low & (rng.random(g.size) < 0.1)
    x, nv = np.where(zero, 0.0, x), np.where(zero, 0.0, nv)
    block, info, _ = fit_programming(g, x, min_devices=20, rng=np.random.default_rng(7),
                                     n_boot=0, family="auto", noise_var=nv)
    assert info.aic["normal"] - min(info.aic.values()) < 100, info.aic


def test_censored_normal_recovers_a_clamped_normal_read_with_multiplicative_noise():
    """g = max(m + s z, 0) with m = 0.05 uS, s = 0.26 uS (half the cells at the clamp, as
    aihwkit's PCM at a 0 uS target), each positive value read as g e^eta, eta ~ N(0, 0.5)
    (4,000 cells): the censored fit recovers m within 0.03 uS and s within 8 %; the
    clamped values' own standard deviation (0.16 uS) is far from s; without noise
    (r = 0) the plain censored fit does as well."""
    from xbarlab.calibration.programming import censored_normal

    rng = np.random.default_rng(11)
    m, s, n = 0.05e-6, 0.26e-6, 4000
    g = np.maximum(m + s * rng.standard_normal(n), 0.0)
    assert abs(g.std() - s) > 0.3 * s
    x = g * np.exp(np.sqrt(0.5) * rng.standard_normal(n))
    fm, fs = censored_normal(x, np.full(n, 0.5), start=(x.mean(), x.std()))
    assert abs(fm - m) < 0.03e-6 and abs(fs / s - 1) < 0.08, (fm, fs)
    fm, fs = censored_normal(g, 0.0, start=(g.mean(), g.std()))
    assert abs(fm - m) < 0.02e-6 and abs(fs / s - 1) < 0.05, (fm, fs)


def test_spread_under_large_multiplicative_read_noise_is_deconvolved_without_bias():
    """Targets 1 and 1.25 uS, 15,000 cells each, g = g_T + 0.3 uS z read as g e^eta with
    var(eta) = r = 0.3 (the 1 s read noise of low PCM levels): with noise_var = r x^2 the
    fitted spread at both targets is within 12 % of 0.3 uS and the bias within 0.02 uS of
    0 (subtracting the mean of r x^2 from the variance of x, the noise taken from the
    noisy values themselves, gives 0.26 and 0.04 uS on these data)."""
    from xbarlab.calibration.programming import fit_programming

    rng = np.random.default_rng(1)
    t = np.repeat([1e-6, 1.25e-6], 15000)
    g = t + 0.3e-6 * rng.standard_normal(t.size)
    x = g * np.exp(np.sqrt(0.3) * rng.standard_normal(t.size))
    _, info, _ = fit_programming(t, x, min_devices=10, rng=np.random.default_rng(0), n_boot=2,
                                 family="normal", noise_var=0.3 * x**2)
    np.testing.assert_allclose(info.spread, 0.3e-6, rtol=0.12)
    np.testing.assert_allclose(info.bias, 0.0, atol=0.02e-6)


def test_noise_free_powers_undo_the_read_noise_and_refuse_bad_values():
    """noise_free_powers: for g ~ N(5 uS, 1 uS) read as g e^eta (var eta = 0.1) or g (1 + eta),
    the means of its terms are E[g] and E[g^2] of the generator within 0.3 % (10^6 reads;
    the reads' own E[g^2] is 10 % high); a negative variance or a NaN read is refused in
    one line naming it."""
    import pytest
    from xbarlab.calibration.programming import noise_free_powers
    from xbarlab.errors import ConfigError

    rng = np.random.default_rng(3)
    g = 5e-6 + 1e-6 * rng.standard_normal(1_000_000)
    eta = np.sqrt(0.1) * rng.standard_normal(g.size)
    for linear, x in ((False, g * np.exp(eta)), (True, g * (1 + eta))):
        x1, x2 = noise_free_powers(x, 0.1, linear=linear)
        assert x1.mean() == pytest.approx(5e-6, rel=3e-3)
        assert x2.mean() == pytest.approx(26e-12, rel=3e-3)
        assert np.mean(x**2) > 1.09 * 26e-12
    with pytest.raises(ConfigError, match=r"r \(relative read-noise variance\) \[1\] must"):
        noise_free_powers(np.ones(2), -0.1)
    with pytest.raises(ConfigError, match=r"x \(reads\) \[S\]"):
        noise_free_powers(np.array([1.0, np.nan]), 0.1)
