"""Goodness of a pulsed-device fit: KS of simulated vs measured steps per conductance bin.

**Ramps**: every measured ramp is simulated from its first read with its direction and
length (``n_copies`` times), the simulated reads get the fitted read error
(``sigma_read``), and the single-pulse steps of measured and simulated ramps are compared
per (direction, conductance bin of the read before the pulse) by the two-sample KS
distance. **Step table**: per (direction, bin), ``n_samples`` steps drawn from the
measured distribution (its quantile function) against as many one-pulse steps of the
device from conductances in the bin's central half; both are read through the table's
apparent read resolution (a conductance read rounds to a multiple of it, so a step is a
difference of two rounded reads).

**Sampling floor**: the 95 % quantile of the KS that data drawn from the fitted device itself
(same ramps, or as many samples) show against the model's samples: the KS the sample sizes
alone give (parametric bootstrap, no refits). **Baselines** on the same cells: *state-blind*,
one table bin over the whole range (every step drawn from all measured steps of its
direction, whatever the state); *no spread*, the fitted mean step with no spread about it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..checks import check_rng
from ..devices.pulsed import Interpolation, PulsedDevice, StepTable
from ..errors import ConfigError
from ..formats.pulse_tables import PulseRamps, PulseStepTable
from .goodness import ks_distance

__all__ = ["PulseKS", "ramp_goodness", "table_goodness", "read_resolution"]


@dataclass
class PulseKS:
    """KS distances of simulated vs measured steps per (direction, conductance bin)."""

    #: Direction of each cell, +1 / -1.
    direction: np.ndarray
    #: Lower and upper conductance of each cell's bin [S], shape (n_cells, 2).
    bins: np.ndarray
    #: Measured steps per cell.
    n: np.ndarray
    #: KS distance of the fitted device per cell [1].
    ks: np.ndarray
    #: Sampling floor per cell (95 % quantile of the parametric bootstrap) [1].
    floor: np.ndarray
    #: Baseline name -> KS per cell [1].
    baselines: dict[str, np.ndarray] = field(default_factory=dict)
    #: Replicates of the floor's parametric bootstrap.
    n_replicates: int = 0

    @property
    def median(self) -> float:
        """Median KS over the cells [1]."""
        return float(np.median(self.ks))

    def verdict(self) -> str:
        """One sentence: how the median KS and the cells compare with the sampling floor."""
        above = int(np.sum(self.ks > self.floor))
        base = ", ".join(f"{k} {np.median(v):.3f}" for k, v in self.baselines.items())
        return (f"median KS {self.median:.3f} against a median sampling floor of "
                f"{np.median(self.floor):.3f}; {above} of {self.ks.size} cells above their "
                f"floor ({0.05 * self.ks.size:.1f} expected by chance); baselines: {base}")

    def summary(self) -> dict:
        """JSON-ready summary (SI units)."""
        return {"median_ks": self.median, "median_floor": float(np.median(self.floor)),
                "cells_above_floor": int(np.sum(self.ks > self.floor)),
                "cells": int(self.ks.size), "replicates": self.n_replicates,
                "baselines": {k: float(np.median(v)) for k, v in self.baselines.items()},
                "verdict": self.verdict(),
                "per_cell": [{"direction": int(d), "g_lo": float(r[0]), "g_hi": float(r[1]),
                              "n": int(n), "ks": float(k), "floor": float(f)}
                             for d, r, n, k, f in zip(self.direction, self.bins, self.n,
                                                      self.ks, self.floor, strict=True)]}


def _check(rng, n, what):
    check_rng(rng)
    if int(n) != n or n < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {n!r}")


def _simulate(device: PulsedDevice, ramps: PulseRamps, sigma_read: float, copies: int, rng):
    """Steps (g before, step, direction) of simulated copies of every measured ramp."""
    counts = np.bincount(ramps.ramp, minlength=ramps.n_ramps)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    g0 = np.clip(ramps.g[starts], device.g_min, device.g_max)
    n = int(counts.max()) - 1
    g0 = np.tile(g0, copies)
    d = np.tile(ramps.direction, copies)
    lens = np.tile(counts, copies)
    sim = np.concatenate([g0[:, None], device.simulate_ramps(g0, d, n, rng)], axis=1)
    sim = sim + sigma_read * rng.standard_normal(sim.shape)
    keep = np.arange(n)[None, :] < (lens - 1)[:, None]
    gb, step = sim[:, :-1][keep], np.diff(sim, axis=1)[keep]
    return gb, step, np.broadcast_to(d[:, None], keep.shape)[keep]


def _cells(g, d, n_bins):
    """Equal-count bin edges of the measured reads before a pulse, per direction."""
    return {s: np.quantile(g[d == s], np.linspace(0, 1, n_bins + 1)) for s in (1, -1)}


def _ks_cells(edges, meas, sim):
    """KS per (direction, bin) of steps ``sim`` vs ``meas`` (each (g, step, d))."""
    out = []
    for s in (1, -1):
        e = edges[s]
        nb = e.size - 1
        im = np.clip(np.searchsorted(e, meas[0], side="right") - 1, 0, nb - 1)
        is_ = np.clip(np.searchsorted(e, sim[0], side="right") - 1, 0, nb - 1)
        for i in range(nb):
            a = meas[1][(meas[2] == s) & (im == i)]
            b = sim[1][(sim[2] == s) & (is_ == i)]
            out.append(ks_distance(a, b) if a.size and b.size else np.nan)
    return np.array(out)


def _no_spread(device: PulsedDevice) -> PulsedDevice:
    if isinstance(device.rule, StepTable):
        t = device.rule
        c = 0.5 * (t.edges[1:] + t.edges[:-1])
        mean = [t.mean(c, np.full(c.size, s)) for s in (1, -1)]
        rule = replace(t, up=np.repeat(mean[0][:, None], t.levels.size, 1),
                       down=np.repeat(mean[1][:, None], t.levels.size, 1))
        return replace(device, rule=rule, c2c=0.0, write_noise=0.0)
    return replace(device, c2c=0.0, write_noise=0.0)


def _state_blind(device: PulsedDevice, g, y, d, var_read: float) -> PulsedDevice:
    """One table bin over the whole range: the measured steps of each direction, spread
    shrunk by the read noise as the fit does."""
    ys = y.copy()
    for s in (1, -1):
        m = d == s
        mu, var = ys[m].mean(), ys[m].var()
        k = math.sqrt(max(var - 2 * var_read, 0.0) / var) if var > 0 else 0.0
        ys[m] = mu + (ys[m] - mu) * k
    e = np.array([device.g_min, device.g_max])
    lv = np.linspace(0.02, 0.98, 49)
    rule = StepTable.from_samples(e, g[d > 0], ys[d > 0], g[d < 0], ys[d < 0], levels=lv,
                                  interpolation=Interpolation.CONSTANT)
    return PulsedDevice(rule=rule, g_min=device.g_min, g_max=device.g_max)


def ramp_goodness(device: PulsedDevice, sigma_read: float, ramps: PulseRamps, *,
                  rng: np.random.Generator, n_bins: int = 8, n_copies: int = 5,
                  n_replicates: int = 20) -> PulseKS:
    """KS of simulated vs measured single-pulse steps per (direction, conductance bin).

    Parameters
    ----------
    device : PulsedDevice
        The fitted device.
    sigma_read : float
        Std of the read error added to every simulated read [S].
    ramps : PulseRamps
        The measured ramps.
    rng : numpy.random.Generator
        Draws the model's copies, then the floor's replicates, then the baselines.
    n_bins : int
        Equal-count conductance bins per direction.
    n_copies : int
        Simulated copies of every ramp for the model's samples.
    n_replicates : int
        Replicates of the sampling floor.

    Returns
    -------
    PulseKS
    """
    _check(rng, n_bins, "n_bins")
    _check(rng, n_copies, "n_copies")
    _check(rng, n_replicates, "n_replicates")
    g, dg, ramp = ramps.steps()
    d = ramps.direction[ramp]
    meas = (g, dg, d)
    edges = _cells(g, d, n_bins)
    model = _simulate(device, ramps, sigma_read, n_copies, rng)
    ks = _ks_cells(edges, meas, model)
    reps = np.array([_ks_cells(edges, _simulate(device, ramps, sigma_read, 1, rng), model)
                     for _ in range(n_replicates)])
    floor = np.quantile(reps, 0.95, axis=0)
    base = {}
    for name, dev in (("state-blind", _state_blind(device, g, d * dg, d, sigma_read**2)),
                      ("no spread", _no_spread(device))):
        base[name] = _ks_cells(edges, meas, _simulate(dev, ramps, sigma_read, n_copies, rng))
    rng_lo = np.concatenate([edges[s][:-1] for s in (1, -1)])
    rng_hi = np.concatenate([edges[s][1:] for s in (1, -1)])
    n = _counts(edges, meas)
    return PulseKS(direction=np.repeat([1, -1], n_bins), bins=np.column_stack([rng_lo,
                   rng_hi]), n=n, ks=ks, floor=floor, baselines=base,
                   n_replicates=n_replicates)


def _counts(edges, meas):
    out = []
    for s in (1, -1):
        e = edges[s]
        nb = e.size - 1
        i = np.clip(np.searchsorted(e, meas[0][meas[2] == s], side="right") - 1, 0, nb - 1)
        out.append(np.bincount(i, minlength=nb))
    return np.concatenate(out)


def read_resolution(values) -> float:
    """The coarsest power of ten [S] of which at least 90 % of the nonzero ``values`` are
    whole multiples (within 1e-6 of it); 0 when none from 1 mS down to 1 pS is.

    Parameters
    ----------
    values : array_like
        Conductances or steps [S].
    """
    v = np.abs(np.asarray(values, dtype=np.float64).ravel())
    v = v[v > 0]
    if v.size == 0:
        return 0.0
    for k in range(-3, -13, -1):
        res = 10.0**k
        q = v / res
        if np.mean(np.abs(q - np.round(q)) < 1e-6 * np.maximum(1.0, q)) >= 0.9 and \
                np.mean(np.round(q) >= 1) >= 0.5:
            return res
    return 0.0


def _table_steps(device, j, s, table: PulseStepTable, n, res, rng):
    """``n`` one-pulse steps of ``device`` from conductances in the central half of bin j,
    in the change's sign, read through resolution ``res``."""
    c = table.g_bins
    h = (c[1] - c[0]) / 4.0
    g = np.clip(c[j] + h * (2 * rng.random(n) - 1), device.g_min, device.g_max)
    g1 = device.pulse(g, np.full(n, s), rng)
    if res > 0:
        return res * (np.round(g1 / res) - np.round(g / res))
    return g1 - g


def table_goodness(device: PulsedDevice, table: PulseStepTable, measured: PulsedDevice, *,
                   rng: np.random.Generator, n_samples: int = 2000,
                   n_replicates: int = 20) -> PulseKS:
    """KS of the device's one-pulse steps vs a step table's, per (direction, bin).

    Parameters
    ----------
    device : PulsedDevice
        The fitted device.
    table : PulseStepTable
        The measured table.
    measured : PulsedDevice
        The measured table as a device (a :class:`~xbarlab.devices.pulsed.StepTable` rule,
        e.g. from :func:`~xbarlab.calibration.pulsed.step_table_rule`): the steps standing
        for the measured ones are drawn from it.
    rng : numpy.random.Generator
        Draws the measured and model samples, then the floor's replicates and baselines.
    n_samples : int
        Steps drawn per cell on each side.
    n_replicates : int
        Replicates of the sampling floor.

    Returns
    -------
    PulseKS
    """
    _check(rng, n_samples, "n_samples")
    _check(rng, n_replicates, "n_replicates")
    res = read_resolution(np.concatenate([table.steps_up.ravel(),
                                          table.steps_down.ravel()]))
    nb = table.g_bins.size
    cells = [(s, j) for s in (1, -1) for j in range(nb)]
    meas = [_table_steps(measured, j, s, table, n_samples, res, rng) for s, j in cells]
    model = [_table_steps(device, j, s, table, n_samples, res, rng) for s, j in cells]
    ks = np.array([ks_distance(a, b) for a, b in zip(meas, model, strict=True)])
    reps = np.array([[ks_distance(_table_steps(device, j, s, table, n_samples, res, rng), b)
                      for (s, j), b in zip(cells, model, strict=True)]
                     for _ in range(n_replicates)])
    floor = np.quantile(reps, 0.95, axis=0)
    blind = _state_blind_table(measured)
    base = {}
    for name, dev in (("state-blind", blind), ("no spread", _no_spread(device))):
        base[name] = np.array([ks_distance(a, _table_steps(dev, j, s, table, n_samples, res,
                                                           rng))
                               for (s, j), a in zip(cells, meas, strict=True)])
    e = measured.rule.edges
    bins = np.array([[e[j], e[j + 1]] for _, j in cells])
    return PulseKS(direction=np.array([s for s, _ in cells]), bins=bins,
                   n=np.full(len(cells), n_samples), ks=ks, floor=floor, baselines=base,
                   n_replicates=n_replicates)


def _state_blind_table(measured: PulsedDevice) -> PulsedDevice:
    """All bins of a measured table pooled into one (equal weight per bin)."""
    t = measured.rule
    lv = t.levels
    pooled = []
    for q in (t.up, t.down):
        x = np.sort(np.concatenate([np.interp(np.linspace(0, 1, 201)[1:-1], lv, row)
                                    for row in q]))
        pooled.append(np.quantile(x, lv)[None, :])
    rule = StepTable(edges=np.array([measured.g_min, measured.g_max]), levels=lv,
                     up=pooled[0], down=pooled[1])
    return PulsedDevice(rule=rule, g_min=measured.g_min, g_max=measured.g_max)
