"""Private Numba kernels of the device models (no validation here; see composite.py).

Randomness is counter based: every random number is a pure function of
``(seed, stage, cell index, draw index)``.  A per-stage key is mixed from the seed,
a per-cell key from the stage key and the flat (C-order) cell index, and each draw
hashes ``cell_key + (k + 1) * gamma`` with the SplitMix64 finaliser.  Threads and
chunking therefore never change a result: ``prange`` only decides who computes a
cell, not what it gets.  Uniforms carry 53 random bits; normals come from the
inverse CDF (Acklam's rational approximation, relative error < 1.2e-9), one hash
per normal.

Curves (functions of a conductance g [S]) are encoded as flat float64 programs, see
:func:`_curve` and ``curves.py``.  Kernel configuration travels in two small arrays
(``ip``: int64, ``fp``: float64) indexed by the constants below.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

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


@njit("uint64(uint64)", cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit("uint64(uint64, int64)", cache=True)
def _stage_key(seed, stage):
    return _mix(_mix(seed ^ (np.uint64(stage) * _GAMMA2)) + _GAMMA)


@njit("uint64(uint64, int64)", cache=True, inline="always")
def _cell_key(stage_key, i):
    return _mix(stage_key + np.uint64(i) * _GAMMA)


@njit("float64(uint64, int64)", cache=True, inline="always")
def _u01(cell_key, k):
    """Uniform on the open interval (0, 1), 53 random bits."""
    h = _mix(cell_key + (np.uint64(k) + _ONE) * _GAMMA2)
    return (float(h >> _S11) + 0.5) * _TWO_M53


@njit("float64(float64)", cache=True, inline="always")
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


@njit("float64(uint64, int64)", cache=True, inline="always")
def _normal(cell_key, k):
    return _ppf(_u01(cell_key, k))


# ------------------------------------------------------------------------ curves

CURVE_POLY = 0
CURVE_LOGLIN = 1
CURVE_POWER = 2
CURVE_TABLE = 3


@njit("float64(float64[::1], int64, float64)", cache=True)
def _leaf(spec, o, g):
    kind = int(spec[o])
    x = g / spec[o + 1]
    lo = spec[o + 2]
    hi = spec[o + 3]
    if kind == CURVE_POLY:
        n = int(spec[o + 4])
        y = 0.0
        for k in range(n - 1, -1, -1):
            y = y * x + spec[o + 5 + k]
    elif kind == CURVE_LOGLIN:
        y = spec[o + 5] * math.log(max(x, spec[o + 4])) + spec[o + 6]
    elif kind == CURVE_POWER:
        y = spec[o + 5] * max(x, spec[o + 4]) ** spec[o + 6] + spec[o + 7]
    else:  # table on a g grid [S] (x_scale is 1), linear, edge hold
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


@njit("float64(float64[::1], int64, float64)", cache=True)
def _curve(spec, off, g):
    """Evaluate the curve encoded at ``spec[off:]``; off < 0 means the zero curve."""
    if off < 0:
        return 0.0
    n = int(spec[off])
    p = 0
    while p < n - 1 and g >= spec[off + 1 + p]:
        p += 1
    return _leaf(spec, int(spec[off + n + p]), g)


@njit(["void(float64[::1], int64, float64[::1], float64[::1])"], cache=True)
def _curve_array(spec, off, g, out):
    for i in range(g.size):
        out[i] = _curve(spec, off, g[i])


# ------------------------------------------------------------------------ configuration

# ip (int64)
IP_FAMILY = 0          # programming-error family code (0 normal, 1 uniform+normal, 2 t, 3 mixture)
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
IP_SIZE = 15

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
TF_SIZE = 4
TI_ROW = 0             # output row of this (sorted) time
TI_MEAN_A = 1
TI_MEAN_B = 2
TI_SD_A = 3
TI_SD_B = 4
TI_SIZE = 5


@njit("float64(float64[::1], int64[::1], float64[::1], uint64, int64)", cache=True)
def _epsilon(spec, ip, fp, key_eps, i):
    """Standardised programming error (mean 0, variance 1) of cell i."""
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


@njit("float64(float64[::1], int64[::1], float64)", cache=True, inline="always")
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


@njit(cache=True, inline="always")
def _program_cell(g, spec, ip, fp, k_eps, k_d2d, k_stuck, k_nu, i):
    """(snapped input, g_prog, nu) of one cell."""
    gs = _snap(spec, ip, g)
    gc = min(max(gs, fp[FP_STAT_LO]), fp[FP_STAT_HI])
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
            gp = (gs * gain + _curve(spec, ip[IP_OFF_BIAS], gc)
                  + _curve(spec, ip[IP_OFF_SPREAD], gc) * _epsilon(spec, ip, fp, k_eps, i))
            gp = min(max(gp, fp[FP_PROG_LO]), fp[FP_PROG_HI])
    nu = 0.0
    if ip[IP_DRIFT] == 1:
        nu = (_curve(spec, ip[IP_OFF_NU_MU], gc)
              + _curve(spec, ip[IP_OFF_NU_SD], gc) * _normal(_cell_key(k_nu, i), 0))
        if ip[IP_NU_FOLD] == 1:
            nu = abs(nu)
    return gs, gp, nu


@njit(cache=True, inline="always")
def _read_cell(gs, gp, nu, spec, ip, fp, tf, ti, k_relax, k_flick, k_short, noisy, i, out):
    """Write the reads of one cell at the T (sorted) times into column i of ``out``."""
    T = tf.shape[0]
    gc_in = min(max(gs, fp[FP_STAT_LO]), fp[FP_STAT_HI])
    gc_p = min(max(gp, fp[FP_STAT_LO]), fp[FP_STAT_HI])
    drift = ip[IP_DRIFT]
    gr = gc_p if ip[IP_RELAX_COND] == 1 else gc_in
    ck_relax = _cell_key(k_relax, i)
    z_common = 0.0
    if drift == 2 and ip[IP_RELAX_PATH] == 0:
        z_common = _normal(ck_relax, 0)
    read = ip[IP_READ] if noisy else 0
    amp = 0.0
    if read == 1:
        amp = _curve(spec, ip[IP_OFF_Q], gc_p)
    elif read == 2:
        amp = _curve(spec, ip[IP_OFF_Q], gc_p)
    sshort = 0.0
    if noisy and ip[IP_OFF_SHORT] >= 0:
        sshort = _curve(spec, ip[IP_OFF_SHORT], gc_p)
    ck_flick = _cell_key(k_flick, i)
    ck_short = _cell_key(k_short, i)
    w_path = 0.0
    u_prev = 0.0
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
            m = ((1.0 - wm) * _curve(spec, ti[j, TI_MEAN_A], gr)
                 + wm * _curve(spec, ti[j, TI_MEAN_B], gr))
            s = ((1.0 - ws) * _curve(spec, ti[j, TI_SD_A], gr)
                 + ws * _curve(spec, ti[j, TI_SD_B], gr))
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
            u = tf[j, TF_U]
            if u > u_prev:
                w_path += math.sqrt(u - u_prev) * _normal(ck_flick, j)
                u_prev = u
            if read == 1:
                val += abs(gd) * amp * w_path
            else:
                val += amp * w_path
        if sshort > 0.0:
            val += sshort * _normal(ck_short, j)
        if val < lo:
            val = lo
        if val > hi:
            val = hi
        out[ti[j, TI_ROW], i] = val


_SIG_PROGRAM = ("void(float64[::1], float64[::1], int64[::1], float64[::1], uint64, "
                "float64[::1], float64[::1], float64[::1])")


@njit(_SIG_PROGRAM, cache=True, parallel=True)
def _program_kernel(g, spec, ip, fp, seed, gs_out, gp_out, nu_out):
    k_eps = _stage_key(seed, STAGE_EPS)
    k_d2d = _stage_key(seed, STAGE_D2D)
    k_stuck = _stage_key(seed, STAGE_STUCK)
    k_nu = _stage_key(seed, STAGE_NU)
    for i in prange(g.size):
        gs, gp, nu = _program_cell(g[i], spec, ip, fp, k_eps, k_d2d, k_stuck, k_nu, i)
        gs_out[i] = gs
        gp_out[i] = gp
        nu_out[i] = nu


def _read_sig(dt):
    return (f"void(float64[::1], float64[::1], float64[::1], float64[::1], int64[::1], "
            f"float64[::1], float64[:, ::1], int64[:, ::1], uint64, uint64, boolean, "
            f"{dt}[:, ::1])")


@njit([_read_sig("float64"), _read_sig("float32")], cache=True, parallel=True)
def _read_kernel(gs, gp, nu, spec, ip, fp, tf, ti, seed, seed_short, noisy, out):
    k_relax = _stage_key(seed, STAGE_RELAX)
    k_flick = _stage_key(seed, STAGE_FLICKER)
    k_short = _stage_key(seed_short, STAGE_SHORT)
    for i in prange(gs.size):
        _read_cell(gs[i], gp[i], nu[i], spec, ip, fp, tf, ti, k_relax, k_flick, k_short,
                   noisy, i, out)


def _sample_sig(dt):
    return (f"void(float64[::1], float64[::1], int64[::1], float64[::1], float64[:, ::1], "
            f"int64[:, ::1], uint64, uint64, {dt}[:, ::1])")


@njit([_sample_sig("float64"), _sample_sig("float32")], cache=True, parallel=True)
def _sample_kernel(g, spec, ip, fp, tf, ti, seed, seed_short, out):
    """Program and read in one pass: the same bits as _program_kernel + _read_kernel."""
    k_eps = _stage_key(seed, STAGE_EPS)
    k_d2d = _stage_key(seed, STAGE_D2D)
    k_stuck = _stage_key(seed, STAGE_STUCK)
    k_nu = _stage_key(seed, STAGE_NU)
    k_relax = _stage_key(seed, STAGE_RELAX)
    k_flick = _stage_key(seed, STAGE_FLICKER)
    k_short = _stage_key(seed_short, STAGE_SHORT)
    for i in prange(g.size):
        gs, gp, nu = _program_cell(g[i], spec, ip, fp, k_eps, k_d2d, k_stuck, k_nu, i)
        _read_cell(gs, gp, nu, spec, ip, fp, tf, ti, k_relax, k_flick, k_short, True, i, out)


@njit(["void(uint64, int64, float64[::1])"], cache=True, parallel=True)
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


@njit(["void(uint64, int64, int64, float64[::1])"], cache=True, parallel=True)
def _std_normals(seed, stage, k, out):
    """Normal draw k of every cell in stage ``stage`` (tests of the generator)."""
    key = _stage_key(seed, stage)
    for i in prange(out.size):
        out[i] = _normal(_cell_key(key, i), k)
