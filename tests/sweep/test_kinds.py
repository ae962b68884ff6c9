"""Point kinds: the crossbar point against exact circuit facts, the draw point against its
distribution."""

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
