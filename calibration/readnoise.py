"""Read noise: spread of repeated reads vs level, and the 1/f exponent of a time series."""

from __future__ import annotations

import numpy as np

from ..devices.curves import FittedCurve
from ..devices.fitted import WhiteReadNoise
from ..errors import DataFormatError
from .smooth import smooth_cv


def fit_read_noise(cols, *, min_reads: int = 5):
    """Per device (and time point), the standard deviation of repeated reads (``cycle``).

    Returns ``(WhiteReadNoise, info)``; the curve sigma(g) is smoothed across devices'
    mean conductances (degree by cross-validation); ``info`` holds per-device
    ``g`` [S], ``sigma`` [S], ``n`` reads."""
    from .tables import time_points

    _, inv = np.unique(cols["device"], return_inverse=True)
    tp_row, tps = time_points(cols)
    key = inv * tps.size + np.searchsorted(tps, tp_row)
    uk, kinv = np.unique(key, return_inverse=True)
    n = np.bincount(kinv).astype(np.float64)
    s1 = np.bincount(kinv, weights=cols["g"])
    gm = s1 / n
    # two-pass (centred) variance: reads sit far above their spread (e.g. 250 uS +- 0.02 uS)
    s2 = np.bincount(kinv, weights=(cols["g"] - gm[kinv]) ** 2)
    ok = n >= min_reads
    if not np.any(ok):
        raise DataFormatError(f"a read-noise fit needs >= {min_reads} repeated reads (cycle) of "
                              f"one device at one time; the most any device has is {int(n.max())}")
    mean = s1[ok] / n[ok]
    var = s2[ok] / (n[ok] - 1)
    sig = np.sqrt(var)
    o = np.argsort(mean)
    mean, sig, nn = mean[o], sig[o], n[ok][o]
    # identical mean conductances cannot form a grid: nudge duplicates
    mean = mean + np.arange(mean.size) * 1e-15
    sm = smooth_cv(mean, sig, nn)
    grid = np.unique(np.concatenate([mean, np.linspace(mean.min(), mean.max(), 32)]))
    block = WhiteReadNoise(FittedCurve(grid, np.maximum(sm(grid), 0.0), "S"))
    info = {"g": mean, "sigma": sig, "n": nn, "choice": sm.choice, "cv": sm.cv}
    return block, info


def fit_psd_exponent(samples, fs: float, *, f_lo: float = 2.0, f_hi: float = 40.0,
                     nperseg: int | None = None) -> tuple[float, float]:
    """1/f^alpha exponent of a read-noise time series.

    ``samples``: conductance reads at a fixed rate [S] (1-D, or 2-D with one series per
    row: the exponent of the averaged spectrum); ``fs``: sampling rate [Hz];
    ``f_lo``/``f_hi``: band of the power-law fit [Hz]. Returns ``(alpha, amplitude)``
    with PSD(f) ~ amplitude / f^alpha [S^2/Hz], from a least-squares line of
    log PSD vs log f over the band (Welch spectrum, scipy.signal.welch).
    """
    from scipy.signal import welch

    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    if x.shape[-1] < 64:
        raise DataFormatError(f"a PSD fit needs >= 64 samples per series, got {x.shape[-1]}")
    if not fs > 0:
        raise DataFormatError(f"sampling rate must be > 0 Hz, got {fs}")
    nper = nperseg or min(x.shape[-1], 1 << int(np.log2(x.shape[-1] / 4)))
    f, p = welch(x - x.mean(axis=-1, keepdims=True), fs=fs, nperseg=nper, axis=-1)
    band = (f >= f_lo) & (f <= f_hi)
    if band.sum() < 3:
        raise DataFormatError(f"the band {f_lo}-{f_hi} Hz holds fewer than 3 PSD points")
    lp = np.log(p[..., band]).mean(axis=0) if p.ndim > 1 else np.log(p[band])
    slope, icpt = np.polyfit(np.log(f[band]), lp, 1)
    return float(-slope), float(np.exp(icpt))
