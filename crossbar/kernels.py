"""Numba kernels for the structured crossbar solvers (no validation here).

Layout: every per-node array is C-contiguous ``(M, N)`` (row index first) or ``(B, M, N)`` for a
batch of right-hand sides. A *chain* is one wire with its cells treated as conductances to a
node held elsewhere: row chains run along the last axis, column chains along axis 0.
Chain factorizations are written in "conductance form" (pivot = downstream link + conductance
seen looking upstream), which keeps every recursion a sum of positive terms: no cancellation
however stiff the wire is compared with the cells.

Parallel loops only ever split independent chains or independent right-hand sides, and every
reduction runs in a fixed order, so results are bit-identical whatever the thread count.
Each kernel compiles at its first call (:func:`xbarlab.jit.kernel`), not at import.
"""

import numba as nb
import numpy as np

from ..jit import kernel

_OPTS = dict(cache=True, nogil=True, fastmath=False)
_CHUNK = 1 << 16  # columns per task in column sweeps: whole rows, so sweeps stream memory


@kernel(
    "void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, ::1])",
    parallel=False,
    **_OPTS,
)
def factor_rows(gnode, gseg, finv, mult, sdiag):
    """LDL^T of every row chain: nodes ``gnode[i, :]`` to ground, segment ``gseg[i, k]`` joining
    node k-1 and k (k = 0 and k = N are the links to the held ends). Fills the inverse pivots,
    the forward multipliers and sdiag: the conductance each node sees through the wire alone
    (so the chain inverse has diagonal 1 / (gnode + sdiag))."""
    M, N = gnode.shape
    for i in nb.prange(M):
        phi = np.empty(N)
        psi = np.empty(N)
        # forward: phi[j] = conductance to ground seen from node j looking left, cell included
        phi[0] = gnode[i, 0] + gseg[i, 0]
        mult[i, 0] = 0.0
        for j in range(1, N):
            f = phi[j - 1] + gseg[i, j]
            finv[i, j - 1] = 1.0 / f
            mult[i, j] = gseg[i, j] / f
            phi[j] = gnode[i, j] + gseg[i, j] * phi[j - 1] / f
        finv[i, N - 1] = 1.0 / (phi[N - 1] + gseg[i, N])
        # backward: psi[j] likewise looking right; sdiag = conductance seen by the cell at j
        # through the wire (left + right), each a series combination of positive terms
        psi[N - 1] = gnode[i, N - 1] + gseg[i, N]
        sdiag[i, N - 1] = gseg[i, N]
        for j in range(N - 2, -1, -1):
            c = gseg[i, j + 1]
            sr = c * psi[j + 1] / (psi[j + 1] + c)
            psi[j] = gnode[i, j] + sr
            sdiag[i, j] = sr
        sdiag[i, 0] += gseg[i, 0]
        for j in range(1, N):
            sdiag[i, j] += gseg[i, j] * phi[j - 1] * finv[i, j - 1]


@kernel(
    "void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, ::1])",
    parallel=False,
    **_OPTS,
)
def factor_cols(gnode, gseg, finv, mult):
    """LDL^T of every column chain (chains along axis 0, ``gseg`` of shape (M+1, N))."""
    M, N = gnode.shape
    nchunk = (N + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunk):
        j0 = c * _CHUNK
        j1 = min(N, j0 + _CHUNK)
        phi = np.empty(j1 - j0)
        for j in range(j0, j1):
            phi[j - j0] = gnode[0, j] + gseg[0, j]
            mult[0, j] = 0.0
        for i in range(1, M):
            for j in range(j0, j1):
                f = phi[j - j0] + gseg[i, j]
                finv[i - 1, j] = 1.0 / f
                mult[i, j] = gseg[i, j] / f
                phi[j - j0] = gnode[i, j] + gseg[i, j] * phi[j - j0] / f
        for j in range(j0, j1):
            finv[M - 1, j] = 1.0 / (phi[j - j0] + gseg[M, j])


@kernel(
    "void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, ::1],"
    " float64[:, :, ::1], float64[:, :, ::1])",
    parallel=False,
    **_OPTS,
)
def solve_rows(finv, mult, gseg, scale, rhs, out):
    """out[b] = T^{-1} (scale * rhs[b]) for every row chain (scale: per-node factor, e.g. g).
    Four rows advance together: their recurrences are independent, so the CPU overlaps them."""
    B, M, N = rhs.shape
    M4 = M - M % 4
    for b in range(B):
        for i in range(0, M4, 4):
            y0 = scale[i, 0] * rhs[b, i, 0]
            y1 = scale[i + 1, 0] * rhs[b, i + 1, 0]
            y2 = scale[i + 2, 0] * rhs[b, i + 2, 0]
            y3 = scale[i + 3, 0] * rhs[b, i + 3, 0]
            out[b, i, 0] = y0
            out[b, i + 1, 0] = y1
            out[b, i + 2, 0] = y2
            out[b, i + 3, 0] = y3
            for j in range(1, N):
                y0 = scale[i, j] * rhs[b, i, j] + mult[i, j] * y0
                y1 = scale[i + 1, j] * rhs[b, i + 1, j] + mult[i + 1, j] * y1
                y2 = scale[i + 2, j] * rhs[b, i + 2, j] + mult[i + 2, j] * y2
                y3 = scale[i + 3, j] * rhs[b, i + 3, j] + mult[i + 3, j] * y3
                out[b, i, j] = y0
                out[b, i + 1, j] = y1
                out[b, i + 2, j] = y2
                out[b, i + 3, j] = y3
            x0 = y0 * finv[i, N - 1]
            x1 = y1 * finv[i + 1, N - 1]
            x2 = y2 * finv[i + 2, N - 1]
            x3 = y3 * finv[i + 3, N - 1]
            out[b, i, N - 1] = x0
            out[b, i + 1, N - 1] = x1
            out[b, i + 2, N - 1] = x2
            out[b, i + 3, N - 1] = x3
            for j in range(N - 2, -1, -1):
                x0 = (out[b, i, j] + gseg[i, j + 1] * x0) * finv[i, j]
                x1 = (out[b, i + 1, j] + gseg[i + 1, j + 1] * x1) * finv[i + 1, j]
                x2 = (out[b, i + 2, j] + gseg[i + 2, j + 1] * x2) * finv[i + 2, j]
                x3 = (out[b, i + 3, j] + gseg[i + 3, j + 1] * x3) * finv[i + 3, j]
                out[b, i, j] = x0
                out[b, i + 1, j] = x1
                out[b, i + 2, j] = x2
                out[b, i + 3, j] = x3
        for i in range(M4, M):
            y = scale[i, 0] * rhs[b, i, 0]
            out[b, i, 0] = y
            for j in range(1, N):
                y = scale[i, j] * rhs[b, i, j] + mult[i, j] * y
                out[b, i, j] = y
            x = y * finv[i, N - 1]
            out[b, i, N - 1] = x
            for j in range(N - 2, -1, -1):
                x = (out[b, i, j] + gseg[i, j + 1] * x) * finv[i, j]
                out[b, i, j] = x


@kernel(
    "void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, :, ::1],"
    " float64[:, :, ::1])",
    parallel=False,
    **_OPTS,
)
def solve_cols(finv, mult, gseg, rhs, out):
    """out[b] = P^{-1} rhs[b] for every column chain; sweeps along axis 0, vectorised over j."""
    B, M, N = rhs.shape
    nchunk = (N + _CHUNK - 1) // _CHUNK
    for t in nb.prange(B * nchunk):
        b = t // nchunk
        c = t - b * nchunk
        j0 = c * _CHUNK
        j1 = min(N, j0 + _CHUNK)
        for j in range(j0, j1):
            out[b, 0, j] = rhs[b, 0, j]
        for i in range(1, M):
            for j in range(j0, j1):
                out[b, i, j] = rhs[b, i, j] + mult[i, j] * out[b, i - 1, j]
        for j in range(j0, j1):
            out[b, M - 1, j] = out[b, M - 1, j] * finv[M - 1, j]
        for i in range(M - 2, -1, -1):
            for j in range(j0, j1):
                out[b, i, j] = (out[b, i, j] + gseg[i + 1, j] * out[b, i + 1, j]) * finv[i, j]


@kernel(
    "void(float64[:, ::1], float64[:, ::1], float64[:, :, ::1], float64[:, :, ::1],"
    " float64[:, :, ::1])",
    parallel=False,
    **_OPTS,
)
def schur_apply(g, gcol, x, rrow, y):
    """y = Lc x + g * (x - rrow): the column-node Schur operator once rrow = T^{-1}(g x)."""
    B, M, N = x.shape
    for t in nb.prange(B * M):
        b = t // M
        i = t - b * M
        for j in range(N):
            a = gcol[i, j]
            c = gcol[i + 1, j]
            xi = x[b, i, j]
            v = (a + c) * xi + g[i, j] * (xi - rrow[b, i, j])
            if i > 0:
                v -= a * x[b, i - 1, j]
            if i < M - 1:
                v -= c * x[b, i + 1, j]
            y[b, i, j] = v


@kernel("void(float64[:, :, ::1], float64[:, :, ::1], float64[:, ::1])", parallel=False, **_OPTS)
def row_dots(a, c, part):
    """part[b, i] = sum_j a[b, i, j] * c[b, i, j] (fixed order; summed over i by the caller)."""
    B, M, N = a.shape
    for t in nb.prange(B * M):
        b = t // M
        i = t - b * M
        s = 0.0
        for j in range(N):
            s += a[b, i, j] * c[b, i, j]
        part[b, i] = s


@kernel(
    "void(float64[::1], float64[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1],"
    " float64[:, :, ::1], float64[:, ::1], float64[:, ::1])",
    parallel=False,
    **_OPTS,
)
def cg_update(alpha, x, r, p, q, rmax, xmax):
    """x += alpha p; r -= alpha q; per-row max |r| and max |x| (max is order independent)."""
    B, M, N = x.shape
    for t in nb.prange(B * M):
        b = t // M
        i = t - b * M
        a = alpha[b]
        mr = 0.0
        mx = 0.0
        for j in range(N):
            xv = x[b, i, j] + a * p[b, i, j]
            rv = r[b, i, j] - a * q[b, i, j]
            x[b, i, j] = xv
            r[b, i, j] = rv
            mr = max(mr, abs(rv))
            mx = max(mx, abs(xv))
        rmax[b, i] = mr
        xmax[b, i] = mx


@kernel("void(float64[::1], float64[:, :, ::1], float64[:, :, ::1])", parallel=False, **_OPTS)
def cg_direction(beta, z, p):
    """p = z + beta p."""
    B, M, N = z.shape
    for t in nb.prange(B * M):
        b = t // M
        i = t - b * M
        be = beta[b]
        for j in range(N):
            p[b, i, j] = z[b, i, j] + be * p[b, i, j]


@kernel("void(float64[:, ::1], float64[:, ::1])", **_OPTS)
def chol_inv_lower(A, Linv):
    """Linv = inverse of the lower Cholesky factor of the small SPD block A (A overwritten)."""
    n = A.shape[0]
    for k in range(n):
        s = A[k, k]
        for p in range(k):
            s -= A[k, p] * A[k, p]
        if s <= 0.0:
            s = np.nan  # not positive definite: propagate, caught by the caller's checks
        d = np.sqrt(s)
        A[k, k] = d
        for i in range(k + 1, n):
            t = A[i, k]
            for p in range(k):
                t -= A[i, p] * A[k, p]
            A[i, k] = t / d
    for i in range(n):
        for j in range(n):
            Linv[i, j] = 0.0
    for j in range(n):
        Linv[j, j] = 1.0 / A[j, j]
        for i in range(j + 1, n):
            t = 0.0
            for p in range(j, i):
                t -= A[i, p] * Linv[p, j]
            Linv[i, j] = t / A[i, i]


@kernel(
    "void(float64[:, ::1], float64[:, ::1], float64[:, ::1], float64[:, ::1],"
    " float64[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1], float64[:, :, ::1], boolean,"
    " float64, float64[:, ::1], float64[::1], boolean[::1])",
    **_OPTS,
)
def kcl_finite(g, g_row, g_col, v, vr, vc, i_row, i_col, inj, rtol, cur, worst, ok):
    """Kirchhoff check for a grid with every segment finite (no merged nodes).

    For each right-hand side b: cur[b] = column currents (sum of cell currents), worst[b] =
    max node |residual| / largest branch current, ok[b] = every node satisfies
    |residual| <= rtol * Imax + 64 eps * (sum over its branches of g (|Va| + |Vb|) + |inj|)."""
    B, M, N = vr.shape
    eps = 2.220446049250313e-16
    for b in range(B):
        imax = 0.0
        for j in range(N):
            cur[b, j] = 0.0
        for i in range(M):
            for k in range(N + 1):
                va = v[b, i] if k == 0 else vr[b, i, k - 1]
                vb = v[b, i] if k == N else vr[b, i, k]
                imax = max(imax, abs(g_row[i, k] * (va - vb)))
            for j in range(N):
                c = g[i, j] * (vr[b, i, j] - vc[b, i, j])
                cur[b, j] += c
                imax = max(imax, abs(c))
        for k in range(M + 1):
            for j in range(N):
                ca = vc[b, k - 1, j] if k > 0 else 0.0
                cb = vc[b, k, j] if k < M else 0.0
                imax = max(imax, abs(g_col[k, j] * (ca - cb)))
        rmax = 0.0
        good = True
        for i in range(M):
            for j in range(N):
                x = vr[b, i, j]
                y = vc[b, i, j]
                xl = v[b, i] if j == 0 else vr[b, i, j - 1]
                xr = v[b, i] if j == N - 1 else vr[b, i, j + 1]
                gl = g_row[i, j]
                gr = g_row[i, j + 1]
                cell = g[i, j] * (x - y)
                res = gl * (xl - x) + gr * (xr - x) - cell
                sc = gl * (abs(xl) + abs(x)) + gr * (abs(xr) + abs(x)) + g[i, j] * (abs(x) + abs(y))
                if inj:
                    res += i_row[b, i, j]
                    sc += abs(i_row[b, i, j])
                rmax = max(rmax, abs(res))
                if not abs(res) <= rtol * imax + 64.0 * eps * sc:
                    good = False
                ya = vc[b, i - 1, j] if i > 0 else 0.0
                yb = vc[b, i + 1, j] if i < M - 1 else 0.0
                ga = g_col[i, j]
                gb = g_col[i + 1, j]
                res = ga * (ya - y) + gb * (yb - y) + cell
                sc = ga * (abs(ya) + abs(y)) + gb * (abs(yb) + abs(y)) + g[i, j] * (abs(x) + abs(y))
                if inj:
                    res += i_col[b, i, j]
                    sc += abs(i_col[b, i, j])
                rmax = max(rmax, abs(res))
                if not abs(res) <= rtol * imax + 64.0 * eps * sc:
                    good = False
        if imax > 0.0:
            worst[b] = rmax / imax
        else:
            worst[b] = 0.0 if rmax == 0.0 else np.inf
        ok[b] = good


@kernel(
    "void(float64[::1], float64[::1], float64[::1], float64[::1], float64[::1],"
    " float64[:, ::1], float64[::1])",
    **_OPTS,
)
def row_block(g, finv, mult, gseg, sdiag, H, F):
    """For one row chain T = Lr + diag(g): H = D - D T^{-1} D (dense, symmetric; diagonal in
    the cancellation-free form g s / (g + s)) and F = D T^{-1} b per volt of drive."""
    N = g.shape[0]
    col = np.empty(N)
    for k in range(N):
        # column k of T^{-1}: forward sweep of e_k (zero before k), then back substitution
        for j in range(k):
            col[j] = 0.0
        y = 1.0
        col[k] = y
        for j in range(k + 1, N):
            y = mult[j] * y
            col[j] = y
        x = y * finv[N - 1]
        col[N - 1] = x
        for j in range(N - 2, -1, -1):
            x = (col[j] + gseg[j + 1] * x) * finv[j]
            col[j] = x
        gk = g[k]
        for j in range(N):
            H[j, k] = -g[j] * col[j] * gk
        den = gk + sdiag[k]
        H[k, k] = gk * sdiag[k] / den if den > 0.0 else 0.0
        if k == 0:
            for j in range(N):
                F[j] = gseg[0] * col[j]
        if k == N - 1:
            for j in range(N):
                F[j] += gseg[N] * col[j]
    for j in range(N):
        F[j] *= g[j]
