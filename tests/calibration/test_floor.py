"""The sampling floor of the KS table, the baselines beside it and the verdict."""

from __future__ import annotations

import numpy as np
import pytest
from _relaxing_cells import relaxing_cells
from scipy import stats
from xbarlab.calibration import fit
from xbarlab.calibration.goodness import goodness_table, ks_distance, ks_distance_rows
from xbarlab.devices.blocks import ProgrammingError
from xbarlab.devices.composite import CompositeDevice
from xbarlab.devices.curves import constant
from xbarlab.errors import ConfigError

US = 1e-6


@pytest.fixture(scope="module")
def relaxation_fit():
    data = relaxing_cells(150, 0.3 * US, np.random.default_rng(11))
    model = fit(data, conditioning="initial read", drift="relaxation", n_boot=2,
                min_devices=20, rng=np.random.default_rng(0))
    return data, model


def test_ks_distance_rows_equals_ks_distance_with_ties():
    """Each row's KS against the reference equals ks_distance (and scipy's ks_2samp) to
    1e-15, also with ties inside a row, between row and reference and an atom at 0."""
    rng = np.random.default_rng(5)
    ref = np.round(np.maximum(rng.normal(0.3, 1.0, 700), 0.0), 1)
    data = np.round(np.maximum(rng.normal(0.5, 1.2, (40, 60)), 0.0), 1)
    got = ks_distance_rows(data, ref)
    want = [ks_distance(r, ref) for r in data]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(got, [stats.ks_2samp(r, ref).statistic for r in data], atol=1e-15)


def test_floor_follows_the_two_sample_ks_null():
    """Cells whose model samples are independent draws of one normal law (a target-
    conditioned model N(g_T, (1 uS)^2), no drift): the floor's replicates are two-sample KS
    distances between n = 100 data and m = 2000 model draws of one continuous law, whose
    null law scipy.stats.ks_2samp takes as kstwo(round(n m / (n + m))). Pooled over 4
    levels x 400 replicates their 95 % quantile lies within 6 % of kstwo's (Monte Carlo
    error about 2 %, kstwo vs the exact law about 1 %) and their median within 6 % of its."""
    n, levels = 100, np.arange(1, 5) * 10 * US
    rng = np.random.default_rng(3)
    g_t = np.repeat(levels, n)
    data = {"device": np.arange(g_t.size), "g_target": g_t, "time": np.ones(g_t.size),
            "g": g_t + US * rng.standard_normal(g_t.size)}
    model = CompositeDevice(programming=ProgrammingError(spread=constant(US)),
                            g_range=(0.0, 60 * US))
    gt = goodness_table(model, data, rng=np.random.default_rng(4), n_replicates=400,
                        min_devices=50)
    reps = gt.floor_replicates.ravel()
    assert reps.size == 1600 and np.all(np.isfinite(reps))
    en = round(n * 2000 / (n + 2000))
    assert np.quantile(reps, 0.95) == pytest.approx(stats.kstwo.isf(0.05, en), rel=0.06)
    assert np.median(reps) == pytest.approx(stats.kstwo.isf(0.5, en), rel=0.06)
    assert np.all(gt.floor == np.quantile(gt.floor_replicates, 0.95, axis=0))


def test_model_fitted_to_its_data_is_indistinguishable(relaxation_fit):
    """A relaxation table fitted to cells generated in the test (4 levels x 150 cells,
    three times) and scored on the same reads: no cell beyond the family-wise threshold, the
    verdict says "indistinguishable from the data at this sample size"; the floor lies
    above the in-sample KS at most cells; persistence (the change at the previous time
    point carried forward; none at 1 s) scores worse than the model at every time."""
    data, model = relaxation_fit
    gt = goodness_table(model, data, rng=np.random.default_rng(1), n_replicates=50,
                        min_devices=50)
    assert gt.ks.ks.shape == (4, 3) and np.all(np.isfinite(gt.floor))
    assert gt.verdict().startswith("indistinguishable from the data at this sample size")
    assert not gt.failing.any() and gt.above_floor.sum() <= 2
    for j in range(3):
        assert np.median(gt.persistence.ks[:, j]) > np.median(gt.ks.ks[:, j])
    assert gt.t_fit_max == pytest.approx(100.0)


def test_wrong_model_is_flagged_where_it_fails(relaxation_fit):
    """The same model scored on held-out cells whose relaxation spread is 2.5x larger
    (0.75 uS instead of 0.3 uS; the first reads unchanged): the verdict names the cells
    beyond the floor, at 10 s and 100 s every level fails, and the empirical bootstrap
    (training reads resampled) fails like the model does."""
    _, model = relaxation_fit
    wrong = relaxing_cells(150, 0.75 * US, np.random.default_rng(12))
    train = relaxing_cells(150, 0.3 * US, np.random.default_rng(11))
    gt = goodness_table(model, train, held_out=wrong, rng=np.random.default_rng(2),
                        n_replicates=50, min_devices=50)
    assert gt.verdict().startswith("differs from the data at ")
    assert "t = 100 s: every level" in gt.verdict()
    assert gt.failing[:, 1:].all()
    assert np.all(gt.empirical.ks[:, 1:] > gt.floor[:, 1:])


def test_goodness_table_refuses_bad_arguments(relaxation_fit):
    """A non-Generator rng, fewer than 20 replicates and a KS table of other cells raise
    ConfigError naming the parameter."""
    data, model = relaxation_fit
    with pytest.raises(ConfigError, match="rng"):
        goodness_table(model, data, rng=0)
    with pytest.raises(ConfigError, match="n_replicates"):
        goodness_table(model, data, rng=np.random.default_rng(0), n_replicates=5)
    gt = goodness_table(model, data, rng=np.random.default_rng(0), n_replicates=20)
    bad = type(gt.ks)(level=gt.ks.level[:2], level_g=gt.ks.level_g[:2], t=gt.ks.t,
                      ks=gt.ks.ks[:2], n=gt.ks.n[:2])
    with pytest.raises(ConfigError, match="ks has"):
        goodness_table(model, data, rng=np.random.default_rng(0), ks=bad)
