"""Torch side of device-derived noise files (written by ``xbarlab export-noise``).

Loading needs numpy, torch and h5py only: :mod:`xbarlab.formats` is imported inside
:func:`load_noise` and neither devices/ nor numba is touched, so training against a
device's noise runs wherever torch does (GPU included).

A file holds, per time t after programming, quantile tables of ``Δw / max|W|`` on a grid
of normalised weights ``u = w / max|W|`` for the weight mapping it records
(``NoiseFile.tables.mapping``, a ``devices.mapping.WeightMapping``; see
:mod:`xbarlab.nn.export`). The noise model
returned here is a :class:`~xbarlab.nn.noise.QuantileNoise`: for a layer tensor
``w`` and standard normals ``z`` it returns ``Δw = max|w| · Q(u, Φ(z))`` with ``Q``
bilinear in the table, so the draw is a deterministic function of ``z`` (``-z`` gives the
antithetic partner), sampled on ``w``'s device and dtype from the caller's
:class:`torch.Generator`. The mean shift μ(u, t) is part of ``Q`` (drift shrinks the
weights) and is kept when the spread is rescaled.

Several times in one file: ``time=None`` gives their equal-weight **mixture**, each
weight's Δw drawn from ``(1/T) Σ_t P_t(Δw | u)`` (the mixture's quantile function is
tabulated once, on load, by inverting the averaged CDFs); ``time=t`` picks one stored time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .export import NoiseTables
from .noise import QuantileNoise

__all__ = ["NoiseFile", "load_noise", "mixture_table"]


def _check_time(time) -> float:
    if isinstance(time, (str, bool)):
        raise ConfigError(f"time must be a number of seconds, got {time!r}")
    try:
        t = float(time)
    except (TypeError, ValueError):
        raise ConfigError(f"time must be a number of seconds, got {time!r}") from None
    if not np.isfinite(t) or t < 0:
        raise ConfigError(f"time must be finite and >= 0 s, got {time!r}")
    return t


def mixture_table(levels: np.ndarray, quantiles: np.ndarray, means: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Quantile table of the equal-weight mixture of ``T`` tabulated distributions per row.

    ``levels`` (k,); ``quantiles`` (T, m, k); ``means`` (T, m). Each component's CDF is the
    piecewise-linear inverse of its table (its mass below the first level sits on the first
    quantile, as the sampler holds it there); the CDFs are averaged on the union of the
    components' quantile values and inverted at ``levels``. Returns ((m, k), (m,)).
    """
    T, m, k = quantiles.shape
    out = np.empty((m, k))
    for i in range(m):
        x = np.unique(quantiles[:, i, :].ravel())
        if x.size == 1:
            out[i] = x[0]
            continue
        F = np.zeros(x.size)
        for t in range(T):
            qt = quantiles[t, i]
            qu = np.unique(qt)
            # at ties (atoms) the CDF reaches the largest level mapped to that value
            pt = levels[np.searchsorted(qt, qu, side="right") - 1]
            Ft = np.interp(x, qu, pt, left=0.0, right=1.0)
            F += Ft
        F /= T
        F = np.maximum.accumulate(F)
        Fu, first = np.unique(F, return_index=True)
        out[i] = np.interp(levels, Fu, x[first])
    return np.maximum.accumulate(out, axis=1), means.mean(axis=0)


class NoiseFile:
    """A loaded noise file: the tables (numpy) and the torch noise models built from them."""

    def __init__(self, tables: NoiseTables, source: str = ""):
        self.tables = tables
        self.source = source

    @classmethod
    def load(cls, path) -> NoiseFile:
        """Read ``path`` (refuses newer format or layout versions and wrong units)."""
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"noise file {p} does not exist")
        return cls(NoiseTables.read(p), source=str(p))

    @property
    def times(self) -> np.ndarray:
        """Stored times after programming (T,) [s]."""
        return self.tables.times

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for metrics files and reports."""
        t = self.tables
        return {"source": self.source, "device": t.device_name,
                "times_s": [float(x) for x in t.times], "compensation": t.compensation,
                "conditioning": t.conditioning, "weights_map_to": t.weights_map_to,
                "g_min_S": t.g_min, "g_max_S": t.g_max, "mapping": t.mapping.to_dict(),
                "n_samples": t.n_samples,
                "n_w": int(t.w_grid.size), "n_levels": int(t.levels.size)}

    def noise(self, time=None, *, scale: float = 1.0) -> QuantileNoise:
        """The noise model at stored ``time`` [s] or, with ``time=None``,
        the mixture over all stored times; ``scale`` multiplies the spread about the mean."""
        t = self.tables
        if time is None:
            if t.times.size == 1:
                q, mean = t.quantiles[0], t.mean[0]
                label = f"t={t.times[0]:g}s"
            else:
                q, mean = mixture_table(t.levels, t.quantiles, t.mean)
                label = "mixture of t=" + ",".join(f"{x:g}" for x in t.times) + "s"
        else:
            i = t.time_index(_check_time(time))
            q, mean = t.quantiles[i], t.mean[i]
            label = f"t={t.times[i]:g}s"
        return QuantileNoise(t.w_grid, t.levels, q, mean=mean, scale=scale,
                             source=f"{self.source} ({label})", mapping=t.mapping)

    def output_noise_std(self) -> float:
        """Periphery output noise relative to the full-scale output [1] (0 if not stored)."""
        p = self.tables.periphery
        return 0.0 if p is None else float(p.get("output_noise_std", 0.0))


def load_noise(path, *, time=None, scale: float = 1.0) -> QuantileNoise:
    """Shortcut: ``NoiseFile.load(path).noise(time, scale=scale)``."""
    return NoiseFile.load(path).noise(time, scale=scale)
