"""Smooth functions of the conductance, order chosen by cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.calibration.smooth import smooth_cv


def test_smoothing_order_by_cross_validation():
    """Per-level values on a straight line plus 1 % noise: leave-one-out CV picks degree 1
    (not 0, not the interpolant); on y = x^3 it picks degree 3."""
    rng = np.random.default_rng(1)
    x = np.linspace(1, 10, 12)
    s = smooth_cv(x, 2 + 0.5 * x + 0.01 * rng.standard_normal(12))
    assert (s.kind, s.order) == ("poly", 1)
    s3 = smooth_cv(x, x**3 + 0.01 * rng.standard_normal(12))
    assert (s3.kind, s3.order) == ("poly", 3)


def test_rows_smoothed_across_levels_by_their_estimated_error():
    """Rows of 101 values per level at 40 levels, each the truth plus independent noise of
    std 0.1 per value (noise 101 x 0.01 per row, given): where the truth is the same row
    at every level, a polynomial is chosen and the smoothed rows' rms error is under a
    third of the raw rows'; where it swings with a period of 4 levels (amplitude 0.5-1.5
    across the row), which no smoother follows, the rows are kept ("own"; leave-one-level-
    out cross-validation, without the noise, picks the constant: rms error 0.74 against
    the rows' 0.10), and so at a period of 20 levels with noise 0.01 (cross-validation:
    "local2", 0.046 against 0.010); fewer than 3 levels are kept as given."""
    from xbarlab.calibration.smooth import smooth_rows_cv

    rng = np.random.default_rng(4)
    x = np.linspace(5e-6, 45e-6, 40)
    truth = np.tile(np.linspace(-1.0, 1.0, 101), (40, 1))

    def rms(a, b):
        return float(np.sqrt(np.mean((a - b) ** 2)))

    rows = truth + 0.1 * rng.standard_normal(truth.shape)
    sm, choice = smooth_rows_cv(x, rows, noise=np.full(40, 101 * 0.1**2))
    assert choice.startswith("poly")
    assert rms(sm, truth) < rms(rows, truth) / 3, (rms(sm, truth), rms(rows, truth))
    for period, noise in ((4, 0.1), (20, 0.01)):
        wiggle = truth + (np.sin(2 * np.pi * np.arange(40) / period)[:, None]
                          * np.linspace(0.5, 1.5, 101)[None, :])
        rows = wiggle + noise * rng.standard_normal(truth.shape)
        sm, choice = smooth_rows_cv(x, rows, noise=np.full(40, 101 * noise**2))
        assert choice == "own" and np.array_equal(sm, rows), (period, choice)
        assert smooth_rows_cv(x, rows)[1] != "own"
    sm, choice = smooth_rows_cv(x[:2], rows[:2])
    assert choice == "own" and np.array_equal(sm, rows[:2])


def test_bad_rows_are_refused():
    """Mismatched or non-finite levels, rows, weights or noise are refused naming what
    was expected, before any fit."""
    from xbarlab.calibration.smooth import smooth_rows_cv
    from xbarlab.errors import ConfigError

    x = np.linspace(1e-6, 10e-6, 6)
    rows = np.ones((6, 3))
    bad = [((x[:5], rows), {}, "one entry or row"),
           ((x, np.where(np.eye(6, 3) > 0, np.nan, rows)), {}, "finite"),
           ((np.c_[x, x], rows), {}, "1-D"),
           ((x, rows), {"w": -np.ones(6)}, "weight > 0"),
           ((x, rows), {"noise": np.ones(5)}, "noise")]
    for args, kw, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            smooth_rows_cv(*args, **kw)
