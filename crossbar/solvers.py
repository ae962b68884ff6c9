r"""Linear solvers for the crossbar grid, passed as callables (``Crossbar(G, solver=pcg())``).

A solver is a callable ``solver(grid) -> factorization``; the factorization offers
``solve(v, i_row, i_col) -> (row_voltages, col_voltages)`` for a batch ``v`` (B, M) [V] with
optional injected node currents (B, M, N) [A] (None = zero), and may offer
``effective_matrix() -> (N, M) array or None``. Factor or precondition once, solve many.

The math. With row-node voltages R and column-node voltages C (each M x N) the nodal equations
are the symmetric positive definite system::

    [ Lr + D    -D    ] [R]   [b + i_row]        Lr: row wires, one tridiagonal chain per row
    [  -D     Lc + D  ] [C] = [    i_col]        Lc: column wires, one chain per column
                                                  D = diag(g): the cells; b: the drivers
Eliminating R exactly, row by row (tridiagonal solves), leaves the Schur complement on C::

    S C = i_col + D T^{-1} (b + i_row),   S = Lc + D - D T^{-1} D,   T = Lr + D.

``pcg`` runs conjugate gradients on S, preconditioned by the column chains with the exact
diagonal of D - D T^{-1} D (another set of tridiagonal solves): O(M N) memory and work per
iteration, a handful of iterations at 256 x 256, a few dozen at 1024 x 1024 with strong IR drop.
For the effective matrix the same S is block tridiagonal in the row index with dense N x N
blocks; eliminating block after block from the top (in a cancellation-free form, see
``_block_effective``) leaves the sense currents of all M inputs at the last block, with no back
substitution: about 3 M N^3 flops in matrix products (one BLAS thread, so the bits never
depend on the machine's thread count).
``direct`` assembles the merged-node system (any zero resistance) and factors it with SuperLU.

Newton's method for nonlinear cells reuses all of this: each iteration is the linear grid with
the cells' differential conductances as ``G``, zero driver voltages and minus the Kirchhoff
residual (net current leaving each node) injected:
``Crossbar(G_diff, wires=w).solve(0 * v, i_row=-F_r, i_col=-F_c)`` gives the Newton step
(:class:`xbarlab.crossbar.nonlinear.GridStep`, which also condenses the netlist's series nodes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, ConvergenceError
from . import kernels as K
from .grid import Grid

__all__ = ["pcg", "direct"]

_EPS = np.finfo(np.float64).eps
_WORK_NODES = 1 << 22  # right-hand sides per PCG chunk: this many nodes (~0.35 GB of work arrays)


@dataclass(frozen=True)
class PCG:
    """Schur-complement conjugate gradients with tridiagonal wire preconditioning."""

    rtol: float = 1e-13
    """Stop when max |residual| <= rtol * max |right-hand side| (dimensionless)."""
    maxiter: int | None = None
    """Iteration limit (None: 4 (M + N) + 200)."""

    def __post_init__(self):
        if not (isinstance(self.rtol, int | float) and 0 < self.rtol < 1):
            raise ConfigError(f"rtol must be in (0, 1), got {self.rtol!r}")
        if self.maxiter is not None and not (isinstance(self.maxiter, int) and self.maxiter > 0):
            raise ConfigError(f"maxiter must be a positive int or None, got {self.maxiter!r}")

    def __call__(self, grid: Grid) -> _Structured:
        if not grid.structured:
            raise ConfigError(
                "solver=pcg() needs every wire resistance > 0 (or a whole layer ideal); this "
                "circuit has isolated zero-resistance segments: use solver=direct()"
            )
        return _Structured(grid, self.rtol, self.maxiter)


@dataclass(frozen=True)
class Direct:
    """Sparse direct factorization (SuperLU) of the merged-node system; any wiring."""

    def __call__(self, grid: Grid) -> _Direct:
        return _Direct(grid)


def pcg(*, rtol: float = 1e-13, maxiter: int | None = None) -> PCG:
    """Iterative solver, O(M N) memory (see module docstring). ``rtol``: stopping tolerance
    relative to the largest right-hand-side current; ``maxiter``: iteration limit."""
    return PCG(rtol=rtol, maxiter=maxiter)


def direct() -> Direct:
    """Sparse direct solver: exact merging of zero resistances, any wiring, O(fill) memory."""
    return Direct()


# ============================================================================ structured


class _Structured:
    """Factorization state for the structured solvers (all wire resistances positive, or one
    whole layer ideal)."""

    def __init__(self, grid: Grid, rtol: float, maxiter: int | None):
        self.grid = grid
        M, N = grid.shape
        self.rtol = rtol
        self.maxiter = maxiter if maxiter is not None else 4 * (M + N) + 200
        self.g = np.array(grid.g, order="C")  # writable copies: numba signatures
        self.g_row = np.array(grid.g_row, order="C")
        self.g_col = np.array(grid.g_col, order="C")
        self.mode = (
            ("ideal" if grid.cols_ideal else "rows_ideal")
            if grid.rows_ideal
            else ("cols_ideal" if grid.cols_ideal else "general")
        )
        self.iterations = 0
        if self.mode in ("general", "cols_ideal"):
            self.finv_r = np.empty((M, N))
            self.mult_r = np.empty((M, N))
            self.sdiag_r = np.empty((M, N))
            K.factor_rows(self.g, self.g_row, self.finv_r, self.mult_r, self.sdiag_r)
        if self.mode in ("general", "rows_ideal"):
            if self.mode == "general":
                # exact diagonal of D - D T^{-1} D: the cell in series with the row wire
                s = self.sdiag_r
                denom = self.g + s
                self.dh = np.ascontiguousarray(
                    np.divide(self.g * s, denom, out=np.zeros((M, N)), where=denom > 0)
                )
            else:
                self.dh = self.g
            self.finv_c = np.empty((M, N))
            self.mult_c = np.empty((M, N))
            K.factor_cols(self.dh, self.g_col, self.finv_c, self.mult_c)

    # ----------------------------------------------------------------- helpers
    def _row_rhs(self, v, i_row):
        B = v.shape[0]
        M, N = self.grid.shape
        rhs = np.zeros((B, M, N)) if i_row is None else i_row.copy()
        rhs[:, :, 0] += self.g_row[:, 0] * v
        rhs[:, :, N - 1] += self.g_row[:, N] * v
        return rhs

    def _rows(self, rhs, scale=None):
        out = np.empty_like(rhs)
        if scale is None:
            scale = np.ones(self.grid.shape)
        K.solve_rows(self.finv_r, self.mult_r, self.g_row, scale, rhs, out)
        return out

    def _precond(self, r, out):
        K.solve_cols(self.finv_c, self.mult_c, self.g_col, r, out)

    def _dots(self, a, c, part):
        K.row_dots(a, c, part)
        return part.sum(axis=1)

    # ----------------------------------------------------------------- solve
    def solve(self, v, i_row=None, i_col=None):
        B = v.shape[0]
        M, N = self.grid.shape
        chunk = max(1, _WORK_NODES // (M * N))  # bounds the PCG work arrays (~10 per RHS)
        if self.mode == "general" and B > chunk:
            parts = [
                self.solve(
                    v[k : k + chunk],
                    None if i_row is None else i_row[k : k + chunk],
                    None if i_col is None else i_col[k : k + chunk],
                )
                for k in range(0, B, chunk)
            ]
            return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if self.mode == "ideal":
            return np.repeat(v[:, :, None], N, axis=2), np.zeros((B, M, N))
        if self.mode == "rows_ideal":
            rhs = self.g * v[:, :, None]
            if i_col is not None:
                rhs = rhs + i_col
            C = np.empty((B, M, N))
            self._precond(np.ascontiguousarray(rhs), C)
            return np.repeat(v[:, :, None], N, axis=2), C
        rhs_row = self._row_rhs(v, i_row)
        if self.mode == "cols_ideal":
            return self._rows(rhs_row), np.zeros((B, M, N))
        f = self.g * self._rows(rhs_row)
        if i_col is not None:
            f += i_col
        x = self._pcg(f)
        R = self._rows(np.ascontiguousarray(rhs_row + self.g * x))
        return R, x

    def _apply(self, p, q, tmp):
        K.solve_rows(self.finv_r, self.mult_r, self.g_row, self.g, p, tmp)
        K.schur_apply(self.g, self.g_col, p, tmp, q)

    def _pcg(self, f):
        B, M, N = f.shape
        fmax = np.abs(f).reshape(B, -1).max(axis=1)
        gscale = 2.0 * self.g_col.max() + self.g.max()
        x = np.zeros_like(f)
        r = f.copy()
        z = np.empty_like(f)
        q = np.empty_like(f)
        tmp = np.empty_like(f)
        part = np.empty((B, M))
        rmax = np.empty((B, M))
        xmax = np.empty((B, M))
        target = self.rtol * fmax
        total = 0
        for _restart in range(3):
            self._precond(r, z)
            p = z.copy()
            rz = self._dots(r, z, part)
            active = np.abs(r).reshape(B, -1).max(axis=1) > target
            it = 0
            while active.any() and it < self.maxiter:
                self._apply(p, q, tmp)
                pq = self._dots(p, q, part)
                alpha = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
                K.cg_update(alpha, x, r, p, q, rmax, xmax)
                rm = rmax.max(axis=1)
                floor = 16.0 * _EPS * gscale * xmax.max(axis=1)
                active &= rm > np.maximum(target, floor)
                self._precond(r, z)
                rz_new = self._dots(r, z, part)
                beta = np.where(active, rz_new / np.where(rz != 0, rz, 1.0), 0.0)
                rz = rz_new
                K.cg_direction(beta, z, p)
                it += 1
            total += it
            # true residual (the recursive one drifts): restart from x if it is not met
            self._apply(x, q, tmp)
            r = f - q
            rm = np.abs(r).reshape(B, -1).max(axis=1)
            xm = np.abs(x).reshape(B, -1).max(axis=1)
            floor = 64.0 * _EPS * gscale * xm
            if np.all(rm <= np.maximum(10 * target, floor)):
                break
            if it >= self.maxiter:
                break
        self.iterations = total
        bad = rm > np.maximum(10 * target, floor)
        if bad.any():
            rel = float(np.max(rm[bad] / np.where(fmax[bad] > 0, fmax[bad], 1.0)))
            raise ConvergenceError(
                f"pcg stopped after {total} iterations with residual {rel:.3e} relative to the "
                f"largest injected current (rtol={self.rtol:g}, maxiter={self.maxiter})",
                residual=rel,
            )
        return x

    # ----------------------------------------------------------------- effective matrix
    def effective_matrix(self):
        if self.mode != "general":
            return None
        g_col = self.g_col
        if g_col[0].any() and g_col[-1].any():
            return None  # both column ends sensed: not produced by the public API
        flip = bool(g_col[0].any())
        g, g_row, finv, mult, sdiag = self.g, self.g_row, self.finv_r, self.mult_r, self.sdiag_r
        if flip:  # sense at the top: relabel rows so that the sense is at the last block
            g, g_row, finv, mult, sdiag = (
                np.ascontiguousarray(a[::-1]) for a in (g, g_row, finv, mult, sdiag)
            )
            g_col = np.ascontiguousarray(g_col[::-1])
        # BLAS picks different kernels (different rounding) with one or several threads: one
        # thread, so that the bits never depend on the machine (the previous limit is restored)
        with threadpool_limits(limits=1, user_api="blas"):
            A = _block_effective(g, g_row, g_col, finv, mult, sdiag)
        return A[:, ::-1] if flip else A


def _block_effective(g, g_row, g_col, finv, mult, sdiag):
    """Sense currents for all M unit inputs, by block elimination of S along the rows.

    Block i of S is T_i = H_i + diag(c_i + c_{i+1}) with H_i = D_i - D_i T_i^{-1} D_i (dense),
    c_i = g_col[i]; neighbours couple through -diag(c). Writing the pivot block as
    U_i = Q_i + diag(c_{i+1}) gives Q_i = H_i + c_i (Q_{i-1} + c_i)^{-1} Q_{i-1}: the large wire
    conductances never cancel. Right-hand sides (one column per input) accumulate the same way.
    """
    M, N = g.shape
    R = np.zeros((N, N + M))  # [Q | Y]: right-hand sides of each block step, solved in place
    Y = R[:, N:]
    H = np.empty((N, N))
    F = np.empty(N)
    Q = np.empty((N, N))
    P = np.empty((N, N))
    diag = np.arange(N)
    for i in range(M):
        K.row_block(g[i], finv[i], mult[i], g_row[i], sdiag[i], H, F)
        if i == 0:
            Q[:] = H
            Q[diag, diag] += g_col[0]
        else:
            c = g_col[i]
            P[:] = Q
            P[diag, diag] += c
            R[:, :N] = Q
            X = _spd_solve(P, R[:, : N + i], overwrite=True)
            np.multiply(c[:, None], X[:, :N], out=Q)
            Q += H
            Q += Q.T.copy()
            Q *= 0.5
            Y[:, :i] *= c[:, None]
        Y[:, i] = F
    c = g_col[M]
    P[:] = Q
    P[diag, diag] += c
    return c[:, None] * _spd_solve(P, np.ascontiguousarray(Y), overwrite=True)


# ============================================================================ direct


class _Direct:
    """Merged-node nodal analysis: free groups are unknowns; groups tied to a driver or to the
    sense ground through zero resistance are held at that voltage (condensed)."""

    def __init__(self, grid: Grid):
        self.grid = grid
        M, N = grid.shape
        rid, cid, held_r, held_c = grid.groups()
        held = np.concatenate([held_r, held_c])
        ng = held.size
        nr = held_r.size
        free = ~held
        nu = int(free.sum())
        ext = np.empty(ng, dtype=np.int64)
        ext[free] = np.arange(nu)
        row_of_group = np.empty(nr, dtype=np.int64)
        row_of_group[rid] = np.arange(M)[:, None]
        ext[:nr][held_r] = nu + row_of_group[held_r]
        ext[nr:][held_c] = nu + M  # ground
        er = ext[rid]
        ec = ext[cid]
        gr, gc, g = grid.g_row, grid.g_col, grid.g
        drv = (nu + np.arange(M))[:, None]
        gnd = nu + M
        a, b, w = [], [], []

        def add(x, y, gv):
            x, y, gv = np.broadcast_arrays(x, y, gv)
            keep = np.isfinite(gv) & (gv > 0)
            a.append(x[keep].ravel())
            b.append(y[keep].ravel())
            w.append(gv[keep].ravel())

        add(er[:, :-1], er[:, 1:], gr[:, 1:N])
        add(er[:, :1], drv, gr[:, :1])
        add(er[:, -1:], drv, gr[:, N:])
        add(ec[:-1, :], ec[1:, :], gc[1:M, :])
        add(ec[:1, :], gnd, gc[:1, :])
        add(ec[-1:, :], gnd, gc[M:, :])
        add(er, ec, g)
        a, b, w = (np.concatenate(t) for t in (a, b, w))
        keep = a != b
        a, b, w = a[keep], b[keep], w[keep]
        au, bu = a < nu, b < nu
        both = au & bu
        rows = np.concatenate([a[both], b[both], a[au], b[bu]])
        cols = np.concatenate([b[both], a[both], a[au], b[bu]])
        vals = np.concatenate([-w[both], -w[both], w[au], w[bu]])
        self.nu = nu
        Kuu = sp.csc_matrix((vals, (rows, cols)), shape=(nu, nu))
        # coupling to held nodes: rhs[u] += g * V_known
        ka = au & ~bu
        kb = bu & ~au
        self.Bk = sp.csr_matrix(
            (
                np.concatenate([w[ka], w[kb]]),
                (np.concatenate([a[ka], b[kb]]), np.concatenate([b[ka], a[kb]]) - nu),
            ),
            shape=(nu, M + 1),
        )
        # injected currents summed over free groups
        node_ext = np.concatenate([er.ravel(), ec.ravel()])
        nodes_free = node_ext < nu
        self.Pinj = sp.csr_matrix(
            (np.ones(int(nodes_free.sum())), (node_ext[nodes_free], np.flatnonzero(nodes_free))),
            shape=(nu, 2 * M * N),
        )
        self.er, self.ec = er, ec
        self.lu = None
        if nu:
            self.lu = spla.splu(
                Kuu,
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )

    def solve(self, v, i_row=None, i_col=None):
        B, M = v.shape
        N = self.grid.shape[1]
        vals = np.zeros((self.nu + M + 1, B))
        vals[self.nu : self.nu + M] = v.T
        if self.nu:
            rhs = self.Bk[:, :M] @ v.T
            if i_row is not None or i_col is not None:
                inj = np.zeros((B, 2 * M * N))
                if i_row is not None:
                    inj[:, : M * N] = i_row.reshape(B, -1)
                if i_col is not None:
                    inj[:, M * N :] = i_col.reshape(B, -1)
                rhs = rhs + self.Pinj @ inj.T
            vals[: self.nu] = self.lu.solve(np.asfortranarray(rhs)).reshape(self.nu, B)
        R = np.ascontiguousarray(np.moveaxis(vals[self.er], -1, 0))
        C = np.ascontiguousarray(np.moveaxis(vals[self.ec], -1, 0))
        return R, C


_BLOCK = 64


def _spd_solve(P: np.ndarray, R: np.ndarray, *, overwrite: bool = False) -> np.ndarray:
    """P^{-1} R for a dense SPD P by blocked Cholesky in which all O(n^3) work is matrix
    products (small diagonal blocks in a serial Numba kernel); call it under a one-thread BLAS
    limit (as ``effective_matrix`` does). With ``overwrite`` P and R are used as work space and
    the result is R itself (R may be a column slice of a larger C array)."""
    n = P.shape[0]
    A = P if overwrite else np.array(P, order="C")
    starts = list(range(0, n, _BLOCK))
    linv = []
    for k0 in starts:
        k1 = min(n, k0 + _BLOCK)
        blk = np.ascontiguousarray(A[k0:k1, k0:k1])
        Li = np.empty_like(blk)
        K.chol_inv_lower(blk, Li)
        linv.append(Li)
        if k1 < n:
            A[k1:, k0:k1] = A[k1:, k0:k1] @ Li.T
            A[k1:, k1:] -= A[k1:, k0:k1] @ A[k1:, k0:k1].T
    Z = R if overwrite else np.array(R, order="C")
    for b, k0 in enumerate(starts):  # forward: L Z = R
        k1 = min(n, k0 + _BLOCK)
        if k0:
            Z[k0:k1] -= A[k0:k1, :k0] @ Z[:k0]
        Z[k0:k1] = linv[b] @ Z[k0:k1]
    for b in range(len(starts) - 1, -1, -1):  # backward: L^T X = Z
        k0 = starts[b]
        k1 = min(n, k0 + _BLOCK)
        if k1 < n:
            Z[k0:k1] -= A[k1:, k0:k1].T @ Z[k1:]
        Z[k0:k1] = linv[b].T @ Z[k0:k1]
    return Z
