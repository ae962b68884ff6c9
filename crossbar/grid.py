r"""The crossbar's wiring and the canonical grid every solver receives (with a drawing).

Geometry (default: ``drive="left"``, ``sense="bottom"``)::

               col 0                col 1                     col N-1
    v[0] -Rd-+-r_row[0,0]-o-----r_row[0,1]-o-- ... -r_row[0,N-1]-o    (row 0, right end open)
                          |                |                      |
                       G[0,0]           G[0,1]                G[0,N-1]   (cell = r_access + G)
                          |                |                      |
                          *                *                      *     (column nodes, top open)
                          |                |                      |
                      r_col[0,0]       r_col[0,1]            r_col[0,N-1]
    v[1] -Rd-+-r_row[1,0]-o-----r_row[1,1]-o-- ...                o    (row 1)
                          |                |                      |
                       G[1,0]           G[1,1]                    :
                          *                *
                          :                :
                      r_col[M-1,0]     r_col[M-1,1]          r_col[M-1,N-1]
                          |                |                      |
                        r_sense[0]       r_sense[1]           r_sense[N-1]
                          |                |                      |
                        (SA, 0 V)        (SA, 0 V)            (SA, 0 V)  -> I[0], I[1], ...

``o`` is a row node, ``*`` a column node; ``G[i, j]`` [S] joins row wire i (input) and column
wire j (output). Row i is driven at its left end by ``v[i]`` [V] through ``r_driver[i]``; one
row segment ``r_row[i, j]`` [Ohm] precedes each cell (driver -> cell (i, 0), cell (i, j-1) ->
cell (i, j)). Column j has one segment ``r_col[i, j]`` [Ohm] below each cell (cell (i, j) ->
cell (i+1, j), cell (M-1, j) -> sense), then ``r_sense[j]`` and a sense amplifier holding a
virtual ground at 0 V; ``I[j]`` [A] is the current into that amplifier. A cell may carry a series
``r_access[i, j]`` [Ohm] (an access transistor's on-resistance).

Options: ``sense="top"`` puts the amplifiers at the top (``r_col[i, j]`` is then the segment above
cell (i, j), the bottom end is open); ``drive="both"`` drives each row at both ends through
``r_driver`` (``r_row`` per segment then has shape (M, N+1): segment k joins node k-1 and k).

Internally every wire segment is a conductance: ``g_row`` (M, N+1) with ``g_row[i, k]`` joining
row node k-1 and k (k = 0: link to the left driver, k = N: link to the right driver, 0 when
open), ``g_col`` (M+1, N) likewise along the columns (k = 0: top end, k = M: bottom end). A zero
resistance is an infinite conductance and its two nodes are merged exactly (never a large
number); with every resistance zero the currents are exactly ``v @ G``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .validation import as_resistance, as_shape

__all__ = ["Sense", "Drive", "WireParams", "Grid", "build_grid"]


class Sense(enum.StrEnum):
    """Where the column wires meet their sense amplifiers."""

    BOTTOM = "bottom"
    TOP = "top"


class Drive(enum.StrEnum):
    """Which ends of the row wires are driven."""

    LEFT = "left"
    BOTH = "both"


@dataclass(frozen=True, eq=False)
class WireParams:
    """Series resistances of the crossbar's wiring (the passive part of the circuit).

    Each field is a scalar (same value everywhere) or an array (see shapes); all in Ohm, >= 0.
    Zero means an ideal connection (nodes merged exactly).
    """

    r_row: float | np.ndarray = 0.0
    """r_row [Ohm]: row-wire segment before each cell; scalar, (M, N), or (M, N+1) with
    ``drive="both"`` (segment k joins node k-1 and k). Typical: 0.1-10 Ohm per cell pitch."""
    r_col: float | np.ndarray = 0.0
    """r_col [Ohm]: column-wire segment after each cell towards the sense amplifier;
    scalar or (M, N)."""
    r_driver: float | np.ndarray = 0.0
    """r_driver [Ohm]: output resistance of each row driver (DAC buffer); scalar or (M,)."""
    r_sense: float | np.ndarray = 0.0
    """r_sense [Ohm]: input resistance of each sense amplifier; scalar or (N,)."""
    r_access: float | np.ndarray = 0.0
    """r_access [Ohm]: series resistance inside each cell (e.g. access transistor on-resistance);
    scalar or (M, N)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, as_resistance(f.name, getattr(self, f.name)))

    def __eq__(self, other):
        if not isinstance(other, WireParams):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
        )

    __hash__ = None

    def to_dict(self) -> dict[str, Any]:
        """Field name -> float or float64 array [Ohm] (one-to-one with HDF5 attributes)."""
        return {
            f.name: (v if isinstance(v := getattr(self, f.name), float) else np.array(v))
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WireParams:
        """Inverse of :meth:`to_dict`; unknown keys raise ConfigError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(
                f"WireParams: unknown field(s) {sorted(unknown)}; valid: {sorted(names)}"
            )
        return cls(**dict(d))


def _inv(r: np.ndarray) -> np.ndarray:
    """Conductance 1/r [S] with r = 0 -> inf (merged nodes)."""
    with np.errstate(divide="ignore"):
        return 1.0 / r


@dataclass(frozen=True, eq=False)
class Grid:
    """The canonical linear circuit every solver receives (conductances in S, C-contiguous).

    ``g`` (M, N): cell conductances with any access resistance folded in (series combination).
    ``g_row`` (M, N+1): row segments, ``g_row[i, k]`` joins row node k-1 and k; k = 0 and k = N
    link to the driver of row i (0 = open end). ``g_col`` (M+1, N): column segments,
    ``g_col[k, j]`` joins column node k-1 and k; k = 0 and k = M link to the sense amplifier's
    virtual ground (0 = open end). ``inf`` marks a zero-resistance (merged) connection.
    """

    g: np.ndarray
    g_row: np.ndarray
    g_col: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.g.shape

    @property
    def rows_ideal(self) -> bool:
        """Every used row segment has zero resistance: row nodes sit at the driver voltage."""
        gr = self.g_row
        return bool(np.all(np.isinf(gr[:, :-1])) and np.all((gr[:, -1] == 0) | np.isinf(gr[:, -1])))

    @property
    def cols_ideal(self) -> bool:
        """Every used column segment has zero resistance: column nodes sit at 0 V."""
        gc = self.g_col
        ends = np.concatenate([gc[0], gc[-1]])
        return bool(np.all(np.isinf(gc[1:-1])) and np.all((ends == 0) | np.isinf(ends)))

    @property
    def all_finite(self) -> bool:
        return bool(np.all(np.isfinite(self.g_row)) and np.all(np.isfinite(self.g_col)))

    @property
    def structured(self) -> bool:
        """True when the structured solvers apply: every wire resistance positive, or a whole
        layer (rows or columns) ideal and the other positive."""
        row_fin = bool(np.all(np.isfinite(self.g_row)))
        col_fin = bool(np.all(np.isfinite(self.g_col)))
        return (row_fin or self.rows_ideal) and (col_fin or self.cols_ideal)

    # ---------------------------------------------------------------- merged-node groups
    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Merged-node bookkeeping: (row group id (M, N), col group id (M, N), row group held
        at the driver? (n_row_groups,), col group held at ground? (n_col_groups,)). Group ids
        of the column nodes follow those of the row nodes."""
        cached = self.__dict__.get("_groups")
        if cached is not None:
            return cached
        M, N = self.shape
        gr, gc = self.g_row, self.g_col
        new_r = np.ones((M, N), dtype=bool)
        new_r[:, 1:] = np.isfinite(gr[:, 1:N])
        rid = np.cumsum(new_r.ravel()).reshape(M, N) - 1
        n_r = int(rid[-1, -1]) + 1
        held_r = np.zeros(n_r, dtype=bool)
        held_r[rid[:, 0][np.isinf(gr[:, 0])]] = True
        held_r[rid[:, -1][np.isinf(gr[:, N])]] = True
        new_c = np.ones((M, N), dtype=bool)
        new_c[1:, :] = np.isfinite(gc[1:M, :])
        cid_t = np.cumsum(new_c.T.ravel()).reshape(N, M) - 1  # numbering along each column
        cid = np.ascontiguousarray(cid_t.T) + n_r
        n_c = int(cid_t[-1, -1]) + 1
        held_c = np.zeros(n_c, dtype=bool)
        held_c[cid[0, :][np.isinf(gc[0, :])] - n_r] = True
        held_c[cid[-1, :][np.isinf(gc[M, :])] - n_r] = True
        out = (rid, cid, held_r, held_c)
        object.__setattr__(self, "_groups", out)
        return out

    @property
    def has_merges(self) -> bool:
        return not self.all_finite

    # ---------------------------------------------------------------- Kirchhoff
    def kcl(self, v, vr, vc, i_row=None, i_col=None):
        """Branch and node bookkeeping for node voltages ``vr``, ``vc`` (B, M, N) [V] and driver
        voltages ``v`` (B, M) [V]. Returns (cell currents (B, M, N) [A], node residual [A] per
        free group (B, n), per-node rounding scale [A] (B, n), largest branch current (B,) [A])."""
        g, gr, gc = self.g, self.g_row, self.g_col
        B = vr.shape[0]
        fin_r = np.isfinite(gr)
        fin_c = np.isfinite(gc)
        grf = np.where(fin_r, gr, 0.0)
        gcf = np.where(fin_c, gc, 0.0)
        vcol = v[:, :, None]
        rext = np.concatenate([vcol, vr, vcol], axis=2)
        zero = np.zeros((B, 1, vc.shape[2]))
        cext = np.concatenate([zero, vc, zero], axis=1)
        iseg_r = grf * (rext[:, :, :-1] - rext[:, :, 1:])  # (B, M, N+1) rightwards
        sseg_r = grf * (np.abs(rext[:, :, :-1]) + np.abs(rext[:, :, 1:]))
        iseg_c = gcf * (cext[:, :-1, :] - cext[:, 1:, :])  # (B, M+1, N) downwards
        sseg_c = gcf * (np.abs(cext[:, :-1, :]) + np.abs(cext[:, 1:, :]))
        icell = g * (vr - vc)
        scell = g * (np.abs(vr) + np.abs(vc))
        res_r = iseg_r[:, :, :-1] - iseg_r[:, :, 1:] - icell
        sc_r = sseg_r[:, :, :-1] + sseg_r[:, :, 1:] + scell
        res_c = iseg_c[:, :-1, :] - iseg_c[:, 1:, :] + icell
        sc_c = sseg_c[:, :-1, :] + sseg_c[:, 1:, :] + scell
        if i_row is not None:
            res_r = res_r + i_row
            sc_r = sc_r + np.abs(i_row)
        if i_col is not None:
            res_c = res_c + i_col
            sc_c = sc_c + np.abs(i_col)
        imax = np.maximum.reduce(
            [
                np.abs(iseg_r).reshape(B, -1).max(axis=1),
                np.abs(iseg_c).reshape(B, -1).max(axis=1),
                np.abs(icell).reshape(B, -1).max(axis=1),
            ]
        )
        res = np.concatenate([res_r.reshape(B, -1), res_c.reshape(B, -1)], axis=1)
        sc = np.concatenate([sc_r.reshape(B, -1), sc_c.reshape(B, -1)], axis=1)
        if self.has_merges:
            rid, cid, held_r, held_c = self.groups()
            ids = np.concatenate([rid.ravel(), cid.ravel()])
            held = np.concatenate([held_r, held_c])
            ng = held.size
            res = np.stack([np.bincount(ids, weights=r, minlength=ng) for r in res])[:, ~held]
            sc = np.stack([np.bincount(ids, weights=s, minlength=ng) for s in sc])[:, ~held]
        return icell, res, sc, imax


def build_grid(G: np.ndarray, wires: WireParams, sense: Sense, drive: Drive) -> Grid:
    """The canonical grid of cell conductances ``G`` (M, N) [S] (checked by the caller) with
    ``wires``: wire shapes are checked against (M, N) (ConfigError otherwise); access
    resistances are folded into the cells, driver and sense resistances into the end
    segments."""
    M, N = G.shape
    nseg = N + 1 if drive is Drive.BOTH else N
    alt = " (drive='both')" if drive is Drive.BOTH else ""
    r_row = as_shape("r_row", wires.r_row, (M, nseg), alt)
    r_col = as_shape("r_col", wires.r_col, (M, N))
    r_drv = as_shape("r_driver", wires.r_driver, (M,))
    r_sns = as_shape("r_sense", wires.r_sense, (N,))
    r_acc = as_shape("r_access", wires.r_access, (M, N))
    g_row = np.zeros((M, N + 1))
    g_row[:, 0] = _inv(r_drv + r_row[:, 0])
    g_row[:, 1:N] = _inv(r_row[:, 1:N])
    if drive is Drive.BOTH:
        g_row[:, N] = _inv(r_drv + r_row[:, N])
    g_col = np.zeros((M + 1, N))
    if sense is Sense.BOTTOM:
        g_col[1:M, :] = _inv(r_col[: M - 1, :])
        g_col[M, :] = _inv(r_col[M - 1, :] + r_sns)
    else:
        g_col[1:M, :] = _inv(r_col[1:, :])
        g_col[0, :] = _inv(r_col[0, :] + r_sns)
    g = G / (1.0 + G * r_acc)  # cell in series with its access resistance (exact, linear)
    for a in (g, g_row, g_col):
        a.setflags(write=False)
    return Grid(np.ascontiguousarray(g), g_row, g_col)
