"""Goodness of fit: KS distance per (level, time point) between measured and model samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


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


def _sampler_for(model, n_samples):
    def draw(g0, times, rng):
        rep = np.repeat(g0, n_samples)
        state = model.program(rep, rng)
        return model.read(state, np.asarray(times, dtype=np.float64), rng)  # (T, n*k)

    return draw


def ks_table_from_pivot(draw, pv, lev, labels, centres, *, rng, n_samples=20, min_devices=50,
                        t_min_exclusive=0.0, t_only=None, input_g=None) -> KSTable:
    """KS table; ``draw(g_in, times, rng) -> (T, n * n_samples)`` samples model reads."""
    cols = np.nonzero(pv.tp > t_min_exclusive)[0]
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
        s = draw(g_in[m], t_nom, rng)  # (T, n_dev * n_samples)
        for j, k in enumerate(cols):
            if n[i, j] < min_devices:
                continue
            meas = pv.g[m, k][has[:, j]]
            model = s[j].reshape(-1, n_samples)[has[:, j]].ravel()
            ks[i, j] = ks_distance(meas, model)
    return KSTable(level=np.asarray(labels), level_g=np.asarray(centres), t=t_nom, ks=ks, n=n)


def ks_table(model, pv, lev, labels, centres, *, rng, n_samples=20, min_devices=50,
             t_only=None) -> KSTable:
    """KS table of a device model (``sample``-protocol) against pivoted reads."""
    if n_samples < 1:
        raise ConfigError(f"n_samples must be >= 1, got {n_samples}")
    cond = getattr(model, "conditioning", "target")
    g_in = pv.target if cond == "target" and pv.target is not None else pv.g0
    return ks_table_from_pivot(_sampler_for(model, n_samples), pv, lev, labels, centres,
                               rng=rng, n_samples=n_samples, min_devices=min_devices,
                               t_only=t_only, input_g=g_in)


# ----------------------------------------------------------------------------- baselines


def baseline_carry_forward(pv_train, lev_train, t_from: float):
    """Baseline: the change since the first read at ``t_from`` [s] (training devices of the
    level, resampled) carried unchanged to every later time."""
    k = int(np.argmin(np.abs(pv_train.tp - t_from)))
    d = pv_train.g[:, k] - pv_train.g0

    def make(level_index):
        dd = d[(lev_train == level_index) & np.isfinite(d)]

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

    def make(level_index):
        m = lev_train == level_index
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


def ks_table_per_level(make, pv, lev, labels, centres, *, rng, n_samples=20, min_devices=50,
                       t_only=None) -> KSTable:
    """KS table for a baseline built per level by ``make(level_index)``."""
    current = {}

    def draw(g0, times, rng_):
        return current["f"](g0, times, rng_, n_samples)

    cols = np.nonzero(pv.tp > 0)[0]
    if t_only is not None:
        cols = np.array([k for k in cols if np.isclose(pv.tp[k], t_only, rtol=1e-6)], dtype=int)
    t_nom = np.array([np.nanmedian(pv.t[:, k]) for k in cols])
    nl = len(labels)
    ks = np.full((nl, cols.size), np.nan)
    n = np.zeros((nl, cols.size), dtype=np.int64)
    for i in range(nl):
        m = lev == i
        has = np.isfinite(pv.g[m][:, cols])
        n[i] = has.sum(axis=0)
        if not np.any(n[i] >= min_devices):
            continue
        try:
            current["f"] = make(i)
        except (TypeError, ValueError, np.linalg.LinAlgError):
            continue  # level without training data for this baseline
        s = draw(pv.g0[m], t_nom, rng)
        for j, k in enumerate(cols):
            if n[i, j] < min_devices:
                continue
            meas = pv.g[m, k][has[:, j]]
            model = s[j].reshape(-1, n_samples)[has[:, j]].ravel()
            ks[i, j] = ks_distance(meas, model)
    return KSTable(level=np.asarray(labels), level_g=np.asarray(centres), t=t_nom, ks=ks, n=n)
