"""Programming-error fit: per-level bias and spread, smooth in the target, a family."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from ..devices.blocks import Family, beta_shape
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
    replicates of the per-level spread (B, n_levels) [S].
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
                    labels: np.ndarray | None = None):
    """Fit a :class:`FittedProgramming` from per-device targets and programmed values [S].

    ``labels``: level label per device (the level column); without it the levels are
    the distinct targets, binned in quantiles when they are continuous.
    ``noise_var``: per-device variance of read noise contained in ``x`` [S^2], subtracted
    from each level's error variance (deconvolution). Returns ``(block, info, skipped)``
    where ``skipped`` lists ``(target [S], devices)`` of levels with fewer than
    ``min_devices`` devices; the block is None when no level remains.
    """
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
    bias = np.array([e[lab == L].mean() for L in keep])
    nv = np.zeros_like(e) if noise_var is None else np.asarray(noise_var, dtype=np.float64)

    def _spread(err, noise):
        return np.sqrt(max(err.var(ddof=1) - noise.mean(), 0.0))

    spread = np.array([_spread(e[lab == L], nv[lab == L]) for L in keep])
    n = np.array([np.sum(lab == L) for L in keep], dtype=np.float64)
    # precision of a level's estimates: its devices over the variance of its errors as
    # measured (read noise included), never the deconvolved spread, which can be 0 where
    # the read noise accounts for all of it and would then outweigh every other level
    raw = np.array([_spread(e[lab == L], np.zeros(1)) for L in keep])
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
    idx = [np.nonzero(lab == L)[0] for L in keep]
    for b in range(n_boot):
        mb = np.empty(len(keep))
        sb = np.empty(len(keep))
        for i, ix in enumerate(idx):
            pk = ix[rng.integers(0, ix.size, ix.size)]
            mb[i] = e[pk].mean()
            sb[i] = _spread(e[pk], nv[pk])
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
    shape = np.ones(ee.size, bool)
    if np.any(nv > 0):
        sm = s_spread(gk)
        prog = [L for L, sp, rw, m in zip(keep, spread, raw, sm, strict=True)
                if sp ** 2 >= 0.25 * rw ** 2 and m >= 0.5 * sp]
        if prog:
            shape = np.isin(lab[sel], prog)
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
                           window_estimated=not window_given, boot_spread_level=bs_level)
    return block, info, skipped_list


def excess_kurtosis(x) -> float:
    """Sample excess kurtosis [1]."""
    x = np.asarray(x, dtype=np.float64)
    return float(stats.kurtosis(x))

