"""PyTorch bridge: weight-noise parametrizations and Hessian-Aware SGD (no top-level numba).

Public API (everything else is an implementation detail)::

    GaussianNoise(sigma, shift=0.0)         # Δw = μ·w + σ·max|w|·z, per layer tensor
    QuantileNoise(w_grid, levels, quantiles) # tabulated Δw | w (device-derived noise files)
    attach_noise(model, noise, generator=g) / resample_noise(model) / detach_noise(model)
    HASGD(model, optimizer, noise, samples=L, generator=g, antithetic=False).step(x, y)
    attach_adc(model, bits=B, ranges=...) / detach_adc(model) / quantize_ste(y, bits, out_range)
"""

from .hasgd import HASGD
from .noise import (
    GaussianNoise,
    NoiseModel,
    QuantileNoise,
    WeightNoise,
    attach_noise,
    detach_noise,
    noisy_tensors,
    resample_noise,
)
from .quant import attach_adc, calibrate_adc_ranges, detach_adc, quantize_ste

__all__ = [
    "NoiseModel",
    "GaussianNoise",
    "QuantileNoise",
    "WeightNoise",
    "attach_noise",
    "detach_noise",
    "resample_noise",
    "noisy_tensors",
    "HASGD",
    "quantize_ste",
    "attach_adc",
    "detach_adc",
    "calibrate_adc_ranges",
]
