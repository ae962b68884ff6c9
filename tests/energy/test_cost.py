"""Cost of one product on a described chip against closed forms and the circuit solve."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from xbarlab.crossbar import Crossbar
from xbarlab.energy import array_energy, input_levels
from xbarlab.energy.chip import Accumulation, Readout, load_chip
from xbarlab.energy.cost import nominal_inputs, product_cost
from xbarlab.errors import ConfigError


def _chip(**kw):
    """The HERMES core with a paper-given ADC (so no survey), small, with unsigned inputs and
    an ADC that converts after the read, changed by ``kw``."""
    base = dict(rows=4, cols=3, adc_energy=2e-12, adc_area=1e-9, input_signed=False,
                adc_integrating=False)
    if "adc_rate" in kw or "adc_step_time" in kw:  # in place of the core's 300 ps/LSB
        base["adc_lsb_time"] = None
    return dataclasses.replace(load_chip("hermes-core"), **(base | kw))


def test_bit_serial_array_energy_is_the_uniform_average():
    """Bit-serial b-bit uniform codes: each bit is 1 half the time, so the mean array energy
    is b (V^2 / 2) t M N G with every cell at G; the nominal inputs reach it exactly."""
    c = _chip(input_scheme="bit-serial", input_bits=3, t_pulse=5e-9)
    e = product_cost(c).energy["array"]
    g = c.devices_per_weight * (c.g_min + c.g_max) / 2
    assert e == pytest.approx(3 * c.v_read**2 / 2 * 5e-9 * 4 * 3 * g, rel=1e-13)


def test_pulse_width_array_energy():
    """Pulse-width codes x: E = V^2 t_unit x sum_j G_ij per row; uniform b-bit codes average
    (2^b - 1) / 2."""
    c = _chip(input_scheme="pulse-width", input_bits=4)
    g = c.devices_per_weight * (c.g_min + c.g_max) / 2
    ref = c.v_read**2 * c.t_pulse * 7.5 * 4 * 3 * g
    assert product_cost(c).energy["array"] == pytest.approx(ref, rel=1e-13)


def test_array_energy_equals_the_circuit_solve_without_wires():
    """Random conductances and codes: the cost's array energy equals array_energy of the
    solved Crossbar (no wire resistance) summed over the bit-serial cycles, to 1e-12."""
    rng = np.random.default_rng(0)
    c = _chip(input_scheme="bit-serial", input_bits=4, t_pulse=3e-9)
    G = rng.uniform(0, 40e-6, (4, 3))
    x = rng.integers(0, 16, (5, 4))
    lv = input_levels(x, 4, c.v_read, "bit-serial")  # (5, 4, 4)
    ref = sum(array_energy(Crossbar(G), lv[b].T, 3e-9).total.sum() for b in range(5)) / 5
    assert product_cost(c, G=G, x=x).energy["array"] == pytest.approx(ref, rel=1e-12)


def test_conversions_latency_and_ops():
    """Digital accumulation of b-bit bit-serial inputs: N b conversions of E_adc; latency
    b (t + c / f_s); 2 M N operations. Analog accumulation: N conversions,
    b t + c / f_s."""
    c = _chip(input_scheme="bit-serial", input_bits=3, t_pulse=5e-9, columns_per_adc=2,
              adc_rate=1e8)
    pc = product_cost(c)
    assert pc.energy["adc"] == pytest.approx(3 * 3 * 2e-12)
    assert pc.latency == pytest.approx(3 * (5e-9 + 2 / 1e8))
    assert pc.ops == 2 * 4 * 3
    a = product_cost(dataclasses.replace(c, accumulation="analog"))
    assert a.energy["adc"] == pytest.approx(3 * 2e-12)
    assert a.latency == pytest.approx(3 * 5e-9 + 2 / 1e8)
    assert a.tops_per_w == pytest.approx(24 / a.total_energy / 1e12)


def test_converter_characterised_per_output_bit():
    """A converter of one step per output bit at E_step: analog accumulation converts once
    per column, so E = N b_out E_step; digital accumulation of b_in bit-serial cycles
    converts b_in times, E = N b_in b_out E_step. Giving both E_adc and E_step is refused."""
    c = _chip(adc_energy=None, adc_energy_per_bit=0.3e-12, input_scheme="bit-serial",
              input_bits=3, output_bits=5)
    assert product_cost(c).energy["adc"] == pytest.approx(3 * 3 * 5 * 0.3e-12, rel=1e-14)
    a = dataclasses.replace(c, readout="voltage", accumulation="analog")
    assert product_cost(a).energy["adc"] == pytest.approx(3 * 5 * 0.3e-12, rel=1e-14)
    with pytest.raises(ConfigError, match="both adc_energy and adc_energy_per_bit"):
        dataclasses.replace(c, adc_energy=2e-12)


def _neuron_chip(input_bits, output_bits):
    """A voltage-mode chip of 3 neurons with a [neuron] table (E_int 0.25 pJ, E_smp 1.2 pJ,
    C_wl 500 fF, two phases above 3 magnitude bits) and a 0.3 pJ-per-step converter."""
    return _chip(adc_energy=None, adc_energy_per_bit=0.3e-12, readout=Readout.VOLTAGE,
                 accumulation=Accumulation.ANALOG, input_scheme="bit-serial",
                 input_bits=input_bits, output_bits=output_bits, supply=1.8, adc_rate=1e6,
                 columns_per_adc=1, neuron_integration_energy=0.25e-12,
                 neuron_sample_energy=1.2e-12, wordline_capacitance=500e-15,
                 neuron_phase_bits=3)


@pytest.mark.parametrize("b_in, b_out, integrations, mag, steps", [
    # signed 4-bit inputs: 3 magnitude bits in one phase, 2^3 - 1 = 7 integrations, b_out steps
    (4, 6, 7, 3, 6),
    # 1-bit inputs keep one magnitude bit
    (1, 3, 1, 1, 3),
    # 8 bits: 7 magnitude bits in phases (4, 3): 15 + 7 integrations, 10 + (10 - 4) steps
    (8, 10, 22, 7, 16),
    # 6 bits: phases (3, 2): 7 + 3 integrations, 8 + 5 steps
    (6, 8, 10, 5, 13),
])
def test_integrate_and_fire_neuron(b_in, b_out, integrations, mag, steps):
    """A [neuron] chip of N = 3 neurons: neuron energy N (integrations E_int + n E_smp),
    wordlines N n C_wl V_dd^2, conversion N steps E_step (hand-counted above), and one
    conversion time per phase in the latency, or the steps times the step time for a
    converter given by its step time."""
    c = _neuron_chip(b_in, b_out)
    pc = product_cost(c)
    assert pc.energy["neuron"] == pytest.approx(
        3 * (integrations * 0.25e-12 + mag * 1.2e-12), rel=1e-13)
    assert pc.energy["wordlines"] == pytest.approx(3 * mag * 500e-15 * 1.8**2, rel=1e-13)
    assert pc.energy["adc"] == pytest.approx(3 * steps * 0.3e-12, rel=1e-13)
    plain = product_cost(dataclasses.replace(
        c, neuron_integration_energy=None, neuron_sample_energy=None,
        wordline_capacitance=None, neuron_phase_bits=None))
    assert plain.energy["neuron"] == plain.energy["wordlines"] == 0.0
    assert plain.energy["adc"] == pytest.approx(3 * b_out * 0.3e-12, rel=1e-13)
    n_phases = 2 if mag > 3 else 1
    assert pc.latency - plain.latency == pytest.approx((n_phases - 1) / 1e6, abs=1e-15)
    # a converter given by its step time: a conversion lasts its hand-counted steps times
    # the step in place of one 1 / f_s per phase (1 us here)
    stepped = product_cost(dataclasses.replace(c, adc_rate=None, adc_step_time=0.2e-6))
    assert stepped.latency - pc.latency == pytest.approx(steps * 0.2e-6 - n_phases * 1e-6,
                                                         abs=1e-15)
    assert stepped.energy["adc"] == pc.energy["adc"]
    with pytest.raises(ConfigError, match="needs all of"):
        dataclasses.replace(c, wordline_capacitance=None)
    # the neuron integrates charge over the input bits: digital accumulation is refused
    # (it would convert every bit-serial cycle and charge each the neuron's steps)
    with pytest.raises(ConfigError, match="needs accumulation = 'analog'"):
        dataclasses.replace(c, accumulation=Accumulation.DIGITAL)


def test_nominal_inputs_take_every_code_once_per_row():
    """Each row of the nominal inputs holds every code exactly once."""
    x = nominal_inputs(_chip(input_bits=3))
    assert all(sorted(col) == list(range(8)) for col in x.T)


def test_bad_arrays():
    """G larger than the array, or inputs of the wrong width: ConfigError naming them."""
    with pytest.raises(ConfigError, match="G must"):
        product_cost(_chip(), G=np.ones((5, 3)) * 1e-6)
    with pytest.raises(ConfigError, match="x has shape"):
        product_cost(_chip(), G=np.ones((4, 3)) * 1e-6, x=np.zeros((2, 3), int))


def test_activity_of_more_rows_equals_the_codes():
    """Costing with the InputActivity of 8-row codes restricted to a 4-row tile equals
    costing with the first 4 rows' codes (every component)."""
    from xbarlab.energy.cost import input_activity

    rng = np.random.default_rng(2)
    c = _chip(input_scheme="bit-serial", input_bits=3, rows=8)
    x = rng.integers(0, 8, (6, 8))
    G = rng.uniform(0, 20e-6, (4, 3))
    a = product_cost(c, G=G, activity=input_activity(c, x))
    b = product_cost(c, G=G, x=x[:, :4])
    assert a.energy == pytest.approx(b.energy, rel=1e-14)
    with pytest.raises(ConfigError, match="not both"):
        product_cost(c, G=G, x=x[:, :4], activity=input_activity(c, x))


def test_settling_time_of_the_solved_array_sets_the_cycle():
    """A 4 x 3 tile with 2 kOhm row and column segments: the settling time of its solved
    RC network (node capacitances, half an LSB of 8 bits) exceeds a 1 ps pulse, so each of
    the b bit-serial cycles lasts that long: latency b (t_settle + c / f_s)."""
    from xbarlab.crossbar import Crossbar, WireParams
    from xbarlab.energy import settling_time
    from xbarlab.energy.cost import line_capacitances

    c = _chip(input_scheme="bit-serial", input_bits=3, t_pulse=1e-12, adc_rate=1e8)
    G = np.full((4, 3), 20e-6)
    xb = Crossbar(G, wires=WireParams(r_row=2e3, r_col=2e3))
    ts = settling_time(xb, line_capacitances(c), 2.0**-9)
    assert ts > 1e-12
    pc = product_cost(c, G=G, t_settle=ts)
    assert pc.latency == pytest.approx(3 * (ts + 1 / 1e8))
    with pytest.raises(ConfigError, match="t_settle"):
        product_cost(c, G=G, t_settle=-1.0)


def test_neuron_phase_helpers_by_hand_and_bad_bits():
    """8-bit signed inputs: 7 magnitude bits in phases of 4 and 3 (above 3 per phase); 10
    output bits then take 10 + (10 - 4) = 16 steps; 2-bit inputs one phase of 1 bit;
    zero or fractional bits are refused naming the value."""
    from xbarlab.energy.chip import neuron_conversion_steps, neuron_phases
    from xbarlab.errors import ConfigError

    assert neuron_phases(8, 3) == (4, 3)
    assert neuron_conversion_steps(10, (4, 3)) == 16
    assert neuron_phases(2, 3) == (1,)
    assert neuron_conversion_steps(3, (1,)) == 3
    with pytest.raises(ConfigError, match="input_bits must be >= 1, got 0"):
        neuron_phases(0, 3)
    with pytest.raises(ConfigError, match="phase_bits must be an integer, got 2.5"):
        neuron_phases(8, 2.5)
    with pytest.raises(ConfigError, match="bits of a phase must be >= 1, got 0"):
        neuron_conversion_steps(8, (3, 0))


@pytest.mark.parametrize("phases", [(), [], "", None, 3])
def test_neuron_conversion_steps_refuses_no_phases(phases):
    """No phase at all (empty, a string, a bare number) is refused naming the value, not
    counted as 0 steps: every product converts at least once."""
    from xbarlab.energy.chip import neuron_conversion_steps
    from xbarlab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"phases must be a non-empty sequence of phase "
                                          r"bits, got " + re.escape(repr(phases)) + "$"):
        neuron_conversion_steps(8, phases)


def test_product_cost_derives_neuron_phases_once(monkeypatch):
    """One product of the NeuRRAM chip (a [neuron] table) works out the neuron's phases once,
    for the conversion steps, the neuron energy and the latency alike; its ADC energy is
    still the per-bit energy times the steps of those phases."""
    import xbarlab.energy.cost as cost
    from xbarlab.energy.chip import neuron_conversion_steps, neuron_phases

    chip = dataclasses.replace(load_chip("neurram"), input_bits=8)
    calls = []

    def counted(*args):
        calls.append(args)
        return neuron_phases(*args)

    monkeypatch.setattr(cost, "neuron_phases", counted)
    pc = product_cost(chip)
    assert calls == [(8, chip.neuron_phase_bits)]
    steps = neuron_conversion_steps(chip.output_bits, neuron_phases(8, chip.neuron_phase_bits))
    conv = chip.phases * chip.cols
    assert pc.energy["adc"] == pytest.approx(conv * steps * chip.adc_energy_per_bit, rel=1e-12)


def test_signed_pulse_width_inputs_and_an_integrating_converter():
    """Sign-magnitude 8-bit pulse-width inputs (the HERMES core's: 1 ns a magnitude LSB):
    the nominal inputs are the 128 magnitudes, the longest pulse (2^7 - 1) t, the mean array
    energy V^2 t mean(x) M N G = V^2 t 63.5 M N G (a voltage of either sign costs the same);
    an integrating converter of 77 ns (13 MHz) overlaps the 127 ns read, so the product
    takes 127 ns (204 ns when it converts after the read); a code above 127 is refused."""
    c = _chip(input_signed=True, adc_integrating=True, t_pulse=1e-9, input_bits=8,
              adc_rate=13e6)
    assert c.magnitude_bits == 7
    x = nominal_inputs(c)
    assert x.shape == (128, 4) and x.max() == 127
    cost = product_cost(c)
    g = c.devices_per_weight * (c.g_min + c.g_max) / 2
    assert cost.energy["array"] == pytest.approx(c.v_read**2 * 1e-9 * 63.5 * 4 * 3 * g,
                                                 rel=1e-13)
    assert cost.latency == pytest.approx(127e-9, rel=1e-12)
    after = product_cost(dataclasses.replace(c, adc_integrating=False))
    assert after.latency == pytest.approx(127e-9 + 1 / 13e6, rel=1e-12)
    assert after.energy == cost.energy | {"leakage": after.energy["leakage"]}
    with pytest.raises(ConfigError, match="128"):
        product_cost(c, x=np.full((1, 4), 128))


def test_digital_energy_per_output_is_once_per_product():
    """The chip's digital energy per output counts N E_dig per product: the mapped tile's
    columns, whatever the input and output bits and read phases; 0 leaves every other
    component as it was."""
    e_dig = 3.7e-12
    for kw in ({}, {"input_bits": 4, "output_bits": 4}, {"phases": 4},
               {"input_scheme": "bit-serial", "input_bits": 3}):
        c = _chip(digital_energy_per_output=e_dig, **kw)
        cost = product_cost(c)
        assert cost.energy["digital"] == pytest.approx(3 * e_dig, rel=1e-15), kw
        g = np.full((4, 2), c.g_max)
        assert product_cost(c, G=g).energy["digital"] == pytest.approx(2 * e_dig, rel=1e-15)
        bare = product_cost(dataclasses.replace(c, digital_energy_per_output=0.0))
        assert bare.energy["digital"] == 0.0
        assert {k: v for k, v in bare.energy.items() if k != "digital"} == \
            {k: v for k, v in cost.energy.items() if k != "digital"}


def test_counting_converter_takes_two_to_the_bits_lsb_times():
    """A counting converter of t_LSB = 300 ps (the HERMES core's CCO) converts b bits in
    2^b t_LSB (76.8 ns at 8 bits, 4.8 ns at 4) at the rate 1 / (2^b t_LSB), the survey's
    look-up rate; converting after a 1 ns unsigned bit-serial read, a b-bit product of
    b input cycles then lasts b (1 ns + 2^b t_LSB)."""
    for b in (4, 8):
        c = _chip(output_bits=b, input_scheme="bit-serial", input_bits=3, t_pulse=1e-9)
        assert c.adc_lsb_time == 300e-12 and c.adc_rate is None
        assert c.conversion_rate == pytest.approx(1 / (2**b * 300e-12), rel=1e-15)
        assert product_cost(c).latency == pytest.approx(3 * (1e-9 + 2**b * 300e-12),
                                                        rel=1e-12)
