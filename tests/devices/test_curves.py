"""Bands of fitted curves (devices/curves.py): the simultaneous bootstrap band against the
closed-form Sidak value and against the coverage of fresh draws of known laws."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from xbarlab.devices.curves import FittedCurve, simultaneous_band
from xbarlab.errors import ConfigError, DataFormatError


def _coverage(lo, hi, fresh):
    """Share of the rows of ``fresh`` inside [lo, hi] at every column."""
    return float(np.mean(np.all((fresh >= lo) & (fresh <= hi), axis=1)))


@pytest.mark.parametrize("k", [1, 10, 68])
def test_simultaneous_band_of_independent_normals_is_the_sidak_band(k):
    """k independent N(0, 1) estimates, 4,000 replicates: the band is +-c with c the Sidak
    value Phi^-1((1 + 0.95^(1/k)) / 2) (1.960, 2.800, 3.369) within 4 % at both edges, and
    fresh draws of the same law lie inside at all k together 95 +- 1 % of the time; the
    pointwise band holds them all only 0.95^k of the time (for k = 68: 3 %)."""
    rng = np.random.default_rng(1)
    lo, hi = simultaneous_band(rng.normal(size=(4000, k)), 0.95)
    c = stats.norm.ppf((1 + 0.95 ** (1 / k)) / 2)
    np.testing.assert_allclose(hi.mean(), c, rtol=0.04)
    np.testing.assert_allclose(-lo.mean(), c, rtol=0.04)
    fresh = rng.normal(size=(20_000, k))
    assert abs(_coverage(lo, hi, fresh) - 0.95) < 0.01
    point = stats.norm.ppf(0.975)
    assert abs(_coverage(-point, point, fresh) - 0.95**k) < 0.01


def test_simultaneous_band_of_correlated_and_skewed_estimates_covers_as_stated():
    """Two known laws, 4,000 replicates each, 20,000 fresh draws: 50 normal estimates with
    AR(1) correlation 0.9 (the band is narrower than Sidak's 3.28, because neighbours miss
    together) and 30 independent exponential ones (skewed: the upper edge lies farther
    from the median than the lower). Both bands hold the fresh draws at every estimate
    95 +- 1 % of the time."""
    rng = np.random.default_rng(2)
    k, rho = 50, 0.9
    chol = np.linalg.cholesky(rho ** np.abs(np.subtract.outer(np.arange(k), np.arange(k))))
    lo, hi = simultaneous_band(rng.normal(size=(4000, k)) @ chol.T)
    assert abs(_coverage(lo, hi, rng.normal(size=(20_000, k)) @ chol.T) - 0.95) < 0.01
    assert hi.mean() < stats.norm.ppf((1 + 0.95 ** (1 / k)) / 2) - 0.1
    lo, hi = simultaneous_band(rng.exponential(size=(4000, 30)))
    assert abs(_coverage(lo, hi, rng.exponential(size=(20_000, 30))) - 0.95) < 0.01
    assert np.all(hi - np.log(2) > 2 * (np.log(2) - lo))


def test_simultaneous_band_side_without_spread_takes_the_replicates_extreme():
    """Estimates whose replicates sit at 0 mostly (a fraction of cells at 0 S, say):
    90 of 100 replicates at 0 and 10 at 0.01 have no spread on either side of the median
    0, so their band is the replicates' range [0, 0.01]; they do not inflate the band of
    a normal estimate beside them, whose half-width stays within 10 % of Sidak's for two
    estimates (2.24)."""
    rng = np.random.default_rng(3)
    reps = np.zeros((100, 2))
    reps[:10, 0] = 0.01
    reps[:, 1] = rng.normal(size=100)
    lo, hi = simultaneous_band(reps)
    assert (lo[0], hi[0]) == (0.0, 0.01)
    np.testing.assert_allclose((hi[1] - lo[1]) / 2 / reps[:, 1].std(),
                               stats.norm.ppf((1 + 0.95**0.5) / 2), rtol=0.15)


def test_fitted_curve_simultaneous_band_contains_the_pointwise_one():
    """A fitted curve of 20 grid points with 200 replicates: band(simultaneous=True) is
    simultaneous_band of its replicates and contains the pointwise 95 % band; a curve
    without replicates has the band [value, value] either way."""
    rng = np.random.default_rng(4)
    g = np.linspace(1e-6, 20e-6, 20)
    curve = FittedCurve(g, np.ones(20), "1", 1 + 0.1 * rng.normal(size=(200, 20)))
    lo, hi = curve.band(0.95, simultaneous=True)
    s_lo, s_hi = simultaneous_band(curve.boot, 0.95)
    np.testing.assert_array_equal(lo, s_lo)
    np.testing.assert_array_equal(hi, s_hi)
    p_lo, p_hi = curve.band(0.95)
    assert np.all(lo < p_lo) and np.all(hi > p_hi)
    bare = FittedCurve(g, np.ones(20), "1")
    np.testing.assert_array_equal(bare.band(simultaneous=True)[0], np.ones(20))


@pytest.mark.parametrize("reps, level, error, match", [
    (np.zeros((100, 3)), 1.0, ConfigError, r"level must lie in \(0, 1\), got 1.0"),
    (np.zeros((10, 3)), 0.95, DataFormatError, r">= 20 replicates .* shape \(10, 3\)"),
    (np.full((100, 3), np.nan), 0.95, DataFormatError, "must be finite"),
])
def test_simultaneous_band_refuses_bad_input(reps, level, error, match):
    """A coverage outside (0, 1), fewer than 20 replicates or a NaN replicate is refused
    with a one-line error naming the value."""
    with pytest.raises(error, match=match):
        simultaneous_band(reps, level)
