"""PyTorch bridge: weight-noise parametrizations and Hessian-Aware SGD (no top-level numba).

Public API (everything else is an implementation detail)::

    convert(model, device_model, mapping=..., dac_bits=8, adc_bits=8, ...) -> AnalogModel
    AnalogModel.program(generator) / .read(t) / forward   # torch-native analog network

    GaussianNoise(sigma, shift=0.0)         # Δw = μ·w + σ·max|w|·z, per layer tensor
    OffsetNoise(sigma, offset=0.0)          # Δw = (μ + σ·z)·max|w|, per layer tensor
    QuantileNoise(w_grid, levels, quantiles) # tabulated Δw | w (device-derived noise files)
    attach_noise(model, noise, generator=g) / resample_noise(model) / detach_noise(model)
    HASGD(model, optimizer, noise, samples=L, generator=g, antithetic=False).step(x, y)
    HASGD(..., scaling=NoiseScaling.TILE, mapping=WeightMapping(...), tile=TileConfig(...))
    attach_adc(model, bits=B, ranges=..., last_layer=True) / detach_adc(model)
    quantize_ste(y, bits, out_range) / adc_codes(y, bits, out_range)  # crossbar ADC's codes
"""

from .analog import AnalogLayer, AnalogModel, convert
from .hasgd import HASGD
from .noise import (
    GaussianNoise,
    NoiseModel,
    OffsetNoise,
    QuantileNoise,
    WeightNoise,
    attach_noise,
    detach_noise,
    noisy_tensors,
    resample_noise,
)
from .quant import adc_codes, attach_adc, calibrate_adc_ranges, detach_adc, quantize_ste
from .tile_noise import NoiseScaling

__all__ = [
    "convert",
    "AnalogModel",
    "AnalogLayer",
    "NoiseModel",
    "GaussianNoise",
    "OffsetNoise",
    "QuantileNoise",
    "WeightNoise",
    "attach_noise",
    "detach_noise",
    "resample_noise",
    "noisy_tensors",
    "HASGD",
    "NoiseScaling",
    "quantize_ste",
    "adc_codes",
    "attach_adc",
    "detach_adc",
    "calibrate_adc_ranges",
]
