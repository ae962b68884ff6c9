"""Parametric building blocks of a device model (frozen, serialisable), sampled by the
Numba kernels.

A :class:`~xbarlab.devices.composite.CompositeDevice` chains

1. :class:`ProgrammingError` -- g_prog | g: g_prog = g (1 + s_d z_d) + b(g) + s(g) eps,
   eps from an :class:`ErrorDistribution` (zero mean, unit variance; the bounded family
   instead draws the error from a beta on the verify window with mean b(g) and std s(g)),
   stuck-at faults, an optional finite level set, clipping to [prog_lo, prog_hi];
2. a drift block -- :class:`PowerLawDrift` (PCM: g_prog ((t + t0)/t0)^-nu with a
   per-cell nu ~ |N(mu(g), sd(g))|) or :class:`Relaxation` (RRAM: g_prog + m(g, t) +
   s(g, t) z, on a :class:`TimeSurface` that calibration can tabulate over (g, t));
3. :class:`ReadNoise` -- 1/f noise whose marginal spread at each t is Q sqrt(u),
   u(t) = ln((t + t0 + t_r) / (2 t_r)), scaled by g(t) Q(g_prog) (relative) or by
   A(g_prog) (absolute), of a :class:`ReadNoiseStructure`: accumulated (a Wiener process
   W(u) per cell), drawn independently at every read, or the sum of both; plus
   independent short-term noise per read.

The blocks fitted by :mod:`xbarlab.calibration` (tabulated curves with bootstrap
replicates, the quantile relaxation table) live in :mod:`xbarlab.devices.fitted` and
:mod:`xbarlab.devices.relaxation_table`.

Models beyond their fitted range: every curve is evaluated at the input conductance
clipped into the model's statistics range (``CompositeDevice.g_fit``, else ``g_range``,
when ``range_policy`` is "edge"); :class:`~xbarlab.devices.curves.Table` curves
hold their edge values and :class:`TimeSurface` holds its first/last time's curves
(``extrapolation = "hold"``) or continues linearly in ln t (``"linear_log_t"``).
So outside the fitted range a model uses the statistics of the nearest fitted edge.

Every numeric field is SI (S, s) or dimensionless, as its docstring says.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import check_rng
from ..enums import coerce_enum
from ..errors import ConfigError
from ..formats import Quantity
from .curves import Curve, curve_from_dict, tree_array

__all__ = [
    "Family",
    "ErrorDistribution",
    "beta_shape",
    "ProgrammingError",
    "PowerLawDrift",
    "Extrapolation",
    "TimeSurface",
    "RelaxationPath",
    "ConditionOn",
    "Relaxation",
    "NoiseScaling",
    "ReadNoiseStructure",
    "ReadNoiseLaw",
    "ReadNoise",
]


def _q(v, units):
    return Quantity(float(v), units)


def _num(tree, key, units, ctx, default=None):
    if key not in tree and default is not None:
        return default
    return float(tree_array(tree, key, units, ctx))


def _finite(name, v, *, lo=-math.inf, hi=math.inf, allow_inf=False):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {v!r}") from None
    if math.isnan(v) or (not allow_inf and math.isinf(v)):
        raise ConfigError(f"{name} must be finite, got {v}")
    if not lo <= v <= hi:
        raise ConfigError(f"{name} = {v} outside the allowed range [{lo}, {hi}]")
    return v


def _opt_curve(c):
    return None if c is None else c.to_dict()


def _curve_or_none(tree, key):
    """The curve stored under ``key``, or None where the file says none; a file without
    the entry is malformed (KeyError, which the readers report naming the entry)."""
    v = tree[key]
    return None if v is None else curve_from_dict(v)


# ---------------------------------------------------------------------------- programming


class Family(enum.StrEnum):
    """Family of the programming error, shared by every device model.

    :class:`ErrorDistribution` (presets' :class:`ProgrammingError`) and
    :class:`~xbarlab.devices.fitted.FittedProgramming` (what calibration fits) both use
    this enum and sample through :meth:`ErrorDistribution.errors` (one Numba sampler).
    All but BOUNDED define a standardised eps (mean 0, variance 1) and an error b + s eps;
    BOUNDED defines the error itself.
    """

    NORMAL = "normal"
    #: uniform on a write-verify window plus a small normal: eps = sqrt(3 f) U + sqrt(1 - f) Z,
    #: U ~ Uniform(-1, 1); excess kurtosis -1.2 f^2 (f = 1: a pure uniform, -1.2).
    UNIFORM_NORMAL = "uniform_normal"
    #: Student t with ``t_dof`` > 2 degrees of freedom, scaled to unit variance.
    STUDENT_T = "student-t"
    #: (1 - p) N(0, 1) + p N(delta, r^2), shifted and scaled to mean 0, variance 1.
    MIXTURE = "mixture"
    #: a beta distribution on the verify window [-w, w] about the target whose mean is the
    #: bias b(g) and whose std is the spread s(g) (method of moments, see :func:`beta_shape`).
    BOUNDED = "bounded"

    @classmethod
    def _missing_(cls, value):
        # "student_t": the spelling of preset files and of composite-model files written
        # by xbarlab 0.1.0
        return cls.STUDENT_T if value == "student_t" else None


def beta_shape(bias, spread, window):
    """Beta shapes (a, c) of the BOUNDED family on [-w, w] with mean ``bias`` and std
    ``spread`` [S] (arrays or scalars), ``window`` = w [S].

    Method of moments on B = (error + w) / (2 w): mean m = (b + w) / (2 w) clipped to
    [1e-3, 1 - 1e-3], variance v = (s / (2 w))^2 clipped to [1e-12, 0.999 m (1 - m)] (a
    beta exists only below m (1 - m)), k = m (1 - m) / v - 1, a = m k, c = (1 - m) k, both
    at least 0.05. The Numba sampler (``kernels._bounded_error``) repeats these lines.
    """
    b = np.asarray(bias, dtype=np.float64)
    s = np.asarray(spread, dtype=np.float64)
    m = np.clip((b + window) / (2 * window), 1e-3, 1 - 1e-3)
    v = np.clip((s / (2 * window)) ** 2, 1e-12, 0.999 * m * (1 - m))
    k = m * (1 - m) / v - 1
    return np.maximum(m * k, 0.05), np.maximum((1 - m) * k, 0.05)


@dataclass(frozen=True)
class ErrorDistribution:
    """The family of the programming error and its shape parameters."""

    family: Family = Family.NORMAL
    """Distribution family (closed choice, see :class:`Family`)."""
    uniform_fraction: float = 1.0
    """f: share of the variance carried by the uniform part (UNIFORM_NORMAL) [1], in [0, 1].
    The verify-window half-width is sqrt(3 f) s(g) [S]."""
    t_dof: float = 5.0
    """nu_t: degrees of freedom of STUDENT_T [1], > 2."""
    mix_weight: float = 0.1
    """p: weight of the second MIXTURE component [1], in [0, 1)."""
    mix_offset: float = 0.0
    """delta: mean of the second component in units of the first's std [1]."""
    mix_scale: float = 3.0
    """r: std of the second component over the first's [1], > 0."""
    window: float = math.nan
    """w: half-width of the write-verify window about the target [S] (BOUNDED, > 0; NaN:
    not used). The error lies in [-w, w]."""

    def __post_init__(self):
        object.__setattr__(self, "family", coerce_enum(Family, self.family, "family"))
        _finite("uniform_fraction", self.uniform_fraction, lo=0.0, hi=1.0)
        _finite("t_dof", self.t_dof, lo=2.0 + 1e-9)
        _finite("mix_weight", self.mix_weight, lo=0.0, hi=1.0 - 1e-12)
        _finite("mix_offset", self.mix_offset)
        _finite("mix_scale", self.mix_scale, lo=1e-12)
        w = self.window
        unused = isinstance(w, float | np.floating) and math.isnan(w)
        # one NaN object for "not used", so that equal distributions compare equal
        object.__setattr__(self, "window", math.nan if unused and self.family is not
                           Family.BOUNDED else _finite("window", w, lo=1e-300))

    def kernel_params(self) -> tuple[int, list[float]]:
        """Family code and the four constants of the Numba sampler."""
        if self.family is Family.NORMAL:
            return 0, [0.0, 0.0, 0.0, 0.0]
        if self.family is Family.UNIFORM_NORMAL:
            f = self.uniform_fraction
            return 1, [math.sqrt(3.0 * f), math.sqrt(1.0 - f), 0.0, 0.0]
        if self.family is Family.STUDENT_T:
            return 2, [self.t_dof, math.sqrt((self.t_dof - 2.0) / self.t_dof), 0.0, 0.0]
        if self.family is Family.BOUNDED:
            return 4, [self.window, 0.0, 0.0, 0.0]
        p, d, r = self.mix_weight, self.mix_offset, self.mix_scale
        m = p * d
        var = (1 - p) + p * (r * r + d * d) - m * m
        return 3, [p, d, r, 1.0 / math.sqrt(var)]

    def errors(self, bias, spread, rng: np.random.Generator) -> np.ndarray:
        """Programming errors g_prog - g [S] of cells with bias ``bias`` and spread
        ``spread`` [S] (1-D arrays of one length, or scalars broadcast to them).

        One 63-bit seed is drawn from ``rng``, as :meth:`CompositeDevice.program` does,
        and cell i gets the draws that the program kernel gives cell i for that seed: the
        fitted and the parametric programming blocks sample through this one Numba kernel
        (same bits for any thread count).
        """
        from . import kernels as K

        check_rng(rng)
        b, s = np.broadcast_arrays(np.asarray(bias, dtype=np.float64),
                                   np.asarray(spread, dtype=np.float64))
        if b.ndim != 1:
            raise ConfigError(f"bias and spread must be 1-D arrays [S], got shape {b.shape}")
        fam, fpar = self.kernel_params()
        ip = np.zeros(K.IP_SIZE, dtype=np.int64)
        fp = np.zeros(K.FP_SIZE, dtype=np.float64)
        ip[K.IP_FAMILY] = fam
        fp[K.FP_FAM_A:K.FP_FAM_D + 1] = fpar
        seed = np.uint64(int(rng.integers(0, 2**63 - 1, dtype=np.int64)))
        out = np.empty(b.size, dtype=np.float64)
        K.error_kernel(np.ascontiguousarray(b), np.ascontiguousarray(s), ip, fp, seed, out)
        return out

    def cdf(self, e) -> np.ndarray:
        """CDF of eps at ``e`` [1] (scipy; for tests, reports and calibration).

        Not for BOUNDED, whose shape depends on b(g) / w and s(g) / w: see
        :meth:`error_cdf`.
        """
        from scipy import stats

        e = np.asarray(e, dtype=np.float64)
        if self.family is Family.BOUNDED:
            raise ConfigError("the bounded family has no standardised eps; use "
                              "error_cdf(x, bias=..., spread=...)")
        if self.family is Family.NORMAL:
            return stats.norm.cdf(e)
        if self.family is Family.STUDENT_T:
            s = math.sqrt((self.t_dof - 2.0) / self.t_dof)
            return stats.t.cdf(e / s, self.t_dof)
        if self.family is Family.MIXTURE:
            _, (p, d, r, inv) = self.kernel_params()
            raw = e / inv + p * d
            return (1 - p) * stats.norm.cdf(raw) + p * stats.norm.cdf((raw - d) / r)
        f = self.uniform_fraction
        a, b = math.sqrt(3 * f), math.sqrt(1 - f)
        if b == 0:
            return np.clip((e + a) / (2 * a), 0.0, 1.0)
        if a == 0:
            return stats.norm.cdf(e / b)
        # convolution of Uniform(-a, a) with N(0, b^2): closed form via int Phi
        def G(x):
            return x * stats.norm.cdf(x / b) + b * stats.norm.pdf(x / b)
        return (G(e + a) - G(e - a)) / (2 * a)

    def error_cdf(self, x, *, bias: float, spread: float) -> np.ndarray:
        """CDF of the programming error at ``x`` [S] for bias ``bias`` and spread
        ``spread`` [S] (scalars), any family (scipy)."""
        from scipy import stats

        x = np.asarray(x, dtype=np.float64)
        if self.family is Family.BOUNDED:
            a, c = beta_shape(bias, spread, self.window)
            return stats.beta.cdf((x + self.window) / (2 * self.window), a, c)
        return self.cdf((x - bias) / spread)

    def to_dict(self) -> dict[str, Any]:
        d = {"family": self.family.value,
             "uniform_fraction": _q(self.uniform_fraction, "1"),
             "t_dof": _q(self.t_dof, "1"), "mix_weight": _q(self.mix_weight, "1"),
             "mix_offset": _q(self.mix_offset, "1"), "mix_scale": _q(self.mix_scale, "1")}
        if not math.isnan(self.window):  # absent from files of families without a window
            d["window"] = _q(self.window, "S")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ErrorDistribution:
        c = "error distribution"
        return cls(family=d.get("family", "normal"),
                   uniform_fraction=_num(d, "uniform_fraction", "1", c, 1.0),
                   t_dof=_num(d, "t_dof", "1", c, 5.0),
                   mix_weight=_num(d, "mix_weight", "1", c, 0.1),
                   mix_offset=_num(d, "mix_offset", "1", c, 0.0),
                   mix_scale=_num(d, "mix_scale", "1", c, 3.0),
                   window=_num(d, "window", "S", c, math.nan))


@dataclass(frozen=True)
class ProgrammingError:
    """g_prog | g: g (1 + d2d z_d) + bias(g) + spread(g) eps, stuck-at faults, clipping.

    (Bounded family: g (1 + d2d z_d) + w (2 B - 1), B ~ Beta with the mean bias(g) and the
    std spread(g) on the window [-w, w].)

    With ``identity = True`` the block programs exactly (g_prog = g): models whose
    input is already a measured conductance (conditioning "initial read") or whose
    spread lives in the drift block (NeuRRAM-like marginals).
    """

    spread: Curve | None = None
    """s(g): standard deviation of the programming error [S] (None: no error)."""
    bias: Curve | None = None
    """b(g): mean programming error [S] (None: zero)."""
    distribution: ErrorDistribution = field(default_factory=ErrorDistribution)
    """Shape of eps (normal, uniform-like write-verify window, Student t, mixture) or the
    bounded family's beta on the verify window (mean b(g), std s(g))."""
    d2d: float = 0.0
    """s_d: relative std of a per-device gain g -> g (1 + s_d z_d) [1]."""
    p_stuck_low: float = 0.0
    """Fraction of cells stuck at ``g_stuck_low`` [1]."""
    p_stuck_high: float = 0.0
    """Fraction of cells stuck at ``g_stuck_high`` [1]."""
    g_stuck_low: float = 0.0
    """Conductance of cells stuck low [S] (usually g_min)."""
    g_stuck_high: float = 0.0
    """Conductance of cells stuck high [S] (usually g_max)."""
    levels: tuple[float, ...] = ()
    """Optional finite set of programmable conductances [S]; targets snap to the nearest."""
    prog_lo: float = 0.0
    """Lower clip of g_prog [S] (0 S: a conductance cannot be negative)."""
    prog_hi: float = math.inf
    """Upper clip of g_prog [S] (inf: no ceiling; set only where the technology has one)."""
    identity: bool = False
    """True: no programming error at all (g_prog = g)."""

    def __post_init__(self):
        object.__setattr__(self, "distribution",
                           self.distribution if isinstance(self.distribution, ErrorDistribution)
                           else ErrorDistribution.from_dict(self.distribution))
        _finite("d2d", self.d2d, lo=0.0)
        _finite("p_stuck_low", self.p_stuck_low, lo=0.0, hi=1.0)
        _finite("p_stuck_high", self.p_stuck_high, lo=0.0, hi=1.0)
        if self.p_stuck_low + self.p_stuck_high > 1.0:
            raise ConfigError("p_stuck_low + p_stuck_high must not exceed 1, got "
                              f"{self.p_stuck_low + self.p_stuck_high}")
        _finite("g_stuck_low", self.g_stuck_low, lo=0.0)
        _finite("g_stuck_high", self.g_stuck_high, lo=0.0)
        lv = tuple(sorted(_finite("level", v, lo=0.0) for v in self.levels))
        object.__setattr__(self, "levels", lv)
        _finite("prog_lo", self.prog_lo, lo=0.0)
        _finite("prog_hi", self.prog_hi, allow_inf=True)
        if not self.prog_lo < self.prog_hi:
            raise ConfigError(
                f"prog_lo ({self.prog_lo} S) must be below prog_hi ({self.prog_hi} S)")

    def to_dict(self) -> dict[str, Any]:
        d = {"spread": _opt_curve(self.spread), "bias": _opt_curve(self.bias),
             "distribution": self.distribution.to_dict(), "d2d": _q(self.d2d, "1"),
             "p_stuck_low": _q(self.p_stuck_low, "1"), "p_stuck_high": _q(self.p_stuck_high, "1"),
             "g_stuck_low": _q(self.g_stuck_low, "S"), "g_stuck_high": _q(self.g_stuck_high, "S"),
             "prog_lo": _q(self.prog_lo, "S"), "prog_hi": _q(self.prog_hi, "S"),
             "identity": bool(self.identity), "n_levels": len(self.levels)}
        if self.levels:
            d["levels"] = Quantity(np.asarray(self.levels), "S")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ProgrammingError:
        c = "programming error"
        lv = ()
        if int(d.get("n_levels", 0)):
            lv = tuple(float(v) for v in np.atleast_1d(d["levels"].expect("S", "levels")))
        return cls(spread=_curve_or_none(d, "spread"), bias=_curve_or_none(d, "bias"),
                   distribution=ErrorDistribution.from_dict(d.get("distribution", {})),
                   d2d=_num(d, "d2d", "1", c, 0.0), p_stuck_low=_num(d, "p_stuck_low", "1", c, 0.0),
                   p_stuck_high=_num(d, "p_stuck_high", "1", c, 0.0),
                   g_stuck_low=_num(d, "g_stuck_low", "S", c, 0.0),
                   g_stuck_high=_num(d, "g_stuck_high", "S", c, 0.0), levels=lv,
                   prog_lo=_num(d, "prog_lo", "S", c, 0.0),
                   prog_hi=_num(d, "prog_hi", "S", c, math.inf),
                   identity=bool(d.get("identity", False)))


# ---------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class PowerLawDrift:
    """g(t) = g_prog ((t + t0) / t0)^(-nu), nu = |mu(g) + sd(g) z| per cell (PCM).

    mu and sd are evaluated at the (snapped) input conductance, i.e. the target.
    """

    t0: float
    """t0: reference time of the power law [s] (t counted from the end of programming)."""
    nu_mean: Curve
    """mu_nu(g): mean drift exponent [1]."""
    nu_std: Curve
    """sd_nu(g): spread of the drift exponent [1]."""
    fold: bool = True
    """True: nu = |mu + sd z| (a folded normal, as published for PCM); False: mu + sd z."""

    def __post_init__(self):
        _finite("t0", self.t0, lo=1e-300)

    def to_dict(self):
        return {"type": "power_law", "t0": _q(self.t0, "s"), "nu_mean": self.nu_mean.to_dict(),
                "nu_std": self.nu_std.to_dict(), "fold": bool(self.fold)}

    @classmethod
    def from_dict(cls, d):
        return cls(t0=_num(d, "t0", "s", "power-law drift"), nu_mean=curve_from_dict(d["nu_mean"]),
                   nu_std=curve_from_dict(d["nu_std"]), fold=bool(d.get("fold", True)))


class Extrapolation(enum.StrEnum):
    """How a :class:`TimeSurface` continues beyond its first/last time."""

    HOLD = "hold"
    LINEAR_LOG_T = "linear_log_t"


@dataclass(frozen=True)
class TimeSurface:
    """y(g, t): curves at times t_k, linear in ln t between them.

    A calibrated relaxation is a stack of :class:`~xbarlab.devices.curves.Table` curves
    on a g grid at the measured times; a published law linear in ln t needs two times.
    """

    times: tuple[float, ...]
    """t_k: increasing times > 0 [s]."""
    curves: tuple[Curve, ...]
    """y(g, t_k), one curve per time, all in the same units."""
    extrapolation: Extrapolation = Extrapolation.HOLD
    """Before t_1 / after t_K: hold the edge curve or continue linearly in ln t."""

    def __post_init__(self):
        ts = tuple(_finite("surface time", v, lo=1e-300) for v in self.times)
        object.__setattr__(self, "times", ts)
        object.__setattr__(self, "curves", tuple(self.curves))
        object.__setattr__(self, "extrapolation",
                           coerce_enum(Extrapolation, self.extrapolation, "extrapolation"))
        if not ts or len(ts) != len(self.curves):
            raise ConfigError(f"a time surface needs one curve per time; got {len(ts)} times and "
                              f"{len(self.curves)} curves")
        if any(np.diff(ts) <= 0):
            raise ConfigError(f"surface times must be increasing, got {ts}")
        if self.extrapolation is Extrapolation.LINEAR_LOG_T and len(ts) < 2:
            raise ConfigError("linear_log_t extrapolation needs at least two times")
        if len({c.units for c in self.curves}) != 1:
            raise ConfigError("all curves of a time surface must share units")

    @property
    def units(self) -> str:
        return self.curves[0].units

    def weights(self, t: float) -> tuple[int, int, float]:
        """(index a, index b, w): y(g, t) = (1 - w) y_a(g) + w y_b(g)."""
        ts = self.times
        if len(ts) == 1:
            return 0, 0, 0.0
        lt = math.log(max(t, 1e-300))
        if t <= ts[0] or t >= ts[-1]:
            a, b = (0, 1) if t <= ts[0] else (len(ts) - 2, len(ts) - 1)
            if self.extrapolation is Extrapolation.HOLD:
                return (0, 0, 0.0) if t <= ts[0] else (b, b, 0.0)
        else:
            b = int(np.searchsorted(ts, t, side="right"))
            a = b - 1
        w = (lt - math.log(ts[a])) / (math.log(ts[b]) - math.log(ts[a]))
        return a, b, w

    def __call__(self, g, t: float) -> np.ndarray:
        """y at conductances ``g`` [S] and one time ``t`` [s]."""
        a, b, w = self.weights(float(t))
        return (1 - w) * self.curves[a](g) + w * self.curves[b](g)

    def to_dict(self):
        return {"times": Quantity(np.asarray(self.times, dtype=np.float64), "s"),
                "n_times": len(self.times), "extrapolation": self.extrapolation.value,
                "curves": {str(k): c.to_dict() for k, c in enumerate(self.curves)}}

    @classmethod
    def from_dict(cls, d):
        n = int(d["n_times"])
        ts = np.atleast_1d(d["times"].expect("s", "surface times"))
        return cls(times=tuple(float(v) for v in ts),
                   curves=tuple(curve_from_dict(d["curves"][str(k)]) for k in range(n)),
                   extrapolation=d.get("extrapolation", "hold"))


class RelaxationPath(enum.StrEnum):
    """How one cell's relaxation deviate evolves in time."""

    #: one deviate per cell, g = g_prog + m + s(t) z (NeuRRAM-like published marginals)
    COMMON_DEVIATE = "common_deviate"
    #: a Wiener process in the clock s(g, t)^2 (independent increments; s must grow in t)
    INDEPENDENT_INCREMENTS = "independent_increments"


class ConditionOn(enum.StrEnum):
    """Which conductance the relaxation curves are evaluated at."""

    INPUT = "input"            # the target (or first read) handed to program()
    PROGRAMMED = "programmed"  # g_prog, the state after programming


@dataclass(frozen=True)
class Relaxation:
    """g(t) = g_prog + m(g, t) + s(g, t) z (RRAM relaxation or published marginals)."""

    mean: TimeSurface | None
    """m(g, t): mean shift [S] (None: zero)."""
    spread: TimeSurface
    """s(g, t): standard deviation of the relaxation [S]."""
    path: RelaxationPath = RelaxationPath.INDEPENDENT_INCREMENTS
    """Trajectory of the deviate (see :class:`RelaxationPath`)."""
    condition_on: ConditionOn = ConditionOn.PROGRAMMED
    """g at which m and s are evaluated (see :class:`ConditionOn`)."""

    def __post_init__(self):
        object.__setattr__(self, "path", coerce_enum(RelaxationPath, self.path, "path"))
        object.__setattr__(self, "condition_on", coerce_enum(ConditionOn, self.condition_on,
                                                       "condition_on"))
        if self.spread.units != "S" or (self.mean is not None and self.mean.units != "S"):
            raise ConfigError("relaxation mean and spread must be in S")

    def to_dict(self):
        return {"type": "relaxation", "mean": None if self.mean is None else self.mean.to_dict(),
                "spread": self.spread.to_dict(), "path": self.path.value,
                "condition_on": self.condition_on.value}

    @classmethod
    def from_dict(cls, d):
        m = d.get("mean")
        return cls(mean=None if m is None else TimeSurface.from_dict(m),
                   spread=TimeSurface.from_dict(d["spread"]), path=d.get("path"),
                   condition_on=d.get("condition_on"))


# ---------------------------------------------------------------------------- read noise


class NoiseScaling(enum.StrEnum):
    """How the 1/f amplitude scales."""

    RELATIVE = "relative"   # sigma_r = |g(t)| Q(g_prog) sqrt(u)   (Q dimensionless)
    ABSOLUTE = "absolute"   # sigma_r = A(g_prog) sqrt(u)          (A in S)


class ReadNoiseStructure(enum.StrEnum):
    """How the 1/f read noise of one cell's reads at different times is correlated.

    Each structure has the marginal spread amplitude * sqrt(u(t)) per read
    (u(t) = ln((t + t0 + t_r) / (2 t_r))); they differ in the covariance of two reads of
    one cell at u_1 <= u_2 (in units of amplitude^2):
    """

    RANDOM_WALK = "random-walk"
    """Accumulated: a Wiener process W(u) per cell, covariance u_1 (reads a day and a year
    apart correlate as sqrt(u_1/u_2), about 0.9 for PCM)."""
    INDEPENDENT = "independent"
    """Drawn afresh at every read (IBM aihwkit's ``PCMLikeNoiseModel``), covariance 0."""
    BOTH = "both"
    """The sum of a random walk and an independent draw, each of the full amplitude
    (marginal variance 2 amplitude^2 u), covariance u_1."""


class ReadNoiseLaw(enum.StrEnum):
    """How the 1/f read noise e (of any :class:`ReadNoiseStructure`) enters a read of a
    fitted power law (:class:`~xbarlab.devices.fitted.FittedPowerLaw`)."""

    LOG = "log"
    """On ln g: the read is g(t) e^e (log-normal reads, never 0 S)."""
    LINEAR = "linear"
    """On g, with a standard deviation proportional to g: the read is g(t) (1 + e),
    clamped at 0 S (aihwkit's ``PCMLikeNoiseModel`` and the ``pcm-ibm-2020`` preset)."""


@dataclass(frozen=True)
class ReadNoise:
    """1/f read noise of a :class:`ReadNoiseStructure` plus independent short-term noise.

    u(t) = ln((t + t0 + t_r) / (2 t_r)), clipped at 0. ``RANDOM_WALK``: reads of one cell
    at t_1 < t_2 share the path up to u(t_1) and add an independent increment of variance
    u(t_2) - u(t_1), so the marginal at each t is amplitude * sqrt(u(t)).
    ``INDEPENDENT``: every read draws amplitude * sqrt(u(t)) * z afresh (z ~ N(0, 1),
    keyed like the short-term noise, so a new draw per call). ``BOTH``: the sum of the two.
    """

    amplitude: Curve | None
    """Q(g_prog) [1] (RELATIVE) or A(g_prog) [S] (ABSOLUTE); None: no 1/f noise."""
    t_r: float = 250e-9
    """t_r: duration of one read [s]."""
    t0: float = 0.0
    """t0: offset added to t in u(t) [s] (PCM presets use the drift t0)."""
    scaling: NoiseScaling = NoiseScaling.RELATIVE
    """Whether the amplitude multiplies g(t) (see :class:`NoiseScaling`)."""
    short_term: Curve | None = None
    """sigma_s(g_prog): std of independent read-to-read noise [S] (None: zero)."""
    structure: ReadNoiseStructure = ReadNoiseStructure.RANDOM_WALK
    """How the 1/f noise of a cell's reads is correlated in time
    (:class:`ReadNoiseStructure`; files without the key load as random walk)."""

    def __post_init__(self):
        object.__setattr__(self, "scaling", coerce_enum(NoiseScaling, self.scaling, "scaling"))
        object.__setattr__(self, "structure",
                           coerce_enum(ReadNoiseStructure, self.structure, "structure"))
        _finite("t_r", self.t_r, lo=1e-300)
        _finite("t0", self.t0, lo=0.0)
        want = "1" if self.scaling is NoiseScaling.RELATIVE else "S"
        if self.amplitude is not None and self.amplitude.units != want:
            raise ConfigError(f"{self.scaling.value} 1/f amplitude must be in {want!r}, got "
                              f"{self.amplitude.units!r}")
        if self.short_term is not None and self.short_term.units != "S":
            raise ConfigError("short-term read noise must be in S")

    def u(self, t) -> np.ndarray:
        """The 1/f clock u(t) [1] at times ``t`` [s], clipped at 0."""
        t = np.asarray(t, dtype=np.float64)
        return np.maximum(np.log((t + self.t0 + self.t_r) / (2.0 * self.t_r)), 0.0)

    def to_dict(self):
        return {"amplitude": _opt_curve(self.amplitude), "t_r": _q(self.t_r, "s"),
                "t0": _q(self.t0, "s"), "scaling": self.scaling.value,
                "short_term": _opt_curve(self.short_term), "structure": self.structure.value}

    @classmethod
    def from_dict(cls, d):
        c = "read noise"
        return cls(amplitude=_curve_or_none(d, "amplitude"), t_r=_num(d, "t_r", "s", c),
                   t0=_num(d, "t0", "s", c, 0.0), scaling=d.get("scaling", "relative"),
                   short_term=_curve_or_none(d, "short_term"),
                   structure=d.get("structure", ReadNoiseStructure.RANDOM_WALK.value))
