"""Data converters around a crossbar: the input DAC and the sense path (TIA + ADC).

Signal chain of one analog matrix-vector product::

    x (digital, dimensionless) --DAC--> v [V] --crossbar--> I [A] --TIA--> V_out [V] --ADC--> code
                                                                                  |
    y [A] (current the code stands for) <---------------------- code * LSB / gain -+

* :class:`DAC`: ``bits``, full-scale voltage ``v_max``, signed (symmetric, sign-magnitude) or
  unsigned codes, and the input encoding: one amplitude per input, bit-serial (one MVM per input
  bit, recombined by digital or analog shift-and-add) or pulse-width (fixed amplitude, duration
  proportional to the code; the column charge is integrated).
* :class:`ADC`: TIA transimpedance, ADC bits and full-scale voltage; the range is fixed, the
  maximum possible for a conductance matrix, or calibrated from a percentile of measured
  currents (:meth:`ADC.resolve`); per-ADC gain and offset errors and integral non-linearity (INL)
  are drawn once per chip instance (:meth:`ADC.instance`), read noise on every conversion;
  one ADC per column or one shared by ``columns_per_adc`` columns.
* :func:`analog_mvm`: the whole chain around any MVM callable ``v (B, M) [V] -> I (B, N) [A]``
  (ideal ``v @ G``, the exact circuit, a nonlinear array...).

Quantization conventions (stated here once, tested exactly):

* unsigned, ``b`` bits: codes ``k = 0 .. 2**b - 1``, value ``k / (2**b - 1) * full_scale``;
* signed, ``b`` bits: symmetric sign-magnitude codes ``k = -(2**(b-1) - 1) .. 2**(b-1) - 1``,
  value ``k / (2**(b-1) - 1) * full_scale`` (zero is exact; the two's-complement extra code is
  not used, so ``b >= 2``);
* rounding to the nearest code (ties to even, ``numpy.rint``), values beyond full scale clip to
  the end codes; ``bits=None`` means an ideal converter (no quantization, no clipping).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError

__all__ = [
    "InputEncoding",
    "ShiftAdd",
    "RangeMode",
    "DAC",
    "ADC",
    "ADCChip",
    "max_possible_current",
    "analog_mvm",
    "quantize_codes",
]


class InputEncoding(enum.StrEnum):
    """How a digital input becomes row voltages."""

    #: one voltage level per input, ``v = k / k_max * v_max``.
    AMPLITUDE = "amplitude"
    #: one MVM per magnitude bit, each row at ``sign(k) * bit * v_max``.
    BIT_SERIAL = "bit-serial"
    #: a pulse of amplitude ``sign(k) * v_max`` lasting ``|k| * t_unit``; charge integrated.
    PULSE_WIDTH = "pulse-width"


class ShiftAdd(enum.StrEnum):
    """Where the bit-serial partial results are weighted by ``2**b`` and summed."""

    #: each bit plane is digitized, the codes are shifted and added in the digital domain.
    DIGITAL = "digital"
    #: the bit-plane currents are weighted and summed in the analog domain (charge sharing),
    #: then digitized once.
    ANALOG = "analog"


class RangeMode(enum.StrEnum):
    """How the ADC full-scale current ``i_fs = v_fs / tia_gain`` is chosen."""

    #: ``tia_gain`` as given.
    FIXED = "fixed"
    #: the largest column current the array can produce: ``max_j sum_i G_ij * v_max``.
    MAX_POSSIBLE = "max-possible"
    #: the ``percentile`` of |I| over calibration data.
    CALIBRATED = "calibrated"


def _check_bits(bits, name: str, *, signed: bool):
    if bits is None:
        return
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer number of bits or None, got {bits!r}")
    low = 2 if signed else 1
    if not low <= bits <= 24:
        raise ConfigError(
            f"{name} must lie in [{low}, 24] for a {'signed' if signed else 'unsigned'} "
            f"converter, got {bits}"
        )


def _check_positive(value, name: str, unit: str, *, allow_zero: bool = False):
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite value {bound} {unit}, got {value!r}")


def _max_code(bits: int, signed: bool) -> int:
    return 2 ** (bits - 1) - 1 if signed else 2**bits - 1


def quantize_codes(u, *, bits: int, signed: bool = True, inl_lsb=None,
                   inplace: bool = False):
    """Output codes of a converter for inputs ``u`` in units of full scale: the level rule.

    ``code = clip(rint(u * k_max + inl_lsb), k_min, k_max)`` with ``k_max`` as in the module
    docstring (signed: ``2**(bits-1) - 1`` and ``k_min = -k_max``, zero is a code; unsigned:
    ``2**bits - 1`` and ``k_min = 0``); rounding to the nearest code, ties to even. Every
    quantizer of the package (DAC, ADC, the network-side ADC of :mod:`xbarlab.nn.quant`)
    calls this function.

    Parameters
    ----------
    u : numpy.ndarray or torch.Tensor
        Input over full scale [1]. A torch tensor is quantized with torch operations
        (``torch.round`` also rounds ties to even), on its own device and dtype.
    bits : int
        Resolution, sign included when ``signed`` [1]; not validated here.
    signed : bool
        Symmetric signed codes or unsigned codes.
    inl_lsb : array or None
        Integral non-linearity added to ``u * k_max`` before rounding [LSB].
    inplace : bool
        Write the codes into ``u`` (a floating-point tensor or array that autograd does not
        need) and return it: the same numbers without a temporary.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        Codes as floats of the input's kind [1].
    """
    kmax = _max_code(bits, signed)
    lo = -kmax if signed else 0
    if hasattr(u, "clamp"):  # a torch tensor (torch is not imported here)
        code = u.mul_(kmax) if inplace else u * kmax
        if inl_lsb is not None:
            code = code.add_(inl_lsb) if inplace else code + inl_lsb
        if code.requires_grad:
            return code.round().clamp(lo, kmax)
        return code.round_().clamp_(lo, kmax)  # ``code`` is a temporary or ``u`` (inplace)
    if inplace:
        np.multiply(u, kmax, out=u)
        if inl_lsb is not None:
            np.add(u, inl_lsb, out=u)
        return np.clip(np.rint(u, out=u), lo, kmax, out=u)
    analog_code = u * kmax
    if inl_lsb is not None:
        analog_code = analog_code + inl_lsb
    return np.clip(np.rint(analog_code), lo, kmax)


def _quantize_codes(u: np.ndarray, bits: int | None, signed: bool) -> np.ndarray:
    """Codes (float array of integers) for values ``u`` in units of full scale."""
    if bits is None:
        return u
    return quantize_codes(u, bits=bits, signed=signed)


# ----------------------------------------------------------------------------------------- DAC


@dataclass(frozen=True)
class DAC:
    """Input digital-to-analog converter and input encoding.

    Fields (all validated; variants via :func:`dataclasses.replace`):
    """

    #: ``b``: resolution in bits (sign included when ``signed``); ``None`` = ideal, no
    #: quantization. [1]
    bits: int | None = 8
    #: ``V_max``: full-scale row voltage; input ``x_max`` maps to it. [V]
    v_max: float = 0.2
    #: symmetric signed codes (negative inputs drive negative voltages) or unsigned (inputs
    #: below 0 clip to 0). [bool]
    signed: bool = True
    #: amplitude, bit-serial or pulse-width encoding (:class:`InputEncoding`).
    encoding: InputEncoding = InputEncoding.AMPLITUDE
    #: bit-serial only: digital or analog shift-and-add (:class:`ShiftAdd`).
    shift_add: ShiftAdd = ShiftAdd.DIGITAL
    #: pulse-width only: ``t_u``, pulse duration of one LSB. [s]
    t_unit: float = 1e-9

    def __post_init__(self):
        object.__setattr__(self, "encoding", coerce_enum(InputEncoding, self.encoding, "encoding"))
        object.__setattr__(self, "shift_add", coerce_enum(ShiftAdd, self.shift_add, "shift_add"))
        if not isinstance(self.signed, (bool, np.bool_)):
            raise ConfigError(f"signed must be True or False, got {self.signed!r}")
        _check_bits(self.bits, "DAC bits", signed=bool(self.signed))
        _check_positive(self.v_max, "DAC v_max", "V")
        _check_positive(self.t_unit, "DAC t_unit", "s")
        if self.bits is None and self.encoding is not InputEncoding.AMPLITUDE:
            raise ConfigError(
                f"DAC bits=None (ideal) needs encoding='amplitude'; {self.encoding.value!r} "
                "encodes integer codes and needs a number of bits"
            )

    @property
    def max_code(self) -> int | None:
        """Largest code magnitude ``k_max`` (``None`` for an ideal DAC). [1]"""
        return None if self.bits is None else _max_code(self.bits, bool(self.signed))

    @property
    def lsb(self) -> float:
        """Voltage step of one code, ``v_max / k_max`` (0 for an ideal DAC). [V]"""
        return 0.0 if self.bits is None else self.v_max / self.max_code

    def levels(self) -> np.ndarray:
        """Every voltage the DAC can output, ascending. [V]"""
        if self.bits is None:
            raise ConfigError("an ideal DAC (bits=None) has no discrete levels")
        k = np.arange(-self.max_code if self.signed else 0, self.max_code + 1)
        return k * self.lsb

    def codes(self, x, *, x_max: float = 1.0) -> np.ndarray:
        """Input codes for ``x`` (dimensionless; ``x_max`` maps to full scale), as floats.

        For an ideal DAC the 'code' is ``x / x_max`` itself, unclipped.
        """
        _check_positive(x_max, "x_max", "(input units)")
        x = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise ConfigError("DAC input x must be finite")
        u = x / x_max
        if not self.signed:
            u = np.maximum(u, 0.0)
        return _quantize_codes(u, self.bits, bool(self.signed))

    def voltages(self, x, *, x_max: float = 1.0) -> np.ndarray:
        """One-shot row voltages for inputs ``x`` (amplitude encoding). [V]"""
        k = self.codes(x, x_max=x_max)
        return k * (self.v_max if self.bits is None else self.lsb)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["encoding"] = self.encoding.value
        d["shift_add"] = self.shift_add.value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DAC:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown DAC fields {sorted(unknown)}")
        return cls(**d)


# ----------------------------------------------------------------------------------------- ADC


def max_possible_current(G, v_max: float) -> float:
    """Largest column current of an ideal array: ``max_j sum_i G[..., i, j] * v_max``. [A]

    ``G`` [S] of shape (M, N) or (K, M, N), or a pair ``(G_pos, G_neg)`` of a differential
    array (the larger of the two sides counts per cell).
    """
    if isinstance(G, (tuple, list)):
        G = np.maximum(np.asarray(G[0], dtype=np.float64), np.asarray(G[1], dtype=np.float64))
    G = np.asarray(G, dtype=np.float64)
    if G.ndim < 2:
        raise ConfigError(f"G must have shape (M, N) or (K, M, N), got {G.shape}")
    _check_positive(v_max, "v_max", "V")
    return float(G.sum(axis=-2).max() * v_max)


@dataclass(frozen=True)
class ADC:
    """Sense path: transimpedance amplifier, then an ADC per column or shared.

    The column current ``I`` [A] is converted as::

        I_in = (1 + e_gain) * I + I_offset + I_noise        (input-referred errors)
        code = clip(rint(I_in / i_fs * k_max + INL(I_in / i_fs)))
        y    = code / k_max * i_fs                          (current the code stands for, A)

    with ``i_fs = v_fs / tia_gain`` the full-scale current. ``e_gain``, ``I_offset`` and the INL
    curve are drawn once per ADC by :meth:`instance`; ``I_noise`` on every conversion.
    """

    #: ``b``: ADC resolution in bits (sign included when ``signed``); ``None`` = ideal
    #: (no quantization, no clipping). [1]
    bits: int | None = 8
    #: ``R_TIA``: transimpedance of the sense amplifier (``V_out = R_TIA * I``). [Ohm]
    tia_gain: float = 1e4
    #: ``V_fs``: ADC full-scale input voltage. [V]
    v_fs: float = 1.0
    #: signed conversion (symmetric codes) or unsigned (negative currents clip to 0). [bool]
    signed: bool = True
    #: how ``tia_gain`` is set (:class:`RangeMode`); non-FIXED modes need :meth:`resolve`.
    range_mode: RangeMode = RangeMode.FIXED
    #: CALIBRATED only: percentile of |I| over the calibration data mapped to full scale. [%]
    percentile: float = 99.99
    #: ``sigma_g``: standard deviation of the relative gain error of each ADC. [1]
    gain_error_std: float = 0.0
    #: ``sigma_o``: standard deviation of the input-referred offset of each ADC. [A]
    offset_std: float = 0.0
    #: ``INL_max``: bound of the integral non-linearity of each ADC, in LSB. [1]
    inl_max: float = 0.0
    #: ``sigma_n``: input-referred rms noise current of one conversion. [A]
    noise_std: float = 0.0
    #: columns sharing one ADC (1 = one ADC per column); errors are drawn per ADC. [1]
    columns_per_adc: int = 1

    def __post_init__(self):
        range_mode = coerce_enum(RangeMode, self.range_mode, "range_mode")
        object.__setattr__(self, "range_mode", range_mode)
        if not isinstance(self.signed, (bool, np.bool_)):
            raise ConfigError(f"signed must be True or False, got {self.signed!r}")
        _check_bits(self.bits, "ADC bits", signed=bool(self.signed))
        _check_positive(self.tia_gain, "ADC tia_gain", "Ohm")
        _check_positive(self.v_fs, "ADC v_fs (range)", "V")
        if not (math.isfinite(self.percentile) and 0 < self.percentile <= 100):
            raise ConfigError(f"ADC percentile must lie in (0, 100] %, got {self.percentile!r}")
        _check_positive(self.gain_error_std, "ADC gain_error_std", "(relative)", allow_zero=True)
        _check_positive(self.offset_std, "ADC offset_std", "A", allow_zero=True)
        _check_positive(self.inl_max, "ADC inl_max", "LSB", allow_zero=True)
        _check_positive(self.noise_std, "ADC noise_std", "A", allow_zero=True)
        if (
            isinstance(self.columns_per_adc, bool)
            or not isinstance(self.columns_per_adc, (int, np.integer))
            or self.columns_per_adc < 1
        ):
            raise ConfigError(
                f"ADC columns_per_adc must be an integer >= 1, got {self.columns_per_adc!r}"
            )
        if self.bits is None and self.inl_max > 0:
            raise ConfigError("ADC inl_max > 0 needs a number of bits (INL is in LSB)")

    # -- range -----------------------------------------------------------------------------

    @property
    def i_fs(self) -> float:
        """Full-scale current ``v_fs / tia_gain``. [A]"""
        return self.v_fs / self.tia_gain

    @property
    def max_code(self) -> int | None:
        """Largest code magnitude ``k_max`` (``None`` for an ideal ADC). [1]"""
        return None if self.bits is None else _max_code(self.bits, bool(self.signed))

    @property
    def lsb(self) -> float:
        """Current step of one code ``i_fs / k_max`` (0 for an ideal ADC). [A]"""
        return 0.0 if self.bits is None else self.i_fs / self.max_code

    def levels(self) -> np.ndarray:
        """Every current value the (error-free) ADC can report, ascending. [A]"""
        if self.bits is None:
            raise ConfigError("an ideal ADC (bits=None) has no discrete levels")
        k = np.arange(-self.max_code if self.signed else 0, self.max_code + 1)
        return k * self.lsb

    def with_full_scale(self, i_fs: float) -> ADC:
        """This ADC with the TIA gain set so that ``i_fs`` [A] maps to full scale (FIXED)."""
        _check_positive(i_fs, "full-scale current i_fs", "A")
        return dataclasses.replace(self, tia_gain=self.v_fs / i_fs, range_mode=RangeMode.FIXED)

    def resolve(self, *, G=None, v_max: float | None = None, currents=None) -> ADC:
        """Fix the range: a FIXED-mode copy whose ``tia_gain`` realises :attr:`range_mode`.

        MAX_POSSIBLE needs ``G`` [S] and ``v_max`` [V] (:func:`max_possible_current`);
        CALIBRATED needs ``currents`` [A]: |I| at :attr:`percentile` maps to full scale, so
        ``100 - percentile`` % of those currents clip. FIXED returns ``self``.
        """
        if self.range_mode is RangeMode.FIXED:
            return self
        if self.range_mode is RangeMode.MAX_POSSIBLE:
            if G is None or v_max is None:
                raise ConfigError("range_mode='max-possible' needs G and v_max to resolve")
            return self.with_full_scale(max_possible_current(G, v_max))
        if currents is None:
            raise ConfigError("range_mode='calibrated' needs calibration currents to resolve")
        data = np.abs(np.asarray(currents, dtype=np.float64)).ravel()
        if data.size == 0 or not np.all(np.isfinite(data)):
            raise ConfigError("calibration currents must be a non-empty finite array (A)")
        i_fs = float(np.percentile(data, self.percentile))
        if i_fs <= 0:
            raise ConfigError(
                f"the {self.percentile} percentile of |currents| is {i_fs} A; need > 0 A"
            )
        return self.with_full_scale(i_fs)

    # -- chip instances --------------------------------------------------------------------

    def n_adcs(self, n_columns: int) -> int:
        """ADCs needed for ``n_columns`` columns (``ceil(n_columns / columns_per_adc)``)."""
        return -(-int(n_columns) // self.columns_per_adc)

    def instance(self, n_columns: int, rng: np.random.Generator | None = None) -> ADCChip:
        """Draw the static errors of one chip's ADCs for ``n_columns`` columns.

        ``rng`` is required when any of gain, offset or INL errors is non-zero.
        """
        if self.range_mode is not RangeMode.FIXED:
            raise ConfigError(
                f"range_mode={self.range_mode.value!r}: call ADC.resolve(...) before instance()"
            )
        if isinstance(n_columns, bool) or int(n_columns) != n_columns or n_columns < 1:
            raise ConfigError(f"n_columns must be a positive integer, got {n_columns!r}")
        n_adc = self.n_adcs(n_columns)
        needs = self.gain_error_std > 0 or self.offset_std > 0 or self.inl_max > 0
        if needs and rng is None:
            raise ConfigError("ADC static errors are on: pass a numpy.random.Generator as rng")
        zeros = np.zeros(n_adc)
        gain = rng.normal(0.0, self.gain_error_std, n_adc) if self.gain_error_std > 0 else zeros
        offset = rng.normal(0.0, self.offset_std, n_adc) if self.offset_std > 0 else zeros
        if self.inl_max > 0:
            inl = rng.uniform(-1.0, 1.0, (n_adc, 2))
        else:
            inl = np.zeros((n_adc, 2))
        return ADCChip(
            adc=self, n_columns=int(n_columns), gain_error=gain, offset=offset, inl_coef=inl
        )

    def convert(self, currents, rng: np.random.Generator | None = None) -> np.ndarray:
        """Convert with an error-free chip (noise still drawn when ``noise_std > 0``). [A]"""
        I = np.asarray(currents, dtype=np.float64)
        n = I.shape[-1] if I.ndim else 1
        chip = ADCChip(
            adc=self,
            n_columns=n,
            gain_error=np.zeros(self.n_adcs(n)),
            offset=np.zeros(self.n_adcs(n)),
            inl_coef=np.zeros((self.n_adcs(n), 2)),
        )
        return chip.convert(I, rng)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["range_mode"] = self.range_mode.value
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ADC:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown ADC fields {sorted(unknown)}")
        return cls(**d)


def _inl_curve(u: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """INL in LSB at normalized input ``u`` in [-1, 1] (0 at both ends and at mid-scale for a
    pure odd term): ``a (1 - u^2) + b (3 sqrt(3) / 2) u (1 - u^2)``, ``|a|, |b| <= 1``, halved so
    that ``|INL| <= 1`` before scaling by ``inl_max``."""
    uc = np.clip(u, -1.0, 1.0)
    a, b = coef[..., 0], coef[..., 1]
    return 0.5 * (a * (1 - uc * uc) + b * (1.5 * math.sqrt(3.0)) * uc * (1 - uc * uc))


@dataclass(frozen=True, eq=False)
class ADCChip:
    """The ADCs of one chip: an :class:`ADC` design plus its static errors drawn once.

    ``gain_error`` (n_adc,) [1], ``offset`` (n_adc,) [A], ``inl_coef`` (n_adc, 2) [1]; column
    ``j`` is read by ADC ``j // adc.columns_per_adc``.
    """

    adc: ADC
    n_columns: int
    gain_error: np.ndarray
    offset: np.ndarray
    inl_coef: np.ndarray

    def _per_column(self, arr: np.ndarray) -> np.ndarray:
        idx = np.arange(self.n_columns) // self.adc.columns_per_adc
        return arr[idx]

    def codes(self, currents, rng: np.random.Generator | None = None) -> np.ndarray:
        """Output codes (integers as float64) for column currents ``(..., N)`` [A]."""
        adc = self.adc
        I = np.asarray(currents, dtype=np.float64)
        if I.ndim == 0 or I.shape[-1] != self.n_columns:
            raise ConfigError(
                f"currents must end in the chip's {self.n_columns} columns, got shape {I.shape}"
            )
        if not np.all(np.isfinite(I)):
            raise ConfigError("ADC input currents must be finite")
        I_in = (1.0 + self._per_column(self.gain_error)) * I + self._per_column(self.offset)
        if adc.noise_std > 0:
            if rng is None:
                raise ConfigError("ADC noise_std > 0: pass a numpy.random.Generator as rng")
            I_in = I_in + rng.normal(0.0, adc.noise_std, I_in.shape)
        u = I_in / adc.i_fs
        if adc.bits is None:
            return u if adc.signed else np.maximum(u, 0.0)
        if not adc.signed:
            u = np.maximum(u, 0.0)
        inl = None
        if adc.inl_max > 0:
            inl = adc.inl_max * _inl_curve(u, self._per_column(self.inl_coef))
        return quantize_codes(u, bits=adc.bits, signed=bool(adc.signed), inl_lsb=inl)

    def convert(self, currents, rng: np.random.Generator | None = None) -> np.ndarray:
        """The current each output code stands for (``code * LSB``; ideal ADC: ``I_in``). [A]"""
        k = self.codes(currents, rng)
        adc = self.adc
        return k * (adc.i_fs if adc.bits is None else adc.lsb)


# ------------------------------------------------------------------------------- whole chain


def analog_mvm(
    x,
    mvm: Callable[[np.ndarray], np.ndarray],
    *,
    dac: DAC,
    adc: ADCChip | ADC | None = None,
    x_max: float = 1.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Run inputs ``x`` (B, M) or (M,) [1] through DAC -> ``mvm`` -> ADC.

    ``mvm(v)`` maps row voltages ``v`` (B', M) [V] to column currents (B', N) [A] (e.g.
    ``lambda v: v @ G`` or a circuit solve). Returns the digitized output expressed as the
    column current of an equivalent one-shot MVM [A]: with ideal converters and linear cells
    every encoding returns ``mvm(x / x_max * v_max)``.

    * amplitude: ``y = ADC(mvm(k / k_max * v_max))``;
    * bit-serial, digital shift-add: ``y = sum_b 2**b ADC(mvm(p_b)) / k_max`` with bit planes
      ``p_b = sign(k) * bit_b(|k|) * v_max``; analog shift-add:
      ``y = ADC(sum_b 2**b mvm(p_b) / k_max)``;
    * pulse-width: the charge ``Q = sum_{s=1..k_max} t_unit * mvm(sign(k) [|k| >= s] v_max)``
      integrated over the window ``k_max * t_unit``, ``y = ADC(Q / (k_max t_unit))``.

    ``adc`` is an :class:`ADCChip` (static errors drawn), an :class:`ADC` (error-free chip), or
    ``None`` (ideal). ``rng`` draws ADC noise.
    """
    x = np.asarray(x, dtype=np.float64)
    single = x.ndim == 1
    xb = np.atleast_2d(x)
    if xb.ndim != 2:
        raise ConfigError(f"x must have shape (M,) or (B, M), got {x.shape}")
    k = dac.codes(xb, x_max=x_max)

    def digitize(I):
        if adc is None:
            return I
        if isinstance(adc, ADC):
            return adc.convert(I, rng)
        return adc.convert(I, rng)

    enc = dac.encoding
    if enc is InputEncoding.AMPLITUDE:
        scale = dac.v_max if dac.bits is None else dac.lsb
        y = digitize(np.asarray(mvm(k * scale), dtype=np.float64))
    elif enc is InputEncoding.BIT_SERIAL:
        kmax = dac.max_code
        mag = np.abs(k).astype(np.int64)
        sgn = np.sign(k)
        n_planes = int(kmax).bit_length()
        acc = None
        for b in range(n_planes):
            plane = sgn * ((mag >> b) & 1) * dac.v_max
            I_b = np.asarray(mvm(plane), dtype=np.float64)
            term = (2.0**b) * (digitize(I_b) if dac.shift_add is ShiftAdd.DIGITAL else I_b)
            acc = term if acc is None else acc + term
        acc = acc / kmax
        y = acc if dac.shift_add is ShiftAdd.DIGITAL else digitize(acc)
    else:  # pulse width: sum over time slots of constant drive
        kmax = dac.max_code
        mag = np.abs(k)
        sgn = np.sign(k)
        acc = None
        # only the slots up to the largest code used carry current
        for s in range(1, int(mag.max(initial=0)) + 1):
            I_s = np.asarray(mvm(sgn * (mag >= s) * dac.v_max), dtype=np.float64)
            acc = I_s if acc is None else acc + I_s
        if acc is None:
            acc = np.asarray(mvm(np.zeros_like(k)), dtype=np.float64)
        y = digitize(acc * dac.t_unit / (kmax * dac.t_unit))
    return y[0] if single else y
