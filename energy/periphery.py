r"""Input drivers, shared ADCs and digital shift-and-add: counts and energies from the inputs.

Input encodings (:class:`InputScheme`) for unsigned integer inputs ``x`` in ``[0, 2^b - 1]``:

* bit-serial: ``b`` cycles, cycle ``k`` drives row ``i`` at ``v_read`` when bit ``k`` of
  ``x_i`` is set (least significant first), else 0 V; the outputs of the cycles are combined
  by shift-and-add;
* multi-level: one cycle at ``v_read x_i / (2^b - 1)`` (a multi-level DAC);
* pulse-width: one cycle, row ``i`` driven at ``v_read`` for ``t_unit x_i``.

:func:`input_levels` gives the line voltage per cycle, from which
:func:`~xbarlab.energy.lines.charging_energy` counts the charging of the row lines and
:func:`~xbarlab.energy.array.array_energy` the dissipation in the array.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError
from .params import check_quantity, dataclass_from_dict, dataclass_to_dict

__all__ = ["InputScheme", "input_levels", "input_cycles", "pulse_widths", "DigitalParams",
           "shift_add_energy", "adc_count"]


class InputScheme(enum.StrEnum):
    """How an integer input reaches a row (see the module docstring)."""

    BIT_SERIAL = "bit-serial"
    MULTI_LEVEL = "multi-level"
    PULSE_WIDTH = "pulse-width"


def _check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ConfigError(f"bits must be an integer in [1, 32], got {bits!r}")
    return bits


def _check_inputs(x, bits: int) -> np.ndarray:
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ConfigError("x must hold integers (unsigned input codes)")
        a = a.astype(np.int64)
    top = (1 << bits) - 1
    if a.size and (a.min() < 0 or a.max() > top):
        bad = a.min() if a.min() < 0 else a.max()
        raise ConfigError(f"x holds {int(bad)}; expected codes in [0, {top}] for bits={bits}")
    return a.astype(np.int64)


def input_cycles(scheme: InputScheme | str, bits: int) -> int:
    """Array cycles per input vector: ``bits`` for bit-serial inputs, else 1."""
    scheme = coerce_enum(InputScheme, scheme, "scheme")
    return _check_bits(bits) if scheme is InputScheme.BIT_SERIAL else 1


def input_levels(x, bits: int, v_read: float, scheme: InputScheme | str) -> np.ndarray:
    """Row voltage [V] in each cycle for integer inputs ``x``, shape ``x.shape + (T,)``.

    Parameters
    ----------
    x : array of int
        Input codes in ``[0, 2^bits - 1]``, e.g. (B, M).
    bits : int
        Input resolution [bits].
    v_read : float
        Read voltage [V] (full scale).
    scheme : InputScheme or str
        Encoding; ``T = bits`` cycles for bit-serial (least significant bit first), 1 for
        multi-level and pulse-width (the pulse's amplitude: ``v_read`` where ``x > 0``).
    """
    scheme = coerce_enum(InputScheme, scheme, "scheme")
    b = _check_bits(bits)
    a = _check_inputs(x, b)
    if isinstance(v_read, bool) or not isinstance(v_read, int | float) or not math.isfinite(v_read):
        raise ConfigError(f"v_read must be a finite voltage [V], got {v_read!r}")
    if scheme is InputScheme.BIT_SERIAL:
        return ((a[..., None] >> np.arange(b)) & 1) * float(v_read)
    if scheme is InputScheme.MULTI_LEVEL:
        return (a * (float(v_read) / ((1 << b) - 1)))[..., None]
    return np.where(a > 0, float(v_read), 0.0)[..., None]


def pulse_widths(x, bits: int, t_unit: float) -> np.ndarray:
    """Pulse widths [s] ``t_unit x`` of pulse-width-encoded inputs (codes in [0, 2^bits - 1]);
    the longest possible pulse is ``(2^bits - 1) t_unit``."""
    t = check_quantity("pulse_widths", "t_unit", t_unit, "s", positive=True)
    return _check_inputs(x, _check_bits(bits)) * t


@dataclass(frozen=True)
class DigitalParams:
    """Energy and delay of the digital periphery (one value per technology node)."""

    e_add_bit: float
    """E_add [J]: energy of one full-adder bit of the shift-and-add accumulator."""
    t_add: float = 0.0
    """t_add [s]: delay of one accumulation (pipelined with the next conversion if 0)."""

    def __post_init__(self):
        check_quantity("DigitalParams", "e_add_bit", self.e_add_bit, "J")
        check_quantity("DigitalParams", "t_add", self.t_add, "s")

    def to_dict(self) -> dict[str, Any]:
        """Field name -> float [J, s]."""
        return dataclass_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DigitalParams:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        return dataclass_from_dict(cls, d)


def shift_add_energy(n_outputs: int, input_cycles: int, acc_bits: int,
                     digital: DigitalParams) -> float:
    """Energy [J] of combining bit-serial partial outputs by shift-and-add.

    Each of ``n_outputs`` accumulators adds ``input_cycles - 1`` shifted partial results
    (the first is loaded), each an ``acc_bits``-bit addition:
    ``n_outputs (input_cycles - 1) acc_bits e_add_bit``.

    Parameters
    ----------
    n_outputs : int
        Outputs (columns) accumulated, >= 0.
    input_cycles : int
        Cycles per input vector (input bits), >= 1.
    acc_bits : int
        Accumulator width [bits], >= 1.
    digital : DigitalParams
        Energy per adder bit.
    """
    for name, k, lo in (("n_outputs", n_outputs, 0), ("input_cycles", input_cycles, 1),
                        ("acc_bits", acc_bits, 1)):
        if isinstance(k, bool) or not isinstance(k, int) or k < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}, got {k!r}")
    return n_outputs * (input_cycles - 1) * acc_bits * digital.e_add_bit


def adc_count(n_columns: int, columns_per_adc: int) -> int:
    """ADCs needed for ``n_columns`` columns with ``columns_per_adc`` sharing each one
    (column multiplexing): ``ceil(n_columns / columns_per_adc)``. Conversions per cycle stay
    ``n_columns``; the sharing costs time (:func:`~xbarlab.energy.latency.read_latency`)."""
    for name, k in (("n_columns", n_columns), ("columns_per_adc", columns_per_adc)):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {k!r}")
    return -(-n_columns // columns_per_adc)
