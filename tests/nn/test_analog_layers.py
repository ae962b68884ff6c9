"""Programmed layers: statistical (effective weights) vs circuit (crossbar tiles) outputs.

Truths used: the effective-weight product of the same programmed conductances (ideal circuit)
and the crossbar IR-drop study (crossbar/study.py) for the wire error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _toy import D, H
from torch import nn


def _small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 64, 40), nn.ReLU(), nn.Linear(40, 10)).double()


def _layer_inputs(net, x):
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, i[0]))
             for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    net(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("mapping", [None, {"scheme": "reference", "g_min": 1e-6},
                                     {"n_pairs": 2, "significance": 4.0, "scaling": "column"}])
def test_statistical_equals_ideal_circuit_in_every_layer(pcm, mapping):
    """Same programmed chip (seed, cell indexing), float64, zero wire resistance, ideal
    DAC/ADC: every layer's circuit output equals the statistical (effective-weight) output
    to 1e-9 relative, with and without drift compensation, on 24x24 tiles at 1 d; for the
    tile's default differential mapping, a reference-column mapping and two pairs of
    significance 1/4 (devices.mapping.WeightMapping, g_max = 25 uS)."""
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.devices.mapping import WeightMapping

    if mapping is not None:
        mapping = WeightMapping(g_max=25e-6, **mapping)
    from xbarlab.nn.analog_layers import (
        circuit_model,
        input_ranges,
        program_network,
        statistical_model,
    )

    torch.set_grad_enabled(False)
    try:
        _check_ideal(pcm, TileConfig, circuit_model, input_ranges, program_network,
                     statistical_model, mapping)
    finally:
        torch.set_grad_enabled(True)


def _check_ideal(pcm, TileConfig, circuit_model, input_ranges, program_network,
                 statistical_model, mapping):
    net = _small_net()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    layers = program_network(net, pcm, np.random.default_rng(4), tile=TileConfig(rows=24, cols=24),
                             x_max=input_ranges(net, x), t=D, mapping=mapping)
    for comp in (False, True):
        fs = {pl.name: pl.drift_factor(circuit=False) for pl in layers} if comp else None
        fc = {pl.name: pl.drift_factor(circuit=True) for pl in layers} if comp else None
        if comp:
            assert all(abs(fs[k] / fc[k] - 1) < 1e-12 for k in fs)
        s = statistical_model(net, layers, factors=fs, dtype=torch.float64)
        c = circuit_model(net, layers, factors=fc)
        ins = _layer_inputs(s, x)
        smods, cmods = dict(s.named_modules()), dict(c.named_modules())
        for pl in layers:
            a = smods[pl.name](ins[pl.name]).detach()
            b = cmods[pl.name](ins[pl.name]).detach()
            assert float((a - b).abs().max() / a.abs().max()) < 1e-9, pl.name
        assert float((s(x) - c(x)).abs().max() / s(x).abs().max()) < 1e-9
    # the programmed chip is not the digital network
    assert float((s(x) - net(x)).abs().max()) > 1e-3


@pytest.mark.parametrize("r_wire", [1.0, 3.0])
def test_circuit_ir_drop_matches_crossbar_study(pcm, r_wire):
    """A 64-input, 32-output Linear layer (weights U(-1, 1), no bias) on one 64x64 tile,
    inputs U(0, 1): circuit-mode relative output error against the statistical output of the
    same read conductances equals the crossbar IR-drop study's ``ir_drop`` for n = 64 and
    the same wire resistance within 10 %."""
    from xbarlab.crossbar.study import StudyConfig, run_study
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.analog_layers import circuit_model, program_network, statistical_model

    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(64, 32, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.rand(32, 64, generator=g, dtype=torch.float64) * 2 - 1)
    net = nn.Sequential(lin)
    x = torch.rand(32, 64, generator=g, dtype=torch.float64)
    layers = program_network(net, pcm, np.random.default_rng(5),
                             tile=TileConfig(rows=64, cols=64, r_row=r_wire, r_col=r_wire),
                             x_max={"0": 1.0}, t=H)
    ys = statistical_model(net, layers, dtype=torch.float64)(x).detach().numpy()
    yc = circuit_model(net, layers)(x).detach().numpy()
    ours = np.linalg.norm(yc - ys) / np.linalg.norm(ys)
    study = run_study(pcm, StudyConfig(sizes=(64,), r_wire=(r_wire,), vectors=32, t=H),
                      progress=False)[0]["ir_drop"]
    assert ours > 0
    assert abs(ours / study - 1) <= 0.10, (ours, study)


def test_per_channel_factors_scale_each_output_channel(pcm):
    """A Conv2d(1→4) + Linear network programmed on pcm-ibm-2020 (one chip, read at 1 d):
    with factors f_c = 1, 2, 3, 4 for the convolution, the statistical and the ideal-circuit
    convolution outputs equal f_c times the uncompensated ones (1e-9), channel by channel."""
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.analog_layers import (
        circuit_model,
        input_ranges,
        program_network,
        statistical_model,
    )

    net = _small_net()
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    layers = program_network(net, pcm, np.random.default_rng(4), tile=TileConfig(rows=24, cols=24),
                             x_max=input_ranges(net, x), t=D)
    f = {"0": np.array([1.0, 2.0, 3.0, 4.0])}
    with torch.no_grad():
        for make in (lambda fa: statistical_model(net, layers, factors=fa, dtype=torch.float64),
                     lambda fa: circuit_model(net, layers, factors=fa)):
            plain, scaled = make(None)[0](x), make(f)[0](x)
            ratio = scaled / torch.from_numpy(f["0"])[None, :, None, None]
            assert float((ratio - plain).abs().max() / plain.abs().max()) < 1e-9


def test_float32_batchnorm_network_runs_in_circuit_mode(pcm):
    """A float32 Conv2d -> BatchNorm2d -> Linear network (as training leaves it): its
    circuit-mode copy is float64 throughout (BatchNorm included) and, with zero wires and
    ideal converters, equals the float64 statistical model of the same chip to 1e-9."""
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.analog_layers import (
        circuit_model,
        input_ranges,
        program_network,
        statistical_model,
    )

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 10)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    layers = program_network(net, pcm, np.random.default_rng(4), tile=TileConfig(rows=24, cols=24),
                             x_max=input_ranges(net, x), t=D)
    with torch.no_grad():
        c = circuit_model(net, layers)(x.double())
        s = statistical_model(net, layers, dtype=torch.float64)(x.double())
    assert c.dtype == torch.float64
    assert float((s - c).abs().max() / s.abs().max()) < 1e-9
