"""Goodness of fit: KS distance per (level, time point) between measured reads and samples
of a device model or of a baseline; device splits for held-out scoring."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import tables

__all__ = ["ks_distance", "KSTable", "ks_table", "ks_table_of_pivot", "level_index",
           "split_devices", "baseline_tables", "baseline_carry_forward",
           "baseline_gaussian_loglinear"]


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


def _model_sampler(model, n_samples):
    def draw(g0, times, rng):
        rep = np.repeat(g0, n_samples)
        state = model.program(rep, rng)
        return model.read(state, np.asarray(times, dtype=np.float64), rng)  # (T, n*k)

    return draw


def ks_table(model, measurements, *, rng: np.random.Generator, n_samples: int = 20,
             min_devices: int = 50, t: float | None = None) -> KSTable:
    """KS distance per (level, time point > 0) between measured reads and model samples.

    For each device, ``n_samples`` cells are sampled from ``model`` given the device's
    input (its target for target-conditioned models, its first read otherwise) at the
    cell's median read time; cells with fewer than ``min_devices`` devices are NaN.
    ``t``: restrict to the time point ``t`` [s]; ``rng``: the generator of the samples.
    """
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    cols = tables.columns(measurements)
    pv = tables.pivot(cols, use_initial=cols["g_initial"] is not None)
    lev, labels, centres = level_index(pv, None)
    cond = getattr(model, "conditioning", "target")
    g_in = pv.target if cond == "target" and pv.target is not None else pv.g0
    draw = _model_sampler(model, n_samples)
    return ks_table_of_pivot(lambda i: draw, pv, lev, labels, centres, rng=rng,
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
