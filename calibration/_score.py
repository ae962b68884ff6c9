"""Public scoring helpers: device splits, KS tables against measurements, baselines."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from . import _goodness, _table


def split_devices(measurements, *, fraction: float = 0.5, rng: np.random.Generator):
    """Split a table by device (cell address) at random into two role -> array tables.

    ``fraction``: share of devices in the first part [1]; ``rng``: the generator that
    decides the split (fixed seed: fixed split). Every read of a device lands in the same
    part. Returns ``(first, second)``, mappings accepted by :func:`fit`.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must be in (0, 1), got {fraction}")
    cols = _table.columns(measurements)
    ids = np.unique(cols["device"])
    pick = rng.permutation(ids.size)[: int(round(fraction * ids.size))]
    first = np.isin(cols["device"], ids[pick])
    srcs = _table.sources_of(measurements)

    def sub(m):
        d = {k: (None if v is None else v[m]) for k, v in cols.items()}
        d["sources"] = srcs
        return d

    return sub(first), sub(~first)


def _levels(pv, labels_from):
    """Level index per device of ``pv`` and (labels, conductances) shared with ``labels_from``."""
    ref = pv if labels_from is None else labels_from
    if ref.level is not None and pv.level is not None:
        labels = np.unique(ref.level)
        centres = np.array([np.median(ref.g0[ref.level == v]) for v in labels])
        lev = np.searchsorted(labels, pv.level)
        lev = np.where((lev < labels.size) & (labels[np.minimum(lev, labels.size - 1)]
                                              == pv.level), lev, -1)
        return lev, labels, centres
    by = "target" if pv.target is not None else "g0"
    lev, centres = _table.level_labels(pv, by=by)
    return lev, np.arange(centres.size), centres


def ks_table(model, measurements, *, rng: np.random.Generator, n_samples: int = 20,
             min_devices: int = 50, t: float | None = None) -> _goodness.KSTable:
    """KS distance per (level, time point > 0) between measured reads and model samples.

    For each device, ``n_samples`` cells are sampled from ``model`` given the device's
    input (its target for target-conditioned models, its first read otherwise) at the
    cell's median read time; cells with fewer than ``min_devices`` devices are NaN.
    ``t``: restrict to the time point ``t`` [s].
    """
    cols = _table.columns(measurements)
    use_initial = cols["g_initial"] is not None
    pv = _table.pivot(cols, use_initial=use_initial)
    lev, labels, centres = _levels(pv, None)
    return _goodness.ks_table(model, pv, lev, labels, centres, rng=rng, n_samples=n_samples,
                              min_devices=min_devices, t_only=t)


def baseline_tables(train, test, *, t_from: float, rng: np.random.Generator,
                    n_samples: int = 20, min_devices: int = 50, t: float | None = None):
    """KS tables of the two simple baselines on a split (see :mod:`._goodness`).

    "carry forward": the change since the first read measured at ``t_from`` [s], kept
    unchanged at later times; "gaussian log-linear": per level a Gaussian change whose
    mean and standard deviation are lines in log10 t fitted on 0 < t <= ``t_from``.
    ``train``/``test``: tables (e.g. from :func:`split_devices`) with the first read
    (``g_initial``) and a ``level`` column. Returns ``{name: KSTable}``.
    """
    ctr = _table.columns(train)
    cte = _table.columns(test)
    pvr = _table.pivot(ctr, use_initial=ctr["g_initial"] is not None)
    pve = _table.pivot(cte, use_initial=cte["g_initial"] is not None)
    lev_r, labels, centres = _levels(pvr, None)
    lev_e, _, _ = _levels(pve, pvr)
    keep_r = pvr.tp <= t_from
    pvr.g = np.where(keep_r[None, :], pvr.g, np.nan)
    out = {}
    for name, make in (("carry forward", _goodness.baseline_carry_forward(pvr, lev_r, t_from)),
                       ("gaussian log-linear",
                        _goodness.baseline_gaussian_loglinear(pvr, lev_r, t_from))):
        out[name] = _goodness.ks_table_per_level(make, pve, lev_e, labels, centres, rng=rng,
                                                 n_samples=n_samples, min_devices=min_devices,
                                                 t_only=t)
    return out
