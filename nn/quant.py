"""Output quantization (an ADC after each analog layer) with a straight-through gradient.

Each Linear/Conv layer's output ``y`` is clipped to ``[-r, r]`` and rounded to one of
``2**bits`` uniformly spaced levels (the column ADC of a crossbar). The backward pass
is the straight-through estimator: the incoming gradient times the pass-through mask
``|y| <= r`` (exactly), so training through the quantizer keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .noise import NOISY_LAYER_TYPES

__all__ = ["quantize_ste", "attach_adc", "detach_adc", "calibrate_adc_ranges"]


class _QuantSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y: Tensor, r: Tensor, levels: int) -> Tensor:
        mask = (y >= -r) & (y <= r)
        step = 2 * r / (levels - 1)
        q = torch.round((y.clamp(-r, r) + r) / step) * step - r
        ctx.save_for_backward(mask)
        return q

    @staticmethod
    def backward(ctx, g: Tensor):
        (mask,) = ctx.saved_tensors
        return g * mask.to(g.dtype), None, None


def quantize_ste(y: Tensor, *, bits: int, out_range) -> Tensor:
    """Quantize ``y`` to ``2**bits`` levels on ``[-out_range, out_range]`` (same units as y).

    Forward: ``clip(y, -r, r)`` rounded to the grid ``-r + k·2r/(2**bits - 1)``;
    backward: ``grad · 1[|y| <= r]`` (straight-through inside the range, zero outside).
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 24:
        raise ConfigError(f"ADC bits must be an integer in 1..24, got {bits!r}")
    r = torch.as_tensor(out_range, dtype=y.dtype, device=y.device)
    if r.ndim != 0 or not bool(torch.isfinite(r)) or float(r) <= 0:
        raise ConfigError(f"ADC range must be a positive finite scalar, got {out_range!r}")
    return _QuantSTE.apply(y, r, 2**bits)


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
               layers: Iterable[str] | None = None) -> nn.Module:
    """Quantize the outputs of the model's analog layers (forward hooks), in place.

    ``ranges``: one range for all layers or ``{layer name: r}`` (output units).
    Remove with :func:`detach_adc`.
    """
    if getattr(model, "_xbarlab_adc", None):
        raise ConfigError("an ADC is already attached; detach_adc() first")
    mods = _layers(model, layers if not isinstance(ranges, Mapping) or layers else ranges.keys())
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
