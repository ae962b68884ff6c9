"""Synthetic round trips: sample >= 10^5 devices from a devices/ CompositeDevice with known
parameters, fit them with xbarlab.calibration.fit and compare the fitted functions with the
truth (within the fit's bootstrap bands at >= 90 % of grid points, within 5 % everywhere)."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.calibration import fit
from xbarlab.calibration.goodness import ks_distance
from xbarlab.devices.blocks import (
    ConditionOn,
    PowerLawDrift,
    ProgrammingError,
    ReadNoise,
    Relaxation,
    RelaxationPath,
    TimeSurface,
)
from xbarlab.devices.composite import CompositeDevice
from xbarlab.devices.curves import Polynomial

GMAX = 25e-6
LEVELS = np.linspace(2e-6, 24e-6, 20)
PER_LEVEL = 5000  # 20 x 5000 = 10^5 devices
T_READ = np.array([0.0, 60.0, 600.0, 3600.0, 14400.0, 86400.0])  # up to 1 day


def _pcm_truth():
    sp = Polynomial((0.26348e-6, 1.9650e-6, -1.1731e-6), x_scale=GMAX, units="S")
    mu = Polynomial((0.08, -0.03), x_scale=GMAX, units="1")
    sd = Polynomial((0.02, -0.008), x_scale=GMAX, units="1")
    return CompositeDevice(
        programming=ProgrammingError(spread=sp),
        drift_law=PowerLawDrift(t0=20.0, nu_mean=mu, nu_std=sd, fold=False),
        read_noise=ReadNoise(amplitude=Polynomial((0.01,), units="1"), t_r=250e-9, t0=20.0),
        g_range=(0.0, GMAX), name="pcm-like truth"), sp, mu, sd


def _table(model, g, times, rng):
    reads = model.sample(g, times, rng)  # (T, n)
    n = g.size
    return {"device": np.tile(np.arange(n), times.size), "g": reads.ravel(),
            "time": np.repeat(times, n), "g_target": np.tile(g, times.size)}


def _inside(curve, truth_values, g):
    lo, hi = curve.band(0.95)
    lo, hi = np.interp(g, curve.g, lo), np.interp(g, curve.g, hi)
    return (truth_values >= lo) & (truth_values <= hi)


@pytest.fixture(scope="module")
def pcm_fit():
    truth, sp, mu, sd = _pcm_truth()
    g = np.repeat(LEVELS, PER_LEVEL)
    data = _table(truth, g, T_READ, np.random.default_rng(11))
    model = fit(data, rng=np.random.default_rng(1), n_boot=50)
    return truth, model, sp, mu, sd


def test_pcm_round_trip_functions(pcm_fit):
    """IBM-PCM-like truth (sigma_prog quadratic in x = g/25 uS, mu_nu = 0.08 - 0.03 x,
    sigma_nu = 0.02 - 0.008 x, t0 = 20 s, 1/f Q = 0.01), 10^5 devices read 0 s..1 day:
    the power law and the normal family are chosen; sigma_prog(g), mu_nu(g), sigma_nu(g) at
    the 20 level targets lie inside the 95 % bootstrap band at >= 90 % of the 60
    (function, g) points and within 5 % of the truth everywhere; t0 within 5 % of 20 s."""
    truth, model, sp, mu, sd = pcm_fit
    assert model.report.drift_choice == "power-law"
    assert model.report.drift_loglik["power-law"] > model.report.drift_loglik["relaxation"]
    assert model.programming.family.value == "normal"
    assert abs(model.drift_law.t0 / 20.0 - 1) < 0.05
    inside, rel = [], []
    for curve, true in ((model.programming.spread, sp(LEVELS)),
                        (model.drift_law.mu_nu, mu(LEVELS)),
                        (model.drift_law.sigma_nu, sd(LEVELS))):
        inside.append(_inside(curve, true, LEVELS))
        rel.append(np.abs(curve(LEVELS) / true - 1))
    frac = np.concatenate(inside).mean()
    assert frac >= 0.90, f"only {frac:.2f} of grid points inside the bootstrap bands"
    assert np.concatenate(rel).max() <= 0.05


def test_pcm_predicts_month_and_year(pcm_fit):
    """Fitted on reads up to 1 day, the model predicts 30 days and 1 year: per level, KS
    distance between 2000 fresh truth cells and 20 model samples per cell; the median over
    the 20 levels is <= 0.05 at each time."""
    truth, model, *_ = pcm_fit
    rng = np.random.default_rng(5)
    for t in (30 * 86400.0, 365.25 * 86400.0):
        ks = []
        for i, g in enumerate(LEVELS):
            meas = truth.sample(np.full(2000, g), t, rng)
            pred = model.sample(np.full(2000 * 20, g), t, np.random.default_rng(100 + i))
            ks.append(ks_distance(meas, pred))
        assert np.median(ks) <= 0.05, (t, np.median(ks))


def _rram_truth():
    gmax = 40e-6
    times = (0.01, 1e5)
    mean = TimeSurface(times, (Polynomial((0.0, -0.2e-6), x_scale=gmax, units="S"),
                               Polynomial((0.2e-6, -2.5e-6), x_scale=gmax, units="S")),
                       extrapolation="linear_log_t")
    spread = TimeSurface(times, (Polynomial((0.4e-6, 0.6e-6), x_scale=gmax, units="S"),
                                 Polynomial((1.5e-6, 2.5e-6, -1.0e-6), x_scale=gmax, units="S")),
                         extrapolation="linear_log_t")
    return CompositeDevice(
        programming=ProgrammingError(identity=True),
        drift_law=Relaxation(mean=mean, spread=spread, path=RelaxationPath.INDEPENDENT_INCREMENTS,
                             condition_on=ConditionOn.PROGRAMMED),
        conditioning="initial read", g_range=(0.0, 40e-6), name="rram-like truth"), mean, spread


def test_rram_round_trip_functions():
    """RRAM-like truth (initial-read conditioned; change since the first read normal with
    mean and spread linear in ln t between 0.01 s and 1e5 s and smooth in g), 16 levels x
    6250 = 10^5 devices (8-39 uS) read at 8 times from 0.01 s to 1 day: the relaxation table is
    chosen; its mean and std of g(t) - g_0 at the 16 levels x 8 times lie inside the 95 %
    bootstrap bands at >= 90 % of points; std within 5 % of the truth and the mean within 5 %
    of the truth's std everywhere."""
    truth, mean, spread = _rram_truth()
    levels = np.linspace(8e-6, 39e-6, 16)  # away from 0 S, where reads are clamped
    g0 = np.repeat(levels, 6250)
    times = np.array([0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 86400.0])
    reads = truth.sample(g0, times, np.random.default_rng(3))
    n = g0.size
    data = {"device": np.tile(np.arange(n), times.size), "g": reads.ravel(),
            "time": np.repeat(times, n), "g_initial": np.tile(g0, times.size),
            "level": np.tile(np.repeat(np.arange(16), 6250), times.size)}
    model = fit(data, rng=np.random.default_rng(2), n_boot=60)
    assert model.conditioning == "initial read"
    assert model.report.drift_choice == "relaxation"
    blk = model.drift_law
    cols = [int(np.argmin(np.abs(blk.t - t))) for t in times]
    fm, fs = blk.mean[:, cols], blk.std[:, cols]
    tm = np.array([[mean(g, t)[()] for t in times] for g in blk.g])
    ts = np.array([[spread(g, t)[()] for t in times] for g in blk.g])
    lo_m, hi_m = np.quantile(blk.boot_mean[:, :, cols], [0.025, 0.975], axis=0)
    lo_s, hi_s = np.quantile(blk.boot_std[:, :, cols], [0.025, 0.975], axis=0)
    inside = np.concatenate([((tm >= lo_m) & (tm <= hi_m)).ravel(),
                             ((ts >= lo_s) & (ts <= hi_s)).ravel()])
    assert inside.mean() >= 0.90, inside.mean()
    assert np.max(np.abs(fs / ts - 1)) <= 0.05
    assert np.max(np.abs(fm - tm) / ts) <= 0.05


def test_pcm_report(pcm_fit, tmp_path):
    """The PCM fit's report lists t0, the per-level mu_nu / sigma_nu / raw sigma_nu / Q
    table (raw spread >= deconvolved spread at every level), never says that the power law's
    90 % band stops widening beyond the last fitted time (in S or relative to the median),
    and writes the parameter plot."""
    from xbarlab.calibration import write_report

    truth, model, *_ = pcm_fit
    data = _table(truth, np.repeat(LEVELS, 200), T_READ, np.random.default_rng(0))
    md = write_report(model, data, tmp_path / "rep", rng=np.random.default_rng(0))
    text = md.read_text()
    assert "t0 = " in text and "sigma_nu raw" in text
    assert "band does not widen" not in text  # the power law's spread in ln g keeps growing
    pl = model.report.power_law
    assert np.all(pl.sigma_nu_raw >= pl.sigma_nu)
    assert (tmp_path / "rep" / "parameters_vs_g.png").stat().st_size > 1000


def test_pcm_fit_is_the_device_model(pcm_fit, tmp_path):
    """The PCM fit (programming, power law, 1/f noise) is a CompositeDevice of fitted blocks
    whose statistics match the parametric blocks with the same curves (tables; power law
    not folded; 1/f noise g (1 + Q xi) there, g exp(Q xi) in the fit, equal to first order):
    at 3 targets and at 1 h and 30 d, KS distance between 20,000 samples of each <= 0.03
    (two-sample noise about 0.014); its file (kind "composite") loads to an equal model that
    samples the same bits and keeps the bootstrap replicates."""
    from xbarlab.devices import load
    from xbarlab.devices.curves import Table

    _, model, *_ = pcm_fit
    assert isinstance(model, CompositeDevice)

    def table(c):
        return Table(c.g, c.value, units=c.units)

    pb, d = model.programming, model.drift_law
    lo, hi = model.stat_range
    param = CompositeDevice(
        programming=ProgrammingError(spread=table(pb.spread), bias=table(pb.bias),
                                     distribution=pb.distribution),
        drift_law=PowerLawDrift(t0=d.t0, nu_mean=table(d.mu_nu), nu_std=table(d.sigma_nu),
                                fold=False),
        read_noise=ReadNoise(amplitude=table(d.q_read), t_r=d.t_r, t0=d.t0),
        g_range=(lo, hi), range_policy="edge")
    for g in (4e-6, 12e-6, 22e-6):
        for t in (3600.0, 30 * 86400.0):
            a = model.sample(np.full(20_000, g), t, np.random.default_rng(1))
            b = param.sample(np.full(20_000, g), t, np.random.default_rng(2))
            assert ks_distance(a, b) <= 0.03, (g, t)
    back = load(model.to_file(tmp_path / "pcm-fit.h5"))
    assert back == model
    g = np.linspace(2e-6, 24e-6, 1000)
    np.testing.assert_array_equal(back.sample(g, T_READ, np.random.default_rng(3)),
                                  model.sample(g, T_READ, np.random.default_rng(3)))
    np.testing.assert_array_equal(back.drift_law.mu_nu.boot, model.drift_law.mu_nu.boot)


def _pcm_preset_table(rng, *, per_level=400):
    """Reads of the pcm-ibm-2020 preset's programming and drift (nu folded, t0 = 20 s)
    with a small constant 1/f amplitude Q = 0.01, at targets 0.3125-5 uS: the programming
    error clamps about 3 % of the cells at g_prog = 0 S, whose reads are all 0 S."""
    import dataclasses

    from xbarlab import devices
    from xbarlab.devices.blocks import ReadNoise as DReadNoise

    pre = devices.load("pcm-ibm-2020")
    truth = dataclasses.replace(pre, read_noise=DReadNoise(
        amplitude=Polynomial((0.01,), units="1"), t_r=250e-9, t0=20.0))
    targets = np.array([0.3125, 0.625, 1.25, 2.5, 5.0]) * 1e-6
    times = np.array([1.0, 10.0, 100.0, 1000.0, 1e4, 86400.0])
    g = np.repeat(targets, per_level)
    return _table(truth, g, times, rng), targets


def test_pcm_power_law_with_reads_clamped_at_zero():
    """pcm-ibm-2020 physics with cells clamped at 0 S (every read 0 S, first reads
    included): the power law is still considered and chosen by held-out likelihood, the
    zero cells are counted and left out of the drift fit, and the per-level drift exponent
    matches the preset's nu = |N(mu(x), sigma(x))| (folded-normal mean and std, scipy):
    mean within 0.006, spread within 0.004, the smoothed mu_nu curve within 0.015 at every
    target; t0 within 5 % of 20 s."""
    from scipy.stats import foldnorm

    data, targets = _pcm_preset_table(np.random.default_rng(7))
    n_zero = int(np.sum(np.all(data["g"].reshape(6, -1) <= 0, axis=0)))
    assert n_zero >= 20  # the case under test: many first reads at exactly 0 S
    model = fit(data, rng=np.random.default_rng(1), n_boot=10)
    rep = model.report
    assert rep.drift_choice == "power-law", rep.drift_loglik
    info = rep.power_law
    assert info.censoring["zero_cells"] == n_zero
    assert any(f"{n_zero} of 2000 cells read <= 0 S" in s for s in rep.notes)
    x = targets / 25e-6  # the preset's log-linear nu curves (data/presets/pcm-ibm-2020.json)
    mu = np.clip(-0.0155 * np.log(x) + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * np.log(x) - 0.0059, 0.008, 0.045)
    f_mean, f_std = foldnorm.mean(mu / sd, scale=sd), foldnorm.std(mu / sd, scale=sd)
    np.testing.assert_allclose(info.levels_g, targets)
    assert np.max(np.abs(info.mu_nu - f_mean)) <= 0.006, (info.mu_nu, f_mean)
    assert np.max(np.abs(info.sigma_nu - f_std)) <= 0.004, (info.sigma_nu, f_std)
    assert np.max(np.abs(model.drift_law.mu_nu(targets) - f_mean)) <= 0.015
    assert abs(model.drift_law.t0 / 20.0 - 1) < 0.05


def test_power_law_refused_when_too_many_reads_are_nonpositive():
    """Set 15 % of the positive reads at t > 1 s of the live cells to 0 S: more than the
    10 % that can be treated as censored. drift='power-law' raises DataFormatError naming
    the count; drift='auto' falls back to the relaxation table with a note."""
    from xbarlab.errors import DataFormatError

    data, _ = _pcm_preset_table(np.random.default_rng(8), per_level=100)
    g = data["g"].copy()
    rng = np.random.default_rng(0)
    live = (g > 0) & (data["time"] > 1.0)
    hit = live & (rng.random(g.size) < 0.15)
    g[hit] = 0.0
    data = dict(data, g=g)
    with pytest.raises(DataFormatError, match=r"power-law drift fit is impossible: \d+ of the "
                       r"\d+ reads of cells with positive reads"):
        fit(data, rng=np.random.default_rng(0), drift="power-law", n_boot=2)
    model = fit(data, rng=np.random.default_rng(0), n_boot=2)
    assert model.report.drift_choice == "relaxation"
    assert any(s.startswith("Power law not considered:") for s in model.report.notes)
