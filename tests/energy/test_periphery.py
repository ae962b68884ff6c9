"""Input encodings, shift-and-add and ADC sharing against counts made by hand."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.energy import (
    DigitalParams,
    InputScheme,
    adc_count,
    charging_energy,
    input_cycles,
    input_levels,
    pulse_widths,
    shift_add_energy,
)
from xbarlab.errors import ConfigError


def test_bit_serial_levels_and_their_charging():
    """Codes 5 (101) and 6 (110), 3 bits, LSB first: rows see 1,0,1 and 0,1,1 times V; the
    row lines charge on 2 and 1 rising edges, E = C V^2 (2 + 1)."""
    lv = input_levels(np.array([5, 6]), 3, 0.2, "bit-serial")
    np.testing.assert_array_equal(lv, [[0.2, 0.0, 0.2], [0.0, 0.2, 0.2]])
    C = 1e-13
    assert charging_energy(C, lv).sum() == pytest.approx(C * 0.04 * 3, rel=1e-14)
    assert input_cycles(InputScheme.BIT_SERIAL, 3) == 3


def test_multi_level_and_pulse_width():
    """Multi-level: code x of b bits at v_read x / (2^b - 1); pulse-width: v_read for t x."""
    np.testing.assert_allclose(input_levels(np.array([0, 5, 15]), 4, 0.3, "multi-level")[:, 0],
                               [0.0, 0.1, 0.3], rtol=1e-15)
    np.testing.assert_array_equal(input_levels(np.array([0, 3]), 2, 0.3, "pulse-width")[:, 0],
                                  [0.0, 0.3])
    np.testing.assert_allclose(pulse_widths(np.array([0, 3]), 2, 1e-9), [0.0, 3e-9])
    assert input_cycles("pulse-width", 8) == 1


def test_shift_add_and_adc_sharing():
    """256 outputs, 8 input bits, 16-bit accumulators: 256 x 7 x 16 adder bits; 256 columns
    on ADCs shared by 8 (or 3) columns need 32 (or 86) ADCs."""
    d = DigitalParams(e_add_bit=2e-15)
    assert shift_add_energy(256, 8, 16, d) == pytest.approx(256 * 7 * 16 * 2e-15)
    assert adc_count(256, 8) == 32 and adc_count(256, 3) == 86
    assert DigitalParams.from_dict(d.to_dict()) == d


def test_bad_input():
    """Codes beyond 2^b - 1, negative codes, unknown schemes and negative energies raise."""
    with pytest.raises(ConfigError, match=r"x holds 8.*\[0, 7\]"):
        input_levels(np.array([8]), 3, 0.2, "bit-serial")
    with pytest.raises(ConfigError, match="x holds -1"):
        input_levels(np.array([-1]), 3, 0.2, "bit-serial")
    with pytest.raises(ConfigError, match="scheme"):
        input_levels(np.array([1]), 3, 0.2, "thermometer")
    with pytest.raises(ConfigError, match=r"e_add_bit.*-1e-15"):
        DigitalParams(e_add_bit=-1e-15)
    with pytest.raises(ConfigError, match="columns_per_adc"):
        adc_count(256, 0)
