"""The network-side ADC: the crossbar ADC's codes, the straight-through gradient, hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from xbarlab.errors import ConfigError
from xbarlab.nn import (
    adc_codes,
    attach_adc,
    detach_adc,
    quantize_ste,
)


def test_straight_through_backward_is_exactly_the_clip_mask():
    """quantize_ste: backward returns grad·1[|y| <= r] exactly; forward on the signed grid.

    Expected: y.grad == g·mask bit for bit (r = 1.5, B = 3, values inside and outside);
    forward values lie on k·r/3, k = -3..3 (zero included), within half a step of clip(y)
    inside the range.
    """
    g = torch.Generator().manual_seed(0)
    y = (torch.randn(1000, generator=g, dtype=torch.float64) * 1.5).requires_grad_()
    gout = torch.randn(1000, generator=g, dtype=torch.float64)
    q = quantize_ste(y, bits=3, out_range=1.5)
    (q * gout).sum().backward()
    mask = (y.detach().abs() <= 1.5).to(torch.float64)
    assert 0 < int(mask.sum()) < 1000
    assert torch.equal(y.grad, gout * mask)
    step = 1.5 / 3
    k = q.detach() / step
    torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-9)
    assert set(k.round().tolist()) <= set(range(-3, 4)) and 0.0 in k.round().tolist()
    assert float((q.detach() - y.detach().clamp(-1.5, 1.5)).abs().max()) <= step / 2 + 1e-12


def test_adc_hooks_quantize_every_layer_output():
    """attach_adc with 2 bits and range 1: a Linear's outputs take only the values -1, 0, 1."""
    lin = nn.Linear(6, 50)
    attach_adc(lin, bits=2, ranges=1.0)
    out = lin(torch.randn(20, 6))
    vals = torch.unique(out.detach())
    grid = torch.tensor([-1.0, 0.0, 1.0])
    assert float((vals[:, None] - grid[None, :]).abs().min(1).values.max()) < 1e-6
    detach_adc(lin)
    assert torch.unique(lin(torch.randn(20, 6)).detach()).numel() > 4


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12])
@pytest.mark.parametrize("r", [1.0, 0.37, 2.5])
def test_network_adc_gives_the_crossbar_adc_codes(bits, r):
    """The same inputs through the network-side quantizer and crossbar.converters.ADC
    (signed, full-scale current r) give the same codes, bit for bit: Gaussian values spanning
    the range and beyond, exact grid points, half-steps (ties to even) and 0 (maps to 0);
    quantize_ste's values equal ADC.convert's currents to rounding (float64)."""
    from xbarlab.crossbar.converters import ADC

    g = torch.Generator().manual_seed(bits)
    kmax = 2 ** (bits - 1) - 1
    grid = torch.arange(-kmax, kmax + 1, dtype=torch.float64)
    y = torch.cat([torch.randn(5000, generator=g, dtype=torch.float64) * r,
                   grid * (r / kmax), (grid[:-1] + 0.5) * (r / kmax),
                   torch.tensor([0.0, -0.0, 3 * r, -3 * r], dtype=torch.float64)])
    adc = ADC(bits=bits, signed=True).with_full_scale(r)
    ref = adc.instance(y.numel()).codes(y.numpy())
    ours = adc_codes(y, bits=bits, out_range=r)
    assert np.array_equal(ours.numpy(), ref)
    assert float(adc_codes(torch.zeros(3), bits=bits, out_range=r).abs().max()) == 0.0
    torch.testing.assert_close(quantize_ste(y, bits=bits, out_range=r),
                               torch.from_numpy(adc.convert(y.numpy())), rtol=1e-12, atol=0)


def test_last_layer_adc_is_an_option():
    """attach_adc(last_layer=False) quantizes every analog layer but the last: the hidden
    layer's outputs take 3 values (2 bits), the logits stay continuous; the default
    last_layer=True quantizes the logits too."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 30), nn.ReLU(), nn.Linear(30, 6))
    x = torch.randn(40, 4)
    seen = {}
    for last in (False, True):
        attach_adc(net, bits=2, ranges=1.0, last_layer=last)
        # registered after the ADC's hooks, so they see the quantized outputs
        hooks = [net[i].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o))
                 for n, i in (("hidden", 0), ("logits", 2))]
        net(x)
        detach_adc(net)
        for h in hooks:
            h.remove()
        assert torch.unique(seen["hidden"].detach()).numel() <= 3
        n = torch.unique(seen["logits"].detach()).numel()
        assert n <= 3 if last else n > 3


@pytest.mark.parametrize("bad", [
    lambda: quantize_ste(torch.zeros(3), bits=0, out_range=1.0),
    lambda: quantize_ste(torch.zeros(3), bits=1, out_range=1.0),
    lambda: quantize_ste(torch.zeros(3), bits=4, out_range=-1.0),
    lambda: attach_adc(nn.Linear(2, 2), bits=4, ranges=1.0, last_layer="no"),
])
def test_bad_input_raises_config_error(bad):
    """ADC bits outside 2..24 (a signed ADC with a zero code needs 2), a range <= 0, a
    non-boolean last_layer -> ConfigError."""
    with pytest.raises(ConfigError):
        bad()
