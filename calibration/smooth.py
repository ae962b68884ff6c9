"""Smooth functions of the conductance across levels, order chosen by cross-validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class Smooth:
    """A fitted smooth function y(x).

    ``kind``: "poly" (weighted least-squares polynomial of degree ``order`` in x scaled to
    [-1, 1] over the fitted range, held constant outside), "interp" (piecewise linear
    through the per-level estimates) or "decreasing"/"increasing" (the weighted
    least-squares monotone fit, piecewise linear between the levels and held constant
    outside); ``cv``: leave-one-level-out weighted mean squared error of each candidate,
    keyed "poly0", "poly1", ..., "interp", "decreasing", "increasing"; ``options``: the
    keyword options of :func:`smooth_cv` that made it.
    """

    kind: str
    order: int
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    cv: dict
    options: dict = field(default_factory=dict)

    @property
    def choice(self) -> str:
        """The chosen candidate, as keyed in ``cv``: "poly<order>", "interp",
        "decreasing" or "increasing"."""
        return f"poly{self.order}" if self.kind == "poly" else self.kind

    def _coef(self, y):
        a = self.x.min()
        b = self.x.max()
        s = (self.x - a) / (b - a) * 2 - 1 if b > a else np.zeros_like(self.x)
        V = np.vander(s, self.order + 1)
        sw = np.sqrt(self.w)
        return np.linalg.lstsq(V * sw[:, None], y * sw, rcond=None)[0]

    def __call__(self, xq, y=None) -> np.ndarray:
        """Evaluate at ``xq``; ``y`` refits to other values (a bootstrap replicate): the
        same kind and order, or where the monotone candidates were offered the choice is
        made again by cross-validation. The choice is then part of the estimate: a fixed
        monotone fit's replicates under-cover a truth that is flat (40 levels, the PCM
        exponent spread with 4 % noise, 20 draws of 50 replicates: 0.89 of the levels
        >= 6.2 uS inside the 95 % band against 0.93 with the choice remade)."""
        xq = np.asarray(xq, dtype=np.float64)
        if y is not None and self.options.get("monotone"):
            return smooth_cv(self.x, y, self.w, **self.options)(xq)
        y = self.y if y is None else np.asarray(y, dtype=np.float64)
        if self.kind == "interp":
            return np.interp(xq, self.x, y)
        if self.kind in MONOTONE:
            return np.interp(xq, self.x, _monotone(y, self.w, self.kind == "increasing"))
        a, b = self.x.min(), self.x.max()
        s = (np.clip(xq, a, b) - a) / (b - a) * 2 - 1 if b > a else np.zeros_like(xq)
        return np.polyval(self._coef(y), s)


def _poly_pred(x, y, w, order, xq):
    """Weighted least-squares polynomial of degree ``order`` through (x, y) (y: one value,
    or one row of columns, per x), x scaled to [-1, 1] over its range and held constant
    outside, evaluated at ``xq``."""
    a, b = x.min(), x.max()
    sc = (lambda v: (np.clip(v, a, b) - a) / (b - a) * 2 - 1) if b > a else (lambda v: 0 * v)
    V = np.vander(sc(x), order + 1)
    sw = np.sqrt(w)
    c = np.linalg.lstsq(V * sw[:, None], (y.T * sw).T, rcond=None)[0]
    return np.vander(sc(np.asarray(xq, dtype=np.float64)), order + 1) @ c


#: The monotone candidates of :func:`smooth_cv`.
MONOTONE = ("decreasing", "increasing")


def _monotone(y, w, increasing):
    """Weighted least-squares non-decreasing (``increasing``) or non-increasing fit to
    ``y`` (in the order of x), by pooling adjacent violators."""
    sgn = 1.0 if increasing else -1.0
    val, wt, cnt = [], [], []
    for yi, wi in zip(sgn * np.asarray(y, dtype=np.float64), w, strict=True):
        val.append(yi)
        wt.append(wi)
        cnt.append(1)
        while len(val) > 1 and val[-2] > val[-1]:
            w2 = wt[-2] + wt[-1]
            val[-2] = (wt[-2] * val[-2] + wt[-1] * val[-1]) / w2
            wt[-2] = w2
            cnt[-2] += cnt[-1]
            del val[-1], wt[-1], cnt[-1]
    return sgn * np.repeat(val, cnt)


#: Half-widths (in levels) of the local-linear candidates of :func:`smooth_rows_cv`.
LOCAL_HALF_WIDTHS = (2, 3, 5, 8, 13)


def _local_linear(x, y, w, h, leave_out, diag=False):
    """Local-linear fit at every x (sorted) from the levels at most ``h`` away in index,
    weighted by w times the tricube of (index distance)/(h + 1); ``leave_out``: without the
    level itself (its leave-one-out prediction). A level whose window holds one distinct
    x gets the weighted mean. ``diag``: also return each level's weight on its own value
    (the smoother's diagonal)."""
    n = x.size
    idx = np.arange(n)
    k = np.abs(idx[:, None] - idx[None, :]) / (h + 1.0)
    kw = np.where(k < 1, (1 - k**3) ** 3, 0.0) * w[None, :]
    if leave_out:
        kw[idx, idx] = 0.0
    dx = x[None, :] - x[:, None]
    s0, s1, s2 = kw.sum(axis=1), (kw * dx).sum(axis=1), (kw * dx * dx).sum(axis=1)
    y2 = y.reshape(n, -1)
    t0, t1 = kw @ y2, (kw * dx) @ y2
    det = s0 * s2 - s1 * s1
    flat = ~(det > 1e-12 * np.maximum(s0 * s2, 1e-300))
    det = np.where(flat, 1.0, det)
    lin = (s2[:, None] * t0 - s1[:, None] * t1) / det[:, None]
    mean = t0 / np.maximum(s0, 1e-300)[:, None]
    fit = np.where(flat[:, None], mean, lin).reshape(y.shape)
    if not diag:
        return fit
    own = kw[idx, idx]
    return fit, np.where(flat, own / np.maximum(s0, 1e-300), own * s2 / det)


def _poly_fit_diag(x, y, w, order):
    """The weighted polynomial fit of :func:`_poly_pred` at x and its diagonal (each
    level's weight on its own value)."""
    a, b = x.min(), x.max()
    s = (x - a) / (b - a) * 2 - 1 if b > a else 0 * x
    q = np.linalg.qr(np.vander(s, order + 1) * np.sqrt(w)[:, None])[0]
    return _poly_pred(x, y, w, order, x), np.sum(q * q, axis=1)


def _sure(x, y, w, noise, max_order, local) -> dict[str, float]:
    """Stein's unbiased estimate of each candidate's weighted mean squared error against
    the truth (summed over the columns): per level |y - fit|^2 + (2 H_ii - 1) noise,
    with H_ii the smoother's weight on the level's own row; "own" (keeping the rows):
    the noise itself."""
    n = x.size
    cands = {f"poly{k}": lambda k=k: _poly_fit_diag(x, y, w, k)
             for k in range(0, min(max_order, n - 2) + 1)}
    cands.update({f"local{h}": lambda h=h: _local_linear(x, y, w, h, False, True)
                  for h in local})
    out = {"own": float(np.sum(w * noise)) / n}
    for name, make in cands.items():
        fit, hii = make()
        r = np.sum(((y - fit) ** 2).reshape(n, -1), axis=1)
        out[name] = float(np.sum(w * (r + (2 * hii - 1) * noise))) / n
    return out


def _cv_errors(x, y, w, max_order, interp, local=(), monotone=False) -> dict[str, float]:
    """Leave-one-out weighted mean squared error (summed over the columns of 2-D ``y``)
    of each candidate: polynomials of degree 0 to ``max_order`` (at most n - 2), with
    ``interp`` and n >= 3 piecewise-linear interpolation between the neighbours (x
    sorted), local-linear fits of the half-widths ``local`` (:func:`_local_linear`), and
    with ``monotone`` and 1-D ``y`` the monotone fits (the left-out level predicted by
    interpolating the others' fit)."""
    n = x.size
    cv: dict[str, float] = {}
    if monotone and y.ndim == 1 and n >= 3:
        for kind in MONOTONE:
            err = 0.0
            for i in range(n):
                m = np.arange(n) != i
                f = _monotone(y[m], w[m], kind == "increasing")
                err += w[i] * (y[i] - np.interp(x[i], x[m], f)) ** 2
            cv[kind] = err / n
    for h in local:
        r = ((y - _local_linear(x, y, w, h, True)) ** 2).reshape(n, -1)
        cv[f"local{h}"] = float(np.sum(w * np.sum(r, axis=1))) / n
    for k in range(0, min(max_order, n - 2) + 1):
        err = 0.0
        for i in range(n):
            m = np.arange(n) != i
            err += w[i] * np.sum((y[i] - _poly_pred(x[m], y[m], w[m], k, x[i:i + 1])[0]) ** 2)
        cv[f"poly{k}"] = err / n
    if interp and n >= 3:
        # the left-out point predicted from its neighbours (the nearest one at the ends)
        lo, hi = np.r_[1, np.arange(n - 1)], np.r_[np.arange(1, n), n - 2]
        span = x[hi] - x[lo]
        f = np.where(span > 0, (x - x[lo]) / np.where(span > 0, span, 1.0), 0.0)
        f = np.clip(f, 0.0, 1.0).reshape((-1,) + (1,) * (y.ndim - 1))
        pred = (1 - f) * y[lo] + f * y[hi]
        cv["interp"] = float(np.sum(w * np.sum(((y - pred) ** 2).reshape(n, -1), axis=1))) / n
    return cv


def _prepared(x, y, w):
    """x sorted, y and w in its order, w normalised to mean 1 (checked: x 1-D and finite,
    y finite with one entry or row per x, w finite and > 0 with one per x)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ConfigError(f"x must be a non-empty 1-D array of finite level conductances [S], "
                          f"got shape {x.shape}")
    if y.ndim < 1 or y.shape[0] != x.size or not np.all(np.isfinite(y)):
        raise ConfigError(f"the estimates must be finite with one entry or row per level "
                          f"({x.size}), got shape {y.shape}")
    if w is not None:
        wa = np.asarray(w, dtype=np.float64)
        if wa.shape != x.shape or not np.all(np.isfinite(wa) & (wa > 0)):
            raise ConfigError(f"w must hold one finite weight > 0 per level ({x.size}), got "
                              f"shape {wa.shape}")
    order_ = np.argsort(x)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=np.float64)[order_]
    return x[order_], y[order_], w / w.mean(), order_


def smooth_cv(x, y, w=None, *, max_order: int = 3, interp: bool = True,
              monotone: bool = False) -> Smooth:
    """Fit y(x) by the candidate with the smallest leave-one-out CV error.

    ``x``: level conductances; ``y``: per-level estimates; ``w``: weights (inverse
    variances of the estimates; equal when None). Candidates: polynomials of degree 0 to
    ``max_order`` (at most n - 2), with ``interp`` piecewise-linear interpolation, and with
    ``monotone`` (n >= 3) the weighted least-squares non-increasing and non-decreasing
    fits, which pool the levels where the truth is flat and follow it where it is steep
    (a curve flat over most levels with a kink, as the drift exponent of PCM, which no
    low-order polynomial follows).
    """
    x, y, w, _ = _prepared(x, y, w)
    opts = {"max_order": max_order, "interp": interp, "monotone": monotone}
    if x.size == 1:
        return Smooth("poly", 0, x, y, w, {"poly0": 0.0}, opts)
    cv = _cv_errors(x, y, w, max_order, interp, monotone=monotone)
    best = min(cv, key=cv.get)
    if best == "interp" or best in MONOTONE:
        return Smooth(best, -1, x, y, w, cv, opts)
    return Smooth("poly", int(best[4:]), x, y, w, cv, opts)


def smooth_rows_cv(x, rows, w=None, *, noise=None, max_order: int = 3
                   ) -> tuple[np.ndarray, str]:
    """Rows of per-level estimates smoothed across the levels, column by column, by one
    candidate for all columns. Candidates: polynomials of degree 0 to ``max_order`` in x
    (as :func:`smooth_cv`'s), local-linear fits over windows of
    :data:`LOCAL_HALF_WIDTHS` levels on either side ("local<h>"), and "own": every level
    keeps its row.

    ``x``: level conductances [S], shape (n,); ``rows``: shape (n, m), in any units;
    ``w``: weights of the levels (inverse noise variances of their rows; equal when None);
    ``noise``: each row's expected squared error summed over its columns, in the rows'
    units squared. With ``noise`` the candidate of the smallest estimated error against
    the truth wins (Stein's unbiased risk estimate, :func:`_sure`); without, the one of
    the smallest leave-one-level-out error, keeping the rows scored by predicting each
    from its neighbours (linear interpolation), which a truth curved on the scale of a
    few levels penalises though the kept rows carry no such bias (40 levels, a sine of
    period 20 levels, noise 1 % of its amplitude: "local2", rms error 0.046 against the
    rows' 0.010; with the noise given: "own"). Returns the smoothed rows (in the order
    given) and the choice
    ("poly<k>", "local<h>" or "own"; "own" when n < 3).
    """
    xs, ys, ws, order_ = _prepared(x, rows, w)
    if noise is not None:
        nz = np.asarray(noise, dtype=np.float64)
        if nz.shape != xs.shape or not np.all(np.isfinite(nz) & (nz >= 0)):
            raise ConfigError(f"noise must hold one finite value >= 0 per level ({xs.size}), "
                              f"got shape {nz.shape}")
    if xs.size < 3:
        return np.array(rows, dtype=np.float64), "own"
    local = [h for h in LOCAL_HALF_WIDTHS if h < xs.size - 1]
    if noise is not None:
        cv = _sure(xs, ys, ws, np.asarray(noise, dtype=np.float64)[order_], max_order, local)
    else:
        cv = _cv_errors(xs, ys, ws, max_order, True, local)
        cv["own"] = cv.pop("interp")
    best = min(cv, key=cv.get)
    if best == "own":
        return np.array(rows, dtype=np.float64), best
    out = np.empty_like(ys)
    out[order_] = (_local_linear(xs, ys, ws, int(best[5:]), False) if best.startswith("local")
                   else _poly_pred(xs, ys, ws, int(best[4:]), xs))
    return out, best
