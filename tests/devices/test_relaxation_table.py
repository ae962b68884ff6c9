"""Helpers of the quantile relaxation table (xbarlab/devices/relaxation_table.py)."""

from __future__ import annotations

import numpy as np
from xbarlab.devices.relaxation_table import bracket, sorted_quantiles


def test_sorted_quantiles_match_numpy():
    """Quantiles read from sorted values equal numpy's default ('linear') quantiles to
    rounding, for 1 to 2,000 values and for rows of a 2-D array."""
    rng = np.random.default_rng(4)
    p = np.linspace(0.0, 1.0, 101)
    for n in (1, 2, 7, 2000):
        x = rng.standard_normal(n)
        np.testing.assert_allclose(sorted_quantiles(np.sort(x), p), np.quantile(x, p),
                                   rtol=0, atol=1e-14)
    rows = rng.standard_normal((3, 50))
    np.testing.assert_allclose(sorted_quantiles(np.sort(rows, axis=1), p),
                               np.quantile(rows, p, axis=1).T, rtol=0, atol=1e-14)


def test_bracket_holds_the_edges():
    """bracket gives the index and weight of linear interpolation inside the grid and
    holds the edge values outside it."""
    grid = np.array([0.0, 1.0, 3.0])
    i, w = bracket(grid, np.array([-1.0, 0.5, 2.0, 5.0]))
    np.testing.assert_array_equal(i, [0, 0, 1, 1])
    np.testing.assert_allclose(w, [0.0, 0.5, 0.5, 1.0])
