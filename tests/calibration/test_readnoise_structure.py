"""Read-noise structure of the power-law fit (calibration/readnoise.py, structure.py): the
per-device covariance algebra against closed forms, the structure chosen by held-out
likelihood, and the recovery of mu_nu, sigma_nu and the read-noise amplitude on PCM reads
generated in tests/_synthetic_pcm.py from the published equations (aihwkit's independent
reads, pcm-ibm-2020's random walk, their sum)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _synthetic_pcm import (
    level_truth,
    pcm_both_reads,
    pcm_independent_reads,
    pcm_random_walk_reads,
    population_truth,
)
from scipy.stats import multivariate_normal
from xbarlab.calibration import fit
from xbarlab.calibration.readnoise import contrast_loglik, gls_fits, share_groups
from xbarlab.devices.blocks import ReadNoiseStructure


def _case(rng, k=5):
    u = np.sort(rng.uniform(10.0, 30.0, k))
    L = np.sort(rng.uniform(0.0, 10.0, k))
    return u, L, rng.normal(size=k)


@pytest.mark.parametrize("ok", [[1, 1, 1, 1, 1], [1, 0, 1, 1, 1], [0, 1, 1, 0, 1]])
@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_contrast_loglik_is_the_density_of_the_contrasts(ok, w):
    """contrast_loglik equals scipy's multivariate-normal log density of y_k - y_first
    (mean -mu (L_k - L_first), covariance K' (s^2 L L' + a2 C(w)) K) minus sum ln g_k,
    with C(w) = (1 - w) min(u_i, u_j) + w diag(u); unusable reads leave no trace;
    to 1e-10."""
    rng = np.random.default_rng(3)
    u, L, y = _case(rng)
    ok = np.array(ok, bool)
    mu, s, a2 = 0.05, 0.02, 0.01
    cov = a2 * ((1 - w) * np.minimum.outer(u, u) + w * np.diag(u)) + s * s * np.outer(L, L)
    ix = np.nonzero(ok)[0]
    K = np.vstack([-np.ones(ix.size - 1), np.eye(ix.size - 1)])
    ref = (multivariate_normal(K.T @ (-mu * L[ix]), K.T @ cov[np.ix_(ix, ix)] @ K).logpdf(
        K.T @ y[ix]) - y[ix[1:]].sum())
    one = np.ones(1)
    ll, n = contrast_loglik(y[None], L[None], u[None], ok[None], mu=mu * one, s=s * one,
                            a2=a2 * one, w=w * one)
    assert n[0] == ix.size - 1
    assert abs(ll[0] - ref) < 1e-10


def test_kalman_products_equal_the_dense_inverse():
    """readnoise._c_products (a Kalman filter over each device's reads) equals z_i' C^-1 z_j
    and ln|C| from numpy's inverse of C = (1 - w) min(u_i, u_j) + w diag(u) over the
    usable reads, to 1e-10 relative, for reads in any order of u, shares w in [0, 1]
    (0 and 1 included) and unusable reads anywhere."""
    from xbarlab.calibration.readnoise import _c_products

    rng = np.random.default_rng(8)
    n, k, m = 40, 7, 3
    u = rng.uniform(5.0, 30.0, (n, k))
    ok = rng.random((n, k)) > 0.25
    ok[:, :2] = True
    w = np.concatenate([[0.0, 1.0], rng.uniform(0, 1, n - 2)])
    z = rng.normal(size=(n, k, m))
    prod, logdet = _c_products(u, ok, w, z)
    for d in range(n):
        ix = np.nonzero(ok[d])[0]
        uu = u[d, ix]
        c = (1 - w[d]) * np.minimum.outer(uu, uu) + w[d] * np.diag(uu)
        zz = z[d, ix]
        np.testing.assert_allclose(prod[d], zz.T @ np.linalg.solve(c, zz), rtol=1e-10,
                                   atol=1e-12)
        assert logdet[d] == pytest.approx(np.linalg.slogdet(c)[1], rel=1e-10)


@pytest.mark.parametrize("n", [300, 3000])
def test_grouped_algebra_equals_per_device(n, monkeypatch):
    """gls_fits and contrast_loglik with devices grouped by schedule, usable reads and
    covariance parameters (share_groups over (t, ok, (s, a2, w)), 12 groups) equal the
    per-device computation to 1e-9 (rounding: the products in another order), both with
    each device on its own (the Kalman filter), for groups of 25 devices on average (n =
    300, the loop forced) and 250 (n = 3000, the loop by default); mu and the
    reads differ within a group; devices equal in all but one parameter are not grouped."""
    rng = np.random.default_rng(5)
    k = 5
    t = np.where(rng.random((n, 1)) < 0.5, [[1.0, 10.0, 1e2, 1e3, 1e4]],
                 [[2.0, 20.0, 2e2, 2e3, 2e4]])
    ok = np.ones((n, k), bool)
    ok[rng.random(n) < 0.2, 2] = False
    par = np.array([[0.01, 0.02, 0.0], [0.02, 0.01, 0.5], [0.02, 0.01, 1.0]])[
        rng.integers(0, 3, n)]
    u, L = np.log(t / 2e-7), np.log1p(t / 20.0)
    y = rng.normal(size=(n, k)) - 11.0
    mu = rng.normal(0.05, 0.01, n)
    kw = dict(mu=mu, s=par[:, 0], a2=par[:, 1] ** 2, w=par[:, 2])
    share = share_groups(t, ok, par)
    assert share[0].size == 12
    from xbarlab.calibration import readnoise

    if n < readnoise._LOOP_MIN_MEAN * 12:
        monkeypatch.setattr(readnoise, "_LOOP_MIN_MEAN", 1)  # else both sides filter
    assert readnoise._group_rows(share[1], 12) is not None
    ll0, m0 = contrast_loglik(y, L, u, ok, **kw)
    ll1, m1 = contrast_loglik(y, L, u, ok, **kw, share=share)
    np.testing.assert_array_equal(m0, m1)
    np.testing.assert_allclose(ll1, ll0, rtol=1e-9, atol=1e-9)
    f0 = gls_fits(y, L, u, ok, par[:, 2])
    f1 = gls_fits(y, L, u, ok, par[:, 2], share=share_groups(t, ok, par[:, 2]))
    for key in f0:
        np.testing.assert_allclose(f1[key], f0[key], rtol=1e-9, atol=1e-9, err_msg=key)
    par2 = par.copy()
    par2[0, 2] += 1e-9
    inv2 = share_groups(t, ok, par2)[1]
    assert np.sum(inv2 == inv2[0]) == 1 < np.sum(share[1] == share[1][0])


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_gls_fits_are_generalised_least_squares(w):
    """gls_fits: beta = (X' C^-1 X)^-1 X' C^-1 y with X = [1, L] on the usable reads,
    nu = -beta_1, rss = r' C^-1 r, S = 1 / [(X' C^-1 X)^-1]_11 (numpy, to 1e-10); a
    device with 2 usable reads gives nu = NaN."""
    rng = np.random.default_rng(4)
    u, L, y = _case(rng, 6)
    ok = np.array([1, 1, 0, 1, 1, 1], bool)
    f = gls_fits(np.vstack([y, y]), np.vstack([L, L]), np.vstack([u, u]),
                 np.vstack([ok, [1, 1, 0, 0, 0, 0]]).astype(bool), np.array([w, w]))
    ix = np.nonzero(ok)[0]
    C = (1 - w) * np.minimum.outer(u, u)[np.ix_(ix, ix)] + w * np.diag(u[ix])
    X = np.stack([np.ones(ix.size), L[ix]], 1)
    Ci = np.linalg.inv(C)
    M = X.T @ Ci @ X
    beta = np.linalg.solve(M, X.T @ Ci @ y[ix])
    r = y[ix] - X @ beta
    np.testing.assert_allclose([f["nu"][0], f["rss"][0], f["S"][0]],
                               [-beta[1], r @ Ci @ r, 1 / np.linalg.inv(M)[1, 1]], rtol=1e-10)
    assert np.isnan(f["nu"][1])


def _fit(gen, per_target, seed, n_targets=6):
    table, truth = gen(np.random.default_rng(seed), n_targets=n_targets, per_target=per_target)
    model = fit(table, rng=np.random.default_rng(1), n_boot=0, drift="power-law")
    pl = model.report.power_law
    sel = pl.levels_g >= 5e-6
    return model, pl, sel, level_truth(truth, pl.levels_g)


def test_independent_reads_choose_independent_and_recover_the_amplitude():
    """aihwkit-style reads (noise drawn afresh at every read), 6 targets 0-25 uS x 60
    devices: the held-out likelihood chooses "independent" by > 0.05 per read over the
    random walk; at every target >= 5 uS the fitted amplitude is within 15 % of the
    rms Q_s(g_prog) (a random-walk fit reads it 5-6x too large), mu_nu within 5 % and
    sigma_nu within 40 % of the truth (a random-walk fit gives sigma_nu = 0)."""
    model, pl, sel, tr = _fit(pcm_independent_reads, 60, 21)
    ev = pl.read_noise_evidence
    assert pl.read_noise == "independent", ev
    assert ev["loglik"]["independent"] - ev["loglik"]["random-walk"] > 0.05
    assert model.drift_law.read_noise is ReadNoiseStructure.INDEPENDENT
    np.testing.assert_allclose(pl.q_read[sel], tr["q"][sel], rtol=0.15)
    np.testing.assert_allclose(pl.mu_nu[sel], tr["mu_nu"][sel], rtol=0.05)
    np.testing.assert_allclose(pl.sigma_nu[sel], tr["sigma_nu"][sel], rtol=0.4)


def test_random_walk_reads_choose_random_walk():
    """pcm-ibm-2020's equations (a Wiener path per cell), same sizes: "random-walk" is
    chosen by > 0.05 per read over independent reads, the amplitude within 15 % of the
    rms Q_s(g_prog) at every target >= 5 uS."""
    model, pl, sel, tr = _fit(pcm_random_walk_reads, 60, 22)
    ev = pl.read_noise_evidence
    assert pl.read_noise == "random-walk", ev
    assert ev["loglik"]["random-walk"] - ev["loglik"]["independent"] > 0.05
    assert model.drift_law.read_noise is ReadNoiseStructure.RANDOM_WALK
    np.testing.assert_allclose(pl.q_read[sel], tr["q"][sel], rtol=0.15)


def test_given_structure_is_fitted_without_a_choice():
    """read_noise_structure="independent" fits that structure and records no evidence;
    a value that is not a structure raises ConfigError listing the valid ones."""
    from xbarlab.errors import ConfigError

    table, _ = pcm_random_walk_reads(np.random.default_rng(5), n_targets=3, per_target=30)
    m = fit(table, rng=np.random.default_rng(1), n_boot=0, drift="power-law",
            read_noise_structure="independent")
    assert m.report.power_law.read_noise == "independent"
    assert m.report.power_law.read_noise_evidence == {}
    with pytest.raises(ConfigError, match="random-walk"):
        fit(table, rng=np.random.default_rng(1), read_noise_structure="white")


def _log_normal_both(rng, amplitudes, n=2000, t0=20.0):
    """Reads ln g = ln(1 uS) - 0.05 L + e, e with covariance A^2 C(1/2) (a random walk and
    independent reads of amplitude A/sqrt(2) each) in u, one level per amplitude A, at
    1 s - 1 y; (reads, groups)."""
    from types import SimpleNamespace

    from xbarlab.calibration.structure import T_R, Reads

    times = np.array([1.0, 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0, 3.15576e7])
    u = np.log((times + t0 + T_R) / (2 * T_R))
    L = np.log((times + t0) / t0)
    ys = []
    for a in amplitudes:
        walk = np.cumsum(rng.normal(size=(n, times.size)) * np.sqrt(np.diff(u, prepend=0.0)),
                         axis=1)
        e = a / np.sqrt(2) * (walk + np.sqrt(u) * rng.normal(size=(n, times.size)))
        ys.append(np.log(1e-6) - 0.05 * L + e)
    g = np.exp(np.concatenate(ys))
    pv = SimpleNamespace(g=g, t=np.full(g.shape, np.nan), tp=times)
    groups = [np.arange(k * n, (k + 1) * n) for k in range(len(amplitudes))]
    return Reads(pv, np.arange(g.shape[0])), groups, u[-1]


@pytest.mark.parametrize("amplitudes, want", [((0.01, 0.03, 0.05), [True, True, False]),
                                              ((0.05, 0.15, 0.25), [True, False, False])])
def test_shared_w_comes_from_the_levels_where_ln_g_is_near_normal(amplitudes, want):
    """structure.w_levels keeps the levels whose read-noise std at the last read, A
    sqrt(u(1 y)) (0.056, 0.17, 0.28 for A = 0.01, 0.03, 0.05), is <= W_LEVELS_BELOW = 0.2,
    and when none is, the quarter (here one) with the smallest; pick_w with those levels
    equals pick_w on them alone, and gives w within 0.2 of the generator's 1/2 (about two
    standard errors at 2,000 devices a level: w is weakly identified, the restricted
    likelihood's curvature a few nats over w = 0.3-1)."""
    from xbarlab.calibration import structure

    reads, groups, u_last = _log_normal_both(np.random.default_rng(8), amplitudes)
    assert [a * np.sqrt(u_last) <= structure.W_LEVELS_BELOW for a in amplitudes] == (
        want if want[1] else [False] * 3)
    fits_w = structure.w_fits(reads, 20.0)
    use = structure.w_levels(fits_w, reads, 20.0, groups)
    assert use.tolist() == want
    w = structure.pick_w(fits_w, groups, True, use)
    alone = structure.pick_w(fits_w, [g for g, k in zip(groups, use, strict=True) if k], True)
    np.testing.assert_allclose(w, alone[0], rtol=0, atol=1e-12)
    assert abs(w[0] - 0.5) < 0.2, w[0]


def test_shared_w_refuses_a_bad_level_choice():
    """pick_w refuses a level choice that is not one boolean per level or selects none,
    and structure_fit refuses normal_levels without a shared w, in one line each."""
    from xbarlab.calibration import structure
    from xbarlab.errors import ConfigError

    reads, groups, _ = _log_normal_both(np.random.default_rng(8), (0.01, 0.03), n=50)
    fits_w = structure.w_fits(reads, 20.0)
    for bad in (np.array([True]), np.array([1, 0]), np.array([False, False])):
        with pytest.raises(ConfigError, match="one boolean per level"):
            structure.pick_w(fits_w, groups, True, bad)
    with pytest.raises(ConfigError, match="needs shared_w=True"):
        structure.structure_fit(None, np.arange(4), groups, ReadNoiseStructure.BOTH, 20.0,
                                normal_levels=True)


# ------------------------------------------------------------------ full round trips (slow)

#: Allowance for the amplitude: the generators add the read noise to g, the model to ln g;
#: where Q_s sqrt(u) <= 0.13 (targets >= 6.25 uS) the two differ by up to 3 %.
LINEAR_VS_LOG = 0.03


def _fit_half(gen, seed, n_boot=100):
    """One draw of ``gen`` (41 targets x 2000 devices), the first half of every target's
    devices fitted as a power law (structure and law chosen)."""
    table, truth = gen(np.random.default_rng(seed))
    n = truth["g_target"].size
    fit_dev = np.zeros(n, bool)
    for g in np.unique(truth["g_target"]):
        ix = np.nonzero(truth["g_target"] == g)[0]
        fit_dev[ix[: ix.size // 2]] = True
    rows = fit_dev[table["device"]]
    half = {k: v[rows] for k, v in table.items()}
    return fit(half, rng=np.random.default_rng(3), n_boot=n_boot, drift="power-law")


def _curves(model, structure):
    """(name, curve, the generator's values, rtol, band allowance) at the fitted levels
    >= 2.4 uS, and those levels [S]."""
    pl, d = model.report.power_law, model.drift_law
    g = pl.levels_g[pl.levels_g >= 2.4e-6]
    tr = population_truth(g)
    out = [("mu_nu", d.mu_nu, tr["mu_nu"], 0.10, 0.0),
           ("sigma_nu", d.sigma_nu, tr["sigma_nu"], 0.10, 0.0),
           ("q_read", d.q_read, tr["q"], 0.15 if structure == "both" else 0.12,
            LINEAR_VS_LOG)]
    if structure == "both":
        out.append(("q_independent", d.q_independent, tr["q"], 0.12, LINEAR_VS_LOG))
    return out, g


def _band_cover(curve, want, allow, g):
    """Share of the levels ``g`` whose value ``want`` lies inside the curve's pointwise
    95 % band, widened by ``allow``."""
    lo, hi = (np.interp(g, curve.g, edge) for edge in curve.band(0.95))
    return float(np.mean((want >= lo * (1 - allow)) & (want <= hi * (1 + allow))))


def _joint_cover(curves, g):
    """Per curve of ``curves`` (rows of :func:`_curves`, evaluated at the levels ``g``), the
    share of the levels whose value lies inside one simultaneous 95 % band of all the
    curves at all the levels (:func:`xbarlab.devices.curves.simultaneous_band` of the
    replicates, which share their resamples across the curves), each curve's edges
    widened by its allowance."""
    from xbarlab.devices.curves import simultaneous_band

    reps = np.stack([[np.interp(g, c.g, b) for b in c.boot] for _, c, *_ in curves], axis=1)
    lo, hi = simultaneous_band(reps, 0.95)
    return {name: float(np.mean((want >= lo[k] * (1 - allow)) & (want <= hi[k] * (1 + allow))))
            for k, (name, _, want, _, allow) in enumerate(curves)}


_GENERATORS = {"independent": pcm_independent_reads, "random-walk": pcm_random_walk_reads,
               "both": pcm_both_reads}


@functools.cache
def _fit_2020(structure):
    """:func:`_fit_half` of the generator of ``structure`` drawn with seed 2020 (fitted
    once per session for the two tests below)."""
    return _fit_half(_GENERATORS[structure], 2020)


@pytest.mark.slow
@pytest.mark.parametrize("structure", list(_GENERATORS))
def test_round_trip_41_targets(structure):
    """41 targets 0-25 uS x 2000 devices, reads at 1 s - 1 y; the fit sees half of the
    devices of every target (the other half held out), 100 bootstrap replicates. The
    generating structure is chosen and t0 is within 10 % of 20 s. The truth: the
    generator's folded-normal exponent mean and std per target, and the rms Q_s(g_prog)
    over its programming error (under "both" each part has amplitude Q_s); the fitted
    curves pool the levels, so they estimate these rather than the values of the devices
    drawn. At every target >= 2.5 uS it lies inside one simultaneous 95 % bootstrap
    band of mu_nu, sigma_nu and the amplitudes together (the band that holds all of them
    at all those targets with probability 0.95), the amplitudes' edges widened by
    :data:`LINEAR_VS_LOG`. The pointwise bands are checked in the test below."""
    model = _fit_2020(structure)
    pl = model.report.power_law
    assert pl.read_noise == structure, pl.read_noise_evidence
    assert abs(model.drift_law.t0 / 20.0 - 1) < 0.1
    curves, g = _curves(model, structure)
    joint = _joint_cover(curves, g)
    print(structure, "share of the targets inside the simultaneous band", joint)
    assert min(joint.values()) == 1.0, joint


@pytest.mark.slow
@pytest.mark.parametrize("structure", [
    "independent", "random-walk",
    pytest.param("both", marks=pytest.mark.xfail(strict=True, reason=(
        "mu_nu's pointwise band holds the generator's value at 26 of 31 targets >= 6.25 uS "
        "(0.84): above 12 uS the fitted devices' own mean exponent is 0.2 % below the "
        "generator's (1.7 standard errors of 20,000 devices), the pooled curve follows "
        "them (-0.26 %) and its band ends 0.0-0.1 % below the generator's value; over ten "
        "draws the bands hold in 8 (test_set_iv_bands_over_draws); and sigma_nu at "
        "3.75 uS is 10.4 % above the generator's 0.0178")))])
def test_round_trip_41_targets_pointwise(structure):
    """The fits of the test above: at >= 90 % of the targets >= 6.25 uS the generator's
    value lies inside the pointwise 95 % bootstrap bands of mu_nu and sigma_nu, and
    inside the amplitudes' bands widened by :data:`LINEAR_VS_LOG`; at every target
    >= 2.5 uS mu_nu and sigma_nu are within 10 %, the amplitudes within 12 % (the random
    walk's part of "both": 15 %, it trades against the exponent spread). Where Q_s sqrt(u)
    reaches 0.2, at 2.5-5 uS, the amplitudes read 3-9 % high, the difference between
    noise on g and on ln g; under "both" (twice the variance) up to 20 % at 2.5-3.1 uS,
    so there the amplitudes are checked from 5 uS. Every shortfall is listed."""
    curves, g = _curves(_fit_2020(structure), structure)
    band = g >= 6.2e-6
    cover = {name: _band_cover(c, want[band], allow, g[band])
             for name, c, want, _, allow in curves}
    far = {}
    for name, curve, want, rtol, allow in curves:
        near = g >= (4.9e-6 if structure == "both" and allow else 0.0)
        rel = curve(g[near]) / want[near] - 1
        if np.any(np.abs(rel) > rtol):
            far[name] = {f"{x * 1e6:.4g} uS": round(float(r), 4)
                         for x, r in zip(g[near], rel, strict=True) if abs(r) > rtol}
    print(structure, "share of the targets inside the pointwise bands", cover,
          "beyond the tolerance", far)
    assert min(cover.values()) >= 0.9 and not far, (cover, far)


@pytest.mark.slow
@pytest.mark.parametrize("below", [0.2, np.inf], ids=["normal-levels", "every-level"])
def test_set_iv_bands_over_draws(below, monkeypatch):
    """Set (iv) (both read noises, each of amplitude Q_s) drawn with seeds 2020-2029 and
    fitted as in :func:`test_round_trip_41_targets`: "both" is chosen in >= 9 of the 10
    draws, and in >= 8 of those the 95 % bands of all four curves hold the generator's
    values at >= 90 % of the targets >= 6.25 uS. Measured: "both" chosen in 9 (seed
    2027: gain 0.8 standard errors, below the 2 it needs), w 0.49-0.54, the bands holding
    in 8 (seed 2020: mu_nu at 26 of 31 targets). Bands that cover as they claim would
    hold here about 0.8-0.95 of the time: a pooled curve's levels miss together, so each
    curve is close to one 95 % check. With the shared independent share w fitted on every
    level, the lowest ones too (where ln g is far from normal; w 0.51-0.61 against a truth
    of 0.5), the bands held in 6 of 9 (seed 2022: the random walk's amplitude at 0 of 31
    targets, 18 % low; sigma_nu at 0.71 and 0.87 of them in two more). That case
    is rerun here with W_LEVELS_BELOW = inf ("every-level"), which must fall short of the
    bar (< 8). The simultaneous band of all four curves at every target >= 2.5 uS holds
    the generator's values in >= 8 of the draws where "both" is chosen (measured: 9 of 9),
    but it cannot tell the two cases apart: it holds in 9 of 9 with w fitted on every level
    too, seed 2022's 18 % low amplitude included: a shift common to every level, outside
    each pointwise band but inside the wider margin a band of 4 x 37 values needs. Each
    draw's w and
    shares are printed with -s."""
    from xbarlab.calibration import structure

    monkeypatch.setattr(structure, "W_LEVELS_BELOW", below)
    chosen, held, held_joint = 0, 0, 0
    for seed in range(2020, 2030):
        model = _fit_half(pcm_both_reads, seed)
        pl = model.report.power_law
        if pl.read_noise != "both":
            print(seed, pl.read_noise, pl.read_noise_evidence)
            continue
        chosen += 1
        curves, g = _curves(model, "both")
        band = g >= 6.2e-6
        cover = {name: _band_cover(c, want[band], allow, g[band])
                 for name, c, want, _, allow in curves}
        joint = _joint_cover(curves, g)
        print(seed, "w", np.round(pl.w_independent[:1], 3),
              {k: round(v, 2) for k, v in cover.items()}, "simultaneous",
              {k: round(v, 2) for k, v in joint.items()})
        held_joint += min(joint.values()) == 1.0
        held += min(cover.values()) >= 0.9
    print(below, "chosen", chosen, "held", held, "simultaneous band held", held_joint)
    assert chosen >= 9, chosen
    assert held >= 8 if below == 0.2 else held < 8, (below, held)
    assert held_joint >= 8, held_joint
