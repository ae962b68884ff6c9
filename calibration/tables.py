"""Turn a measurement table (one row per read) into per-device arrays for fitting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataFormatError

ROLES = ("device", "g", "time", "time_point", "g_target", "g_initial", "level", "cycle")


def _col(obj, role):
    if isinstance(obj, Mapping):
        v = obj.get(role)
    else:
        v = getattr(obj, role, None)
    return None if v is None else np.asarray(v)


def sources_of(meas) -> list[str]:
    """Paths of the data files a measurement object came from (may be empty)."""
    items = meas if _is_sequence(meas) else [meas]
    out: list[str] = []
    for m in items:
        for name in ("sources", "paths", "source", "path"):
            v = m.get(name) if isinstance(m, Mapping) else getattr(m, name, None)
            if v is None:
                continue
            if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
                v = [v]
            out.extend(str(getattr(x, "path", x)) for x in v)
            break
    return out


def _is_sequence(meas) -> bool:
    return isinstance(meas, (list, tuple))


def columns(meas) -> dict[str, np.ndarray | None]:
    """Role -> array for one measurement object or a list of them (rows concatenated;
    device ids of later tables are offset so that they stay distinct)."""
    items = list(meas) if _is_sequence(meas) else [meas]
    if not items:
        raise DataFormatError("no measurements given")
    cols = [{r: _col(m, r) for r in ROLES} for m in items]
    out: dict[str, np.ndarray | None] = {}
    for r in ROLES:
        present = [c[r] is not None for c in cols]
        if any(present) and not all(present):
            raise DataFormatError(f"column role {r!r} is present in some tables and missing in "
                                  "others; give every file the same roles")
    for c in cols:
        if c["g"] is None:
            raise DataFormatError("measurements lack the required conductance column 'g' [S]")
    offset = 0
    devs = []
    for c in cols:
        n = c["g"].size
        if c["device"] is None:
            d = np.arange(n, dtype=np.int64)  # each row its own device
        else:
            _, d = np.unique(c["device"], return_inverse=True)
        devs.append(d.astype(np.int64) + offset)
        offset += int(d.max()) + 1 if d.size else 0
    for r in ROLES:
        if r == "device":
            out[r] = np.concatenate(devs)
        elif cols[0][r] is None:
            out[r] = None
        else:
            out[r] = np.concatenate([np.asarray(c[r]).ravel() for c in cols])
    n = out["g"].size
    for r, v in out.items():
        if v is not None and v.size != n:
            raise DataFormatError(f"column {r!r} has {v.size} rows, 'g' has {n}")
    g = out["g"].astype(np.float64)
    if not np.all(np.isfinite(g)):
        raise DataFormatError("conductance column 'g' holds NaN or infinite values")
    out["g"] = g
    for r in ("time", "time_point", "g_target", "g_initial"):
        if out[r] is not None:
            out[r] = out[r].astype(np.float64)
    return out


@dataclass
class Pivot:
    """Reads pivoted to (device, time point).

    ``g``/``t``: (n_dev, n_tp) reads [S] and actual read times [s] (NaN: missing);
    ``tp``: nominal time of each column [s]; ``g0``: each device's reference conductance
    [S] (g_initial, else the earliest read); ``target``: g_target per device [S] or None;
    ``level``: level label per device (float) or None; ``device``: device index.
    """

    g: np.ndarray
    t: np.ndarray
    tp: np.ndarray
    g0: np.ndarray
    target: np.ndarray | None
    level: np.ndarray | None
    device: np.ndarray

    @property
    def n_dev(self) -> int:
        return self.g.shape[0]

    def devices(self, rows) -> Pivot:
        """The pivot of the devices ``rows`` (indices or a boolean mask over devices), every
        time point kept."""
        return Pivot(g=self.g[rows], t=self.t[rows], tp=self.tp, g0=self.g0[rows],
                     target=None if self.target is None else self.target[rows],
                     level=None if self.level is None else self.level[rows],
                     device=self.device[rows])


def _per_device(values, inv, n_dev, name):
    out = np.full(n_dev, np.nan)
    out[inv] = values
    # consistency: a per-device quantity must not vary across a device's rows
    lo = np.full(n_dev, np.inf)
    hi = np.full(n_dev, -np.inf)
    np.minimum.at(lo, inv, values)
    np.maximum.at(hi, inv, values)
    bad = np.nonzero(hi - lo > 1e-9 * np.maximum(np.abs(hi), 1e-30))[0]
    if bad.size:
        raise DataFormatError(f"{name} differs between reads of one device (device index "
                              f"{bad[0]}: {lo[bad[0]]:.6g} vs {hi[bad[0]]:.6g})")
    return out


def time_points(cols) -> tuple[np.ndarray, np.ndarray]:
    """Nominal time point of each row and the sorted distinct time points [s]."""
    if cols["time_point"] is not None:
        tp = cols["time_point"]
    elif cols["time"] is not None:
        t = cols["time"]
        uniq = np.unique(t)
        if uniq.size <= 64:
            tp = t
        else:  # continuous read times: group into tenth-of-a-decade bins
            key = np.where(t > 0, np.round(np.log10(np.maximum(t, 1e-30)) * 10) / 10, -np.inf)
            tp = np.where(np.isfinite(key), 10.0**key, 0.0)
    else:
        tp = np.zeros(cols["g"].size)
    return tp, np.unique(tp)


def pivot(cols, *, use_initial: bool) -> Pivot:
    """Pivot rows to (device, time point); repeated reads of one cell at one time point are
    averaged (their spread is the read noise, fitted separately)."""
    _, inv = np.unique(cols["device"], return_inverse=True)
    n_dev = int(inv.max()) + 1
    tp_row, tps = time_points(cols)
    k = np.searchsorted(tps, tp_row)
    t_row = cols["time"] if cols["time"] is not None else tp_row
    idx = inv * tps.size + k
    cnt = np.bincount(idx, minlength=n_dev * tps.size).astype(np.float64)
    gs = np.bincount(idx, weights=cols["g"], minlength=n_dev * tps.size)
    ts = np.bincount(idx, weights=t_row, minlength=n_dev * tps.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (gs / cnt).reshape(n_dev, tps.size)
        t = (ts / cnt).reshape(n_dev, tps.size)
    target = (_per_device(cols["g_target"], inv, n_dev, "g_target")
              if cols["g_target"] is not None else None)
    level = (_per_device(cols["level"].astype(np.float64), inv, n_dev, "level")
             if cols["level"] is not None else None)
    if use_initial:
        g0 = _per_device(cols["g_initial"], inv, n_dev, "g_initial")
    else:
        first = np.argmax(np.isfinite(g), axis=1)
        g0 = g[np.arange(n_dev), first]
    return Pivot(g=g, t=t, tp=tps, g0=g0, target=target, level=level, device=np.arange(n_dev))


def level_labels(pv: Pivot, *, by: str, n_bins: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Level index per device and each level's representative conductance [S].

    ``by``: "level" (the level column), "target" (distinct targets, binned when
    continuous) or "g0" (quantile bins of the reference conductance).
    """
    if by == "level" and pv.level is not None:
        labels, lev = np.unique(pv.level, return_inverse=True)
        centre = np.array([np.median(pv.g0[lev == i]) for i in range(labels.size)])
        return lev, centre
    x = pv.target if by == "target" and pv.target is not None else pv.g0
    uniq = np.unique(x)
    if uniq.size <= max(n_bins, 64) and uniq.size < x.size / 3:
        lev = np.searchsorted(uniq, x)
        return lev, uniq.astype(np.float64)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)))
    lev = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, edges.size - 2)
    centre = np.array([np.median(x[lev == i]) if np.any(lev == i) else np.nan
                       for i in range(edges.size - 1)])
    return lev, centre
