"""Smooth functions of the conductance, order chosen by cross-validation."""

from __future__ import annotations

import numpy as np
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
