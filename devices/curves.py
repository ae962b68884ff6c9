"""Curves: parametric or tabulated functions y(g) of a conductance g [S].

Device statistics (programming bias and spread, drift-exponent mean and spread,
read-noise coefficients) are curves of the conductance. Published fits are
polynomials or clipped logarithms of x = g / x_scale; calibrated fits are tables.

- :class:`Polynomial`: y = clip(sum_k c_k x^k, lo, hi)
- :class:`LogLinear`: y = clip(a log_base(max(x, x_floor)) + b, lo, hi)
- :class:`PowerLaw`: y = clip(a max(x, x_floor)^p + b, lo, hi)
- :class:`Table`: y linear between (g_k, y_k); outside the grid y holds its edge value
  (a fitted model uses its edge statistics beyond the fitted range)
- :class:`Piecewise`: one of the above per interval of g (breakpoints in S)
- :func:`simultaneous_band`: a band that holds a whole curve (or any vector of
  estimates) with a stated probability, from its bootstrap replicates
- :class:`FittedCurve`: a table fitted by :mod:`xbarlab.calibration`, with its bootstrap
  replicates, evaluated with ``numpy.interp`` (edge values held) by the blocks of
  :mod:`xbarlab.devices.fitted` and :mod:`xbarlab.devices.relaxation_table`

Every curve has ``units`` (of y: "S", "1", ...), evaluates on numpy arrays with
``curve(g)`` (the same Numba code the samplers use), and serialises with
``to_dict``/``from_dict`` to a tree of :class:`xbarlab.formats.Quantity` leaves.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, DataFormatError
from ..formats import Quantity

__all__ = [
    "CurveKind",
    "Polynomial",
    "LogLinear",
    "PowerLaw",
    "Table",
    "Piecewise",
    "Curve",
    "FittedCurve",
    "tree_array",
    "constant",
    "curve_from_dict",
    "encode_curves",
]


class CurveKind(enum.StrEnum):
    """The closed set of curve shapes."""

    POLYNOMIAL = "polynomial"
    LOG_LINEAR = "log_linear"
    POWER_LAW = "power_law"
    TABLE = "table"
    PIECEWISE = "piecewise"


def _f(x, name) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {x!r}") from None
    if math.isnan(v):
        raise ConfigError(f"{name} must not be NaN")
    return v


def _check_clip(lo, hi, x_scale=1.0):
    if not lo <= hi:
        raise ConfigError(f"clip bounds need lo <= hi, got lo={lo}, hi={hi}")
    if not (math.isfinite(x_scale) and x_scale > 0):
        raise ConfigError(f"x_scale must be a finite conductance > 0 S, got {x_scale}")


def _q(v, units):
    return Quantity(np.asarray(v, dtype=np.float64) if np.ndim(v) else float(v), units)


def tree_array(tree: Mapping[str, Any], key: str, units: str, where: str) -> np.ndarray:
    """``tree[key]``, a quantity in ``units``, as a float64 array (0-d for scalars).

    ``where``: what the tree describes, for the DataFormatError raised when the key is
    missing, not a quantity, or in other units.
    """
    try:
        item = tree[key]
    except KeyError:
        raise DataFormatError(f"{where}: missing {key!r}") from None
    if not isinstance(item, Quantity):
        raise DataFormatError(f"{where}: {key!r} must be a quantity with units {units!r}")
    return np.asarray(item.expect(units, f"{where}.{key}"), dtype=np.float64)


class _CurveBase:
    units: str

    def __call__(self, g) -> np.ndarray:
        """Evaluate at conductances ``g`` [S] (any shape); returns y in ``self.units``."""
        from .kernels import curve_array

        arr = np.asarray(g, dtype=np.float64)
        spec = np.asarray(encode_curves([self])[0], dtype=np.float64)
        out = np.empty(arr.size)
        curve_array(spec, 0, np.ascontiguousarray(arr.ravel()), out)
        return out.reshape(arr.shape)

    def _leaf_code(self) -> list[float]:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class Polynomial(_CurveBase):
    """y = clip(sum_k coeffs[k] * x**k, lo, hi) with x = g / x_scale."""

    coeffs: tuple[float, ...]
    """c_k: polynomial coefficients, lowest order first [units of y]."""
    x_scale: float = 1.0
    """g_ref: conductance that x is measured in, x = g / g_ref [S] (e.g. g_max)."""
    units: str = "S"
    """Unit of y ("S" for conductances, "1" for dimensionless)."""
    lo: float = -math.inf
    """Lower clip of y [units]."""
    hi: float = math.inf
    """Upper clip of y [units]."""

    def __post_init__(self):
        c = tuple(_f(v, "polynomial coefficient") for v in self.coeffs)
        if not c:
            raise ConfigError("a polynomial needs at least one coefficient")
        object.__setattr__(self, "coeffs", c)
        _check_clip(self.lo, self.hi, self.x_scale)
        Quantity(0.0, self.units)

    def _leaf_code(self):
        return [0.0, 1.0 / self.x_scale, self.lo, self.hi, float(len(self.coeffs)),
                *self.coeffs]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": CurveKind.POLYNOMIAL.value, "units": self.units,
                "coeffs": _q(self.coeffs, self.units), "x_scale": _q(self.x_scale, "S"),
                "lo": _q(self.lo, self.units), "hi": _q(self.hi, self.units)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Polynomial:
        u = d["units"]
        return cls(coeffs=tuple(np.atleast_1d(tree_array(d, "coeffs", u, "polynomial"))),
                   x_scale=float(tree_array(d, "x_scale", "S", "polynomial")), units=u,
                   lo=float(tree_array(d, "lo", u, "polynomial")),
                   hi=float(tree_array(d, "hi", u, "polynomial")))


@dataclass(frozen=True)
class LogLinear(_CurveBase):
    """y = clip(a * log_base(max(x, x_floor)) + b, lo, hi) with x = g / x_scale."""

    a: float
    """Slope per unit of log_base(x) [units of y]."""
    b: float
    """Value at x = 1 [units of y]."""
    x_scale: float = 1.0
    """g_ref: x = g / g_ref [S]."""
    x_floor: float = 1e-7
    """Smallest x fed to the logarithm [1]."""
    units: str = "1"
    """Unit of y."""
    lo: float = -math.inf
    """Lower clip of y [units]."""
    hi: float = math.inf
    """Upper clip of y [units]."""
    log_base: float = math.e
    """Base of the logarithm [1] (e by default; 10 for laws published in log10)."""

    def __post_init__(self):
        for k in ("a", "b"):
            object.__setattr__(self, k, _f(getattr(self, k), k))
        if not (self.x_floor > 0):
            raise ConfigError(f"x_floor must be > 0, got {self.x_floor}")
        if not (math.isfinite(self.log_base) and self.log_base > 0 and self.log_base != 1):
            raise ConfigError(f"log_base must be > 0 and != 1, got {self.log_base}")
        _check_clip(self.lo, self.hi, self.x_scale)
        Quantity(0.0, self.units)

    def _leaf_code(self):
        return [1.0, 1.0 / self.x_scale, self.lo, self.hi, math.log(self.x_floor),
                self.a / math.log(self.log_base), self.b, math.log(self.x_scale)]

    def to_dict(self):
        u = self.units
        return {"kind": CurveKind.LOG_LINEAR.value, "units": u, "a": _q(self.a, u),
                "b": _q(self.b, u), "x_scale": _q(self.x_scale, "S"),
                "x_floor": _q(self.x_floor, "1"), "lo": _q(self.lo, u), "hi": _q(self.hi, u),
                "log_base": _q(self.log_base, "1")}

    @classmethod
    def from_dict(cls, d):
        u = d["units"]
        return cls(a=float(tree_array(d, "a", u, "log_linear")),
                   b=float(tree_array(d, "b", u, "log_linear")),
                   x_scale=float(tree_array(d, "x_scale", "S", "log_linear")),
                   x_floor=float(tree_array(d, "x_floor", "1", "log_linear")), units=u,
                   lo=float(tree_array(d, "lo", u, "log_linear")),
                   hi=float(tree_array(d, "hi", u, "log_linear")),
                   log_base=float(tree_array(d, "log_base", "1", "log_linear"))
                   if "log_base" in d else math.e)


@dataclass(frozen=True)
class PowerLaw(_CurveBase):
    """y = clip(a * max(x, x_floor)**p + b, lo, hi) with x = g / x_scale."""

    a: float
    """Prefactor [units of y]."""
    p: float
    """Exponent [1]."""
    b: float = 0.0
    """Offset [units of y]."""
    x_scale: float = 1.0
    """g_ref: x = g / g_ref [S]."""
    x_floor: float = 1e-7
    """Smallest x used [1]."""
    units: str = "1"
    """Unit of y."""
    lo: float = -math.inf
    """Lower clip of y [units]."""
    hi: float = math.inf
    """Upper clip of y [units]."""

    def __post_init__(self):
        for k in ("a", "p", "b"):
            object.__setattr__(self, k, _f(getattr(self, k), k))
        if not (self.x_floor > 0):
            raise ConfigError(f"x_floor must be > 0, got {self.x_floor}")
        _check_clip(self.lo, self.hi, self.x_scale)
        Quantity(0.0, self.units)

    def _leaf_code(self):
        return [2.0, 1.0 / self.x_scale, self.lo, self.hi, math.log(self.x_floor), self.a,
                self.p, self.b, math.log(self.x_scale)]

    def to_dict(self):
        u = self.units
        return {"kind": CurveKind.POWER_LAW.value, "units": u, "a": _q(self.a, u),
                "p": _q(self.p, "1"), "b": _q(self.b, u), "x_scale": _q(self.x_scale, "S"),
                "x_floor": _q(self.x_floor, "1"), "lo": _q(self.lo, u), "hi": _q(self.hi, u)}

    @classmethod
    def from_dict(cls, d):
        u = d["units"]
        return cls(a=float(tree_array(d, "a", u, "power_law")),
                   p=float(tree_array(d, "p", "1", "power_law")),
                   b=float(tree_array(d, "b", u, "power_law")),
                   x_scale=float(tree_array(d, "x_scale", "S", "power_law")),
                   x_floor=float(tree_array(d, "x_floor", "1", "power_law")), units=u,
                   lo=float(tree_array(d, "lo", u, "power_law")),
                   hi=float(tree_array(d, "hi", u, "power_law")))


@dataclass(frozen=True, eq=False)
class Table(_CurveBase):
    """y linear in g between grid points; edge values held outside the grid."""

    g: np.ndarray
    """g_k: strictly increasing grid of conductances [S]."""
    y: np.ndarray
    """y_k: values at the grid points [units]."""
    units: str = "S"
    """Unit of y."""

    def __post_init__(self):
        g = np.array(self.g, dtype=np.float64).ravel()
        y = np.array(self.y, dtype=np.float64).ravel()
        if g.size < 1 or g.shape != y.shape:
            raise ConfigError(f"a table needs g and y of one equal, non-zero length; got "
                              f"{g.size} and {y.size}")
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(y))):
            raise ConfigError("table g and y must be finite (no NaN)")
        if np.any(np.diff(g) <= 0):
            raise ConfigError(f"table g grid must be strictly increasing, got {g}")
        g.flags.writeable = False
        y.flags.writeable = False
        object.__setattr__(self, "g", g)
        object.__setattr__(self, "y", y)
        Quantity(0.0, self.units)

    def __eq__(self, other):
        return (isinstance(other, Table) and self.units == other.units
                and np.array_equal(self.g, other.g) and np.array_equal(self.y, other.y))

    __hash__ = None

    def _leaf_code(self):
        return [3.0, 1.0, -math.inf, math.inf, float(self.g.size), *self.g, *self.y]

    def to_dict(self):
        return {"kind": CurveKind.TABLE.value, "units": self.units, "g": _q(self.g, "S"),
                "y": _q(self.y, self.units)}

    @classmethod
    def from_dict(cls, d):
        u = d["units"]
        return cls(g=np.atleast_1d(tree_array(d, "g", "S", "table")),
                   y=np.atleast_1d(tree_array(d, "y", u, "table")), units=u)


Leaf = Polynomial | LogLinear | PowerLaw | Table


@dataclass(frozen=True)
class Piecewise(_CurveBase):
    """pieces[k] applies for breaks[k-1] <= g < breaks[k] (first/last piece open-ended)."""

    breaks: tuple[float, ...]
    """Breakpoints in g, increasing [S]; len(pieces) - 1 of them."""
    pieces: tuple[Leaf, ...]
    """The curves of each interval (not themselves piecewise), all with the same units."""
    units: str = "1"
    """Unit of y."""

    def __post_init__(self):
        b = tuple(_f(v, "breakpoint") for v in self.breaks)
        object.__setattr__(self, "breaks", b)
        object.__setattr__(self, "pieces", tuple(self.pieces))
        if len(self.pieces) != len(b) + 1:
            raise ConfigError(f"piecewise curve needs len(breaks) + 1 pieces; got {len(b)} "
                              f"breaks and {len(self.pieces)} pieces")
        if any(np.diff(b) <= 0):
            raise ConfigError(f"piecewise breaks must be increasing, got {b}")
        for p in self.pieces:
            if isinstance(p, Piecewise) or not isinstance(p, _CurveBase):
                raise ConfigError("pieces of a piecewise curve must be leaf curves")
            if p.units != self.units:
                raise ConfigError(f"piece units {p.units!r} differ from {self.units!r}")

    def to_dict(self):
        return {"kind": CurveKind.PIECEWISE.value, "units": self.units,
                "breaks": _q(np.asarray(self.breaks, dtype=np.float64), "S"),
                "n_pieces": len(self.pieces),
                "pieces": {str(k): p.to_dict() for k, p in enumerate(self.pieces)}}

    @classmethod
    def from_dict(cls, d):
        n = int(d["n_pieces"])
        pieces = tuple(curve_from_dict(d["pieces"][str(k)]) for k in range(n))
        br = np.atleast_1d(tree_array(d, "breaks", "S", "piecewise")) if n > 1 else ()
        return cls(breaks=tuple(float(v) for v in br), pieces=pieces, units=d["units"])


Curve = Polynomial | LogLinear | PowerLaw | Table | Piecewise

_KINDS = {CurveKind.POLYNOMIAL: Polynomial, CurveKind.LOG_LINEAR: LogLinear,
          CurveKind.POWER_LAW: PowerLaw, CurveKind.TABLE: Table, CurveKind.PIECEWISE: Piecewise}


def constant(value: float, units: str = "S") -> Polynomial:
    """The constant curve y = value [units]."""
    return Polynomial((float(value),), units=units)


def curve_from_dict(d: Mapping[str, Any]) -> Curve:
    """Rebuild any curve from its ``to_dict`` tree."""
    try:
        kind = CurveKind(d["kind"])
    except (KeyError, ValueError):
        raise DataFormatError(
            f"curve kind {d.get('kind')!r} unknown; expected one of {[k.value for k in CurveKind]}"
        ) from None
    if "units" not in d:
        raise DataFormatError("curve lacks 'units'")
    return _KINDS[kind].from_dict(d)


def needs_log(curve) -> bool:
    """True when evaluating ``curve`` uses ln(g) (logarithmic or power-law leaves)."""
    if curve is None:
        return False
    leaves = curve.pieces if isinstance(curve, Piecewise) else (curve,)
    return any(isinstance(leaf, (LogLinear, PowerLaw)) for leaf in leaves)


def encode_curves(curves) -> tuple[list[float], list[int]]:
    """Flat float program of several curves and the offset of each (None -> -1)."""
    spec: list[float] = []
    offs: list[int] = []
    for c in curves:
        if c is None:
            offs.append(-1)
            continue
        leaves = list(c.pieces) if isinstance(c, Piecewise) else [c]
        breaks = list(c.breaks) if isinstance(c, Piecewise) else []
        off = len(spec)
        n = len(leaves)
        spec.extend([float(n), *breaks, *([0.0] * n)])
        for k, leaf in enumerate(leaves):
            spec[off + n + k] = float(len(spec))
            spec.extend(leaf._leaf_code())
        offs.append(off)
    return spec, offs


@dataclass(frozen=True, eq=False)
class FittedCurve:
    """A function of conductance fitted on a grid, with bootstrap replicates.

    Evaluated by linear interpolation (``numpy.interp``), edge values held outside the
    grid. Unlike :class:`Table` it is not compiled into the Numba kernels: the fitted
    blocks that hold it sample with numpy.
    """

    g: np.ndarray
    """Grid of conductances [S], strictly increasing."""
    value: np.ndarray
    """The fitted function on the grid [``units``]."""
    units: str
    """SI unit of ``value`` ("S" or "1")."""
    boot: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    """Bootstrap replicates shaped (B, len(g)) from refits on resampled devices [units]."""

    def __post_init__(self):
        g = np.asarray(self.g, dtype=np.float64)
        v = np.asarray(self.value, dtype=np.float64)
        if g.ndim != 1 or g.shape != v.shape or g.size < 1:
            raise ConfigError(f"a fitted curve needs 1-D g and value of one shape, got "
                              f"{g.shape}, {v.shape}")
        if g.size > 1 and np.any(np.diff(g) <= 0):
            raise ConfigError("fitted curve grid g must be strictly increasing")
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(v))):
            raise ConfigError("fitted curve grid and values must be finite")
        object.__setattr__(self, "g", g)
        object.__setattr__(self, "value", v)
        boot = np.asarray(self.boot, dtype=np.float64)
        if boot.size == 0:
            boot = np.zeros((0, g.size))
        object.__setattr__(self, "boot", boot)

    def __call__(self, x) -> np.ndarray:
        """The curve at conductances ``x`` [S] (any shape) [units]."""
        return np.interp(x, self.g, self.value)

    def band(self, level: float = 0.95, *,
             simultaneous: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap band on the grid (lower, upper) [units].

        ``level`` [1]: coverage. Pointwise (default): the percentile band of each grid
        point, which holds a true curve at a share ``level`` of the points.
        ``simultaneous=True``: :func:`simultaneous_band` of the replicates, which holds the
        whole true curve at every grid point together with probability ``level``; it
        needs >= 20 replicates (:class:`~xbarlab.errors.DataFormatError` otherwise).
        A curve with fewer than 2 replicates has the band [value, value] either way.
        """
        if self.boot.shape[0] < 2:
            return self.value.copy(), self.value.copy()
        if simultaneous:
            return simultaneous_band(self.boot, level)
        a = (1 - level) / 2
        return (np.quantile(self.boot, a, axis=0), np.quantile(self.boot, 1 - a, axis=0))

    def to_dict(self) -> dict[str, Any]:
        """Grid, values and replicates as quantities (keys g, value, bootstrap)."""
        return {"g": _q(self.g, "S"), "value": Quantity(np.asarray(self.value), self.units),
                "bootstrap": Quantity(np.asarray(self.boot), self.units)}

    @staticmethod
    def from_dict(tree: Mapping[str, Any], units: str, where: str) -> FittedCurve:
        """Inverse of :meth:`to_dict`; ``units``: expected unit, ``where``: path for errors."""
        return FittedCurve(tree_array(tree, "g", "S", where),
                           tree_array(tree, "value", units, where), units,
                           tree_array(tree, "bootstrap", units, where))


def simultaneous_band(replicates, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous band of a vector of estimates from its bootstrap replicates.

    A pointwise 95 % band of k estimates misses some true value with probability up to
    1 - 0.95^k (97 % for k = 68, independent estimates). This band holds all k true values
    together with probability ``level``: the sup-t band (Montiel Olea and Plagborg-Moller,
    J. Appl. Econometrics 34, 1, 2019) with one scale per side, so that skewed estimates
    (a fraction near 0, a spread) keep their asymmetry. Each estimate j has centre m_j
    (the replicates' median) and scales l_j = m_j - q_j(0.1587), u_j = q_j(0.8413) - m_j
    (one standard deviation for a normal); replicate r deviates by
    z_r = max_j max((m_j - x_rj) / l_j, (x_rj - m_j) / u_j), c is the ``level`` quantile of
    z_r, and the band is [m_j - c l_j, m_j + c u_j]. For one estimate c is the pointwise
    quantile, for k independent normal estimates the Sidak value
    Phi^-1((1 + level^(1/k)) / 2). A side whose scale is 0 (at least 34 % of the
    replicates at the centre) takes no part in z; its edge is the replicates' extreme on
    that side. The edges extend each side's scale linearly, so for an estimate bounded by
    a physical limit (a spread or amplitude >= 0) an edge can pass that limit: clip it
    there (the shipped PCM example's sigma_nu at its lowest level: [-0.0001, 0.19]).

    Parameters
    ----------
    replicates : array_like, shape (B, ...)
        B >= 20 bootstrap replicates of the estimates, finite [any unit].
    level : float
        Joint coverage, 0 < level < 1 [1].

    Returns
    -------
    (lower, upper) : numpy.ndarray, shape (...)
        The band [unit of ``replicates``].
    """
    r = np.asarray(replicates, dtype=np.float64)
    if not 0.0 < level < 1.0:
        raise ConfigError(f"level must lie in (0, 1), got {level!r}")
    if r.ndim < 1 or r.shape[0] < 20:
        raise DataFormatError(f"a simultaneous band needs >= 20 replicates along axis 0, "
                              f"got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise DataFormatError("bootstrap replicates must be finite")
    flat = r.reshape(r.shape[0], -1)
    q_lo, m, q_hi = np.quantile(flat, [0.15866, 0.5, 0.84134], axis=0)
    lo_s, hi_s = m - q_lo, q_hi - m
    with np.errstate(divide="ignore", invalid="ignore"):
        z_lo = np.where(lo_s > 0, (m - flat) / lo_s, 0.0)
        z_hi = np.where(hi_s > 0, (flat - m) / hi_s, 0.0)
    c = float(np.quantile(np.maximum(z_lo, z_hi).max(axis=1), level))
    lower = np.where(lo_s > 0, m - c * lo_s, flat.min(axis=0))
    upper = np.where(hi_s > 0, m + c * hi_s, flat.max(axis=0))
    return lower.reshape(r.shape[1:]), upper.reshape(r.shape[1:])
