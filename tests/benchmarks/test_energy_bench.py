"""Benchmark of the network cost roll-up (run on demand: ``pytest -m benchmark
tests/benchmarks``).

Goal: the cost of one inference of a network laid out on 100 tiles (mapped weights, every
tile's product costed) in <= 1 s on 2 cores. Prints its numbers and the machine.
"""

import time

import numpy as np
import pytest
from _bench import machine
from _shared import shared_path
from xbarlab.energy import fit_adc_area, load_adc_survey, load_chip, network_cost
from xbarlab.energy.network import Layer

pytestmark = pytest.mark.benchmark


def test_hundred_tile_network_cost_within_a_second():
    """Two layers of mapped random weights, 2560 x 1280 and 1280 x 2560 (n_out x n_in), on
    HERMES-core tiles of 256 x 256 weights: 50 + 50 = 100 tiles; best of 3 roll-ups <= 1 s
    (the ADC survey loaded and its area fitted once, beforehand)."""
    survey = load_adc_survey(shared_path("data", "adc_survey"))
    area = fit_adc_area(survey)
    chip = load_chip("hermes-core")
    rng = np.random.default_rng(0)
    layers = [Layer("a", 2560, 1280, W=rng.normal(size=(2560, 1280))),
              Layer("b", 1280, 2560, W=rng.normal(size=(1280, 2560)))]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        net = network_cost(layers, chip, survey, area_model=area)
        times.append(time.perf_counter() - t0)
    assert net.n_tiles >= 100
    print(f"\n{net.n_tiles} tiles: best {min(times):.3f} s, median {np.median(times):.3f} s; "
          f"{net.energy * 1e6:.4g} uJ, {net.tops_per_w:.3g} TOPS/W [{machine()}]")
    assert min(times) <= 1.0
