"""Smooth functions of the conductance across levels, order chosen by cross-validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Smooth:
    """A fitted smooth function y(x).

    ``kind``: "poly" (weighted least-squares polynomial of degree ``order`` in x scaled to
    [-1, 1] over the fitted range, held constant outside) or "interp" (piecewise linear
    through the per-level estimates); ``cv``: leave-one-level-out weighted mean squared
    error of each candidate, keyed "poly0", "poly1", ..., "interp".
    """

    kind: str
    order: int
    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    cv: dict

    @property
    def choice(self) -> str:
        """The chosen candidate, as keyed in ``cv``: "poly<order>" or "interp"."""
        return f"poly{self.order}" if self.kind == "poly" else "interp"

    def _coef(self, y):
        a = self.x.min()
        b = self.x.max()
        s = (self.x - a) / (b - a) * 2 - 1 if b > a else np.zeros_like(self.x)
        V = np.vander(s, self.order + 1)
        sw = np.sqrt(self.w)
        return np.linalg.lstsq(V * sw[:, None], y * sw, rcond=None)[0]

    def __call__(self, xq, y=None) -> np.ndarray:
        """Evaluate at ``xq``; ``y`` refits the same kind/order to other values (bootstrap)."""
        y = self.y if y is None else np.asarray(y, dtype=np.float64)
        xq = np.asarray(xq, dtype=np.float64)
        if self.kind == "interp":
            return np.interp(xq, self.x, y)
        a, b = self.x.min(), self.x.max()
        s = (np.clip(xq, a, b) - a) / (b - a) * 2 - 1 if b > a else np.zeros_like(xq)
        return np.polyval(self._coef(y), s)


def _poly_pred(x, y, w, order, xq):
    a, b = x.min(), x.max()
    sc = (lambda v: (np.clip(v, a, b) - a) / (b - a) * 2 - 1) if b > a else (lambda v: 0 * v)
    V = np.vander(sc(x), order + 1)
    sw = np.sqrt(w)
    c = np.linalg.lstsq(V * sw[:, None], y * sw, rcond=None)[0]
    return np.polyval(c, sc(xq))


def smooth_cv(x, y, w=None, *, max_order: int = 3, interp: bool = True) -> Smooth:
    """Fit y(x) by the candidate with the smallest leave-one-out CV error.

    ``x``: level conductances; ``y``: per-level estimates; ``w``: weights (inverse
    variances of the estimates; equal when None). Candidates: polynomials of degree 0 to
    ``max_order`` (at most n - 2) and, with ``interp``, piecewise-linear interpolation.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order_ = np.argsort(x)
    x, y = x[order_], y[order_]
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=np.float64)[order_]
    w = w / w.mean()
    n = x.size
    cv: dict[str, float] = {}
    if n == 1:
        return Smooth("poly", 0, x, y, w, {"poly0": 0.0})
    for k in range(0, min(max_order, n - 2) + 1):
        err = 0.0
        for i in range(n):
            m = np.arange(n) != i
            err += w[i] * (y[i] - _poly_pred(x[m], y[m], w[m], k, x[i:i + 1])[0]) ** 2
        cv[f"poly{k}"] = err / n
    if interp and n >= 3:
        err = 0.0
        for i in range(n):
            m = np.arange(n) != i
            err += w[i] * (y[i] - np.interp(x[i], x[m], y[m])) ** 2
        cv["interp"] = err / n
    best = min(cv, key=cv.get)
    if best == "interp":
        return Smooth("interp", -1, x, y, w, cv)
    return Smooth("poly", int(best[4:]), x, y, w, cv)
