"""Point kinds: the crossbar point against exact circuit facts, the draw point against its
distribution."""

import os

import numpy as np
import pytest
from xbarlab.sweep.kinds import get_kind
from xbarlab.sweep.study import parse_study


def _point(**settings):
    return parse_study({"study": {"kind": "crossbar"},
                        "settings": {"vectors": 2, **settings}}).points[0]


def test_zero_wire_resistance_has_no_ir_drop():
    """r_wire = r_driver = 0: the circuit output is v @ (G+ - G-) to rounding."""
    p = _point(n=8, r_wire=0.0)
    m = get_kind("crossbar").run(p.settings, p.rng())
    assert m["ir_drop"] < 1e-12
    assert set(m) == {"ir_drop", "adc_max", "adc_cal", "device", "total"}


def test_ir_drop_grows_with_wire_and_driver_resistance():
    """The same arrays (same seed stream) with more series resistance lose more signal."""
    run = get_kind("crossbar").run
    base = _point(n=16, r_wire=1.0)
    a = run(base.settings, base.rng())["ir_drop"]
    b = run({**base.settings, "r_wire": 10.0}, base.rng())["ir_drop"]
    c = run({**base.settings, "r_driver": 1000.0}, base.rng())["ir_drop"]
    assert 0 < a < b and a < c


def test_adc_error_bounded_by_half_an_lsb():
    """A calibrated 8-bit ADC: relative error at most ~ 0.5 LSB / rms signal; more bits,
    less error (the same arrays)."""
    run = get_kind("crossbar").run
    p = _point(n=16, adc_bits=4)
    e4 = run(p.settings, p.rng())["adc_cal"]
    e8 = run({**p.settings, "adc_bits": 8}, p.rng())["adc_cal"]
    assert e8 < e4 / 8


def test_same_point_same_bits_other_programming_other_numbers():
    """A point repeats its bits; the next programming index draws other chips."""
    run = get_kind("crossbar").run
    p, q = _point(n=8), _point(n=8, programming=1)
    assert run(p.settings, p.rng()) == run(p.settings, p.rng())
    assert run(p.settings, p.rng()) != run(q.settings, q.rng())


def test_draw_kind_is_standard_normal():
    """mean and std of 10^5 draws: within 4 standard errors of 0 and 1."""
    p = parse_study({"study": {"kind": "draw"}, "settings": {"samples": 100000}}).points[0]
    m = get_kind("draw").run(p.settings, p.rng())
    assert abs(m["mean"]) < 4 / np.sqrt(1e5)
    assert m["std"] == pytest.approx(1.0, abs=4 / np.sqrt(2e5))


def _drift_table(path, rng, *, mu_nu=0.05, sigma_nu=0.01, spread=0.4e-6, per_level=40):
    """Measurements written from the power law g(t) = g_p (t / 1 s)^-nu: targets 5, 10, 15
    uS, g_p = target + N(0, spread), nu ~ N(mu_nu, sigma_nu) per device, reads at 1, 10,
    100, 1000 s with 0.1 % independent read noise."""
    targets = np.repeat([5e-6, 10e-6, 15e-6], per_level)
    g_p = targets + spread * rng.standard_normal(targets.size)
    nu = mu_nu + sigma_nu * rng.standard_normal(targets.size)
    lines = ["device,g,time,time_point,g_target,level"]
    for d in range(targets.size):
        for t in (1.0, 10.0, 100.0, 1000.0):
            g = g_p[d] * t ** -nu[d] * (1 + 1e-3 * rng.standard_normal())
            lines.append(f"{d},{float(g)!r},{t},{t},{float(targets[d])!r},{d // per_level}")
    path.write_text("\n".join(lines) + "\n")


def test_calibration_bootstrap_recovers_the_power_law(tmp_path):
    """Two replicates of a fit to data drawn from a known power law: each recovers the
    drift exponent's mean and spread within a few standard errors of 40 devices a level
    (the programming curves refer to the fitted t0, so only their presence is checked),
    the replicates differ from each other, and a replicate run again gives the same bits.
    The data file enters the points' seeds by its content, so the draws are the same in
    every run, whatever pytest's temporary folder."""
    _drift_table(tmp_path / "drift.csv", np.random.default_rng(5))
    study = parse_study({"study": {"kind": "calibration-bootstrap", "seed": 3},
                         "settings": {"data": "drift.csv", "g": "10uS"},
                         "grid": {"replicate": [0, 1]}}, base=tmp_path)
    run = get_kind("calibration-bootstrap").run
    first, second = (run(p.settings, p.rng()) for p in study.points)
    for m in (first, second):
        assert abs(m["mu_nu"] - 0.05) < 0.006
        assert abs(m["sigma_nu"] - 0.01) < 0.004
        assert np.isfinite(m["bias"]) and m["spread"] > 0 and m["t0"] > 0
    assert first != second
    p = study.points[0]
    assert run(p.settings, p.rng()) == first


def test_measurements_are_read_again_when_the_file_or_the_folder_changes(tmp_path,
                                                                         monkeypatch):
    """The worker's cache of measurement files: a file written anew under the same path
    is read again, and the same relative path from another folder reads that folder's
    file (not the one read before)."""
    from xbarlab.sweep.kinds import _measurements

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _drift_table(a / "drift.csv", np.random.default_rng(5), per_level=3)
    _drift_table(b / "drift.csv", np.random.default_rng(6), per_level=4)
    first = _measurements(str(a / "drift.csv"))["g"].copy()
    assert first.size == 3 * 3 * 4
    _drift_table(a / "drift.csv", np.random.default_rng(7), per_level=3)
    os.utime(a / "drift.csv", ns=(1, 1))  # a new modification time, whatever the clock
    again = _measurements(str(a / "drift.csv"))["g"]
    assert again.size == first.size and not np.array_equal(again, first)
    monkeypatch.chdir(a)
    here = _measurements("drift.csv")["g"]
    monkeypatch.chdir(b)
    there = _measurements("drift.csv")["g"]
    assert np.array_equal(here, again) and there.size == 3 * 4 * 4


def test_a_data_file_enters_the_points_by_its_content(tmp_path):
    """The same data file in two folders gives the same point keys and seeds (a study
    moved elsewhere draws the same numbers and finds its finished points); the file
    written anew with other data gives new keys; a preset device name is keyed by name."""
    doc = {"study": {"kind": "calibration-bootstrap", "seed": 3},
           "settings": {"data": "drift.csv", "g": "10uS"}, "grid": {"replicate": [0, 1]}}
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _drift_table(a / "drift.csv", np.random.default_rng(5), per_level=3)
    (b / "drift.csv").write_bytes((a / "drift.csv").read_bytes())
    here, there = parse_study(doc, base=a), parse_study(doc, base=b)
    assert [p.settings["data"] for p in here.points] != [p.settings["data"]
                                                        for p in there.points]
    assert [p.key for p in here.points] == [p.key for p in there.points]
    assert [p.entropy for p in here.points] == [p.entropy for p in there.points]
    _drift_table(a / "drift.csv", np.random.default_rng(6), per_level=3)
    anew = parse_study(doc, base=a)
    assert not {p.key for p in anew.points} & {p.key for p in here.points}
    crossbar = parse_study({"study": {"kind": "crossbar", "seed": 1},
                            "settings": {"device": "pcm-ibm-2020"}})
    from xbarlab.sweep.points import point_key

    p = crossbar.points[0]
    assert p.settings["device"] == "pcm-ibm-2020" and p.key == point_key(p.settings)
    from xbarlab.errors import ConfigError
    from xbarlab.sweep.points import make_point

    with pytest.raises(ConfigError, match="key_settings names 'data', which is not a setting"):
        make_point({"n": 64}, 1, key_settings={"data": "sha256:00"})


def test_resample_devices_keeps_levels_and_whole_devices():
    """Each level keeps its number of devices; every drawn device keeps all its rows."""
    from xbarlab.sweep.kinds import resample_devices

    dev = np.repeat(np.arange(6), 3)
    cols = {"device": dev, "g": dev * 10.0 + np.tile([0.0, 1.0, 2.0], 6),
            "level": dev // 3, "g_target": None, "time": None}
    out = resample_devices(cols, np.random.default_rng(0))
    assert out["g"].size == 18 and out["g_target"] is None
    for d in range(6):
        g = out["g"][out["device"] == d]
        assert g.size == 3 and np.array_equal(g - g[0], [0.0, 1.0, 2.0])
        assert out["level"][out["device"] == d][0] == (g[0] // 10) // 3
    assert np.bincount(out["level"]).tolist() == [9, 9]


@pytest.mark.slow
def test_train_evaluate_kind_on_digits():
    """The default point (digits, MLP, 1 epoch, pcm-ibm-2020 read after 1 h): well above the
    10 % of guessing, the chip within 10 points of the digital network with global drift
    compensation; two chips of one network share its clean accuracy and differ; a point
    run again gives the same bits; a 2-bit ADC costs accuracy."""
    study = parse_study({"study": {"kind": "train-evaluate", "seed": 4},
                         "grid": {"programming": [0, 1], "adc_bits": [0, 2]}})
    run = get_kind("train-evaluate").run
    m = {(p.settings["programming"], p.settings["adc_bits"]): run(p.settings, p.rng())
         for p in study.points}
    clean = m[0, 0]["clean_accuracy"]
    assert clean > 0.5 and all(v["clean_accuracy"] == clean for v in m.values())
    assert abs(m[0, 0]["accuracy"] - clean) < 0.1 and m[0, 0] != m[1, 0]
    assert m[0, 2]["accuracy"] < min(m[0, 0]["accuracy"], m[1, 0]["accuracy"])
    p = study.points[0]
    assert run(p.settings, p.rng()) == m[p.settings["programming"], p.settings["adc_bits"]]


def test_train_evaluate_noise_needs_samples():
    """sigma > 0 with samples = 0 is refused before anything runs."""
    from xbarlab.errors import ConfigError

    with pytest.raises(ConfigError, match="sigma"):
        parse_study({"study": {"kind": "train-evaluate"}, "settings": {"sigma": 0.1}})
