"""Programming-error fit: per-level bias and spread, smooth in the target, a family."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..checks import check_values
from ..devices.blocks import Family, ReadNoiseLaw, beta_shape
from ..devices.curves import FittedCurve
from ..devices.fitted import FittedProgramming
from ..enums import coerce_enum
from .smooth import smooth_cv


@dataclass
class ProgrammingInfo:
    """What the programming fit decided.

    ``levels_g``: fitted level targets [S]; ``bias``/``spread``: per-level estimates [S];
    ``n``: devices per level; ``bias_choice``/``spread_choice``: smoothing chosen by
    cross-validation (with the CV errors); ``family``: chosen family; ``aic``: AIC of each
    candidate family; ``window``: verify-window half-width [S] (given or estimated);
    ``window_estimated``: whether it was estimated; ``boot_spread_level``: bootstrap
    replicates of the per-level spread (B, n_levels) [S]; ``zeros``: devices per level that
    read exactly 0 S (the clamp); ``censored``: per level, whether it had some and none
    below 0 S and was fitted by the censored likelihood of :func:`censored_normal` (its
    ``bias`` and ``spread`` are then those of the error before the clamp).
    """

    levels_g: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spread: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bias_choice: str = ""
    spread_choice: str = ""
    bias_cv: dict = field(default_factory=dict)
    spread_cv: dict = field(default_factory=dict)
    family: str = ""
    aic: dict = field(default_factory=dict)
    family_params: dict = field(default_factory=dict)
    window: float = np.nan
    window_estimated: bool = False
    boot_spread_level: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    zeros: np.ndarray = field(default_factory=lambda: np.zeros(0))
    censored: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def censored_normal(x, r, *, start: tuple[float, float],
                    linear: bool = False) -> tuple[float, float]:
    """Mean [S] and standard deviation [S] of g ~ N(m, s^2) clamped at 0 S, by maximum
    likelihood (a Tobit model) from values ``x`` [S] (>= 0) read with multiplicative noise,
    ln x = ln g + eta, eta ~ N(0, r), ``r`` [1] per value (0: read exactly); ``linear``:
    the noise is relative, x = g (1 + eta) (its density in g on a grid of 400 points from
    0 to the largest value times 1 + 8 sqrt(max r)).

    A value at exactly 0 S has probability Phi(-m/s) (programmed to the clamp); a positive
    value the density of g e^eta with g > 0: without noise phi(x; m, s^2), with it the
    normal density of g, in ln g, convolved with eta's on a grid of 200 points of ln g
    (the kernel is computed once; only the density of g moves with m and s).
    ``start``: (m, s) to start from [S]. Returns (m, s) [S].
    """
    from scipy.optimize import minimize
    from scipy.special import log_ndtr

    x = np.asarray(x, dtype=np.float64)
    r = np.broadcast_to(np.asarray(r, dtype=np.float64), x.shape)
    zero = x <= 0
    n0 = int(zero.sum())
    xp, rp = x[~zero], r[~zero]
    scale = max(float(start[1]), float(np.sqrt(np.mean(x**2))), 1e-30)
    kern = None
    xs = xp / scale
    if xp.size and np.any(rp > 0) and linear:
        g_grid = np.linspace(0.0, xs.max() * (1 + 8 * np.sqrt(rp.max())), 401)[1:]
        step = g_grid[0]
        sd = np.maximum(g_grid[None, :] * np.sqrt(rp)[:, None], step)
        kern = (np.exp(-0.5 * ((xs[:, None] - g_grid[None, :]) / sd) ** 2)
                / (sd * np.sqrt(2 * np.pi)) * step)
    elif xp.size and np.any(rp > 0):
        lx = np.log(xp / scale)
        wide = 6.0 * np.sqrt(rp.max())
        lg = np.linspace(lx.min() - wide, lx.max() + wide, 200)
        step = lg[1] - lg[0]
        rr = np.maximum(rp, step**2)[:, None]
        kern = np.exp(-0.5 * (lx[:, None] - lg[None, :]) ** 2 / rr) / np.sqrt(2 * np.pi * rr)
        kern *= step * np.exp(lg)[None, :]  # d(ln g) -> dg
        g_grid = np.exp(lg)

    root_2pi, log_root_2pi = np.sqrt(2 * np.pi), 0.5 * np.log(2 * np.pi)

    def cost(par):  # scipy.stats.norm's logcdf, logpdf and pdf, written out (same values)
        m, s = par[0], np.exp(par[1])
        out = -n0 * float(log_ndtr(-m / s)) if n0 else 0.0
        if kern is None:
            z = (xs - m) / s
            return out - float(np.sum(-z**2 / 2.0 - log_root_2pi - np.log(s)))
        z = (g_grid - m) / s
        dens = kern @ (np.exp(-z**2 / 2.0) / root_2pi / s)
        return out - float(np.sum(np.log(np.maximum(dens, 1e-300))))

    p0 = np.array([start[0] / scale, np.log(max(start[1], 1e-3 * scale) / scale)])
    res = minimize(cost, p0, method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-3, "maxiter": 1000})
    return float(res.x[0] * scale), float(np.exp(res.x[1]) * scale)


def _clamped(x) -> bool:
    """Whether a level's values [S] were clamped at 0 S: some read exactly 0 S, none below."""
    return bool(np.any(x == 0) and not np.any(x < 0))


def _censored_moments(err, target, noise, start_spread, linear=False):
    """(bias [S], spread [S]) of a level clamped at 0 S: :func:`censored_normal` of its
    values x = ``err + target`` [S] with read-noise variance ``noise`` [S^2], which is
    multiplicative (its variance in ln x is noise / x^2; ``linear``: relative, of
    variance noise / x^2 in x / g); the bias is the fitted mean less the level's median
    target."""
    g_t = float(np.median(target))
    x = err + target
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(x > 0, noise / np.maximum(x, 1e-300) ** 2, 0.0)
    m, s = censored_normal(x, r, start=(err.mean() + g_t, max(start_spread, err.std())),
                           linear=linear)
    return m - g_t, s


def _spread(err, noise):
    """Standard deviation of the errors ``err`` [S] less the mean read-noise variance
    ``noise`` [S^2] (0 when the noise explains it all)."""
    return np.sqrt(max(err.var(ddof=1) - noise.mean(), 0.0))


def noise_free_powers(x, r, *, linear: bool = False):
    """Per read, the terms whose means over a level are E[g] [S] and E[g^2] [S^2] of the
    conductances g behind reads ``x`` [S] with read noise of variance ``r`` [1] per read
    (array or scalar): for noise in ln g (ln x = ln g + eta, var eta = r) x e^(-r/2) and
    x^2 e^(-2r); ``linear`` (x = g (1 + eta)) x and x^2 / (1 + r). Returns ``(x1, x2)``;
    a read or a variance that is not finite, or a variance below 0, raises
    :class:`~xbarlab.errors.ConfigError`."""
    x = check_values(x, what="x (reads) [S]")
    r = check_values(r, what="r (relative read-noise variance) [1]", lo=0.0)
    if linear:
        return x, x**2 / (1.0 + r)
    return x * np.exp(-0.5 * r), x**2 * np.exp(-2.0 * r)


def _level_moments(x, target, nv, idx, with_noise, linear=False):
    """``(moments, clamped, zeros)`` for the levels whose devices are ``idx``: ``moments(i,
    ix)`` gives (bias [S], spread [S]) of level i from its devices ``ix`` (a resample);
    ``clamped``: per level, whether its values were clamped at 0 S; ``zeros``: values at
    exactly 0 S per level.

    Read noise in x is multiplicative (ln x = ln g + eta, var(eta) = r = nv / x^2): the
    moments of g are those of x with each value's noise undone, E[g] = E[x e^(-r/2)],
    E[g^2] = E[x^2 e^(-2r)] (subtracting r x^2 from the variance takes the noise from the
    noisy values themselves, too much of it where r is large). A level clamped at 0 S
    (some values exactly 0 S, none below) gets the mean and spread of the error before the
    clamp from the censored likelihood (:func:`censored_normal`; the moments of the
    clamped values put too few cells at 0 S once the model clamps them again). Without
    read noise (``with_noise`` False) the moments are the errors' mean and spread.
    ``linear``: the read noise is relative, x = g (1 + eta), var(eta) = r: E[g] = E[x],
    E[g^2] = E[x^2 / (1 + r)]."""
    e = x - target
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(x > 0, nv / np.maximum(x, 1e-300) ** 2, 0.0)
    x1, x2 = noise_free_powers(x, r, linear=linear)
    zeros = np.array([np.sum(x[ix] == 0) for ix in idx], dtype=np.float64)
    cens = [_clamped(x[ix]) for ix in idx]
    spread_all = np.array([_spread(e[ix], nv[ix]) for ix in idx])

    def moments(i, ix):
        if cens[i] and _clamped(x[ix]):
            return _censored_moments(e[ix], target[ix], nv[ix], spread_all[i], linear)
        if with_noise:
            m1 = x1[ix].mean()
            return m1 - target[ix].mean(), np.sqrt(max(x2[ix].mean() - m1 * m1, 0.0))
        return e[ix].mean(), _spread(e[ix], nv[ix])

    return moments, cens, zeros


def _beta_loglik(e, b, s, w):
    y = (e + w) / (2 * w)
    if np.any((y <= 0) | (y >= 1)):
        return -np.inf
    a, c = beta_shape(b, s, w)
    return float(np.sum(stats.beta.logpdf(y, a, c) - np.log(2 * w)))


def _family_scores(e, b, s, window, window_given):
    z = (e - b) / s
    n = z.size
    ll = {}
    params = {}
    ll["normal"] = float(np.sum(stats.norm.logpdf(z) - np.log(s)))
    # Student-t with unit variance: profile df on a grid
    best = (-np.inf, np.inf)
    for df in np.concatenate([np.linspace(2.2, 10, 40), np.geomspace(10.5, 200, 20)]):
        sc = np.sqrt((df - 2) / df)
        v = float(np.sum(stats.t.logpdf(z / sc, df) - np.log(sc * s)))
        if v > best[0]:
            best = (v, df)
    ll["student-t"] = best[0]
    params["df"] = float(best[1])
    # two-normal mixture with unit variance: grid over weight and scale ratio
    best = (-np.inf, 0.1, 2.0)
    for pw in (0.02, 0.05, 0.1, 0.2, 0.3, 0.45):
        for k in (1.5, 2, 3, 4, 6, 8):
            c = 1 / np.sqrt(1 - pw + pw * k**2)
            dens = (1 - pw) * stats.norm.pdf(z, scale=c) + pw * stats.norm.pdf(z, scale=c * k)
            v = float(np.sum(np.log(np.maximum(dens, 1e-300)) - np.log(s)))
            if v > best[0]:
                best = (v, pw, k)
    ll["mixture"] = best[0]
    params["mix_weight"], params["mix_ratio"] = float(best[1]), float(best[2])
    if np.isfinite(window):
        ll["bounded"] = _beta_loglik(e, b, s, window)
    k_extra = {"normal": 0, "student-t": 1, "mixture": 2, "bounded": 0 if window_given else 1}
    aic = {f: 2 * k_extra[f] - 2 * v for f, v in ll.items()}
    del n
    return aic, params


def fit_programming(target, x, *, min_devices: int, rng: np.random.Generator, n_boot: int = 200,
                    family: str = "auto", window: float | None = None,
                    grid: np.ndarray | None = None, noise_var: np.ndarray | None = None,
                    labels: np.ndarray | None = None, noise_law="log"):
    """Fit a :class:`FittedProgramming` from per-device targets and programmed values [S].

    ``labels``: level label per device (the level column); without it the levels are
    the distinct targets, binned in quantiles when they are continuous.
    ``noise_var``: per-device variance of read noise contained in ``x`` [S^2], taken as
    multiplicative (its variance in ln x is noise_var / x^2) and undone value by value in
    each level's moments (deconvolution; :func:`_level_moments`); ``noise_law``: a
    :class:`~xbarlab.devices.blocks.ReadNoiseLaw`, "log" (that) or "linear" (the noise is
    relative, x = g (1 + eta), variance noise_var / x^2 of eta). A level whose values
    were clamped at 0 S is fitted by the censored likelihood of :func:`censored_normal`.
    Returns ``(block, info, skipped)``
    where ``skipped`` lists ``(target [S], devices)`` of levels with fewer than
    ``min_devices`` devices; the block is None when no level remains.
    """
    x = np.asarray(x, dtype=np.float64)
    uniq = np.unique(target)
    if labels is not None:
        lab = np.unique(labels, return_inverse=True)[1]
    elif uniq.size > 64 and uniq.size > target.size / 3:  # continuous targets: bin them
        edges = np.unique(np.quantile(target, np.linspace(0, 1, 17)))
        lab = np.clip(np.searchsorted(edges, target, side="right") - 1, 0, edges.size - 2)
    else:
        lab = np.searchsorted(uniq, target)
    levels = np.unique(lab)
    keep, skipped = [], []
    for L in levels:
        m = lab == L
        (keep if m.sum() >= min_devices else skipped).append(L)
    skipped_list = [(float(np.median(target[lab == L])), int(np.sum(lab == L))) for L in skipped]
    if not keep:
        return None, ProgrammingInfo(), skipped_list
    gk = np.array([np.median(target[lab == L]) for L in keep])
    e = x - target
    nv = np.zeros_like(e) if noise_var is None else np.asarray(noise_var, dtype=np.float64)

    idx = [np.nonzero(lab == L)[0] for L in keep]
    linear = coerce_enum(ReadNoiseLaw, noise_law, "noise_law") is ReadNoiseLaw.LINEAR
    moments, cens, zeros = _level_moments(x, target, nv, idx, noise_var is not None, linear)
    bias, spread = (np.array(v) for v in zip(*[moments(i, ix) for i, ix in enumerate(idx)],
                                             strict=True))
    n = np.array([ix.size for ix in idx], dtype=np.float64)
    # precision of a level's estimates: its devices over the variance of its errors as
    # measured (read noise included), never the deconvolved spread, which can be 0 where
    # the read noise accounts for all of it and would then outweigh every other level
    raw = np.array([_spread(e[ix], np.zeros(1)) for ix in idx])
    w = n / np.maximum(raw, 1e-30) ** 2
    s_bias = smooth_cv(gk, bias, w)
    s_spread = smooth_cv(gk, spread, w)
    if grid is None:
        grid = np.unique(np.concatenate([gk, np.linspace(gk.min(), gk.max(), 64)]))
    bias_g = s_bias(grid)
    spread_g = np.maximum(s_spread(grid), 1e-30)
    # bootstrap: resample devices within each level, refit the same smooth
    bb = np.zeros((n_boot, grid.size))
    bs = np.zeros((n_boot, grid.size))
    bs_level = np.zeros((n_boot, len(keep)))
    for b in range(n_boot):
        mb = np.empty(len(keep))
        sb = np.empty(len(keep))
        for i, ix in enumerate(idx):
            pk = ix[rng.integers(0, ix.size, ix.size)]
            mb[i], sb[i] = moments(i, pk)
        bs_level[b] = sb
        bb[b] = s_bias(grid, mb)
        bs[b] = np.maximum(s_spread(grid, sb), 1e-30)
    sel = np.isin(lab, keep)
    ee, tt = e[sel], target[sel]
    b_dev = s_bias(tt)
    # the errors still hold the read noise that the spread curve was deconvolved from
    s_dev = np.sqrt(np.maximum(s_spread(tt), 1e-30) ** 2 + nv[sel])
    window_given = window is not None
    if window is None:
        r = np.abs(ee)
        # unbiased estimate of a uniform endpoint from the largest of n errors
        window = float(r.max() * (1 + 1 / r.size))
    # with read noise deconvolved, the family (the shape) is judged on the levels where
    # programming error makes a quarter or more of the measured variance and the smoothed
    # spread follows the level's own (elsewhere the per-device scale can be ~0 and any
    # error there decides the family); without, on every level
    # values at the clamp (0 S) of a censored level carry no shape
    shape = ~np.isin(lab[sel], [L for L, c in zip(keep, cens, strict=True) if c]) | (x[sel] > 0)
    if np.any(nv > 0):
        sm = s_spread(gk)
        prog = [L for L, sp, rw, m in zip(keep, spread, raw, sm, strict=True)
                if sp ** 2 >= 0.25 * rw ** 2 and m >= 0.5 * sp]
        if prog:
            shape &= np.isin(lab[sel], prog)
    aic, params = _family_scores(ee[shape], b_dev[shape], s_dev[shape], window, window_given)
    if family == "auto":
        fam = min(aic, key=aic.get)
    else:
        fam = coerce_enum(Family, family, "family").value
    fam_e = Family(fam)
    block = FittedProgramming(
        bias=FittedCurve(grid, bias_g, "S", bb), spread=FittedCurve(grid, spread_g, "S", bs),
        family=fam_e,
        df=params["df"] if fam_e is Family.STUDENT_T else np.inf,
        window=window if fam_e is Family.BOUNDED else np.nan,
        mix_weight=params["mix_weight"] if fam_e is Family.MIXTURE else 0.0,
        mix_ratio=params["mix_ratio"] if fam_e is Family.MIXTURE else 1.0)
    info = ProgrammingInfo(levels_g=gk, bias=bias, spread=spread, n=n,
                           bias_choice=s_bias.choice, spread_choice=s_spread.choice,
                           bias_cv=s_bias.cv, spread_cv=s_spread.cv, family=fam, aic=aic,
                           family_params=params, window=window,
                           window_estimated=not window_given, boot_spread_level=bs_level,
                           zeros=zeros, censored=np.array(cens, dtype=bool))
    return block, info, skipped_list


def excess_kurtosis(x) -> float:
    """Sample excess kurtosis [1]."""
    x = np.asarray(x, dtype=np.float64)
    return float(stats.kurtosis(x))

