"""The relaxation fit's building blocks (xbarlab/calibration/relaxation.py)."""

import numpy as np
from xbarlab.calibration import relaxation


def test_slopes_through_the_origin():
    """Mean and variance exactly proportional to u give their slopes; a level with no read
    after the first (an empty bootstrap draw) gives zero slopes, not 0/0."""
    u = np.array([0.5, 1.0, 2.0])
    assert np.allclose(relaxation._slopes(u, 3.0 * u, 0.25 * u), (3.0, 0.25))
    empty = np.zeros(0)
    assert relaxation._slopes(empty, empty, empty) == (0.0, 0.0)
