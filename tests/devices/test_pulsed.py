"""Pulsed-update devices against their closed forms: mean step and its variance vs state,
up and down, for every step rule; the symmetric point from its formula; many small pulses
against the mean-field update; the weight-domain response of Wu et al. 2024; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xbarlab.devices.pulsed import (
    ConstantStep,
    ExpStep,
    Interpolation,
    PowStep,
    PulsedDevice,
    SoftBounds,
    StepTable,
    WeightDomain,
)
from xbarlab.errors import ConfigError

GMIN, GMAX = 2e-6, 22e-6
R = GMAX - GMIN
AU, AD = 3e-8, 2e-8


def _truth(rule, g):
    """Independent closed forms of the mean up / down step magnitude [S]."""
    x = (g - GMIN) / R
    if isinstance(rule, ConstantStep):
        return np.full_like(x, AU), np.full_like(x, AD)
    if isinstance(rule, SoftBounds):
        return AU * (1 - x), AD * x
    if isinstance(rule, ExpStep):
        return AU * np.exp(-rule.gamma_up * x), AD * np.exp(-rule.gamma_down * (1 - x))
    return AU * (1 - x) ** rule.gamma_up, AD * x ** rule.gamma_down


RULES = [ConstantStep(AU, AD), SoftBounds(AU, AD), ExpStep(AU, AD, 2.0, 1.0),
         PowStep(AU, AD, 1.5, 0.7)]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
def test_expected_step_and_variance_closed_form(rule):
    """E[dg] = +A_up(g) up, -A_down(g) down; Var[dg] = (c2c A)^2 + sigma_w^2 (module
    docstring's forms, written out here independently)."""
    dev = PulsedDevice(rule, GMIN, GMAX, c2c=0.3, write_noise=1e-9)
    g = np.linspace(GMIN, GMAX, 11)
    up, down = _truth(rule, g)
    np.testing.assert_allclose(dev.expected_step(g, 1), up, rtol=1e-12)
    np.testing.assert_allclose(dev.expected_step(g, -1), -down, rtol=1e-12)
    np.testing.assert_allclose(dev.step_variance(g, 1), (0.3 * up) ** 2 + 1e-18, rtol=1e-12)
    np.testing.assert_allclose(dev.step_variance(g, -1), (0.3 * down) ** 2 + 1e-18, rtol=1e-12)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
def test_sampled_pulses_match_mean_and_variance(rule):
    """20,000 single pulses at each of three states: sample mean within 4 standard errors
    of the closed-form mean, sample variance within 4 standard errors (normal steps:
    se(s^2) = s^2 sqrt(2 / (n - 1)))."""
    dev = PulsedDevice(rule, GMIN, GMAX, c2c=0.3, write_noise=2e-9)
    rng = np.random.default_rng(1)
    n = 20_000
    for g0 in (6e-6, 12e-6, 18e-6):
        for d in (1, -1):
            up, down = _truth(rule, np.array(g0))
            mean = d * (up if d > 0 else down)
            var = (0.3 * (up if d > 0 else down)) ** 2 + 4e-18
            dg = dev.pulse(np.full(n, g0), d, rng) - g0
            assert abs(dg.mean() - mean) < 4 * math.sqrt(var / n)
            assert abs(dg.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1))


def test_symmetric_points_from_formulas():
    """Soft bounds: x* = a_up / (a_up + a_down); exp: x* = (ln(a_up / a_down) + gamma_d) /
    (gamma_u + gamma_d); pow with equal exponents: x* = 1 / (1 + (a_down / a_up)^(1/gamma));
    pow with unequal exponents: A_up(g*) = A_down(g*); constant step: none (NaN) unless
    symmetric."""
    d = PulsedDevice(SoftBounds(AU, AD), GMIN, GMAX)
    assert d.symmetric_point() == pytest.approx(GMIN + R * AU / (AU + AD), rel=1e-12)
    d = PulsedDevice(ExpStep(AU, AD, 2.0, 1.0), GMIN, GMAX)
    assert d.symmetric_point() == pytest.approx(GMIN + R * (math.log(1.5) + 1.0) / 3.0,
                                                rel=1e-12)
    d = PulsedDevice(PowStep(AU, AD, 2.0, 2.0), GMIN, GMAX)
    assert d.symmetric_point() == pytest.approx(GMIN + R / (1 + (AD / AU) ** 0.5), rel=1e-12)
    d = PulsedDevice(PowStep(AU, AD, 1.5, 0.7), GMIN, GMAX)
    gs = d.symmetric_point()
    up, down = _truth(d.rule, np.array(gs))
    assert up == pytest.approx(down, rel=1e-9)
    assert math.isnan(PulsedDevice(ConstantStep(AU, AD), GMIN, GMAX).symmetric_point())
    assert PulsedDevice(ConstantStep(AU, AU), GMIN, GMAX).symmetric_point() == pytest.approx(
        (GMIN + GMAX) / 2)


def test_n_states_closed_forms():
    """Soft bounds: 4 R / (a_up + a_down); constant step: 2 R / (a_up + a_down)."""
    assert PulsedDevice(SoftBounds(AU, AD), GMIN, GMAX).n_states() == pytest.approx(
        4 * R / (AU + AD), rel=1e-9)
    assert PulsedDevice(ConstantStep(AU, AD), GMIN, GMAX).n_states() == pytest.approx(
        2 * R / (AU + AD), rel=1e-9)


def test_many_small_pulses_converge_to_mean_field():
    """Soft bounds, 400 up pulses from g_min with c2c 0.5: the mean over 4,000 ramps follows
    the discrete mean-field map g_n = g_max - (g_max - g_0)(1 - a_up / R)^n (the rule is
    linear in g, so the mean obeys it exactly) within 4 standard errors; an exp-step device
    with steps of R / 2,000 follows the ODE dx/dn = (a / R) e^(-gamma x), x_n = ln(e^(gamma
    x_0) + gamma a n / R) / gamma, within 0.2 % of the range."""
    rng = np.random.default_rng(2)
    dev = PulsedDevice(SoftBounds(R / 200, R / 200), GMIN, GMAX, c2c=0.5)
    n = np.arange(1, 401)
    g = dev.simulate_ramps(np.full(4000, GMIN), np.ones(4000), 400, rng)
    truth = GMAX - R * (1 - 1 / 200) ** n
    se = g.std(axis=0, ddof=1) / math.sqrt(4000)
    assert np.all(np.abs(g.mean(axis=0) - truth) < 4 * se + 1e-15)
    a, gam = R / 2000, 2.0
    dev = PulsedDevice(ExpStep(a, a, gam, gam), GMIN, GMAX, c2c=0.3)
    g = dev.simulate_ramps(np.full(200, GMIN), np.ones(200), 3000, rng)
    n = np.arange(1, 3001)
    x = np.log(1 + gam * a * n / R) / gam
    assert np.max(np.abs((g.mean(axis=0) - GMIN) / R - x)) < 2e-3


def test_step_table_moments_and_sampling():
    """Bin steps uniform on [lo, hi] stored at levels 0.1..0.9: the table's distribution is
    0.1 at q(0.1), uniform between q(0.1) and q(0.9), 0.1 at q(0.9) (flat tails), so mean =
    (lo + hi) / 2 and variance = 0.8 Var_U + 0.2 (q(0.9) - m)^2 with Var_U = (q(0.9) -
    q(0.1))^2 / 12; samples agree; linear interpolation halfway between bin centres gives
    the average mean."""
    lv = np.linspace(0.1, 0.9, 9)
    los, his = np.array([1e-8, 3e-8]), np.array([3e-8, 9e-8])
    q = los[:, None] + lv[None, :] * (his - los)[:, None]
    tab = StepTable(edges=[0.0, 1e-5, 2e-5], levels=lv, up=q, down=q[::-1])
    dev = PulsedDevice(tab, 0.0, 2e-5)
    m = (los + his) / 2
    q1, q9 = los + 0.1 * (his - los), los + 0.9 * (his - los)
    var = 0.8 * (q9 - q1) ** 2 / 12 + 0.2 * (q9 - m) ** 2
    np.testing.assert_allclose(dev.expected_step([5e-6, 15e-6], 1), m, rtol=1e-12)
    np.testing.assert_allclose(dev.expected_step([5e-6, 15e-6], -1), -m[::-1], rtol=1e-12)
    np.testing.assert_allclose(dev.step_variance([5e-6, 15e-6], 1), var, rtol=1e-12)
    s = tab.sample(np.full(40_000, 15e-6), 1, np.random.default_rng(3))
    assert abs(s.mean() - m[1]) < 4 * math.sqrt(var[1] / 40_000)
    lin = PulsedDevice(StepTable([0.0, 1e-5, 2e-5], lv, q, q[::-1], Interpolation.LINEAR),
                       0.0, 2e-5)
    assert float(lin.expected_step(1e-5, 1)) == pytest.approx(m.mean(), rel=1e-12)
    # up and down cross where the means are equal: the linear table's mean up is m0 + (m1 -
    # m0) t, down m1 - (m1 - m0) t between centres 5 and 15 uS: t = 1/2, g* = 10 uS
    assert lin.symmetric_point() == pytest.approx(1e-5, rel=1e-9)


def test_weight_domain_asymmetric_linear_device():
    """Symmetric soft bounds on [g_min, g_max] with tau: w spans [-tau, tau], q_up = 1 -
    w / tau, q_down = 1 + w / tau, F = 1, G = w / tau (Wu et al. 2024), dw_min = tau a / R."""
    for tau in (0.6, 0.8):
        wd = WeightDomain(PulsedDevice(SoftBounds(AU, AU), GMIN, GMAX), tau)
        w = np.linspace(-tau, tau, 9)
        assert (wd.w_min, wd.w_max) == pytest.approx((-tau, tau))
        np.testing.assert_allclose(wd.response(w, 1), 1 - w / tau, atol=1e-12)
        np.testing.assert_allclose(wd.response(w, -1), 1 + w / tau, atol=1e-12)
        np.testing.assert_allclose(wd.symmetric_part(w), 1.0, atol=1e-12)
        np.testing.assert_allclose(wd.asymmetric_part(w), w / tau, atol=1e-12)
        assert wd.dw_min == pytest.approx(tau * AU / R, rel=1e-12)
        np.testing.assert_allclose(wd.to_weight(wd.to_conductance(w)), w, atol=1e-12)


@pytest.mark.parametrize("dev", [
    PulsedDevice(ExpStep(AU, AD, 2.0, 1.0), GMIN, GMAX, d2d=0.3, c2c=0.2, write_noise=1e-9),
    PulsedDevice(StepTable([0.0, 1e-5, 2e-5], [0.25, 0.75], [[1e-8, 2e-8], [0, 1e-8]],
                           [[1e-8, 3e-8], [2e-8, 2e-8]]), 0.0, 2e-5)], ids=["exp", "table"])
def test_round_trip(dev):
    """to_dict/from_dict and to_json/from_json rebuild the same expected steps."""
    g = np.linspace(dev.g_min, dev.g_max, 7)
    for back in (PulsedDevice.from_dict(dev.to_dict()), PulsedDevice.from_json(dev.to_json())):
        np.testing.assert_array_equal(back.expected_step(g, 1), dev.expected_step(g, 1))
        np.testing.assert_array_equal(back.step_variance(g, -1), dev.step_variance(g, -1))
        assert back.c2c == dev.c2c and back.d2d == dev.d2d


def test_device_gains():
    """gain_up = (1 + d2d z)(1 + s_a z'), gain_down = (1 + d2d z)(1 - s_a z'): the mean of
    both is 1 and the std of the common part d2d (fixed seed, 4 standard errors)."""
    dev = PulsedDevice(SoftBounds(AU, AD), GMIN, GMAX, d2d=0.1, d2d_asymmetry=0.05)
    up, down = dev.draw_gains(100_000, np.random.default_rng(4))
    common = (up + down) / 2
    assert abs(common.mean() - 1) < 4 * 0.1 / math.sqrt(1e5)
    assert common.std() == pytest.approx(0.1, rel=0.02)


@pytest.mark.parametrize("make,match", [
    (lambda: PulsedDevice(SoftBounds(), 2e-5, 1e-5), r"bounds crossed: g_max = 1e-05"),
    (lambda: SoftBounds(-1e-8, 1e-8), r"a_up = -1e-08"),
    (lambda: PowStep(1e-8, 1e-8, 1.0, -2.0), r"gamma_down = -2.0"),
    (lambda: PulsedDevice(c2c=-0.1), r"c2c = -0.1"),
    (lambda: StepTable([0, 1e-5, 2e-5], [0.5], [[1e-8], [math.nan]], [[1e-8], [1e-8]]),
     r"up step quantiles of bin 1 \[1e-05, 2e-05\) S are empty"),
    (lambda: StepTable.from_samples([0, 1e-5, 2e-5], [5e-6], [1e-8], [5e-6, 15e-6],
                                    [1e-8, 1e-8]), r"bin 1 .* holds no up step"),
    (lambda: PulsedDevice().expected_step(1e-6, 0), r"direction must be \+1 \(up\) or -1"),
    (lambda: PulsedDevice().expected_step([1e-6, math.nan], 1), r"g must be finite .*\[nan\]"),
    (lambda: PulsedDevice().step_variance(math.inf, -1), r"g must be finite"),
    (lambda: PulsedDevice().simulate_ramps([2e-5], [1], 3, np.random.default_rng(0)),
     r"g0 = \[2e-05\] S outside the bounds"),
])
def test_bad_input(make, match):
    """Bad input raises one ConfigError naming the value."""
    with pytest.raises(ConfigError, match=match):
        make()
