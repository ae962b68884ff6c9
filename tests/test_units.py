"""Unit conversion tables and the shared parsers of xbarlab.units."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from xbarlab.errors import ConfigError
from xbarlab.units import (
    SECONDS_PER_YEAR,
    format_duration,
    parse_duration,
    parse_durations,
    parse_list,
    parse_mapping,
    to_si,
    unit_in_name,
)

# (unit, value in that unit, exact SI value) — written out by hand, not from the tables.
CONDUCTANCE = [("S", 2.5, 2.5), ("mS", 2.5, 2.5e-3), ("uS", 250.0, 2.5e-4), ("µS", 250.0, 2.5e-4),
               ("nS", 40.0, 4e-8), ("pS", 7.0, 7e-12)]
RESISTANCE = [("Ohm", 2000.0, 5e-4), ("kOhm", 4.0, 2.5e-4), ("MOhm", 2.0, 5e-7),
              ("GOhm", 1.0, 1e-9)]
TIME = [("s", 3.0, 3.0), ("ms", 250.0, 0.25), ("us", 5.0, 5e-6), ("ns", 8.0, 8e-9),
        ("min", 2.0, 120.0), ("h", 1.5, 5400.0), ("d", 2.0, 172800.0),
        ("y", 1.0, 31557600.0)]
VOLTAGE = [("V", 0.2, 0.2), ("mV", 200.0, 0.2)]
TEMPERATURE = [("K", 300.0, 300.0), ("C", 25.0, 298.15), ("C", -273.15, 0.0)]


@pytest.mark.parametrize("unit,value,si", CONDUCTANCE + RESISTANCE)
def test_conductance_units(unit, value, si):
    """Each conductance unit scales to S; each resistance unit gives G = 1/R in S
    (e.g. 4 kOhm -> 2.5e-4 S), to 1e-15 relative."""
    out = to_si(np.array([value]), unit, "conductance")
    assert out.dtype == np.float64
    assert out[0] == pytest.approx(si, rel=1e-15)


@pytest.mark.parametrize("unit,value,si", TIME)
def test_time_units(unit, value, si):
    """Each time unit scales to s; y = 365.25 d = 31,557,600 s."""
    assert to_si([value], unit, "time")[0] == pytest.approx(si, rel=1e-15)


@pytest.mark.parametrize("unit,value,si", VOLTAGE + TEMPERATURE)
def test_voltage_and_temperature_units(unit, value, si):
    """mV -> V by 1e-3; C -> K by +273.15 (25 C = 298.15 K, -273.15 C = 0 K); K unchanged."""
    kind = "voltage" if unit in ("V", "mV") else "temperature"
    assert to_si([value], unit, kind)[0] == pytest.approx(si, rel=1e-15, abs=1e-12)


def test_sub_units_give_the_exact_float():
    """100 uS must be exactly the float 1e-4 (100 * 1e-6 is not); 0..999.5 uS in 0.5 steps
    all equal float('<v>e-6')."""
    x = np.arange(0, 1000, 0.5)
    out = to_si(x, "uS", "conductance")
    assert out[200] == 1e-4
    assert np.array_equal(out, [float(f"{v!r}e-6") for v in x.tolist()])


def test_to_si_leaves_input_untouched_by_default():
    """to_si copies by default; copy=False converts a float64 array in place (same object)."""
    x = np.array([1.0, 2.0])
    to_si(x, "kOhm", "conductance")
    assert x.tolist() == [1.0, 2.0]
    y = to_si(x, "mS", "conductance", copy=False)
    assert y is x and x.tolist() == [1e-3, 2e-3]


@pytest.mark.parametrize("unit,kind", [("uF", "conductance"), ("ks", "time"), ("F", "temperature"),
                                       ("us", "conductance"), ("US", "conductance"),
                                       ("kV", "voltage")])
def test_unknown_unit_is_config_error(unit, kind):
    """An unknown unit raises ConfigError naming it and listing the valid units."""
    with pytest.raises(ConfigError, match=rf"unknown unit '{unit}'.*valid units"):
        to_si([1.0], unit, kind)


@pytest.mark.parametrize("r", [0.0, -5.0])
def test_nonpositive_resistance_rejected(r):
    """A resistance <= 0 cannot become a conductance: ConfigError naming the value."""
    with pytest.raises(ConfigError, match="resistance must be > 0"):
        to_si([100.0, r], "Ohm", "conductance")


@pytest.mark.parametrize("text,seconds", [
    ("1y", 31557600.0), ("3600", 3600.0), ("1h", 3600.0), ("10 ms", 0.01), ("1e5s", 1e5),
    ("2.5min", 150.0), ("0", 0.0), (".5d", 43200.0), ("1E3", 1000.0), (7, 7.0), (0.25, 0.25),
])
def test_parse_duration(text, seconds):
    """Bare numbers are seconds; units s ms us ns min h d y (y = 365.25 d)."""
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-15)


@pytest.mark.parametrize("text", ["", "h", "1 fortnight", "-1h", "nan", "inf", "1h30", "1 h h",
                                  True, "1e999"])
def test_parse_duration_rejects(text):
    """Not a duration, negative, NaN, infinite or an unknown unit: ConfigError."""
    with pytest.raises(ConfigError):
        parse_duration(text)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False),
       st.sampled_from(["s", "ms", "min", "h", "d", "y"]))
def test_parse_duration_matches_table(value, unit):
    """parse_duration(f'{v!r}{unit}') == v * (seconds per unit), for any v in [0, 1e6]."""
    factor = {"s": 1, "ms": 1e-3, "min": 60, "h": 3600, "d": 86400, "y": SECONDS_PER_YEAR}[unit]
    assert parse_duration(f"{value!r}{unit}") == pytest.approx(value * factor, rel=1e-12)


def test_lists_and_mappings():
    """'0,1h,1y' -> [0, 3600, 31557600]; ' a, b ,c' -> ['a','b','c'];
    'g=3,time=1' -> {'g': '3', 'time': '1'}; one value under two keys is allowed."""
    assert parse_durations("0,1h,1y") == [0.0, 3600.0, SECONDS_PER_YEAR]
    assert parse_list(" a, b ,c") == ["a", "b", "c"]
    assert parse_list(["x", " y"]) == ["x", "y"]
    assert parse_mapping("g=3, time=1") == {"g": "3", "time": "1"}
    assert parse_mapping("device=T,g_target=T") == {"device": "T", "g_target": "T"}
    assert parse_mapping({"g": 3}) == {"g": 3}
    assert parse_mapping(None) == {}


@pytest.mark.parametrize("parse,text,match", [
    (parse_list, "a,,b", "empty item at position 2"), (parse_list, "", "empty"),
    (parse_mapping, "g", "not KEY=VALUE"), (parse_mapping, "g=1,g=2", "given twice"),
    (parse_mapping, "=3", "not KEY=VALUE"), (parse_mapping, "gg=1", "unknown key 'gg'"),
])
def test_list_and_mapping_errors(parse, text, match):
    """Empty items, a missing '=', a repeated key or an unknown key are ConfigErrors."""
    kwargs = {"allowed_keys": ("g", "time")} if parse is parse_mapping else {}
    with pytest.raises(ConfigError, match=match):
        parse(text, **kwargs)


def test_unit_in_name():
    """Units at the end of a column name are recognised only for the right quantity."""
    assert unit_in_name("Measured_Conductance_uS", "conductance") == "uS"
    assert unit_in_name("Target_100uS", "conductance") == "uS"
    assert unit_in_name("Time (s)", "time") == "s"
    assert unit_in_name("R [kOhm]", "conductance") == "kOhm"
    assert unit_in_name("time_s", "conductance") is None
    assert unit_in_name("addr", "time") is None
    assert unit_in_name("g", "conductance") is None


def test_format_duration():
    """1e5 s -> '1.16 d'; 0.01 s -> '10 ms'; 0 -> '0 s'; 1 y -> '1 y'."""
    assert format_duration(1e5) == "1.16 d"
    assert format_duration(0.01) == "10 ms"
    assert format_duration(0) == "0 s"
    assert format_duration(SECONDS_PER_YEAR) == "1 y"
    assert math.isclose(parse_duration(format_duration(5400).replace(" ", "")), 5400)
