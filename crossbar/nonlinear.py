"""Nonlinear cells: I(V) per cell, solved by Newton's method on the whole circuit.

Cell models (``G`` [S] is always the cell's small-signal conductance at 0 V):

* :class:`PolynomialCell`: ``I = G V + a2 V^2 + a3 V^3`` (RRAM I-V nonlinearity as measured;
  ``a2`` [A/V^2], ``a3`` [A/V^3] scalars or one per cell);
* :class:`SinhCell`: ``I = a sinh(b V)`` with ``a = G / b`` [A], ``b`` [1/V] > 0 (tunnelling /
  hopping conduction; scalar or per cell).

The circuit (any topology of :mod:`xbarlab.crossbar.topologies`) has linear wires and these
cells. Kirchhoff's current law at the unknown nodes, ``F(x) = K x - b + A^T I(A x + c) = 0``
(``K``: wire Laplacian, ``A``: cell incidence), is solved by Newton's method: each iteration
solves the *linear* circuit whose cells are replaced by their differential conductances
``dI/dV`` at the present voltages (the companion model). For the standard and the differential
topologies that linear circuit is the crossbar grid, solved by the grid's structured solvers
with the residual injected at the nodes (:func:`newton_solve` says how); the source-line
topology uses the sparse Jacobian of its netlist. The first iterate is the linear solve with
``G``. A backtracking line search (halving the step while the residual grows) keeps the
iteration safe far from the solution; close to it full steps are taken and convergence is
quadratic. The iteration stops when the Kirchhoff residual, relative to the size of the terms of
the node current sums (``|F|_inf / (|K|_inf |x|_inf + |b|_inf + max |I_cell|)``, over the
netlist's unknowns on both paths), is at most ``tol``; otherwise
:class:`~xbarlab.errors.ConvergenceError` reports the residual reached.

Monotonicity: the operating range is ``|V| <= V_op``, with ``V_op`` the spread of the driven
voltages (0 V of the sense amplifiers included): no cell voltage can exceed it in a network of
passive monotone elements. Coefficients whose ``dI/dV`` becomes negative there raise
:class:`~xbarlab.errors.ConfigError` (Newton's method and the physics both need monotone cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import ConfigError, ConvergenceError
from .circuit import Crossbar
from .topologies import Circuit, direct_solver, grid_layout, is_grid_solver

__all__ = [
    "PolynomialCell",
    "SinhCell",
    "NewtonResult",
    "newton_solve",
]


def _coef(x, name: str, unit: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be numeric ({unit}), got {x!r}") from None
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be finite ({unit})")
    return arr


def _flat(arr: np.ndarray, shape, name: str) -> np.ndarray:
    if arr.ndim == 0:
        return np.full(int(np.prod(shape)), float(arr))
    if arr.shape != tuple(shape):
        raise ConfigError(
            f"{name} must be a scalar or shaped like the (physical) array {shape}, got {arr.shape}"
        )
    return arr.ravel()


@dataclass(frozen=True, eq=False)
class PolynomialCell:
    """``I = G V + a2 V^2 + a3 V^3`` per cell."""

    #: ``a2``: quadratic coefficient, scalar or per cell (M, N). [A/V^2]
    a2: np.ndarray | float = 0.0
    #: ``a3``: cubic coefficient, scalar or per cell (M, N). [A/V^3]
    a3: np.ndarray | float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "a2", _coef(self.a2, "a2", "A/V^2"))
        object.__setattr__(self, "a3", _coef(self.a3, "a3", "A/V^3"))

    def bind(self, G):
        """Flat per-cell coefficients for the physical array ``G`` (M, N)."""
        G = np.asarray(G, dtype=np.float64)
        return _BoundPoly(G.ravel(), _flat(self.a2, G.shape, "a2"), _flat(self.a3, G.shape, "a3"))

    def check(self, G, v_op: float) -> None:
        """ConfigError when ``dI/dV < 0`` somewhere in ``|V| <= v_op`` [V] for some cell."""
        b = self.bind(G)
        g, a2, a3 = b.g, b.a2, b.a3
        cands = [np.full_like(g, -v_op), np.full_like(g, v_op)]
        with np.errstate(divide="ignore", invalid="ignore"):
            vstar = np.where(a3 != 0, -a2 / (3 * np.where(a3 != 0, a3, 1.0)), 0.0)
        cands.append(np.clip(vstar, -v_op, v_op))
        worst = np.min([g + 2 * a2 * V + 3 * a3 * V * V for V in cands], axis=0)
        tol = 1e-12 * np.maximum(np.abs(g), 1e-300)
        bad = worst < -tol
        if np.any(bad):
            k = int(np.argmax(bad))
            idx = np.unravel_index(k, np.shape(G))
            raise ConfigError(
                f"cell coefficients a2={b.a2[k]:.6g} A/V^2, a3={b.a3[k]:.6g} A/V^3 with "
                f"G={g[k]:.6g} S make I(V) non-monotonic at cell {tuple(map(int, idx))} within "
                f"the operating range |V| <= {v_op:.6g} V (min dI/dV = {worst[k]:.6g} S)"
            )


@dataclass(frozen=True, eq=False)
class _BoundPoly:
    g: np.ndarray
    a2: np.ndarray
    a3: np.ndarray

    def current(self, V):
        g, a2, a3 = (x.reshape((-1,) + (1,) * (V.ndim - 1)) for x in (self.g, self.a2, self.a3))
        return V * (g + V * (a2 + V * a3))

    def slope(self, V):
        g, a2, a3 = (x.reshape((-1,) + (1,) * (V.ndim - 1)) for x in (self.g, self.a2, self.a3))
        return g + V * (2 * a2 + 3 * a3 * V)

    def slope0(self):
        return self.g

    def expression(self, k: int, v: str) -> str | None:
        g, a2, a3 = self.g[k], self.a2[k], self.a3[k]
        if g == 0 and a2 == 0 and a3 == 0:
            return None
        return f"({g:.17g})*{v}+({a2:.17g})*{v}*{v}+({a3:.17g})*{v}*{v}*{v}"


@dataclass(frozen=True, eq=False)
class SinhCell:
    """``I = a sinh(b V)`` per cell with ``a = G / b`` (so ``dI/dV(0) = G``)."""

    #: ``b``: voltage scale of the nonlinearity, > 0, scalar or per cell (M, N). [1/V]
    b: np.ndarray | float = 1.0

    def __post_init__(self):
        b = _coef(self.b, "b", "1/V")
        if np.any(b <= 0):
            raise ConfigError(
                f"sinh cell coefficient b must be > 0 1/V (a negative b makes I(V) "
                f"non-monotonic), got {b.min()}"
            )
        object.__setattr__(self, "b", b)

    def bind(self, G):
        G = np.asarray(G, dtype=np.float64)
        b = _flat(self.b, G.shape, "b")
        return _BoundSinh(G.ravel() / b, b)

    def check(self, G, v_op: float) -> None:
        """Always monotone for G >= 0 and b > 0 (checked at construction)."""
        self.bind(G)


@dataclass(frozen=True, eq=False)
class _BoundSinh:
    a: np.ndarray
    b: np.ndarray

    def current(self, V):
        a, b = (x.reshape((-1,) + (1,) * (V.ndim - 1)) for x in (self.a, self.b))
        return a * np.sinh(b * V)

    def slope(self, V):
        a, b = (x.reshape((-1,) + (1,) * (V.ndim - 1)) for x in (self.a, self.b))
        return a * b * np.cosh(b * V)

    def slope0(self):
        return self.a * self.b

    def expression(self, k: int, v: str) -> str | None:
        if self.a[k] == 0:
            return None
        return f"({self.a[k]:.17g})*sinh(({self.b[k]:.17g})*{v})"


@dataclass(frozen=True, eq=False)
class NewtonResult:
    """Outcome of :func:`newton_solve`.

    ``currents`` (B, n_sense) [A]; ``voltages`` (n_classes, B) [V]; ``residuals``: per vector, the
    relative Kirchhoff residual before each iteration and at the end [1]; ``iterations`` per
    vector.
    """

    currents: np.ndarray
    voltages: np.ndarray
    residuals: list = field(default_factory=list)
    iterations: list = field(default_factory=list)


def newton_solve(
    circ: Circuit, cell, G, v_src, *, solver=None, tol: float = 1e-12, max_iter: int = 50
) -> NewtonResult:
    """Solve a :class:`~xbarlab.crossbar.topologies.Circuit` with nonlinear ``cell`` models.

    ``G`` [S]: the physical (M, N) array (cell ``k`` = flat index); ``v_src`` (n_src, B) [V]:
    the driven voltages per vector. Each Newton step is a linear circuit solve, by one of two
    paths that take the same iterates (up to rounding):

    * grid path (``solver=None`` on a circuit of the crossbar grid, i.e. ``circ.layout`` set, or
      ``solver=pcg()`` / ``direct()``): the grid solve
      ``Crossbar(dI/dV, wires=...).solve(0, i_row=..., i_col=...)`` with the Kirchhoff residual
      injected; nodes that the grid folds into series conductances (driver and sense-amplifier
      ends, the node between a cell and its access resistor) are condensed exactly before the
      solve and recovered after it;
    * sparse path (any other circuit, or a sparse ``solver(K, b) -> x``, default
      :func:`~xbarlab.crossbar.topologies.direct_solver`): the Jacobian of the netlist.

    The first iterate, the linear circuit with ``G``, is one solve for the whole batch; each
    vector then iterates with its own Jacobian.
    """
    bound = cell.bind(G)
    kcl = _Kirchhoff(circ, bound)
    if is_grid_solver(solver) or (solver is None and circ.layout is not None):
        step = _GridStep(circ, kcl, grid_layout(circ, solver), solver)
    else:
        step = _SparseStep(kcl, solver or direct_solver)
    n = circ.n_free
    B = v_src.shape[1]
    rhs = kcl.rhs(v_src)
    x_all = np.zeros((n, B))
    if n:
        # first iterate: the linear circuit with the small-signal conductances, all vectors
        g0 = np.where(kcl.active, bound.slope0(), 0.0)
        F0 = kcl.residual(x_all, v_src, rhs, lambda Vc: g0[:, None] * Vc)[0]
        x_all = step(g0, F0)
    history, iters = [], []
    for col in range(B):
        vs, r = v_src[:, col : col + 1], rhs[:, col : col + 1]

        def state(x, vs=vs, r=r):
            F, rel, Vc = kcl.residual(x, vs, r)
            return F, float(rel[0]), Vc

        x = x_all[:, col : col + 1]
        F, rel, Vc = state(x)
        hist = [rel]
        while rel > tol:
            if len(hist) > max_iter:
                raise ConvergenceError(
                    f"Newton's method stopped after {max_iter} iterations at a Kirchhoff "
                    f"residual of {rel:.3e} (relative to the terms of the node current sums), "
                    f"above tol={tol:g}",
                    residual=rel,
                )
            gd = np.where(kcl.active, bound.slope(Vc[:, 0]), 0.0)
            dx = step(gd, F)
            if not np.all(np.isfinite(dx)):
                raise ConvergenceError(
                    f"Newton step is not finite (residual {rel:.3e})", residual=rel
                )
            t = 1.0
            for _ in range(40):
                F_new, rel_new, Vc_new = state(x + t * dx)
                if np.isfinite(rel_new) and rel_new < rel:
                    break
                t *= 0.5
            else:
                raise ConvergenceError(
                    f"Newton's line search found no decrease below a Kirchhoff residual of "
                    f"{rel:.3e}, above tol={tol:g}",
                    residual=rel,
                )
            x = x + t * dx
            F, rel, Vc = F_new, rel_new, Vc_new
            hist.append(rel)
        x_all[:, col : col + 1] = x
        history.append(hist)
        iters.append(len(hist) - 1)
    V_all = circ.class_voltages(x_all, v_src)
    I = circ.sense_currents(V_all, *kcl.branches, cell_current=kcl.cell_current)
    return NewtonResult(currents=I, voltages=V_all, residuals=history, iterations=iters)


class _Kirchhoff:
    """``F(x) = K x - b + A^T I(A x + c)`` at the circuit's unknowns (net outflow [A]) and its
    relative size ``|F|_inf / (|K|_inf |x|_inf + |b|_inf + max |I_cell|)`` per vector."""

    def __init__(self, circ, bound):
        self.circ, self.bound = circ, bound
        self.branches = circ.edges(np.zeros(circ.cell_a.size))  # resistors only
        self.K = circ.laplacian(*self.branches)
        self.Knorm = float(abs(self.K).sum(axis=1).max()) if self.K.nnz else 0.0
        self.ca, self.cb = circ.cls[circ.cell_a], circ.cls[circ.cell_b]
        self.active = self.ca != self.cb
        self.fa, self.fb = circ.free[self.ca], circ.free[self.cb]
        k = np.arange(self.ca.size)
        ma, mb = self.active & (self.fa >= 0), self.active & (self.fb >= 0)
        # cell currents leave node a and enter node b
        self.P = sp.csr_matrix(
            (
                np.concatenate([np.ones(ma.sum()), -np.ones(mb.sum())]),
                (np.concatenate([self.fa[ma], self.fb[mb]]), np.concatenate([k[ma], k[mb]])),
            ),
            shape=(circ.n_free, k.size),
        )

    def rhs(self, v_src):
        return self.circ.rhs(*self.branches, v_src)

    def cell_current(self, Vc):
        return np.where(self.active[:, None], self.bound.current(Vc), 0.0)

    def residual(self, x, v_src, rhs, current=None):
        """(F (n_free, B) [A], relative residual (B,), cell voltages (n_cells, B) [V])."""
        V = self.circ.class_voltages(x, v_src)
        Vc = V[self.ca] - V[self.cb]
        Ic = self.cell_current(Vc) if current is None else current(Vc)
        F = self.K @ x - rhs + self.P @ Ic
        # normwise: residual over the size of the terms of the node current sums
        scale = (
            self.Knorm * np.max(np.abs(x), axis=0, initial=0.0)
            + np.max(np.abs(rhs), axis=0, initial=0.0)
            + np.max(np.abs(Ic), axis=0, initial=0.0)
        )
        Fmax = np.max(np.abs(F), axis=0, initial=0.0)
        rel = np.where(scale > 0, Fmax / np.where(scale > 0, scale, 1.0), 0.0)
        return F, rel, Vc


class _SparseStep:
    """Newton step ``J dx = -F`` with the netlist's sparse Jacobian ``K + A^T diag(g) A``."""

    def __init__(self, kcl, solver):
        self.K, self.solver = kcl.K, solver
        fa, fb, act = kcl.fa, kcl.fb, kcl.active
        k = np.arange(fa.size)
        rows, cols, cell, sign = [], [], [], []
        for p, q in ((fa, fb), (fb, fa)):
            m = act & (p >= 0)
            rows += [p[m]]
            cols += [p[m]]
            cell += [k[m]]
            sign += [np.ones(m.sum())]
            mm = m & (q >= 0)
            rows += [p[mm]]
            cols += [q[mm]]
            cell += [k[mm]]
            sign += [-np.ones(mm.sum())]
        self.rows, self.cols, self.cell, self.sign = map(np.concatenate, (rows, cols, cell, sign))

    def __call__(self, gd, F):
        n, B = F.shape
        J = self.K + sp.coo_matrix(
            (self.sign * gd[self.cell], (self.rows, self.cols)), shape=(n, n)
        ).tocsr()
        b = -F[:, 0] if B == 1 else -F
        return np.asarray(self.solver(J, b), dtype=np.float64).reshape(n, B)


class _GridStep:
    """Newton step on the crossbar grid.

    The netlist's unknowns are of two kinds: grid classes (holding a row- or column-wire node
    of the grid) and series classes, which lie between exactly two branches (driver or
    sense-amplifier end, the node between a cell and its access resistor). Eliminating a series
    node ``X`` between ``P`` and ``Q`` (conductances ``g_P``, ``g_Q``) from ``J dx = -F`` leaves
    the series conductance ``g_P g_Q / (g_P + g_Q)`` between ``P`` and ``Q``, which is exactly
    how the grid folds those resistors into its grid, and moves ``g_P / (g_P + g_Q)`` of ``F_X``
    to ``P``; after the grid solve ``dx_X = (-F_X + g_P dx_P + g_Q dx_Q) / (g_P + g_Q)``.
    """

    def __init__(self, circ, kcl, layout, factory):
        self.layout, self.factory = layout, factory
        self.shape = layout.row_nodes.shape
        n = self.n = circ.n_free
        fr = circ.free[circ.cls[layout.row_nodes.ravel()]]
        fc = circ.free[circ.cls[layout.col_nodes.ravel()]]
        rep = np.full(n, -1)
        layer = np.zeros(n, dtype=np.int8)
        m = fc >= 0
        rep[fc[m]], layer[fc[m]] = np.flatnonzero(m), 1
        m = fr >= 0
        rep[fr[m]], layer[fr[m]] = np.flatnonzero(m), 0
        grid = rep >= 0
        self.row_cls = np.flatnonzero(grid & (layer == 0))
        self.col_cls = np.flatnonzero(grid & (layer == 1))
        self.row_pos, self.col_pos = rep[self.row_cls], rep[self.col_cls]
        self.series = np.flatnonzero(~grid)
        # the two branches at each series class: (series class, neighbour class, fixed
        # conductance of a resistor or -1 and the cell whose dI/dV it is)
        is_ser = np.append(~grid, False)  # index -1 (a known class): not series
        X, nb, gfix, cidx = [], [], [], []
        a, b, g = kcl.branches
        k = np.flatnonzero(kcl.active)
        for p, q, gp, cp in (
            (a, b, g, np.full(a.size, -1)),
            (b, a, g, np.full(a.size, -1)),
            (kcl.ca[k], kcl.cb[k], np.zeros(k.size), k),
            (kcl.cb[k], kcl.ca[k], np.zeros(k.size), k),
        ):
            fp = circ.free[p]
            m = is_ser[fp]
            X.append(fp[m])
            nb.append(q[m])
            gfix.append(gp[m])
            cidx.append(cp[m])
        X, nb, gfix, cidx = map(np.concatenate, (X, nb, gfix, cidx))
        order = np.argsort(X, kind="stable")
        X, nbf, gfix, cidx = X[order], circ.free[nb[order]], gfix[order], cidx[order]
        if not (
            X.size == 2 * self.series.size
            and np.array_equal(X[0::2], self.series)
            and np.array_equal(X[1::2], self.series)
            and not np.any(is_ser[nbf])
        ):
            raise RuntimeError("internal: a netlist node off the grid is not a series node")
        self.nb = (nbf[0::2], nbf[1::2])
        self.gfix = (gfix[0::2], gfix[1::2])
        self.cidx = (cidx[0::2], cidx[1::2])

    def __call__(self, gd, F):
        n, B = F.shape
        M, N = self.shape
        if not np.all(np.isfinite(gd)):
            return np.full((n, B), np.nan)
        # dI/dV < 0 only far outside the operating range (monotone cells): the grid needs G >= 0
        gd = np.maximum(gd, 0.0)
        g1, g2 = (np.where(c >= 0, gd[c], gf) for c, gf in zip(self.cidx, self.gfix, strict=True))
        gs = g1 + g2
        Fx = F[self.series]
        r = -F
        for nbf, gi in zip(self.nb, (g1, g2), strict=True):
            m = nbf >= 0
            np.add.at(r, nbf[m], -(gi[m] / gs[m])[:, None] * Fx[m])
        i_row = np.zeros((B, M * N))
        i_col = np.zeros((B, M * N))
        i_row[:, self.row_pos] = r[self.row_cls].T
        i_col[:, self.col_pos] = r[self.col_cls].T
        lay = self.layout
        xb = Crossbar(
            gd.reshape(M, N), wires=lay.wires, sense=lay.sense, drive=lay.drive,
            solver=self.factory,
        )
        sol = xb.solve(
            np.zeros((B, M)), i_row=i_row.reshape(B, M, N), i_col=i_col.reshape(B, M, N)
        )
        dx = np.zeros((n + 1, B))  # last row: known classes, no change
        dx[self.row_cls] = sol.row_voltages.reshape(B, -1)[:, self.row_pos].T
        dx[self.col_cls] = sol.col_voltages.reshape(B, -1)[:, self.col_pos].T
        dx[self.series] = (
            -Fx + g1[:, None] * dx[self.nb[0]] + g2[:, None] * dx[self.nb[1]]
        ) / gs[:, None]
        return dx[:n]
