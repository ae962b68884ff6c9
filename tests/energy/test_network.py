"""Network roll-up: tiling, conductances of the mapped weights, sums and the op count."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from xbarlab.energy.chip import load_chip
from xbarlab.energy.cost import product_cost
from xbarlab.energy.network import Layer, cost_table, layer_cost, network_cost, plot_cost
from xbarlab.errors import ConfigError


def _chip(**kw):
    base = dict(rows=8, cols=4, adc_energy=2e-12, adc_area=1e-9, input_scheme="bit-serial",
                input_bits=3, t_pulse=5e-9, g_min=0.0, g_max=20e-6)
    return dataclasses.replace(load_chip("hermes-core"), **(base | kw))


def test_nominal_layer_tiles_and_sums():
    """A 10 x 20 layer (n_out x n_in) on 8 x 4 arrays: ceil(20/8) x ceil(10/4) = 9 tiles; the
    full tiles cost one nominal product each, vectors times; ops 2 n_out n_in vectors."""
    c = _chip()
    lc = layer_cost(Layer("fc", n_out=10, n_in=20, vectors=3), c)
    assert len(lc.tiles) == 9
    full = product_cost(c)
    assert lc.tiles[0].cost.energy["adc"] == full.energy["adc"]
    assert lc.energy["adc"] == pytest.approx(3 * sum(t.cost.energy["adc"] for t in lc.tiles))
    assert lc.ops == 2 * 10 * 20 * 3
    assert lc.latency == pytest.approx(3 * full.latency)


def test_mapped_weights_set_the_array_energy():
    """One differential pair per weight from g_min = 0: G+ + G- = alpha |w| with
    alpha = g_max / max|w| (one alpha per tile); bit-serial uniform b-bit codes give
    E = b (V^2 / 2) t sum_ij alpha |w_ij|."""
    rng = np.random.default_rng(0)
    c = _chip()
    W = rng.normal(size=(4, 8))
    lc = layer_cost(Layer("fc", 4, 8, W=W), c)
    alpha = c.g_max / np.abs(W).max()
    ref = 3 * c.v_read**2 / 2 * c.t_pulse * alpha * np.abs(W).sum()
    assert lc.energy["array"] == pytest.approx(ref, rel=1e-12)


def test_network_totals_and_table():
    """Totals are the sums of the layers; TOPS/W = ops / E; the table ends with the op
    counting rule."""
    c = _chip()
    net = network_cost([Layer("a", 10, 20), Layer("b", 5, 10, vectors=2)], c)
    assert net.energy == pytest.approx(sum(sum(la.energy.values()) for la in net.layers))
    assert net.tops_per_w == pytest.approx(net.ops / net.energy / 1e12)
    assert net.interval == max(la.latency for la in net.layers)
    assert "2 per multiply-accumulate" in cost_table(net)


@pytest.mark.slow
def test_plot_is_written(tmp_path):
    """The stacked-bar plot is a PNG (slow: imports matplotlib, about 1 s)."""
    net = network_cost([Layer("a", 10, 20)], _chip())
    p = plot_cost(net, tmp_path / "e.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_layers():
    """Zero outputs or weights of the wrong shape: ConfigError naming the layer and value."""
    with pytest.raises(ConfigError, match="'x': n_out must be an integer >= 1, got 0"):
        Layer("x", 0, 3)
    with pytest.raises(ConfigError, match=r"W has shape \(3, 2\)"):
        Layer("x", 2, 3, W=np.ones((3, 2)))
    with pytest.raises(ConfigError, match="layers is empty"):
        network_cost([], _chip())
