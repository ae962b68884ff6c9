"""The one weight-to-conductance range rule (``devices.mapping.mapping_for``)."""

import math

import pytest
from xbarlab.devices.mapping import Scaling, Scheme, WeightMapping, device_range, mapping_for
from xbarlab.errors import ConfigError


class _Dev:
    """A stand-in device: only the range attributes the rule reads."""

    def __init__(self, g_range, g_fit=None):
        self.g_range = g_range
        if g_fit is not None:
            self.g_fit = g_fit


def test_defaults_are_the_device_range():
    """No g_min/g_max: the device's g_range ends, exactly."""
    m = mapping_for(_Dev((1e-6, 25e-6)))
    assert (m.g_min, m.g_max) == (1e-6, 25e-6)
    assert m == WeightMapping(g_max=25e-6, g_min=1e-6)


def test_fitted_range_narrows_the_accepted_range():
    """A fitted model accepts any g >= 0 but its data cover 0.3-2.5 uS: that is the range."""
    dev = _Dev((0.0, math.inf), g_fit=(0.3e-6, 2.5e-6))
    assert device_range(dev) == (0.3e-6, 2.5e-6)
    m = mapping_for(dev)
    assert (m.g_min, m.g_max) == (0.3e-6, 2.5e-6)
    with pytest.raises(ConfigError, match="does not cover"):
        mapping_for(dev, g_max=5e-6)
    assert mapping_for(dev, g_max=5e-6, allow_extrapolation=True).g_max == 5e-6


def test_unbounded_range_needs_g_max():
    """An ideal device (no upper bound) refuses a default g_max, accepts an explicit one."""
    with pytest.raises(ConfigError, match="no finite upper bound"):
        mapping_for(_Dev((0.0, math.inf)))
    assert mapping_for(_Dev((0.0, math.inf)), g_max=1e-4).g_max == 1e-4


def test_fields_pass_through_and_unknown_fields_fail():
    """Scheme, scaling and pairs reach the WeightMapping; a misspelt field is refused."""
    m = mapping_for(_Dev((0.0, 1e-5)), scheme="reference", scaling="column")
    assert m.scheme is Scheme.REFERENCE and m.scaling is Scaling.COLUMN
    with pytest.raises(ConfigError, match="unknown WeightMapping fields"):
        mapping_for(_Dev((0.0, 1e-5)), n_pair=2)


def test_bad_ranges():
    """g_min >= g_max, a negative g_min: one-line ConfigErrors."""
    with pytest.raises(ConfigError, match="0 <= g_min < g_max"):
        mapping_for(_Dev((0.0, 1e-5)), g_min=5e-6, g_max=5e-6)
    with pytest.raises(ConfigError):
        mapping_for(_Dev((0.0, 1e-5)), g_min=-1e-6)
