"""KS tables against measured reads, device splits and the two baselines."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from xbarlab.calibration import (
    baseline_tables,
    fit,
    ks_table,
)
from xbarlab.calibration.goodness import ks_distance


def _sub(table, mask):
    return {k: (v[mask] if isinstance(v, np.ndarray) else v) for k, v in table.items()}


def test_techc_extrapolation_beats_baselines(techc_split):
    """Fitted on reads with time_point <= 4 s, predicting t = 1e5 s on the held-out half:
    median KS <= 0.08 (reached: 0.068; 0.086 with the mean's growth on the variance's time
    scale and normal increments, 0.091 before the rows were smoothed across levels); the
    baselines on the same split score as
    measured when they were set up, carrying the 4 s change forward about 0.25 and a
    Gaussian linear in log t about 0.16 (asserted within +-0.04), and the model beats both.
    1e5 s is the only held-out time point after 4 s, so the fit is no worse than persistence
    at every later held-out time."""
    a, b = techc_split
    assert set(np.unique(b["time_point"][b["time_point"] > 4.0])) == {1e5}
    early = _sub(a, a["time_point"] <= 4.0)
    model = fit(early, drift="relaxation", rng=np.random.default_rng(0), n_boot=20)
    tab = ks_table(model, b, rng=np.random.default_rng(1), t=1e5)
    assert tab.median <= 0.08
    base = baseline_tables(early, b, t_from=4.0, rng=np.random.default_rng(1), t=1e5)
    carry, lin = base["carry forward"].median, base["gaussian log-linear"].median
    assert abs(carry - 0.25) < 0.04 and abs(lin - 0.16) < 0.04
    assert tab.median < lin < carry



def test_ks_distance_matches_scipy():
    """ks_distance equals scipy.stats.ks_2samp(...).statistic exactly on random samples."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.2, 1.3, size=4000)
    assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)
