"""Energy, latency and area of crossbar hardware, from the exact circuit solve and measured data.

Modules, each importing only those above it:

* :mod:`~xbarlab.energy.params`: checks and dictionary conversion shared by the parameter
  dataclasses;
* :mod:`~xbarlab.energy.array`: :func:`array_energy`, the energy of a read from the solved
  circuit (every branch, and the drivers' delivered energy), and :func:`pulse_width_energy`;
* :mod:`~xbarlab.energy.lines`: :class:`LineCapacitance` and :func:`charging_energy`, line
  charging ``C V^2`` from the actual input levels;
* :mod:`~xbarlab.energy.latency`: RC settling of the solved circuit
  (:func:`settling_time_constant`), :func:`read_latency`;
* :mod:`~xbarlab.energy.readout`: voltage-mode (integrating) readout,
  :func:`integrating_readout` and :func:`integration_time`, in closed form;
* :mod:`~xbarlab.energy.adc`: ADC energy per conversion and area from the ADC performance
  survey (B. Murmann, "ADC Performance Survey 1997-2025");
* :mod:`~xbarlab.energy.periphery`: input encodings, shift-and-add, shared ADCs;
* :mod:`~xbarlab.energy.chip`: chip and technology-node descriptions as TOML data
  (:func:`load_chip`, :func:`load_node`, :func:`shipped_chips`);
* :mod:`~xbarlab.energy.cost`: :func:`product_cost`, one matrix-vector product on one array of
  a described chip, by component (energy, latency, area), and :func:`chip_figures`;
* :mod:`~xbarlab.energy.network`: per tile, layer and inference (:func:`network_cost`),
  :func:`cost_table` and :func:`plot_cost`;
* :mod:`~xbarlab.energy.anchors`: the shipped chips against their papers' published figures.

Units: J, s, m^2, F, V, S, Hz.
"""

from .adc import (
    AdcAreaModel,
    AdcLookup,
    AdcStatistic,
    AdcSurvey,
    adc_energy,
    fit_adc_area,
    load_adc_survey,
    schreier_fom,
    walden_fom,
)
from .array import ArrayEnergy, array_energy, pulse_width_energy
from .chip import (
    ADC_SURVEY_PERCENTILE,
    ChipDescription,
    NodeParams,
    load_chip,
    load_node,
    shipped_chips,
)
from .cost import ProductCost, chip_figures, product_cost
from .latency import read_latency, settling_time, settling_time_constant
from .lines import LineCapacitance, charging_energy, line_capacitance, rising_edges
from .network import Layer, LayerCost, NetworkCost, cost_table, network_cost, plot_cost
from .periphery import (
    DigitalParams,
    InputScheme,
    adc_count,
    input_cycles,
    input_levels,
    pulse_widths,
    shift_add_energy,
)
from .readout import IntegratingRead, integrating_readout, integration_time

__all__ = [
    "ArrayEnergy", "array_energy", "pulse_width_energy",
    "LineCapacitance", "line_capacitance", "charging_energy", "rising_edges",
    "IntegratingRead", "integrating_readout", "integration_time",
    "settling_time_constant", "settling_time", "read_latency",
    "AdcSurvey", "load_adc_survey", "AdcStatistic", "AdcLookup", "adc_energy", "AdcAreaModel",
    "fit_adc_area", "walden_fom", "schreier_fom",
    "InputScheme", "input_levels", "input_cycles", "pulse_widths", "DigitalParams",
    "shift_add_energy", "adc_count",
    "ADC_SURVEY_PERCENTILE", "ChipDescription", "NodeParams", "load_chip", "load_node",
    "shipped_chips", "ProductCost", "product_cost", "chip_figures",
    "Layer", "LayerCost", "NetworkCost", "network_cost", "cost_table", "plot_cost",
]
