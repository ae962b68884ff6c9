"""calibration.fit on the shared measured data (HKU, Stanford tech A/C) and its contracts.

Independent truths: per-target sample statistics recomputed here with numpy, scipy's
two-sample KS statistic, synthetic 1/f^alpha series of known exponent, SHA-256 of the data
file, and the issue's stated thresholds for the tech C split.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from _shared import shared_path
from scipy import stats
from xbarlab.calibration import (
    baseline_tables,
    fit,
    fit_psd_exponent,
    ks_table,
    read_measurements,
    split_devices,
)
from xbarlab.calibration._goodness import ks_distance
from xbarlab.calibration._smooth import smooth_cv
from xbarlab.errors import ConfigError, DataFormatError

TECHC_COLUMNS = "device=0,time=1,g=3,g_initial=4,level=5,time_point=6"
HKU_TARGETS = np.arange(100.0, 401.0, 50.0) * 1e-6


def _at(meas, target):
    return np.isclose(meas.g_target, target, rtol=1e-9, atol=0)


def _sub(table, mask):
    return {k: (v[mask] if isinstance(v, np.ndarray) else v) for k, v in table.items()}


@pytest.fixture(scope="module")
def hku_path():
    return shared_path("data", "measured", "hku_readc_rram", "fig3c_conductance_value.csv")


@pytest.fixture(scope="module")
def hku(hku_path):
    meas = read_measurements(hku_path, layout="wide", units="g=uS")
    return meas, fit(meas, rng=np.random.default_rng(0), n_boot=200)


@pytest.fixture(scope="module")
def techc():
    path = shared_path("data", "measured", "stanford_rram_relaxation", "techC",
                       "relaxdata.min.tsv.gz")
    return path, read_measurements(path, columns=TECHC_COLUMNS)


@pytest.fixture(scope="module")
def techc_split(techc):
    _, meas = techc
    return split_devices(meas, rng=np.random.default_rng(2024))


# ----------------------------------------------------------------------------- HKU


def test_hku_family_respects_verify_window(hku):
    """HKU fig3c (7 targets x 64 devices, write-verify inside +-5 uS, excess kurtosis near
    -1.2): the bounded family is chosen, the window is estimated from the largest error
    (5.00-5.10 uS), 10^4 model samples per target all lie within target +- window, and their
    excess kurtosis is within 0.2 of the data's pooled (bias-removed) value."""
    meas, model = hku
    pi = model.report.programming
    assert pi.family == "bounded"
    assert 5.0e-6 <= pi.window <= 5.1e-6
    g = np.repeat(HKU_TARGETS, 10_000)
    s = model.sample(g, 0.0, np.random.default_rng(1))
    assert np.all(np.abs(s - g) <= pi.window * (1 + 1e-12))
    e = meas.g - meas.g_target
    e_data = np.concatenate([e[_at(meas, t)] - e[_at(meas, t)].mean()
                             for t in HKU_TARGETS])
    e_model = np.concatenate([(s - g)[g == t] - (s - g)[g == t].mean() for t in HKU_TARGETS])
    assert abs(stats.kurtosis(e_model) - stats.kurtosis(e_data)) < 0.2


def test_hku_predicted_std_inside_bootstrap_interval(hku):
    """At each of the 7 targets the model's predicted std (its spread curve, and the std of
    2*10^5 model samples) lies inside the 95 % bootstrap interval (2000 resamplings of the 64
    devices, computed here) of the measured per-target std (README: 2.42-2.98 uS)."""
    meas, model = hku
    rng = np.random.default_rng(7)
    for t in HKU_TARGETS:
        x = meas.g[_at(meas, t)]
        assert x.size == 64
        boot = np.array([x[rng.integers(0, 64, 64)].std(ddof=1) for _ in range(2000)])
        lo, hi = np.quantile(boot, [0.025, 0.975])
        pred = float(model.programming.spread(t))
        samp = model.sample(np.full(200_000, t), 0.0, rng).std()
        assert lo <= pred <= hi, (t, lo, pred, hi)
        assert lo <= samp <= hi, (t, lo, samp, hi)


def test_hku_bounded_fit_to_composite_is_exact(hku):
    """to_composite() of the HKU fit (bounded family: beta on the +-5 uS verify window with
    the fitted bias and spread) keeps the family and window, and at each of the 7 targets
    20,000 samples of the composite and of the calibrated model (different seeds) have
    two-sample KS <= 0.03 (0.019 at 99.9 %); with one seed both program the same values
    to 1e-12 relative (the same sampler), and the composite's errors pass KS <= 0.02
    against scipy.stats.beta with the method-of-moments shapes of the fitted bias and
    spread at 250 uS (computed here)."""
    _, model = hku
    comp = model.to_composite()
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


def test_hku_read_noise_from_repeated_reads():
    """HKU fig3d: one device per target read 1000 times; the read-noise fit's per-device std
    equals numpy's std (ddof=1) of the 1000 reads to 1e-9 relative (README: 0.18, 0.35,
    0.20, 0.022, 0.039, 0.078, 0.11 uS), and no programming fit is made from 1 device per
    target (the 7 targets are listed as skipped)."""
    path = shared_path("data", "measured", "hku_readc_rram", "fig3d.csv")
    meas = read_measurements(path, units="g=uS", columns="device=Target_Value_uS,"
                             "g_target=Target_Value_uS,g=Measured_Conductance_uS,cycle=Read_Cycle")
    model = fit(meas)
    rn = model.report.read_noise
    expect = np.array([np.std(meas.g[_at(meas, t)], ddof=1) for t in HKU_TARGETS])
    means = np.array([np.mean(meas.g[_at(meas, t)]) for t in HKU_TARGETS])
    order = np.argsort(means)
    np.testing.assert_allclose(rn["sigma"], expect[order], rtol=1e-9)
    np.testing.assert_allclose(expect * 1e6, [0.18, 0.35, 0.20, 0.022, 0.039, 0.078, 0.11],
                               atol=0.006)
    assert model.programming is None
    assert len([s for s in model.report.skipped if s[2] == "programming"]) == 7


# ----------------------------------------------------------------------------- read noise PSD


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_psd_exponent_recovers_synthetic(alpha):
    """A synthetic series with PSD exactly ~ 1/f^alpha (white noise shaped in the Fourier
    domain, 2^17 samples at 400 Hz): the fitted exponent over 2-40 Hz is alpha +- 0.05."""
    rng = np.random.default_rng(3)
    n, fs = 1 << 17, 400.0
    f = np.fft.rfftfreq(n, 1 / fs)
    amp = np.zeros_like(f)
    amp[1:] = f[1:] ** (-alpha / 2)
    spec = amp * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    x = 1e-5 + 1e-8 * np.fft.irfft(spec, n)
    a, _ = fit_psd_exponent(x, fs)
    assert abs(a - alpha) < 0.05


def test_techa_time_series_read_noise():
    """Stanford tech A time series (5 levels x 100,000 samples at 400 Hz): a time-series fit
    gives read noise only, with the median 1/f exponent over the 5 series between 0.7 and
    1.3 (flicker noise) and the per-series read std equal to numpy's std of each row."""
    path = shared_path("data", "measured", "stanford_rram_relaxation", "techA",
                       "tsdata.min.tsv.gz")
    meas = read_measurements(path, columns="level=0", layout="timeseries", sample_rate=400,
                             samples_from=2)
    model = fit(meas)
    assert model.drift_block is None and model.programming is None
    assert 0.7 <= model.read_noise.psd_exponent <= 1.3
    rows = np.array([np.std(meas.g[meas.device == d], ddof=1) for d in range(5)])
    means = np.array([np.mean(meas.g[meas.device == d]) for d in range(5)])
    np.testing.assert_allclose(model.report.read_noise["sigma"], rows[np.argsort(means)],
                               rtol=1e-6)


# ----------------------------------------------------------------------------- tech C


def test_techc_interpolation_split(techc_split):
    """Tech C cells split in halves by address (seed 2024): fitted on one half at all times,
    the model's KS distance to the other half, over (level, t > 0) cells with >= 50 held-out
    devices, has median <= 0.08 (reached: about 0.058)."""
    a, b = techc_split
    model = fit(a, rng=np.random.default_rng(0), n_boot=20)
    assert model.conditioning == "initial read"
    tab = ks_table(model, b, rng=np.random.default_rng(1))
    assert np.sum(np.isfinite(tab.ks)) >= 150
    assert tab.median <= 0.08


def test_techc_extrapolation_beats_baselines(techc_split):
    """Fitted on reads with time_point <= 4 s, predicting t = 1e5 s on the held-out half:
    median KS <= 0.12 (reached: about 0.095); the baselines on the same split score as the
    issue states, carrying the 4 s change forward about 0.25 and a Gaussian linear in log t
    about 0.16 (asserted within +-0.04), and the model beats both."""
    a, b = techc_split
    early = _sub(a, a["time_point"] <= 4.0)
    model = fit(early, drift="relaxation", rng=np.random.default_rng(0), n_boot=20)
    tab = ks_table(model, b, rng=np.random.default_rng(1), t=1e5)
    assert tab.median <= 0.12
    base = baseline_tables(early, b, t_from=4.0, rng=np.random.default_rng(1), t=1e5)
    carry, lin = base["carry forward"].median, base["gaussian log-linear"].median
    assert abs(carry - 0.25) < 0.04 and abs(lin - 0.16) < 0.04
    assert tab.median < lin < carry


def test_techc_model_file_round_trip(techc, tmp_path):
    """The full tech C fit saved with to_file and read back with xbarlab.devices.load samples
    the same bits for the same seed; the provenance holds the data file's SHA-256 (computed
    here with hashlib), the method and the drift choice; the bootstrap replicates survive."""
    from xbarlab.devices import load

    path, meas = techc
    model = fit(meas, rng=np.random.default_rng(0), n_boot=10)
    out = model.to_file(tmp_path / "techc.h5")
    back = load(out)
    g = np.linspace(1e-6, 60e-6, 500)
    t = np.array([0.5, 10.0, 1e5, 3e7])
    a = model.sample(g, t, np.random.default_rng(9))
    c = back.sample(g, t, np.random.default_rng(9))
    assert np.array_equal(a, c)
    np.testing.assert_array_equal(back.drift_block.boot_std, model.drift_block.boot_std)
    from xbarlab.formats import read_model_file

    _, _, prov = read_model_file(out)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov.sources[0]["sha256"] == digest
    assert prov.method == "calibration.fit"
    assert prov.settings["drift_choice"] == "relaxation"


def test_conditioning_choice_and_composition(techc, hku):
    """With both g_target and g_initial the default conditioning is "target" and
    conditioning="initial read" switches; the tech C relaxation composed with the HKU
    programming error is target-conditioned: at t = 0 its samples equal the programming
    model's (same seed, same bits), at t = 1e5 s their mean moves by the relaxation table's
    edge mean shift (HKU targets lie above tech C's range) within 4 standard errors."""
    _, meas = techc
    cols = {k: getattr(meas, k) for k in ("device", "g", "time", "time_point", "g_initial",
                                           "level")}
    cols["g_target"] = (meas.level + 0.5) * 40e-6 / 32
    sel = meas.level < 32
    cols = _sub(cols, sel)
    m_t = fit(cols, drift="none", n_boot=5)
    assert m_t.conditioning == "target"
    m_i = fit(cols, conditioning="initial read", drift="relaxation", n_boot=5)
    assert m_i.conditioning == "initial read"
    _, prog = hku
    comp = m_i.with_programming(prog)
    assert comp.conditioning == "target"
    g = np.full(50_000, 200e-6)
    np.testing.assert_array_equal(comp.sample(g, 0.0, np.random.default_rng(4)),
                                  prog.sample(g, 0.0, np.random.default_rng(4)))
    s0 = comp.sample(g, 0.0, np.random.default_rng(5))
    s1 = comp.sample(g, 1e5, np.random.default_rng(5))
    blk = m_i.drift_block
    j = int(np.argmin(np.abs(blk.t - 1e5)))
    shift = blk.mean[-1, j]
    se = np.std(s1 - s0) / np.sqrt(g.size)
    assert abs(np.mean(s1 - s0) - shift) < 4 * se
    via_fit = fit(cols, conditioning="initial read", drift="relaxation", n_boot=5,
                  programming_from=prog)
    assert via_fit.conditioning == "target" and via_fit.programming is prog.programming


# ----------------------------------------------------------------------------- contracts


def test_ks_distance_matches_scipy():
    """ks_distance equals scipy.stats.ks_2samp(...).statistic exactly on random samples."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.2, 1.3, size=4000)
    assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)


def test_smoothing_order_by_cross_validation():
    """Per-level values on a straight line plus 1 % noise: leave-one-out CV picks degree 1
    (not 0, not the interpolant); on y = x^3 it picks degree 3."""
    rng = np.random.default_rng(1)
    x = np.linspace(1, 10, 12)
    s = smooth_cv(x, 2 + 0.5 * x + 0.01 * rng.standard_normal(12))
    assert (s.kind, s.order) == ("poly", 1)
    s3 = smooth_cv(x, x**3 + 0.01 * rng.standard_normal(12))
    assert (s3.kind, s3.order) == ("poly", 3)


def test_levels_with_few_devices_are_skipped_and_listed(techc):
    """Tech C levels >= 32 hold 1-52 devices: with min_devices=60 they are skipped and
    listed in the report (part "drift"), without an exception or a warning (warnings are
    errors in this test suite); the 32 regular levels are fitted."""
    _, meas = techc
    model = fit(meas, drift="relaxation", min_devices=60, n_boot=2)
    skipped = [s for s in model.report.skipped if s[2] == "drift"]
    assert len(skipped) == 10
    assert all(n < 60 for _, n, _ in skipped)
    assert model.drift_block.g.size == 32


def test_unsupported_data_raise_data_format_error(hku):
    """One time point for a drift fit, one programming target, fewer than 5 devices, no g
    column: DataFormatError naming what is missing; a bad conditioning: ConfigError."""
    meas, _ = hku
    one_t = {"device": np.arange(100), "g": np.full(100, 1e-5), "g_initial": np.full(100, 1e-5),
             "time": np.zeros(100)}
    with pytest.raises(DataFormatError, match="times"):
        fit(one_t, drift="relaxation")
    first = _at(meas, 1e-4)
    one_level = {"g": meas.g[first], "g_target": meas.g_target[first]}
    with pytest.raises(DataFormatError, match="2 targets"):
        fit(one_level)
    with pytest.raises(DataFormatError, match="at least 5"):
        fit({"g": meas.g[:4], "g_target": meas.g_target[:4]})
    with pytest.raises(DataFormatError, match="'g'"):
        fit({"g_target": meas.g_target})
    with pytest.raises(ConfigError, match="conditioning"):
        fit(meas, conditioning="sideways")


def test_cli_calibrate_writes_model_and_report(hku_path, tmp_path, capsys):
    """`xbarlab calibrate HKU --wide --units g=uS -o m.h5 --report R` exits 0 and writes a
    model that devices.load reads (bounded family), report.md naming the family and the
    PNG of the programming error; a second run without --force exits 2 and leaves the file."""
    from xbarlab.cli import main
    from xbarlab.devices import load

    out = tmp_path / "m.h5"
    rep = tmp_path / "report"
    args = ["calibrate", str(hku_path), "--wide", "--units", "g=uS", "-o", str(out),
            "--report", str(rep), "--bootstrap", "50"]
    assert main(args) == 0
    model = load(out)
    assert model.programming.family.value == "bounded"
    text = (rep / "report.md").read_text()
    assert "bounded" in text and "programming_error.png" in text
    assert (rep / "programming_error.png").stat().st_size > 1000
    before = out.read_bytes()
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_report_folder_for_relaxation(techc_split, tmp_path):
    """write_report on a tech C fit writes the g-vs-time plot, the parameter plot, the KS
    heat map and report.md with the held-out likelihoods of both drift models and a KS
    median equal to ks_table's for the same seed; reusing the folder is allowed (manifest)."""
    from xbarlab.calibration import write_report

    a, _ = techc_split
    model = fit(a, rng=np.random.default_rng(0), n_boot=5)
    md = write_report(model, a, tmp_path / "rep", rng=np.random.default_rng(3))
    for name in ("g_vs_time.png", "parameters_vs_g.png", "ks_heatmap.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 1000
    text = md.read_text()
    assert "power-law:" in text and "relaxation:" in text
    ref = ks_table(model, a, rng=np.random.default_rng(3), min_devices=50)
    assert f"Median {ref.median:.3f}" in text
    write_report(model, a, tmp_path / "rep", rng=np.random.default_rng(3))
