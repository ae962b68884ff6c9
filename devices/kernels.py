"""Numba kernels of the device models (no validation here; see composite.py).

Randomness is counter based: every random number is a pure function of
``(seed, stage, cell index, draw index)``.  A per-stage key is mixed from the seed,
a per-cell key from the stage key and the flat (C-order) cell index, and each draw
hashes ``cell_key + (k + 1) * gamma`` with the SplitMix64 finaliser.  Threads and
chunking therefore never change a result: ``prange`` only decides who computes a
cell, not what it gets.  Uniforms carry 53 random bits; normals come from the
inverse CDF (Acklam's rational approximation, relative error < 1.2e-9), one hash
per
normal in the ziggurat's fast path (Marsaglia & Tsang's layered rectangles, 256 layers
in double precision: 8 bits pick the layer, 1 bit the sign, 53 bits the abscissa; the
1 % of draws outside the fast path re-hash deterministically). ``_ppf`` (Acklam's
inverse CDF) remains for tests and callers that need quantiles. Beta draws (the bounded
programming-error family) are ratios of two Marsaglia-Tsang gamma draws that consume the
cell's draw indices one after the other, so their rejection loops stay deterministic too.

Curves (functions of a conductance g [S]) are encoded as flat float64 programs, see
:func:`_curve` and ``curves.py``.  Kernel configuration travels in two small arrays
(``ip``: int64, ``fp``: float64) indexed by the constants below.

The public kernels compile at their first call (:func:`xbarlab.jit.kernel`), so a process
compiles only those it uses; the per-cell functions are inlined into them (the curves
partly by LLVM, see :func:`_leaf`). The cell index
is passed on as int64 (prange's own index is typed int64, then uint64), so that one
compiled version of each helper that is not inlined serves every kernel.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..jit import kernel

# ------------------------------------------------------------------------ counter RNG

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_GAMMA2 = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 1.0 / 9007199254740992.0

# stages (fixed forever: changing them changes every sampled bit)
STAGE_EPS = 1
STAGE_D2D = 2
STAGE_STUCK = 3
STAGE_NU = 4
STAGE_RELAX = 5
STAGE_FLICKER = 6
STAGE_SHORT = 7
STAGE_FLICKER_READ = 8


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _stage_key(seed, stage):
    return _mix(_mix(seed ^ (np.uint64(stage) * _GAMMA2)) + _GAMMA)


@njit(cache=True, inline="always")
def _cell_key(stage_key, i):
    return _mix(stage_key + np.uint64(i) * _GAMMA)


@njit(cache=True, inline="always")
def _u01(cell_key, k):
    """Uniform on the open interval (0, 1), 53 random bits."""
    h = _mix(cell_key + (np.uint64(k) + _ONE) * _GAMMA2)
    return (float(np.int64(h >> _S11)) + 0.5) * _TWO_M53


@njit(cache=True, inline="always")
def _ppf(p):
    """Standard-normal quantile (Acklam's algorithm), p in (0, 1)."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        return (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q
                   - 2.400758277161838e+00) * q - 2.549732539343734e+00) * q
                 + 4.374664141464968e+00) * q + 2.938163982698783e+00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q
              + 2.445134137142996e+00) * q + 3.754408661907416e+00) * q + 1.0)
    if p > 0.97575:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        return -(((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q
                    - 2.400758277161838e+00) * q - 2.549732539343734e+00) * q
                  + 4.374664141464968e+00) * q + 2.938163982698783e+00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q
              + 2.445134137142996e+00) * q + 3.754408661907416e+00) * q + 1.0)
    q = p - 0.5
    r = q * q
    return (((((-3.969683028665376e+01 * r + 2.209460984245205e+02) * r
               - 2.759285104469687e+02) * r + 1.383577518672690e+02) * r
             - 3.066479806614716e+01) * r + 2.506628277459239e+00) * q / (
        ((((-5.447609879822406e+01 * r + 1.615858368580409e+02) * r
           - 1.556989798598866e+02) * r + 6.680131188771972e+01) * r
         - 1.328068155288572e+01) * r + 1.0)


def _ziggurat_tables(n=256, r=3.6541528853610088, v=0.00492867323399):
    """x_i (x_0 = v / f(r) is the base strip, x_1 = r, x_n = 0) and f(x_i) = exp(-x_i^2/2)."""
    x = np.zeros(n + 1)
    x[0] = v / math.exp(-0.5 * r * r)
    x[1] = r
    for i in range(1, n):
        y = math.exp(-0.5 * x[i] * x[i]) + v / x[i]
        x[i + 1] = math.sqrt(-2.0 * math.log(y)) if y < 1.0 else 0.0
    return x, np.exp(-0.5 * x * x)


_ZX, _ZF = _ziggurat_tables()
_ZR = float(_ZX[1])
_M255 = np.uint64(255)
_S8 = np.uint64(8)


@njit(cache=True, inline="always")
def _u01h(h):
    return (float(np.int64(h >> _S11)) + 0.5) * _TWO_M53


@njit(cache=True, error_model="numpy")
def _normal_slow(h):
    """The ziggurat outside its fast path (about 1 % of draws), from the draw's hash h."""
    while True:
        i = np.int64(h & _M255)
        neg = ((h >> _S8) & _ONE) == _ONE
        x = float(np.int64(h >> _S11)) * _TWO_M53 * _ZX[i]
        if x < _ZX[i + 1]:
            return -x if neg else x
        if i == 0:  # tail beyond r (Marsaglia's exponential method)
            while True:
                h = _mix(h + _GAMMA)
                a = -math.log(_u01h(h)) / _ZR
                h = _mix(h + _GAMMA)
                b = -math.log(_u01h(h))
                if b + b > a * a:
                    x = _ZR + a
                    return -x if neg else x
        h = _mix(h + _GAMMA)
        if _ZF[i] + _u01h(h) * (_ZF[i + 1] - _ZF[i]) < math.exp(-0.5 * x * x):
            return -x if neg else x
        h = _mix(h + _GAMMA)


@njit(cache=True, inline="always", error_model="numpy")
def _normal(cell_key, k):
    """Standard normal draw k of a cell (ziggurat; deterministic in (cell_key, k))."""
    h = _mix(cell_key + (np.uint64(k) + _ONE) * _GAMMA2)
    i = np.int64(h & _M255)
    x = float(np.int64(h >> _S11)) * _TWO_M53 * _ZX[i]
    if x < _ZX[i + 1]:
        return -x if ((h >> _S8) & _ONE) == _ONE else x
    return _normal_slow(h)


# ------------------------------------------------------------------------ curves

CURVE_POLY = 0
CURVE_LOGLIN = 1
CURVE_POWER = 2
CURVE_TABLE = 3


# How the curves are inlined, for speed at a small compile cost: Numba inlines into its IR
# the little that picks a curve's piece (``_curve``), LLVM (``forceinline``: the attribute
# alwaysinline) the leaf formulas and the search among several pieces. Each curve inlined
# whole in Numba's IR adds about 2 s to a parallel kernel's first compile; one inlined by
# LLVM alone costs little to compile but ran a few per cent slower where it is evaluated once
# per cell. The bits are the same either way.
@njit(cache=True, forceinline=True, error_model="numpy")
def _leaf(spec, o, g, lg):
    """Leaf curve at g [S]; ``lg`` = ln(g), shared by the logarithmic leaves of one cell.

    Layouts: POLY [0, 1/x_scale, lo, hi, n, c_0..c_n-1]; LOGLIN [1, 1/x_scale, lo, hi,
    ln x_floor, a / ln(base), b, ln x_scale]; POWER [2, 1/x_scale, lo, hi, ln x_floor, a, p,
    b, ln x_scale]; TABLE [3, 1, lo, hi, n, g_1..g_n, y_1..y_n].
    """
    kind = int(spec[o])
    lo = spec[o + 2]
    hi = spec[o + 3]
    if kind == CURVE_POLY:
        x = g * spec[o + 1]
        n = int(spec[o + 4])
        y = 0.0
        for k in range(n - 1, -1, -1):
            y = y * x + spec[o + 5 + k]
    elif kind == CURVE_LOGLIN:
        y = spec[o + 5] * max(lg - spec[o + 7], spec[o + 4]) + spec[o + 6]
    elif kind == CURVE_POWER:
        y = spec[o + 5] * math.exp(spec[o + 6] * max(lg - spec[o + 8], spec[o + 4])) + spec[o + 7]
    else:
        x = g  # table on a g grid [S] (x_scale is 1), linear, edge hold
        n = int(spec[o + 4])
        gg = o + 5
        yy = o + 5 + n
        if x <= spec[gg]:
            y = spec[yy]
        elif x >= spec[gg + n - 1]:
            y = spec[yy + n - 1]
        else:
            a = 0
            b = n - 1
            while b - a > 1:
                m = (a + b) // 2
                if spec[gg + m] <= x:
                    a = m
                else:
                    b = m
            w = (x - spec[gg + a]) / (spec[gg + b] - spec[gg + a])
            y = spec[yy + a] + w * (spec[yy + b] - spec[yy + a])
    if y < lo:
        y = lo
    if y > hi:
        y = hi
    return y


@njit(cache=True, forceinline=True, error_model="numpy")
def _piece(spec, off, n, g):
    """Index of the piece of an n-piece curve at ``spec[off:]`` that holds g [S]."""
    p = 0
    while p < n - 1 and g >= spec[off + 1 + p]:
        p += 1
    return p


def _curve_at(spec, off, g, lg):
    """Evaluate the curve encoded at ``spec[off:]`` (lg = ln g); off < 0: the zero curve."""
    if off < 0:
        return 0.0
    n = int(spec[off])
    p = 0
    if n > 1:
        p = _piece(spec, off, n, g)
    return _leaf(spec, int(spec[off + n + p]), g, lg)


# once per cell (program and read): inlined in Numba's IR; per read time (the relaxation
# curves of the read loop): inlined by LLVM
_curve = njit(cache=True, inline="always", error_model="numpy")(_curve_at)
_curve_llvm = njit(cache=True, forceinline=True, error_model="numpy")(_curve_at)


@kernel(["void(float64[::1], int64, float64[::1], float64[::1])"], cache=True,
        error_model="numpy")
def curve_array(spec, off, g, out):
    """out[i] = the curve at ``spec[off:]`` evaluated at conductance g[i] [S] (tests and
    the curve checks of the blocks; the unit of ``out`` is the curve's)."""
    for i in range(g.size):
        out[i] = _curve(spec, off, g[i], math.log(g[i]))


# ------------------------------------------------------------------------ configuration

# ip (int64)
IP_FAMILY = 0          # programming-error family code (FAM_* below)
IP_OFF_BIAS = 1        # curve offsets (-1: zero curve)
IP_OFF_SPREAD = 2
IP_PROG_IDENTITY = 3   # 1: g_prog = input (no programming error)
IP_N_LEVELS = 4
IP_OFF_LEVELS = 5      # levels stored sorted in spec
IP_DRIFT = 6           # 0 none, 1 power law, 2 relaxation
IP_OFF_NU_MU = 7
IP_OFF_NU_SD = 8
IP_NU_FOLD = 9
IP_RELAX_PATH = 10     # 0 common deviate, 1 independent increments in s^2
IP_RELAX_COND = 11     # 0 curves at the (snapped) input, 1 at g_prog
IP_READ = 12           # 0 none, 1 relative (g(t) * Q(g_prog)), 2 absolute (A(g_prog))
IP_OFF_Q = 13
IP_OFF_SHORT = 14
IP_LOG_PROG = 15       # 1: program-stage curves need ln(g_input)
IP_LOG_READ_IN = 16    # 1: read-stage curves at the input need ln(g_input)
IP_LOG_READ_P = 17     # 1: read-stage curves at g_prog need ln(g_prog)
IP_READ_STRUCT = 18    # 1/f structure: 0 random walk, 1 independent per read, 2 both
IP_SIZE = 19

# programming-error family codes (blocks.ErrorDistribution.kernel_params)
FAM_NORMAL = 0
FAM_UNIFORM_NORMAL = 1
FAM_STUDENT_T = 2
FAM_MIXTURE = 3
FAM_BOUNDED = 4        # beta inside the write-verify window; FP_FAM_A = half-width w [S]

# fp (float64)
FP_STAT_LO = 0         # curve inputs are clipped to [STAT_LO, STAT_HI] (edge statistics)
FP_STAT_HI = 1
FP_P_STUCK_LO = 2
FP_P_STUCK_HI = 3
FP_G_STUCK_LO = 4
FP_G_STUCK_HI = 5
FP_D2D = 6
FP_PROG_LO = 7
FP_PROG_HI = 8
FP_FAM_A = 9
FP_FAM_B = 10
FP_FAM_C = 11
FP_FAM_D = 12
FP_OUT_LO = 13
FP_OUT_HI = 14
FP_SIZE = 15

# per-time rows: tf (float64) and ti (int64)
TF_LOGRATIO = 0        # ln((t + t0) / t0) of the power law
TF_U = 1               # 1/f clock u(t), already clipped at >= 0
TF_W_MEAN = 2          # interpolation weight between the two relaxation mean curves
TF_W_SD = 3
TF_SQRT_DU = 4         # sqrt(u_j - u_(j-1)) (u_0 = 0): the 1/f increment's std
TF_SIZE = 5
TI_ROW = 0             # output row of this (sorted) time
TI_MEAN_A = 1
TI_MEAN_B = 2
TI_SD_A = 3
TI_SD_B = 4
TI_SIZE = 5


@njit(cache=True, inline="always", error_model="numpy")
def _epsilon(ip, fp, key_eps, i):
    """Standardised programming error (mean 0, variance 1) of cell i (not FAM_BOUNDED)."""
    fam = ip[IP_FAMILY]
    ck = _cell_key(key_eps, i)
    if fam == 0:
        return _normal(ck, 0)
    if fam == 1:  # uniform (share A of variance, half-width sqrt(3 A)) + normal
        return fp[FP_FAM_A] * (2.0 * _u01(ck, 0) - 1.0) + fp[FP_FAM_B] * _normal(ck, 1)
    if fam == 2:  # Student t (Bailey's polar method), scaled to unit variance
        dof = fp[FP_FAM_A]
        k = 0
        while True:
            a = 2.0 * _u01(ck, k) - 1.0
            b = 2.0 * _u01(ck, k + 1) - 1.0
            k += 2
            w = a * a + b * b
            if w <= 1.0 and w > 0.0:
                return a * math.sqrt(dof * (w ** (-2.0 / dof) - 1.0) / w) * fp[FP_FAM_B]
    # two-component normal mixture, standardised: A = weight of component 2,
    # B = its mean, C = its std (component 1 is N(0, 1)); D unused; mean/sd in FAM
    z = _normal(ck, 1)
    if _u01(ck, 0) < fp[FP_FAM_A]:
        raw = fp[FP_FAM_B] + fp[FP_FAM_C] * z
    else:
        raw = z
    m = fp[FP_FAM_A] * fp[FP_FAM_B]
    return (raw - m) * fp[FP_FAM_D]


@njit(cache=True, error_model="numpy")
def _log_gamma(shape, ck, k):
    """(ln X, next draw index), X ~ Gamma(shape, 1), from the cell's draws k, k+1, ...

    Marsaglia & Tsang's squeeze-free method; shape < 1 is boosted (X = Y U^(1/shape),
    Y ~ Gamma(shape + 1)) and kept in logs, so that the small beta shapes of a narrow
    window neither underflow nor lose the ratio of the two gammas.
    """
    boost = 0.0
    if shape < 1.0:
        boost = math.log(_u01(ck, k)) / shape
        k += 1
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = _normal(ck, k)
        u = _u01(ck, k + 1)
        k += 2
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        lv = 3.0 * math.log(v)
        if math.log(u) < 0.5 * x * x + d - d * v * v * v + d * lv:
            return math.log(d) + lv + boost, k


@njit(cache=True, error_model="numpy")
def _bounded_error(b, s, w, key_eps, i):
    """Programming error [S] of the bounded family for cell i: w (2 B - 1) with
    B ~ Beta(a, c) whose mean is (b + w) / (2 w) and standard deviation s / (2 w)
    (method of moments, clipped exactly as ``blocks.beta_shape``)."""
    m = min(max((b + w) / (2.0 * w), 1e-3), 1.0 - 1e-3)
    v = min(max((s / (2.0 * w)) ** 2, 1e-12), 0.999 * m * (1.0 - m))
    kk = m * (1.0 - m) / v - 1.0
    a = max(m * kk, 0.05)
    c = max((1.0 - m) * kk, 0.05)
    ck = _cell_key(key_eps, i)
    lx, k = _log_gamma(a, ck, np.int64(0))  # int64, not a literal: one compile
    ly, k = _log_gamma(c, ck, k)
    # 2 X / (X + Y) - 1 = tanh((ln X - ln Y) / 2): no overflow, exact sign symmetry
    return w * math.tanh(0.5 * (lx - ly))


@njit(cache=True,
      inline="always", error_model="numpy")
def _prog_error(ip, fp, key_eps, i, b, s):
    """Programming error [S] of cell i with bias b and spread s [S], any family."""
    if ip[IP_FAMILY] == FAM_BOUNDED:
        return _bounded_error(b, s, fp[FP_FAM_A], key_eps, i)
    return b + s * _epsilon(ip, fp, key_eps, i)


@njit(cache=True, inline="always")
def _snap(spec, ip, g):
    n = ip[IP_N_LEVELS]
    if n == 0:
        return g
    o = ip[IP_OFF_LEVELS]
    best = spec[o]
    for k in range(1, n):
        if abs(spec[o + k] - g) < abs(best - g):
            best = spec[o + k]
    return best


@njit(cache=True, inline="always", error_model="numpy")
def _program_cell(g, spec, ip, fp, k_eps, k_d2d, k_stuck, k_nu, i):
    """(snapped input, g_prog, nu) of one cell."""
    gs = _snap(spec, ip, g)
    gc = min(max(gs, fp[FP_STAT_LO]), fp[FP_STAT_HI])
    lg = math.log(gc) if ip[IP_LOG_PROG] == 1 else 0.0
    if ip[IP_PROG_IDENTITY] == 1:
        gp = gs
    else:
        pl = fp[FP_P_STUCK_LO]
        ph = fp[FP_P_STUCK_HI]
        stuck = 0
        if pl > 0.0 or ph > 0.0:
            us = _u01(_cell_key(k_stuck, i), 0)
            if us < pl:
                stuck = 1
            elif us < pl + ph:
                stuck = 2
        if stuck == 1:
            gp = fp[FP_G_STUCK_LO]
        elif stuck == 2:
            gp = fp[FP_G_STUCK_HI]
        else:
            gain = 1.0
            if fp[FP_D2D] > 0.0:
                gain = 1.0 + fp[FP_D2D] * _normal(_cell_key(k_d2d, i), 0)
            b = _curve(spec, ip[IP_OFF_BIAS], gc, lg)
            s = _curve(spec, ip[IP_OFF_SPREAD], gc, lg)
            if ip[IP_FAMILY] == FAM_BOUNDED:
                gp = gs * gain + _bounded_error(b, s, fp[FP_FAM_A], k_eps, i)
            else:  # written out (not _prog_error) to keep the rounding of g + b + s eps
                gp = gs * gain + b + s * _epsilon(ip, fp, k_eps, i)
            gp = min(max(gp, fp[FP_PROG_LO]), fp[FP_PROG_HI])
    nu = 0.0
    if ip[IP_DRIFT] == 1:
        nu = (_curve(spec, ip[IP_OFF_NU_MU], gc, lg)
              + _curve(spec, ip[IP_OFF_NU_SD], gc, lg) * _normal(_cell_key(k_nu, i), 0))
        if ip[IP_NU_FOLD] == 1:
            nu = abs(nu)
    return gs, gp, nu


@njit(cache=True, inline="always", error_model="numpy")
def _read_cell(gs, gp, nu, spec, ip, fp, tf, ti, k_relax, k_flick, k_short, k_ind, noisy, i,
               out):
    """Write the reads of one cell at the T (sorted) times into column i of ``out``."""
    T = tf.shape[0]
    gc_in = min(max(gs, fp[FP_STAT_LO]), fp[FP_STAT_HI])
    gc_p = min(max(gp, fp[FP_STAT_LO]), fp[FP_STAT_HI])
    lg_in = math.log(gc_in) if ip[IP_LOG_READ_IN] == 1 else 0.0
    lg_p = math.log(gc_p) if ip[IP_LOG_READ_P] == 1 else 0.0
    drift = ip[IP_DRIFT]
    cond_p = ip[IP_RELAX_COND] == 1
    gr = gc_p if cond_p else gc_in
    lgr = lg_p if cond_p else lg_in
    z_common = 0.0
    ck_relax = np.uint64(0)
    if drift == 2:
        ck_relax = _cell_key(k_relax, i)
        if ip[IP_RELAX_PATH] == 0:
            z_common = _normal(ck_relax, 0)
    read = ip[IP_READ] if noisy else 0
    amp = 0.0
    ck_flick = np.uint64(0)
    walk = ip[IP_READ_STRUCT] != 1
    fresh = ip[IP_READ_STRUCT] != 0
    ck_ind = np.uint64(0)
    if read != 0:
        amp = _curve(spec, ip[IP_OFF_Q], gc_p, lg_p)
        ck_flick = _cell_key(k_flick, i)
        if fresh:
            ck_ind = _cell_key(k_ind, i)
    sshort = 0.0
    ck_short = np.uint64(0)
    if noisy and ip[IP_OFF_SHORT] >= 0:
        sshort = _curve(spec, ip[IP_OFF_SHORT], gc_p, lg_p)
        ck_short = _cell_key(k_short, i)
    w_path = 0.0
    r_path = 0.0
    v_prev = 0.0
    lo = fp[FP_OUT_LO]
    hi = fp[FP_OUT_HI]
    for j in range(T):
        if drift == 1:
            gd = gp * math.exp(-nu * tf[j, TF_LOGRATIO])
        elif drift == 2:
            wm = tf[j, TF_W_MEAN]
            ws = tf[j, TF_W_SD]
            m = ((1.0 - wm) * _curve_llvm(spec, ti[j, TI_MEAN_A], gr, lgr)
                 + wm * _curve_llvm(spec, ti[j, TI_MEAN_B], gr, lgr))
            s = ((1.0 - ws) * _curve_llvm(spec, ti[j, TI_SD_A], gr, lgr)
                 + ws * _curve_llvm(spec, ti[j, TI_SD_B], gr, lgr))
            if s < 0.0:
                s = 0.0
            if ip[IP_RELAX_PATH] == 0:
                gd = gp + m + s * z_common
            else:
                v = s * s
                if v > v_prev:
                    r_path += math.sqrt(v - v_prev) * _normal(ck_relax, j)
                    v_prev = v
                gd = gp + m + r_path
        else:
            gd = gp
        val = gd
        if read != 0:
            z = 0.0
            if walk:
                sdu = tf[j, TF_SQRT_DU]
                if sdu > 0.0:
                    w_path += sdu * _normal(ck_flick, j)
                z = w_path
            if fresh:
                z += math.sqrt(tf[j, TF_U]) * _normal(ck_ind, j)
            if read == 1:
                val += abs(gd) * amp * z
            else:
                val += amp * z
        if sshort > 0.0:
            val += sshort * _normal(ck_short, j)
        if val < lo:
            val = lo
        if val > hi:
            val = hi
        out[ti[j, TI_ROW], i] = val


@njit(cache=True, inline="always")
def _program_keys(seed):
    """Stage keys of programming: (eps, d2d, stuck, nu)."""
    return (_stage_key(seed, STAGE_EPS), _stage_key(seed, STAGE_D2D),
            _stage_key(seed, STAGE_STUCK), _stage_key(seed, STAGE_NU))


@njit(cache=True, inline="always")
def _read_keys(seed, seed_short):
    """Stage keys of a read: (relaxation, flicker path, short-term noise, flicker drawn
    afresh per read)."""
    return (_stage_key(seed, STAGE_RELAX), _stage_key(seed, STAGE_FLICKER),
            _stage_key(seed_short, STAGE_SHORT), _stage_key(seed_short, STAGE_FLICKER_READ))


_SIG_PROGRAM = ("void(float64[::1], float64[::1], int64[::1], float64[::1], uint64, "
                "float64[::1], float64[::1], float64[::1])")


@kernel(_SIG_PROGRAM, cache=True, parallel=True, error_model="numpy")
def program_kernel(g, spec, ip, fp, seed, gs_out, gp_out, nu_out):
    """Program every cell to target g [S]: writes the programmed conductance gs_out [S],
    the drift reference gp_out [S] and the drift exponent nu_out [1]; cell i draws from
    the counter-based stream (``seed``, i), so the result does not depend on threads."""
    k_eps, k_d2d, k_stuck, k_nu = _program_keys(seed)
    for i in prange(g.size):
        gs, gp, nu = _program_cell(g[i], spec, ip, fp, k_eps, k_d2d, k_stuck, k_nu, np.int64(i))
        gs_out[i] = gs
        gp_out[i] = gp
        nu_out[i] = nu


def _read_sig(dt):
    return (f"void(float64[::1], float64[::1], float64[::1], float64[::1], int64[::1], "
            f"float64[::1], float64[:, ::1], int64[:, ::1], uint64, uint64, boolean, "
            f"{dt}[:, ::1])")


@kernel([_read_sig("float64")], cache=True, parallel=True, error_model="numpy")
def read_kernel(gs, gp, nu, spec, ip, fp, tf, ti, seed, seed_short, noisy, out):
    """Read every programmed cell (gs, gp [S], nu [1]) at each read time, given by the
    per-time rows ``tf`` (float64: log time ratios, window weights) and ``ti`` (int64: curve
    offsets) that the read plan precomputes: drift, relaxation and, with ``noisy``, read
    noise into out [S]; cell i draws from the counter-based streams (``seed`` /
    ``seed_short``, i), independent of the thread count."""
    k_relax, k_flick, k_short, k_ind = _read_keys(seed, seed_short)
    for i in prange(gs.size):
        _read_cell(gs[i], gp[i], nu[i], spec, ip, fp, tf, ti, k_relax, k_flick, k_short, k_ind,
                   noisy, np.int64(i), out)


_SIG_SAMPLE = ("void(float64[::1], float64[::1], int64[::1], float64[::1], float64[:, ::1], "
               "int64[:, ::1], uint64, uint64, float64[:, ::1])")


@kernel(_SIG_SAMPLE, cache=True, parallel=True, error_model="numpy")
def sample_kernel(g, spec, ip, fp, tf, ti, seed, seed_short, out):
    """Program every cell to target g [S] and read it (with noise) at each time of the rows
    ``tf`` / ``ti`` into out [S] in one pass: the bits of program_kernel then read_kernel,
    without the per-cell state's trip through memory."""
    k_eps, k_d2d, k_stuck, k_nu = _program_keys(seed)
    k_relax, k_flick, k_short, k_ind = _read_keys(seed, seed_short)
    for i in prange(g.size):
        c = np.int64(i)
        gs, gp, nu = _program_cell(g[i], spec, ip, fp, k_eps, k_d2d, k_stuck, k_nu, c)
        _read_cell(gs, gp, nu, spec, ip, fp, tf, ti, k_relax, k_flick, k_short, k_ind, True, c,
                   out)


@kernel(["void(float64[::1], float64[::1], int64[::1], float64[::1], uint64, float64[::1])"],
        cache=True, parallel=True, error_model="numpy")
def error_kernel(bias, spread, ip, fp, seed, out):
    """Programming errors [S] of cells with biases and spreads [S]: the draws that
    program_kernel makes for the same seed and cell indices (numpy-side models)."""
    k_eps = _stage_key(seed, STAGE_EPS)
    for i in prange(out.size):
        out[i] = _prog_error(ip, fp, k_eps, np.int64(i), bias[i], spread[i])


@kernel(["void(uint64, int64, float64[::1])"], cache=True, parallel=True, error_model="numpy")
def _normals_kernel(seed, per_cell, out):
    """The floor of the benchmark: only the normals a PCM cell draws (per_cell per cell)."""
    k1 = _stage_key(seed, STAGE_EPS)
    k2 = _stage_key(seed, STAGE_NU)
    k3 = _stage_key(seed, STAGE_FLICKER)
    for i in prange(out.size):
        s = _normal(_cell_key(k1, i), 0)
        if per_cell > 1:
            s += _normal(_cell_key(k2, i), 0)
        if per_cell > 2:
            s += _normal(_cell_key(k3, i), 0)
        out[i] = s


@kernel(["void(uint64, int64, int64, float64[::1])"], cache=True, parallel=True,
        error_model="numpy")
def std_normals(seed, stage, k, out):
    """Normal draw k of every cell in stage ``stage`` (tests of the generator)."""
    key = _stage_key(seed, stage)
    for i in prange(out.size):
        out[i] = _normal(_cell_key(key, i), k)


@kernel("UniTuple(float64, 3)(float64[::1])", cache=True, error_model="numpy")
def scan(x):
    """(min, max, number of non-finite values) of x in one pass (input checks)."""
    mn = math.inf
    mx = -math.inf
    bad = 0.0
    for i in range(x.size):
        v = x[i]
        if not math.isfinite(v):
            bad += 1.0
        else:
            if v < mn:
                mn = v
            if v > mx:
                mx = v
    return mn, mx, bad


# ------------------------------------------------------------------------ shared generator

#: The counter-based generator for other kernel modules (Numba functions, callable from
#: their kernels): ``stage_key(seed, stage)``, ``cell_key(stage_key, i)``, ``hash_draw(key)``
#: (the SplitMix64 finaliser) and ``normal_draw(cell_key, k)`` (draw k of a cell's standard
#: normals). Stages 1-8 are the device models' above; other modules take their own.
stage_key = _stage_key
cell_key = _cell_key
hash_draw = _mix
normal_draw = _normal
