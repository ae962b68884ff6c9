r"""Energy, latency and area of one matrix-vector product on one array of a described chip.

:func:`product_cost` adds the component models for one array of a
:class:`~xbarlab.energy.chip.ChipDescription`, per input vector (averaged over the vectors
given), with ``P`` the read phases and ``T`` the input cycles (``b_in`` for bit-serial
inputs, else 1):

* ``array``: for current-mode readout ``P sum_k sum_i v_ik^2 sum_j G_ij t_k`` (the exact
  solve's energy with ideal lines: :func:`~xbarlab.energy.array.array_energy` of a
  :class:`~xbarlab.crossbar.Crossbar` without wire resistance is this sum to rounding);
  pulse-width inputs hold row ``i`` for ``x_i t``; for voltage-mode readout the driver
  energy of :func:`~xbarlab.energy.readout.integrating_readout` over
  :func:`~xbarlab.energy.readout.integration_time` to half an output LSB, with the column
  capacitance ``C_int + M (c_wire p + c_junction)``;
* ``lines``: row-line charging :func:`~xbarlab.energy.lines.charging_energy` of
  ``N d (c_wire p + c_junction)`` (``d`` devices per weight) through the input levels;
* ``drivers``: ``C_drv V_dd^2`` per rising input edge;
* ``adc``: ``P N T`` conversions (digital accumulation) or ``P N`` (analog), each
  :attr:`~ChipDescription.adc_energy`, ``b_out`` :attr:`~ChipDescription.adc_energy_per_bit`
  or the survey's :data:`ADC_SURVEY_PERCENTILE`;
* ``shift_add``: :func:`~xbarlab.energy.periphery.shift_add_energy` of ``b_in + b_out``-bit
  accumulators (digital accumulation of bit-serial inputs);
* ``buffers`` and ``interconnect``: the input and output bits ``M b_in + N (b_in + b_out)``
  through the SRAM buffers (``E_buf`` a bit) and across one array's side (``E_wire sqrt(A)``);
* ``digital``: ``N E_dig``, the chip's digital work per output value that its figure counts
  (:attr:`~xbarlab.energy.chip.ChipDescription.digital_energy_per_output`), once per product
  whatever the bits and phases;
* ``neuron`` and ``wordlines`` (chips with a ``[neuron]`` table, else 0): with ``n`` magnitude
  input bits in phases ``p_i`` (:func:`~xbarlab.energy.chip.neuron_phases`), each of the
  ``N`` neurons integrates ``sum_i (2^p_i - 1)`` times (``E_int`` each) and samples ``n``
  times (``E_smp``), ``P N (sum_i (2^p_i - 1) E_int + n E_smp)``; its control line toggles
  once per magnitude bit, ``P N n C_wl V_dd^2``; a converter characterised per output bit
  then takes :func:`~xbarlab.energy.chip.neuron_conversion_steps` steps a conversion (one
  conversion per neuron and product, the phases' included) in place of ``b_out``;
* ``leakage``: ``P_leak/A`` times the periphery area (drivers, sense, accumulators; the
  survey's ADC power already holds the converters' own) times the latency.

Latency: ``P T (t_read + c t_conv)`` for digital accumulation (``P T max(t_read, c t_conv)``
with an integrating ADC, which converts during the read) and ``P (T t_read + c t_conv)``
for analog accumulation (``c`` columns per ADC, ``t_conv = 1 / f_s``, ``2^b_out t_LSB``
for a counting converter, once per neuron phase with a ``[neuron]`` table; a converter given
by its step time ``t_step`` takes ``s t_step``, ``s`` its steps a conversion, the phases'
included), with
``t_read = t_pulse`` (``(2^n - 1) t_pulse`` for pulse-width inputs of ``n`` magnitude bits,
``b_in - 1`` for signed inputs, else ``b_in``; at least the
integration time for voltage-mode readout; at least ``t_settle`` where the caller gives the
array's RC settling time).

Area: devices ``M N d p^2``, ADCs (paper or survey regression), row drivers ``M A_row``,
column sense ``N A_col``, accumulators ``N (b_in + b_out) A_add``.

Operations are counted as 2 per multiply-accumulate: ``2 M N`` per product, whatever the
input and output resolutions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .adc import AdcAreaModel, AdcLookup, AdcStatistic, AdcSurvey, adc_energy
from .chip import (
    ADC_SURVEY_PERCENTILE,
    Accumulation,
    ChipDescription,
    Readout,
    neuron_conversion_steps,
    neuron_phases,
)
from .latency import read_latency
from .lines import LineCapacitance, charging_energy, rising_edges
from .periphery import DigitalParams, InputScheme, adc_count, input_levels, shift_add_energy
from .readout import integrating_readout, integration_time

__all__ = ["ENERGY_PARTS", "AREA_PARTS", "ProductCost", "product_cost", "nominal_inputs",
           "InputActivity", "input_activity", "line_capacitances",
           "nominal_conductances", "adc_conversion_energy", "chip_figures"]

#: Energy components of :class:`ProductCost`, in report order.
ENERGY_PARTS = ("array", "lines", "drivers", "adc", "shift_add", "buffers", "interconnect",
                "digital", "neuron", "wordlines", "leakage")
#: Area components of :class:`ProductCost`, in report order.
AREA_PARTS = ("devices", "adc", "drivers", "sense", "accumulators")


@dataclass(frozen=True)
class ProductCost:
    """One matrix-vector product on one array: energy and area by component, latency, ops."""

    energy: Mapping[str, float]
    """Energy per product by component (:data:`ENERGY_PARTS`) [J]."""
    latency: float
    """Latency of one product [s]."""
    area: Mapping[str, float]
    """Area of one array and its periphery by component (:data:`AREA_PARTS`) [m^2]."""
    ops: int
    """Operations per product, 2 per multiply-accumulate [1]."""

    @property
    def total_energy(self) -> float:
        """Energy per product [J]."""
        return float(sum(self.energy.values()))

    @property
    def total_area(self) -> float:
        """Area of the array and its periphery [m^2]."""
        return float(sum(self.area.values()))

    @property
    def tops_per_w(self) -> float:
        """Operations per joule / 1e12 [TOPS/W]."""
        return self.ops / self.total_energy / 1e12

    @property
    def tops(self) -> float:
        """Throughput of one array [TOPS]: ops / latency / 1e12."""
        return self.ops / self.latency / 1e12

    @property
    def tops_per_mm2(self) -> float:
        """Throughput per area [TOPS/mm^2]."""
        return self.tops / (self.total_area * 1e6)


def nominal_inputs(chip: ChipDescription) -> np.ndarray:
    """Input codes (2^n, M) in which every row takes every code once (row ``i`` of vector
    ``k``: ``(k + i) mod 2^n``, ``n`` the chip's
    :attr:`~xbarlab.energy.chip.ChipDescription.magnitude_bits`): averages over them are
    exact averages over uniform codes for components additive over rows."""
    n = 1 << chip.magnitude_bits
    return (np.arange(n)[:, None] + np.arange(chip.rows)[None, :]) % n


def nominal_conductances(chip: ChipDescription) -> np.ndarray:
    """Conductance seen by each row at each column (M, N) [S] with the devices at the middle
    of their range: ``d (g_min + g_max) / 2``."""
    g = chip.devices_per_weight * 0.5 * (chip.g_min + chip.g_max)
    return np.full((chip.rows, chip.cols), g)


def adc_conversion_energy(chip: ChipDescription, survey: AdcSurvey | None) -> float:
    """Energy of one conversion [J]: the paper's (``E_adc``, or ``b_out E_step`` for a
    converter characterised per output bit), else the survey's
    :data:`ADC_SURVEY_PERCENTILE` percentile at ``b_out`` bits and the ADC rate. With a
    ``[neuron]`` table a per-bit converter takes
    :func:`~xbarlab.energy.chip.neuron_conversion_steps` steps in place of ``b_out``."""
    return _conversion_energy(chip, survey, _phases(chip))


def _phases(chip: ChipDescription) -> tuple[int, ...] | None:
    """The neuron's phases (:func:`~xbarlab.energy.chip.neuron_phases`), None without a
    ``[neuron]`` table."""
    if not chip.integrate_and_fire:
        return None
    return neuron_phases(chip.input_bits, chip.neuron_phase_bits)


def _conversion_energy(chip: ChipDescription, survey: AdcSurvey | None,
                       phases: tuple[int, ...] | None) -> float:
    """:func:`adc_conversion_energy` with the neuron's ``phases`` (:func:`_phases`) given."""
    if chip.adc_energy is not None:
        return chip.adc_energy
    if chip.adc_energy_per_bit is not None:
        steps = chip.output_bits
        if phases is not None:
            steps = neuron_conversion_steps(chip.output_bits, phases)
        return steps * chip.adc_energy_per_bit
    if survey is None:
        raise ConfigError(f"chip {chip.name!r} gives no ADC energy; pass the ADC survey")
    _need_rate(chip, "the survey's energy")
    return adc_energy(survey, AdcLookup(bits=chip.output_bits, f_sample=chip.conversion_rate,
                                        statistic=AdcStatistic.PERCENTILE,
                                        percentile=ADC_SURVEY_PERCENTILE,
                                        extrapolate=chip.adc_extrapolate))


def _need_rate(chip: ChipDescription, what: str) -> None:
    if chip.conversion_rate is None:
        raise ConfigError(f"chip {chip.name!r} gives an ADC step time but no rate [Hz], which "
                          f"{what} needs; give the ADC's rate or its energy and area")


def _conversion_time(chip: ChipDescription, phases: tuple[int, ...] | None) -> float:
    """Duration of one conversion [s] (all of a neuron's phases with ``phases`` given):
    ``1 / f_s`` (``2^b_out t_LSB`` for a counting converter), or steps times
    :attr:`~.chip.ChipDescription.adc_step_time` for a per-bit converter."""
    if chip.adc_step_time is None:
        return 1.0 / chip.conversion_rate * (1 if phases is None else len(phases))
    steps = chip.output_bits if phases is None else neuron_conversion_steps(chip.output_bits,
                                                                            phases)
    return steps * chip.adc_step_time


def _area(chip: ChipDescription, area_model: AdcAreaModel | None) -> dict[str, float]:
    nd = chip.node
    n_adc = adc_count(chip.cols, chip.columns_per_adc)
    if chip.adc_area is not None:
        a_adc = chip.adc_area
    elif area_model is None:
        raise ConfigError(f"chip {chip.name!r} gives no ADC area; pass an ADC area model")
    else:
        _need_rate(chip, "the survey's area regression")
        a_adc = area_model.area(chip.output_bits, chip.conversion_rate, nd.feature_size,
                                extrapolate=True, percentile=ADC_SURVEY_PERCENTILE)
    acc_bits = chip.input_bits + chip.output_bits
    return {"devices": chip.rows * chip.cols * chip.devices_per_weight * nd.cell_pitch ** 2,
            "adc": n_adc * a_adc, "drivers": chip.rows * nd.a_row, "sense": chip.cols * nd.a_col,
            "accumulators": chip.cols * acc_bits * nd.a_add_bit}


@dataclass(frozen=True, eq=False)
class InputActivity:
    """What the cost needs of a set of input vectors: their line levels and per-row means
    over the vectors (components additive over rows then cost one dot product a tile)."""

    codes: np.ndarray
    """x: input codes (B, M) [1]."""
    levels: np.ndarray
    """v: row voltage in each cycle (B, M, T) [V] (:func:`~.periphery.input_levels`)."""
    sq: np.ndarray
    """Mean over the vectors of ``sum_t v_t^2`` per row (M,) [V^2]."""
    charge: np.ndarray
    """Mean over the vectors of the row's charging energy per farad (M,) [J/F]
    (:func:`~.lines.charging_energy` of 1 F)."""
    edges: np.ndarray
    """Mean over the vectors of the row's rising input edges (M,) [1]."""
    code_mean: np.ndarray
    """Mean code per row (M,) [1]."""

    def first_rows(self, m: int) -> InputActivity:
        """The same vectors restricted to their first ``m`` rows."""
        return InputActivity(*(getattr(self, f.name)[:, :m] if f.name in ("codes", "levels")
                               else getattr(self, f.name)[:m]
                               for f in dataclasses.fields(self)))


def input_activity(chip: ChipDescription, x=None) -> InputActivity:
    """:class:`InputActivity` of input codes ``x`` (B, M) on ``chip`` (default
    :func:`nominal_inputs`)."""
    xx = nominal_inputs(chip) if x is None else np.atleast_2d(np.asarray(x))
    if xx.ndim != 2 or not 1 <= xx.shape[1] <= chip.rows:
        raise ConfigError(f"x has shape {xx.shape}; expected (B, M) input codes with "
                          f"M <= {chip.rows}")
    lv = input_levels(xx, chip.magnitude_bits, chip.v_read, chip.input_scheme)  # (B, M, T)
    return InputActivity(
        codes=xx, levels=lv, sq=(lv * lv).sum(axis=2).mean(axis=0),
        charge=charging_energy(1.0, lv).mean(axis=0),
        edges=rising_edges((lv != 0).astype(np.int8)).mean(axis=0),
        code_mean=xx.mean(axis=0))


def _check_arrays(chip: ChipDescription, G, x, activity) -> tuple[np.ndarray, InputActivity]:
    g = nominal_conductances(chip) if G is None else np.asarray(G, dtype=np.float64)
    M = g.shape[0] if g.ndim == 2 else -1
    if g.ndim != 2 or not 1 <= M <= chip.rows or g.shape[1] > chip.cols \
            or not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ConfigError(f"G must be a finite (M, N) array >= 0 [S] with M <= {chip.rows}, "
                          f"N <= {chip.cols}; got shape {g.shape}")
    if activity is not None and x is not None:
        raise ConfigError("pass x or activity, not both")
    if activity is None:
        activity = input_activity(chip, x)
    elif not isinstance(activity, InputActivity):
        raise ConfigError(f"activity must be an InputActivity, got {type(activity).__name__}")
    if activity.codes.shape[1] < M or (x is not None and activity.codes.shape[1] != M):
        raise ConfigError(f"x has shape {activity.codes.shape}; expected (B, {M}) input codes")
    return g, activity.first_rows(M)


def line_capacitances(chip: ChipDescription) -> LineCapacitance:
    """The :class:`~xbarlab.energy.lines.LineCapacitance` of ``chip``'s node (wire and
    junction capacitance, device pitch), for :func:`~xbarlab.energy.latency.settling_time`."""
    nd = chip.node
    return LineCapacitance(c_wire=nd.c_wire, c_junction=nd.c_junction, pitch=nd.cell_pitch)


def _neuron_energy(chip: ChipDescription, n_neurons: int,
                   phases: tuple[int, ...] | None) -> tuple[float, float]:
    """Integration and sampling, and control-line switching, of ``n_neurons`` integrate-and-fire
    neurons with the given ``phases`` (:func:`_phases`) over one read phase of a product [J]
    (0, 0 without a ``[neuron]`` table: ``phases`` None)."""
    if phases is None:
        return 0.0, 0.0
    n = sum(phases)
    integrations = sum((1 << p) - 1 for p in phases)
    ops = integrations * chip.neuron_integration_energy + n * chip.neuron_sample_energy
    return (n_neurons * ops,
            n_neurons * n * chip.wordline_capacitance * chip.supply ** 2)


def _read_time(chip: ChipDescription, g: np.ndarray, c_col: float) -> float:
    if chip.input_scheme is InputScheme.PULSE_WIDTH:
        t = ((1 << chip.magnitude_bits) - 1) * chip.t_pulse
    else:
        t = chip.t_pulse
    if chip.readout is Readout.VOLTAGE:
        t = max(t, integration_time(g, c_col, 2.0 ** -(chip.output_bits + 1)))
    return t


def _array_energy(chip: ChipDescription, g, act: InputActivity, t_read, c_col) -> float:
    """Mean array energy per input vector of one phase [J]."""
    if chip.readout is Readout.VOLTAGE:
        B, M, T = act.levels.shape
        v = act.levels.transpose(0, 2, 1).reshape(B * T, M)
        return float(integrating_readout(g, v, c_col, t_read).energy.sum() / B)
    gsum = g.sum(axis=1)  # (M,)
    if chip.input_scheme is InputScheme.PULSE_WIDTH:
        return float(chip.v_read ** 2 * chip.t_pulse * (act.code_mean @ gsum))
    return float(t_read * (act.sq @ gsum))


def product_cost(chip: ChipDescription, survey: AdcSurvey | None = None, *, G=None, x=None,
                 activity: InputActivity | None = None,
                 area_model: AdcAreaModel | None = None, t_settle: float = 0.0) -> ProductCost:
    """Cost of one matrix-vector product on one array of ``chip`` (module docstring).

    Parameters
    ----------
    chip : ChipDescription
        The chip, its node values included.
    survey : AdcSurvey, optional
        The ADC survey, needed when the chip gives no ADC energy.
    G : (M, N) array [S], optional
        Conductance each row sees at each column (the devices of one weight summed), of the
        mapped tile (M <= rows, N <= cols); default :func:`nominal_conductances`.
    x : (B, M) array of int, optional
        Input codes (magnitudes for signed inputs) in ``[0, 2^n - 1]``, ``n`` the chip's
        :attr:`~xbarlab.energy.chip.ChipDescription.magnitude_bits`; default
        :func:`nominal_inputs`.
    activity : InputActivity, optional
        Instead of ``x``: :func:`input_activity` computed once for many tiles (its first
        ``M`` rows are used).
    area_model : AdcAreaModel, optional
        The survey's ADC area regression, needed when the chip gives no ADC area.
    t_settle : float
        Settling time of the array [s] (e.g. :func:`~xbarlab.energy.latency.settling_time`
        of the tile's :class:`~xbarlab.crossbar.Crossbar` with :func:`line_capacitances`);
        each input cycle lasts at least this long (default 0: the pulse alone).

    Returns
    -------
    ProductCost
        Energy per product (mean over the input vectors) [J], latency [s], area [m^2], ops.
    """
    if not isinstance(chip, ChipDescription):
        raise ConfigError(f"chip must be a ChipDescription, got {type(chip).__name__}")
    g, act = _check_arrays(chip, G, x, activity)
    nd, P = chip.node, chip.phases
    M, N = g.shape
    if chip.readout is Readout.VOLTAGE and chip.input_scheme is InputScheme.PULSE_WIDTH:
        raise ConfigError("voltage-mode readout with pulse-width inputs is not modelled")
    per_cell = nd.c_wire * nd.cell_pitch + nd.c_junction
    c_col = nd.c_integrator + chip.rows * per_cell
    T = act.levels.shape[-1]
    if isinstance(t_settle, bool) or not isinstance(t_settle, int | float) \
            or not math.isfinite(t_settle) or t_settle < 0:
        raise ConfigError(f"t_settle must be a finite duration >= 0 [s], got {t_settle!r}")
    t_read = max(_read_time(chip, g, c_col), float(t_settle))
    c_row = chip.cols * chip.devices_per_weight * per_cell
    digital = chip.accumulation is Accumulation.DIGITAL or T == 1
    phases = _phases(chip)
    conv = P * N * (T if digital else 1)
    if digital:
        latency = P * read_latency(t_read, _conversion_time(chip, None), input_cycles=T,
                                   columns_per_adc=chip.columns_per_adc,
                                   integrating=chip.adc_integrating)
    else:
        latency = P * (T * t_read + chip.columns_per_adc * _conversion_time(chip, phases))
    area = _area(chip, area_model)
    acc_bits = chip.input_bits + chip.output_bits
    io_bits = M * chip.input_bits + N * acc_bits
    e_add = DigitalParams(e_add_bit=nd.e_add_bit)
    periph = sum(v for k, v in area.items() if k not in ("devices", "adc"))
    e_neuron, e_wordlines = _neuron_energy(chip, N, phases)
    energy = {
        "array": P * _array_energy(chip, g, act, t_read, c_col),
        "lines": P * c_row * float(act.charge.sum()),
        "drivers": P * nd.c_driver * chip.supply ** 2 * float(act.edges.sum()),
        "adc": conv * _conversion_energy(chip, survey, phases),
        "shift_add": P * shift_add_energy(N, T if digital else 1, acc_bits, e_add),
        "buffers": io_bits * nd.e_buffer_bit,
        "interconnect": io_bits * nd.e_wire_bit_mm * math.sqrt(sum(area.values())),
        "digital": N * chip.digital_energy_per_output,
        "neuron": P * e_neuron,
        "wordlines": P * e_wordlines,
        "leakage": nd.p_leak_density * periph * latency,
    }
    return ProductCost(energy=energy, latency=latency, area=area, ops=2 * M * N)


def chip_figures(chip: ChipDescription, cost: ProductCost) -> dict[str, float]:
    """Whole-chip figures from one array's :class:`ProductCost` with every core busy:
    ``TOPS/W`` (``ops / E``), ``TOPS`` (``cores ops / latency``), area ``cores A`` [mm^2]
    and ``TOPS/mm^2``, plus the energy per product [J] and its latency [s]."""
    tops = chip.cores * cost.tops
    area_mm2 = chip.cores * cost.total_area * 1e6
    return {"tops_per_w": cost.tops_per_w, "tops": tops, "area_mm2": area_mm2,
            "tops_per_mm2": tops / area_mm2, "energy_j": cost.total_energy,
            "latency_s": cost.latency}


