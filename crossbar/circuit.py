r"""The resistive crossbar circuit: parameters, canonical grid, Kirchhoff residual, public API.

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
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, ConvergenceError

__all__ = [
    "Sense",
    "Drive",
    "WireParams",
    "Grid",
    "Solution",
    "Crossbar",
    "column_currents",
]

_EPS = np.finfo(np.float64).eps
#: Default Kirchhoff residual tolerance, relative to the largest branch current.
RESIDUAL_RTOL = 1e-12


class Sense(enum.StrEnum):
    """Where the column wires meet their sense amplifiers."""

    BOTTOM = "bottom"
    TOP = "top"


class Drive(enum.StrEnum):
    """Which ends of the row wires are driven."""

    LEFT = "left"
    BOTH = "both"


def _enum(cls, value, name):
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(repr(m.value) for m in cls)
        raise ConfigError(f"{name}={value!r} is not one of {valid}") from None


def _resistance(name: str, value) -> float | np.ndarray:
    """A scalar or array of resistances [Ohm]: finite and >= 0; arrays become read-only."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be a number or array of numbers [Ohm], got {value!r}"
        ) from None
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite [Ohm]; got a non-finite value")
    if np.any(arr < 0):
        raise ConfigError(f"{name} must be >= 0 [Ohm]; got minimum {arr.min()!r}")
    if arr.ndim == 0:
        return float(arr)
    arr.setflags(write=False)
    return arr


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
            object.__setattr__(self, f.name, _resistance(f.name, getattr(self, f.name)))

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


def _as_shape(name: str, value, shape: tuple, alt: str = "") -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(shape, float(arr))
    if arr.shape != shape:
        raise ConfigError(f"{name} has shape {arr.shape}; expected a scalar or shape {shape}{alt}")
    return arr


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


def _grid(G: np.ndarray, wires: WireParams, sense: Sense, drive: Drive) -> Grid:
    """Validate the wire shapes against G (M, N) and build the canonical conductances."""
    M, N = G.shape
    nseg = N + 1 if drive is Drive.BOTH else N
    alt = " (drive='both')" if drive is Drive.BOTH else ""
    r_row = _as_shape("r_row", wires.r_row, (M, nseg), alt)
    r_col = _as_shape("r_col", wires.r_col, (M, N))
    r_drv = _as_shape("r_driver", wires.r_driver, (M,))
    r_sns = _as_shape("r_sense", wires.r_sense, (N,))
    r_acc = _as_shape("r_access", wires.r_access, (M, N))
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


def _conductance(G, name: str = "G") -> np.ndarray:
    try:
        G = np.asarray(G, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be an array of conductances [S], got {type(G).__name__}"
        ) from None
    if G.ndim != 2 or 0 in G.shape:
        raise ConfigError(
            f"{name} must have shape (M, N) with M, N >= 1 [S]; got shape {G.shape}"
        )
    if not np.all(np.isfinite(G)):
        raise ConfigError(f"{name} must be finite [S]; got a non-finite conductance")
    if np.any(G < 0):
        raise ConfigError(f"{name} must be >= 0 [S]; got minimum {G.min()!r}")
    return G


def _voltages(v, M: int, name: str = "v") -> tuple[np.ndarray, bool]:
    try:
        v = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an array of voltages [V]") from None
    if v.ndim not in (1, 2) or v.shape[-1] != M:
        raise ConfigError(f"{name} has shape {v.shape}; expected ({M},) or (B, {M}) [V]")
    # min and max catch NaN and +-inf without a temporary mask (keeps mvm near the bare product)
    if v.size and not (np.isfinite(v.min()) and np.isfinite(v.max())):
        raise ConfigError(f"{name} must be finite [V]; got a non-finite voltage")
    single = v.ndim == 1
    return np.ascontiguousarray(np.atleast_2d(v)), single


@dataclass(frozen=True, eq=False)
class Solution:
    """One solve: column currents and (optionally) every node voltage."""

    currents: np.ndarray
    """I [A]: current into each sense amplifier, (N,) or (B, N)."""
    row_voltages: np.ndarray | None = None
    """V_row [V]: row-wire node voltages at each cell, (M, N) or (B, M, N)."""
    col_voltages: np.ndarray | None = None
    """V_col [V]: column-wire node voltages at each cell, (M, N) or (B, M, N)."""
    residual: float = 0.0
    """Largest Kirchhoff node residual relative to the largest branch current (dimensionless)."""


class Crossbar:
    """A crossbar array with its wiring: factor (or precondition) once, then solve many inputs.

    Parameters
    ----------
    G : (M, N) array [S]
        Cell conductances, row i = input wire, column j = output wire.
    wires : WireParams
        Series resistances of rows, columns, drivers, sense amplifiers and cell access devices.
    sense : Sense or {"bottom", "top"}
    drive : Drive or {"left", "both"}
    solver : callable ``solver(grid) -> factorization`` or None
        e.g. :func:`xbarlab.crossbar.pcg` or :func:`xbarlab.crossbar.direct`; None picks
        ``pcg()`` when every wire resistance is positive (or a whole layer is ideal) and
        ``direct()`` otherwise.
    rtol : float
        Kirchhoff residual accepted after each solve, relative to the largest branch current
        (plus a rounding allowance of a few ulps of the node's branch currents).
    """

    def __init__(
        self,
        G,
        *,
        wires: WireParams | None = None,
        sense: Sense | str = Sense.BOTTOM,
        drive: Drive | str = Drive.LEFT,
        solver: Callable | None = None,
        rtol: float = RESIDUAL_RTOL,
    ):
        from . import solvers as _solvers

        if wires is None:
            wires = WireParams()
        if not isinstance(wires, WireParams):
            raise ConfigError(f"wires must be a WireParams, got {type(wires).__name__}")
        if solver is not None and not callable(solver):
            raise ConfigError(f"solver must be a callable like pcg() or direct(), got {solver!r}")
        if not (isinstance(rtol, int | float) and 0 < rtol < 1):
            raise ConfigError(f"rtol must be in (0, 1), got {rtol!r}")
        self.sense = _enum(Sense, sense, "sense")
        self.drive = _enum(Drive, drive, "drive")
        self.wires = wires
        self.G = _conductance(G)
        self.grid = _grid(self.G, wires, self.sense, self.drive)
        if solver is None:
            solver = _solvers.pcg() if self.grid.structured else _solvers.direct()
        self.solver = solver
        self.rtol = float(rtol)
        self._fact = solver(self.grid)
        self._A: np.ndarray | None = None
        self._gw = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.G.shape

    def solve(self, v, *, i_row=None, i_col=None, voltages: bool = True) -> Solution:
        """Solve the circuit for driver voltages ``v`` (M,) or (B, M) [V], optionally with
        currents ``i_row``/``i_col`` [A] injected into row/column nodes ((M, N) or (B, M, N)).
        Checks Kirchhoff's current law at every node; raises ConvergenceError if it fails."""
        M, N = self.shape
        v2, single = _voltages(v, M)
        B = v2.shape[0]
        inj = []
        for name, a in (("i_row", i_row), ("i_col", i_col)):
            if a is not None:
                a = np.asarray(a, dtype=np.float64)
                if a.shape not in ((M, N), (B, M, N)):
                    raise ConfigError(
                        f"{name} has shape {a.shape}; expected ({M}, {N}) or ({B}, {M}, {N}) [A]"
                    )
                if not np.all(np.isfinite(a)):
                    raise ConfigError(f"{name} must be finite [A]")
                a = np.array(np.broadcast_to(a, (B, M, N)), order="C")
            inj.append(a)
        vr, vc = self._fact.solve(v2, *inj)
        cur, res = self._check(v2, vr, vc, *inj)
        if single:
            cur, vr, vc = cur[0], vr[0], vc[0]
        if not voltages:
            vr = vc = None
        return Solution(cur, vr, vc, res)

    def _check(self, v, vr, vc, i_row=None, i_col=None):
        if self.grid.all_finite:  # one fused pass, no temporaries
            from . import _kernels

            B = v.shape[0]
            cur = np.empty((B, self.shape[1]))
            worst = np.empty(B)
            ok = np.empty(B, dtype=bool)
            inj = i_row is not None or i_col is not None
            zero = np.zeros(vr.shape if inj else (1, 1, 1))
            if self._gw is None:  # writable copies for the numba signatures
                self._gw = tuple(
                    np.array(a, order="C") for a in (self.grid.g, self.grid.g_row, self.grid.g_col)
                )
            _kernels._kcl_finite(
                *self._gw,
                np.ascontiguousarray(v),
                np.ascontiguousarray(vr),
                np.ascontiguousarray(vc),
                zero if i_row is None else i_row,
                zero if i_col is None else i_col,
                inj,
                self.rtol,
                cur,
                worst,
                ok,
            )
            w = float(worst.max())
            if not ok.all() or not np.isfinite(w):
                raise ConvergenceError(
                    f"Kirchhoff residual {w:.3e} (relative to the largest branch current) "
                    f"exceeds rtol={self.rtol:g} after solver {self.solver!r}",
                    residual=w,
                )
            return cur, w
        icell, res, sc, imax = self.grid.kcl(v, vr, vc, i_row, i_col)
        worst = 0.0
        ok = True
        for b in range(v.shape[0]):
            if res.shape[1] == 0:
                continue
            r = np.abs(res[b])
            bound = self.rtol * imax[b] + 64 * _EPS * sc[b]
            if not np.all(r <= bound):
                ok = False
            rel = r.max() / imax[b] if imax[b] > 0 else (0.0 if r.max() == 0 else math.inf)
            worst = max(worst, float(rel))
        if not ok or not np.isfinite(worst):
            raise ConvergenceError(
                f"Kirchhoff residual {worst:.3e} (relative to the largest branch current) "
                f"exceeds rtol={self.rtol:g} after solver {self.solver!r}",
                residual=worst,
            )
        return icell.sum(axis=1), worst

    def mvm(self, v) -> np.ndarray:
        """Column currents I [A] for driver voltages ``v`` (M,) or (B, M) [V]: (N,) or (B, N).
        Once :meth:`effective_matrix` has been computed this is one dense product ``v @ A.T``."""
        if self._A is not None:
            v2, single = _voltages(v, self.shape[0])
            out = v2 @ self._A.T
            return out[0] if single else out
        return self.solve(v, voltages=False).currents

    def node_voltages(self, v) -> tuple[np.ndarray, np.ndarray]:
        """(row-wire, column-wire) node voltages [V] at every cell, each (M, N) or (B, M, N)."""
        s = self.solve(v)
        return s.row_voltages, s.col_voltages

    def effective_matrix(self) -> np.ndarray:
        """The exact (N, M) matrix A [S] with I = A @ v for these (linear) cells.

        Uses the factorization's own method when it has one (block elimination for the
        structured solver), verified against one residual-checked solve of a probe input;
        otherwise solves all M unit inputs together. Cached; later :meth:`mvm` calls use it."""
        if self._A is None:
            M = self.shape[0]
            fast = getattr(self._fact, "effective_matrix", None)
            A = fast() if fast is not None else None
            if A is not None:
                A = np.asarray(A, dtype=np.float64)
                probe = np.cos(0.7 * np.arange(M) + 0.3)
                ref = self.solve(probe, voltages=False).currents
                err = np.abs(A @ probe - ref).max() / max(np.abs(ref).max(), np.finfo(float).tiny)
                if not err <= 1e-10:
                    raise ConvergenceError(
                        f"effective matrix disagrees with a checked solve by {err:.3e} (relative)",
                        residual=float(err),
                    )
            else:  # all M unit inputs as one batch of right-hand sides
                A = self.solve(np.eye(M), voltages=False).currents.T
            self._A = np.ascontiguousarray(A.T).T  # (N, M) view of an (M, N) C array: fast v @ A.T
        return self._A

    def __repr__(self):
        M, N = self.shape
        return f"Crossbar({M}x{N}, sense={self.sense.value!r}, drive={self.drive.value!r})"


def column_currents(
    G,
    v,
    *,
    r_row=0.0,
    r_col=0.0,
    r_driver=0.0,
    r_sense=0.0,
    r_access=0.0,
    sense: Sense | str = "bottom",
    drive: Drive | str = "left",
    solver: Callable | None = None,
    topology: str = "standard",
    cell=None,
    r_source=0.0,
    v_read: float | None = None,
    source_end: str = "top",
) -> np.ndarray:
    """Exact sense-amplifier currents I [A] of a resistive crossbar (geometry: module docstring).

    Other topologies (``topology`` = "source-line", "differential-columns",
    "differential-rows", with ``r_source``, ``v_read``, ``source_end``) and nonlinear ``cell``
    models are solved by :func:`xbarlab.crossbar.topologies.column_currents` (see there; its
    ``solver`` rules apply: nonlinear cells of the standard topology take Newton steps through
    this module's solvers, ``pcg()`` or ``direct()`` if given).

    ``G`` (M, N) [S] with ``v`` (M,) or (B, M) [V] -> (N,) or (B, N) [A], float64. ``G`` may be
    (K, M, N) (K independent arrays) with ``v`` (K, M) or (K, B, M) -> (K, N) or (K, B, N).
    Resistances [Ohm] as in :class:`WireParams`. Large batches go through the exact effective
    matrix (one factorization, one dense product); every path is Kirchhoff-checked.
    """
    if topology != "standard" or cell is not None or v_read is not None or np.any(r_source):
        from . import topologies

        return topologies.column_currents(
            G, v, topology=topology, cell=cell, r_row=r_row, r_col=r_col, r_driver=r_driver,
            r_sense=r_sense, r_access=r_access, r_source=r_source, v_read=v_read, sense=sense,
            drive=drive, source_end=source_end, solver=solver)
    wires = WireParams(
        r_row=r_row, r_col=r_col, r_driver=r_driver, r_sense=r_sense, r_access=r_access
    )
    sense = _enum(Sense, sense, "sense")
    drive = _enum(Drive, drive, "drive")
    try:
        Ga = np.asarray(G, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"G must be an array of conductances [S], got {type(G).__name__}"
        ) from None
    if Ga.ndim == 3:
        K = Ga.shape[0]
        try:
            va = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError("v must be an array of voltages [V]") from None
        if va.ndim not in (2, 3) or va.shape[0] != K:
            raise ConfigError(
                f"v has shape {va.shape}; with G of shape {Ga.shape} expected "
                f"({K}, M) or ({K}, B, M)"
            )
        return np.stack([_one(Ga[k], va[k], wires, sense, drive, solver) for k in range(K)])
    return _one(Ga, v, wires, sense, drive, solver)


def _one(G, v, wires, sense, drive, solver):
    xb = Crossbar(G, wires=wires, sense=sense, drive=drive, solver=solver)
    v2, single = _voltages(v, xb.shape[0])
    M, N = xb.shape
    # many inputs: one exact effective matrix (block elimination, ~3 M N^3 flops in BLAS-3)
    # beats B iterative solves (~10-30 sweeps of 15 M N flops each) once B ~ min(M, N) / 3
    if v2.shape[0] >= max(16, min(M, N) // 3) and hasattr(xb._fact, "effective_matrix"):
        xb.effective_matrix()
    out = xb.mvm(v2)
    return out[0] if single else out
