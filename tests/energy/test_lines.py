"""Line charging energy against C V^2 per rising edge, and the capacitance of a line."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.energy import LineCapacitance, charging_energy, line_capacitance, rising_edges
from xbarlab.errors import ConfigError


def test_binary_streams_cost_cv2_per_rising_edge():
    """Bits 1,1,0,1 (two rising edges) and 0,1,0,1,0,1 (three) at V: E = C V^2 x edges."""
    C, V = 2e-13, 0.3
    bits = np.array([[1, 1, 0, 1, 0, 0], [0, 1, 0, 1, 0, 1]])
    np.testing.assert_array_equal(rising_edges(bits), [2, 3])
    e = charging_energy(C, bits * V)
    np.testing.assert_allclose(e, C * V**2 * np.array([2, 3]), rtol=1e-15)


def test_multi_level_steps():
    """0 -> V1 -> V2 -> 0 with rails at each level: E = C V1^2 + C V2 (V2 - V1); a negative
    pulse 0 -> -V -> 0 costs C V^2 like a positive one."""
    C = 1e-12
    e = charging_energy(C, np.array([[0.1, 0.3], [-0.2, 0.0]]))
    np.testing.assert_allclose(e, [C * (0.01 + 0.3 * 0.2), C * 0.04], rtol=1e-14)


def test_line_capacitance():
    """A line of n cells: C = n (c_wire p + c_junction)."""
    caps = LineCapacitance(c_wire=2e-10, c_junction=1e-16, pitch=50e-9)
    assert line_capacitance(caps, 256) == pytest.approx(256 * (2e-10 * 50e-9 + 1e-16), rel=1e-15)
    assert LineCapacitance.from_dict(caps.to_dict()) == caps


def test_bad_input():
    """Negative or NaN capacitances, a zero pitch, unknown keys and non-binary bits raise."""
    with pytest.raises(ConfigError, match=r"c_junction.*-1e-15"):
        LineCapacitance(c_wire=1e-10, c_junction=-1e-15, pitch=1e-7)
    with pytest.raises(ConfigError, match=r"c_wire.*nan"):
        LineCapacitance(c_wire=float("nan"), c_junction=0.0, pitch=1e-7)
    with pytest.raises(ConfigError, match="pitch"):
        LineCapacitance(c_wire=1e-10, c_junction=0.0, pitch=0.0)
    with pytest.raises(ConfigError, match=r"c_line.*-1"):
        charging_energy(-1.0, np.ones((1, 2)))
    with pytest.raises(ConfigError, match="unknown"):
        LineCapacitance.from_dict({"c_wire": 1.0, "c_junction": 0.0, "pitch": 1.0, "x": 1})
    with pytest.raises(ConfigError, match="0 and 1"):
        rising_edges(np.array([0, 2]))
    with pytest.raises(ConfigError, match="n_cells"):
        line_capacitance(LineCapacitance(c_wire=1e-10, c_junction=0.0, pitch=1e-7), 0)
