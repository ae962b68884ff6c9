"""Mapping weights to conductances and back (numpy only; no Numba, no torch).

Conventions (used by crossbar/ and nn/):

- A layer computes y = W x + b with ``W`` shaped ``(n_out, n_in)`` (torch's Linear layout),
  ``x`` shaped ``(..., n_in)``, ``b`` shaped ``(n_out,)``; weights, inputs and outputs
  are dimensionless numbers.
- A crossbar tile has rows (word lines, driven by inputs) and columns (bit lines, summed).
  Conductance arrays are shaped ``(n_pairs, n_rows, n_cols)`` [S] with
  ``n_rows = n_in + n_bias_rows`` and ``n_cols = n_out``; row i is driven with voltage
  ``x_tilde[i] * v_read`` [V] and column j collects I_j = sum_i G[i, j] v_i [A].
- The bias ("Matching the range of W and b", HA-SGD poster): y = [W, b/s] [x; s], so the
  bias occupies extra rows driven at input value s. s = max|b| / max|W| makes the bias
  entries use the same conductance range as the weights; when that s exceeds the DAC
  full scale ``x_fs``, the bias is split over n_b = ceil(s / x_fs) rows driven at x_fs,
  each carrying b / (n_b x_fs), so every entry stays within max|W|.
- Schemes (:class:`Scheme`):
  DIFFERENTIAL: w = (G+ - G-) / alpha, G+- = g_min + alpha max(+-w, 0);
  REFERENCE: one device per weight and a shared reference column at g_mid =
  (g_min + g_max)/2: w = (G - g_mid) / alpha (alpha = (g_max - g_min) / (2 w_max)).
- alpha [S per unit weight] is per tile (one value) or per column (:class:`Scaling`):
  alpha_j = (g_max - g_min) / w_max_j, w_max_j = max |W~[j, :]| of the augmented matrix.
- Several pairs with significance F (DIFFERENTIAL, ``n_pairs`` P > 1): normalised weight
  r = w / w_max = sum_k F^-k d_k with d_k = (G+_k - G-_k)/(g_max - g_min); pairs 0..P-2
  hold r's digits on a grid of ``levels`` steps per polarity (d_0 = round(r L)/L, the
  remainder times F goes to the next pair, F <= 2 L keeps it in range) and the last pair
  holds the remaining continuous value. With noise off the round trip is exact.
- Drift compensation (Joshi et al., Nat. Commun. 2020): apply a calibration input,
  compare the summed absolute outputs with their reference (the first read after
  programming or the ideal product, :class:`CompensationReference`) and rescale
  all later outputs by one factor (global) or one factor per column (:class:`Compensation`,
  :func:`compensation_factors`).
- Tiled layers (crossbar/tiling.py) map each tile's block of the bias-augmented matrix
  with :meth:`WeightMapping.to_conductances` (no ``b``: the layer's bias rows come from
  :meth:`WeightMapping.bias_rows` once per layer, with the DAC full scale as ``x_fs``).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError

__all__ = [
    "Scheme",
    "Scaling",
    "Compensation",
    "CompensationReference",
    "WeightMapping",
    "MappedWeights",
    "calibration_input",
    "column_calibration_inputs",
    "global_drift_factor",
    "column_drift_factors",
    "compensation_factors",
    "device_range",
    "mapping_for",
    "check_mapping",
]


class Scheme(enum.StrEnum):
    """How one weight becomes conductances."""

    DIFFERENTIAL = "differential"
    REFERENCE = "reference"


class Scaling(enum.StrEnum):
    """Granularity of the weight-to-conductance scale alpha."""

    TILE = "tile"
    COLUMN = "column"


class Compensation(enum.StrEnum):
    """Drift compensation applied to outputs (see :func:`compensation_factors`): none, one
    factor for all outputs of a layer (global), or one factor per output column (column)."""

    NONE = "none"
    GLOBAL = "global"
    COLUMN = "column"


class CompensationReference(enum.StrEnum):
    """What the calibration outputs at time t are compared with (``y_ref`` of
    :func:`compensation_factors`).

    IDEAL: the ideal product ``W x_cal + b`` of the target weights, so compensation also
    removes the gain error left by programming. FIRST_READ: the same calibration input read
    through the array right after programming (the chip's first read, as in Joshi et al.,
    Nat. Commun. 2020), so compensation undoes only what changed since then.
    """

    IDEAL = "ideal"
    FIRST_READ = "first-read"


def _arr(x, name, ndim=None):
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numeric, got {type(x).__name__}") from None
    if ndim is not None and a.ndim != ndim:
        raise ConfigError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"{name} must be finite (no NaN/inf)")
    return a


@dataclass(frozen=True)
class WeightMapping:
    """How weights of a layer map onto device conductances (see the module docstring)."""

    g_max: float
    """g_max: conductance that the largest |weight| maps to [S]."""
    g_min: float = 0.0
    """g_min: conductance of a zero weight's devices [S] (the device's lowest usable value)."""
    scheme: Scheme = Scheme.DIFFERENTIAL
    """Differential pair or single device with a reference column."""
    scaling: Scaling = Scaling.TILE
    """One alpha per tile or one per column."""
    n_pairs: int = 1
    """P: device pairs per weight (DIFFERENTIAL only) [1]."""
    significance: float = 4.0
    """F: significance ratio between consecutive pairs [1] (pair k weighs F^-k)."""
    levels: int = 2
    """L: grid steps per polarity of the upper pairs when P > 1 [1]; needs F <= 2 L."""
    x_fs: float = 1.0
    """x_fs: DAC full scale in input units [1]; bias rows are driven at most at x_fs."""

    def __post_init__(self):
        object.__setattr__(self, "scheme", coerce_enum(Scheme, self.scheme, "scheme"))
        object.__setattr__(self, "scaling", coerce_enum(Scaling, self.scaling, "scaling"))
        if not (math.isfinite(self.g_min) and self.g_min >= 0):
            raise ConfigError(f"g_min must be a finite conductance >= 0 S, got {self.g_min}")
        if not (math.isfinite(self.g_max) and self.g_max > self.g_min):
            raise ConfigError(f"g_max must be finite and exceed g_min = {self.g_min} S, "
                              f"got {self.g_max}")
        if int(self.n_pairs) != self.n_pairs or self.n_pairs < 1:
            raise ConfigError(f"n_pairs must be an integer >= 1, got {self.n_pairs}")
        if self.scheme is Scheme.REFERENCE and self.n_pairs != 1:
            raise ConfigError("the reference scheme supports n_pairs = 1 only")
        if self.n_pairs > 1:
            if not (self.significance > 1 and int(self.levels) == self.levels and self.levels >= 1):
                raise ConfigError("n_pairs > 1 needs significance > 1 and an integer levels >= 1")
            if self.significance > 2 * self.levels:
                raise ConfigError(f"significance F = {self.significance} must be <= 2 * levels "
                                  f"= {2 * self.levels} so each remainder stays in range")
        if not (math.isfinite(self.x_fs) and self.x_fs > 0):
            raise ConfigError(f"x_fs must be a finite input full scale > 0, got {self.x_fs}")

    # ------------------------------------------------------------------ forward map

    def bias_rows(self, w_max: float, b_max: float, *, x_fs: float | None = None
                  ) -> tuple[int, float]:
        """(n_b, s): number of bias rows and their drive value for max|W|, max|b|.

        ``x_fs``: full scale to use instead of the field ``x_fs`` (a tiled layer passes its
        DAC full scale) [1].
        """
        fs = self.x_fs if x_fs is None else float(x_fs)
        if not (math.isfinite(fs) and fs > 0):
            raise ConfigError(f"x_fs must be a finite input full scale > 0, got {x_fs}")
        if b_max == 0 or w_max == 0:
            return 1, fs
        s = b_max / w_max
        if s <= fs:
            return 1, s
        return int(math.ceil(s / fs * (1 - 1e-12))), fs

    def to_dict(self) -> dict:
        """Fields as plain values (enums as their strings)."""
        return {"g_max": float(self.g_max), "g_min": float(self.g_min),
                "scheme": self.scheme.value, "scaling": self.scaling.value,
                "n_pairs": int(self.n_pairs), "significance": float(self.significance),
                "levels": int(self.levels), "x_fs": float(self.x_fs)}

    @classmethod
    def from_dict(cls, d) -> WeightMapping:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown WeightMapping fields {sorted(unknown)}")
        return cls(**d)

    def to_conductances(self, W, b=None) -> MappedWeights:
        """Map ``W`` (n_out, n_in) and optional ``b`` (n_out,) to conductances."""
        W = _arr(W, "W", 2)
        n_out, n_in = W.shape
        if b is not None:
            b = _arr(b, "b", 1)
            if b.shape != (n_out,):
                raise ConfigError(f"b must have shape ({n_out},) to match W {W.shape}, "
                                  f"got {b.shape}")
        w_abs = float(np.max(np.abs(W))) if W.size else 0.0
        n_b, s = 0, 0.0
        Wt = W
        if b is not None:
            n_b, s = self.bias_rows(w_abs, float(np.max(np.abs(b))))
            Wt = np.concatenate([W, np.repeat((b / (n_b * s))[:, None], n_b, axis=1)], axis=1)
        # conductance per unit weight
        if self.scaling is Scaling.TILE:
            wm = np.full(n_out, float(np.max(np.abs(Wt))) if Wt.size else 0.0)
        else:
            wm = np.max(np.abs(Wt), axis=1) if Wt.shape[1] else np.zeros(n_out)
        wm = np.where(wm > 0, wm, 1.0)
        dg = self.g_max - self.g_min
        r = (Wt / wm[:, None]).T  # (n_rows, n_cols), in [-1, 1]
        if self.scheme is Scheme.REFERENCE:
            g = self.g_min + 0.5 * dg * (1.0 + r)
            return MappedWeights(self, g_pos=g[None], g_neg=None, w_max=wm, n_in=n_in,
                                 n_bias_rows=n_b, bias_drive=s)
        P = self.n_pairs
        digits = np.empty((P, *r.shape))
        rest = r
        for k in range(P):
            if k < P - 1:
                d = np.round(rest * self.levels) / self.levels
                digits[k] = d
                rest = (rest - d) * self.significance
            else:
                digits[k] = rest
        gp = self.g_min + dg * np.maximum(digits, 0.0)
        gn = self.g_min + dg * np.maximum(-digits, 0.0)
        return MappedWeights(self, g_pos=gp, g_neg=gn, w_max=wm, n_in=n_in, n_bias_rows=n_b,
                             bias_drive=s)


@dataclass(frozen=True, eq=False)
class MappedWeights:
    """Conductances of one mapped layer and what is needed to read it back."""

    mapping: WeightMapping
    """The mapping that produced this."""
    g_pos: np.ndarray
    """G+ (DIFFERENTIAL) or G (REFERENCE), shape (n_pairs, n_rows, n_cols) [S]."""
    g_neg: np.ndarray | None
    """G-, same shape (DIFFERENTIAL), or None (REFERENCE) [S]."""
    w_max: np.ndarray
    """w_max_j: the weight that maps to the full range, per column, shape (n_cols,) [1]."""
    n_in: int
    """Number of weight rows (inputs) [1]."""
    n_bias_rows: int
    """n_b: bias rows appended after the weight rows [1]."""
    bias_drive: float
    """s: input value driving each bias row [1] (<= x_fs)."""

    @property
    def n_rows(self) -> int:
        return self.g_pos.shape[1]

    @property
    def alpha(self) -> np.ndarray:
        """Conductance per unit weight per column [S]: (g_max - g_min) / w_max (differential),
        half that (reference)."""
        dg = self.mapping.g_max - self.mapping.g_min
        if self.mapping.scheme is Scheme.REFERENCE:
            return 0.5 * dg / self.w_max
        return dg / self.w_max

    @property
    def pair_weights(self) -> np.ndarray:
        """F^-k for pair k [1]."""
        return self.mapping.significance ** -np.arange(self.g_pos.shape[0], dtype=np.float64)

    @property
    def g_ref(self) -> float:
        """Reference-column conductance [S] (REFERENCE scheme)."""
        return 0.5 * (self.mapping.g_min + self.mapping.g_max)

    def input_vector(self, x) -> np.ndarray:
        """x (..., n_in) -> x~ (..., n_rows): the bias rows appended at value s."""
        x = _arr(x, "x")
        if x.shape[-1:] != (self.n_in,):
            raise ConfigError(f"x must end in n_in = {self.n_in}, got shape {x.shape}")
        if self.n_bias_rows == 0:
            return x
        tail = np.full((*x.shape[:-1], self.n_bias_rows), self.bias_drive)
        return np.concatenate([x, tail], axis=-1)

    def to_weights(self, g_pos=None, g_neg=None) -> tuple[np.ndarray, np.ndarray | None]:
        """Inverse mapping: (W (n_out, n_in), b (n_out,) or None) from conductances [S]
        (defaults: the mapped ones; pass programmed/drifted/read arrays of the same shape)."""
        gp = self.g_pos if g_pos is None else _arr(g_pos, "g_pos")
        if gp.shape != self.g_pos.shape:
            raise ConfigError(f"g_pos must have shape {self.g_pos.shape}, got {gp.shape}")
        m = self.mapping
        dg = m.g_max - m.g_min
        if m.scheme is Scheme.REFERENCE:
            r = (gp[0] - self.g_ref) / (0.5 * dg)
        else:
            gn = self.g_neg if g_neg is None else _arr(g_neg, "g_neg")
            if gn.shape != self.g_neg.shape:
                raise ConfigError(f"g_neg must have shape {self.g_neg.shape}, got {gn.shape}")
            if gp.shape[0] == 1:  # one pair of weight F^0 = 1: the same numbers, no BLAS call
                r = (gp[0] - gn[0]) / dg
            else:
                r = np.tensordot(self.pair_weights, (gp - gn) / dg, axes=(0, 0))
        Wt = (r * self.w_max[None, :]).T  # (n_out, n_rows)
        W = Wt[:, :self.n_in]
        if self.n_bias_rows == 0:
            return W, None
        b = Wt[:, self.n_in:].sum(axis=1) * self.bias_drive
        return W, b

    def outputs_from_currents(self, i_pos, i_neg=None, *, v_read: float) -> np.ndarray:
        """y (..., n_out) from column currents [A] at read voltage ``v_read`` [V].

        DIFFERENTIAL: ``i_pos``/``i_neg`` shaped (..., n_pairs, n_cols); REFERENCE:
        ``i_pos`` (..., 1, n_cols) and ``i_neg`` the reference column current (..., 1) [A].
        """
        ip = _arr(i_pos, "i_pos")
        if self.mapping.scheme is Scheme.REFERENCE:
            ir = _arr(i_neg, "i_neg (reference current)")
            return self.outputs_from_difference(ip - ir[..., None], v_read=v_read)
        return self.outputs_from_difference(ip - _arr(i_neg, "i_neg"), v_read=v_read)

    def outputs_from_difference(self, i_diff, *, v_read: float) -> np.ndarray:
        """y (..., n_out) from currents already subtracted in the analog domain [A]:
        ``I+ - I-`` per pair (DIFFERENTIAL) or ``I - I_ref`` (REFERENCE), shaped
        (..., n_pairs, n_cols), at read voltage ``v_read`` [V]; pairs are weighted F^-k."""
        d = _arr(i_diff, "i_diff")
        P = self.g_pos.shape[0]
        if d.shape[-2:] != (P, self.g_pos.shape[2]):
            raise ConfigError(f"i_diff must end in (n_pairs, n_cols) = {(P, self.g_pos.shape[2])}"
                              f", got shape {d.shape}")
        if not (math.isfinite(v_read) and v_read > 0):
            raise ConfigError(f"v_read must be a positive voltage, got {v_read}")
        return np.tensordot(d, self.pair_weights, axes=(-2, 0)) / (self.alpha * v_read)

    def matvec(self, x, g_pos=None, g_neg=None) -> np.ndarray:
        """Ideal-crossbar y = W_eff x + b_eff (Ohm + Kirchhoff, no wire resistance) for
        conductances ``g_pos``/``g_neg`` [S] (default: the mapped ones); x (..., n_in)."""
        xt = self.input_vector(x)
        gp = self.g_pos if g_pos is None else _arr(g_pos, "g_pos")
        ip = np.einsum("...r,prc->...pc", xt, gp)
        if self.mapping.scheme is Scheme.REFERENCE:
            iref = xt.sum(axis=-1, keepdims=True) * self.g_ref
            return self.outputs_from_currents(ip, iref, v_read=1.0)
        gn = self.g_neg if g_neg is None else _arr(g_neg, "g_neg")
        return self.outputs_from_currents(ip, np.einsum("...r,prc->...pc", xt, gn), v_read=1.0)


# ---------------------------------------------------------------------- drift compensation


def calibration_input(n_in: int, *, value: float = 1.0) -> np.ndarray:
    """The calibration input: every input at ``value`` (a constant vector, shape (n_in,))."""
    if int(n_in) != n_in or n_in < 1:
        raise ConfigError(f"n_in must be a positive integer, got {n_in}")
    return np.full(int(n_in), float(value))


def column_calibration_inputs(n_in: int, *, value: float = 1.0, n: int = 32) -> np.ndarray:
    """``n`` calibration inputs (n, n_in) of per-column compensation: Walsh sign patterns,
    ``x[k, i] = value · (−1)^popcount(k & i)`` for k = 0..n−1 (row 0 is
    :func:`calibration_input`).

    One constant input gives column j the output ``value · Σ_i W[j, i]``, which is near zero
    for a column whose weights cancel, and a ratio of near-zero sums is dominated by noise.
    Over the sign patterns ``Σ_k |y[k, j]|`` grows with the column's weights whatever
    their signs (for ``n`` a power of two >= ``n_in`` the patterns are rows of a Hadamard matrix:
    ``Σ_k y[k, j]² = n · value² · Σ_i W[j, i]²``); a pure multiplicative change of column
    j still gives the exact factor.
    """
    if int(n_in) != n_in or n_in < 1:
        raise ConfigError(f"n_in must be a positive integer, got {n_in}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be an integer >= 1, got {n!r}")
    k = np.arange(n)[:, None]
    i = np.arange(int(n_in))[None, :]
    bits = np.zeros(np.broadcast_shapes(k.shape, i.shape), dtype=np.int64)
    ki = k & i
    while np.any(ki):
        bits += ki & 1
        ki = ki >> 1
    return float(value) * (1.0 - 2.0 * (bits % 2))


def global_drift_factor(y_ref, y_t) -> float:
    """One factor f = sum|y_ref| / sum|y_t| [1]: multiply outputs at time t by f.

    ``y_ref``: outputs for the calibration input at the reference time (right after
    programming, or the ideal W x_cal); ``y_t``: the same input's outputs at time t; any
    equal shapes (all columns, and optionally several calibration inputs).
    """
    a, b = _arr(y_ref, "y_ref"), _arr(y_t, "y_t")
    if a.shape != b.shape:
        raise ConfigError(f"y_ref and y_t must have equal shapes, got {a.shape} and {b.shape}")
    den = float(np.abs(b).sum())
    if den == 0:
        raise ConfigError("the calibration outputs at time t are all zero; cannot compensate")
    return float(np.abs(a).sum()) / den


def column_drift_factors(y_ref, y_t) -> np.ndarray:
    """Per-column factors f_j = sum_batch |y_ref[..., j]| / sum_batch |y_t[..., j]| [1],
    shape (n_out,); columns whose outputs vanish get 1."""
    a, b = _arr(y_ref, "y_ref"), _arr(y_t, "y_t")
    if a.shape != b.shape or a.ndim < 1:
        raise ConfigError(f"y_ref and y_t must have equal shapes (..., n_out), got {a.shape} "
                          f"and {b.shape}")
    num = np.abs(a).reshape(-1, a.shape[-1]).sum(axis=0)
    den = np.abs(b).reshape(-1, b.shape[-1]).sum(axis=0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)


def compensation_factors(y_ref, y_t, compensation: Compensation | str) -> np.ndarray:
    """Factors f (n_out,) [1] that multiply outputs at time t: ones (NONE), the global factor
    repeated (GLOBAL, :func:`global_drift_factor`) or per column (COLUMN,
    :func:`column_drift_factors`); ``y_ref``, ``y_t`` shaped (..., n_out)."""
    c = coerce_enum(Compensation, compensation, "compensation")
    a = _arr(y_ref, "y_ref")
    if a.ndim < 1:
        raise ConfigError(f"y_ref must have shape (..., n_out), got {a.shape}")
    if c is Compensation.NONE:
        return np.ones(a.shape[-1])
    if c is Compensation.GLOBAL:
        return np.full(a.shape[-1], global_drift_factor(a, y_t))
    return column_drift_factors(a, y_t)


# --------------------------------------------------------------------------- the range rule


def device_range(device) -> tuple[float, float]:
    """``(lo, hi)`` [S]: the conductances a weight mapping may use on ``device``.

    The one range rule of the package: a model's ``g_range`` (the inputs it accepts),
    narrowed to ``g_fit`` where the model has one (a fitted model: the targets its data
    covered, outside which it only repeats its edge statistics). ``hi`` may be infinite
    (an ideal device); :func:`mapping_for` then needs an explicit ``g_max``.
    """
    try:
        lo, hi = (float(v) for v in getattr(device, "g_range", (0.0, math.inf)))
    except (TypeError, ValueError):
        raise ConfigError(f"device.g_range must be two conductances [S], got "
                          f"{getattr(device, 'g_range', None)!r}") from None
    fit = getattr(device, "g_fit", None)
    if fit is not None and np.size(fit) == 2 and np.all(np.isfinite(fit)):
        lo, hi = max(lo, float(np.ravel(fit)[0])), min(hi, float(np.ravel(fit)[1]))
    return lo, hi


def mapping_for(device, *, g_min: float | None = None, g_max: float | None = None,
                allow_extrapolation: bool = False, **fields) -> WeightMapping:
    """The :class:`WeightMapping` of weights onto ``device``, built by the one range rule.

    Parameters
    ----------
    device
        A device model (anything with ``g_range``, see :func:`device_range`).
    g_min, g_max : float, optional
        Conductance of a zero weight and of max|W| [S]; default the ends of
        :func:`device_range`.
    allow_extrapolation : bool
        Accept ``g_min``/``g_max`` outside :func:`device_range` (a fitted model then uses
        its edge statistics); refused by default.
    **fields
        The other :class:`WeightMapping` fields (``scheme``, ``scaling``, ``n_pairs``,
        ``significance``, ``levels``, ``x_fs``).

    Returns
    -------
    WeightMapping

    Raises
    ------
    ConfigError
        The range has no finite upper bound and no ``g_max`` is given; ``g_min``/``g_max``
        lie outside the device's range (without ``allow_extrapolation``); ``0 <= g_min <
        g_max`` fails; an unknown field.
    """
    unknown = set(fields) - (set(WeightMapping.__dataclass_fields__) - {"g_min", "g_max"})
    if unknown:
        raise ConfigError(f"unknown WeightMapping fields {sorted(unknown)}; valid: "
                          f"{sorted(set(WeightMapping.__dataclass_fields__))}")
    lo, hi = device_range(device)
    gmin = lo if g_min is None else float(g_min)
    gmax = hi if g_max is None else float(g_max)
    if not math.isfinite(gmax):
        raise ConfigError(f"the device model's range [{lo:g}, {hi:g}] S has no finite upper "
                          "bound: give g_max [S] for the mapping")
    if not (math.isfinite(gmin) and gmin >= 0 and gmax > gmin):
        raise ConfigError(f"mapping needs 0 <= g_min < g_max, got g_min={gmin:g} S, "
                          f"g_max={gmax:g} S")
    if not allow_extrapolation:
        _check_covered(lo, hi, gmin, gmax)
    return WeightMapping(g_max=gmax, g_min=gmin, **fields)


def check_mapping(device, mapping: WeightMapping, *,
                  allow_extrapolation: bool = False) -> WeightMapping:
    """``mapping`` itself, once the one range rule accepts it on ``device``.

    Parameters
    ----------
    device
        A device model (see :func:`device_range`).
    mapping : WeightMapping
        A mapping built elsewhere (by :func:`mapping_for` or by hand).
    allow_extrapolation : bool
        Accept a ``g_min..g_max`` [S] outside :func:`device_range` (see :func:`mapping_for`).

    Returns
    -------
    WeightMapping
        ``mapping``, unchanged.

    Raises
    ------
    ConfigError
        ``mapping`` is not a :class:`WeightMapping`, or its range lies outside the device's
        (without ``allow_extrapolation``).
    """
    if not isinstance(mapping, WeightMapping):
        raise ConfigError(f"mapping must be a devices.mapping.WeightMapping, got "
                          f"{type(mapping).__name__}")
    if not allow_extrapolation:
        _check_covered(*device_range(device), mapping.g_min, mapping.g_max)
    return mapping


def _check_covered(lo: float, hi: float, gmin: float, gmax: float) -> None:
    """ConfigError unless ``[gmin, gmax]`` lies inside ``[lo, hi]`` [S] (relative slack 1e-12)."""
    if gmin < lo * (1 - 1e-12) or gmax > hi * (1 + 1e-12):
        raise ConfigError(
            f"the device model's range [{lo:.6g}, {hi:.6g}] S does not cover the mapping "
            f"[g_min, g_max] = [{gmin:.6g}, {gmax:.6g}] S; choose g_min/g_max inside it "
            "(fitted models: allow_extrapolation=True uses their edge statistics)")
