"""DAC and sense-path (TIA + ADC) models of xbarlab.crossbar.converters."""

import dataclasses

import numpy as np
import pytest
from xbarlab.crossbar.converters import (
    ADC,
    DAC,
    InputEncoding,
    RangeMode,
    ShiftAdd,
    analog_mvm,
    max_possible_current,
    quantize_codes,
)
from xbarlab.errors import ConfigError


def test_dac_levels_exact():
    """Unsigned 3-bit DAC at 0.7 V: levels k*0.1 V, k = 0..7; signed 3-bit: k*0.35 V, k=-3..3."""
    u = DAC(bits=3, v_max=0.7, signed=False)
    np.testing.assert_array_equal(u.levels(), np.arange(8) * (0.7 / 7))
    s = DAC(bits=3, v_max=0.7, signed=True)
    np.testing.assert_array_equal(s.levels(), np.arange(-3, 4) * (0.7 / 3))


def test_dac_rounding_and_clipping():
    """Signed 4-bit DAC (k_max=7), x_max=1: x=0.5 -> rint(3.5)=4 -> 4/7*v_max; x=2 clips to 7;
    x=-3 clips to -7; unsigned clips x<0 to 0."""
    d = DAC(bits=4, v_max=0.2, signed=True)
    v = d.voltages([0.5, 2.0, -3.0, 0.0, 1 / 7])
    np.testing.assert_allclose(v, np.array([4, 7, -7, 0, 1]) * 0.2 / 7, rtol=0, atol=1e-15)
    du = DAC(bits=4, v_max=0.2, signed=False)
    np.testing.assert_allclose(du.voltages([-0.3, 0.5]), [0.0, 8 * 0.2 / 15], atol=1e-15)


def test_adc_levels_and_clipping():
    """Signed 4-bit ADC with i_fs = 1 V / 1e4 Ohm = 100 uA: LSB = 100/7 uA; currents beyond
    +-100 uA clip to +-100 uA; each current rounds to the nearest multiple of the LSB."""
    adc = ADC(bits=4, tia_gain=1e4, v_fs=1.0, signed=True)
    lsb = 1e-4 / 7
    np.testing.assert_allclose(adc.levels(), np.arange(-7, 8) * lsb, rtol=1e-15)
    I = np.array([[0.0, 2.6 * lsb, -2.4 * lsb, 3e-4, -5e-4]])
    np.testing.assert_allclose(adc.convert(I), [[0.0, 3 * lsb, -2 * lsb, 1e-4, -1e-4]],
                               rtol=1e-14)
    u = ADC(bits=2, tia_gain=1e4, signed=False)  # LSB 100/3 uA
    np.testing.assert_allclose(u.convert(np.array([-1e-5, 5e-5, 1e-3])),
                               [0.0, 2 * 1e-4 / 3, 1e-4], rtol=1e-14)


def test_level_rule_in_place_gives_the_same_codes():
    """Signed 2-bit codes (k_max = 1) of u = -1.7, -0.5, -0.4, 0, 0.5, 1.5, 2.5: rint with ties
    to even, then the clip: -1, 0, 0, 0, 0, 1, 1. With inplace the numpy array and the torch
    tensor receive these codes themselves; without, they are left alone."""
    torch = pytest.importorskip("torch")
    u = [-1.7, -0.5, -0.4, 0.0, 0.5, 1.5, 2.5]
    want = [-1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    for a in (np.array(u), torch.tensor(u, dtype=torch.float64)):
        a0 = a.copy() if isinstance(a, np.ndarray) else a.clone()
        q = quantize_codes(a, bits=2, signed=True)
        assert q is not a and np.array_equal(np.asarray(a), np.asarray(a0))
        assert np.array_equal(np.asarray(q), want)
        q = quantize_codes(a, bits=2, signed=True, inplace=True)
        assert q is a and np.array_equal(np.asarray(a), want)
    g = torch.tensor(u, requires_grad=True)  # autograd records it: rounded out of place
    assert np.array_equal(quantize_codes(g, bits=2).detach().numpy(), want)


def test_every_output_is_a_level():
    """Any input currents map onto ADC.levels() exactly (6-bit signed)."""
    adc = ADC(bits=6, tia_gain=2e4)
    rng = np.random.default_rng(0)
    y = adc.convert(rng.normal(0, 4e-5, (50, 9)))
    lv = adc.levels()
    assert np.all(np.min(np.abs(y[..., None] - lv), axis=-1) <= 1e-15 * lv.max())


def test_calibrated_range_clips_stated_percentile():
    """Range calibrated at the 99 % of |I| over 10^5 normal currents: exactly 1 % +- 1 sample of
    the same data set exceeds full scale and clips."""
    rng = np.random.default_rng(1)
    data = rng.normal(0, 1e-5, 100_000)
    adc = ADC(bits=8, range_mode=RangeMode.CALIBRATED, percentile=99.0).resolve(currents=data)
    assert adc.range_mode is RangeMode.FIXED
    clipped = np.mean(np.abs(data) > adc.i_fs)
    assert abs(clipped - 0.01) <= 1e-5
    y = adc.convert(data)
    assert np.max(np.abs(y)) == pytest.approx(adc.i_fs, rel=1e-14)
    assert np.mean(np.abs(y) >= adc.i_fs * (1 - 1e-12)) >= 0.01


def test_max_possible_range():
    """MAX_POSSIBLE: i_fs = max column sum of G times v_max = (1+2+3) uS * 0.2 V = 1.2 uA."""
    G = np.array([[1e-6, 3e-6], [2e-6, 1e-6], [3e-6, 1e-6]])
    assert max_possible_current(G, 0.2) == pytest.approx(1.2e-6, rel=1e-14)
    adc = ADC(range_mode="max-possible").resolve(G=G, v_max=0.2)
    assert adc.i_fs == pytest.approx(1.2e-6, rel=1e-14)


def test_bit_serial_equals_one_shot_linear_ideal():
    """Linear cells, ideal ADC: bit-serial (digital or analog shift-add) and pulse-width outputs
    equal the amplitude-encoded one-shot MVM (k/k_max * v_max) @ G to 1e-15 relative."""
    rng = np.random.default_rng(2)
    G = rng.uniform(1e-6, 25e-6, (12, 5))
    x = rng.uniform(-1, 1, (7, 12))
    ref = analog_mvm(x, lambda v: v @ G, dac=DAC(bits=6))
    direct = DAC(bits=6).voltages(x) @ G
    np.testing.assert_allclose(ref, direct, rtol=0, atol=1e-15 * np.abs(direct).max())
    cases = [("bit-serial", "digital"), ("bit-serial", "analog"), ("pulse-width", "digital")]
    for enc, sa in cases:
        dac = DAC(bits=6, encoding=enc, shift_add=sa)
        y = analog_mvm(x, lambda v: v @ G, dac=dac)
        np.testing.assert_allclose(y, direct, rtol=0, atol=1e-14 * np.abs(direct).max())


def test_bit_serial_digital_quantizes_each_plane():
    """Digital shift-add digitizes every bit plane: with a 1-row array G=1 S, v_max=1 V, 3-bit
    unsigned DAC (k=5 = 101b) and a 2-bit unsigned ADC (i_fs = 3 A, LSB 1 A) each plane's current
    (1 A, 0, 1 A) is exact, y = (1 + 4*1)/7 A; analog shift-add digitizes 5/7 A once -> 1 A."""
    G = np.array([[1.0]])
    dac = DAC(bits=3, v_max=1.0, signed=False, encoding="bit-serial")
    adc = ADC(bits=2, signed=False, tia_gain=1.0, v_fs=3.0)
    y_d = analog_mvm([5 / 7], lambda v: v @ G, dac=dac, adc=adc)
    assert y_d[0] == pytest.approx(5 / 7, rel=1e-14)
    y_a = analog_mvm([5 / 7], lambda v: v @ G,
                     dac=dataclasses.replace(dac, shift_add=ShiftAdd.ANALOG), adc=adc)
    assert y_a[0] == pytest.approx(1.0, rel=1e-14)


def test_pulse_width_linear_for_nonlinear_cell():
    """Pulse-width encoding of a single cubic cell I = V + V^3 (V in V, I in A) at v_max = 1 V:
    the output is linear in the code, y = k/k_max * I(v_max) = k/7 * 2 A; amplitude is not."""
    cell = lambda v: v + v**3  # noqa: E731
    dac_pw = DAC(bits=3, v_max=1.0, signed=False, encoding=InputEncoding.PULSE_WIDTH)
    y = analog_mvm(np.arange(8)[:, None] / 7, cell, dac=dac_pw)
    np.testing.assert_allclose(y[:, 0], np.arange(8) / 7 * 2.0, rtol=1e-14)
    amp = analog_mvm(np.array([[3 / 7]]), cell, dac=DAC(bits=3, v_max=1.0, signed=False))
    assert amp[0, 0] == pytest.approx(3 / 7 + (3 / 7) ** 3, rel=1e-14)


def test_adc_static_errors_direction_and_magnitude():
    """Gain error alone: 8 columns, sigma_g = 0.05, ideal bits -> y/I - 1 equals the drawn
    per-column gain error exactly; offset alone (sigma_o = 1 uA) -> y - I equals the drawn offset;
    sharing (4 columns per ADC) gives columns 0-3 the same error."""
    rng = np.random.default_rng(3)
    I = np.full((3, 8), 5e-5)
    chip = ADC(bits=None, gain_error_std=0.05, columns_per_adc=4).instance(8, rng)
    y = chip.convert(I)
    np.testing.assert_allclose(y / I - 1, np.broadcast_to(np.repeat(chip.gain_error, 4), (3, 8)),
                               rtol=1e-12, atol=1e-15)
    assert chip.gain_error.shape == (2,)
    chip_o = ADC(bits=None, offset_std=1e-6).instance(8, np.random.default_rng(4))
    np.testing.assert_allclose(chip_o.convert(I) - I, np.broadcast_to(chip_o.offset, (3, 8)),
                               atol=1e-18)
    assert 0.3e-6 < np.std(chip_o.offset) < 3e-6


def test_adc_inl_bounded_and_zero_at_ends():
    """INL alone (inl_max = 2 LSB, 8-bit): output codes differ from the ideal ones by at most
    2 + 1 LSB, by 0 at both ends of the range, and are not all equal to the ideal ones."""
    adc = ADC(bits=8, tia_gain=1e4, inl_max=2.0)
    chip = adc.instance(16, np.random.default_rng(5))
    I = np.linspace(-adc.i_fs, adc.i_fs, 1001)[:, None] * np.ones(16)
    d = chip.codes(I) - np.rint(adc.convert(I) / adc.lsb)
    assert np.max(np.abs(d)) <= 3 and np.max(np.abs(d)) >= 1
    assert np.all(d[[0, -1]] == 0)


def test_adc_noise_statistics():
    """Noise alone, ideal bits, sigma_n = 1 uA: y - I has std 1 uA within 3 % (2e5 samples)."""
    adc = ADC(bits=None, noise_std=1e-6)
    y = adc.convert(np.zeros((20000, 10)), np.random.default_rng(6))
    assert abs(np.std(y) / 1e-6 - 1) < 0.03


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: ADC(bits=0), "bits"),
        (lambda: ADC(bits=1, signed=True), "bits"),
        (lambda: ADC(v_fs=-1.0), "v_fs"),
        (lambda: ADC(tia_gain=0.0), "tia_gain"),
        (lambda: ADC(percentile=0.0), "percentile"),
        (lambda: ADC(noise_std=-1e-9), "noise_std"),
        (lambda: ADC(columns_per_adc=0), "columns_per_adc"),
        (lambda: ADC(range_mode="auto"), "range_mode"),
        (lambda: DAC(bits=0), "bits"),
        (lambda: DAC(v_max=-0.2), "v_max"),
        (lambda: DAC(encoding="thermometer"), "encoding"),
        (lambda: DAC(bits=None, encoding="bit-serial"), "bits"),
    ],
)
def test_bad_converter_config(make, name):
    """Bad converter settings raise ConfigError naming the argument."""
    with pytest.raises(ConfigError, match=name):
        make()


def test_unresolved_range_and_roundtrip():
    """A non-FIXED ADC must be resolved before use; to_dict/from_dict round-trips exactly."""
    with pytest.raises(ConfigError, match="resolve"):
        ADC(range_mode="calibrated").instance(4)
    a = ADC(bits=5, range_mode="calibrated", percentile=99.5, inl_max=0.5)
    assert ADC.from_dict(a.to_dict()) == a
    d = DAC(bits=4, encoding="pulse-width", t_unit=2e-9)
    assert DAC.from_dict(d.to_dict()) == d
