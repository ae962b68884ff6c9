"""The device model that :func:`xbarlab.calibration.fit` returns (kind ``"calibrated"``).

It lives in devices/ so that ``xbarlab.devices.load`` finds the kind; its fitting code is
in ``xbarlab.calibration``.

A :class:`CalibratedDevice` composes up to three fitted blocks, each a small frozen
dataclass of tabulated functions of the conductance (with their bootstrap replicates):

- :class:`ProgrammingBlock`: g_prog = g_T + bias(g_T) + spread(g_T) * Z, Z of a family
  (normal, Student-t, two-normal mixture; unit variance) or, bounded in a write-verify
  window, a beta error with mean bias and std spread; the families are
  :class:`xbarlab.devices.blocks.Family` and the errors come from the same Numba sampler as
  a :class:`~xbarlab.devices.composite.CompositeDevice`'s (``ErrorDistribution.errors``);
- a drift block: :class:`PowerLawBlock` (g(t) = g_prog ((t + t0)/t0)^-nu, nu ~ N(mu_nu(g),
  sigma_nu(g)) per cell, 1/f read noise Q(g) W(u) in ln g) or :class:`RelaxationBlock`
  (g(t) = g_0 + Q(g_0, t, p): tabulated quantiles of the change since the first read, one
  uniform deviate p per cell, so one cell follows one trajectory);
- :class:`ReadNoiseBlock`: white read-to-read noise, sigma_read(g), drawn per read.

Outside the fitted conductance range every tabulated function holds its edge value;
outside the tabulated times a relaxation holds its last table row (documented in the
report). Everything is in SI units (S, s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataFormatError
from .base import (
    Conditioning,
    DeviceModelBase,
    DeviceState,
    check_conductance,
    check_times,
    register_model,
)
from .blocks import ErrorDistribution, Family

__all__ = [
    "Family",
    "Curve",
    "ProgrammingBlock",
    "PowerLawBlock",
    "RelaxationBlock",
    "ReadNoiseBlock",
    "CalibratedDevice",
]


def _q(value, units):
    from ..formats import Quantity

    return Quantity(np.asarray(value, dtype=np.float64), units)


def _get(tree, key, units, where):
    try:
        item = tree[key]
    except KeyError:
        raise DataFormatError(f"calibrated device-model file lacks {where}/{key}") from None
    return np.asarray(item.expect(units, f"{where}/{key}"), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Curve:
    """A function of conductance tabulated on a grid, with bootstrap replicates.

    ``g``: grid [S], increasing; ``value``: the fitted function on the grid [``units``];
    ``boot``: replicates shaped (B, len(g)) from refits on resampled devices;
    ``units``: SI unit of ``value``. Evaluated by linear interpolation, edge values held.
    """

    g: np.ndarray
    value: np.ndarray
    units: str
    boot: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self):
        g = np.asarray(self.g, dtype=np.float64)
        v = np.asarray(self.value, dtype=np.float64)
        if g.ndim != 1 or g.shape != v.shape or g.size < 1:
            raise ConfigError(f"Curve needs 1-D g and value of one shape, got {g.shape}, {v.shape}")
        if g.size > 1 and np.any(np.diff(g) <= 0):
            raise ConfigError("Curve grid g must be strictly increasing")
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(v))):
            raise ConfigError("Curve grid and values must be finite")
        object.__setattr__(self, "g", g)
        object.__setattr__(self, "value", v)
        boot = np.asarray(self.boot, dtype=np.float64)
        if boot.size == 0:
            boot = np.zeros((0, g.size))
        object.__setattr__(self, "boot", boot)

    def __call__(self, x) -> np.ndarray:
        return np.interp(x, self.g, self.value)

    def band(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise bootstrap percentile band on the grid (lower, upper)."""
        if self.boot.shape[0] < 2:
            return self.value.copy(), self.value.copy()
        a = (1 - level) / 2
        return (np.quantile(self.boot, a, axis=0), np.quantile(self.boot, 1 - a, axis=0))

    def to_tree(self) -> dict[str, Any]:
        return {"g": _q(self.g, "S"), "value": _q(self.value, self.units),
                "bootstrap": _q(self.boot, self.units)}

    @staticmethod
    def from_tree(tree, units, where) -> Curve:
        return Curve(_get(tree, "g", "S", where), _get(tree, "value", units, where), units,
                     _get(tree, "bootstrap", units, where))


@dataclass(frozen=True, eq=False)
class ProgrammingBlock:
    """Programming error g_prog - g_T as a function of the target g_T.

    ``bias``: mean error b(g_T) [S]; ``spread``: standard deviation s(g_T) [S];
    ``family``: the shape, one of NORMAL, BOUNDED, STUDENT_T, MIXTURE of the devices'
    :class:`~xbarlab.devices.blocks.Family`; ``df``: Student-t degrees of freedom [1] (> 2);
    ``window``: half-width w of the write-verify window about the target [S]
    (BOUNDED: errors are a beta distribution on [-w, w] whose mean is b and whose
    variance is s^2, by the method of moments, :func:`~xbarlab.devices.blocks.beta_shape`);
    ``mix_weight``/``mix_ratio``: weight of the wide component and its scale relative to
    the narrow one [1] (MIXTURE: two zero-mean normals). :attr:`distribution` is the same
    family as a devices :class:`~xbarlab.devices.blocks.ErrorDistribution`, which samples.
    """

    bias: Curve
    spread: Curve
    family: Family = Family.NORMAL
    df: float = np.inf
    window: float = np.nan
    mix_weight: float = 0.0
    mix_ratio: float = 1.0

    _FAMILIES: ClassVar[tuple[Family, ...]] = (Family.NORMAL, Family.BOUNDED, Family.STUDENT_T,
                                               Family.MIXTURE)

    def __post_init__(self):
        try:
            fam = Family(self.family)
        except ValueError:
            fam = None
        if fam not in self._FAMILIES:
            raise ConfigError(f"calibrated programming family {self.family!r} is not one of "
                              f"{[f.value for f in self._FAMILIES]}")
        object.__setattr__(self, "family", fam)
        if self.family is Family.STUDENT_T and not self.df > 2:
            raise ConfigError(f"Student-t family needs df > 2, got {self.df}")
        if self.family is Family.BOUNDED and not (np.isfinite(self.window) and self.window > 0):
            raise ConfigError(f"bounded family needs a window half-width > 0 S, got {self.window}")
        if self.family is Family.MIXTURE and not (0 < self.mix_weight < 1 and self.mix_ratio > 1):
            raise ConfigError(
                f"mixture needs 0 < mix_weight < 1 and mix_ratio > 1, got "
                f"{self.mix_weight}, {self.mix_ratio}")

    @property
    def distribution(self) -> ErrorDistribution:
        """This block's family and shape as the devices' :class:`ErrorDistribution`."""
        f = self.family
        if f is Family.STUDENT_T:
            return ErrorDistribution(family=f, t_dof=self.df)
        if f is Family.MIXTURE:
            return ErrorDistribution(family=f, mix_weight=self.mix_weight, mix_offset=0.0,
                                     mix_scale=self.mix_ratio)
        if f is Family.BOUNDED:
            return ErrorDistribution(family=f, window=self.window)
        return ErrorDistribution(family=f)

    def error(self, g_t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw programming errors [S] for targets ``g_t`` [S] (flat array): one seed from
        ``rng``, then the composite models' Numba sampler (:meth:`ErrorDistribution.errors`)."""
        g_t = np.asarray(g_t, dtype=np.float64)
        return self.distribution.errors(self.bias(g_t), np.maximum(self.spread(g_t), 0.0), rng)

    def to_tree(self):
        return {"bias": self.bias.to_tree(), "spread": self.spread.to_tree(),
                "family": self.family.value,
                "df": _q(self.df if np.isfinite(self.df) else -1, "1"),
                "window": _q(self.window if np.isfinite(self.window) else -1, "S"),
                "mix_weight": _q(self.mix_weight, "1"), "mix_ratio": _q(self.mix_ratio, "1")}

    @staticmethod
    def from_tree(tree):
        w = "programming"
        df = float(_get(tree, "df", "1", w))
        win = float(_get(tree, "window", "S", w))
        return ProgrammingBlock(
            Curve.from_tree(tree["bias"], "S", w + "/bias"),
            Curve.from_tree(tree["spread"], "S", w + "/spread"),
            tree.get("family", "normal"), np.inf if df < 0 else df,
            np.nan if win < 0 else win, float(_get(tree, "mix_weight", "1", w)),
            float(_get(tree, "mix_ratio", "1", w)))


@dataclass(frozen=True, eq=False)
class PowerLawBlock:
    """PCM-like drift: g(t) = g_prog ((t + t0)/t0)^-nu with nu ~ N(mu_nu(g), sigma_nu(g)).

    ``mu_nu``, ``sigma_nu``: mean and device-to-device spread of the drift exponent [1]
    as functions of g_prog (corrected for read noise); ``t0``: reference time [s];
    ``q_read``: 1/f read-noise amplitude Q(g) [1]: ln g reads carry Q W(u), W a Wiener
    process in u = ln((t + t0 + t_r)/(2 t_r)); ``t_r``: read duration [s].
    """

    mu_nu: Curve
    sigma_nu: Curve
    t0: float
    q_read: Curve
    t_r: float = 250e-9

    def __post_init__(self):
        if not (self.t0 > 0 and self.t_r > 0):
            raise ConfigError(f"t0 and t_r must be > 0 s, got {self.t0}, {self.t_r}")

    def u(self, t):
        return np.log((t + self.t0 + self.t_r) / (2 * self.t_r))

    def to_tree(self):
        return {"mu_nu": self.mu_nu.to_tree(), "sigma_nu": self.sigma_nu.to_tree(),
                "t0": _q(self.t0, "s"), "q_read": self.q_read.to_tree(), "t_r": _q(self.t_r, "s")}

    @staticmethod
    def from_tree(tree):
        w = "drift"
        return PowerLawBlock(Curve.from_tree(tree["mu_nu"], "1", w + "/mu_nu"),
                             Curve.from_tree(tree["sigma_nu"], "1", w + "/sigma_nu"),
                             float(_get(tree, "t0", "s", w)),
                             Curve.from_tree(tree["q_read"], "1", w + "/q_read"),
                             float(_get(tree, "t_r", "s", w)))


def _bracket(grid: np.ndarray, x: np.ndarray):
    """Index i and weight w so that x ~ (1-w) grid[i] + w grid[i+1]; edges held."""
    if grid.size == 1:
        return np.zeros(x.shape, np.intp), np.zeros(x.shape)
    i = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    w = np.clip((x - grid[i]) / (grid[i + 1] - grid[i]), 0.0, 1.0)
    return i, w


@dataclass(frozen=True, eq=False)
class RelaxationBlock:
    """RRAM-like relaxation: quantiles of g(t) - g_0 tabulated over (g_0, t, p).

    ``g``: grid of first-read (or programmed) conductances g_0 [S]; ``t``: times after
    the first read [s] (first entry 0, where every quantile is 0); ``p``: probabilities
    [1] from 0 to 1; ``q``: quantiles shaped (len(g), len(t), len(p)) [S];
    ``tau``: time scale of the log-time coordinate u = ln(1 + t/tau) used to
    interpolate between table times [s]; ``boot_mean``/``boot_std``: bootstrap
    replicates of the mean and standard deviation of g(t) - g_0, shaped
    (B, len(g), len(t)) [S]; ``t_fit_max``: last measured time the table is fitted on
    [s] (later rows are extrapolated).
    """

    g: np.ndarray
    t: np.ndarray
    p: np.ndarray
    q: np.ndarray
    tau: float
    boot_mean: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    boot_std: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))
    t_fit_max: float = np.inf

    def __post_init__(self):
        for name in ("g", "t", "p", "q", "boot_mean", "boot_std"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        if self.q.shape != (self.g.size, self.t.size, self.p.size):
            raise ConfigError(f"relaxation table q has shape {self.q.shape}, expected "
                              f"{(self.g.size, self.t.size, self.p.size)}")
        if self.t.size < 2 or self.t[0] != 0 or np.any(np.diff(self.t) <= 0):
            raise ConfigError("relaxation table times must start at 0 s and increase")
        if not self.tau > 0:
            raise ConfigError(f"tau must be > 0 s, got {self.tau}")

    @property
    def mean(self) -> np.ndarray:
        """Mean of g(t) - g_0 on the (g, t) grid [S] (trapezoid over p)."""
        return np.trapezoid(self.q, self.p, axis=-1)

    @property
    def std(self) -> np.ndarray:
        """Standard deviation of g(t) - g_0 on the (g, t) grid [S]."""
        m = self.mean
        return np.sqrt(np.maximum(np.trapezoid(self.q**2, self.p, axis=-1) - m**2, 0.0))

    def delta(self, g0: np.ndarray, t: float, p: np.ndarray) -> np.ndarray:
        """Change since the first read [S] for cells at g0 [S] with deviates p, at time t [s]."""
        ig, wg = _bracket(self.g, g0)
        u_grid = np.log1p(self.t / self.tau)
        it, wt = _bracket(u_grid, np.atleast_1d(np.log1p(t / self.tau)))
        it, wt = int(it[0]), float(wt[0])
        ip, wp = _bracket(self.p, p)
        ip_hi = np.minimum(ip + 1, self.p.size - 1)
        out = np.zeros(g0.shape)
        for dg, fg in ((0, 1 - wg), (1, wg)):
            jg = np.minimum(ig + dg, self.g.size - 1)
            for dt, ft in ((0, 1 - wt), (1, wt)):
                if ft == 0:
                    continue
                # gather the two bracketing quantiles per cell only (not a whole row each)
                jt = min(it + dt, self.t.size - 1)
                lo = self.q[jg, jt, ip]
                hi = self.q[jg, jt, ip_hi]
                out += fg * ft * (lo + wp * (hi - lo))
        return out

    def to_tree(self):
        return {"g": _q(self.g, "S"), "t": _q(self.t, "s"), "p": _q(self.p, "1"),
                "quantiles": _q(self.q, "S"), "tau": _q(self.tau, "s"),
                "bootstrap_mean": _q(self.boot_mean, "S"), "bootstrap_std": _q(self.boot_std, "S"),
                "t_fit_max": _q(self.t_fit_max, "s")}

    @staticmethod
    def from_tree(tree):
        w = "drift"
        return RelaxationBlock(_get(tree, "g", "S", w), _get(tree, "t", "s", w),
                               _get(tree, "p", "1", w), _get(tree, "quantiles", "S", w),
                               float(_get(tree, "tau", "s", w)),
                               _get(tree, "bootstrap_mean", "S", w),
                               _get(tree, "bootstrap_std", "S", w),
                               float(_get(tree, "t_fit_max", "s", w)))


@dataclass(frozen=True, eq=False)
class ReadNoiseBlock:
    """White read-to-read noise: each read adds N(0, sigma(g)^2).

    ``sigma``: standard deviation of repeated reads as a function of g [S];
    ``psd_exponent``: fitted 1/f^alpha exponent of the read-noise power spectrum [1]
    (NaN when no time series was given; informative, not used for sampling).
    """

    sigma: Curve
    psd_exponent: float = np.nan

    def to_tree(self):
        return {"sigma": self.sigma.to_tree(),
                "psd_exponent": _q(self.psd_exponent if np.isfinite(self.psd_exponent) else -1,
                                   "1")}

    @staticmethod
    def from_tree(tree):
        a = float(_get(tree, "psd_exponent", "1", "read_noise"))
        return ReadNoiseBlock(Curve.from_tree(tree["sigma"], "S", "read_noise/sigma"),
                              np.nan if a < 0 else a)


@register_model
class CalibratedDevice(DeviceModelBase):
    """A device model fitted by :func:`xbarlab.calibration.fit` (see the module docstring).

    ``conditioning``: "target" (input = programming target) or "initial read" (input =
    the cell's first read after programming); ``programming``, ``drift``, ``read_noise``:
    the fitted blocks (each may be None); ``g_fit``: (lowest, highest) conductance the
    fit saw [S]; ``provenance``: how it was made; ``report``: the fit's evidence
    (tables, choices), not stored in files.
    """

    kind: ClassVar[str] = "calibrated"

    def __init__(self, *, conditioning="target", programming: ProgrammingBlock | None = None,
                 drift: PowerLawBlock | RelaxationBlock | None = None,
                 read_noise: ReadNoiseBlock | None = None,
                 g_fit: tuple[float, float] = (0.0, np.inf), provenance=None, report=None):
        self.conditioning = Conditioning(conditioning).value
        self.programming = programming
        self.drift_block = drift
        self.read_noise = read_noise
        self.g_fit = (float(g_fit[0]), float(g_fit[1]))
        self.g_range = (0.0, np.inf)  # fitted models accept any g >= 0 (edge statistics)
        self.provenance = provenance
        self.report = report

    def __repr__(self):
        d = type(self.drift_block).__name__ if self.drift_block is not None else None
        fam = self.programming.family.value if self.programming is not None else None
        return (f"CalibratedDevice(conditioning={self.conditioning!r}, programming={fam}, "
                f"drift={d}, read_noise={self.read_noise is not None})")

    def with_programming(self, other: CalibratedDevice) -> CalibratedDevice:
        """Compose: ``other``'s programming error, then this model's relaxation.

        This model must be conditioned on the first read, ``other`` on the target; the
        result is conditioned on the target (g_0 of the relaxation = programmed value).
        """
        if self.conditioning != Conditioning.INITIAL_READ.value:
            raise ConfigError("with_programming needs a model conditioned on the initial read, "
                              f"this one is conditioned on {self.conditioning!r}")
        if other.programming is None or other.conditioning != Conditioning.TARGET.value:
            raise ConfigError("the other model must be target-conditioned with a programming block")
        return CalibratedDevice(conditioning="target", programming=other.programming,
                                drift=self.drift_block,
                                read_noise=self.read_noise or other.read_noise,
                                g_fit=(min(self.g_fit[0], other.g_fit[0]),
                                       max(self.g_fit[1], other.g_fit[1])),
                                provenance=self.provenance, report=self.report)

    def to_composite(self, *, name: str = "calibrated"):
        """The nearest :class:`~xbarlab.devices.composite.CompositeDevice` (Numba sampler).

        Exact for every programming-error family (normal, bounded, Student-t, mixture: the
        same :class:`~xbarlab.devices.blocks.Family` and the same Numba sampler, so for
        one generator state the programmed values agree to rounding), the power law (nu not
        folded) and white read noise; approximations: a relaxation table becomes
        a Gaussian relaxation with the table's mean and standard deviation (tabulated on
        the same (g, t) grid) and one deviate per cell, dropping the tails' shape; the
        power law's 1/f read noise is multiplicative here (``g·exp(Q·ξ)``, the fit's
        log-space model) and additive in proportion to g in the composite
        (``g·(1 + Q·ξ)``, clamped at 0 S), equal to first order in ``Q·ξ``. The
        exact model (with every bootstrap replicate) rides along in ``extras["calibrated"]``:
        ``CalibratedDevice.from_tree(composite.extras["calibrated"])`` restores it.
        """
        from .blocks import (
            ConditionOn,
            PowerLawDrift,
            ProgrammingError,
            ReadNoise,
            Relaxation,
            RelaxationPath,
            TimeSurface,
        )
        from .composite import CompositeDevice
        from .curves import Table

        def table(c: Curve):
            return Table(c.g, c.value, units=c.units)

        prog = ProgrammingError(identity=True)
        if self.programming is not None:
            pb = self.programming
            prog = ProgrammingError(spread=table(pb.spread), bias=table(pb.bias),
                                    distribution=pb.distribution)
        drift = None
        noise = None
        d = self.drift_block
        if isinstance(d, PowerLawBlock):
            drift = PowerLawDrift(t0=d.t0, nu_mean=table(d.mu_nu), nu_std=table(d.sigma_nu),
                                  fold=False)
            noise = ReadNoise(amplitude=table(d.q_read), t_r=d.t_r, t0=d.t0)
        elif isinstance(d, RelaxationBlock):
            ts = d.t[1:]
            mean = TimeSurface(tuple(ts), tuple(Table(d.g, d.mean[:, k + 1], units="S")
                                                for k in range(ts.size)))
            std = TimeSurface(tuple(ts), tuple(Table(d.g, d.std[:, k + 1], units="S")
                                               for k in range(ts.size)))
            drift = Relaxation(mean=mean, spread=std, path=RelaxationPath.COMMON_DEVIATE,
                               condition_on=ConditionOn.PROGRAMMED)
        if self.read_noise is not None:
            st = table(self.read_noise.sigma)
            noise = (ReadNoise(amplitude=None, short_term=st) if noise is None
                     else ReadNoise(amplitude=noise.amplitude, t_r=noise.t_r, t0=noise.t0,
                                    short_term=st))
        hi = self.g_fit[1] if np.isfinite(self.g_fit[1]) and self.g_fit[1] > self.g_fit[0] \
            else self.g_fit[0] + 1.0
        tree = self.to_tree()
        tree["conditioning"] = self.conditioning
        return CompositeDevice(programming=prog, drift_law=drift, read_noise=noise,
                               g_range=(self.g_fit[0], hi), range_policy="edge",
                               conditioning=self.conditioning, name=name,
                               citation="xbarlab.calibration.fit",
                               extras={"calibrated": tree})

    # -- physics ------------------------------------------------------------------------------

    def program(self, g, rng: np.random.Generator) -> DeviceState:
        arr = check_conductance(g)
        flat = arr.ravel()
        if self.programming is not None:
            gp = np.maximum(flat + self.programming.error(flat, rng), 0.0)
        else:
            gp = flat.copy()
        fields = {}
        d = self.drift_block
        if isinstance(d, PowerLawBlock):
            fields["nu"] = (d.mu_nu(gp) + d.sigma_nu(gp) * rng.standard_normal(gp.size)).reshape(
                arr.shape)
        elif isinstance(d, RelaxationBlock):
            fields["p"] = rng.random(gp.size).reshape(arr.shape)
        seed = int(rng.integers(0, 2**63 - 1))
        return DeviceState(g_input=arr.copy(), g_prog=gp.reshape(arr.shape), seed=seed,
                           fields=fields)

    def drift(self, state: DeviceState, t) -> np.ndarray:
        times, scalar = check_times(t)
        g0 = state.g_prog.ravel()
        out = np.empty((times.size, g0.size))
        d = self.drift_block
        for k, tk in enumerate(times):
            if isinstance(d, PowerLawBlock):
                out[k] = g0 * ((tk + d.t0) / d.t0) ** (-state.fields["nu"].ravel())
            elif isinstance(d, RelaxationBlock):
                out[k] = np.maximum(g0 + d.delta(g0, tk, state.fields["p"].ravel()), 0.0)
            else:
                out[k] = g0
        out = out.reshape((times.size, *state.shape))
        return out[0] if scalar else out

    def read(self, state: DeviceState, t, rng: np.random.Generator) -> np.ndarray:
        times, scalar = check_times(t)
        g = self.drift(state, times)  # (T, *shape)
        d = self.drift_block
        if isinstance(d, PowerLawBlock):
            # one Wiener path in u per cell, sampled at the requested times in time order
            q = d.q_read(state.g_prog)
            order = np.argsort(times, kind="stable")
            u = d.u(times[order])
            du = np.diff(np.concatenate([[0.0], u]))
            w = np.cumsum(rng.standard_normal((times.size, *state.shape))
                          * np.sqrt(du).reshape((-1,) + (1,) * state.g_prog.ndim), axis=0)
            path = np.empty_like(w)
            path[order] = w
            g = g * np.exp(q * path)
        if self.read_noise is not None:
            g = g + self.read_noise.sigma(g) * rng.standard_normal(g.shape)
        g = np.maximum(g, 0.0)
        return g[0] if scalar else g

    # -- files --------------------------------------------------------------------------------

    def to_tree(self) -> dict[str, Any]:
        tree: dict[str, Any] = {"g_fit": _q(np.asarray(self.g_fit), "S")}
        if self.programming is not None:
            tree["programming"] = self.programming.to_tree()
        if self.drift_block is not None:
            sub = self.drift_block.to_tree()
            sub["type"] = ("power-law" if isinstance(self.drift_block, PowerLawBlock)
                           else "relaxation-table")
            tree["drift"] = sub
        if self.read_noise is not None:
            tree["read_noise"] = self.read_noise.to_tree()
        return tree

    def to_file(self, path, *, force: bool = False, provenance=None):
        return super().to_file(path, force=force,
                               provenance=provenance if provenance is not None else self.provenance)

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> CalibratedDevice:
        g_fit = _get(tree, "g_fit", "S", "/")
        drift = None
        if "drift" in tree:
            typ = tree["drift"].get("type")
            if typ == "power-law":
                drift = PowerLawBlock.from_tree(tree["drift"])
            elif typ == "relaxation-table":
                drift = RelaxationBlock.from_tree(tree["drift"])
            else:
                raise DataFormatError(f"unknown drift type {typ!r} in calibrated device file; "
                                      "expected 'power-law' or 'relaxation-table'")
        return cls(conditioning=tree.get("conditioning", "target"),
                   programming=(ProgrammingBlock.from_tree(tree["programming"])
                                if "programming" in tree else None),
                   drift=drift,
                   read_noise=(ReadNoiseBlock.from_tree(tree["read_noise"])
                               if "read_noise" in tree else None),
                   g_fit=(float(g_fit[0]), float(g_fit[1])))
