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
``dI/dV`` at the present voltages (the companion model), with the same sparse linear solver
callable as the linear problem. The first iterate is the linear solve with ``G``. A backtracking
line search (halving the step while the residual grows) keeps the iteration safe far from the
solution; close to it full steps are taken and convergence is quadratic. The iteration stops
when the Kirchhoff residual, relative to the size of the terms of the node current sums
(``|F|_inf / (|K|_inf |x|_inf + |b|_inf + max |I_cell|)``), is at most ``tol``;
otherwise :class:`~xbarlab.errors.ConvergenceError` reports the residual reached.

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

__all__ = [
    "PolynomialCell",
    "SinhCell",
    "NewtonResult",
    "newton_solve",
    "column_currents",
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
    circ, cell, G, v_src, *, solver=None, tol: float = 1e-12, max_iter: int = 50
) -> NewtonResult:
    """Solve a :class:`~xbarlab.crossbar.topologies.Circuit` with nonlinear ``cell`` models.

    ``G`` [S]: the physical (M, N) array (cell ``k`` = flat index); ``v_src`` (n_src, B) [V]:
    the driven voltages per vector. ``solver(K, b) -> x`` solves each linearized circuit.
    """
    from .topologies import direct_solver

    solver = solver or direct_solver
    bound = cell.bind(G)
    a_r, b_r, g_r = circ.edges(np.zeros(circ.cell_a.size))
    K = circ.laplacian(a_r, b_r, g_r)
    Knorm = float(abs(K).sum(axis=1).max()) if K.nnz else 0.0
    n = circ.n_free
    ca, cb = circ.cls[circ.cell_a], circ.cls[circ.cell_b]
    active = ca != cb
    fa, fb = circ.free[ca], circ.free[cb]
    B = v_src.shape[1]
    V_all = np.zeros((circ.n_cls, B))
    history, iters = [], []

    def assemble_cells(gd):
        rows, cols, vals = [], [], []
        for p, q in ((fa, fb), (fb, fa)):
            m = active & (p >= 0)
            rows += [p[m]]
            cols += [p[m]]
            vals += [gd[m]]
            mm = m & (q >= 0)
            rows += [p[mm]]
            cols += [q[mm]]
            vals += [-gd[mm]]
        return sp.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        ).tocsr()

    for col in range(B):
        vs = v_src[:, col : col + 1]
        rhs = circ.rhs(a_r, b_r, g_r, vs)[:, 0]

        def state(x, vs=vs, rhs=rhs):
            V = circ.class_voltages(x[:, None], vs)[:, 0]
            Vc = V[ca] - V[cb]
            Ic = np.where(active, bound.current(Vc), 0.0)
            F = K @ x - rhs
            np.add.at(F, fa[fa >= 0], Ic[fa >= 0])
            np.add.at(F, fb[fb >= 0], -Ic[fb >= 0])
            # normwise: residual over the size of the terms of the node current sums
            scale = (
                Knorm * np.max(np.abs(x), initial=0.0)
                + np.max(np.abs(rhs), initial=0.0)
                + np.max(np.abs(Ic), initial=0.0)
            )
            rel = float(np.max(np.abs(F), initial=0.0) / scale) if scale > 0 else 0.0
            return F, rel, Vc

        if n == 0:
            x = np.zeros(0)
            hist = [state(x)[1]]
        else:
            # first iterate: the linear circuit with the small-signal conductances
            J0 = K + assemble_cells(bound.slope0())
            rhs0 = rhs + _rhs_cells(circ, bound.slope0(), fa, fb, cb, ca, active, vs)
            x = np.asarray(solver(J0, rhs0), dtype=np.float64).ravel()
            F, rel, Vc = state(x)
            hist = [rel]
            it = 0
            while rel > tol:
                if it >= max_iter:
                    raise ConvergenceError(
                        f"Newton's method stopped after {max_iter} iterations at a Kirchhoff "
                        f"residual of {rel:.3e} (relative to the terms of the node current sums), "
                        f"above tol={tol:g}",
                        residual=rel,
                    )
                gd = np.where(active, bound.slope(Vc), 0.0)
                J = K + assemble_cells(gd)
                dx = np.asarray(solver(J, -F), dtype=np.float64).ravel()
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
                it += 1
        V_all[:, col] = circ.class_voltages(x[:, None], vs)[:, 0]
        history.append(hist)
        iters.append(len(hist) - 1)

    def cell_current(Vc):
        return np.where(active[:, None], bound.current(Vc), 0.0)

    I = circ.sense_currents(V_all, a_r, b_r, g_r, cell_current=cell_current)
    return NewtonResult(currents=I, voltages=V_all, residuals=history, iterations=iters)


def _rhs_cells(circ, g, fa, fb, cb, ca, active, vs):
    """Right-hand side of linear cells ``g`` whose other end is driven: ``g * V_driven``."""
    out = np.zeros(circ.n_free)
    V_known = np.zeros(circ.n_cls)
    m = circ.known_src >= 0
    V_known[m] = vs[circ.known_src[m], 0]
    for p, q in ((fa, cb), (fb, ca)):
        mm = active & (p >= 0) & (circ.known_src[q] >= 0)
        np.add.at(out, p[mm], g[mm] * V_known[q[mm]])
    return out


def column_currents(G, v, cell, **options):
    """Sense currents [A] of an array of nonlinear ``cell`` models (exact, Newton).

    Same options as :func:`xbarlab.crossbar.topologies.column_currents` (topology, wire,
    driver, sense and access resistances, ``solver``, ``tol``, ``max_iter``).
    """
    from .topologies import column_currents as _cc

    return _cc(G, v, cell=cell, **options)
