"""The published presets (devices/presets.py, data/presets/*.json) reproduced.

Every distribution test compares samples with a CDF computed here, independently of
xbarlab's code, from the formulas as published, by numerical integration over the per-cell
random parameters (programmed value, drift exponent).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats
from xbarlab.devices import available_presets, load

N = 200_000
KS_MAX = 0.01
US = 1e-6
PRESETS = ["pcm-ibm-2020", "pcm-hermes-2023", "rram-neurram-2022", "rram-cmo-hfox-2024"]

PRESETS = ["pcm-ibm-2020", "pcm-hermes-2023", "rram-neurram-2022", "rram-cmo-hfox-2024"]


def ks_distance(samples: np.ndarray, cdf_grid_y: np.ndarray, cdf_grid_f: np.ndarray,
                atom_at: float | None = None) -> float:
    """sup |F_n - F| over the samples; F given on a fine grid (linear interpolation).

    With ``atom_at``, F jumps there (a clamp): F(atom-) = 0 when atom is the lower edge.
    """
    x = np.sort(samples)
    n = x.size
    vals, first = np.unique(x, return_index=True)
    right = np.r_[first[1:], n] / n          # F_n(v)
    left = first / n                         # F_n(v-)
    f = np.interp(vals, cdf_grid_y, cdf_grid_f)
    f_left = f.copy()
    if atom_at is not None:
        f_left[vals == atom_at] = 0.0
    return float(max(np.max(np.abs(f - right)), np.max(np.abs(f_left - left))))


def hermite(n=80):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return z, w / w.sum()


# ------------------------------------------------------------------ published formulas


def ibm_formulas(gT):
    x = gT / 25e-6
    xs = max(x, 1e-7)
    sp = (0.26348 + 1.9650 * x - 1.1731 * x**2) * US
    mu = min(max(-0.0155 * math.log(xs) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(xs) - 0.0059, 0.008), 0.045)

    def qs(gp):
        xp = np.maximum(np.abs(gp) / 25e-6, 1e-3)
        return np.minimum(0.0088 / xp**0.65, 0.2)

    return sp, mu, sd, qs, 20.0, 250e-9


def hermes_formulas(gT):
    gmax = 20.7e-6
    x = gT / gmax
    xs = max(x, 1e-7)
    sp = (0.16603 + 4.71806 * x - 8.48101 * x**2 + 4.68961 * x**3) * US
    mu = (min(max(-0.0387 * math.log(xs) - 0.0182, 0.072), 0.13) if x < 0.0945
          else -0.0436 * x**2 - 0.0126 * x + 0.0736)
    sd = (min(max(-0.0117 * math.log(xs) - 0.0057, 0.0091), 0.04) if x < 0.3055
          else -0.0118 * x**2 + 0.0093 * x + 0.0073)

    def qs(gp):
        xp = np.maximum(np.abs(gp) / gmax, 1e-3)
        low = np.clip(-0.0117 * np.log(xp) - 0.0069, 0.015, 0.04)
        high = 0.0069 * xp**3 - 0.0280 * xp**2 + 0.0211 * xp + 0.0123
        return np.where(xp < 0.16, low, high)

    return sp, mu, sd, qs, 300.0, 512e-9


def pcm_cdf(formulas, gT, t):
    """CDF of max(0, g_d (1 + Q_s sqrt(u) z)), g_d = max(0, g_T + sp z_p) ((t+t0)/t0)^-nu."""
    sp, mu, sd, qs, t0, tr = formulas(gT)
    zp, wp = hermite(60)
    gp = np.maximum(gT + sp * zp, 0.0)
    zn, wn = hermite(60)  # nu = |mu + sd z|: Gauss-Hermite over z (the folded normal)
    nu = np.abs(mu + sd * zn)
    u = math.log((t + t0 + tr) / (2 * tr))
    gd = gp[:, None] * ((t + t0) / t0) ** (-nu[None, :])            # (P, V)
    s = (qs(gp) * math.sqrt(u))[:, None] * gd
    w = wp[:, None] * wn[None, :]
    hi = (gT + 7 * sp) * (1 + 6 * 0.2 * 6)
    y = np.linspace(0.0, hi, 800)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (y[None, None, :] - gd[..., None]) / s[..., None]
    f = np.where(gd[..., None] > 0, special.ndtr(z), 1.0)
    return y, np.tensordot(w, f, axes=([0, 1], [0, 1]))


def neurram_sigma(x, t):
    c = {1.0: (0.348, 16.030, -43.853, 45.393, -16.815),
         86400.0: (0.701, 22.086, -50.773, 47.095, -16.458),
         172800.0: (0.782, 20.274, -43.507, 37.062, -11.934)}
    ts = sorted(c)
    sig = [sum(ck * x**k for k, ck in enumerate(c[tk])) * US for tk in ts]
    return float(np.interp(math.log(t), np.log(ts), sig))


def cmo_cdf(gT, t, window="0.2%"):
    a, b = (0.00081, 0.00107) if window == "0.2%" else (0.0112, 0.0113)
    sp = (a + b * gT / US) * US
    m = -0.0890 * math.log(t) * US
    s = (0.0420 * math.log(t) + 0.4118) * US
    zp, wp = hermite(60)
    gp = gT + sp * zp
    sr = 0.0277 * np.log10(gp / US) * math.sqrt(math.log((t + 1e-6) / 2e-6)) * US
    tot = np.sqrt(s**2 + sr**2)
    y = np.linspace(9 * US, 88.2 * US, 4000)
    f = wp @ special.ndtr((y[None, :] - (gp + m)[:, None]) / tot[:, None])
    return y, f


# ------------------------------------------------------------------ distribution tests


@pytest.mark.parametrize("name,formulas", [("pcm-ibm-2020", ibm_formulas),
                                           ("pcm-hermes-2023", hermes_formulas)])
@pytest.mark.parametrize("x", [0.2, 0.5, 0.85])
def test_pcm_presets_match_published_distribution(name, formulas, x):
    """PCM presets at targets 0.2/0.5/0.85 g_max and t = 1 s, 1 h, 1 day, 1 year: the KS
    distance between 2e5 samples and the published CDF (integrated over the programmed
    value and the folded-normal drift exponent) is <= 0.01 at every time."""
    model = load(name)
    gmax = model.g_range[1]
    gT = x * gmax
    times = np.array([1.0, 3600.0, 86400.0, 3.15e7])
    samples = model.sample(np.full(N, gT), times, np.random.default_rng(7))
    for k, t in enumerate(times):
        y, f = pcm_cdf(formulas, gT, t)
        d = ks_distance(samples[k], y, f, atom_at=0.0)
        assert d <= KS_MAX, (name, x, t, d)


def test_pcm_ibm_clamped_mass_at_zero():
    """pcm-ibm-2020 at g_T = 0.5 uS, t = 1 day: the fraction of reads clamped to exactly 0 S
    equals P(g_prog <= 0) + int_{g_prog > 0} phi(z) Phi(-1 / (Q_s(g_prog) sqrt(u))) dz
    (the sign of g_d (1 + Q_s sqrt(u) z) does not depend on nu) = 0.1036, within 5 binomial
    standard errors."""
    from scipy import integrate

    model = load("pcm-ibm-2020")
    gT, t = 0.5 * US, 86400.0
    samples = model.sample(np.full(N, gT), t, np.random.default_rng(3))
    sp, _, _, qs, t0, tr = ibm_formulas(gT)
    su = math.sqrt(math.log((t + t0 + tr) / (2 * tr)))
    z0 = -gT / sp
    kink = (1e-3 * 25e-6 - gT) / sp
    p0 = stats.norm.cdf(z0) + integrate.quad(
        lambda z: stats.norm.pdf(z) * stats.norm.cdf(-1 / (qs(gT + sp * z) * su)), z0, 12,
        points=[kink], limit=200)[0]
    frac = np.mean(samples == 0.0)
    assert p0 > 0.05  # a real test of the clamp
    assert abs(frac - p0) <= 5 * math.sqrt(p0 * (1 - p0) / N), (frac, p0)
    assert np.all(samples >= 0.0)


@pytest.mark.parametrize("x", [0.15, 0.5, 0.85])
def test_neurram_matches_published_marginals(x):
    """rram-neurram-2022: g = max(0, g_T + sigma(x, t) z) with sigma the published quartic at
    1 s, 1 day, 2 days and its ln-t interpolation at 10 h; KS <= 0.01 for 2e5 samples."""
    model = load("rram-neurram-2022")
    gT = x * 40 * US
    times = np.array([1.0, 36000.0, 86400.0, 172800.0])
    samples = model.sample(np.full(N, gT), times, np.random.default_rng(11))
    for k, t in enumerate(times):
        sig = neurram_sigma(x, t)
        y = np.linspace(0, gT + 8 * sig, 4000)
        d = ks_distance(samples[k], y, stats.norm.cdf(y, gT, sig), atom_at=0.0)
        assert d <= KS_MAX, (x, t, d)


def test_neurram_clamped_mass_at_zero():
    """rram-neurram-2022 at g_T = 0.8 uS (x = 0.02), 1 day: the mass at exactly 0 S is
    Phi(-g_T / sigma(0.02, 1 day)) within 5 binomial standard errors."""
    model = load("rram-neurram-2022")
    gT = 0.8 * US
    s = model.sample(np.full(N, gT), 86400.0, np.random.default_rng(5))
    p0 = stats.norm.cdf(-gT / neurram_sigma(0.02, 86400.0))
    assert p0 > 0.1
    assert abs(np.mean(s == 0.0) - p0) <= 5 * math.sqrt(p0 * (1 - p0) / N)


@pytest.mark.parametrize("window", ["0.2%", "2%"])
@pytest.mark.parametrize("gT_us", [20.0, 50.0, 80.0])
def test_cmo_matches_published_distribution(window, gT_us):
    """rram-cmo-hfox-2024: g = g_T + sp z_p - 0.0890 ln t + (0.0420 ln t + 0.4118) z_r +
    0.0277 log10(g_prog) sqrt(ln((t + 1us)/2us)) z_n [uS]; at t = 1 s, 1 h, 1 year the KS
    distance to that CDF (integrated over z_p) is <= 0.01 for 2e5 samples."""
    from xbarlab.devices.presets import build

    model = build("rram-cmo-hfox-2024", acceptance_window=window)
    times = np.array([1.0, 3600.0, 3.15e7])
    gT = gT_us * US
    samples = model.sample(np.full(N, gT), times, np.random.default_rng(13))
    for k, t in enumerate(times):
        y, f = cmo_cdf(gT, t, window)
        d = ks_distance(samples[k], y, f)
        assert d <= KS_MAX, (window, gT_us, t, d)


def test_available_presets_lists_all():
    """available_presets() is exactly ideal + the four published presets."""
    assert available_presets() == sorted(["ideal", *PRESETS])


def _flicker_reads(structure, n=40000):
    """Reads of a cell at 1 d and 1 y under pcm-ibm-2020's 1/f block with the given
    structure and no programming error or drift: g (1 + Q e(u)), Q = 0.01 at 10 uS."""
    from xbarlab.devices.blocks import ReadNoise
    from xbarlab.devices.composite import CompositeDevice
    from xbarlab.devices.presets import build

    rn = build("pcm-ibm-2020", read_noise=structure).read_noise
    flat = CompositeDevice(read_noise=ReadNoise(amplitude=rn.amplitude, t_r=rn.t_r, t0=rn.t0,
                                                structure=rn.structure), g_range=(0.0, 25e-6))
    g = np.full(n, 10e-6)
    times = np.array([86400.0, 365.25 * 86400.0])
    reads = flat.sample(g, times, np.random.default_rng(5))
    u = np.log((times + 20.0 + 250e-9) / (2 * 250e-9))
    return (reads / 10e-6 - 1) / (0.0088 / 0.4 ** 0.65), u


@pytest.mark.parametrize("structure", ["random-walk", "independent", "both"])
def test_pcm_ibm_read_noise_structures(structure):
    """pcm-ibm-2020's read_noise option: the relative 1/f deviation e at 1 d and 1 y has
    variance u (random walk, independent) or 2u (both) and correlation sqrt(u1/u2) = 0.90
    (random walk), 0 (independent reads, as aihwkit draws them) or sqrt(u1/u2)/2 (both);
    checked to 3 standard errors at 40000 cells (variance: 4 %; correlation: 0.015)."""
    e, u = _flicker_reads(structure)
    k = 2.0 if structure == "both" else 1.0
    np.testing.assert_allclose(e.var(axis=1), k * u, rtol=0.04)
    rho = {"random-walk": np.sqrt(u[0] / u[1]), "independent": 0.0,
           "both": 0.5 * np.sqrt(u[0] / u[1])}[structure]
    assert abs(np.corrcoef(e)[0, 1] - rho) < 0.015


def test_pcm_ibm_default_read_noise_is_the_random_walk_bit_for_bit():
    """build("pcm-ibm-2020") and read_noise="random-walk" (string or enum) sample the same
    bits as load("pcm-ibm-2020"); a value that is no structure raises ConfigError naming
    the valid ones."""
    from xbarlab.devices.blocks import ReadNoiseStructure
    from xbarlab.devices.presets import build
    from xbarlab.errors import ConfigError

    g = np.linspace(0.0, 25e-6, 101)
    t = np.array([1.0, 3600.0, 86400.0])
    ref = load("pcm-ibm-2020").sample(g, t, np.random.default_rng(3))
    for v in ("random-walk", ReadNoiseStructure.RANDOM_WALK):
        np.testing.assert_array_equal(build("pcm-ibm-2020", read_noise=v).sample(
            g, t, np.random.default_rng(3)), ref)
    with pytest.raises(ConfigError, match="independent"):
        build("pcm-ibm-2020", read_noise="white")
