"""The accuracy-cost study: Pareto front, layers of a torch model, the sweep's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from xbarlab.errors import ConfigError
from xbarlab.pipeline.ppa import PpaSweep, network_layers, pareto_front


def test_pareto_front_by_hand():
    """Points (energy, accuracy): (1, .80) (2, .90) (3, .85) (4, .95) (2, .90) again: the
    dominated one is (3, .85) (beaten by (2, .90)); ties are both kept."""
    m = pareto_front([1, 2, 3, 4, 2], [0.80, 0.90, 0.85, 0.95, 0.90])
    assert m.tolist() == [True, True, False, True, True]


def test_network_layers_of_a_small_cnn():
    """Conv2d(1->3, k3, pad 1) on 6x6, max-pool 2, Linear(27->4): the convolution is 3 x 9
    weights applied at 36 positions, the linear layer 4 x 27 once; weights reshaped to
    (out, in) and the biases kept."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(27, 4))
    la = network_layers(m, torch.zeros(2, 1, 6, 6))
    assert [(x.n_out, x.n_in, x.vectors) for x in la] == [(3, 9, 36), (4, 27, 1)]
    np.testing.assert_array_equal(la[0].W, m[0].weight.detach().double().numpy().reshape(3, 9))
    np.testing.assert_array_equal(la[1].bias, m[3].bias.detach().double().numpy())


@pytest.mark.parametrize("kw, match", [
    (dict(adc_bits=(1,)), "adc_bits"), (dict(tiles=(63,)), "even integers >= 4"),
    (dict(g_max=(-1e-6,)), "g_max"), (dict(r_wire=-1.0), "r_wire"),
    (dict(programmings=0), "programmings")])
def test_bad_sweeps(kw, match):
    """A 1-bit ADC, an odd tile, a negative conductance or resistance, zero programmings:
    ConfigError naming the field."""
    with pytest.raises(ConfigError, match=match):
        PpaSweep(**kw)
