"""Preset pulsed-update devices (:class:`~xbarlab.devices.pulsed.PulsedDevice`).

Conductances from 1 to 21 uS (a 20 uS range). The soft-bounds presets take aihwkit's
documented defaults of its pulsed devices (``SoftBoundsDevice``/``PulsedDevice`` configs:
dw_min 0.001 on bounds +-0.6, i.e. 1,200 steps of dw_min across the range, dw_min_dtod 0.3,
dw_min_std 0.3 cycle to cycle, no up/down bias) in conductance units: with symmetric
amplitudes a, the mean step at the symmetric point (the midpoint) is a / 2, so a =
2 * 20 uS / 1,200 = 33.3 nS.
"""

from __future__ import annotations

from ..errors import ConfigError
from .pulsed import ConstantStep, PulsedDevice, SoftBounds

__all__ = ["pulsed_preset_names", "pulsed_preset"]

_G_MIN, _G_MAX = 1e-6, 21e-6
_A = 2 * (_G_MAX - _G_MIN) / 1200


def _presets() -> dict[str, PulsedDevice]:
    return {
        # the asymmetric linear device of Wu et al. 2024 with aihwkit's default spreads
        "soft-bounds": PulsedDevice(SoftBounds(_A, _A), _G_MIN, _G_MAX, d2d=0.3, c2c=0.3),
        # the same device without spreads: the mean-field theory's device
        "soft-bounds-ideal": PulsedDevice(SoftBounds(_A, _A), _G_MIN, _G_MAX),
        # hard bounds only, steps a / 2 (the soft-bounds device's step at its midpoint)
        "constant-step": PulsedDevice(ConstantStep(_A / 2, _A / 2), _G_MIN, _G_MAX, d2d=0.3,
                                      c2c=0.3),
    }


def pulsed_preset_names() -> list[str]:
    """Names :func:`pulsed_preset` accepts."""
    return sorted(_presets())


def pulsed_preset(name: str) -> PulsedDevice:
    """The preset pulsed device ``name`` (see the module docstring)."""
    presets = _presets()
    if name not in presets:
        raise ConfigError(f"unknown pulsed-device preset {name!r}; valid names: "
                          f"{sorted(presets)}")
    return presets[name]
