"""Round trips of the whole fit on four synthetic sets written from published equations
(not from xbarlab's samplers), 41 levels x 2000 devices, six read times 1 s - 1 y:

- (i) aihwkit-style PCM, read noise drawn afresh at every read (tests/_synthetic_pcm.py);
- (ii) pcm-ibm-2020's equations, read noise a random walk in u = ln((t + t0 + t_r)/(2 t_r));
- (iii) RRAM-like relaxation toward the level centre whose change depends on the first read
  (tests/_synthetic_rram.py; first read at 0 s, then the six times);
- (iv) the read noises of (i) and (ii) summed.

Half of the devices of every level are fitted, the other half held out and scored with
20 model samples per device. The sampling floor is the generating model's own KS at the
same sample sizes: the held-out reads against 20 fresh draws per device from the generator
(given the device's target, or for (iii) its first read), computed here. Both medians are
expectations over those draws, each averaged over :data:`N_SCORINGS` independent draws of
20 samples per device: with one draw the ratio of the two medians moves by 0.02-0.05
between seeds, as much as a model's distance from the bar. Fits on all times
and fits on reads up to 1 d (scored at the later times) are checked against it and against
persistence (each level's change at 1 d carried forward), and for the PCM sets the
bootstrap bands of mu_nu, sigma_nu and the read-noise amplitude against the truth.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _synthetic_pcm import (
    TIMES,
    pcm_both_reads,
    pcm_independent_reads,
    pcm_random_walk_reads,
    population_truth,
    prog_std,
    sigma_nu,
)
from _synthetic_rram import relaxation_toward_centre
from xbarlab.calibration import baseline_tables, fit, ks_table
from xbarlab.calibration.goodness import ks_distance
from xbarlab.devices.curves import simultaneous_band

DAY = 86400.0
#: Allowed ratio of the model's median KS over levels to the generating model's [1].
RATIO = 1.15
N_SAMPLES = 20
#: Independent draws of N_SAMPLES per device over which each median KS is averaged.
N_SCORINGS = 5
PER_LEVEL = 2000
#: Level centres of set (iii) [S] and the generator's other settings (its defaults).
RRAM_CENTRES = np.linspace(5e-6, 45e-6, 41)
RRAM_WINDOW, RRAM_TAU, RRAM_BETA, RRAM_SN, RRAM_TN = 1.0e-6, 100.0, 0.5, 0.3e-6, 1.0
#: Allowance of the amplitude bands: the generators add the read noise to g, the model to
#: ln g; where Q_s sqrt(u) <= 0.13 (targets >= 6.25 uS) the two differ by up to 3 %.
LINEAR_VS_LOG = 0.03

#: Set -> (generator, its read-noise structure, seed of its data).
PCM = {"i": (pcm_independent_reads, "independent", 2021),
       "ii": (pcm_random_walk_reads, "random-walk", 2022),
       "iv": (pcm_both_reads, "both", 2024)}


def _rram_given_first_read(g1, level, times, rng):
    """(T, n) reads of generator (iii) for cells of first read ``g1`` [S] at ``times`` [s]:
    g(t) = g1 + (g_c - g1)(1 - exp(-(t/tau)^beta)) + s_n sqrt(ln(1 + t/t_n)) Z, clamped at 0."""
    gc = RRAM_CENTRES[level]
    z = rng.standard_normal(g1.size)
    frac = 1.0 - np.exp(-((times / RRAM_TAU) ** RRAM_BETA))
    g = (g1[None, :] + (gc - g1)[None, :] * frac[:, None]
         + RRAM_SN * np.sqrt(np.log1p(times / RRAM_TN))[:, None] * z[None, :])
    return np.maximum(g, 0.0)


def _split(table, n_dev, level_of_device):
    """(fitted half, held-out half) of a role -> array table: the first half of every
    level's devices is fitted."""
    fit_dev = np.zeros(n_dev, bool)
    for v in np.unique(level_of_device):
        ix = np.nonzero(level_of_device == v)[0]
        fit_dev[ix[: ix.size // 2]] = True
    rows = fit_dev[table["device"]]
    return ({k: v[rows] for k, v in table.items()}, {k: v[~rows] for k, v in table.items()},
            fit_dev)


def _pcm_floor(gen, held, rng):
    """(41, 6) KS of the held-out reads against N_SAMPLES fresh generator draws per held-out
    device of the same target, per (target, time)."""
    per = int(np.sum(held["time"] == TIMES[0]) // 41)
    fresh, _ = gen(rng, per_target=N_SAMPLES * per)
    # the generator's table is time-major, devices in target order
    fresh_g = fresh["g"].reshape(TIMES.size, 41, N_SAMPLES * per)
    out = np.full((41, TIMES.size), np.nan)
    targets = np.unique(held["g_target"])
    for i, g in enumerate(targets):
        m = held["g_target"] == g
        for j, t in enumerate(TIMES):
            out[i, j] = ks_distance(held["g"][m & (held["time"] == t)], fresh_g[j, i])
    return out


def _rram_floor(held, rng):
    """(41, 6) KS of the held-out reads against N_SAMPLES generator draws per held-out
    device given its first read, per (level, time > 0)."""
    out = np.full((41, TIMES.size), np.nan)
    first = held["time"] == 0.0
    for i in range(41):
        m0 = first & (held["level"] == i)
        g1 = np.repeat(held["g"][m0], N_SAMPLES)
        draws = _rram_given_first_read(g1, np.full(g1.size, i), TIMES, rng)
        for j, t in enumerate(TIMES):
            a = held["g"][(held["level"] == i) & (held["time"] == t)]
            out[i, j] = ks_distance(a, draws[j])
    return out


def _early(table, t_max):
    return {k: v[table["time"] <= t_max] for k, v in table.items()}


@functools.cache
def _case(name, seed=None, n_boot=100, drift="power-law"):
    """Data, split, floor and both fits of set ``name`` (computed once per session);
    ``seed``: of a PCM set's data (None: the set's own, :data:`PCM`); ``n_boot``: the
    PCM fit on all times' bootstrap replicates; ``drift``: the PCM fits' drift law."""
    if name == "iii":
        times = np.concatenate([[0.0], TIMES])
        table = relaxation_toward_centre(RRAM_CENTRES, PER_LEVEL, times,
                                         np.random.default_rng(33), window=RRAM_WINDOW,
                                         tau=RRAM_TAU, beta=RRAM_BETA, s_n=RRAM_SN,
                                         t_n=RRAM_TN)
        level = table["level"][table["time"] == 0.0]
        fit_half, held, _ = _split(table, level.size, level)
        floor = np.array([_rram_floor(held, np.random.default_rng(34 + k))
                          for k in range(N_SCORINGS)])
        kw = {"drift": "relaxation", "n_boot": 5}
        truth = None
    else:
        gen, _, own = PCM[name]
        table, truth_all = gen(np.random.default_rng(own if seed is None else seed),
                               per_target=PER_LEVEL)
        fit_half, held, fit_dev = _split(table, truth_all["g_target"].size,
                                         truth_all["g_target"])
        floor = np.array([_pcm_floor(gen, held, np.random.default_rng(34 + k))
                          for k in range(N_SCORINGS)])
        truth = {k: (v if k == "u" else v[fit_dev]) for k, v in truth_all.items()}
        kw = {"drift": drift, "n_boot": n_boot}
    model = fit(fit_half, rng=np.random.default_rng(3), **kw)
    early_half = _early(fit_half, DAY)
    early = fit(early_half, rng=np.random.default_rng(3), **dict(kw, n_boot=5))
    return {"fit_half": fit_half, "early_half": early_half, "held": held, "floor": floor,
            "model": model, "early": early, "truth": truth}


def _medians(model, held, floor, times):
    """Per time: (model's median KS over levels, generating model's median KS over the
    same levels), each the mean over N_SCORINGS draws of N_SAMPLES per device; ``floor``:
    (N_SCORINGS, levels, times) KS of the generator's draws."""
    tabs = [ks_table(model, held, rng=np.random.default_rng(5 + k), n_samples=N_SAMPLES)
            for k in range(N_SCORINGS)]
    ks = np.array([tab.ks for tab in tabs])
    assert ks.shape == floor.shape
    out = {}
    for t in times:
        j = int(np.argmin(np.abs(np.log(tabs[0].t / t))))
        ok = np.all(np.isfinite(ks[:, :, j]), axis=0)
        m = np.median(ks[:, ok, j], axis=1)
        f = np.median(floor[:, ok, j], axis=1)
        out[t] = (float(m.mean()), float(f.mean()))
        mk, fk = ks[:, :, j].mean(axis=0), floor[:, :, j].mean(axis=0)
        excess = np.where(ok, mk - fk, -np.inf)
        worst = np.argsort(excess)[::-1][:3]
        print(f"  t = {t:.3g} s, ratio per draw {np.round(m / f, 3).tolist()}, largest KS - "
              "floor at", ", ".join(f"{tabs[0].level_g[i] * 1e6:.3g} uS ({mk[i]:.3f} vs "
                                    f"{fk[i]:.3f})" for i in worst))
    return out


#: Data seeds of set (i) for the spread of its ratios over draws of the data (the first is
#: the round trips' own draw).
DRAWS = (2021, 3021, 4021, 5021, 6021)


@pytest.mark.slow
def test_set_i_ratio_over_draws_of_the_data():
    """Set (i) drawn :data:`DRAWS` times, each fitted and scored as in the round trips (5
    bootstrap replicates: the point estimates do not use them): per time, the median over
    the draws of the ratio to the floor is <= 1.15 x, fitted on all times and fitted up to
    1 d (at 30 d and 1 y); each draw's ratios are printed (4 min on the 2-core box). Measured:
    medians 1.06-1.11x (all times) and 1.08x, 1.11x (up to 1 d); single draws up to 1.24x
    at 1 d and 1.19x at 30 d fitted up to 1 d: the bar holds for the typical draw."""
    ratios = {"all times": [], "up to 1 d": []}
    for seed in DRAWS:
        c = _case("i") if seed == PCM["i"][2] else _case("i", seed, 5)
        for key, model, times in (("all times", c["model"], TIMES),
                                  ("up to 1 d", c["early"], TIMES[-2:])):
            med = _medians(model, c["held"], c["floor"], times)
            ratios[key].append([a / b for a, b in med.values()])
    for key, r in ratios.items():
        r = np.array(r)
        print(f"set (i) {key}: ratio per draw (rows) and time (columns)\n{np.round(r, 3)}\n"
              f"median {np.round(np.median(r, axis=0), 3)}, range "
              f"{np.round(r.min(axis=0), 3)} - {np.round(r.max(axis=0), 3)}")
        assert np.all(np.median(r, axis=0) <= RATIO), (key, np.median(r, axis=0))


@pytest.mark.slow
def test_default_drift_choice_on_set_i_is_within_the_sampling_floor():
    """Set (i) fitted as a user would, with ``drift="auto"`` (the default of ``fit`` and
    ``xbarlab calibrate``; 5 bootstrap replicates, which the point estimates do not use):
    at every time fitted on all times, and at 30 d and 1 y fitted up to 1 d, the median KS
    over levels of the held-out half is <= 1.15 x the generating model's own. Printed with
    -s: the choices with their held-out log-likelihoods per read, and the ratios."""
    c = _case("i", n_boot=5, drift="auto")
    print("choices:", c["model"].report.drift_choice, c["model"].report.drift_loglik,
          c["early"].report.drift_choice, c["early"].report.drift_loglik)
    med = {**_medians(c["model"], c["held"], c["floor"], TIMES),
           **{("1 d", t): v for t, v in _medians(c["early"], c["held"], c["floor"],
                                                 TIMES[-2:]).items()}}
    print({str(t): (round(a, 4), round(b, 4), round(a / b, 3)) for t, (a, b) in med.items()})
    bad = {str(t): round(a / b, 3) for t, (a, b) in med.items() if a > RATIO * b}
    assert not bad, bad


def _xfail(name, reason):
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))


#: Measured: median KS over levels of the held-out half / the generating model's, per time.
#: Measured (read-noise law 'auto', linear chosen; mu_nu, sigma_nu and the amplitude
#: smoothed by monotone fits; the noisiest levels' exponents and amplitude fitted by the
#: likelihood of all of a device's reads): set (i) on all times 1.10x at 1 s, 1.14x at
#: 1 h, 1.05x at 1 d, 1.14x at 7 d, 1.09x at 30 d, 1.08x at 1 y; fitted up to 1 d, 1.10x
#: at 30 d and 1.11x at 1 y. With each level's own estimates (no pooling) set (i) was 1.25x at 7 d
#: and 1.17x at 1 y fitted up to 1 d.
ALL_TIMES = ["i", "ii", "iii", "iv"]
TO_ONE_DAY = ["i", "ii", "iii", "iv"]
PERSISTENCE = ["i", "ii", "iii", "iv"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_TIMES)
def test_fit_on_all_times_is_within_the_sampling_floor(name):
    """Fitted on every time of half the devices: at each of the six times the median KS
    over levels of the held-out half is <= 1.15 x the generating model's own median KS
    at the same sample sizes."""
    c = _case(name)
    med = _medians(c["model"], c["held"], c["floor"], TIMES)
    print(name, "all times", {f"{t:.3g}": (round(a, 4), round(b, 4)) for t, (a, b) in
                              med.items()})
    bad = {t: (a, b) for t, (a, b) in med.items() if a > RATIO * b}
    assert not bad, bad


@pytest.mark.slow
@pytest.mark.parametrize("name", TO_ONE_DAY)
def test_fit_to_one_day_is_within_the_sampling_floor_at_30_days_and_1_year(name):
    """Fitted on the reads up to 1 d of half the devices: at 30 d and 1 y the median KS
    over levels of the held-out half is <= 1.15 x the generating model's own."""
    c = _case(name)
    med = _medians(c["early"], c["held"], c["floor"], TIMES[-2:])
    print(name, "fit to 1 d", {f"{t:.3g}": (round(a, 4), round(b, 4)) for t, (a, b) in
                               med.items()})
    bad = {t: (a, b) for t, (a, b) in med.items() if a > RATIO * b}
    assert not bad, bad


@pytest.mark.slow
@pytest.mark.parametrize("name", PERSISTENCE)
def test_fit_to_one_day_is_no_worse_than_persistence(name):
    """Fitted on the reads up to 1 d of half the devices: at 7 d, 30 d and 1 y the median
    KS over levels of the held-out half is no larger than persistence's (each held-out
    cell's first read plus the change at 1 d of a fitted cell of its level)."""
    c = _case(name)
    res = {}
    for t in TIMES[TIMES > DAY * 1.01]:
        tab = ks_table(c["early"], c["held"], rng=np.random.default_rng(1), t=t)
        carry = baseline_tables(c["early_half"], c["held"], t_from=DAY,
                                rng=np.random.default_rng(1), t=t)["carry forward"]
        res[t] = (tab.median, carry.median)
    print(name, "vs persistence", {f"{t:.3g}": (round(a, 4), round(b, 4)) for t, (a, b) in
                                   res.items()})
    bad = {t: (a, b) for t, (a, b) in res.items() if a > b}
    assert not bad, bad


@pytest.mark.slow
@pytest.mark.parametrize("name", ["i", "ii", "iv"])
def test_power_law_parameters_inside_their_bootstrap_bands(name):
    """Fitted on every time of half the devices with 100 bootstrap replicates: the read-noise
    structure that generated the data is chosen, and the generator's values (the folded
    exponent's mean and std per target, the rms Q_s(g_prog) over the programming error;
    under "both" each part has amplitude Q_s) lie inside one simultaneous 95 % bootstrap
    band of mu_nu, sigma_nu and the read-noise amplitude(s) at every target 0-25 uS (the
    band that holds all of them together with probability 0.95; the amplitudes' edges
    widened by :data:`LINEAR_VS_LOG`), and inside the pointwise 95 % bands at >= 90 % of
    the targets >= 6.25 uS. The curves pool the levels
    (monotone fits), so they estimate the generator's values, not those of the 1,000
    devices drawn per level (whose own mean exponent scatters by sigma_nu/sqrt(1000)
    around them, outside the pooled bands at 30-40 % of the targets)."""
    c = _case(name)
    pl = c["model"].report.power_law
    assert pl.read_noise == PCM[name][1], pl.read_noise_evidence
    d = c["model"].drift_law
    g = pl.levels_g[pl.levels_g >= 6.2e-6]
    tr = population_truth(g)
    curves = [("mu_nu", d.mu_nu, tr["mu_nu"], 0.0), ("sigma_nu", d.sigma_nu, tr["sigma_nu"], 0.0),
              ("q_read", d.q_read, tr["q"], LINEAR_VS_LOG)]
    if name == "iv":
        curves.append(("q_independent", d.q_independent, tr["q"], LINEAR_VS_LOG))
    share, joint = {}, {}
    for label, curve, want, allow in curves:
        lo, hi = curve.band(0.95)
        lo = np.interp(g, curve.g, lo) * (1 - allow)
        hi = np.interp(g, curve.g, hi) * (1 + allow)
        share[label] = float(np.mean((want >= lo) & (want <= hi)))
    # one simultaneous band of every curve at every target, 0-25 uS (the replicates
    # share their resamples across the curves)
    g_all = pl.levels_g
    tr_all = population_truth(g_all)
    lo, hi = simultaneous_band(np.stack([[np.interp(g_all, c.g, b) for b in c.boot]
                                         for _, c, _, _ in curves], axis=1), 0.95)
    for k, (label, _, _, allow) in enumerate(curves):
        want = tr_all[{"mu_nu": "mu_nu", "sigma_nu": "sigma_nu"}.get(label, "q")]
        joint[label] = float(np.mean((want >= lo[k] * (1 - allow))
                                     & (want <= hi[k] * (1 + allow))))
    low = pl.levels_g[:2]
    tl = population_truth(low)
    print(name, "inside bands", share, "the simultaneous band", joint, "smoothing",
          pl.choices, "| lowest targets",
          np.round(low * 1e6, 4), "uS: mu_nu", np.round(d.mu_nu(low), 4), "vs",
          np.round(tl["mu_nu"], 4), "sigma_nu", np.round(d.sigma_nu(low), 4), "vs",
          np.round(tl["sigma_nu"], 4), "Q", np.round(d.q_read(low), 4), "vs",
          np.round(tl["q"], 4))
    assert all(v >= 0.9 for v in share.values()), share
    assert all(v == 1.0 for v in joint.values()), joint


@pytest.mark.slow
def test_exact_form_with_per_level_estimation_error_sits_above_the_floor():
    """Set (i)'s own equations with each target's parameters off by their standard errors
    from the 1,000 fitted devices of a level (programming mean sp/sqrt(1000), programming
    std and sigma_nu by 1/sqrt(2000) relative, mu_nu by sigma_nu/sqrt(1000), Q_s by
    1/sqrt(12000) relative; three draws of the errors), scored on set (i)'s held-out half
    as the fits are: with the errors at zero the ratio to the floor is 1 within 0.05 at
    every time (the check that this generator is set (i)'s); with them it is >= 1.1 at
    7 d averaged over the three draws (reached 1.19; 1.06-1.11 at the other times). A fit
    estimating each level on its own cannot be expected below that (it scored 1.25x); the
    1.15x bar holds at 7 d only for fits that pool the levels, as the monotone fits of
    mu_nu, sigma_nu and the amplitude across the levels do (1.14x)."""
    c = _case("i")
    held, floor = c["held"], c["floor"]
    per = int(np.sum(held["time"] == TIMES[0]) // 41)
    tg = np.unique(held["g_target"])
    sp, sig = prog_std(tg), sigma_nu(tg)
    by = [held["g_target"] == g for g in tg]
    med = {}
    for scale in (0.0, 1.0):
        ratios = []
        for r in range(3):
            z = np.random.default_rng(100 + r).standard_normal((5, 41)) * scale
            errs = {"bias": sp / np.sqrt(1000) * z[0], "spread": 1 + z[1] / np.sqrt(2000),
                    "mu": sig / np.sqrt(1000) * z[2], "sigma": 1 + z[3] / np.sqrt(2000),
                    "q": 1 + z[4] / np.sqrt(12000)}
            ks = np.zeros((N_SCORINGS, 41, TIMES.size))
            for k in range(N_SCORINGS):
                fresh, _ = pcm_independent_reads(np.random.default_rng(500 + 10 * r + k),
                                                 per_target=N_SAMPLES * per, level_errors=errs)
                fg = fresh["g"].reshape(TIMES.size, 41, N_SAMPLES * per)
                for i, m in enumerate(by):
                    for j, t in enumerate(TIMES):
                        ks[k, i, j] = ks_distance(held["g"][m & (held["time"] == t)], fg[j, i])
            ratios.append(np.median(ks, axis=1).mean(axis=0)
                          / np.median(floor, axis=1).mean(axis=0))
        med[scale] = np.mean(ratios, axis=0)
    print("exact form, ratio to the floor per time: errors 0", np.round(med[0.0], 3),
          "errors of 1,000 devices", np.round(med[1.0], 3))
    assert np.all(np.abs(med[0.0] - 1.0) < 0.05), med[0.0]
    assert med[1.0][3] >= 1.1, med[1.0]


def _corr_rows(first, change):
    """Row-wise Pearson correlation of (B, n) arrays [1]."""
    a = first - first.mean(axis=1, keepdims=True)
    b = change - change.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)


#: (level, time) cells outside the data's band a fit may show beyond the generator's own.
OVER_FLOOR = 6


def _generator_draws(name, held, times):
    """N_SAMPLES draws per held-out device from the generating model itself (the sampling
    floor of the correlation check): PCM sets (T, levels, draws) given the targets, set
    (iii) a function of a level's index returning (its first reads, (T - 1, draws) reads at
    the later times) given the held-out first reads."""
    first = held["time"] == times[0]
    if name == "iii":
        rng = np.random.default_rng(41)

        def draw(i):
            g1 = np.repeat(held["g"][first & (held["level"] == i)], N_SAMPLES)
            return g1, _rram_given_first_read(g1, np.full(g1.size, i), times[1:], rng)
        return draw
    gen, _, own = PCM[name]
    per = int(np.sum(first) // 41)
    fresh, _ = gen(np.random.default_rng(own + 900), per_target=N_SAMPLES * per)
    return fresh["g"].reshape(TIMES.size, 41, N_SAMPLES * per)


def _correlation_check(name, held, model):
    """The correlation check of set ``name``'s held-out reads against ``model`` (see the
    test below): (share of levels inside the pointwise band per later time, the fit's
    (level, time) cells outside those bands, the generator's, the number of cells checked,
    the fit's cells outside the simultaneous band, the generator's)."""
    times = np.unique(held["time"])
    by_dev = {t: held["g"][held["time"] == t] for t in times}
    level = (held["level"] if name == "iii" else held["g_target"])[held["time"] == times[0]]
    truth = _generator_draws(name, held, times)
    rng, rng_joint = np.random.default_rng(21), np.random.default_rng(22)
    share, out, truth_out, checks = {}, [], [], 0
    cells, reps = [], []
    for j, t in enumerate(times[1:], start=1):
        inside, total = 0, 0
        for i, v in enumerate(np.unique(level)):
            m = level == v
            g1, d = by_dev[times[0]][m], by_dev[t][m] - by_dev[times[0]][m]
            if g1.std() == 0 or d.std() == 0:
                continue
            pick = rng.integers(0, g1.size, (200, g1.size))
            lo, hi = np.quantile(_corr_rows(g1[pick], d[pick]), [0.005, 0.995])
            if name == "iii":
                g_in = np.repeat(g1, N_SAMPLES)
                s = model.sample(g_in, times[1:], rng, g_level=RRAM_CENTRES[int(v)])
                c_model = _corr_rows(g_in[None, :], (s[j - 1] - g_in)[None, :])[0]
                t1, tl = truth(i)
                c_truth = _corr_rows(t1[None, :], (tl[j - 1] - t1)[None, :])[0]
            else:
                s = model.sample(np.full(g1.size * N_SAMPLES, held["g_target"][
                    held["time"] == times[0]][m][0]), times, rng)
                c_model = _corr_rows(s[:1], (s[j] - s[0])[None, :])[0]
                c_truth = _corr_rows(truth[0, i][None, :],
                                     (truth[j, i] - truth[0, i])[None, :])[0]
            inside += lo <= c_model <= hi
            total += 1
            where = f"{t:.3g} s, {v * (1 if name == 'iii' else 1e6):.4g}"
            if not lo <= c_model <= hi:
                out.append(f"{where}: {c_model:.3f} vs [{lo:.3f}, {hi:.3f}]")
            if not lo <= c_truth <= hi:
                truth_out.append(f"{where}: {c_truth:.3f} vs [{lo:.3f}, {hi:.3f}]")
            cells.append((where, c_model, c_truth))
            reps.append((m, j))
        share[float(t)] = inside / total
        checks += total
    # joint replicates: one resample of each level's cells, used at every time
    picks = {}
    boot = np.empty((200, len(reps)))
    for k, (m, j) in enumerate(reps):
        key = m.tobytes()
        if key not in picks:
            picks[key] = rng_joint.integers(0, int(m.sum()), (200, int(m.sum())))
        g1 = by_dev[times[0]][m]
        d = by_dev[times[j]][m] - g1
        boot[:, k] = _corr_rows(g1[picks[key]], d[picks[key]])
    lo, hi = simultaneous_band(boot, 0.95)
    joint_out = [f"{w}: {c:.3f} vs [{a:.3f}, {b:.3f}]"
                 for (w, c, _), a, b in zip(cells, lo, hi, strict=True) if not a <= c <= b]
    joint_truth = [f"{w}: {c:.3f} vs [{a:.3f}, {b:.3f}]"
                   for (w, _, c), a, b in zip(cells, lo, hi, strict=True) if not a <= c <= b]
    return share, out, truth_out, checks, joint_out, joint_truth


@pytest.mark.slow
@pytest.mark.parametrize("name", ["i", "ii", "iii"])
def test_correlation_of_first_read_and_change_inside_the_data_band_at_every_time(name):
    """Fitted on every time of half the devices: per level, the correlation between a
    cell's first read and its change since then, in 20 model samples per held-out device
    (their targets, or for (iii) their first reads with their levels' centres as
    ``g_level``), lies inside the held-out data's simultaneous 95 % bootstrap band at
    every (level, time) cell with a spread: the band of all those cells together
    (:func:`xbarlab.devices.curves.simultaneous_band` of 200 resamples of each level's
    cells, one resample used at every time), which holds the population's correlations at
    all of them with probability 0.95. The generating model's own correlation (20 fresh
    draws per held-out device) is inside it at every cell of (i)-(iii) (printed).

    Pointwise, inside the 99 % band of each cell on its own (200 resamples each) at >= 90 %
    of the levels at every later time; the generator falls outside those at 5 of 205
    cells in (ii) (four at 8.75 uS), 1 of 205 in (i) and 3 of 246 in (iii), the fits at 6,
    4 and 2, and a fit must stay within :data:`OVER_FLOOR` cells of the generator's count
    (3 % of the checks; (ii) was at 15 before the joint fit of its noisiest levels, see
    the test below). (i) was outside the simultaneous band at 0 uS at 1 y while its
    lowest level's exponents were fitted in ln g (sigma_nu 0.058 against the generator's
    0.044, see the test below): there the model's reads decayed too slowly. The mean
    read at 1 y over that at 1 s at the lowest target is printed (measured: (i) 0.329
    against the held-out data's 0.297, (ii) 0.346 against 0.326). A pointwise band is
    centred on one draw of 1,000 cells, so a level whose cells happen to sit 2.6 standard
    errors from their population misses at several times together: "inside every
    pointwise band" is a bar the truth itself does not meet."""
    c = _case(name)
    share, out, truth_out, checks, joint, joint_truth = _correlation_check(
        name, c["held"], c["model"])
    print(name, "share of levels inside the band per time", share, f"model outside at "
          f"{len(out)} of {checks}:", out, f"generator outside at {len(truth_out)} of "
          f"{checks}:", truth_out, "| outside the simultaneous band: model", joint,
          "generator", joint_truth)
    if name != "iii":
        # the lowest target's mean read at 1 y over that at 1 s, held-out data and model
        held = c["held"]
        low = held["g_target"] == held["g_target"].min()
        s = c["model"].sample(np.full(20_000, held["g_target"].min()), TIMES[[0, -1]],
                              np.random.default_rng(6))
        print(name, "lowest target, mean at 1 y / at 1 s: data", round(float(
            held["g"][low & (held["time"] == TIMES[-1])].mean()
            / held["g"][low & (held["time"] == TIMES[0])].mean()), 3), "model",
            round(float(s[1].mean() / s[0].mean()), 3))
    assert min(share.values()) >= 0.9, share
    assert len(out) <= len(truth_out) + OVER_FLOOR, (len(out), len(truth_out))
    assert not joint_truth, joint_truth
    assert not joint, joint


@pytest.mark.slow
@pytest.mark.parametrize("name", ["i", "ii", "iv"])
def test_joint_fit_of_the_noisiest_levels_by_the_likelihood_of_the_structure(name,
                                                                             monkeypatch):
    """Sets (ii) (random-walk reads), (iv) (both) and (i) (independent reads), the same half
    fitted without bootstrap with mu_nu, sigma_nu and Q fitted together at the levels
    where Q is fitted in g (the default), and otherwise: for (ii) and (iv) without that
    joint fit (powerlaw.JOINT_BELOW_SHARE 0); for (i) by the likelihood of each read given
    the first (JOINT_BELOW_SHARE 1.01) and without a joint fit (DEVICE_ML_FROM_SHARE inf).
    At the lowest target the generator's sigma_nu is nearer the default than every other:
    each read given the first with a random walk, all of a device's reads together with
    independent reads. Prints the fits' values at the two lowest targets and, for (ii),
    the correlation checks (measured, sigma_nu at 0 uS against the generator's 0.044:
    (ii) 0.051 against 0.030 without, and 6 against 15 cells outside the data's pointwise
    bands; (iv) 0.076 against 0.087; (i) 0.043 against 0.098 and 0.058)."""
    from xbarlab.calibration import powerlaw

    gen, _, own = PCM[name]
    table, truth_all = gen(np.random.default_rng(own), per_target=PER_LEVEL)
    fit_half, held, _ = _split(table, truth_all["g_target"].size, truth_all["g_target"])
    others = ({"each-read": (1.01, 1.0), "ln-g": (1.0, np.inf)} if name == "i"
              else {"ln-g": (0.0, 1.0)})
    fits = {}
    for label, (share, device) in {"default": (1.0, 1.0), **others}.items():
        monkeypatch.setattr(powerlaw, "JOINT_BELOW_SHARE", share)
        monkeypatch.setattr(powerlaw, "DEVICE_ML_FROM_SHARE", device)
        fits[label] = fit(fit_half, rng=np.random.default_rng(3), n_boot=0,
                          drift="power-law")
    low = fits["default"].report.power_law.levels_g[:2]
    tl = population_truth(low)
    err = {}
    for label, m in fits.items():
        d = m.drift_law
        err[label] = abs(float(d.sigma_nu(low[:1])[0]) - tl["sigma_nu"][0])
        print(name, label, "lowest targets", np.round(low * 1e6, 4), "uS: mu_nu",
              np.round(d.mu_nu(low), 4), "sigma_nu", np.round(d.sigma_nu(low), 4), "Q",
              np.round(d.q_read(low), 4), "| generator", np.round(tl["mu_nu"], 4),
              np.round(tl["sigma_nu"], 4), np.round(tl["q"], 4))
        if name == "ii":
            _, out, truth_out, checks, _, _ = _correlation_check(name, held, m)
            print(f"  correlation: outside at {len(out)} of {checks} (generator "
                  f"{len(truth_out)})")
    assert all(err["default"] < v for k, v in err.items() if k != "default"), err
