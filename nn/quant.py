"""Output quantization (an ADC after each analog layer) with a straight-through gradient.

Each Linear/Conv layer's output ``y`` goes through the crossbar's signed ADC with full scale
``r``: the codes are those of ``crossbar.converters.ADC(bits=B, signed=True)`` with full-scale
current ``r`` (symmetric codes ``-(2**(B-1) - 1) .. 2**(B-1) - 1`` with a zero code, values
``code · r / (2**(B-1) - 1)``), computed by the same function,
:func:`xbarlab.crossbar.converters.quantize_codes`. The backward pass is the straight-through
estimator: the incoming gradient times the pass-through mask ``|y| <= r`` (exactly), so
training through the quantizer keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .noise import NOISY_LAYER_TYPES

__all__ = ["adc_codes", "quantize_ste", "attach_adc", "detach_adc", "calibrate_adc_ranges"]


def _check(bits, out_range, like: Tensor) -> Tensor:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 24:
        raise ConfigError(f"ADC bits must be an integer in 2..24 (signed codes with a zero "
                          f"code), got {bits!r}")
    r = torch.as_tensor(out_range, dtype=like.dtype, device=like.device)
    if r.ndim != 0 or not bool(torch.isfinite(r)) or float(r) <= 0:
        raise ConfigError(f"ADC out_range must be a positive finite scalar, got {out_range!r}")
    return r


def adc_codes(y: Tensor, *, bits: int, out_range) -> Tensor:
    """Signed ADC codes of ``y`` with full scale ``out_range`` (no gradient).

    Parameters
    ----------
    y : torch.Tensor
        Layer outputs (any units).
    bits : int
        ADC resolution, sign included, in 2..24 [1].
    out_range : float or 0-d tensor
        Full scale ``r`` > 0, in the units of ``y``; ``|y| >= r`` gives the end codes.

    Returns
    -------
    torch.Tensor
        Codes ``-(2**(bits-1) - 1) .. 2**(bits-1) - 1`` as floats of ``y``'s dtype; exactly
        ``crossbar.converters.ADC(bits=bits, signed=True)``'s codes for full-scale current
        ``r`` (0 maps to 0).
    """
    from ..crossbar.converters import quantize_codes  # numba-free, but crossbar/ is not

    r = _check(bits, out_range, y)
    return quantize_codes(y.detach() / r, bits=bits, signed=True)


class _QuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: Tensor, r: Tensor, bits: int) -> Tensor:
        from ..crossbar.converters import quantize_codes

        mask = (y >= -r) & (y <= r)
        ctx.save_for_backward(mask)
        return quantize_codes(y / r, bits=bits, signed=True) * (r / (2 ** (bits - 1) - 1))

    @staticmethod
    def backward(ctx, g: Tensor):
        (mask,) = ctx.saved_tensors
        return g * mask.to(g.dtype), None, None


def quantize_ste(y: Tensor, *, bits: int, out_range) -> Tensor:
    """``y`` through a signed ``bits``-bit ADC of full scale ``out_range``, straight-through.

    Forward: :func:`adc_codes` times the step ``r / (2**(bits-1) - 1)`` (same units as
    ``y``); backward: ``grad · 1[|y| <= r]`` (straight-through inside the range, zero
    outside).
    """
    r = _check(bits, out_range, y)
    return _QuantSTE.apply(y, r, bits)


def _layers(model: nn.Module, layers: Iterable[str] | None) -> dict[str, nn.Module]:
    mods = dict(model.named_modules())
    if layers is None:
        out = {n: m for n, m in mods.items() if isinstance(m, NOISY_LAYER_TYPES)}
    else:
        out = {}
        for n in layers:
            if n not in mods or not isinstance(mods[n], NOISY_LAYER_TYPES):
                raise ConfigError(f"layer {n!r} is not a Linear/Conv1d/Conv2d of the model")
            out[n] = mods[n]
    if not out:
        raise ConfigError("the model has no Linear/Conv1d/Conv2d layer to put an ADC after")
    return out


@torch.no_grad()
def calibrate_adc_ranges(model: nn.Module, batches: Iterable[Tensor], *,
                         layers: Iterable[str] | None = None, margin: float = 1.0
                         ) -> dict[str, float]:
    """Per-layer ADC range ``r = margin · max|y|`` over the outputs on ``batches``.

    Runs the model as it is (clean unless noise is attached); returns ``{layer: r}``.
    """
    if not math.isfinite(margin) or margin <= 0:
        raise ConfigError(f"margin must be positive, got {margin!r}")
    mods = _layers(model, layers)
    peak = dict.fromkeys(mods, 0.0)
    handles = []
    for n, m in mods.items():
        def hook(_m, _inp, out, n=n):
            peak[n] = max(peak[n], float(out.detach().abs().amax()))
        handles.append(m.register_forward_hook(hook))
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {n: margin * (v if v > 0 else 1.0) for n, v in peak.items()}


def attach_adc(model: nn.Module, *, bits: int, ranges: Mapping[str, float] | float,
               layers: Iterable[str] | None = None, last_layer: bool = True) -> nn.Module:
    """Quantize the outputs of the model's analog layers (forward hooks), in place.

    Parameters
    ----------
    model : torch.nn.Module
        The network; modified in place (remove with :func:`detach_adc`).
    bits : int
        ADC resolution, sign included, in 2..24 (see :func:`quantize_ste`) [1].
    ranges : float or mapping
        One full scale for all layers or ``{layer name: r}`` (output units).
    layers : iterable of str, optional
        Layers whose outputs pass an ADC (default: the keys of ``ranges`` when it is a
        mapping, else every Linear/Conv1d/Conv2d).
    last_layer : bool
        Whether the last analog layer of the model (a classifier's logits) passes an ADC
        too (default True); False leaves its outputs in floating point.

    Returns
    -------
    torch.nn.Module
        ``model``.
    """
    if getattr(model, "_xbarlab_adc", None):
        raise ConfigError("an ADC is already attached; detach_adc() first")
    if not isinstance(last_layer, bool):
        raise ConfigError(f"last_layer must be True or False, got {last_layer!r}")
    mods = _layers(model, layers if not isinstance(ranges, Mapping) or layers else ranges.keys())
    if not last_layer:
        last = list(_layers(model, None))[-1]
        mods.pop(last, None)
    handles = []
    for n, m in mods.items():
        r = ranges[n] if isinstance(ranges, Mapping) else ranges
        quantize_ste(torch.zeros(1), bits=bits, out_range=r)  # validate now, not mid-forward

        def hook(_m, _inp, out, r=float(r)):
            return quantize_ste(out, bits=bits, out_range=r)
        handles.append(m.register_forward_hook(hook))
    model._xbarlab_adc = handles
    return model


def detach_adc(model: nn.Module) -> nn.Module:
    """Remove the ADC hooks that :func:`attach_adc` added (no-op if none)."""
    for h in getattr(model, "_xbarlab_adc", None) or ():
        h.remove()
    model._xbarlab_adc = None
    return model
