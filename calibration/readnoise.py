"""Read noise: spread of repeated reads vs level, the 1/f exponent of a time series, and
the covariance of one device's reads under each :class:`ReadNoiseStructure`.

Reads of one PCM-like device in log space: y_k = a - nu L_k + e_k, L_k = ln((t_k + t0)/t0),
with the 1/f noise e of covariance A^2 C(w), in the clock u_k = ln((t_k + t0 + t_r)/(2 t_r)):

    C(w)_ij = (1 - w) min(u_i, u_j) + w u_i [i = j],

w = 0 the random walk (accumulated noise, a Wiener process in u), w = 1 reads drawn
independently (aihwkit's model), 0 < w < 1 the sum of both (random-walk amplitude
A sqrt(1 - w), independent amplitude A sqrt(w)). :func:`gls_fits` fits each device's a
and nu by generalised least squares under C(w) (a and nu free per device, so the
residuals do not depend on the spread of nu); :func:`reml_cost` is the restricted
-2 log-likelihood of a level with A^2 profiled out; :func:`contrast_loglik` scores a
device's reads after its first one given the first (a flat prior on a, nu ~ N(mu, s^2)),
the held-out criterion that chooses the structure.
"""

from __future__ import annotations

import functools

import numpy as np

from ..checks import check_number, check_values
from ..devices.curves import FittedCurve
from ..devices.fitted import WhiteReadNoise
from ..errors import ConfigError, DataFormatError
from .smooth import smooth_cv


def fit_read_noise(cols, *, min_reads: int = 5):
    """Per device (and time point), the standard deviation of repeated reads (``cycle``).

    Returns ``(WhiteReadNoise, info)``; the curve sigma(g) is smoothed across devices'
    mean conductances (degree by cross-validation); ``info`` holds per-device
    ``g`` [S], ``sigma`` [S], ``n`` reads."""
    from .tables import time_points

    _, inv = np.unique(cols["device"], return_inverse=True)
    tp_row, tps = time_points(cols)
    key = inv * tps.size + np.searchsorted(tps, tp_row)
    uk, kinv = np.unique(key, return_inverse=True)
    n = np.bincount(kinv).astype(np.float64)
    s1 = np.bincount(kinv, weights=cols["g"])
    gm = s1 / n
    # two-pass (centred) variance: reads sit far above their spread (e.g. 250 uS +- 0.02 uS)
    s2 = np.bincount(kinv, weights=(cols["g"] - gm[kinv]) ** 2)
    ok = n >= min_reads
    if not np.any(ok):
        raise DataFormatError(f"a read-noise fit needs >= {min_reads} repeated reads (cycle) of "
                              f"one device at one time; the most any device has is {int(n.max())}")
    mean = s1[ok] / n[ok]
    var = s2[ok] / (n[ok] - 1)
    sig = np.sqrt(var)
    o = np.argsort(mean)
    mean, sig, nn = mean[o], sig[o], n[ok][o]
    # identical mean conductances cannot form a grid: nudge duplicates
    mean = mean + np.arange(mean.size) * 1e-15
    sm = smooth_cv(mean, sig, nn)
    grid = np.unique(np.concatenate([mean, np.linspace(mean.min(), mean.max(), 32)]))
    block = WhiteReadNoise(FittedCurve(grid, np.maximum(sm(grid), 0.0), "S"))
    info = {"g": mean, "sigma": sig, "n": nn, "choice": sm.choice, "cv": sm.cv}
    return block, info


def fit_psd_exponent(samples, fs: float, *, f_lo: float = 2.0, f_hi: float = 40.0,
                     nperseg: int | None = None) -> tuple[float, float]:
    """1/f^alpha exponent of a read-noise time series.

    ``samples``: conductance reads at a fixed rate [S] (1-D, or 2-D with one series per
    row: the exponent of the averaged spectrum); ``fs``: sampling rate [Hz];
    ``f_lo``/``f_hi``: band of the power-law fit [Hz]. Returns ``(alpha, amplitude)``
    with PSD(f) ~ amplitude / f^alpha [S^2/Hz], from a least-squares line of
    log PSD vs log f over the band (Welch spectrum, scipy.signal.welch).
    """
    from scipy.signal import welch

    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    if x.shape[-1] < 64:
        raise DataFormatError(f"a PSD fit needs >= 64 samples per series, got {x.shape[-1]}")
    if not fs > 0:
        raise DataFormatError(f"sampling rate must be > 0 Hz, got {fs}")
    nper = nperseg or min(x.shape[-1], 1 << int(np.log2(x.shape[-1] / 4)))
    f, p = welch(x - x.mean(axis=-1, keepdims=True), fs=fs, nperseg=nper, axis=-1)
    band = (f >= f_lo) & (f <= f_hi)
    if band.sum() < 3:
        raise DataFormatError(f"the band {f_lo}-{f_hi} Hz holds fewer than 3 PSD points")
    lp = np.log(p[..., band]).mean(axis=0) if p.ndim > 1 else np.log(p[band])
    slope, icpt = np.polyfit(np.log(f[band]), lp, 1)
    return float(-slope), float(np.exp(icpt))


def _masked(u, ok, w):
    """C(w) of each device (n, K, K), rows and columns of unusable reads set to the
    identity (they then add nothing to the fits and 0 to the log-determinants)."""
    n, k = u.shape
    uu = np.where(ok, u, 0.0)
    c = (1.0 - w)[:, None, None] * np.minimum(uu[:, :, None], uu[:, None, :])
    idx = np.arange(k)
    c[:, idx, idx] += w[:, None] * uu
    both = ok[:, :, None] & ok[:, None, :]
    c = np.where(both, c, 0.0)
    c[:, idx, idx] += ~ok
    return c


def share_groups(clock, ok, w=None):
    """Devices whose reads share one covariance C(w) and one design: the same usable
    reads at the same clock values (and the same independent share w).

    ``clock``: (n, K) read times [s] (or any clock of them); ``ok``: (n, K) usable reads;
    ``w``: (n,) independent shares [1], (n, m) per-device values that must match as well
    (e.g. the parameters of :func:`contrast_loglik`'s covariance), or None (not
    compared). Returns ``(first,
    inverse)``: the index (G,) of one device of each group and the group (n,) of each
    device, for :func:`gls_fits`'s ``share``. Grouping is exact (rows are compared in
    full); devices with a common read schedule form a few groups, so the K x K algebra
    is done a few times instead of once per device."""
    clock, ok = np.asarray(clock, dtype=np.float64), np.asarray(ok, dtype=bool)
    if clock.ndim != 2 or ok.shape != clock.shape:
        raise DataFormatError(f"share_groups needs clock and ok of one (n, K) shape, got "
                              f"{clock.shape} and {ok.shape}")
    n = clock.shape[0]
    cols = [np.where(ok, clock, 0.0), ok.astype(np.float64)]
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        cols.append(np.broadcast_to(w, (n,))[:, None] if w.ndim < 2 else w)
    key = np.concatenate(cols, axis=1)
    weights = 1.0 + np.cos(0.7 * np.arange(key.shape[1]) + 0.3)
    _, first, inverse = np.unique(key @ weights, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    if not np.array_equal(key[first][inverse], key):
        # two different rows gave one projection: group on the rows themselves
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    return first, inverse


#: Smallest mean number of devices per group at which the algebra loops over the groups (one
#: inverse and one matrix product each) instead of running the Kalman filter of
#: :func:`_c_products` over every device.
_LOOP_MIN_MEAN = 64


def _group_rows(inverse, n_groups):
    """The device indices of each of ``n_groups`` groups (``inverse``: the group of each
    device), or None where there is no grouping or its groups hold fewer than
    :data:`_LOOP_MIN_MEAN` devices on average."""
    if inverse is None or inverse.size < _LOOP_MIN_MEAN * n_groups:
        return None
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse, minlength=n_groups))[:-1])


def _c_products(u, ok, w, z):
    """Per device, the products z_i' C(w)^-1 z_j of the columns of ``z`` (n, K, m) over
    the usable reads ``ok`` (n, K), and ln|C(w)| (n,): the Kalman filter of a random walk
    of variance (1 - w) u observed with independent noise of variance w u, the two parts
    of C(w) (:func:`_masked`), its innovations giving C(w)'s factorisation in K steps over
    all devices at once (a device's reads are taken in order of u; the products do not
    depend on the order). Returns ``(products (n, m, m), logdet (n,))``."""
    n, k = u.shape
    order = np.argsort(np.where(ok, u, np.inf), axis=1, kind="stable")
    u, ok = np.take_along_axis(u, order, axis=1), np.take_along_axis(ok, order, axis=1)
    z = np.take_along_axis(z, order[:, :, None], axis=1)
    xhat = np.zeros((n, z.shape[2]))
    p, u_prev, logdet = np.zeros(n), np.zeros(n), np.zeros(n)
    prod = np.zeros((n, z.shape[2], z.shape[2]))
    for j in range(k):
        o = ok[:, j]
        uj = np.where(o, u[:, j], u_prev)
        pp = p + (1.0 - w) * (uj - u_prev)  # the walk's variance grows with u
        f = np.where(o, pp + w * uj, 1.0)  # the innovation's variance
        e = np.where(o[:, None], z[:, j, :] - xhat, 0.0)
        ef = e / f[:, None]
        prod += ef[:, :, None] * e[:, None, :]
        logdet += np.log(f)
        xhat += (pp * o)[:, None] * ef  # the Kalman gain pp / f times e
        p = np.where(o, pp * (1.0 - pp / f), p)
        u_prev = uj
    return prod, logdet


def _first_usable(v, ok):
    """Each device's value of ``v`` at its first usable read (0 where it has none)."""
    return np.where(ok.any(axis=1), v[np.arange(v.shape[0]), np.argmax(ok, axis=1)], 0.0)


def _gls_each(y, L, u, ok, w, bad):
    """:func:`gls_fits`'s per-device algebra by :func:`_c_products`: ``(beta (n, 2), rss,
    var(nu) per A^2, logdet, logdet_a)``; y less its first usable read (in the design's
    span: the residuals stay, the intercept is moved back), so that y' C^-1 y less its
    fitted part does not lose digits."""
    c0 = _first_usable(y, ok)
    z = np.stack([ok.astype(np.float64), np.where(ok, L, 0.0),
                  np.where(ok, y - c0[:, None], 0.0)], axis=2)
    g, ldc = _c_products(u, ok, w, z)
    m00, m01, m11 = (np.where(bad, v, g[:, i, j]) for v, (i, j) in
                     ((1.0, (0, 0)), (0.0, (0, 1)), (1.0, (1, 1))))
    det = m00 * m11 - m01 * m01
    b0, b1 = g[:, 0, 2], g[:, 1, 2]
    beta = np.stack([(m11 * b0 - m01 * b1) / det, (m00 * b1 - m01 * b0) / det], axis=1)
    rss = g[:, 2, 2] - beta[:, 0] * b0 - beta[:, 1] * b1
    beta[:, 0] += c0
    return (beta, rss, m00 / det, ldc + np.log(det),
            ldc + np.log(np.maximum(m00, 1e-300)))


def _contrast_each(r, L, u, ok, *, s, a2, w):
    """:func:`contrast_loglik`'s per-device algebra: with A = a2 C(w) and l the drift clock
    of the usable reads, Sigma = A + s^2 l l', whose inverse products follow from A's by
    Sherman-Morrison and ln|Sigma| = ln|A| + ln(1 + s^2 l' A^-1 l); r less its first
    usable value (the contrasts do not see it). Returns ``(quad, ln|Sigma|, 1' Sigma^-1
    1)``."""
    n_ok = ok.sum(axis=1)
    z = np.stack([ok.astype(np.float64), np.where(ok, L, 0.0),
                  np.where(ok, r - _first_usable(r, ok)[:, None], 0.0)], axis=2)
    g, ldc = _c_products(u, ok, w, z)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = g / a2[:, None, None]
        den = 1.0 + s * s * g[:, 1, 1]

        def sig_inv(i, j):
            return g[:, i, j] - s * s * g[:, i, 1] * g[:, 1, j] / den

        q11 = np.maximum(sig_inv(0, 0), 1e-300)
        quad = sig_inv(2, 2) - sig_inv(0, 2) ** 2 / q11
        ld = n_ok * np.log(a2) + ldc + np.log(den)
    return quad, ld, q11


def gls_fits(y, L, u, ok, w, *, share=None):
    """Per-device generalised least squares of y = a - nu L under C(w).

    ``y``, ``L``, ``u``: (n, K) log reads [ln S], drift clock and 1/f clock [1]; ``ok``:
    usable reads; ``w``: per-device independent share in [0, 1]; ``share``: None, or
    ``(first, inverse)`` from :func:`share_groups` over these devices (where the groups
    hold :data:`_LOOP_MIN_MEAN` devices or more on average, the covariance, the design and
    their determinants are computed once per group; otherwise every device goes through
    :func:`_c_products`; same results to rounding).
    Returns a dict of arrays (n,): ``nu`` (NaN where fewer than 3 reads), ``a`` [ln S],
    ``S`` = 1/var(nu) in units of A^-2, ``rss`` (the generalised residual sum of squares,
    A^2 units), ``dof`` = reads - 2 and ``logdet`` = ln|C| + ln|X' C^-1 X| (the restricted
    likelihood's determinant terms; ``logdet_a`` = ln|C| + ln(1' C^-1 1), those of the
    likelihood of the reads' contrasts, a eliminated and nu profiled)."""
    w = np.broadcast_to(np.asarray(w, dtype=np.float64), (y.shape[0],))
    n_ok = ok.sum(axis=1)
    bad = n_ok < 3
    rows_by = None if share is None else _group_rows(share[1], share[0].size)
    if rows_by is None:
        beta, rss, vnu, logdet, logdet_a = _gls_each(y, L, u, ok, w, bad)
    else:
        first, inverse = share
        okg = ok[first]
        c = _masked(u[first], okg, w[first])
        ci = np.linalg.inv(c)
        x = np.stack([okg.astype(np.float64), np.where(okg, L[first], 0.0)], axis=-1)
        cix = ci @ x
        m = np.swapaxes(x, 1, 2) @ cix
        m[okg.sum(axis=1) < 3] = np.eye(2)
        minv = np.linalg.inv(m)
        ldc = np.linalg.slogdet(c)[1]
        logdet = (ldc + np.linalg.slogdet(m)[1])[inverse]
        logdet_a = (ldc + np.log(np.maximum(m[:, 0, 0], 1e-300)))[inverse]
        vnu = minv[:, 1, 1][inverse]
        yy = np.where(ok, y, 0.0)
        beta, rss = np.empty((yy.shape[0], 2)), np.empty(yy.shape[0])
        for gi, rows in enumerate(rows_by):
            yg = yy[rows]
            beta[rows] = bg = (yg @ cix[gi]) @ minv[gi].T
            rg = yg - bg @ x[gi].T
            rss[rows] = np.einsum("nk,nk->n", rg @ ci[gi], rg)
    nu = np.where(bad, np.nan, -beta[:, 1])
    return {"nu": nu, "a": beta[:, 0], "S": np.where(bad, 0.0, 1.0 / vnu),
            "rss": np.where(bad, 0.0, rss), "dof": np.maximum(n_ok - 2, 0).astype(np.float64),
            "logdet": np.where(bad, 0.0, logdet), "logdet_a": np.where(bad, 0.0, logdet_a)}


def reml_cost(fits, groups, *, restricted: bool = True) -> float:
    """-2 log-likelihood (up to a constant) of the devices in ``groups`` (a list of index
    arrays, one per level, each with its own A^2 profiled out): sum over levels of
    D ln(rss/D) + the determinant terms. ``restricted``: the restricted likelihood (a
    and nu eliminated: D the residual dof, ``logdet``), for variance parameters;
    otherwise the likelihood of the contrasts with nu profiled (D = dof + 1,
    ``logdet_a``), for parameters of the design such as t0 (as the random walk's
    increment fit does)."""
    total = 0.0
    det = "logdet" if restricted else "logdet_a"
    for ix in groups:
        good = ix[fits["dof"][ix] >= 1]
        d = fits["dof"][good].sum() + (0 if restricted else good.size)
        if d <= 0:
            continue
        total += d * np.log(max(fits["rss"][good].sum() / d, 1e-300)) + fits[det][good].sum()
    return float(total)


def contrast_loglik(y, L, u, ok, *, mu, s, a2, w, share=None):
    """Log-likelihood [ln(1/S)] of each device's reads after its first usable one, given
    that first read: the log reads are y = a 1 - nu L + e with a flat prior on a,
    nu ~ N(``mu``, ``s``^2) and e ~ N(0, ``a2`` C(``w``)) (all per device, (n,)); the
    density of the contrasts y_k - y_first, turned into a density of the reads g_k by
    the Jacobian 1/g_k. ``share``: None, or ``(first, inverse)`` from :func:`share_groups`
    grouping devices of equal ``L``, ``u``, ``ok``, ``s``, ``a2`` and ``w`` (their
    covariance, its inverse and determinant computed once per group where the groups are
    large, as in :func:`gls_fits`; same results to rounding). Returns ``(loglik, reads)``
    per device (reads = usable reads - 1; devices with fewer than 2 usable reads score 0
    over 0 reads)."""
    n, k = y.shape
    w = np.broadcast_to(w, (n,))
    r = np.where(ok, y + mu[:, None] * L, 0.0)
    rows_by = None if share is None else _group_rows(share[1], share[0].size)
    if rows_by is None:
        quad, ld, q11 = _contrast_each(r, L, u, ok, s=s, a2=a2, w=w)
    else:
        first, inverse = share
        okg, lg_, sg = ok[first], np.where(ok, L, 0.0)[first], s[first]
        both = okg[:, :, None] & okg[:, None, :]
        c = np.where(both, a2[first][:, None, None] * _masked(u[first], okg, w[first]), 0.0)
        idx = np.arange(k)
        c[:, idx, idx] += ~okg
        sig = c + np.where(both, (sg * sg)[:, None, None] * lg_[:, :, None]
                           * lg_[:, None, :], 0.0)
        si = np.linalg.inv(sig)
        s1 = si @ okg.astype(np.float64)[:, :, None]
        q11 = np.maximum(np.einsum("gk,gk->g", okg, s1[..., 0]), 1e-300)
        ld = np.linalg.slogdet(sig)[1]
        quad = np.empty(n)
        for gi, rows in enumerate(rows_by):
            rg = r[rows]
            quad[rows] = (np.einsum("nk,nk->n", rg @ si[gi], rg)
                          - (rg @ s1[gi, :, 0]) ** 2 / q11[gi])
        q11, ld = q11[inverse], ld[inverse]
    m = ok.sum(axis=1) - 1
    # |K' Sigma K| = |Sigma| 1' Sigma^-1 1 for the contrasts K'y = y_k - y_first
    ll = -0.5 * (m * np.log(2 * np.pi) + ld + np.log(q11) + quad)
    # Jacobian of ln g -> g for the scored reads (all usable reads but the first)
    lg = np.where(ok, y, 0.0)
    jac = lg.sum(axis=1) - lg[np.arange(n), np.argmax(ok, axis=1)]
    ll = ll - jac
    live = m >= 1
    return np.where(live, ll, 0.0), np.where(live, m, 0)


#: Log-likelihood [ln 1] given to a read a model cannot produce (a read <= 0 S after a
#: positive first read under log-normal read noise).
LOG_FLOOR = -50.0


def _exact_log_moments(s):
    """:func:`linear_log_moments` by quadrature for ``s`` >= 1e-3 (1-D)."""
    sb = s[:, None]
    lo = np.log(np.maximum(1.0 - 9.0 * sb, np.exp(-30.0)))  # 9 std or e^-30 above 0
    y = lo + (np.log1p(9.0 * sb) - lo) * np.linspace(0.0, 1.0, 6001)[None, :]
    x = np.expm1(y) / sb
    dens = np.exp(-0.5 * x * x + y) / sb
    z = np.trapezoid(dens, y, axis=1)
    m1 = np.trapezoid(dens * y, y, axis=1) / z
    return m1, np.trapezoid(dens * (y - m1[:, None]) ** 2, y, axis=1) / z


@functools.cache
def _log_moments_table():
    """ln s, mean and variance of :func:`linear_log_moments` on 400 points of s in
    [1e-3, 20]."""
    s = np.geomspace(1e-3, 20.0, 400)
    m, v = _exact_log_moments(s)
    return np.log(s), m, v


def linear_log_moments(s):
    """Mean and variance of ln(1 + s z) given 1 + s z > 0, z ~ N(0, 1): what relative
    read noise of std ``s`` [1] (array, >= 0) does to the log of the reads it leaves
    positive. Quadrature on a grid of y = ln(1 + s z) (density phi((e^y - 1)/s) e^y / s
    over Phi(1/s), 9 standard deviations about 1 + 0 or down to e^-30), tabulated once on
    400 points of s in [1e-3, 20] and interpolated in ln s (the mean within 3e-4 s^2 of
    the quadrature, the variance within 0.07 %); the series -s^2/2, s^2 below s = 1e-3;
    computed directly above 20. Returns ``(mean,
    var)`` [1]; a ``s`` not finite or below 0 raises :class:`~xbarlab.errors.ConfigError`."""
    s = check_values(s, what="s (relative read-noise std) [1]", lo=0.0)
    flat = s.ravel()
    mean, var = -0.5 * flat**2, flat**2
    ls, tm, tv = _log_moments_table()
    mid = (flat >= 1e-3) & (flat <= 20.0)
    if np.any(mid):
        lf = np.log(flat[mid])
        mean[mid], var[mid] = np.interp(lf, ls, tm), np.interp(lf, ls, tv)
    big = flat > 20.0
    if np.any(big):
        mean[big], var[big] = _exact_log_moments(flat[big])
    return mean.reshape(s.shape), var.reshape(s.shape)


def linear_amplitude(q_log, u, weights=None):
    """Amplitude Q [1] of relative read noise g (1 + Q sqrt(u) z) whose log, over reads at
    the clocks ``u`` [1] (weighted by ``weights``, e.g. their counts), has the mean variance
    per unit u ``q_log``^2 that a fit in ln g measures: the Q with mean_k var(ln(1 + Q
    sqrt(u_k) z) | positive) / u_k = q_log^2 (:func:`linear_log_moments`); ``q_log`` an
    array [1]. The log variance saturates (at pi^2/8 for large Q): larger ``q_log`` give
    the largest Q of the table (2 / sqrt(min u))."""
    u = check_values(u, what="u (1/f clocks) [1]").ravel()
    wt = (np.ones(u.size) if weights is None
          else check_values(weights, what="weights [1]", lo=0.0).ravel())
    q_log = check_values(q_log, what="q_log (amplitude in ln g) [1]", lo=0.0)
    if u.size == 0 or np.any(u <= 0) or wt.size != u.size or not np.sum(wt) > 0:
        raise DataFormatError(f"linear_amplitude needs clocks u > 0 with positive total "
                              f"weight, got u={u}, weights={wt}")
    q = np.geomspace(1e-5, 2.0 / np.sqrt(u.min()), 300)
    _, v = linear_log_moments(q[:, None] * np.sqrt(u)[None, :])
    f = np.maximum.accumulate((v / u[None, :]) @ wt / wt.sum())
    return np.interp(np.log(np.maximum(q_log, 1e-300) ** 2), np.log(f), q,
                     left=0.0, right=q[-1]) * (q_log > 0)


def predictive_loglik(g1, g, dL, u1, u, *, mu, s, q, w, linear: bool, nodes: int = 16,
                      prior=None):
    """Log-likelihood [ln(1/S)] of reads ``g`` [S] (>= 0) of cells given each cell's first
    positive read ``g1`` [S], read by read (one density per read, not their joint).

    Per read (all arrays of one shape): ``dL`` = L(t) - L(t_1) the drift clock since the
    first read and ``u1``, ``u`` the 1/f clocks of the two reads [1]; the exponent
    nu ~ N(``mu``, ``s``^2); the 1/f noise e of amplitude ``q`` [1] and independent share
    ``w`` [1] (covariance q^2 C(w) of the module docstring). A flat prior on ln g_prog
    makes the first read's noise factor f_1 = 1 + e_1 (``linear``) or e^(e_1) follow its
    own law, so:

    - noise on ln g (``linear`` False): ln g - ln g1 ~ N(-mu dL, s^2 dL^2 + q^2 (u + u1
      - 2 (1 - w) u1)); a read <= 0 S is impossible (:data:`LOG_FLOOR`);
    - relative noise (``linear`` True): given f_1 and nu, g ~ N(c (1 + (1 - w) e_1),
      c^2 q^2 (u - (1 - w)^2 u1)) with c = g1 e^(-nu dL) / f_1, and a read at 0 S has
      that normal's probability below 0; f_1 (normal, mean 1 and std q sqrt(u1), above 0)
      and nu are integrated over ``nodes`` strata and 8 Gauss-Hermite nodes.

    ``prior``: None (the flat prior above) or ``(m, sd)`` [S], the mean and standard
    deviation of g_prog (its programming distribution, normal), the first read taken as
    g_prog read with its noise at the drift clock's origin. Then a high first read is
    partly noise and a later read regresses toward m: with noise on ln g, ln g_prog ~
    N(m0, v) (v = ln(1 + sd^2/m^2), m0 = ln m - v/2) and ln g given ln g1 is the
    conditional of their joint normal (mean m0 - mu dL + c (ln g1 - m0), c = (v + q^2 (1 -
    w) u1) / (v + q^2 u1)), which tends to the flat prior's law as sd grows; with relative
    noise each stratum of f_1 is weighted by the prior density of ln g_prog = ln(g1 / f_1).

    Raises :class:`~xbarlab.errors.ConfigError` for arrays that do not broadcast, values
    not finite, ``g1`` <= 0 S, ``u1`` or ``u`` < 0, ``s`` or ``q`` < 0, ``w``
    outside [0, 1], ``nodes`` < 1, or a ``prior`` whose m or sd is not > 0.
    """
    check_number(nodes, what="nodes", integer=True, lo=1)
    if prior is not None:
        pm = check_values(prior[0], what="prior mean [S]", lo=0.0, lo_open=True)
        psd = check_values(prior[1], what="prior std [S]", lo=0.0, lo_open=True)
    args = {"g [S]": (g, None, None, False), "g1 [S]": (g1, 0.0, None, True),
            "dL [1]": (dL, None, None, False), "u1 [1]": (u1, 0.0, None, False),
            "u [1]": (u, 0.0, None, False), "mu [1]": (mu, None, None, False),
            "s [1]": (s, 0.0, None, False), "q [1]": (q, 0.0, None, False),
            "w [1]": (w, 0.0, 1.0, False)}
    vals = [check_values(v, what=k, lo=lo, hi=hi, lo_open=op)
            for k, (v, lo, hi, op) in args.items()]
    try:
        g, g1, dL, u1, u, mu, s, q, w = np.broadcast_arrays(*vals)
    except ValueError as exc:
        raise ConfigError("predictive_loglik: the arrays must broadcast to one shape, got "
                          + ", ".join(f"{k} {v.shape}" for k, v in zip(args, vals,
                                                                         strict=True))) from exc
    lg = np.log(np.maximum(g, 1e-300))
    pos = g > 0
    if prior is not None:
        try:
            pm, psd = (np.broadcast_to(v, g.shape) for v in (pm, psd))
        except ValueError as exc:
            raise ConfigError(f"predictive_loglik: the prior's mean {np.shape(pm)} and std "
                              f"{np.shape(psd)} must broadcast to the reads' shape "
                              f"{g.shape}") from exc
    if not linear:
        if prior is None:
            var = np.maximum(s * s * dL * dL + q * q * (u + u1 - 2 * (1 - w) * u1), 1e-300)
            x = lg - np.log(g1) + mu * dL
        else:
            v = np.log1p((psd / pm) ** 2)
            m0 = np.log(pm) - v / 2
            var1 = v + q * q * u1
            cov = v + q * q * (1 - w) * u1
            var = np.maximum(v + s * s * dL * dL + q * q * u - cov * cov / var1, 1e-300)
            x = lg - (m0 - mu * dL + cov / var1 * (np.log(g1) - m0))
        lp = -0.5 * x * x / var - 0.5 * np.log(2 * np.pi * var) - lg
        return np.where(pos, lp, LOG_FLOOR)
    from scipy.special import ndtr, ndtri

    zn, wn = np.polynomial.hermite_e.hermegauss(8)
    wn = wn / wn.sum()
    s1 = np.maximum(q * np.sqrt(u1), 1e-12)
    p_lo = ndtr(-1.0 / s1)
    strata = (np.arange(nodes) + 0.5) / nodes
    e1 = s1[..., None] * ndtri(p_lo[..., None] + (1 - p_lo[..., None]) * strata)  # (..., M)
    rho = (1 - w)[..., None]
    sd = np.sqrt(np.maximum(q * q * (u - (1 - w) ** 2 * u1), 1e-300))[..., None]
    if prior is None:
        pw = np.full(e1.shape, 1.0 / nodes)
    else:  # density of ln g_prog = ln(g1 / f_1) under the prior, per stratum, normalised
        gp = g1[..., None] / (1 + e1)
        zp = (gp - pm[..., None]) / psd[..., None]
        lw = -0.5 * zp * zp + np.log(gp)
        pw = np.exp(lw - lw.max(axis=-1, keepdims=True))
        pw /= pw.sum(axis=-1, keepdims=True)
    # given f_1 and nu, with a = g1 e^(-nu dL) and c = a / f_1, the read's normal has
    # z = (g - c (1 + rho e_1)) / (c sd) = (g / a) B - K and density B / a phi(z), where
    # B = f_1 / sd and K = (1 + rho e_1) / sd do not depend on nu
    b = (1 + e1) / sd
    k = (1 + rho * e1) / sd
    pb = pw * b / np.sqrt(2 * np.pi)
    dens = np.zeros(g.shape)
    for zj, wj in zip(zn, wn, strict=True):
        a = g1 * np.exp(-(mu + s * zj) * dL)
        z = (g / a)[..., None] * b - k
        dens += wj / a * np.sum(pb * np.exp(-0.5 * z * z), axis=-1)
    p0 = np.sum(pw * ndtr(-k), axis=-1)
    lp = np.where(pos, np.log(np.maximum(dens, 1e-300)), np.log(np.maximum(p0, 1e-300)))
    return np.maximum(lp, np.where(pos, LOG_FLOOR - lg, LOG_FLOOR))


def linear_drift_ml(g1, g, dL, u1, u, *, mu, s, q, w) -> tuple[float, float, float]:
    """Mean exponent mu [1], exponent spread s [1] and amplitude Q [1] of relative read
    noise g (1 + e) maximising together the sum of :func:`predictive_loglik` (``linear``)
    over one level's reads ``g`` [S] given the first reads ``g1`` [S] (arguments as
    there; the share ``w`` [1], scalar or per read, held fixed): the composite likelihood
    of :func:`linear_amplitude_ml`, by Nelder-Mead in mu, s >= 0 and ln Q within a factor
    4 of the start, started from the scalars ``mu``, ``s`` > 0 and ``q`` > 0. Returns
    ``(mu, s, Q)``.

    Where the noise is tens of percent of g and reads are clamped at 0 S, the exponents
    fitted in ln g are biased (their increments carry the clamp and the skew of
    ln(1 + e)), and Q fitted with them absorbs the difference; fitting the three together
    in g removes most of it. A start not finite, or s or Q not > 0, raises
    :class:`~xbarlab.errors.ConfigError`; the reads are checked as in
    :func:`predictive_loglik`."""
    from scipy.optimize import minimize

    start = [float(check_number(mu, what="linear_drift_ml: mu [1]")),
             float(check_number(s, what="linear_drift_ml: s [1]", lo=0.0, lo_open=True)),
             float(check_number(q, what="linear_drift_ml: q [1]", lo=0.0, lo_open=True))]
    predictive_loglik(g1, g, dL, u1, u, mu=start[0], s=start[1], q=start[2], w=w, linear=False)

    # in (100 mu, 100 s, ln Q) one tolerance of 0.02 is 2e-4 in mu and s and 2 % in Q
    # (and 0.2 nats of a level's likelihood, a tenth of what a 95 % interval spans); s
    # is bounded at 0 (in ln s a spread near 0 ran toward -inf over a flat likelihood) and Q
    # kept within a factor 4 of its start
    def cost(p):
        return -float(np.sum(predictive_loglik(g1, g, dL, u1, u, mu=p[0] / 100,
                                               s=p[1] / 100, q=np.exp(p[2]), w=w,
                                               linear=True)))

    lq = np.log(start[2])
    res = minimize(cost, [100 * start[0], 100 * start[1], lq], method="Nelder-Mead",
                   bounds=[(None, None), (0.0, None), (lq - np.log(4), lq + np.log(4))],
                   options={"xatol": 0.02, "fatol": 0.2})
    return float(res.x[0] / 100), float(res.x[1] / 100), float(np.exp(res.x[2]))


#: Grid of ln g_prog about each device's largest read over which
#: :func:`independent_drift_ml` integrates (a read noise of up to 110 % of g puts g_prog
#: within e^-3 to e^3 of it) and the Gauss-Hermite nodes of its exponent integral.
_LN_GPROG = np.linspace(-3.0, 3.0, 48)
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(16)


def _device_loglik(y, lg, L, a, nu):
    """Log of the integrated likelihood of each device's reads ``y`` (n, T) [S] (NaN:
    missing), independent relative noise ``a`` (n, T) [1], exponents ``nu`` (Gauss-Hermite
    nodes of :data:`_GH_X`), ln g_prog on the grid ``lg`` (n, G).

    With m_k = g_p e^(-nu L_k) and E_k = e^(nu L_k), the positive reads' sum of
    ((y_k / m_k - 1) / a_k)^2 is g_p^-2 A(nu) - 2 g_p^-1 B(nu) + C with A = sum y^2 E^2 / a^2,
    B = sum y E / a^2, C = sum 1 / a^2, so the sum over reads is taken once per node,
    not once per grid point."""
    from scipy.special import ndtr

    pos = np.isfinite(y) & (y > 0)
    yp = np.where(pos, y, 0.0)
    ia2 = np.where(pos, 1.0 / (a * a), 0.0)
    with np.errstate(divide="ignore"):
        zero = np.where(np.isfinite(y) & (y == 0), np.log(ndtr(-1.0 / a)), 0.0).sum(axis=1)
    E = np.exp(nu[None, :, None] * L[:, None, :])                       # (n, K, T)
    A = np.einsum("nkt,nt->nk", E * E, yp * yp * ia2)
    B = np.einsum("nkt,nt->nk", E, yp * ia2)
    C = ia2.sum(axis=1)
    npos = pos.sum(axis=1)
    sL = np.where(pos, L, 0.0).sum(axis=1)
    sla = np.where(pos, np.log(a), 0.0).sum(axis=1)
    ig = np.exp(-lg)[:, :, None]                                       # (n, G, 1)
    lf = (-0.5 * (ig * ig * A[:, None, :] - 2 * ig * B[:, None, :] + C[:, None, None])
          - npos[:, None, None] * lg[:, :, None] + nu[None, None, :] * sL[:, None, None])
    top = lf.max(axis=(1, 2), keepdims=True)
    inner = np.exp(lf - top) @ (_GH_W / np.sqrt(np.pi))
    step = lg[:, 1] - lg[:, 0]
    return (np.log(np.trapezoid(inner, axis=1) * step) + top[:, 0, 0]
            - sla - 0.5 * np.log(2 * np.pi) * npos + zero)


def independent_drift_ml(g, L, u, *, mu, s, q) -> tuple[float, float, float]:
    """Mean exponent mu [1], exponent spread s [1] and amplitude Q [1] of read noise drawn
    independently at every read, maximising the likelihood of all of each device's reads
    together, one level's devices.

    A device's reads are g_k = max(g_p exp(-nu L_k) (1 + Q sqrt(u_k) z_k), 0), z_k
    independent N(0, 1), nu ~ N(mu, s^2); its likelihood integrates nu (16 Gauss-Hermite
    nodes) and ln g_p (a flat prior, the scale-invariant one, on 48 points within e^+-3 of
    its largest read), a read at 0 S scored by its probability. Nelder-Mead in (100 mu,
    100 s >= 0, ln Q within a factor 4 of the start), tolerances as in
    :func:`linear_drift_ml`, started from the scalars ``mu``, ``s`` > 0 and ``q`` > 0.

    With independent reads the likelihood of each read given the first
    (:func:`linear_drift_ml`) rests on the prior of g_p, since the first read alone
    places it to within its noise; all of a device's reads together place it well
    enough that the flat prior does not matter. Aihwkit-style reads at 0 uS (noise
    80-110 % of g, half the reads at 0 S, 1,000 cells read at 1 s - 1 y): mu 0.099,
    s 0.043, Q 0.170 against the generator's 0.100, 0.044 and rms 0.180; the fit in ln g
    gives s 0.058, the likelihood of each read given the first 0.098.

    Parameters
    ----------
    g : array_like, shape (n, T)
        Reads [S], NaN where missing; a read <= 0 S (the clamp, or an instrument's offset
        below it) is scored as a read at 0 S, as :func:`predictive_loglik` scores it;
        devices without a positive read are left out.
    L, u : array_like, shape (n, T) or (T,)
        Drift clock ln((t + t0)/t0) and 1/f clock ln((t + t0 + t_r)/(2 t_r)) of each read
        [1].

    Returns
    -------
    (mu, s, Q) : float
        [1].
    """
    from scipy.optimize import minimize

    start = [float(check_number(mu, what="independent_drift_ml: mu [1]")),
             float(check_number(s, what="independent_drift_ml: s [1]", lo=0.0,
                                lo_open=True)),
             float(check_number(q, what="independent_drift_ml: q [1]", lo=0.0,
                                lo_open=True))]
    y = np.asarray(g, dtype=np.float64)
    if y.ndim != 2:
        raise DataFormatError(f"independent_drift_ml needs reads shaped (n, T), got {y.shape}")
    Lb = np.broadcast_to(np.asarray(L, dtype=np.float64), y.shape)
    ub = np.broadcast_to(np.asarray(u, dtype=np.float64), y.shape)
    if np.any(np.isinf(y)):
        raise DataFormatError("independent_drift_ml: reads must be finite (S) or NaN")
    seen = np.isfinite(y)
    y = np.where(seen, np.maximum(y, 0.0), np.nan)
    if not (np.all(np.isfinite(Lb[seen])) and np.all(ub[seen] > 0)):
        raise DataFormatError("independent_drift_ml: clocks must be finite with u > 0 at "
                              "every read")
    keep = np.any(y > 0, axis=1)
    if not keep.any():
        raise DataFormatError("independent_drift_ml: no device has a positive read")
    y, Lb, ub = y[keep], Lb[keep], ub[keep]
    lg = np.log(np.nanmax(y, axis=1))[:, None] + _LN_GPROG[None, :]
    root_u = np.sqrt(np.where(np.isfinite(y), ub, 1.0))
    Lb = np.where(np.isfinite(y), Lb, 0.0)

    def cost(p):
        nu = p[0] / 100 + p[1] / 100 * np.sqrt(2.0) * _GH_X
        return -float(np.sum(_device_loglik(y, lg, Lb, np.exp(p[2]) * root_u, nu)))

    lq = np.log(start[2])
    res = minimize(cost, [100 * start[0], 100 * start[1], lq], method="Nelder-Mead",
                   bounds=[(None, None), (0.0, None), (lq - np.log(4), lq + np.log(4))],
                   options={"xatol": 0.02, "fatol": 0.2})
    return float(res.x[0] / 100), float(res.x[1] / 100), float(np.exp(res.x[2]))


def linear_amplitude_ml(g1, g, dL, u1, u, *, mu, s, w, q_range=(1e-4, 2.0)) -> float:
    """Amplitude Q [1] of relative read noise g (1 + e) maximising the sum of
    :func:`predictive_loglik` (``linear``) over the reads ``g`` [S] given first reads
    ``g1`` [S] (the arguments as there, one level's reads; ``mu``, ``s``, ``w`` [1]
    scalars or per read): a bounded scalar search in ln Q over ``q_range`` [1] (to
    0.2 % in Q). A likelihood of each read given the first, not of a device's reads
    jointly (a composite likelihood; it scores a read at 0 S by its probability, so the
    clamped reads inform Q as they are). A ``q_range`` not 0 < low < high raises
    :class:`~xbarlab.errors.ConfigError`; the reads are checked as in
    :func:`predictive_loglik`."""
    from scipy.optimize import minimize_scalar

    qr = check_values(q_range, what="q_range [1]", lo=0.0, lo_open=True).ravel()
    lo, hi = (float(qr[0]), float(qr[-1])) if qr.size == 2 else (1.0, 0.0)
    if not lo < hi:
        raise ConfigError(f"q_range must be (low, high) with low < high, got {q_range}")
    predictive_loglik(g1, g, dL, u1, u, mu=mu, s=s, q=lo, w=w, linear=False)

    def cost(lq):
        return -float(np.sum(predictive_loglik(g1, g, dL, u1, u, mu=mu, s=s, q=np.exp(lq),
                                               w=w, linear=True)))

    res = minimize_scalar(cost, bounds=(np.log(lo), np.log(hi)), method="bounded",
                          options={"xatol": 2e-3})
    return float(np.exp(res.x))
