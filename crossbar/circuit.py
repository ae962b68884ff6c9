r"""The crossbar circuit solved exactly: :class:`Crossbar` (factor once, solve many inputs).

The geometry, its conventions and the canonical grid are in :mod:`xbarlab.crossbar.grid` (with a
drawing); the solvers in :mod:`xbarlab.crossbar.solvers`. :func:`standard_currents` is the
standard-array path of :func:`xbarlab.crossbar.column_currents` (linear cells).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError, ConvergenceError
from . import kernels
from .grid import Drive, Grid, Sense, WireParams, build_grid
from .solvers import direct, pcg
from .validation import as_conductance, as_float_array, as_voltages

__all__ = [
    "Sense",
    "Drive",
    "WireParams",
    "Grid",
    "Solution",
    "Crossbar",
    "standard_currents",
    "RESIDUAL_RTOL",
]

_EPS = np.finfo(np.float64).eps
#: Default Kirchhoff residual tolerance, relative to the largest branch current.
RESIDUAL_RTOL = 1e-12


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
        if wires is None:
            wires = WireParams()
        if not isinstance(wires, WireParams):
            raise ConfigError(f"wires must be a WireParams, got {type(wires).__name__}")
        if solver is not None and not callable(solver):
            raise ConfigError(f"solver must be a callable like pcg() or direct(), got {solver!r}")
        if not (isinstance(rtol, int | float) and 0 < rtol < 1):
            raise ConfigError(f"rtol must be in (0, 1), got {rtol!r}")
        self.sense = coerce_enum(Sense, sense, "sense")
        self.drive = coerce_enum(Drive, drive, "drive")
        self.wires = wires
        self.G = as_conductance(G)
        self.grid = build_grid(self.G, wires, self.sense, self.drive)
        if solver is None:
            solver = pcg() if self.grid.structured else direct()
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
        v2, single = as_voltages(v, M)
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
            kernels.kcl_finite(
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
            if not (np.isfinite(vr).all() and np.isfinite(vc).all()):
                w = math.nan  # a NaN node voltage: the residual is NaN, not a max over it
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
            # max() keeps its first argument against NaN: carry a NaN residual explicitly
            worst = math.nan if math.isnan(rel) or math.isnan(worst) else max(worst, float(rel))
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
            v2, single = as_voltages(v, self.shape[0])
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


def standard_currents(
    G,
    v,
    *,
    wires: WireParams,
    sense: Sense | str = Sense.BOTTOM,
    drive: Drive | str = Drive.LEFT,
    solver: Callable | None = None,
) -> np.ndarray:
    """Exact sense-amplifier currents I [A] of a standard array of linear cells (geometry:
    :mod:`xbarlab.crossbar.grid`); the standard path of :func:`xbarlab.crossbar.column_currents`.

    ``G`` (M, N) [S] with ``v`` (M,) or (B, M) [V] -> (N,) or (B, N) [A], float64. ``G`` may be
    (K, M, N) (K independent arrays) with ``v`` (K, M) or (K, B, M) -> (K, N) or (K, B, N).
    ``wires``: the series resistances. Large batches go through the exact effective matrix (one
    factorization, one dense product); every path is Kirchhoff-checked.
    """
    sense = coerce_enum(Sense, sense, "sense")
    drive = coerce_enum(Drive, drive, "drive")
    Ga = as_float_array(G, "G", "an array of conductances [S]")
    if Ga.ndim == 3:
        K = Ga.shape[0]
        va = as_float_array(v, "v", "an array of voltages [V]")
        if va.ndim not in (2, 3) or va.shape[0] != K:
            raise ConfigError(
                f"v has shape {va.shape}; with G of shape {Ga.shape} expected "
                f"({K}, M) or ({K}, B, M)"
            )
        return np.stack([_one(Ga[k], va[k], wires, sense, drive, solver) for k in range(K)])
    return _one(Ga, v, wires, sense, drive, solver)


def _one(G, v, wires, sense, drive, solver):
    xb = Crossbar(G, wires=wires, sense=sense, drive=drive, solver=solver)
    v2, single = as_voltages(v, xb.shape[0])
    M, N = xb.shape
    # many inputs: one exact effective matrix (block elimination, ~3 M N^3 flops in BLAS-3)
    # beats B iterative solves (~10-30 sweeps of 15 M N flops each) once B ~ min(M, N) / 3
    if v2.shape[0] >= max(16, min(M, N) // 3) and hasattr(xb._fact, "effective_matrix"):
        xb.effective_matrix()
    out = xb.mvm(v2)
    return out[0] if single else out
