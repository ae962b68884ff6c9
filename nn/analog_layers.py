"""Torch wrappers of crossbar tiles: a trained network's layers programmed onto devices.

``crossbar/`` is numpy only; this module is the bridge (imported lazily by evaluation,
never by training). Each ``Linear``/``Conv1d``/``Conv2d`` of a model becomes a
:class:`ProgrammedLayer`: its weight matrix ``W`` (in_features, out_features) [1] and
bias go onto a :class:`~xbarlab.crossbar.tiling.TiledMatrix` (each tile mapped by
``devices.mapping.WeightMapping``: differential pairs or a reference column, bias rows
within the DAC full scale ``x_max``, tiles of the given size), programmed once
through the device model (per-cell state kept) and read at any time ``t`` after
programming. Two ways to run the read network:

* statistical: the layer's *effective* weights of the read conductances (the mapping's
  inverse, ``MappedWeights.to_weights``; bias from the bias rows) replace the torch
  weights (:func:`statistical_model`);
  fast, pure torch;
* circuit: the layer's matrix products run through the tiles (exact IR drop, DAC, ADC;
  convolutions via im2col) in float64 numpy (:class:`AnalogLinear`,
  :class:`AnalogConv`, :func:`circuit_model`); no gradient.

Both read the same programmed conductances, so with an ideal circuit (zero wire
resistance, ideal converters) they agree to rounding. Drift compensation scales a
layer's outputs by one factor ``f = Σ|y_ref| / Σ|y_t|`` (global) or one per output column
``f_j = |y_ref,j| / |y_t,j|`` (column) from a calibration input (every input at ``x_max``;
``y_t`` from the read array through the same path as the layer's inference, ``y_ref`` from
the target weights or from the first read after programming):
``TiledMatrix.compensation_factors``, i.e. ``devices.mapping.compensation_factors``.
Factors multiply the analog layer's outputs; a digital layer after it (BatchNorm, the
next layer's nonlinearity) sees the compensated outputs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "ANALOG_LAYER_TYPES",
    "ProgrammedLayer",
    "program_network",
    "AnalogLinear",
    "AnalogConv",
    "statistical_model",
    "circuit_model",
    "input_ranges",
]

ANALOG_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    out = [(n, m) for n, m in model.named_modules() if isinstance(m, ANALOG_LAYER_TYPES)]
    if not out:
        raise ConfigError("the model has no Linear/Conv1d/Conv2d layer to program")
    for n, m in out:
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            if m.groups != 1 or any(d != 1 for d in m.dilation) or m.padding_mode != "zeros" \
                    or isinstance(m.padding, str):
                raise ConfigError(f"layer {n!r}: only groups=1, dilation=1 and numeric zero "
                                  "padding convolutions map onto crossbar tiles")
    return out


def layer_matrix(m: nn.Module) -> tuple[np.ndarray, np.ndarray | None]:
    """``(W (out, in), b (out,) or None)`` as float64 numpy, the torch nn.Linear convention."""
    w = m.weight.detach().to("cpu", torch.float64).numpy()
    W = w.reshape(w.shape[0], -1).copy()
    b = None if m.bias is None else m.bias.detach().to("cpu", torch.float64).numpy().copy()
    return W, b


@torch.no_grad()
def input_ranges(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """``{layer name: max |input|}`` over the batch ``x`` for every analog layer: the input
    that each layer's DAC maps to full scale (``x_max``) [1]."""
    layers = dict(_layers(model))
    seen: dict[str, float] = {}
    hooks = []
    for name, m in layers.items():
        def hook(mod, inp, _out, name=name):
            seen[name] = max(seen.get(name, 0.0), float(inp[0].detach().abs().max()))
        hooks.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return {n: (v if v > 0 else 1.0) for n, v in seen.items()}


@dataclass(eq=False)
class ProgrammedLayer:
    """One layer on crossbar tiles (see the module docstring)."""

    name: str
    """Qualified module name in the model."""
    module: nn.Module = field(repr=False)
    """The original (trained) torch layer: kind, shapes, conv parameters, target weights."""
    matrix: Any = field(repr=False)
    """The :class:`~xbarlab.crossbar.tiling.TiledMatrix` holding the programmed devices."""
    x_max: float = 1.0
    """Input mapped to the DAC full scale [1]."""
    time: float | None = None
    """Time of the current read after programming [s]."""

    @property
    def in_features(self) -> int:
        return self.matrix.in_features

    def read(self, t: float, rng: np.random.Generator) -> ProgrammedLayer:
        """Read the devices at ``t`` [s] after programming (drift + read noise)."""
        self.matrix.read(float(t), rng)
        self.time = float(t)
        return self

    def effective(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Effective ``(W (out, in), b (out,))`` [1] of the read conductances (no wires,
        no converters): the mapping's inverse per tile (``devices.mapping``), bias = the
        bias rows' drive × their sum (zeros for a bias-free layer whose module has one)."""
        W, b = self.matrix.effective()
        if self.module.bias is not None and b is None:
            b = np.zeros(self.matrix.out_features)
        return W, b

    def calibration_outputs(self, *, circuit: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(y_ref, y_t)`` for the calibration input (every input at ``x_max``): target
        weights vs. the read array (effective weights, or the circuit when ``circuit``)."""
        return self.matrix.calibration_outputs(circuit=circuit)

    def drift_factor(self, *, circuit: bool) -> float:
        """Global drift-compensation factor of this layer at the current read [1]
        (``TiledMatrix.drift_factor``: ``devices.mapping.global_drift_factor``)."""
        return self.matrix.drift_factor(circuit=circuit)

    def compensation_factors(self, compensation, *, circuit: bool,
                             reference=None) -> np.ndarray:
        """Drift-compensation factors (out_features,) [1] of this layer at the current read:
        ``compensation`` a :class:`~xbarlab.devices.mapping.Compensation` (or its value),
        ``reference`` a :class:`~xbarlab.devices.mapping.CompensationReference` (None: the
        ideal product) (``TiledMatrix.compensation_factors``)."""
        return self.matrix.compensation_factors(compensation, circuit=circuit,
                                                reference=reference)


def program_network(model: nn.Module, device, rng: np.random.Generator, *, tile=None,
                    dac=None, adc=None, x_max: dict[str, float] | None = None, t: float = 0.0,
                    mapping=None, allow_extrapolation: bool = False) -> list[ProgrammedLayer]:
    """Program every analog layer of ``model`` onto tiles through ``device`` (one chip).

    ``tile``: :class:`~xbarlab.crossbar.tiling.TileConfig` (size, layout, wire resistances
    [Ohm]); ``dac``/``adc``: converters (None: ideal); ``x_max``: per layer DAC full-scale
    input (default 1.0; see :func:`input_ranges`); ``t``: time of the first read [s];
    ``mapping``: the :class:`~xbarlab.devices.mapping.WeightMapping` of every layer (None:
    :func:`~xbarlab.devices.mapping.mapping_for` ``(device)``), inside the device model's
    range unless ``allow_extrapolation``. Layers are programmed in module order, each tile's
    G+ then G− (or reference column), all from ``rng`` (same seed, same chip).
    """
    from ..crossbar.tiling import TiledMatrix
    from ..devices.mapping import check_mapping, mapping_for

    mapping = (mapping_for(device) if mapping is None
               else check_mapping(device, mapping, allow_extrapolation=allow_extrapolation))
    out = []
    for name, m in _layers(model):
        W, b = layer_matrix(m)
        xm = 1.0 if x_max is None else float(x_max.get(name, 1.0))
        if not (math.isfinite(xm) and xm > 0):
            raise ConfigError(f"x_max of layer {name!r} must be finite and > 0, got {xm!r}")
        tm = TiledMatrix(W, bias=b, tile=tile, device=device, rng=rng, dac=dac, adc=adc,
                         x_max=xm, t=t, mapping=mapping, allow_extrapolation=allow_extrapolation)
        out.append(ProgrammedLayer(name, m, tm, xm, float(t)))
    return out


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def _factors(factors, pl: ProgrammedLayer) -> np.ndarray:
    """The compensation factors of ``pl`` as an (out_features,) array [1] (ones if none)."""
    n = pl.matrix.out_features
    f = None if factors is None else factors.get(pl.name)
    if f is None:
        return np.ones(n)
    f = np.broadcast_to(np.asarray(f, dtype=np.float64), (n,))
    if not np.all(np.isfinite(f)):
        raise ConfigError(f"compensation factors of layer {pl.name!r} must be finite")
    return f


@torch.no_grad()
def statistical_model(model: nn.Module, layers: list[ProgrammedLayer], *,
                      factors: dict[str, float | np.ndarray] | None = None,
                      dtype: torch.dtype | None = None) -> nn.Module:
    """A copy of ``model`` whose analog layers carry the effective weights of ``layers``
    (output ``j`` times the layer's compensation factor: one float, or one per output
    (out_features,) [1], if given); ``dtype``: e.g. torch.float64."""
    net = copy.deepcopy(model)
    if dtype is not None:
        net = net.to(dtype)
    mods = dict(net.named_modules())
    for pl in layers:
        m = mods[pl.name]
        W, b = pl.effective()
        f = _factors(factors, pl)
        m.weight.copy_(torch.from_numpy(W * f[:, None]).reshape(m.weight.shape))
        if m.bias is not None:
            m.bias.copy_(torch.from_numpy(b * f))
    return net


class AnalogLinear(nn.Module):
    """``Linear`` whose product runs on crossbar tiles (float64 numpy inside, no gradient).

    ``factor`` multiplies the outputs (drift compensation: one float, or one per output
    (out_features,) [1]); ``rng`` draws the ADC's conversion noise when it has any.
    """

    def __init__(self, layer: ProgrammedLayer, *, factor: float | np.ndarray = 1.0,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.layer, self.factor, self.rng = layer, _factors({layer.name: factor}, layer), rng

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shp = x.shape
        xn = x.detach().to("cpu", torch.float64).reshape(-1, shp[-1]).numpy()
        y = self.layer.matrix.forward(xn, self.rng) * self.factor
        return torch.from_numpy(y).reshape(*shp[:-1], -1).to(x.device, x.dtype)


class AnalogConv(nn.Module):
    """``Conv1d``/``Conv2d`` on crossbar tiles via im2col (float64 numpy, no gradient);
    ``factor`` multiplies output channel ``j`` (one float, or one per channel [1])."""

    def __init__(self, layer: ProgrammedLayer, *, factor: float | np.ndarray = 1.0,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.layer, self.factor, self.rng = layer, _factors({layer.name: factor}, layer), rng

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ..crossbar.tiling import tiled_conv2d

        m = self.layer.module
        w = m.weight.detach().to("cpu", torch.float64).numpy()
        xn = x.detach().to("cpu", torch.float64).numpy()
        if isinstance(m, nn.Conv1d):
            y = tiled_conv2d(xn[:, :, None, :], w[:, :, None, :], stride=(1, m.stride[0]),
                             padding=(0, m.padding[0]), matrix=self.layer.matrix, rng=self.rng)
            y = y[:, :, 0, :]
        else:
            y = tiled_conv2d(xn, w, stride=tuple(m.stride), padding=tuple(m.padding),
                             matrix=self.layer.matrix, rng=self.rng)
        f = self.factor.reshape(-1, *([1] * (y.ndim - 2)))
        return torch.from_numpy(y * f).to(x.device, x.dtype)


def circuit_model(model: nn.Module, layers: list[ProgrammedLayer], *,
                  factors: dict[str, float | np.ndarray] | None = None,
                  rng: np.random.Generator | None = None) -> nn.Module:
    """A copy of ``model`` whose analog layers run through their tiles (circuit mode), outputs
    times the layer's compensation factors (one float or one per output [1]), if given. The
    copy is float64 throughout, as circuit mode computes (a BatchNorm's parameters included)."""
    net = copy.deepcopy(model).double()
    for pl in layers:
        f = _factors(factors, pl)
        cls = AnalogLinear if isinstance(pl.module, nn.Linear) else AnalogConv
        _replace(net, pl.name, cls(pl, factor=f, rng=rng))
    return net
