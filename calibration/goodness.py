"""Goodness of fit: KS distance per (level, time point) between measured reads and samples
of a device model or of a baseline; device splits for held-out scoring."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import tables

__all__ = ["ks_distance", "ks_distance_rows", "KSTable", "ks_table", "ks_table_of_pivot",
           "level_index", "split_devices", "baseline_tables", "baseline_carry_forward",
           "baseline_gaussian_loglinear", "GoodnessTable", "goodness_table",
           "last_fitted_time", "model_levels"]


def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov distance sup |F_a - F_b| [1]."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if a.size == 0 or b.size == 0:
        return np.nan
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / a.size
    fb = np.searchsorted(b, x, side="right") / b.size
    return float(np.max(np.abs(fa - fb)))


@dataclass
class KSTable:
    """KS distances between measured reads and model samples.

    ``level_g``: each row's level conductance [S]; ``level``: level labels;
    ``t``: each column's nominal time [s]; ``ks``: (n_level, n_time) KS distance [1]
    (NaN where a cell has fewer than ``min_devices`` devices); ``n``: devices per cell.
    """

    level: np.ndarray
    level_g: np.ndarray
    t: np.ndarray
    ks: np.ndarray
    n: np.ndarray

    @property
    def median(self) -> float:
        v = self.ks[np.isfinite(self.ks)]
        return float(np.median(v)) if v.size else np.nan

    def column_median(self, t: float) -> float:
        j = int(np.argmin(np.abs(np.log(self.t) - np.log(t))))
        v = self.ks[:, j]
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else np.nan

    def worst(self, k: int = 3) -> list[tuple[float, float, float, int]]:
        """The k worst cells as (level conductance [S], time [s], KS, devices)."""
        flat = np.where(np.isfinite(self.ks), self.ks, -1).ravel()
        out = []
        for i in np.argsort(flat)[::-1][:k]:
            if flat[i] < 0:
                break
            r, c = np.unravel_index(i, self.ks.shape)
            out.append((float(self.level_g[r]), float(self.t[c]), float(self.ks[r, c]),
                        int(self.n[r, c])))
        return out

    def to_markdown(self) -> str:
        head = "| level | g [uS] | " + " | ".join(f"t = {t:.3g} s" for t in self.t) + " |"
        sep = "|---|---|" + "---|" * self.t.size
        rows = [head, sep]
        for i in range(self.level.size):
            cells = " | ".join("" if not np.isfinite(v) else f"{v:.3f} ({n})"
                               for v, n in zip(self.ks[i], self.n[i], strict=True))
            rows.append(f"| {self.level[i]:g} | {self.level_g[i] * 1e6:.2f} | {cells} |")
        return "\n".join(rows)


def ks_table_of_pivot(draw_for_level, pv, lev, labels, centres, *, rng, n_samples=20,
                      min_devices=50, t_only=None, input_g=None) -> KSTable:
    """KS table of sampled reads against the pivoted reads ``pv``.

    ``draw_for_level(i)``: the sampler of level ``i``, ``draw(g_in, times, rng) ->
    (T, n * n_samples)`` reads [S] (``n_samples`` per device, device-major), or None when
    the level cannot be sampled; it is asked only for levels with a cell of at least
    ``min_devices`` devices, in level order. ``lev``: level index per device;
    ``labels``/``centres``: the levels' labels and conductances [S]; ``t_only``: restrict
    to the time point ``t_only`` [s]; ``input_g``: the devices' model input [S] (default:
    their first reads ``pv.g0``). Cells with fewer than ``min_devices`` devices are NaN.
    """
    cols = np.nonzero(pv.tp > 0)[0]
    if t_only is not None:
        cols = np.array([k for k in cols if np.isclose(pv.tp[k], t_only, rtol=1e-6)], dtype=int)
    t_nom = np.array([np.nanmedian(pv.t[:, k]) for k in cols])
    g_in = pv.g0 if input_g is None else input_g
    nl = len(labels)
    ks = np.full((nl, cols.size), np.nan)
    n = np.zeros((nl, cols.size), dtype=np.int64)
    for i in range(nl):
        m = lev == i
        has = np.isfinite(pv.g[m][:, cols]) if cols.size else np.zeros((m.sum(), 0), bool)
        n[i] = has.sum(axis=0)
        if not np.any(n[i] >= min_devices):
            continue
        draw = draw_for_level(i)
        if draw is None:
            continue
        s = draw(g_in[m], t_nom, rng)  # (T, n_dev * n_samples)
        for j, k in enumerate(cols):
            if n[i, j] < min_devices:
                continue
            meas = pv.g[m, k][has[:, j]]
            model = s[j].reshape(-1, n_samples)[has[:, j]].ravel()
            ks[i, j] = ks_distance(meas, model)
    return KSTable(level=np.asarray(labels), level_g=np.asarray(centres), t=t_nom, ks=ks, n=n)


def _model_sampler(model, n_samples, g_level=None):
    """``draw(g_in, times, rng)`` of ``model``: ``n_samples`` cells per input, device-major;
    ``g_level``: the level conductance [S] every cell is programmed with (None: none)."""
    def draw(g0, times, rng):
        rep = np.repeat(g0, n_samples)
        kw = {} if g_level is None else {"g_level": np.full(rep.size, g_level)}
        state = model.program(rep, rng, **kw)
        return model.read(state, np.asarray(times, dtype=np.float64), rng)  # (T, n*k)

    return draw


def model_levels(model, pv, centres):
    """The level conductance [S] to program the cells of each scored level with, or None.

    A model that takes a cell's level with its first read (``model.takes_level``: a
    relaxation table fitted on labelled levels, which may overlap in the first read) is
    given, for each scored level of conductance ``centres`` [S] (its median first read),
    the conductance of the model's own level nearest it (``model.drift_law.g``: the
    scored and the fitted devices' medians differ by their sampling noise), when the
    scored reads ``pv`` carry a level column; any other model, or reads without levels
    (whose levels are bins of the first read), get None."""
    if not (getattr(model, "takes_level", False) and pv.level is not None):
        return None
    grid = np.asarray(model.drift_law.g, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    return grid[np.argmin(np.abs(c[:, None] - grid[None, :]), axis=1)]


def _level_sampler(model, n_samples, levels):
    """``draw_for_level(i)`` of ``model``, programming level i's cells with ``levels[i]``
    [S] (``levels`` None: without a level)."""
    return lambda i: _model_sampler(model, n_samples, None if levels is None else levels[i])


def _scored(model, measurements):
    """Pivot of the scored reads, level index, level labels and conductances [S], the
    model input of each device (target or first read, as the model is conditioned) and
    each level's conductance to give the model (:func:`model_levels`)."""
    cols = tables.columns(measurements)
    pv = tables.pivot(cols, use_initial=cols["g_initial"] is not None)
    lev, labels, centres = level_index(pv, None)
    cond = getattr(model, "conditioning", "target")
    g_in = pv.target if cond == "target" and pv.target is not None else pv.g0
    return pv, lev, labels, centres, g_in, model_levels(model, pv, centres)


def ks_table(model, measurements, *, rng: np.random.Generator, n_samples: int = 20,
             min_devices: int = 50, t: float | None = None) -> KSTable:
    """KS distance per (level, time point > 0) between measured reads and model samples.

    For each device, ``n_samples`` cells are sampled from ``model`` given the device's
    input (its target for target-conditioned models, its first read otherwise, with its
    level's conductance for a model that takes it: :func:`model_levels`) at the
    cell's median read time; cells with fewer than ``min_devices`` devices are NaN.
    ``t``: restrict to the time point ``t`` [s]; ``rng``: the generator of the samples.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    pv, lev, labels, centres, g_in, levels = _scored(model, measurements)
    return ks_table_of_pivot(_level_sampler(model, n_samples, levels), pv, lev, labels,
                             centres, rng=rng,
                             n_samples=n_samples, min_devices=min_devices, t_only=t,
                             input_g=g_in)


def split_devices(measurements, *, fraction: float = 0.5, rng: np.random.Generator):
    """Split a table by device (cell address) at random into two role -> array tables.

    ``fraction``: share of devices in the first part [1]; ``rng``: the generator that
    decides the split (fixed seed: fixed split). Every read of a device lands in the same
    part. Returns ``(first, second)``, mappings accepted by :func:`fit`.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    cols = tables.columns(measurements)
    ids = np.unique(cols["device"])
    pick = rng.permutation(ids.size)[: int(round(fraction * ids.size))]
    first = np.isin(cols["device"], ids[pick])
    srcs = tables.sources_of(measurements)

    def sub(m):
        d = {k: (None if v is None else v[m]) for k, v in cols.items()}
        d["sources"] = srcs
        return d

    return sub(first), sub(~first)


def level_index(pv, labels_from):
    """Level index per device of the pivot ``pv`` and (labels, conductances [S]) of the
    levels, taken from ``labels_from`` (a pivot of other devices) when given."""
    ref = pv if labels_from is None else labels_from
    if ref.level is not None and pv.level is not None:
        labels = np.unique(ref.level)
        centres = np.array([np.median(ref.g0[ref.level == v]) for v in labels])
        lev = np.searchsorted(labels, pv.level)
        lev = np.where((lev < labels.size) & (labels[np.minimum(lev, labels.size - 1)]
                                              == pv.level), lev, -1)
        return lev, labels, centres
    by = "target" if pv.target is not None else "g0"
    lev, centres = tables.level_labels(pv, by=by)
    return lev, np.arange(centres.size), centres


# ----------------------------------------------------------------------------- baselines


def baseline_carry_forward(pv_train, lev_train, t_from: float):
    """Baseline: the change since the first read at ``t_from`` [s] (training devices of the
    level, resampled) carried unchanged to every later time."""
    k = int(np.argmin(np.abs(pv_train.tp - t_from)))
    d = pv_train.g[:, k] - pv_train.g0

    def make(i):
        dd = d[(lev_train == i) & np.isfinite(d)]

        def draw(g0, times, rng, n_samples):
            rep = np.repeat(g0, n_samples)
            return np.vstack([rep + rng.choice(dd, rep.size) for _ in times])

        return draw

    return make


def baseline_gaussian_loglinear(pv_train, lev_train, t_fit_max: float):
    """Baseline: per level, a Gaussian change whose mean and standard deviation are
    straight lines in log10 t, fitted on the training times 0 < t <= ``t_fit_max`` [s]."""
    cols = [k for k in np.nonzero(pv_train.tp > 0)[0] if pv_train.tp[k] <= t_fit_max]
    d = pv_train.g - pv_train.g0[:, None]

    def make(i):
        m = lev_train == i
        lt, mu, sd = [], [], []
        for k in cols:
            x = d[m, k]
            x = x[np.isfinite(x)]
            if x.size >= 5:
                lt.append(np.log10(np.nanmedian(pv_train.t[m, k])))
                mu.append(x.mean())
                sd.append(x.std())
        pm = np.polyfit(lt, mu, 1)
        ps = np.polyfit(lt, sd, 1)

        def draw(g0, times, rng, n_samples):
            rep = np.repeat(g0, n_samples)
            out = []
            for t in times:
                lt_ = np.log10(t)
                out.append(rep + np.polyval(pm, lt_)
                           + max(np.polyval(ps, lt_), 0.0) * rng.standard_normal(rep.size))
            return np.vstack(out)

        return draw

    return make


def baseline_tables(train, test, *, t_from: float, rng: np.random.Generator,
                    n_samples: int = 20, min_devices: int = 50, t: float | None = None):
    """KS tables of the two simple baselines on a split.

    "carry forward": the change since the first read measured at ``t_from`` [s], kept
    unchanged at later times; "gaussian log-linear": per level a Gaussian change whose
    mean and standard deviation are lines in log10 t fitted on 0 < t <= ``t_from``.
    ``train``/``test``: tables (e.g. from :func:`split_devices`) with the first read
    (``g_initial``) and a ``level`` column. Returns ``{name: KSTable}``.
    """
    ctr = tables.columns(train)
    cte = tables.columns(test)
    pvr = tables.pivot(ctr, use_initial=ctr["g_initial"] is not None)
    pve = tables.pivot(cte, use_initial=cte["g_initial"] is not None)
    lev_r, labels, centres = level_index(pvr, None)
    lev_e, _, _ = level_index(pve, pvr)
    keep_r = pvr.tp <= t_from
    pvr.g = np.where(keep_r[None, :], pvr.g, np.nan)

    def per_level(make):
        def draw_for_level(i):
            try:
                draw = make(i)
            except (TypeError, ValueError, np.linalg.LinAlgError):
                return None  # level without training data for this baseline
            return lambda g0, times, rng_: draw(g0, times, rng_, n_samples)

        return draw_for_level

    out = {}
    for name, make in (("carry forward", baseline_carry_forward(pvr, lev_r, t_from)),
                       ("gaussian log-linear", baseline_gaussian_loglinear(pvr, lev_r, t_from))):
        out[name] = ks_table_of_pivot(per_level(make), pve, lev_e, labels, centres, rng=rng,
                                      n_samples=n_samples, min_devices=min_devices, t_only=t)
    return out


# ----------------------------------------------------------------------------- sampling floor


#: Relative tolerance between a time point's nominal time and its reads' median time [1].
_T_TOL = 0.05


def ks_distance_rows(data, reference) -> np.ndarray:
    """Two-sample KS distance between each row of ``data`` and one ``reference`` sample.

    Parameters
    ----------
    data : array_like, shape (B, n)
        ``B`` samples of ``n`` values each (no NaN).
    reference : array_like, shape (m,)
        The sample every row is compared with (no NaN).

    Returns
    -------
    numpy.ndarray, shape (B,)
        sup_x |F_row(x) - F_reference(x)| [1] per row: :func:`ks_distance` of the row and
        ``reference``, ties included (each row is scored at its own values, from the
        right and from the left).
    """
    d = np.sort(np.atleast_2d(np.asarray(data, dtype=np.float64)), axis=1)
    ref = np.sort(np.asarray(reference, dtype=np.float64).ravel())
    nb, n = d.shape
    if n == 0 or ref.size == 0:
        return np.full(nb, np.nan)
    idx = np.arange(n)
    first = np.ones(d.shape, bool)
    first[:, 1:] = d[:, 1:] != d[:, :-1]
    last = np.ones(d.shape, bool)
    last[:, :-1] = d[:, :-1] != d[:, 1:]
    fa_left = np.maximum.accumulate(np.where(first, idx, 0), axis=1) / n
    run_end = np.minimum.accumulate(np.where(last, idx, n - 1)[:, ::-1], axis=1)[:, ::-1]
    fa_right = (run_end + 1) / n
    fb_right = np.searchsorted(ref, d, side="right") / ref.size
    fb_left = np.searchsorted(ref, d, side="left") / ref.size
    return np.maximum(np.abs(fa_right - fb_right), np.abs(fa_left - fb_left)).max(axis=1)


def last_fitted_time(model, default: float = np.nan) -> float:
    """The last read time a fitted model saw [s]: its relaxation table's ``t_fit_max``,
    else the last time point of its fit report, else ``default`` [s]."""
    t = getattr(getattr(model, "drift_law", None), "t_fit_max", None)
    if t is not None and np.isfinite(t):
        return float(t)
    tp = getattr(getattr(model, "report", None), "time_points", None)
    if tp is not None and np.size(tp):
        return float(np.max(tp))
    return float(default)


def _median(v) -> float:
    v = np.asarray(v)[np.isfinite(v)]
    return float(np.median(v)) if v.size else np.nan


def _level_text(g_us: np.ndarray) -> str:
    g_us = np.sort(g_us)
    if g_us.size <= 4:
        return ", ".join(f"{g:.3g}" for g in g_us) + " uS"
    return f"{g_us[0]:.3g}-{g_us[-1]:.3g} uS"


@dataclass
class GoodnessTable:
    """Goodness of fit per (level, time point) cell beside the KS that sampling alone gives.

    ``ks``: the model's KS per cell (:class:`KSTable`); ``floor_replicates``: (B, n_level,
    n_time) KS distances [1] of data drawn from the model itself (one read per scored device,
    same inputs and cell sizes) against model samples drawn the way ``ks`` draws them (a
    parametric bootstrap without refits; NaN where ``ks`` is NaN); ``empirical``: KS of the
    empirical bootstrap baseline (reads of the training devices of the same level and time
    point, resampled); ``persistence``: KS of the persistence baseline (each scored
    device's first read plus a training device's change at the latest earlier time point
    read at or before ``t_fit_max``, none before the first time point; NaN at the first
    read itself); ``t_fit_max``: the last time the model was fitted on [s]; ``quantile``:
    the floor's quantile [1].
    """

    ks: KSTable
    floor_replicates: np.ndarray
    empirical: KSTable
    persistence: KSTable
    t_fit_max: float
    quantile: float = 0.95

    @property
    def floor(self) -> np.ndarray:
        """(n_level, n_time) ``quantile`` of the KS under the model [1] (the sampling floor)."""
        reps = self.floor_replicates
        out = np.full(self.ks.ks.shape, np.nan)
        ok = np.isfinite(self.ks.ks) & np.all(np.isfinite(reps), axis=0)
        out[ok] = np.quantile(reps[:, ok], self.quantile, axis=0)
        return out

    @property
    def p_value(self) -> np.ndarray:
        """(n_level, n_time) share of floor replicates at or above the model's KS [1]."""
        b = self.floor_replicates.shape[0]
        p = (1 + np.sum(self.floor_replicates >= self.ks.ks[None], axis=0)) / (b + 1)
        return np.where(np.isfinite(self.floor), p, np.nan)

    @property
    def threshold(self) -> float:
        """Family-wise threshold on KS / floor [1]: the ``quantile`` over replicates of the
        largest ratio of any cell, so that data drawn from the model put no cell above it
        with probability ``quantile``."""
        fl = self.floor
        ok = np.isfinite(fl)
        if not np.any(ok):
            return np.nan
        ratio = self.floor_replicates[:, ok] / np.maximum(fl[ok], 1e-12)
        return float(np.quantile(ratio.max(axis=1), self.quantile))

    @property
    def above_floor(self) -> np.ndarray:
        """(n_level, n_time) True where the model's KS exceeds the sampling floor."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.floor) & (self.ks.ks > self.floor)

    @property
    def failing(self) -> np.ndarray:
        """(n_level, n_time) True where the model's KS exceeds ``threshold`` x floor (the
        cells where the model and the data differ, family-wise error 1 - ``quantile``)."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.floor) & (self.ks.ks > self.threshold * self.floor)

    def extrapolated(self, t: float) -> bool:
        """Whether time ``t`` [s] lies beyond the last fitted time (by more than the 5 %
        that separate a time point's nominal and median read times)."""
        return bool(t > self.t_fit_max * (1 + _T_TOL))

    def per_time(self) -> list[dict]:
        """Per time point with scored cells: a dict of ``t`` [s], ``extrapolated`` (bool:
        beyond the last fitted time), ``cells`` (scored cells), the medians over those cells
        of the model's KS, of the sampling floor and of the two baselines (``ks``,
        ``floor``, ``empirical``, ``persistence`` [1]; NaN where none), and the counts of
        cells above their floor and failing (``above``, ``failing``)."""
        fl, above, fail = self.floor, self.above_floor, self.failing
        rows = []
        for j, t in enumerate(self.ks.t):
            ok = np.isfinite(fl[:, j])
            if not np.any(ok):
                continue
            rows.append({"t": float(t), "extrapolated": self.extrapolated(t),
                         "cells": int(ok.sum()), "ks": _median(self.ks.ks[ok, j]),
                         "floor": _median(fl[ok, j]),
                         "empirical": _median(self.empirical.ks[ok, j]),
                         "persistence": _median(self.persistence.ks[ok, j]),
                         "above": int(above[:, j].sum()), "failing": int(fail[:, j].sum())})
        return rows

    def summary(self) -> dict:
        """JSON-ready summary: ``verdict`` (:meth:`verdict`), ``quantile`` [1],
        ``replicates`` (of the floor), ``threshold`` (family-wise, on KS / floor [1]),
        ``t_fit_max`` [s] and ``per_time`` (:meth:`per_time`); NaN becomes None."""
        def num(v):
            return float(v) if np.isfinite(v) else None

        return {"verdict": self.verdict(), "quantile": float(self.quantile),
                "replicates": int(self.floor_replicates.shape[0]),
                "threshold": num(self.threshold), "t_fit_max": num(self.t_fit_max),
                "per_time": [{k: (num(v) if isinstance(v, float) else v)
                              for k, v in r.items()} for r in self.per_time()]}

    def verdict(self) -> str:
        """One sentence: "indistinguishable from the data at this sample size" or the
        times and levels where the model differs from the data beyond the floor."""
        ok = np.isfinite(self.floor)
        n_cells = int(ok.sum())
        if n_cells == 0:
            return "no cell holds enough devices to score the fit"
        n_above = int(np.sum(self.above_floor))
        fail = self.failing
        pct = round(100 * (1 - self.quantile))
        if not np.any(fail):
            return (f"indistinguishable from the data at this sample size: no cell's KS "
                    f"exceeds what sampling alone gives (family-wise {pct} %); cells above their "
                    f"own {round(100 * self.quantile)} % floor: {n_above} of {n_cells}, "
                    f"{(1 - self.quantile) * n_cells:.1f} expected by chance")
        parts = []
        for j, t in enumerate(self.ks.t):
            rows = np.nonzero(fail[:, j])[0]
            if rows.size == 0:
                continue
            lv = ("every level" if rows.size == ok[:, j].sum() and rows.size > 1 else
                  f"{rows.size} level{'s' if rows.size > 1 else ''} "
                  f"({_level_text(self.ks.level_g[rows] * 1e6)})")
            parts.append(f"t = {t:.3g} s{' (extrapolated)' if self.extrapolated(t) else ''}: "
                         f"{lv}")
        return (f"differs from the data at {int(fail.sum())} of {n_cells} cells beyond the "
                f"sampling floor (family-wise {pct} %): " + "; ".join(parts))


def _floor_replicates(model, pv, lev, g_in, levels, ks, *, rng, n_samples, n_replicates):
    """(B, n_level, n_time) KS of data drawn from ``model`` against model samples
    (``levels``: each level's conductance given to the model [S], or None)."""
    cols = np.nonzero(pv.tp > 0)[0]
    reps = np.full((n_replicates, *ks.ks.shape), np.nan)
    k_all = n_samples + n_replicates
    draw_for_level = _level_sampler(model, k_all, levels)
    for i in range(ks.ks.shape[0]):
        if not np.any(np.isfinite(ks.ks[i])):
            continue
        m = lev == i
        s = draw_for_level(i)(g_in[m], ks.t, rng).reshape(ks.t.size, int(m.sum()), k_all)
        for j, k in enumerate(cols):
            if not np.isfinite(ks.ks[i, j]):
                continue
            has = np.isfinite(pv.g[m, k])
            reps[:, i, j] = ks_distance_rows(s[j, has, n_samples:].T,
                                             s[j, has, :n_samples].ravel())
    return reps


def _training_levels(pvr, pv, centres):
    """Level index (of the scored pivot ``pv``'s levels) of each training device: by the
    level column when both have one, else the nearest level conductance."""
    if pvr.level is not None and pv.level is not None:
        return level_index(pvr, pv)[0]
    x = pvr.target if pv.target is not None and pvr.target is not None else pvr.g0
    c = np.where(np.isfinite(centres), centres, np.inf)
    return np.argmin(np.abs(x[:, None] - c[None, :]), axis=1)


def _baselines(pvr, lev_r, pv, lev, ks, *, t_fit_max, rng, n_samples):
    """KS tables of the empirical bootstrap and of persistence on the cells of ``ks``."""
    cols = np.nonzero(pv.tp > 0)[0]
    emp = np.full(ks.ks.shape, np.nan)
    per = np.full(ks.ks.shape, np.nan)
    with warnings.catch_warnings():  # columns without reads: NaN, as meant
        warnings.simplefilter("ignore", RuntimeWarning)
        t_train = np.nanmedian(np.where(np.isfinite(pvr.g), pvr.t, np.nan), axis=0)
    t_train = np.where(np.isfinite(t_train), t_train, pvr.tp)
    for j, k in enumerate(cols):
        same = np.nonzero(np.isclose(pvr.tp, pv.tp[k], rtol=1e-6))[0]
        before = np.nonzero((pvr.tp > 0) & (pvr.tp < pv.tp[k] * (1 - 1e-6))
                            & (t_train <= t_fit_max * (1 + _T_TOL)))[0]
        carry = baseline_carry_forward(pvr, lev_r, pvr.tp[before[-1]]) if before.size else None
        for i in np.nonzero(np.isfinite(ks.ks[:, j]))[0]:
            m = lev == i
            ok = np.isfinite(pv.g[m, k])
            meas, g0 = pv.g[m, k][ok], pv.g0[m][ok]
            if same.size:
                pool = pvr.g[lev_r == i, same[0]]
                pool = pool[np.isfinite(pool)]
                if pool.size:
                    emp[i, j] = ks_distance(meas, rng.choice(pool, meas.size * n_samples))
            if np.array_equal(meas, g0):
                continue  # the first read itself: nothing to predict
            if carry is None:  # no earlier time point: the first read persists
                per[i, j] = ks_distance(meas, np.repeat(g0, n_samples))
                continue
            try:
                per[i, j] = ks_distance(meas, carry(i)(g0, [pv.tp[k]], rng, n_samples)[0])
            except ValueError:  # no training change of this level to carry
                pass

    def table(v):
        return KSTable(level=ks.level, level_g=ks.level_g, t=ks.t, ks=v, n=ks.n)

    return table(emp), table(per)


def goodness_table(model, measurements, *, rng: np.random.Generator, held_out=None,
                   n_samples: int = 20, n_replicates: int = 100, min_devices: int = 50,
                   t_fit_max: float | None = None, ks: KSTable | None = None) -> GoodnessTable:
    """The model's KS per (level, time point) beside its sampling floor and two baselines.

    Parameters
    ----------
    model : device model
        A model with ``program``/``read`` and ``conditioning`` (e.g. from :func:`fit`).
    measurements : table
        The reads the model was fitted on (any table :func:`fit` accepts); the baselines
        draw from them, and they are scored unless ``held_out`` is given.
    rng : numpy.random.Generator
        Draws, in this order, the model samples of ``ks`` (as :func:`ks_table` draws them:
        the same generator state gives the same table), the floor's replicates and the
        baselines' resamples.
    held_out : table, optional
        Reads of other devices (or later times) to score instead of ``measurements``.
    n_samples : int
        Model samples per scored device [1].
    n_replicates : int
        Replicates of the parametric bootstrap that gives the floor [1]; >= 20.
    min_devices : int
        Cells with fewer devices are not scored [1].
    t_fit_max : float, optional
        Last fitted time [s] (default: :func:`last_fitted_time` of the model, else the last
        time point of ``measurements``); persistence carries no change measured after it.
    ks : KSTable, optional
        The model's KS table of the scored reads, when already computed with these
        ``n_samples`` and ``min_devices`` (then not drawn again).

    Returns
    -------
    GoodnessTable
    """
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    if n_replicates < 20:
        raise ConfigError(f"n_replicates must be >= 20, got {n_replicates}")
    pv, lev, labels, centres, g_in, levels = _scored(model, held_out if held_out is not None
                                                     else measurements)
    n_time = int(np.sum(pv.tp > 0))
    if ks is None:
        ks = ks_table_of_pivot(_level_sampler(model, n_samples, levels), pv, lev, labels,
                               centres, rng=rng, n_samples=n_samples,
                               min_devices=min_devices, input_g=g_in)
    elif ks.ks.shape != (len(labels), n_time):
        raise ConfigError(f"ks has {ks.ks.shape} cells; the scored reads have "
                          f"{(len(labels), n_time)} (levels, time points)")
    reps = _floor_replicates(model, pv, lev, g_in, levels, ks, rng=rng, n_samples=n_samples,
                             n_replicates=n_replicates)
    if held_out is None:
        pvr, lev_r = pv, lev
    else:
        cr = tables.columns(measurements)
        pvr = tables.pivot(cr, use_initial=cr["g_initial"] is not None)
        lev_r = _training_levels(pvr, pv, centres)
    if t_fit_max is None:
        t_fit_max = last_fitted_time(model, float(np.max(pvr.tp)))
    emp, per = _baselines(pvr, lev_r, pv, lev, ks, t_fit_max=t_fit_max, rng=rng,
                          n_samples=n_samples)
    return GoodnessTable(ks=ks, floor_replicates=reps, empirical=emp, persistence=per,
                         t_fit_max=float(t_fit_max))
