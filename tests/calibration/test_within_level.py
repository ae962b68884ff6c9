"""The change after the first read conditioned on where the cell landed in its level
(calibration/relaxation.py conditional_quantiles, devices/relaxation_table.py slope)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from xbarlab.calibration import fit, read_measurements, tables
from xbarlab.calibration.relaxation import conditional_quantiles
from xbarlab.devices.relaxation_table import RelaxationTable

YEAR = 365.25 * 86400.0


def test_conditional_quantiles_recover_a_location_scale_law():
    """d = 0.5 - 0.4 x + (1 + 2 x) e, e ~ N(0, 1), x ~ U(-0.2, 0.2), 20,000 cells: the
    conditional quantiles q(p) + s(p) x equal 0.5 - 0.4 x + (1 + 2 x) Phi^-1(p) within
    0.05 at p = 0.1, 0.5, 0.9 and x = -0.2, 0, 0.2."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.2, 0.2, 20_000)
    d = 0.5 - 0.4 * x + (1 + 2 * x) * rng.standard_normal(x.size)
    p = np.array([0.1, 0.5, 0.9])
    q, s = conditional_quantiles(x, d, p, -0.2, 0.2)
    for xv in (-0.2, 0.0, 0.2):
        truth = 0.5 - 0.4 * xv + (1 + 2 * xv) * stats.norm.ppf(p)
        np.testing.assert_allclose(q + s * xv, truth, atol=0.05)


def test_independent_change_keeps_empirical_quantiles():
    """d independent of x (both normal, 500 cells): both slopes shrink to exactly 0, and
    q equals the empirical quantiles of d."""
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.3, 500)
    d = rng.normal(0, 2.0, 500)
    p = np.linspace(0, 1, 11)
    q, s = conditional_quantiles(x, d, p, x.min(), x.max())
    assert np.all(s == 0.0)
    np.testing.assert_allclose(q, np.quantile(d, p), rtol=1e-12, atol=1e-15)


def test_table_slope_applies_within_the_level_range_and_round_trips():
    """One level, q = 0 and slope = -0.5 at every p: delta(g0) = -0.5 (clip(g0, lo, hi) -
    ref); to_dict/from_dict keeps the fields; a table without them has none in its dict."""
    g = np.array([1e-6])
    t = np.array([0.0, 10.0])
    p = np.linspace(0, 1, 3)
    q = np.zeros((1, 2, 3))
    sl = np.full_like(q, -0.5)
    tab = RelaxationTable(g, t, p, q, tau=1.0, slope=sl, g_ref=[1e-6], g_lo=[0.5e-6],
                          g_hi=[1.5e-6])
    g0 = np.array([0.2e-6, 0.8e-6, 1.2e-6, 3e-6])
    want = -0.5 * (np.clip(g0, 0.5e-6, 1.5e-6) - 1e-6)
    np.testing.assert_allclose(tab.delta(g0, 10.0, np.full(4, 0.3)), want, atol=1e-20)
    back = RelaxationTable.from_dict(tab.to_dict())
    np.testing.assert_array_equal(back.delta(g0, 10.0, np.full(4, 0.3)),
                                  tab.delta(g0, 10.0, np.full(4, 0.3)))
    plain = RelaxationTable(g, t, p, q, tau=1.0)
    assert not plain.conditional and "slope" not in plain.to_dict()


def _corr_first_read_change(g1, d):
    return float(np.corrcoef(g1, d)[0, 1])


def _boot_band(g1, d, rng, n_boot=200):
    idx = rng.integers(0, g1.size, (n_boot, g1.size))
    c = [_corr_first_read_change(g1[i], d[i]) for i in idx]
    return np.quantile(c, [0.005, 0.995])


def _model_corr(model, g_in, times, rng, n_samples=20):
    reads = model.sample(np.repeat(g_in, n_samples), times, rng)
    return [_corr_first_read_change(reads[0], reads[k] - reads[0])
            for k in range(1, times.size)]


def _check_corr(model, pv, lev, labels, g_in_of, times_idx, rng, min_frac=0.9):
    """Share of (level, time) cells whose model correlation lies inside the data's 99 %
    band, pooled and per later time (time index -> share), and the cells outside the
    data's simultaneous 95 % band (:func:`xbarlab.devices.curves.simultaneous_band` of 200
    resamples of each level's cells, one resample used at every time), each a line."""
    from xbarlab.devices.curves import simultaneous_band

    rng_joint = np.random.default_rng(22)
    inside, total = 0, 0
    per = {k: [0, 0] for k in times_idx[1:]}
    cells, boot = [], []
    for i in labels:
        m = lev == i
        g1 = pv.g[m, times_idx[0]]
        ok = np.all(np.isfinite(pv.g[m][:, times_idx]), axis=1)
        if ok.sum() < 50:
            continue
        times = np.array([np.nanmedian(pv.t[:, k]) for k in times_idx])
        mc = _model_corr(model, g_in_of(m)[ok], times, rng)
        pick = rng_joint.integers(0, int(ok.sum()), (200, int(ok.sum())))
        for k, c_model in zip(times_idx[1:], mc, strict=True):
            d = pv.g[m, k][ok] - g1[ok]
            lo, hi = _boot_band(g1[ok], d, rng)
            inside += lo <= c_model <= hi
            total += 1
            per[k][0] += lo <= c_model <= hi
            per[k][1] += 1
            cells.append((f"level {i}, time {k}", c_model))
            boot.append([_corr_first_read_change(g1[ok][p], d[p]) for p in pick])
    lo, hi = simultaneous_band(np.array(boot).T, 0.95)
    joint = [f"{w}: {c:.3f} vs [{a:.3f}, {b:.3f}]"
             for (w, c), a, b in zip(cells, lo, hi, strict=True) if not a <= c <= b]
    return inside / total, {k: a / b for k, (a, b) in per.items() if b}, joint


@pytest.mark.slow
def test_pcm_example_correlation_and_spread(tmp_path):
    """The shipped pcm_drift.csv's reduced range (pcm-ibm-2020, 8 targets 0.3125..2.5 uS x
    150 cells, the file's first 1,200 cells), fitted as a relaxation table: in model
    samples the correlation between the 1 s read and the change at 10 s..1 d lies inside
    the data's 99 % bootstrap band at >= 90 % of the 40 (level, time) cells (reached: all;
    drawn independently of the first read within a level: 35 %); at 2.5 uS the
    model's spread at 1 d is within 0.07 uS of the preset's (0.511 uS; reached 0.503;
    drawn independently: 0.70) and at 0.3125 uS the fraction of cells reading 0 S at 1 y
    within 0.08 of the preset's (0.229; reached 0.179 with the geometric decay the held-out
    time chooses here, 0.299 with the increments; drawn independently: 0.506). (The
    default drift choice takes the power law on this subset, 13.946 against 13.944 nats
    per read; its correlations lie inside at 35 of the 40 cells, printed with -s.)"""
    from xbarlab import devices

    meas = _reduced_pcm_example(tmp_path)
    model = fit(meas, rng=np.random.default_rng(0), n_boot=5, drift="relaxation")
    cols = tables.columns(meas)
    pv = tables.pivot(cols, use_initial=False)
    lev = pv.level.astype(int)
    frac, _, _ = _check_corr(model, pv, lev, range(8), lambda m: pv.target[m],
                             list(range(6)), np.random.default_rng(3))
    auto = fit(meas, rng=np.random.default_rng(0), n_boot=5)
    print("default choice:", auto.report.drift_choice, auto.report.drift_loglik,
          "correlations inside:", _check_corr(auto, pv, lev, range(8), lambda m: pv.target[m],
                                              list(range(6)), np.random.default_rng(3)))
    assert frac >= 0.9, frac
    pre = devices.load("pcm-ibm-2020")
    x = np.full(100_000, 2.5e-6)
    s_fit = model.sample(x, 86400.0, np.random.default_rng(4)).std()
    s_pre = pre.sample(x, 86400.0, np.random.default_rng(5)).std()
    assert abs(s_fit - s_pre) < 0.07e-6, (s_fit, s_pre)
    x = np.full(100_000, 0.3125e-6)
    z_fit = np.mean(model.sample(x, YEAR, np.random.default_rng(6)) == 0)
    z_pre = np.mean(pre.sample(x, YEAR, np.random.default_rng(7)) == 0)
    assert abs(z_fit - z_pre) < 0.08, (z_fit, z_pre)


@pytest.mark.slow
def test_relaxation_toward_centre_correlation_recovered():
    """Generator (iii) (tests/_synthetic_rram.py: g_1 uniform in a 1 uS window about the
    centre, relaxation toward it with tau = 100 s, beta = 0.5), 8 levels x 400 cells read at
    0, 1, 10, 100, 1e3, 1e4 s: the first-read-conditioned fit's per-level correlation between
    the first read and the change lies inside the data's 99 % bootstrap band at >= 90 % of
    the 40 (level, time) cells (the change drawn independently of the first read: 0)."""
    from _synthetic_rram import relaxation_toward_centre

    times = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4])
    data = relaxation_toward_centre(np.linspace(5e-6, 40e-6, 8), 400, times,
                                    np.random.default_rng(7))
    model = fit(data, rng=np.random.default_rng(0), drift="relaxation", n_boot=5)
    cols = tables.columns(data)
    pv = tables.pivot(cols, use_initial=True)
    lev = pv.level.astype(int)
    frac, _, _ = _check_corr(model, pv, lev, range(8), lambda m: pv.g0[m], list(range(6)),
                             np.random.default_rng(3))
    assert frac >= 0.9, frac


@pytest.mark.slow
def test_techc_correlation_inside_bootstrap_band(techc):
    """Tech C (../shared): per-level correlation between the first read and the change at
    0.01 s..1e5 s in model samples lies inside the data's 99 % bootstrap band at >= 90 %
    of the levels with >= 50 devices read at every time, at each of those times, and
    inside the data's simultaneous 95 % band at every one of those (level, time) cells."""
    _, meas = techc
    model = fit(meas, rng=np.random.default_rng(0), drift="relaxation", n_boot=5)
    cols = tables.columns(meas)
    pv = tables.pivot(cols, use_initial=True)
    lev = pv.level.astype(int)
    frac, per_time, joint = _check_corr(model, pv, lev, range(32), lambda m: pv.g0[m],
                                        [0, 1, 2, 3, 5], np.random.default_rng(3))
    print("tech C: levels inside the band", frac, "per time column", per_time,
          "outside the simultaneous band:", joint)
    assert frac >= 0.9 and min(per_time.values()) >= 0.9, (frac, per_time)
    assert not joint, joint


def _example(name):
    from pathlib import Path

    return Path(__file__).resolve().parents[2] / "data" / "examples" / name


def _reduced_pcm_example(folder):
    """The shipped pcm_drift.csv's reduced range: its header and first 7,200 rows (1,200
    cells at the 8 targets 0.3125..2.5 uS; byte for byte the file as first shipped), read."""
    lines = _example("pcm_drift.csv").read_text().splitlines(keepends=True)
    path = folder / "pcm_reduced.csv"
    path.write_text("".join(lines[:2 + 7200]))
    return read_measurements(path)


def _no_worse_than_persistence(data, t_fit, later, min_devices):
    from xbarlab.calibration import baseline_tables, ks_table, split_devices

    a, b = split_devices(data, rng=np.random.default_rng(9))
    early = {k: v[a["time"] <= t_fit] if isinstance(v, np.ndarray) else v
             for k, v in a.items()}
    model = fit(early, rng=np.random.default_rng(0), drift="relaxation", n_boot=5)
    for t in later:
        tab = ks_table(model, b, rng=np.random.default_rng(1), t=t, min_devices=min_devices)
        carry = baseline_tables(early, b, t_from=t_fit, rng=np.random.default_rng(1), t=t,
                                min_devices=min_devices)["carry forward"]
        assert tab.median <= carry.median, (t, tab.median, carry.median)


@pytest.mark.slow
def test_extrapolation_no_worse_than_persistence(tmp_path):
    """Split in halves by device and fitted on the early reads, every later held-out time
    has a median KS over levels no larger than carrying each level's last fitted change
    forward (persistence): generator (iii) (8 levels x 400 cells) fitted up to 100 s,
    scored at 1e3 and 1e4 s; the shipped pcm_drift.csv's reduced range (its first 1,200
    cells, 0.3125..2.5 uS) fitted up to 1e3 s, scored at 1e4 s and 1 d."""
    from _synthetic_rram import relaxation_toward_centre

    times = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4])
    data = relaxation_toward_centre(np.linspace(5e-6, 40e-6, 8), 400, times,
                                    np.random.default_rng(8))
    _no_worse_than_persistence(data, 100.0, (1e3, 1e4), 50)
    meas = _reduced_pcm_example(tmp_path)
    cols = {k: getattr(meas, k) for k in ("device", "g", "time", "time_point", "g_target",
                                           "level")}
    _no_worse_than_persistence(cols, 1e3, (1e4, 86400.0), 50)


def test_change_proportional_to_first_read_extrapolates_pinned_cells():
    """d(t) = -g_0 a(t) (1 + 0.2 Z), a = 0.05 ln(1 + t/1 s), Z ~ N(0, 1) per cell (a PCM-like
    change proportional to the first read), 2 levels x 300 cells in [0, 2] uS and [1, 3] uS
    read at 1, 10, 100, 1e3 s: the table's change of a cell at g_0 = 0 S (truth: 0 S at
    every p) spans (1st to 99th percentile) less than 1.5 times the standard deviation of
    the change at the level's reference at 1e3 s (the change drawn independently of g_0
    spans about 4.6; reached 1.08), and no more, relative to it, at 1e5 s (extrapolated)
    than at 1e3 s; the median change at the levels' references at 1e5 s is within 20 % of
    -g_ref a(1e5 s) (reached: 17 % at the lower level)."""
    from xbarlab.calibration import relaxation, tables

    rng = np.random.default_rng(3)
    n = 300
    g0 = np.concatenate([rng.uniform(0, 2e-6, n), rng.uniform(1e-6, 3e-6, n)])
    z = rng.standard_normal(2 * n)
    times = np.array([0.0, 1.0, 10.0, 100.0, 1e3])
    a = 0.05 * np.log1p(times)
    g = g0[None, :] * (1 - a[:, None] * (1 + 0.2 * z[None, :]))
    cols = {"device": np.tile(np.arange(2 * n), times.size), "g": g.ravel(),
            "time": np.repeat(times, 2 * n), "g_initial": np.tile(g0, times.size),
            "level": np.tile(np.repeat([0, 1], n), times.size)}
    c = tables.columns(cols)
    pv = tables.pivot(c, use_initial=True)
    lev, centres = tables.level_labels(pv, by="level")
    blk, info = relaxation.fit_relaxation(pv, lev, centres, [0, 1], t_max=1e5,
                                          rng=np.random.default_rng(0), n_boot=0)
    assert info.extrapolation in relaxation.FORMS
    pz = np.array([0.01, 0.99])
    width = []
    for t in (1e3, 1e5):
        j = int(np.argmin(np.abs(blk.t - t)))
        span = np.ptp(blk.delta(np.zeros(2), t, pz))
        width.append(span / blk.std[0, j])
    assert width[0] < 1.5 and width[1] <= 1.05 * width[0], width
    want = -blk.g_ref * 0.05 * np.log1p(1e5)
    np.testing.assert_allclose(blk.delta(blk.g_ref, 1e5, np.full(2, 0.5)), want, rtol=0.2)


@pytest.mark.slow
def test_target_conditioned_table_file_round_trip(tmp_path):
    """Two targets (1 and 2 uS) x 100 cells, programmed with a 0.2 uS normal error and
    drifting as g(t) = g_1 (1 - 0.03 ln(1 + t/1 s)): the target-conditioned relaxation fit
    holds a within-level slope on a grid of the targets; written with to_file and read
    back with devices.load, it samples the same bits for the same seed."""
    from xbarlab.devices import load

    rng = np.random.default_rng(4)
    target = np.repeat([1e-6, 2e-6], 100)
    g1 = target + 0.2e-6 * rng.standard_normal(target.size)
    times = np.array([1.0, 10.0, 100.0, 1e3])
    g = g1[None, :] * (1 - 0.03 * np.log1p(times)[:, None])
    n = target.size
    data = {"device": np.tile(np.arange(n), times.size), "g": g.ravel(),
            "time": np.repeat(times, n), "g_target": np.tile(target, times.size)}
    model = fit(data, drift="relaxation", rng=np.random.default_rng(0), n_boot=2)
    blk = model.drift_law
    assert blk.conditional and blk.level_by_target
    np.testing.assert_array_equal(blk.g, [1e-6, 2e-6])
    back = load(model.to_file(tmp_path / "m.h5"))
    x = np.linspace(0.5e-6, 2.5e-6, 50)
    np.testing.assert_array_equal(model.sample(x, times, np.random.default_rng(9)),
                                  back.sample(x, times, np.random.default_rng(9)))


def _saturating_relaxation(n, times, rng):
    """Two levels (10 and 20 uS) x ``n`` cells: d(t) = -(0.5 uS + 0.2 uS z)(1 - e^(-t/3 s))
    with z ~ N(0, 1) per cell (the change saturates within seconds), g_0 = level centre +
    0.3 uS N(0, 1); a table of role -> array."""
    g0 = np.repeat([10e-6, 20e-6], n) + 0.3e-6 * rng.standard_normal(2 * n)
    amp = 0.5e-6 + 0.2e-6 * rng.standard_normal(2 * n)
    g = g0[None, :] - amp[None, :] * (1 - np.exp(-times / 3.0))[:, None]
    return {"device": np.tile(np.arange(2 * n), times.size), "g": g.ravel(),
            "time": np.repeat(times, 2 * n), "g_initial": np.tile(g0, times.size),
            "level": np.tile(np.repeat([0, 1], n), times.size)}


def test_stored_bands_follow_the_persistence_form_beyond_the_data():
    """A change that saturates within seconds (_saturating_relaxation, 300 cells a level,
    read at 1, 10, 100, 1e3, 1e4 s): the held-out time chooses persistence, and beyond
    the last read every bootstrap replicate's mean and std of the change stay those of its
    last anchor (the bands had grown them with slopes through the origin in u whatever
    the form)."""
    from xbarlab.calibration import relaxation, tables

    times = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4])
    c = tables.columns(_saturating_relaxation(300, times, np.random.default_rng(5)))
    pv = tables.pivot(c, use_initial=True)
    lev, centres = tables.level_labels(pv, by="level")
    blk, info = relaxation.fit_relaxation(pv, lev, centres, [0, 1], t_max=1e6,
                                          rng=np.random.default_rng(0), n_boot=40)
    assert info.extrapolation == "persistence", info.extrapolation_ks
    last = int(np.argmin(np.abs(blk.t - 1e4)))
    beyond = blk.t > 1e4 * 1.01
    assert beyond.any()
    for arr in (blk.boot_mean, blk.boot_std):
        np.testing.assert_allclose(arr[:, :, beyond], arr[:, :, last:last + 1].repeat(
            beyond.sum(), axis=2), rtol=1e-12, atol=1e-18)


def _refit_stats(cols, targets, times, n_refit, rng):
    """Std [S] and fraction at 0 S of 20,000 samples per target and time of the relaxation
    fit of ``cols`` refitted on ``n_refit`` resamples of its devices (within each level,
    with replacement; a device drawn twice is two devices): (n_refit, 2, times, targets)."""
    rows = {}
    for i, d in enumerate(cols["device"]):
        rows.setdefault(d, []).append(i)
    lev_devs = {}
    for d, r in rows.items():
        lev_devs.setdefault(cols["level"][r[0]], []).append(d)
    out = np.zeros((n_refit, 2, len(times), targets.size))
    for b in range(n_refit):
        idx, dev, k = [], [], 0
        for ds in lev_devs.values():
            for d in rng.choice(ds, len(ds)):
                idx += rows[d]
                dev += [k] * len(rows[d])
                k += 1
        sub = {key: v[np.array(idx)] for key, v in cols.items()}
        sub["device"] = np.array(dev)
        model = fit(sub, rng=np.random.default_rng(b), n_boot=0, drift="relaxation")
        for j, t in enumerate(times):
            for i, g in enumerate(targets):
                s = model.sample(np.full(20_000, g), t, rng)
                out[b, :, j, i] = s.std(), np.mean(s == 0)
    return out


def _preset_misses(cols, rng, n_refit=100):
    """Checks of the preset inside the refit bands of ``cols`` (see the test below), 68 of
    them (17 targets x 2 times x spread and zero): ``(pointwise, joint)``, the lists of
    those outside the pointwise 95 % bands and outside the simultaneous 95 % band
    (:func:`xbarlab.devices.curves.simultaneous_band` of all 68), each a line."""
    from xbarlab import devices
    from xbarlab.devices.curves import simultaneous_band

    targets = np.unique(cols["g_target"])
    times = (86400.0, YEAR)
    reps = _refit_stats(cols, targets, times, n_refit, rng)
    bands = {"pointwise": np.quantile(reps, [0.025, 0.975], axis=0),
             "joint": simultaneous_band(reps, 0.95)}
    pre = devices.load("pcm-ibm-2020")
    out = {kind: [] for kind in bands}
    for j, t in enumerate(times):
        for i, g in enumerate(targets):
            s = pre.sample(np.full(400_000, g), t, np.random.default_rng(1))
            for k, (name, v) in enumerate((("spread", s.std()), ("zero", np.mean(s == 0)))):
                for kind, (lo, hi) in bands.items():
                    if not lo[k, j, i] <= v <= hi[k, j, i]:
                        out[kind].append(f"{t:.3g} s, {g * 1e6:.4g} uS, {name}: {v:.4g} "
                                         f"outside [{lo[k, j, i]:.4g}, {hi[k, j, i]:.4g}]")
    return out["pointwise"], out["joint"]


_COLUMNS = ("device", "g", "time", "time_point", "g_target", "level")


@pytest.mark.slow
def test_pcm_example_refit_holds_the_preset_inside_its_bootstrap_bands():
    """The shipped pcm_drift.csv (pcm-ibm-2020, 17 targets 0.3125-25 uS x 150 cells, reads
    to 1 d) refitted (relaxation table, the form its fit chooses) on 100 resamples of its
    devices: at every target, at 1 d and 1 y, the preset's spread and fraction of cells
    at 0 S (400,000 samples) lie inside the refits' (20,000 samples each) simultaneous
    95 % band, the band that holds all 68 true values together with probability 0.95.
    The pointwise 95 % bands, which a model without bias leaves 3.4 of the 68 outside on
    average, miss 5 here, printed: 3 by less than 3 % of the band's edge (at 1 d the
    spread at 0.9375 uS, preset 0.313 uS in 0.257-0.309, and the fraction at 0 S at
    0.9375, 1.25 and 1.5625 uS, at 1 y the spread at 2.1875 uS)."""
    meas = read_measurements(_example("pcm_drift.csv"))
    point, joint = _preset_misses({k: getattr(meas, k) for k in _COLUMNS},
                                  np.random.default_rng(9))
    print("outside the pointwise bands:", len(point), point)
    print("outside the simultaneous band:", joint)
    assert not joint, joint


@pytest.mark.slow
def test_pcm_refit_bands_over_draws_of_the_example():
    """The check above on 20 draws of the example (make_example_data.make: the shipped
    file's seed and seeds 1-19; 10-17 min on the 2-core box). The simultaneous band holds
    all 68 checks in at least 17 of the 20 draws (a band that covers as it claims does so
    with probability 0.984; measured: 19, seed 10 missing the spread at 0.3125 uS at 1 d,
    0.184 uS against up to 0.178). Of the 1,360 pointwise checks at most 6.5 % miss
    (measured 66, 4.9 %, against 5 % for bands that cover as they claim; 3.4 a draw on
    average), and of the 340 fractions at 0 S at 1 d at most 10 % (measured 24, 7.1 %, 17
    of them at 0.9375-1.5625 uS, where the fit's first read has the symmetric lower tail
    of its programming model and the preset's a lighter one). With each level's
    within-level slopes shrunk before they were pooled across levels, 100 pointwise
    checks missed (7.4 %), 55 of those fractions (16 %), and no draw held all 68 (now 1).
    Each draw's misses are printed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_example_data",
                                                  _example("make_example_data.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    misses, held = [], 0
    for seed in [mod.SEED, *range(1, 20)]:
        m = mod.make(np.random.default_rng(seed))
        point, joint = _preset_misses({k: getattr(m, k) for k in _COLUMNS},
                                      np.random.default_rng(9))
        print(seed, len(point), point, "simultaneous:", joint)
        misses += point
        held += not joint
    zero_day = [x for x in misses if x.startswith("8.64e+04 s") and ", zero:" in x]
    print("simultaneous band held in", held, "of 20 draws")
    assert held >= 17, held
    assert len(misses) <= 0.065 * 20 * 68, len(misses)
    assert len(zero_day) <= 0.10 * 20 * 17, len(zero_day)


def test_pcm_example_own_cells_read_no_zero_where_the_preset_has_some():
    """At 1 d none of the 150 cells of each target 1.25-2.1875 uS of the shipped
    pcm_drift.csv reads 0 S, while the generating preset puts 0.45 % to 0.007 % of its cells
    there (400,000 samples, each fraction > 0): a bootstrap of the file's cells alone gives
    the band [0, 0] and misses the preset's fraction at these four targets, whatever model
    is fitted."""
    from xbarlab import devices

    meas = read_measurements(_example("pcm_drift.csv"))
    pre = devices.load("pcm-ibm-2020")
    day = np.isclose(meas.time_point, 86400.0)
    for g in (1.25e-6, 1.5625e-6, 1.875e-6, 2.1875e-6):
        cells = day & np.isclose(meas.g_target, g)
        assert cells.sum() == 150 and not np.any(meas.g[cells] <= 0), g
        z = np.mean(pre.sample(np.full(400_000, g), 86400.0, np.random.default_rng(1)) == 0)
        assert 5e-5 < z < 6e-3, (g, z)


def _relaxing_toward_centre_correlation(t, window=1e-6, tau=100.0, beta=0.5, s_n=0.3e-6,
                                        t_n=1.0):
    """Correlation [1] between the first read and the change at ``t`` [s] of generator
    (iii) inside a level, from its equations: x = g_1 - g_c uniform in +-window, d(t) =
    -x f(t) + s_n sqrt(ln(1 + t/t_n)) Z, f = 1 - exp(-(t/tau)^beta)."""
    f = 1.0 - np.exp(-((t / tau) ** beta))
    sx = window / np.sqrt(3.0)
    return -sx * f / np.sqrt((sx * f) ** 2 + s_n**2 * np.log1p(t / t_n))


def test_overlapping_labelled_levels_keep_the_within_level_correlation():
    """Generator (iii) with levels 10..14 uS 1 uS apart and +-1 uS first-read windows (so
    neighbouring levels overlap in the first read), 1,000 cells a level read at 0, 1 s,
    1 h, 1 d: the first-read-conditioned fit takes each cell's level (takes_level); cells
    sampled at first reads uniform in their level's window, given their level's centre as
    g_level, have the correlation between first read and change of the generator's
    equations (-0.215 at 1 s, -0.557 at 1 h, -0.496 at 1 d) within 0.05 at every level
    and time (reached: within 0.03). Given the first read alone, a cell of an inner level
    is placed between two levels whose centres it may relax toward, and the correlation
    cancels (|r| < 0.1 at 1 h; -0.56 in the data)."""
    from _synthetic_rram import relaxation_toward_centre

    centres = np.arange(10e-6, 14.5e-6, 1e-6)
    times = np.array([0.0, 1.0, 3600.0, 86400.0])
    data = relaxation_toward_centre(centres, 1000, times, np.random.default_rng(7))
    model = fit(data, drift="relaxation", rng=np.random.default_rng(0), n_boot=2)
    assert model.conditioning == "initial read" and model.takes_level
    rng = np.random.default_rng(1)
    for t in times[1:]:
        want = _relaxing_toward_centre_correlation(t)
        for c in centres:
            g1 = c + 1e-6 * rng.uniform(-1.0, 1.0, 20_000)
            s = model.sample(g1, t, rng, g_level=c)
            r = np.corrcoef(g1, s - g1)[0, 1]
            assert abs(r - want) < 0.05, (t, c, r, want)
    for c in centres[1:-1]:
        g1 = c + 1e-6 * rng.uniform(-1.0, 1.0, 20_000)
        s = model.sample(g1, 3600.0, rng)
        assert abs(np.corrcoef(g1, s - g1)[0, 1]) < 0.1


def test_table_of_labelled_levels_follows_the_given_level():
    """Two labelled levels at 10 and 11 uS whose first reads overlap (9-11 and 10-12 uS),
    q = 0 and slope -1 at every p (full relaxation toward the level's reference): a cell at
    g_0 = 10.5 uS given level 10 uS changes by -0.5 uS, given 11 uS by +0.5 uS, given
    10.5 uS (between the levels) by 0 S; given no level it is placed by g_0 (inside both
    ranges: the weight in g, 0 S). The flag survives to_dict/from_dict; a table without it
    writes no key; a table cannot have both kinds of levels."""
    from xbarlab.errors import ConfigError

    g = np.array([10e-6, 11e-6])
    t = np.array([0.0, 100.0])
    p = np.linspace(0, 1, 5)
    q = np.zeros((2, 2, 5))
    kw = {"slope": np.full_like(q, -1.0), "g_ref": g, "g_lo": g - 1e-6, "g_hi": g + 1e-6}
    tab = RelaxationTable(g, t, p, q, tau=1.0, level_by_label=True, **kw)
    g0 = np.full(4, 10.5e-6)
    lv = np.array([10e-6, 11e-6, 10.5e-6, 10e-6])
    np.testing.assert_allclose(tab.delta(g0, 100.0, np.full(4, 0.5), lv),
                               [-0.5e-6, 0.5e-6, 0.0, -0.5e-6], atol=1e-18)
    np.testing.assert_allclose(tab.delta(g0[:1], 100.0, np.full(1, 0.5)), [0.0], atol=1e-18)
    back = RelaxationTable.from_dict(tab.to_dict())
    assert back.level_by_label and not back.level_by_target
    assert "level_by_label" not in RelaxationTable(g, t, p, q, tau=1.0, **kw).to_dict()
    with pytest.raises(ConfigError, match="not both"):
        RelaxationTable(g, t, p, q, tau=1.0, level_by_label=True, level_by_target=True, **kw)


def test_g_level_is_refused_where_the_model_takes_none_and_checked():
    """A preset (no relaxation table) and a fitted model of unlabelled levels refuse
    g_level with a one-line ConfigError naming takes_level; a labelled fit refuses a
    g_level of another shape or below 0 S, and sample(..., g_level=) gives the bits of
    read(program(..., g_level=), ...) for the same seed."""
    from _synthetic_rram import relaxation_toward_centre
    from xbarlab import devices
    from xbarlab.errors import ConfigError

    pre = devices.load("pcm-ibm-2020")
    with pytest.raises(ConfigError, match="takes_level"):
        pre.program(np.full(3, 1e-6), np.random.default_rng(0), g_level=1e-6)
    times = np.array([0.0, 1.0, 100.0])
    data = relaxation_toward_centre([10e-6, 20e-6], 60, times, np.random.default_rng(2))
    unlabelled = {k: v for k, v in data.items() if k != "level"}
    m0 = fit(unlabelled, drift="relaxation", rng=np.random.default_rng(0), n_boot=2,
             min_devices=5)
    assert not m0.takes_level
    with pytest.raises(ConfigError, match="takes_level"):
        m0.sample(np.full(3, 10e-6), 1.0, np.random.default_rng(0), g_level=10e-6)
    m = fit(data, drift="relaxation", rng=np.random.default_rng(0), n_boot=2)
    assert m.takes_level
    g = np.full(4, 10.2e-6)
    with pytest.raises(ConfigError, match="shape"):
        m.program(g, np.random.default_rng(0), g_level=np.full(3, 10e-6))
    with pytest.raises(ConfigError, match="g_level"):
        m.program(g, np.random.default_rng(0), g_level=-1e-6)
    a = m.sample(g, times, np.random.default_rng(5), g_level=10e-6)
    rng = np.random.default_rng(5)
    b = m.read(m.program(g, rng, g_level=np.full(4, 10e-6)), times, rng)
    np.testing.assert_array_equal(a, b)


def _multiplicative_drift(n, times, rng):
    """Two levels (1 and 5 uS) x ``n`` cells drifting as PCM's equations without read noise:
    g(t) = g_0 (1 + t/20 s)^-nu, g_0 = level (1 + 0.1 N(0, 1)), nu = max(N(0.06, 0.02), 0)
    per cell. Returns (table of role -> array, g_0 [S], nu [1])."""
    g0 = np.repeat([1e-6, 5e-6], n) * (1 + 0.1 * rng.standard_normal(2 * n))
    nu = np.clip(0.06 + 0.02 * rng.standard_normal(2 * n), 0.0, None)
    g = g0[None, :] * (1 + times / 20.0)[:, None] ** (-nu[None, :])
    return ({"device": np.tile(np.arange(2 * n), times.size), "g": g.ravel(),
             "time": np.repeat(times, 2 * n), "g_initial": np.tile(g0, times.size),
             "level": np.tile(np.repeat([0, 1], n), times.size)}, g0, nu)


def test_geometric_rate_recovers_an_exponential_decay():
    """Rows G = A exp(k v) give each quantile's k exactly where k < 0; a growing quantile,
    one at or below 0 S at an anchor, or a single anchor gives 0."""
    from xbarlab.calibration.relaxation import _geometric_rate

    v = np.array([0.5, 1.0, 2.0, 4.0])
    k = np.array([-0.3, -0.01, 0.2, -0.1])
    G = np.array([1.0, 2.0, 3.0, 4.0])[None, :] * np.exp(np.outer(v, k))
    G[1, 3] = 0.0
    np.testing.assert_allclose(_geometric_rate(G, v), [-0.3, -0.01, 0.0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(_geometric_rate(G[:1], v[:1]), np.zeros(4))


@pytest.mark.parametrize("t", [1e7, YEAR])
def test_geometric_form_follows_a_multiplicative_drift(monkeypatch, t):
    """PCM-like drift without read noise (_multiplicative_drift, 2,000 cells a level, read
    at 1 s to 1e5 s): forced to the geometric form, the table predicts every cell's exact
    g_0 (1 + t/20 s)^-nu at 1e7 s and 1 y (4 to 5 decades past the data) within a KS of 0.12
    at each level (reached 0.084-0.099; the mean's time scale is capped at the grid's 1 s
    against the equations' 20 s) and at under half the KS of the increments (additive in g,
    reached 0.19-0.73)."""
    from scipy import stats
    from xbarlab.calibration import relaxation

    times = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5])
    data, g0, nu = _multiplicative_drift(2000, times, np.random.default_rng(3))
    truth = g0 * (1 + t / 20.0) ** (-nu)
    ks = {}
    for form in ("geometric", "increments"):
        monkeypatch.setattr(relaxation, "FORMS", (form,))
        model = fit(data, drift="relaxation", rng=np.random.default_rng(0), n_boot=2)
        assert model.report.relaxation.extrapolation == form
        rng = np.random.default_rng(1)
        for lev, g_level in ((0, 1e-6), (1, 5e-6)):
            sel = slice(2000 * lev, 2000 * (lev + 1))
            kw = {"g_level": np.full(10_000, g_level)} if model.takes_level else {}
            s = model.sample(np.repeat(g0[sel], 5), t, rng, **kw)
            ks[form, lev] = stats.ks_2samp(truth[sel], s).statistic
    print(ks)
    for lev in (0, 1):
        assert ks["geometric", lev] < 0.12, ks
        assert ks["geometric", lev] < 0.5 * ks["increments", lev], ks



def _noisy_slope_levels(n_levels, rng, n=150):
    """First-read-conditioned reads at 0 and 100 s of ``n_levels`` labelled levels 1 uS
    apart from 3 uS (none near 0 S), first reads uniform within +-0.5 uS of the level,
    change d = -0.3 x + 0.53 uS Z (x: the offset from the level): each level's slope -0.3
    has a standard error of about 0.15, half its size."""
    c = 1e-6 * np.arange(3, n_levels + 3)
    lvl = np.repeat(np.arange(n_levels), n)
    g0 = c[lvl] + rng.uniform(-0.5e-6, 0.5e-6, lvl.size)
    g1 = g0 - 0.3 * (g0 - c[lvl]) + 0.53e-6 * rng.standard_normal(lvl.size)
    dev = np.arange(lvl.size)
    return {"device": np.tile(dev, 2), "g": np.concatenate([g0, g1]),
            "time": np.repeat([0.0, 100.0], lvl.size), "g_initial": np.tile(g0, 2),
            "level": np.tile(lvl, 2)}


def _mean_slope(model, t=100.0):
    tab = model.drift_law
    j = int(np.argmin(np.abs(tab.t - t)))
    return np.trapezoid(tab.slope[:, j, :], tab.p, axis=-1)


def _level_slopes(data):
    """Each level's least-squares slope of the change on the first read (numpy.polyfit)."""
    n = data["g"].size // 2
    g0, g1, lvl = data["g"][:n], data["g"][n:], data["level"][:n]
    return np.array([np.polyfit(g0[lvl == k], g1[lvl == k] - g0[lvl == k], 1)[0]
                     for k in np.unique(lvl)])


def test_slopes_pooled_across_levels_are_not_shrunk_first():
    """Ten levels whose within-level slope (-0.3) is twice its standard error at each level:
    shrunk level by level (max(0, 1 - 4 se^2 / b^2)) before the pooling, the pooled slope
    was pulled toward 0 (seed 0: -0.23 against the levels' mean least-squares slope
    -0.42); pooled as estimated, the fitted mean slope at 100 s is, at every level, within
    0.03 of the mean over levels of their least-squares slopes (numpy.polyfit), which
    itself lies within 3 standard errors (0.14) of -0.3 (three draws). Two levels cannot be
    pooled (fewer than three): each keeps its own slope shrunk, nearer 0 than its
    estimate."""
    from xbarlab.calibration.relaxation import SHRINK

    for seed in range(3):
        data = _noisy_slope_levels(10, np.random.default_rng(seed))
        m = fit(data, drift="relaxation", rng=np.random.default_rng(0), n_boot=0)
        want = _level_slopes(data).mean()
        print(seed, np.round(_mean_slope(m), 3), round(want, 3))
        assert abs(want + 0.3) < 0.14
        np.testing.assert_allclose(_mean_slope(m), want, atol=0.03)
    assert SHRINK > 0
    data = _noisy_slope_levels(2, np.random.default_rng(5))
    m = fit(data, drift="relaxation", rng=np.random.default_rng(0), n_boot=0)
    raw = _level_slopes(data)
    assert np.all(np.abs(_mean_slope(m)) < 0.8 * np.abs(raw)), (_mean_slope(m), raw)


def test_pcm_example_fraction_at_zero_with_pooled_slopes():
    """The shipped pcm_drift.csv's relaxation fit puts 0.80 % of 1.25 uS cells at 0 S at 1 d
    (400,000 samples; asserted in 0.6-1.0 %), the generating preset 0.45 % (asserted in
    0.35-0.55 %); with each level's slopes shrunk before they were pooled it was 1.19 %,
    since cells programmed far below the target then changed as much as those at it."""
    from xbarlab import devices

    meas = read_measurements(_example("pcm_drift.csv"))
    model = fit(meas, rng=np.random.default_rng(0), n_boot=0, drift="relaxation")
    g = np.full(400_000, 1.25e-6)
    fitted = np.mean(model.sample(g, 86400.0, np.random.default_rng(1)) == 0)
    preset = np.mean(devices.load("pcm-ibm-2020").sample(g, 86400.0,
                                                          np.random.default_rng(1)) == 0)
    print(f"fraction at 0 S at 1 d, 1.25 uS: fit {fitted:.4f}, preset {preset:.4f}")
    assert 0.006 < fitted < 0.010 and 0.0035 < preset < 0.0055, (fitted, preset)
