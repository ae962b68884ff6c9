"""Checks of option and config values (xbarlab/checks.py): one rule set for both."""

from __future__ import annotations

import math

import numpy as np
import pytest
from xbarlab.checks import (
    check_matrix_shape,
    check_memory,
    check_number,
    check_rng,
    check_values,
    format_bytes,
    parse_number,
)
from xbarlab.errors import ConfigError


@pytest.mark.parametrize("value, kw, needle", [
    (math.nan, {}, "must be finite"),
    (math.inf, {}, "must be finite"),
    (True, {}, "must be a number"),
    ("1", {}, "must be a number"),
    (1.5, {"integer": True}, "must be an integer"),
    (-1, {"integer": True, "lo": 0}, "must be >= 0, got -1"),
    (0.0, {"lo": 0, "lo_open": True}, "must be > 0, got 0.0"),
    (5000, {"integer": True, "lo": 2, "hi": 4096}, "must be in [2, 4096], got 5000"),
])
def test_check_number_refuses(value, kw, needle):
    """NaN, inf, bool, text, a non-integer count and values out of range: ConfigError naming
    the owner and the range."""
    with pytest.raises(ConfigError, match=r"^x " + needle.replace("[", r"\[").replace("(", r"\(")):
        check_number(value, what="x", **kw)


def test_parse_number_reads_integers_in_float_notation():
    """'1e3' is the integer 1000; '1.5', 'inf', 'nan' and '1e400' are refused as integers;
    '1e400' as a number is infinite and refused."""
    assert parse_number("1e3", what="n", integer=True) == 1000
    for text in ("1.5", "inf", "nan", "1e400"):
        with pytest.raises(ConfigError, match="finite integer"):
            parse_number(text, what="n", integer=True)
    with pytest.raises(ConfigError, match="must be finite"):
        parse_number("1e400", what="n")


def test_check_memory_refuses_beyond_half_the_available():
    """An estimate above half the available memory is refused with both numbers and the way
    to go on; at or below it passes; unknown available memory is not checked."""
    check_memory(500, what="job", go_on="--yes", available=1000)
    with pytest.raises(ConfigError, match=r"job needs about 600 B of memory, more than 50% of "
                       r"the 1 kB available; reduce it or pass --yes to go on"):
        check_memory(600, what="job", go_on="--yes", available=1000)
    assert format_bytes(2.4e13) == "24 TB"


@pytest.mark.parametrize("shape, needle", [
    ((3,), "integers"), ((2, 3, 4), "integers"), ((2.0, 3), "integers"), ((True, 3), "integers"),
    (("2", 3), "integers"), (None, "integers"), ((0, 3), "both >= 1"), ((2, -1), "both >= 1"),
])
def test_check_matrix_shape_refuses(shape, needle):
    with pytest.raises(ConfigError, match=needle) as e:
        check_matrix_shape(shape, what="layer shape")
    assert str(e.value).startswith("layer shape must be (n_out, n_in)")
    assert "\n" not in str(e.value)


def test_check_matrix_shape_takes_numpy_and_torch_integers():
    import numpy as np
    import torch

    assert check_matrix_shape((np.int64(4), 3)) == (4, 3)
    assert check_matrix_shape(torch.Size([5, 2])) == (5, 2)
    assert all(type(s) is int for s in check_matrix_shape(np.array([2, 7])))


def test_check_rng_takes_generators_and_refuses_the_rest():
    """A numpy Generator passes through (None too when optional); a seed, a legacy
    RandomState or None where a generator is required fail in one line naming the owner,
    the type given and what was expected."""
    g = np.random.default_rng(0)
    assert check_rng(g) is g and check_rng(None, optional=True) is None
    with pytest.raises(ConfigError, match=r"^rng must be a numpy\.random\.Generator, got "
                                          r"NoneType$"):
        check_rng(None)
    with pytest.raises(ConfigError, match=r"^gen must be a numpy\.random\.Generator or None, "
                                          r"got RandomState$"):
        check_rng(np.random.RandomState(0), what="gen", optional=True)
    with pytest.raises(ConfigError, match=r"got int$"):
        check_rng(7, optional=True)


@pytest.mark.parametrize("values, kw, needle", [
    ([1.0, float("nan")], {}, "x [S] must be finite, got nan at index (1,)"),
    ([[1.0, -1.0]], {"lo": 0.0}, "must be finite and >= 0, got -1.0 at index (0, 1)"),
    ([0.0], {"lo": 0.0, "lo_open": True}, "> 0, got 0.0"),
    ([0.5, 2.0], {"lo": 0.0, "hi": 1.0}, "in [0, 1], got 2.0 at index (1,)"),
    ("abc", {}, "must be numbers"),
])
def test_check_values_names_the_first_bad_entry(values, kw, needle):
    """An array with a non-finite or out-of-range entry is refused naming the entry, its
    index and the allowed range; a good one comes back as float64 unchanged."""
    with pytest.raises(ConfigError) as err:
        check_values(values, what="x [S]", **kw)
    assert needle in str(err.value)
    ok = check_values([[0.0, 1.0]], what="x [S]", lo=0.0, hi=1.0)
    assert ok.dtype == np.float64 and ok.tolist() == [[0.0, 1.0]]
