"""Numba kernels of the stochastic pulse-train update of a pulsed array (CPU).

One kernel does a whole update of an array w (n_out, n_in) [1] by a batch of inputs x
(B, n_in) and output errors d (B, n_out): the bit probabilities (update management as in
:mod:`xbarlab.nn.pulsed_update`), every train's BL bits as one 64-bit word, the coincidences
of each cell as the popcount of the AND of its input's and output's words (sample by sample,
only over trains with a bit on), and the move of each pulsed cell with its step rule,
gains and step noise. Cells no pulse hits are not touched.

Bits: train s (input j of sample b: s = b n_in + j; output i: s = B n_in + b n_out + i)
fires its bits with probability P / 2^32, P = floor(p 2^32) (p = 1: every bit), by
comparing BL 32-bit uniforms with P bit-sliced, most significant bit first: round r draws
one 64-bit word, hash(train key + (r + 1) gamma), whose bit l is bit r of lane l's uniform,
and the lanes still undecided are settled by bit 31 - r of P; the rounds stop when no lane
is undecided (about log2(BL) + 1.3 rounds). Step noise: the cell's normal draw 0 of stage
:data:`STAGE_PULSE_NOISE` at its flat index i n_in + j. Every draw is a pure function of the
seed and its counters (the counter-based generator of :mod:`xbarlab.devices.kernels`), so
results do not depend on order or threads. Arrays of :data:`PARALLEL_CELLS` cells or more
move their rows in chunks over Numba's threads (each row's cells depend only on that row's
draws).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange, types
from numba.core.extending import intrinsic

from ..checks import check_matrix_shape, check_number
from ..jit import kernel
from .kernels import cell_key, hash_draw, normal_draw, stage_key

__all__ = ["STAGE_PULSE_BITS", "STAGE_PULSE_NOISE", "MAX_BIT_LENGTH", "PARALLEL_CELLS",
           "train_words", "PulseUpdater"]

#: counter-generator stages of the pulse trains' bits and of the step noise
STAGE_PULSE_BITS = 9
STAGE_PULSE_NOISE = 10
#: longest train one word holds
MAX_BIT_LENGTH = 64
#: arrays of at least this many cells move their rows in Numba's threads, in as many
#: chunks as threads (smaller arrays in the calling thread: a thread launch per update would
#: cost more than it saves); the result does not depend on it
PARALLEL_CELLS = 1 << 19

_GAMMA2 = np.uint64(0xD1B54A32D192ED03)
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_TWO32 = 4294967296.0

# fp (float64) and ip (int64) slots of the update kernel's configuration
FP_LR, FP_DW_MIN, FP_W_MIN, FP_W_MAX, FP_INV_H, FP_C2C2, FP_WN2 = 0, 1, 2, 3, 4, 5, 6
FP_C0_UP, FP_C1_UP, FP_C0_DOWN, FP_C1_DOWN = 7, 8, 9, 10
IP_BL, IP_UM, IP_LINEAR, IP_NOISY, IP_GAINS, IP_VAR = 0, 1, 2, 3, 4, 5


@intrinsic
def _popcount(typingctx, x):
    """Number of set bits of a uint64 (LLVM's ctpop)."""
    if not isinstance(x, types.Integer):
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, inline="always")
def _threshold(p):
    """P = floor(p 2^32) as uint64 (p >= 1: 2^32, every bit on)."""
    if p >= 1.0:
        return np.uint64(4294967296)
    return np.uint64(p * _TWO32)


@njit(cache=True)
def _word(key, thr, lanes):
    """The BL bits of a train with threshold ``thr`` (lanes: the BL low bits set)."""
    if thr == 0:
        return np.uint64(0)
    if thr >= np.uint64(4294967296):
        return lanes
    on = np.uint64(0)
    und = lanes
    for r in range(32):
        h = hash_draw(key + np.uint64(r + 1) * _GAMMA2)
        if (thr >> np.uint64(31 - r)) & _ONE:
            on |= und & ~h
            und &= h
        else:
            und &= ~h
        if und == 0:
            break
    return on


@njit(cache=True)
def _scales(x, d, k, um):
    """Per-sample A, B of update management (or sqrt(k) both without it)."""
    B = x.shape[0]
    a = np.empty(B)
    b = np.empty(B)
    for s in range(B):
        if um:
            mx = 0.0
            for j in range(x.shape[1]):
                mx = max(mx, abs(x[s, j]))
            md = 0.0
            for i in range(d.shape[1]):
                md = max(md, abs(d[s, i]))
            ratio = md / mx if (mx > 0.0 and md > 0.0) else 1.0
            a[s] = math.sqrt(k * ratio)
            b[s] = math.sqrt(k / ratio)
        else:
            a[s] = math.sqrt(k)
            b[s] = math.sqrt(k)
    return a, b


@njit(cache=True)
def _trains(v, scale, key0, base, lanes, words, active, n_active):
    """Words of the trains of v (B, n) with probabilities min(scale_b |v|, 1); lists each
    sample's trains with a bit on in ``active`` (n_active of them)."""
    B, n = v.shape
    for s in range(B):
        c = 0
        for j in range(n):
            p = abs(v[s, j]) * scale[s]
            m = _word(cell_key(key0, np.int64(base + s * n + j)), _threshold(p), lanes)
            words[s, j] = m
            if m != 0:
                active[s, c] = j
                c += 1
        n_active[s] = c


@njit(cache=True, error_model="numpy")
def _finite(a):
    bad = 0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            bad += not math.isfinite(a[i, j])
    return bad == 0


@njit(cache=True, inline="always")
def _interp(tab, t):
    i = min(int(t), tab.size - 2)
    f = t - i
    return tab[i] + f * (tab[i + 1] - tab[i])


@njit(cache=True, error_model="numpy")
def _move(w0, nu, nd, gu, gd, fp, ip, tables, key_noise, cell):
    """The weight after nu up and nd down pulses from w0 (PulsedArray.apply_counts'
    equation, unclipped)."""
    if ip[IP_LINEAR]:
        mu_u = max(w0 * fp[FP_C1_UP] + fp[FP_C0_UP], 0.0)
        mu_d = max(w0 * fp[FP_C1_DOWN] + fp[FP_C0_DOWN], 0.0)
        t = 0.0
    else:
        t = min(max((w0 - fp[FP_W_MIN]) * fp[FP_INV_H], 0.0), tables.shape[1] - 1.0)
        mu_u = _interp(tables[0], t)
        mu_d = _interp(tables[1], t)
    mu_u *= gu
    mu_d *= gd
    up = nu * mu_u
    down = nd * mu_d
    w = w0
    if ip[IP_NOISY]:
        var = (up * mu_u + down * mu_d) * fp[FP_C2C2] + (nu + nd) * fp[FP_WN2]
        if ip[IP_VAR]:
            var += nu * _interp(tables[2], t) * gu * gu + nd * _interp(tables[3], t) * gd * gd
        w += math.sqrt(var) * normal_draw(cell_key(key_noise, cell), 0)
    return w + up - down


def _update_sig(dt):
    return (f"float64({dt}[:, ::1], float64[:, ::1], float64[:, ::1], {dt}[:, ::1], "
            f"{dt}[:, ::1], float64[:, ::1], float64[::1], int64[::1], uint64, int64)")


# Only the loop over row chunks runs in parallel (Numba's other parallel rewrites off: the
# small arrays of one update are not worth a thread launch each).
_ROWS_ONLY = {"prange": True, "comprehension": False, "reduction": False,
              "inplace_binop": False, "setitem": False, "numpy": False, "stencil": False,
              "fusion": False}


@kernel([_update_sig("float32"), _update_sig("float64")], cache=True, error_model="numpy",
        parallel=_ROWS_ONLY)
def _pulse_update(w, x, d, gain_up, gain_down, tables, fp, ip, seed, chunks):
    if not (_finite(x) and _finite(d)):
        return -1.0
    B, n_in = x.shape
    n_out = d.shape[1]
    bl = ip[IP_BL]
    lanes = _ALL if bl >= 64 else (_ONE << np.uint64(bl)) - _ONE
    a, b = _scales(x, d, fp[FP_LR] / (bl * fp[FP_DW_MIN]), ip[IP_UM] != 0)
    kb = stage_key(seed, STAGE_PULSE_BITS)
    kn = stage_key(seed, STAGE_PULSE_NOISE)
    wx = np.empty((B, n_in), dtype=np.uint64)
    wd = np.empty((B, n_out), dtype=np.uint64)
    ax = np.empty((B, n_in), dtype=np.int64)
    ad = np.empty((B, n_out), dtype=np.int64)
    nax = np.empty(B, dtype=np.int64)
    nad = np.empty(B, dtype=np.int64)
    _trains(x, a, kb, 0, lanes, wx, ax, nax)
    _trains(d, b, kb, B * n_in, lanes, wd, ad, nad)
    # per sample, the words of the inputs with a bit on, side by side: those of x >= 0
    # first (npos of them), then those of x < 0
    cw = np.empty((B, n_in), dtype=np.uint64)
    cj = np.empty((B, n_in), dtype=np.int64)
    npos = np.empty(B, dtype=np.int64)
    for s in range(B):
        c0 = 0
        for neg in (False, True):
            for c in range(nax[s]):
                j = ax[s, c]
                if (x[s, j] < 0.0) == neg:
                    cw[s, c0] = wx[s, j]
                    cj[s, c0] = j
                    c0 += 1
            if not neg:
                npos[s] = c0
    row_hit = np.zeros(n_out, dtype=np.bool_)
    for s in range(B):
        for c in range(nad[s]):
            row_hit[ad[s, c]] = True
    nch = max(1, min(chunks, n_out))
    totals = np.zeros(nch)
    for ch in prange(nch):
        totals[ch] = _rows(w, x, d, gain_up, gain_down, tables, fp, ip, kn, wd, cw, cj, npos,
                           nax, row_hit, ch * n_out // nch, (ch + 1) * n_out // nch)
    total = 0.0
    for ch in range(nch):
        total += totals[ch]  # whole numbers below 2^53: exact in any grouping
    return total


@njit(cache=True, error_model="numpy")
def _rows(w, x, d, gain_up, gain_down, tables, fp, ip, kn, wd, cw, cj, npos, nax, row_hit,
          i_lo, i_hi):
    """Move the pulsed cells of rows i_lo..i_hi - 1; returns their pulses (up + down)."""
    B, n_in = x.shape
    n_all = np.zeros(n_in, dtype=np.int64)
    n_dn = np.zeros(n_in, dtype=np.int64)
    touched = np.empty(n_in + 1, dtype=np.int64)
    gains = ip[IP_GAINS] != 0
    lo, hi = fp[FP_W_MIN], fp[FP_W_MAX]
    total = 0.0
    for i in range(i_lo, i_hi):
        if not row_hit[i]:
            continue
        nt = 0
        for s in range(B):
            m = wd[s, i]
            if m == 0:
                continue
            # the step -lr d x is down where d x > 0: x >= 0 with d >= 0, x < 0 with d < 0
            pos_d = d[s, i] >= 0.0
            for part in range(2):
                c_lo, c_hi = (0, npos[s]) if part == 0 else (npos[s], nax[s])
                down = (part == 0) == pos_d
                for c in range(c_lo, c_hi):
                    k = np.int64(_popcount(cw[s, c] & m))
                    j = cj[s, c]
                    touched[nt] = j
                    nt += (k != 0) & (n_all[j] == 0)
                    n_all[j] += k
                    if down:
                        n_dn[j] += k
        for c in range(nt):
            j = touched[c]
            nd = float(n_dn[j])
            nu = float(n_all[j]) - nd
            gu = gain_up[i, j] if gains else 1.0
            gd = gain_down[i, j] if gains else 1.0
            v = _move(float(w[i, j]), nu, nd, gu, gd, fp, ip, tables, kn,
                      np.int64(i * n_in + j))
            w[i, j] = min(max(v, lo), hi)
            total += nu + nd
            n_all[j] = 0
            n_dn[j] = 0
    return total


@kernel(["void(float64[:, ::1], int64, uint64, int64, uint64[:, ::1])"], cache=True)
def _train_words(p, bit_length, seed, base, out):
    kb = stage_key(seed, STAGE_PULSE_BITS)
    lanes = _ALL if bit_length >= 64 else (_ONE << np.uint64(bit_length)) - _ONE
    B, n = p.shape
    for s in range(B):
        for j in range(n):
            out[s, j] = _word(cell_key(kb, np.int64(base + s * n + j)), _threshold(p[s, j]),
                              lanes)


def train_words(p, bit_length: int, seed: int, base: int = 0) -> np.ndarray:
    """The bit trains :meth:`PulseUpdater.update` draws for probabilities ``p`` (B, n) [1]: bit l of
    ``out[b, j]`` is bit slot l of train ``base + b n + j`` (inputs: base 0; outputs: base
    B n_in, with n = n_out).

    Parameters
    ----------
    p : array_like, shape (B, n)
        Bit probabilities in [0, 1].
    bit_length : int
        BL, 1 <= BL <= :data:`MAX_BIT_LENGTH`.
    seed : int
        The update's seed, 0 <= seed < 2^64.
    base : int
        Index of the first train, >= 0.

    Returns
    -------
    ndarray of uint64, shape (B, n)
    """
    from ..errors import ConfigError

    p = np.ascontiguousarray(np.asarray(p, dtype=np.float64))
    ok = (p >= 0) & (p <= 1)
    if p.ndim != 2 or not ok.all():
        bad = "" if ok.all() else f", value {p[~ok].flat[0]!r}"
        raise ConfigError(f"p must be (B, n) probabilities in [0, 1], got shape {p.shape}{bad}")
    _check_bits(bit_length, seed)
    check_number(base, what="base", integer=True, lo=0)
    out = np.empty(p.shape, dtype=np.uint64)
    _train_words(p, int(bit_length), np.uint64(seed), int(base), out)
    return out


def _check_bits(bit_length, seed):
    check_number(int(bit_length) if isinstance(bit_length, np.integer) else bit_length,
                 what="bit_length", integer=True, lo=1, hi=MAX_BIT_LENGTH)
    check_number(int(seed) if isinstance(seed, np.integer) else seed, what="seed",
                 integer=True, lo=0, hi=2 ** 64 - 1)


class PulseUpdater:
    """The stochastic pulse-train update of one array (module docstring), its constants
    checked once.

    Parameters
    ----------
    shape : (int, int)
        (n_out, n_in) of the array.
    dtype : numpy dtype
        float32 or float64, the weights' precision.
    dw_min : float
        Weight step of a pulse at the symmetric point [1], > 0.
    w_range : (float, float)
        (w_min, w_max) of the device [1].
    tables : ndarray, shape (2 or 4, G)
        mu_up, mu_down [1] (and, with ``variances``, the step variances v_up, v_down [1])
        on G >= 2 equally spaced weights from w_min to w_max.
    linear : (c0_up, c1_up, c0_down, c1_down) or None
        Mean step magnitudes mu_d(w) = max(c0_d + c1_d w, 0) [1] of a linear rule, used
        instead of the tables; None: interpolate ``tables``.
    variances : bool
        Whether ``tables`` carries the step variances (rows 2 and 3).
    gains : (gain_up, gain_down) or None
        Per-cell gains [1], each of ``shape``; None: nominal cells.
    c2c : float
        Cycle-to-cycle spread, relative [1], >= 0.
    write_noise : float
        Write-noise std of a pulse in weight units [1], >= 0.
    """

    def __init__(self, shape, dtype, *, dw_min: float, w_range: tuple[float, float],
                 tables: np.ndarray, linear: tuple[float, float, float, float] | None,
                 variances: bool, gains: tuple[np.ndarray, np.ndarray] | None, c2c: float,
                 write_noise: float):
        from ..errors import ConfigError

        self.shape = check_matrix_shape(shape)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype}")
        lo, hi = (check_number(v, what="w_range", lo=None) for v in w_range)
        if not hi > lo:
            raise ConfigError(f"w_range must be (w_min, w_max) with w_max > w_min, got {w_range}")
        check_number(dw_min, what="dw_min", lo=0.0, lo_open=True)
        check_number(c2c, what="c2c", lo=0.0)
        check_number(write_noise, what="write_noise", lo=0.0)
        self.tables = np.ascontiguousarray(tables, dtype=np.float64)
        if self.tables.ndim != 2 or self.tables.shape[0] < (4 if variances else 2) or (
                self.tables.shape[1] < 2):
            raise ConfigError(f"tables must be (2 or 4, G >= 2), got {self.tables.shape}")
        if not np.all(np.isfinite(self.tables)) or np.any(self.tables < 0):
            raise ConfigError("tables must be finite and >= 0 (mean steps and their variances "
                              "[1])")
        if linear is not None and (len(linear) != 4 or not all(
                math.isfinite(float(v)) for v in linear)):
            raise ConfigError(f"linear must be 4 finite numbers (c0_up, c1_up, c0_down, "
                              f"c1_down), got {linear!r}")
        if gains is None:
            self.gains = (np.ones((1, 1), dtype=self.dtype),) * 2
        else:
            self.gains = tuple(np.ascontiguousarray(g, dtype=self.dtype) for g in gains)
            if any(g.shape != self.shape for g in self.gains):
                raise ConfigError(f"gains must have the shape {self.shape}")
            if not all(np.all(np.isfinite(g) & (g >= 0)) for g in self.gains):
                raise ConfigError("gains must be finite and >= 0 [1]")
        fp = np.zeros(11)
        fp[[FP_DW_MIN, FP_W_MIN, FP_W_MAX]] = dw_min, lo, hi
        fp[FP_INV_H] = (self.tables.shape[1] - 1) / (hi - lo)
        fp[FP_C2C2], fp[FP_WN2] = c2c ** 2, write_noise ** 2
        if linear is not None:
            fp[[FP_C0_UP, FP_C1_UP, FP_C0_DOWN, FP_C1_DOWN]] = linear
        self._fp = fp
        noisy = c2c > 0 or write_noise > 0 or variances
        self._ip = np.array([31, 1, linear is not None, noisy, gains is not None,
                             bool(variances)], dtype=np.int64)

    def update(self, w: np.ndarray, x: np.ndarray, d: np.ndarray, *, lr: float,
               bit_length: int, update_management: bool, seed: int) -> float:
        """Move ``w`` in place by the stochastic pulse trains of -lr d^T x.

        Parameters
        ----------
        w : ndarray, shape (n_out, n_in), C-contiguous, the updater's dtype
            Weights [1], changed in place.
        x, d : ndarray, shape (B, n_in) and (B, n_out)
            Inputs and output errors dL/dy [1] (finite).
        lr : float
            Learning rate [1], > 0.
        bit_length : int
            BL, 1 <= BL <= :data:`MAX_BIT_LENGTH`.
        update_management : bool
            Balance the two trains per sample.
        seed : int
            Seed of every draw of this update, in [0, 2^64).

        Returns
        -------
        float
            Pulses applied [1] (up + down, all cells).
        """
        from ..errors import ConfigError

        _check_bits(bit_length, seed)
        check_number(lr, what="lr", lo=0.0, lo_open=True)
        if not isinstance(update_management, bool | np.bool_):
            raise ConfigError(f"update_management must be True or False, got "
                              f"{update_management!r}")
        if not (isinstance(w, np.ndarray) and w.shape == self.shape and w.flags.c_contiguous
                and w.dtype == self.dtype):
            raise ConfigError(f"w must be a C-contiguous {self.dtype} array of shape "
                              f"{self.shape}")
        x = np.ascontiguousarray(x, dtype=np.float64)
        d = np.ascontiguousarray(d, dtype=np.float64)
        if x.ndim != 2 or d.ndim != 2 or x.shape[1] != self.shape[1] or d.shape != (
                x.shape[0], self.shape[0]):
            raise ConfigError(f"x {x.shape} and d {d.shape} do not fit an array of shape "
                              f"{self.shape} (x: (B, n_in), d: (B, n_out))")
        fp = self._fp.copy()
        fp[FP_LR] = lr
        ip = self._ip.copy()
        ip[IP_BL], ip[IP_UM] = bit_length, bool(update_management)
        chunks = numba.get_num_threads() if w.size >= PARALLEL_CELLS else 1
        total = _pulse_update(w, x, d, self.gains[0], self.gains[1], self.tables, fp, ip,
                              np.uint64(seed), chunks)
        if total < 0:
            raise ConfigError("x and d must be finite (a NaN or infinite activation or "
                              "error: did training diverge?)")
        return total
