"""Pulsed-update device models: how one programming pulse moves a cell's conductance.

Inference models (:mod:`xbarlab.devices.composite`) describe a cell written once and read
many times; a :class:`PulsedDevice` describes a cell trained in place, moved up or down by
identical pulses whose effect depends on the state. Everything is in siemens.

A pulse in direction d (+1 up, -1 down) at conductance g changes it by

    dg = d * A_d(g) * gain_d * (1 + c2c * xi) + table noise + write_noise * eta,

clipped to [g_min, g_max], where A_d(g) >= 0 is the step rule's mean magnitude, gain_d the
cell's device-to-device gain (1 for the nominal cell; ``1 + d2d * z`` per cell, z ~ N(0, 1),
see :meth:`PulsedDevice.draw_gains`), xi, eta ~ N(0, 1) fresh every pulse, and "table noise"
the spread of a measured :class:`StepTable` about its mean. With x = (g - g_min) /
(g_max - g_min) in [0, 1] the rules are (amplitudes a_up, a_down [S], exponents gamma [1]):

- :class:`ConstantStep`: A_up = a_up, A_down = a_down;
- :class:`SoftBounds`: A_up = a_up (1 - x), A_down = a_down x (linear in the state; aihwkit's
  LinearStep/SoftBounds, the asymmetric linear device of Wu et al. 2024);
- :class:`ExpStep`: A_up = a_up exp(-gamma_up x), A_down = a_down exp(-gamma_down (1 - x));
- :class:`PowStep`: A_up = a_up (1 - x)^gamma_up, A_down = a_down x^gamma_down;
- :class:`StepTable`: measured step quantiles per conductance bin, up and down.

So every amplitude is the mean step at the bound where that direction's step is largest
(g_min for up, g_max for down). The expected step and its variance are stated before the
clip at the bounds (the clip only matters within one step of a bound).

:class:`WeightDomain` maps a device to the normalised weights the training algorithms use
(w = 0 at the symmetric point, response factors q_up(w), q_down(w) equal to 1 there; for the
symmetric soft-bounds device q = 1 -+ w / tau as in Wu, Gokmen, Rasch, Chen 2024,
arXiv 2406.12774).
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..checks import check_rng
from ..enums import coerce_enum
from ..errors import ConfigError, DataFormatError
from ..formats import Quantity

__all__ = [
    "ConstantStep",
    "SoftBounds",
    "ExpStep",
    "PowStep",
    "Interpolation",
    "StepTable",
    "StepRule",
    "PulsedDevice",
    "WeightDomain",
    "rule_from_dict",
]


def _num(name, v, *, lo=-math.inf, hi=math.inf):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {v!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {v}")
    if not lo <= v <= hi:
        raise ConfigError(f"{name} = {v!r} outside the allowed range [{lo}, {hi}]")
    return v


def _q(v, units):
    return Quantity(np.asarray(v, dtype=np.float64).tolist() if np.ndim(v) else float(v),
                    units)


def _get(tree: Mapping[str, Any], key: str, units: str, where: str):
    """``tree[key]`` as float / float64 array: a Quantity in ``units``, a JSON mapping
    ``{"value": ..., "units": ...}``, or a bare number (taken as SI)."""
    if key not in tree:
        raise DataFormatError(f"{where}: missing {key!r}")
    item = tree[key]
    if isinstance(item, Mapping) and "value" in item:
        item = Quantity(item["value"], str(item.get("units", units)))
    if isinstance(item, Quantity):
        item = item.expect(units, f"{where}.{key}")
    arr = np.asarray(item, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _conductance(g) -> np.ndarray:
    try:
        g = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"g must be conductances [S], got {g!r}") from None
    if not np.all(np.isfinite(g)):
        bad = np.ravel(g)[~np.isfinite(np.ravel(g))][:3].tolist()
        raise ConfigError(f"g must be finite conductances [S], got {bad}")
    return g


def _direction(direction) -> np.ndarray:
    d = np.asarray(direction)
    if not np.all((d == 1) | (d == -1)):
        bad = d[(d != 1) & (d != -1)].ravel()[:1]
        raise ConfigError(f"direction must be +1 (up) or -1 (down), got {bad.tolist()}")
    return d.astype(np.float64)


# ----------------------------------------------------------------------- parametric rules


@dataclass(frozen=True)
class _Amplitudes:
    a_up: float = 1e-7
    """a_up: mean step of an up pulse where it is largest (at g_min) [S], > 0."""
    a_down: float = 1e-7
    """a_down: mean magnitude of a down pulse where it is largest (at g_max) [S], > 0."""

    kind: ClassVar[str] = ""

    def __post_init__(self):
        for name in ("a_up", "a_down"):
            v = getattr(self, name)
            if isinstance(v, int | float | np.floating) and math.isfinite(float(v)) and v <= 0:
                raise ConfigError(f"{name} = {v!r}: a step amplitude must be > 0 S")
            object.__setattr__(self, name, _num(name, v, lo=1e-300))

    def _shapes(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    def mean(self, g, direction, g_min: float, g_max: float) -> np.ndarray:
        """Mean step magnitude A_d(g) [S] of a pulse in ``direction`` at ``g`` [S] (>= 0)."""
        x = (np.asarray(g, dtype=np.float64) - g_min) / (g_max - g_min)
        up, down = self._shapes(x)
        d = np.asarray(direction)
        return np.where(d > 0, self.a_up * up, self.a_down * down)

    def variance(self, g, direction, g_min: float, g_max: float) -> np.ndarray:
        """Spread of the step the rule itself carries [S^2]: 0 for parametric rules."""
        return np.zeros(np.broadcast_shapes(np.shape(g), np.shape(direction)))

    def symmetric_x(self) -> float:
        """x* in [0, 1] where the up and down means are equal (NaN: none)."""
        return _root_x(self)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind, "a_up": _q(self.a_up, "S"), "a_down": _q(self.a_down, "S")}
        for name in ("gamma_up", "gamma_down"):
            if hasattr(self, name):
                d[name] = _q(getattr(self, name), "1")
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        where = f"{cls.kind} step rule"
        kw = {"a_up": _get(d, "a_up", "S", where), "a_down": _get(d, "a_down", "S", where)}
        for name in ("gamma_up", "gamma_down"):
            if name in cls.__dataclass_fields__:
                kw[name] = _get(d, name, "1", where)
        return cls(**kw)


def _root_x(rule) -> float:
    """x in [0, 1] where mean up = mean down, by bisection on up - down (NaN if no sign
    change: one direction dominates everywhere)."""
    def f(x):
        u, dn = rule._shapes(np.asarray(x, dtype=np.float64))
        return float(rule.a_up * u - rule.a_down * dn)

    lo, hi = 0.0, 1.0
    flo, fhi = f(lo), f(hi)
    if flo == 0.0:
        return 0.0
    if fhi == 0.0:
        return 1.0
    if flo * fhi > 0:
        return math.nan
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if fm == 0.0 or hi - lo < 1e-15:
            return mid
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class ConstantStep(_Amplitudes):
    """A_up = a_up, A_down = a_down [S], whatever the state (hard bounds only).

    Symmetric point: none unless a_up == a_down, when every state is one (the midpoint
    is reported).
    """

    kind: ClassVar[str] = "constant"

    def _shapes(self, x):
        one = np.ones_like(np.asarray(x, dtype=np.float64))
        return one, one

    def symmetric_x(self) -> float:
        return 0.5 if self.a_up == self.a_down else math.nan


@dataclass(frozen=True)
class SoftBounds(_Amplitudes):
    """A_up = a_up (1 - x), A_down = a_down x: linear in the state, zero at the far bound.

    Symmetric point x* = a_up / (a_up + a_down).
    """

    kind: ClassVar[str] = "soft_bounds"

    def _shapes(self, x):
        x = np.asarray(x, dtype=np.float64)
        return 1.0 - x, x

    def symmetric_x(self) -> float:
        return self.a_up / (self.a_up + self.a_down)


@dataclass(frozen=True)
class ExpStep(_Amplitudes):
    """A_up = a_up exp(-gamma_up x), A_down = a_down exp(-gamma_down (1 - x)).

    Symmetric point x* = (ln(a_up / a_down) + gamma_down) / (gamma_up + gamma_down) when it
    lies in [0, 1] (NaN otherwise; for gamma_up = gamma_down = 0 as :class:`ConstantStep`).
    """

    gamma_up: float = 1.0
    """gamma_up: decay rate of the up step across the range [1], >= 0."""
    gamma_down: float = 1.0
    """gamma_down: decay rate of the down step across the range [1], >= 0."""
    kind: ClassVar[str] = "exp"

    def __post_init__(self):
        super().__post_init__()
        _num("gamma_up", self.gamma_up, lo=0.0)
        _num("gamma_down", self.gamma_down, lo=0.0)

    def _shapes(self, x):
        x = np.asarray(x, dtype=np.float64)
        return np.exp(-self.gamma_up * x), np.exp(-self.gamma_down * (1.0 - x))

    def symmetric_x(self) -> float:
        s = self.gamma_up + self.gamma_down
        if s == 0.0:
            return 0.5 if self.a_up == self.a_down else math.nan
        x = (math.log(self.a_up / self.a_down) + self.gamma_down) / s
        return x if 0.0 <= x <= 1.0 else math.nan


@dataclass(frozen=True)
class PowStep(_Amplitudes):
    """A_up = a_up (1 - x)^gamma_up, A_down = a_down x^gamma_down (gamma = 1: soft bounds).

    Symmetric point: x* = 1 / (1 + (a_down / a_up)^(1 / gamma)) when gamma_up = gamma_down =
    gamma > 0; otherwise the root of A_up - A_down by bisection (it is unique: A_up falls and
    A_down rises with x).
    """

    gamma_up: float = 1.0
    """gamma_up: exponent of the up step's decline towards g_max [1], > 0."""
    gamma_down: float = 1.0
    """gamma_down: exponent of the down step's decline towards g_min [1], > 0."""
    kind: ClassVar[str] = "pow"

    def __post_init__(self):
        super().__post_init__()
        _num("gamma_up", self.gamma_up, lo=1e-12)
        _num("gamma_down", self.gamma_down, lo=1e-12)

    def _shapes(self, x):
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        return (1.0 - x) ** self.gamma_up, x ** self.gamma_down

    def symmetric_x(self) -> float:
        if self.gamma_up == self.gamma_down:
            return 1.0 / (1.0 + (self.a_down / self.a_up) ** (1.0 / self.gamma_up))
        return _root_x(self)


# ----------------------------------------------------------------------- measured table


class Interpolation(enum.StrEnum):
    """How a :class:`StepTable` is evaluated between its bins."""

    #: the quantiles of the bin that holds g (bins closed on the left; outside: edge bins)
    CONSTANT = "constant"
    #: quantiles interpolated linearly in g between bin centres, held beyond the outer
    #: centres (so the mean step is piecewise linear in g)
    LINEAR = "linear"


def _q_moments(levels: np.ndarray, q: np.ndarray):
    """Mean and variance of the step whose quantile function is ``q`` at ``levels``,
    linear between levels and constant (= the end quantile) below the first and above the
    last level -- the distribution :meth:`StepTable.sample` draws from. ``q``: (..., K)."""
    p = np.concatenate([[0.0], levels, [1.0]])
    qq = np.concatenate([q[..., :1], q, q[..., -1:]], axis=-1)
    w = np.diff(p)
    a, b = qq[..., :-1], qq[..., 1:]
    m1 = np.sum(w * (a + b) / 2.0, axis=-1)
    m2 = np.sum(w * (a * a + a * b + b * b) / 3.0, axis=-1)
    return m1, np.maximum(m2 - m1 * m1, 0.0)


@dataclass(frozen=True, eq=False)
class StepTable:
    """Measured step distribution by conductance bin, up and down (a lookup table).

    Bin i spans [edges[i], edges[i + 1]) [S]. For each bin and direction the table holds
    quantiles of the step *in the pulse's direction* (up: the change of g; down: minus the
    change, so a down pulse that lowers g has a positive entry) at probability ``levels``.
    The step distribution is the one whose quantile function is linear between the levels
    and flat beyond the outer ones; its mean (the expected step) and variance follow in
    closed form (:meth:`mean`, :meth:`variance`) and :meth:`sample` draws from it exactly.
    """

    edges: np.ndarray
    """Bin edges [S], strictly increasing, shape (B + 1,)."""
    levels: np.ndarray
    """Probability levels of the quantiles [1], strictly increasing in (0, 1), shape (K,)."""
    up: np.ndarray
    """Quantiles of the up-pulse step per bin [S], shape (B, K), non-decreasing along K."""
    down: np.ndarray
    """Quantiles of the down-pulse step magnitude per bin [S], shape (B, K)."""
    interpolation: Interpolation = Interpolation.CONSTANT
    """Evaluation between bins (see :class:`Interpolation`)."""

    kind: ClassVar[str] = "table"

    def __post_init__(self):
        object.__setattr__(self, "interpolation",
                           coerce_enum(Interpolation, self.interpolation, "interpolation"))
        e = np.asarray(self.edges, dtype=np.float64)
        lv = np.asarray(self.levels, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise ConfigError(f"edges must be >= 2 finite, strictly increasing conductances "
                              f"[S], got {e.tolist()}")
        if lv.ndim != 1 or lv.size < 1 or np.any(lv <= 0) or np.any(lv >= 1) or np.any(
                np.diff(lv) <= 0):
            raise ConfigError(f"levels must be strictly increasing in (0, 1), got {lv.tolist()}")
        for name in ("up", "down"):
            q = np.asarray(getattr(self, name), dtype=np.float64)
            if q.shape != (e.size - 1, lv.size):
                raise ConfigError(f"{name} must have shape (bins, levels) = "
                                  f"{(e.size - 1, lv.size)}, got {q.shape}")
            bad = ~np.all(np.isfinite(q), axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                raise ConfigError(f"{name} step quantiles of bin {i} [{e[i]:.6g}, "
                                  f"{e[i + 1]:.6g}) S are empty or not finite: {q[i].tolist()}")
            if np.any(np.diff(q, axis=1) < 0):
                i = int(np.argmax(np.any(np.diff(q, axis=1) < 0, axis=1)))
                raise ConfigError(f"{name} step quantiles of bin {i} must be non-decreasing, "
                                  f"got {q[i].tolist()}")
            object.__setattr__(self, name, q)
        object.__setattr__(self, "edges", e)
        object.__setattr__(self, "levels", lv)

    @classmethod
    def from_samples(cls, edges, g_up, step_up, g_down, step_down, *,
                     levels=None,
                     interpolation=Interpolation.CONSTANT) -> StepTable:
        """Empirical quantiles of measured steps per bin.

        Parameters
        ----------
        edges : array_like
            Bin edges [S].
        g_up, step_up : array_like
            Conductance before each up pulse [S] and the change it caused [S].
        g_down, step_down : array_like
            Conductance before each down pulse [S] and the *decrease* it caused [S].
        levels : sequence of float, optional
            Probability levels of the stored quantiles [1] (default 0.05, 0.10, ..., 0.95).
        interpolation : Interpolation
            Evaluation between bins.

        Raises
        ------
        ConfigError
            When a bin holds no step of a direction (naming the bin and its range).
        """
        e = np.asarray(edges, dtype=np.float64)
        lv = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, dtype=float)
        tabs = []
        for name, g, s in (("up", g_up, step_up), ("down", g_down, step_down)):
            g, s = np.asarray(g, dtype=np.float64), np.asarray(s, dtype=np.float64)
            idx = np.searchsorted(e, g, side="right") - 1
            rows = []
            for i in range(e.size - 1):
                si = s[idx == i]
                if si.size == 0:
                    raise ConfigError(f"bin {i} [{e[i]:.6g}, {e[i + 1]:.6g}) S holds no "
                                      f"{name} step; expected at least one per bin")
                rows.append(np.quantile(si, lv))
            tabs.append(np.array(rows))
        return cls(edges=e, levels=lv, up=tabs[0], down=tabs[1], interpolation=interpolation)

    def quantiles(self, g, direction) -> np.ndarray:
        """Step quantiles at conductances ``g`` [S] for ``direction`` (+1/-1), shape
        (*broadcast shape, K) [S]."""
        g = np.asarray(g, dtype=np.float64)
        d = np.asarray(direction)
        g, d = np.broadcast_arrays(g, d)
        nb = self.edges.size - 1
        if self.interpolation is Interpolation.CONSTANT:
            i = np.clip(np.searchsorted(self.edges, g, side="right") - 1, 0, nb - 1)
            return np.where((d > 0)[..., None], self.up[i], self.down[i])
        c = 0.5 * (self.edges[1:] + self.edges[:-1])
        j = np.clip(np.searchsorted(c, g, side="right") - 1, 0, max(nb - 2, 0))
        j1 = np.minimum(j + 1, nb - 1)
        span = np.where(j1 > j, c[j1] - c[j], 1.0)
        t = np.clip((g - c[j]) / span, 0.0, 1.0)[..., None]
        up = (1 - t) * self.up[j] + t * self.up[j1]
        down = (1 - t) * self.down[j] + t * self.down[j1]
        return np.where((d > 0)[..., None], up, down)

    def mean(self, g, direction, g_min: float = 0.0, g_max: float = 0.0) -> np.ndarray:
        """Expected step in the pulse's direction at ``g`` [S] (bounds unused)."""
        return _q_moments(self.levels, self.quantiles(g, direction))[0]

    def variance(self, g, direction, g_min: float = 0.0, g_max: float = 0.0) -> np.ndarray:
        """Variance of the step at ``g`` [S^2] (bounds unused)."""
        return _q_moments(self.levels, self.quantiles(g, direction))[1]

    def sample(self, g, direction, rng: np.random.Generator) -> np.ndarray:
        """Steps in the pulse's direction [S], one per element of ``g`` (inverse CDF)."""
        q = self.quantiles(g, direction)
        u = rng.random(q.shape[:-1])
        lv = self.levels
        k = np.clip(np.searchsorted(lv, u, side="right") - 1, 0, lv.size - 1)
        k1 = np.minimum(k + 1, lv.size - 1)
        span = np.where(k1 > k, lv[k1] - lv[k], 1.0)
        t = np.clip((u - lv[k]) / span, 0.0, 1.0)
        a = np.take_along_axis(q, k[..., None], -1)[..., 0]
        b = np.take_along_axis(q, k1[..., None], -1)[..., 0]
        return np.where(u < lv[0], q[..., 0], a + t * (b - a))

    def symmetric_x(self) -> float:  # pragma: no cover - the device finds it on g
        return math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": _q(self.edges, "S"), "levels": _q(self.levels, "1"),
                "up": _q(self.up, "S"), "down": _q(self.down, "S"),
                "interpolation": self.interpolation.value}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepTable:
        w = "step table"
        return cls(edges=_get(d, "edges", "S", w), levels=_get(d, "levels", "1", w),
                   up=_get(d, "up", "S", w), down=_get(d, "down", "S", w),
                   interpolation=d.get("interpolation", "constant"))


StepRule = ConstantStep | SoftBounds | ExpStep | PowStep | StepTable
_RULES = {c.kind: c for c in (ConstantStep, SoftBounds, ExpStep, PowStep, StepTable)}


def rule_from_dict(d: Mapping[str, Any]) -> StepRule:
    """Rebuild a step rule from its :meth:`to_dict` mapping (``kind`` selects the class)."""
    kind = d.get("kind")
    if kind not in _RULES:
        raise DataFormatError(f"step rule kind {kind!r} is unknown; known: {sorted(_RULES)}")
    return _RULES[kind].from_dict(d)


# ----------------------------------------------------------------------- the device


@dataclass(frozen=True)
class PulsedDevice:
    """A cell moved by identical up/down pulses: step rule, bounds and spreads.

    See the module docstring for the pulse equation. Every conductance is in siemens.
    """

    rule: StepRule = field(default_factory=SoftBounds)
    """Mean step vs state, up and down (the up/down amplitudes carry the asymmetry)."""
    g_min: float = 0.0
    """g_min: lower bound of the conductance [S], >= 0."""
    g_max: float = 1e-5
    """g_max: upper bound of the conductance [S], > g_min."""
    d2d: float = 0.0
    """s_d: device-to-device spread, relative std of a cell's step gain [1] (aihwkit
    dw_min_dtod; its default is 0.3)."""
    d2d_asymmetry: float = 0.0
    """s_a: relative std of a cell's up/down imbalance [1]: gain_up = gain (1 + s_a z),
    gain_down = gain (1 - s_a z) (aihwkit up_down_dtod)."""
    c2c: float = 0.0
    """s_c: cycle-to-cycle spread, relative std of each pulse's step about its mean [1]
    (aihwkit dw_min_std; its default is 0.3)."""
    write_noise: float = 0.0
    """sigma_w: std of an additive normal error of every pulse [S]."""

    def __post_init__(self):
        if not isinstance(self.rule, (ConstantStep, SoftBounds, ExpStep, PowStep, StepTable)):
            object.__setattr__(self, "rule", rule_from_dict(self.rule))
        lo = _num("g_min", self.g_min, lo=0.0)
        hi = _num("g_max", self.g_max)
        if not hi > lo:
            raise ConfigError(f"bounds crossed: g_max = {hi!r} S must exceed g_min = {lo!r} S")
        object.__setattr__(self, "g_min", lo)
        object.__setattr__(self, "g_max", hi)
        for name in ("d2d", "d2d_asymmetry", "c2c", "write_noise"):
            object.__setattr__(self, name, _num(name, getattr(self, name), lo=0.0))

    # ------------------------------------------------------------------ closed forms

    def mean_magnitude(self, g, direction) -> np.ndarray:
        """A_d(g): mean step magnitude in the pulse's direction [S] (nominal cell)."""
        d = _direction(direction)
        return self.rule.mean(_conductance(g), d, self.g_min, self.g_max)

    def expected_step(self, g, direction) -> np.ndarray:
        """E[dg] of one pulse [S], signed (+1 up, -1 down), before the clip at the bounds.

        Parameters
        ----------
        g : array_like
            Conductance before the pulse [S].
        direction : array_like of +1 / -1
            Pulse direction, broadcast against ``g``.
        """
        d = _direction(direction)
        return d * self.mean_magnitude(g, d)

    def step_variance(self, g, direction) -> np.ndarray:
        """Var[dg] of one pulse of a nominal cell [S^2], before the clip at the bounds:
        the rule's own spread (a :class:`StepTable`'s; 0 for parametric rules) +
        (c2c A_d(g))^2 + write_noise^2."""
        d = _direction(direction)
        g = _conductance(g)
        m = self.rule.mean(g, d, self.g_min, self.g_max)
        return (self.rule.variance(g, d, self.g_min, self.g_max) + (self.c2c * m) ** 2
                + self.write_noise ** 2)

    def symmetric_point(self) -> float:
        """g* [S] where the expected up and down steps cancel (NaN: no such point).

        Closed form for :class:`ConstantStep` (only when a_up = a_down; the midpoint is
        reported), :class:`SoftBounds`, :class:`ExpStep` and :class:`PowStep` with equal
        exponents; bisection on A_up - A_down otherwise (a table: on [g_min, g_max], first
        sign change on a 4,097-point grid, then bisection).
        """
        r = self.g_max - self.g_min
        if not isinstance(self.rule, StepTable):
            x = self.rule.symmetric_x()
            return math.nan if math.isnan(x) else self.g_min + x * r
        grid = np.linspace(self.g_min, self.g_max, 4097)
        f = self.mean_magnitude(grid, 1) - self.mean_magnitude(grid, -1)
        s = np.sign(f)
        k = np.nonzero(s[:-1] * s[1:] <= 0)[0]
        if k.size == 0:
            return math.nan
        lo, hi = float(grid[k[0]]), float(grid[k[0] + 1])
        flo = float(f[k[0]])
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            fm = float(self.mean_magnitude(mid, 1) - self.mean_magnitude(mid, -1))
            if (fm > 0) == (flo > 0) and fm != 0:
                lo, flo = mid, fm
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def mean_step(self) -> float:
        """Mean step magnitude over the range [S]: (A_up + A_down) / 2 averaged over g
        uniform in [g_min, g_max] (trapezoid rule on 4,097 points)."""
        g = np.linspace(self.g_min, self.g_max, 4097)
        a = 0.5 * (self.mean_magnitude(g, 1) + self.mean_magnitude(g, -1))
        return float(np.sum((a[1:] + a[:-1]) * 0.5) / (g.size - 1))

    def n_states(self) -> float:
        """Number of states [1]: (g_max - g_min) / :meth:`mean_step`, the range over the
        mean step of an up and a down pulse averaged uniformly over the range (soft bounds:
        4 (g_max - g_min) / (a_up + a_down); constant step: 2 (g_max - g_min) /
        (a_up + a_down))."""
        return (self.g_max - self.g_min) / self.mean_step()

    # ------------------------------------------------------------------ sampling

    def draw_gains(self, shape, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per-cell step gains (gain_up, gain_down) [1], each of ``shape``.

        gain = 1 + d2d z, gain_up = gain (1 + d2d_asymmetry z'), gain_down = gain (1 -
        d2d_asymmetry z'), z, z' ~ N(0, 1), each clipped at 0 (a cell cannot step backwards).
        """
        _rng(rng)
        z = rng.standard_normal((2, *np.atleast_1d(shape)) if np.ndim(shape) == 0
                                else (2, *shape))
        base = 1.0 + self.d2d * z[0]
        return (np.maximum(base * (1.0 + self.d2d_asymmetry * z[1]), 0.0),
                np.maximum(base * (1.0 - self.d2d_asymmetry * z[1]), 0.0))

    def pulse(self, g, direction, rng: np.random.Generator, *, gains=None) -> np.ndarray:
        """Conductance after one pulse [S], elementwise over ``g`` (clipped to the bounds).

        ``gains``: (gain_up, gain_down) from :meth:`draw_gains` (None: nominal cells).
        """
        g = np.asarray(g, dtype=np.float64)
        d = np.broadcast_to(_direction(direction), g.shape)
        if isinstance(self.rule, StepTable):
            m = self.rule.sample(g, d, rng)
        else:
            m = self.rule.mean(g, d, self.g_min, self.g_max)
        if gains is not None:
            m = m * np.where(d > 0, gains[0], gains[1])
        noise = rng.standard_normal((2, *g.shape))
        dg = d * m * (1.0 + self.c2c * noise[0]) + self.write_noise * noise[1]
        return np.clip(g + dg, self.g_min, self.g_max)

    def simulate_ramps(self, g0, directions, n_pulses: int, rng: np.random.Generator, *,
                       gains=None) -> np.ndarray:
        """Conductance after each pulse of R ramps of identical pulses [S].

        Parameters
        ----------
        g0 : array_like, shape (R,)
            Start conductance of each ramp [S].
        directions : array_like of +1 / -1, shape (R,)
            Pulse direction of each ramp (broadcast against ``g0``).
        n_pulses : int
            Pulses per ramp, >= 1.
        rng : numpy.random.Generator
            Source of the cycle-to-cycle, table and write noise.
        gains : tuple of arrays, optional
            (gain_up, gain_down) per ramp (:meth:`draw_gains`); None: the nominal cell.

        Returns
        -------
        ndarray, shape (R, n_pulses)
            g after pulse 1, 2, ..., n_pulses [S].
        """
        _rng(rng)
        if int(n_pulses) != n_pulses or n_pulses < 1:
            raise ConfigError(f"n_pulses must be an integer >= 1, got {n_pulses!r}")
        g = np.atleast_1d(np.asarray(g0, dtype=np.float64))
        if np.any(~np.isfinite(g)) or np.any(g < self.g_min) or np.any(g > self.g_max):
            bad = g[~((g >= self.g_min) & (g <= self.g_max))][:1].tolist()
            raise ConfigError(f"g0 = {bad} S outside the bounds [{self.g_min}, {self.g_max}] S")
        d = np.broadcast_to(_direction(directions), g.shape)
        out = np.empty((g.size, int(n_pulses)))
        for k in range(int(n_pulses)):
            g = self.pulse(g, d, rng, gains=gains)
            out[:, k] = g
        return out

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict[str, Any]:
        """Tree of :class:`~xbarlab.formats.Quantity` values (one-to-one onto file attributes)."""
        return {"kind": "pulsed", "rule": self.rule.to_dict(),
                "g_min": _q(self.g_min, "S"), "g_max": _q(self.g_max, "S"),
                "d2d": _q(self.d2d, "1"), "d2d_asymmetry": _q(self.d2d_asymmetry, "1"),
                "c2c": _q(self.c2c, "1"), "write_noise": _q(self.write_noise, "S")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PulsedDevice:
        """Inverse of :meth:`to_dict`; also takes the JSON form of :meth:`to_json`."""
        w = "pulsed device"
        if "rule" not in d:
            raise DataFormatError(f"{w}: missing 'rule'")
        return cls(rule=rule_from_dict(d["rule"]), g_min=_get(d, "g_min", "S", w),
                   g_max=_get(d, "g_max", "S", w), d2d=_get(d, "d2d", "1", w),
                   d2d_asymmetry=_get(d, "d2d_asymmetry", "1", w) if "d2d_asymmetry" in d
                   else 0.0, c2c=_get(d, "c2c", "1", w),
                   write_noise=_get(d, "write_noise", "S", w))

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text (each quantity as ``{"value": ..., "units": ...}``)."""
        def enc(o):
            if isinstance(o, Quantity):
                return {"value": o.value, "units": o.units}
            if isinstance(o, Mapping):
                return {k: enc(v) for k, v in o.items()}
            return o
        return json.dumps(enc(self.to_dict()), indent=1)

    @classmethod
    def from_json(cls, text: str) -> PulsedDevice:
        """Inverse of :meth:`to_json`."""
        try:
            tree = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"pulsed device: not JSON ({exc})") from None
        return cls.from_dict(tree)


def _rng(rng):
    check_rng(rng)


# ----------------------------------------------------------------------- weight domain


@dataclass(frozen=True)
class WeightDomain:
    """A pulsed device seen in normalised weights: w = (g - g_ref) / scale.

    g_ref is the symmetric point (the midpoint where the device has none) and scale =
    (g_max - g_min) / (2 tau), so a device whose symmetric point is the midpoint spans
    w in [-tau, tau]. The response factors are q_d(w) = A_d(g(w)) / A_ref with A_ref the
    mean step at g_ref ((A_up + A_down) / 2 there), so q_up = q_down = 1 at w = 0 and the
    weight step of a pulse is d dw_min q_d(w) with dw_min = A_ref / scale. For the symmetric
    soft-bounds device q_up = 1 - w / tau, q_down = 1 + w / tau (Wu et al. 2024).
    """

    device: PulsedDevice
    """The device holding the weight."""
    tau: float = 1.0
    """tau: half-width of the weight range of a device centred on its symmetric point [1], > 0."""

    def __post_init__(self):
        if not isinstance(self.device, PulsedDevice):
            raise ConfigError(f"device must be a PulsedDevice, got {type(self.device).__name__}")
        _num("tau", self.tau, lo=1e-300)

    @property
    def g_ref(self) -> float:
        """g_ref: conductance of w = 0 [S] (the symmetric point, else the midpoint)."""
        g = self.device.symmetric_point()
        return 0.5 * (self.device.g_min + self.device.g_max) if math.isnan(g) else g

    @property
    def scale(self) -> float:
        """Conductance per unit weight [S]."""
        return (self.device.g_max - self.device.g_min) / (2.0 * self.tau)

    @property
    def w_min(self) -> float:
        """Lowest weight the device holds [1]."""
        return (self.device.g_min - self.g_ref) / self.scale

    @property
    def w_max(self) -> float:
        """Highest weight the device holds [1]."""
        return (self.device.g_max - self.g_ref) / self.scale

    @property
    def dw_min(self) -> float:
        """Weight step of a pulse at w = 0 [1] (A_ref / scale)."""
        g = self.g_ref
        a = 0.5 * float(self.device.mean_magnitude(g, 1) + self.device.mean_magnitude(g, -1))
        return a / self.scale

    def to_weight(self, g) -> np.ndarray:
        """Weights of conductances ``g`` [S] -> [1]."""
        return (np.asarray(g, dtype=np.float64) - self.g_ref) / self.scale

    def to_conductance(self, w) -> np.ndarray:
        """Conductances of weights ``w`` [1] -> [S]."""
        return self.g_ref + np.asarray(w, dtype=np.float64) * self.scale

    def response(self, w, direction) -> np.ndarray:
        """q_d(w): mean weight step of a pulse over dw_min [1] (>= 0)."""
        a_ref = self.dw_min * self.scale
        return self.device.mean_magnitude(self.to_conductance(w), direction) / a_ref

    def symmetric_part(self, w) -> np.ndarray:
        """F(w) = (q_down + q_up) / 2 [1]."""
        return 0.5 * (self.response(w, -1) + self.response(w, 1))

    def asymmetric_part(self, w) -> np.ndarray:
        """G(w) = (q_down - q_up) / 2 [1]; Analog SGD's mean update is
        -lr grad F(w) - lr |grad| G(w)."""
        return 0.5 * (self.response(w, -1) - self.response(w, 1))

    def step_std(self, w, direction) -> np.ndarray:
        """Std of one pulse's weight step [1] (nominal cell)."""
        return np.sqrt(self.device.step_variance(self.to_conductance(w), direction)) / self.scale
