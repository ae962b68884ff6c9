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


def test_techc_extrapolation_beats_baselines(techc_split, monkeypatch):
    """Fitted on reads with time_point <= 4 s, predicting t = 1e5 s on the held-out half:
    median KS <= 0.08 (reached: 0.064; 0.068 with the within-level slopes shrunk before they
    were pooled across levels, 0.086 with the mean's growth on the variance's time
    scale and normal increments, 0.091 before the rows were smoothed across levels); the
    baselines on the same split score as
    measured when they were set up, carrying the 4 s change forward about 0.25 and a
    Gaussian linear in log t about 0.16 (asserted within +-0.04), and the model beats both.
    1e5 s is the only held-out time point after 4 s, so the fit is no worse than persistence
    at every later held-out time. The held-out 3.4 s point chose the increments; forced to
    the geometric decay, the 1e5 s prediction is worse (reached 0.113). Printed with -s:
    each form's held-out score and, at 1e5 s, the mean change of data and model at the
    lowest level (where the data's change stops growing after 4 s and the model's goes on)
    and over the levels >= 15 uS."""
    from xbarlab.calibration import relaxation

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
    ri = model.report.relaxation
    assert ri.extrapolation == "increments"
    # mean change at 1e5 s, data against model, per held-out level
    late, at4 = b["time_point"] == 1e5, b["time_point"] == 4.0
    first = {d: g for d, g, t in zip(b["device"], b["g"], b["time_point"], strict=True)
             if t == 0}
    rng = np.random.default_rng(2)
    means = {}
    for lvl in np.unique(b["level"]):
        m = late & (b["level"] == lvl)
        if m.sum() < 50:
            continue
        g0 = np.array([first[d] for d in b["device"][m]])
        d_data = b["g"][m] - g0
        kw = {"g_level": np.full(g0.size * 20, model.drift_law.g[np.argmin(
            np.abs(model.drift_law.g - np.median(g0)))])} if model.takes_level else {}
        d_model = model.sample(np.repeat(g0, 20), 1e5, rng, **kw) - np.repeat(g0, 20)
        d4 = b["g"][at4 & (b["level"] == lvl)] - np.array(
            [first[d] for d in b["device"][at4 & (b["level"] == lvl)]])
        means[float(np.median(g0))] = (d_data.mean(), d_model.mean(), d4.mean())
    g_low = min(means)
    high = [v for g, v in means.items() if g >= 15e-6]
    hi_data, hi_model = np.mean([v[0] for v in high]), np.mean([v[1] for v in high])
    monkeypatch.setattr(relaxation, "FORMS", ("geometric",))
    geo = fit(early, drift="relaxation", rng=np.random.default_rng(0), n_boot=20)
    ks_geo = ks_table(geo, b, rng=np.random.default_rng(1), t=1e5).median
    print(f"held-out forms {ri.extrapolation_ks}; 1e5 s: KS {tab.median:.3f}, forced "
          f"geometric {ks_geo:.3f}; lowest level {g_low * 1e6:.2f} uS mean change data "
          f"{means[g_low][0] * 1e6:.2f} uS (4 s: {means[g_low][2] * 1e6:.2f}), model "
          f"{means[g_low][1] * 1e6:.2f}; levels >= 15 uS data {hi_data * 1e6:.2f}, model "
          f"{hi_model * 1e6:.2f} uS")
    assert ks_geo > tab.median
    assert means[g_low][1] > 2 * means[g_low][0] > 0
    assert hi_data < hi_model < 0.7 * hi_data



def test_ks_distance_matches_scipy():
    """ks_distance equals scipy.stats.ks_2samp(...).statistic exactly on random samples."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.2, 1.3, size=4000)
    assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-15)
