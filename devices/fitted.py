"""Blocks fitted by :mod:`xbarlab.calibration`, and the numpy path that samples them.

Each block is a small frozen dataclass of :class:`~xbarlab.devices.curves.FittedCurve`
functions of the conductance (with their bootstrap replicates):

- :class:`FittedProgramming`: g_prog = max(g_T + bias(g_T) + spread(g_T) Z, 0), Z of a
  :class:`~xbarlab.devices.blocks.Family` (normal, Student-t, two-normal mixture; unit
  variance) or, bounded in a write-verify window, a beta error with mean bias and std
  spread; the errors come from the Numba sampler of the parametric blocks
  (:meth:`~xbarlab.devices.blocks.ErrorDistribution.errors`);
- :class:`FittedPowerLaw` (PCM-like drift with 1/f read noise): g(t) = g_prog ((t + t0)/t0)^-nu,
  nu ~ N(mu_nu(g_prog), sigma_nu(g_prog)) per cell, reads g(t) exp(e(u)) with 1/f noise e
  in u = ln((t + t0 + t_r)/(2 t_r)) of a :class:`~xbarlab.devices.blocks.ReadNoiseStructure`:
  Q(g_prog) W(u) with W a Wiener process (random walk), Q(g_prog) sqrt(u) z drawn afresh
  per read (independent), or the sum of a random walk and an independent draw (both);
  under the :class:`~xbarlab.devices.blocks.ReadNoiseLaw` "linear" the reads are
  g(t) (1 + e(u)) instead, clamped at 0 S;
- :class:`~xbarlab.devices.relaxation_table.RelaxationTable` (the quantile relaxation table);
- :class:`WhiteReadNoise`: each read adds N(0, sigma(g)^2).

A :class:`~xbarlab.devices.composite.CompositeDevice` whose blocks are these samples them
with :func:`program_cells`, :func:`evolve_cells` and :func:`read_cells` (numpy draws from
the caller's generator, in this order: programming errors, per-cell drift state, a seed,
then per read the 1/f path and the white noise). Outside the fitted conductance range every
curve holds its edge value. Every quantity is SI (S, s) or dimensionless.

:func:`model_args_from_calibrated_tree` reads the tree of files of kind "calibrated"
(xbarlab 0.1.0's layout of fitted models) into these blocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError, DataFormatError
from ..formats import Quantity
from .blocks import ErrorDistribution, Family, ReadNoiseLaw, ReadNoiseStructure
from .curves import FittedCurve, tree_array
from .relaxation_table import RelaxationTable

__all__ = [
    "FittedProgramming",
    "FittedPowerLaw",
    "WhiteReadNoise",
    "program_cells",
    "evolve_cells",
    "read_cells",
    "model_args_from_calibrated_tree",
]


def _q(value, units) -> Quantity:
    return Quantity(np.asarray(value, dtype=np.float64), units)


def _scalar(tree, key, units, where) -> float:
    return float(tree_array(tree, key, units, where))


@dataclass(frozen=True, eq=False)
class FittedProgramming:
    """Programming error g_prog - g_T as fitted functions of the target g_T.

    (Bounded family: errors are a beta distribution on [-w, w] whose mean is the bias and
    whose variance is spread^2, by the method of moments,
    :func:`~xbarlab.devices.blocks.beta_shape`.) :attr:`distribution` is the same family
    as an :class:`~xbarlab.devices.blocks.ErrorDistribution`, which samples.
    """

    bias: FittedCurve
    """b(g_T): mean programming error [S]."""
    spread: FittedCurve
    """s(g_T): its standard deviation [S]."""
    family: Family = Family.NORMAL
    """The shape: NORMAL, BOUNDED, STUDENT_T or MIXTURE."""
    df: float = np.inf
    """Student-t degrees of freedom [1] (> 2; STUDENT_T only)."""
    window: float = np.nan
    """Half-width w of the write-verify window about the target [S] (BOUNDED only)."""
    mix_weight: float = 0.0
    """Weight of the wide component [1] (MIXTURE: two zero-mean normals)."""
    mix_ratio: float = 1.0
    """Scale of the wide component relative to the narrow one [1] (MIXTURE)."""

    FAMILIES: ClassVar[tuple[Family, ...]] = (Family.NORMAL, Family.BOUNDED, Family.STUDENT_T,
                                              Family.MIXTURE)

    def __post_init__(self):
        fam = coerce_enum(Family, self.family, "family")
        if fam not in self.FAMILIES:
            raise ConfigError(f"fitted programming family {fam.value!r} is not one of "
                              f"{[f.value for f in self.FAMILIES]}")
        object.__setattr__(self, "family", fam)
        if fam is Family.STUDENT_T and not self.df > 2:
            raise ConfigError(f"Student-t family needs df > 2, got {self.df}")
        if fam is Family.BOUNDED and not (np.isfinite(self.window) and self.window > 0):
            raise ConfigError(f"bounded family needs a window half-width > 0 S, got {self.window}")
        if fam is Family.MIXTURE and not (0 < self.mix_weight < 1 and self.mix_ratio > 1):
            raise ConfigError(
                f"mixture needs 0 < mix_weight < 1 and mix_ratio > 1, got "
                f"{self.mix_weight}, {self.mix_ratio}")

    @property
    def distribution(self) -> ErrorDistribution:
        """This block's family and shape as an :class:`ErrorDistribution`."""
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
        """Programming errors [S] for targets ``g_t`` [S] (1-D): one seed from ``rng``,
        then the Numba sampler :meth:`ErrorDistribution.errors`."""
        g_t = np.asarray(g_t, dtype=np.float64)
        return self.distribution.errors(self.bias(g_t), np.maximum(self.spread(g_t), 0.0), rng)

    def to_dict(self) -> dict[str, Any]:
        """Curves and shape as quantities (type "fitted"; -1 marks an unused df/window)."""
        return {"type": "fitted", "bias": self.bias.to_dict(), "spread": self.spread.to_dict(),
                "family": self.family.value,
                "df": _q(self.df if np.isfinite(self.df) else -1, "1"),
                "window": _q(self.window if np.isfinite(self.window) else -1, "S"),
                "mix_weight": _q(self.mix_weight, "1"), "mix_ratio": _q(self.mix_ratio, "1")}

    @staticmethod
    def from_dict(tree: Mapping[str, Any]) -> FittedProgramming:
        """Inverse of :meth:`to_dict` (the "type" key is not read)."""
        w = "programming"
        df = _scalar(tree, "df", "1", w)
        win = _scalar(tree, "window", "S", w)
        return FittedProgramming(
            FittedCurve.from_dict(tree["bias"], "S", w + "/bias"),
            FittedCurve.from_dict(tree["spread"], "S", w + "/spread"),
            tree.get("family", "normal"), np.inf if df < 0 else df,
            np.nan if win < 0 else win, _scalar(tree, "mix_weight", "1", w),
            _scalar(tree, "mix_ratio", "1", w))


@dataclass(frozen=True, eq=False)
class FittedPowerLaw:
    """PCM-like drift g(t) = g_prog ((t + t0)/t0)^-nu, nu ~ N(mu_nu(g), sigma_nu(g)), with
    1/f read noise in ln g, in the clock u = ln((t + t0 + t_r)/(2 t_r)), of the structure
    :attr:`read_noise`: ``RANDOM_WALK`` Q(g_prog) W(u), W a Wiener process per cell;
    ``INDEPENDENT`` Q(g_prog) sqrt(u) z with z ~ N(0, 1) drawn afresh at every read;
    ``BOTH`` Q(g_prog) W(u) + Q_i(g_prog) sqrt(u) z. The noise e enters the reads by
    :attr:`law`: g(t) e^e (``LOG``) or g(t) (1 + e) clamped at 0 S (``LINEAR``)."""

    mu_nu: FittedCurve
    """Mean drift exponent as a function of g_prog [1]."""
    sigma_nu: FittedCurve
    """Device-to-device spread of the exponent (read noise deconvolved) [1]."""
    t0: float
    """Reference time of the power law [s]."""
    q_read: FittedCurve
    """1/f read-noise amplitude Q(g_prog) [1]: of the random walk (``RANDOM_WALK``,
    ``BOTH``) or of the independent reads (``INDEPENDENT``)."""
    t_r: float = 250e-9
    """Duration of one read [s]."""
    read_noise: ReadNoiseStructure = ReadNoiseStructure.RANDOM_WALK
    """Structure of the 1/f read noise (files without it load as ``RANDOM_WALK``)."""
    q_independent: FittedCurve | None = None
    """Amplitude Q_i(g_prog) [1] of the independent part under ``BOTH`` (None otherwise)."""
    law: ReadNoiseLaw = ReadNoiseLaw.LOG
    """How the noise enters a read (:class:`ReadNoiseLaw`; files without the key load as
    ``LOG``)."""

    def __post_init__(self):
        if not (self.t0 > 0 and self.t_r > 0):
            raise ConfigError(f"t0 and t_r must be > 0 s, got {self.t0}, {self.t_r}")
        rn = coerce_enum(ReadNoiseStructure, self.read_noise, "read_noise")
        object.__setattr__(self, "read_noise", rn)
        object.__setattr__(self, "law", coerce_enum(ReadNoiseLaw, self.law, "law"))
        if (rn is ReadNoiseStructure.BOTH) != (self.q_independent is not None):
            raise ConfigError(f"q_independent is given exactly when read_noise is 'both'; got "
                              f"read_noise={rn.value!r} with q_independent "
                              f"{'set' if self.q_independent is not None else 'None'}")

    def contrast_variance(self, g_prog, t, t_ref) -> np.ndarray:
        """Variance [1] of the 1/f noise e(t) - e(t_ref), ``t`` >= ``t_ref`` [s] (of
        ln g(t) - ln g(t_ref) under the law ``LOG``): the random walk adds u(t) - u(t_ref),
        independent reads u(t) + u(t_ref)."""
        du, su = self.u(t) - self.u(t_ref), self.u(t) + self.u(t_ref)
        q2 = self.q_read(g_prog) ** 2
        if self.read_noise is ReadNoiseStructure.INDEPENDENT:
            return q2 * su
        if self.read_noise is ReadNoiseStructure.BOTH:
            return q2 * du + self.q_independent(g_prog) ** 2 * su
        return q2 * du

    def u(self, t):
        """The 1/f clock u(t) = ln((t + t0 + t_r)/(2 t_r)) [1] at times ``t`` [s]."""
        return np.log((t + self.t0 + self.t_r) / (2 * self.t_r))

    def draw(self, g_prog: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-cell state drawn at programming: the exponent ``nu`` [1]."""
        return {"nu": self.mu_nu(g_prog) + self.sigma_nu(g_prog)
                * rng.standard_normal(g_prog.size)}

    def evolve(self, g0: np.ndarray, fields: Mapping[str, np.ndarray], t: float) -> np.ndarray:
        """g(t) [S] of cells programmed to ``g0`` [S] (1-D) with per-cell ``fields``."""
        return g0 * ((t + self.t0) / self.t0) ** (-fields["nu"])

    def flicker(self, g_prog: np.ndarray, times: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        """Factor exp(e) (law ``LOG``) or 1 + e (``LINEAR``; it can be negative, the read
        is clamped later) [1] of the 1/f noise e, shaped (T, *g_prog.shape): one Wiener
        path per cell sampled at ``times`` [s] in time order (random walk), then one fresh
        normal per read (independent); both parts under ``BOTH``."""
        q = self.q_read(g_prog)
        shape = (times.size, *g_prog.shape)
        sq_u = np.sqrt(self.u(times)).reshape((-1,) + (1,) * g_prog.ndim)
        factor = np.exp if self.law is ReadNoiseLaw.LOG else (lambda e: 1.0 + e)
        if self.read_noise is ReadNoiseStructure.INDEPENDENT:
            return factor(q * sq_u * rng.standard_normal(shape))
        order = np.argsort(times, kind="stable")
        u = self.u(times[order])
        du = np.diff(np.concatenate([[0.0], u]))
        w = np.cumsum(rng.standard_normal((times.size, *g_prog.shape))
                      * np.sqrt(du).reshape((-1,) + (1,) * g_prog.ndim), axis=0)
        path = np.empty_like(w)
        path[order] = w
        if self.read_noise is ReadNoiseStructure.BOTH:
            qi = self.q_independent(g_prog)
            return factor(q * path + qi * sq_u * rng.standard_normal(shape))
        return factor(q * path)

    def to_dict(self) -> dict[str, Any]:
        """Curves and times as quantities (type "fitted_power_law"; ``q_independent``
        only under ``BOTH``; the law under "read_noise_law")."""
        out = {"type": "fitted_power_law", "mu_nu": self.mu_nu.to_dict(),
               "sigma_nu": self.sigma_nu.to_dict(), "t0": _q(self.t0, "s"),
               "q_read": self.q_read.to_dict(), "t_r": _q(self.t_r, "s"),
               "read_noise": self.read_noise.value, "read_noise_law": self.law.value}
        if self.q_independent is not None:
            out["q_independent"] = self.q_independent.to_dict()
        return out

    @staticmethod
    def from_dict(tree: Mapping[str, Any]) -> FittedPowerLaw:
        """Inverse of :meth:`to_dict` (the "type" key is not read)."""
        w = "drift"
        return FittedPowerLaw(FittedCurve.from_dict(tree["mu_nu"], "1", w + "/mu_nu"),
                              FittedCurve.from_dict(tree["sigma_nu"], "1", w + "/sigma_nu"),
                              _scalar(tree, "t0", "s", w),
                              FittedCurve.from_dict(tree["q_read"], "1", w + "/q_read"),
                              _scalar(tree, "t_r", "s", w),
                              tree.get("read_noise", ReadNoiseStructure.RANDOM_WALK.value),
                              (FittedCurve.from_dict(tree["q_independent"], "1",
                                                     w + "/q_independent")
                               if "q_independent" in tree else None),
                              tree.get("read_noise_law", ReadNoiseLaw.LOG.value))


@dataclass(frozen=True, eq=False)
class WhiteReadNoise:
    """White read-to-read noise: each read adds N(0, sigma(g)^2)."""

    sigma: FittedCurve
    """Standard deviation of repeated reads as a function of g [S]."""
    psd_exponent: float = np.nan
    """Fitted 1/f^alpha exponent of the read-noise power spectrum [1] (NaN when no time
    series was given; informative, not used for sampling)."""

    def add(self, g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Reads ``g`` [S] plus one independent draw of the noise each."""
        return g + self.sigma(g) * rng.standard_normal(g.shape)

    def to_dict(self) -> dict[str, Any]:
        """Curve and exponent as quantities (type "white"; -1 marks an unknown exponent)."""
        a = self.psd_exponent if np.isfinite(self.psd_exponent) else -1
        return {"type": "white", "sigma": self.sigma.to_dict(), "psd_exponent": _q(a, "1")}

    @staticmethod
    def from_dict(tree: Mapping[str, Any]) -> WhiteReadNoise:
        """Inverse of :meth:`to_dict` (the "type" key is not read)."""
        a = _scalar(tree, "psd_exponent", "1", "read_noise")
        return WhiteReadNoise(FittedCurve.from_dict(tree["sigma"], "S", "read_noise/sigma"),
                              np.nan if a < 0 else a)


# ------------------------------------------------------------------ the numpy sampling path


def program_cells(programming: FittedProgramming | None,
                  drift: FittedPowerLaw | RelaxationTable | None, flat: np.ndarray,
                  rng: np.random.Generator, g_level: np.ndarray | None = None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """Program the cells ``flat`` [S] (1-D): ``(g_prog [S], per-cell drift state, seed)``.

    ``g_level``: the cells' level conductances [S] (1-D, like ``flat``), kept as the state
    field ``g_level`` for a relaxation table with labelled levels (the caller checks that
    the table takes them); a table whose levels are targets keeps ``flat`` there."""
    if programming is not None:
        gp = np.maximum(flat + programming.error(flat, rng), 0.0)
    else:
        gp = flat.copy()
    fields = {} if drift is None else drift.draw(gp, rng)
    if isinstance(drift, RelaxationTable) and drift.level_by_target:
        fields["g_level"] = np.asarray(flat, dtype=np.float64).copy()
    elif g_level is not None:
        fields["g_level"] = np.asarray(g_level, dtype=np.float64).copy()
    seed = int(rng.integers(0, 2**63 - 1))
    return gp, fields, seed


def evolve_cells(drift: FittedPowerLaw | RelaxationTable | None, g_prog: np.ndarray,
                 fields: Mapping[str, np.ndarray], times: np.ndarray) -> np.ndarray:
    """g(t) [S] without read noise, shaped (T, *g_prog.shape), at ``times`` [s] (1-D)."""
    g0 = g_prog.ravel()
    flat = {k: np.asarray(v).ravel() for k, v in fields.items()}
    out = np.empty((times.size, g0.size))
    for k, tk in enumerate(times):
        out[k] = g0 if drift is None else drift.evolve(g0, flat, tk)
    return out.reshape((times.size, *g_prog.shape))


def read_cells(drift: FittedPowerLaw | RelaxationTable | None,
               read_noise: WhiteReadNoise | None, g_prog: np.ndarray,
               fields: Mapping[str, np.ndarray], times: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """g(t) [S] with read noise, shaped (T, *g_prog.shape), clamped at 0 S."""
    g = evolve_cells(drift, g_prog, fields, times)
    if isinstance(drift, FittedPowerLaw):
        g = g * drift.flicker(g_prog, times, rng)
    if read_noise is not None:
        g = read_noise.add(g, rng)
    return np.maximum(g, 0.0)


# ------------------------------------------------------------------ files of kind "calibrated"


def model_args_from_calibrated_tree(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :class:`~xbarlab.devices.composite.CompositeDevice` for the tree
    of a file of kind "calibrated" (the layout xbarlab 0.1.0 wrote for fitted models).

    The blocks are the ones that file held (same curves, same sampling): the model accepts
    any g >= 0 S (``g_range`` (0, inf), edge statistics) and ``g_fit`` is the file's.
    """
    try:
        g_fit = np.asarray(tree["g_fit"].expect("S", "g_fit"), dtype=np.float64)
    except KeyError:
        raise DataFormatError("calibrated device-model file lacks /g_fit") from None
    drift = None
    if "drift" in tree:
        typ = tree["drift"].get("type")
        if typ == "power-law":
            drift = FittedPowerLaw.from_dict(tree["drift"])
        elif typ == "relaxation-table":
            drift = RelaxationTable.from_dict(tree["drift"])
        else:
            raise DataFormatError(f"unknown drift type {typ!r} in calibrated device file; "
                                  "expected 'power-law' or 'relaxation-table'")
    return {"conditioning": tree.get("conditioning", "target"),
            "programming": (FittedProgramming.from_dict(tree["programming"])
                            if "programming" in tree else None),
            "drift_law": drift,
            "read_noise": (WhiteReadNoise.from_dict(tree["read_noise"])
                           if "read_noise" in tree else None),
            "g_range": (0.0, np.inf), "range_policy": "edge",
            "g_fit": (float(g_fit[0]), float(g_fit[1]))}
