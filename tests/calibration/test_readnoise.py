"""Read noise: repeated-read spread (HKU fig3d), 1/f exponents of time series."""

from __future__ import annotations

import numpy as np
import pytest
from _shared import shared_path
from xbarlab.calibration import (
    fit,
    fit_psd_exponent,
    read_measurements,
)

HKU_TARGETS = np.arange(100.0, 401.0, 50.0) * 1e-6


def _at(meas, target):
    return np.isclose(meas.g_target, target, rtol=1e-9, atol=0)


def test_hku_read_noise_from_repeated_reads():
    """HKU fig3d: one device per target read 1000 times; the read-noise fit's per-device std
    equals numpy's std (ddof=1) of the 1000 reads to 1e-9 relative (README: 0.18, 0.35,
    0.20, 0.022, 0.039, 0.078, 0.11 uS), and no programming fit is made from 1 device per
    target (the 7 targets are listed as skipped)."""
    path = shared_path("data", "measured", "hku_readc_rram", "fig3d.csv")
    meas = read_measurements(path, units="g=uS", columns="device=Target_Value_uS,"
                             "g_target=Target_Value_uS,g=Measured_Conductance_uS,cycle=Read_Cycle")
    model = fit(meas, rng=np.random.default_rng(0))
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
    model = fit(meas, rng=np.random.default_rng(0))
    assert model.drift_law is None and model.programming is None
    assert 0.7 <= model.read_noise.psd_exponent <= 1.3
    rows = np.array([np.std(meas.g[meas.device == d], ddof=1) for d in range(5)])
    means = np.array([np.mean(meas.g[meas.device == d]) for d in range(5)])
    np.testing.assert_allclose(model.report.read_noise["sigma"], rows[np.argsort(means)],
                               rtol=1e-6)
