"""CompositeDevice: trajectories, the fused sample, files, composition, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from xbarlab.devices import load
from xbarlab.devices.blocks import (
    ErrorDistribution,
    PowerLawDrift,
    ProgrammingError,
    ReadNoise,
    Relaxation,
    TimeSurface,
)
from xbarlab.devices.composite import CompositeDevice, compose
from xbarlab.devices.curves import LogLinear, Piecewise, Polynomial, PowerLaw, Table, constant
from xbarlab.errors import ConfigError
from xbarlab.formats import Quantity

N = 200_000
KS_MAX = 0.01
US = 1e-6
PRESETS = ["pcm-ibm-2020", "pcm-hermes-2023", "rram-neurram-2022", "rram-cmo-hfox-2024"]

# ------------------------------------------------------------------ trajectories


def test_pcm_trajectory_keeps_state_and_1f_path():
    """pcm-ibm-2020, 2e5 cells at 12.5 uS read at t = 10 s, 10 s + 1 us, 1 h, 1 day, 1 year
    in one call: drift() equals g_prog ((t + 20)/20)^-nu with the state's g_prog and nu
    (rel. 1e-12); reads 1 us apart differ by < 1e-4 relative; the 1/f path W(u) =
    (read/g_d - 1)/Q_s has Var W(u_1) = u_1 and increments over disjoint intervals with
    variance u_j - u_(j-1) (+-3 %) and correlation |rho| < 0.015; a separate call at 10 s
    gives the same 1/f value as the first time of the joint call."""
    model = load("pcm-ibm-2020")
    g = np.full(N, 12.5 * US)
    state = model.program(g, np.random.default_rng(21))
    nu, gp = state.fields["nu"], state.g_prog
    times = np.array([3600.0, 10.0, 10.0 + 1e-6, 86400.0, 3.15e7])  # unsorted on purpose
    gd = model.drift(state, times)
    expect = gp[None, :] * ((times[:, None] + 20.0) / 20.0) ** (-nu[None, :])
    np.testing.assert_allclose(gd, expect, rtol=1e-12)
    r = model.read(state, times, np.random.default_rng(22))
    ok = np.all(r > 0, axis=0)
    qs = np.minimum(0.0088 / np.maximum(gp / 25e-6, 1e-3) ** 0.65, 0.2)
    W = (r[:, ok] / gd[:, ok] - 1.0) / qs[ok]
    u = np.log((times + 20.0 + 250e-9) / (2 * 250e-9))
    assert np.max(np.abs(r[2] - r[1]) / r[1]) < 1e-4
    order = [1, 2, 0, 3, 4]
    assert abs(W[1].var() / u[1] - 1) < 0.03
    inc = [W[order[k + 1]] - W[order[k]] for k in range(1, 4)]
    du = [u[order[k + 1]] - u[order[k]] for k in range(1, 4)]
    for d, v in zip(inc, du, strict=True):
        assert abs(d.var() / v - 1) < 0.03
    assert abs(np.corrcoef(inc[0], inc[1])[0, 1]) < 0.015
    assert abs(np.corrcoef(inc[1], inc[2])[0, 1]) < 0.015
    assert abs(np.corrcoef(W[1], inc[1])[0, 1]) < 0.015
    r1 = model.read(state, 10.0, np.random.default_rng(99))
    np.testing.assert_array_equal(r1, r[1])


def test_cmo_relaxation_increments():
    """rram-cmo-hfox-2024 without read noise (drift()): g(t2) - g(t1) has mean
    -0.0890 ln(t2/t1) uS and variance s(t2)^2 - s(t1)^2 (s = 0.0420 ln t + 0.4118 uS),
    both within 3 % / 5 standard errors, for t1 = 10 s, t2 = 1 day."""
    model = load("rram-cmo-hfox-2024")
    st = model.program(np.full(N, 50 * US), np.random.default_rng(8))
    g = model.drift(st, [10.0, 86400.0])
    d = (g[1] - g[0]) / US

    def s(t):
        return 0.0420 * math.log(t) + 0.4118

    var = s(86400.0) ** 2 - s(10.0) ** 2
    assert abs(d.mean() + 0.0890 * math.log(8640.0)) < 5 * math.sqrt(var / N)
    assert abs(d.var() / var - 1) < 0.03


@pytest.mark.parametrize("fused", [False, True])
def test_fused_sample_equals_program_then_read(fused, monkeypatch):
    """sample(g, t, rng) is bit-identical to read(program(g, rng), t, rng) for every preset
    (same generator state), for scalar t and for several times, float64 and float32; with
    ``fused`` through the fused kernel that large arrays take (its first compile, about 11 s of
    CPU, is paid here so that the path every large sample takes is checked in every run)."""
    from xbarlab.devices import composite

    if fused:
        monkeypatch.setattr(composite, "FUSED_MIN_CELLS", 1)
    for name in PRESETS:
        m = load(name)
        g = np.linspace(*_interior(m), 1001).reshape(7, 143)
        for t in (3600.0, np.array([7200.0, 1.0, 86400.0])):
            a = m.sample(g, t, np.random.default_rng(5))
            rng = np.random.default_rng(5)
            b = m.read(m.program(g, rng), t, rng)
            np.testing.assert_array_equal(a, b)
            assert a.shape == np.shape(t) + g.shape
            a32 = m.sample(g, t, np.random.default_rng(5), dtype=np.float32)
            assert a32.dtype == np.float32
            np.testing.assert_array_equal(a32, b.astype(np.float32))




def _interior(m):
    lo, hi = m.g_range
    return lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo)


def test_same_seed_same_bits_other_seed_other_bits():
    """Two generators with seed 1 give identical samples; seed 2 differs in > 99 % of cells."""
    m = load("pcm-ibm-2020")
    g = np.full(10_000, 10e-6)
    a = m.sample(g, 60.0, np.random.default_rng(1))
    b = m.sample(g, 60.0, np.random.default_rng(1))
    c = m.sample(g, 60.0, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert np.mean(a != c) > 0.99



# ------------------------------------------------------------------ files and composition


def _zoo():
    """Composite models covering every block, curve kind and family."""
    tab = Table(g=[1e-6, 10e-6, 50e-6], y=[0.5e-6, 1.0e-6, 2.0e-6])
    relax = Relaxation(
        mean=TimeSurface(times=(1.0, 100.0, 1e4), curves=(
            Table(g=[1e-6, 50e-6], y=[0, 0]), Table(g=[1e-6, 50e-6], y=[-0.1e-6, -0.3e-6]),
            Table(g=[1e-6, 50e-6], y=[-0.2e-6, -0.6e-6]))),
        spread=TimeSurface(times=(1.0, 1e4), curves=(
            Table(g=[1e-6, 50e-6], y=[0.1e-6, 0.2e-6]),
            Table(g=[1e-6, 50e-6], y=[0.3e-6, 0.5e-6]))),
        path="independent_increments", condition_on="input")
    return [
        CompositeDevice(programming=ProgrammingError(
            spread=tab, bias=Piecewise(breaks=(20e-6,), pieces=(constant(0.1e-6), Polynomial(
                (0.0, 1e-2), units="S")), units="S"),
            distribution=ErrorDistribution(family="uniform_normal", uniform_fraction=0.8),
            levels=(1e-6, 20e-6), p_stuck_low=0.01, d2d=0.01),
            drift_law=relax, read_noise=ReadNoise(amplitude=constant(0.02e-6), scaling="absolute",
                                                  t_r=1e-6, short_term=constant(0.05e-6)),
            g_range=(1e-6, 50e-6), range_policy="edge", conditioning="initial read",
            name="zoo-relax", extras={"bootstrap": {"spread": Quantity(np.ones((3, 4)), "S"),
                                                    "n": 3}}),
        CompositeDevice(programming=ProgrammingError(
            spread=constant(1e-6), distribution=ErrorDistribution(family="mixture")),
            drift_law=PowerLawDrift(t0=1.0, nu_mean=PowerLaw(a=0.05, p=0.1, units="1"),
                                    nu_std=LogLinear(a=-0.001, b=0.01, x_scale=30e-6, x_floor=1e-9,
                                                     lo=0.005), fold=False),
            g_range=(0.0, 30e-6), out_hi=30e-6, name="zoo-pcm"),
        CompositeDevice(programming=ProgrammingError(
            spread=constant(1e-6), distribution=ErrorDistribution(family="student_t", t_dof=3.5)),
            valid_times=(1.0, 1e6), g_range=(0.0, 30e-6)),
        CompositeDevice(programming=ProgrammingError(
            spread=tab, bias=constant(0.1e-6),
            distribution=ErrorDistribution(family="bounded", window=3e-6)),
            g_range=(1e-6, 50e-6), range_policy="edge", name="zoo-bounded"),
    ]


@pytest.mark.parametrize("model", [*(pytest.param(n, id=n) for n in PRESETS)] +
                         [pytest.param(m, id=m.name or "zoo-t") for m in _zoo()])
def test_file_round_trip(model, tmp_path):
    """Every preset and composite model survives to_file -> load: equal trees, equal
    conditioning, bit-identical samples; writing again without force=True refuses."""
    from xbarlab.errors import OutputExistsError

    m = load(model) if isinstance(model, str) else model
    path = m.to_file(tmp_path / "m.h5")
    back = load(path)
    assert back == m and back.conditioning == m.conditioning
    lo, hi = _interior(m)
    t = np.array([max(m.valid_times[0], 1.0), 1000.0])
    g = np.linspace(lo, hi, 501)
    np.testing.assert_array_equal(m.sample(g, t, np.random.default_rng(0)),
                                  back.sample(g, t, np.random.default_rng(0)))
    with pytest.raises(OutputExistsError):
        m.to_file(tmp_path / "m.h5")


def test_edge_statistics_outside_fitted_range():
    """A fitted-style model (range_policy 'edge', table spread 1 uS at 10 uS, 2 uS at 50 uS)
    accepts 80 uS and 0 S: the spread there is the edge value 2 uS / 1 uS (+-2 %) and the
    mean follows the input (within 5 s.e.)."""
    m = CompositeDevice(programming=ProgrammingError(spread=Table(g=[10e-6, 50e-6],
                                                                  y=[1e-6, 2e-6])),
                        g_range=(10e-6, 50e-6), range_policy="edge", out_lo=-1.0)
    s = m.sample(np.full(N, 80e-6), 0.0, np.random.default_rng(0))
    assert abs(s.std() / 2e-6 - 1) < 0.02 and abs(s.mean() - 80e-6) < 5 * 2e-6 / math.sqrt(N)
    s0 = m.program(np.full(N, 0.0), np.random.default_rng(1)).g_prog
    # clamped at 0 S by prog_lo: compare with the half-normal of sigma 1 uS
    assert abs(np.mean(s0 == 0.0) - 0.5) < 0.01
    assert abs(np.sqrt(np.mean(s0**2)) / 1e-6 - math.sqrt(0.5)) < 0.02


def test_compose_first_read_with_programming():
    """compose(relaxation | first read, programming | target): a target of 30 uS programs with
    sigma_p = 1 uS (normal), then relaxes by m = -0.5 uS with spread 0.8 uS at t = 100 s;
    the result is N(29.5 uS, 1 + 0.64 uS^2): KS <= 0.01, and conditioning is 'target'."""
    relax = CompositeDevice(
        drift_law=Relaxation(mean=TimeSurface(times=(100.0,), curves=(constant(-0.5e-6),)),
                             spread=TimeSurface(times=(100.0,), curves=(constant(0.8e-6),)),
                             path="common_deviate", condition_on="input"),
        g_range=(0.0, 60e-6), range_policy="edge", conditioning="initial read",
        valid_times=(1.0, 1e5), name="relax")
    prog = CompositeDevice(programming=ProgrammingError(spread=constant(1e-6)),
                           g_range=(0.0, 60e-6), name="prog")
    both = compose(relax, prog)
    assert both.conditioning == "target" and both.valid_times == (1.0, 1e5)
    s = both.sample(np.full(N, 30e-6), 100.0, np.random.default_rng(0))
    sd = math.sqrt(1 + 0.64) * 1e-6
    assert stats.kstest(s, stats.norm(29.5e-6, sd).cdf).statistic <= KS_MAX
    with pytest.raises(ConfigError, match="initial read"):
        compose(prog, prog)


# ------------------------------------------------------------------ bad input


def test_bad_inputs_raise_config_error():
    """Each bad input raises ConfigError naming the value: NaN target, target above g_max,
    negative target, t < 0, t outside NeuRRAM's 1 s - 2 days and below CMO's 1 s, an
    unknown preset (listing valid names), a negative spread, g_min >= g_max, mismatched
    table lengths and surface times/curves, a bad family name, a bad preset option."""
    ibm = load("pcm-ibm-2020")
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="finite"):
        ibm.sample([1e-6, np.nan], 1.0, rng)
    with pytest.raises(ConfigError, match="outside the valid range"):
        ibm.sample([30e-6], 1.0, rng)
    with pytest.raises(ConfigError, match=">= 0"):
        ibm.sample([-1e-6], 1.0, rng)
    with pytest.raises(ConfigError, match=">= 0 s"):
        ibm.sample([1e-6], -1.0, rng)
    with pytest.raises(ConfigError, match="valid time range"):
        load("rram-neurram-2022").sample([10e-6], 3 * 86400.0, rng)
    with pytest.raises(ConfigError, match="valid time range"):
        load("rram-neurram-2022").sample([10e-6], 0.5, rng)
    with pytest.raises(ConfigError, match="valid time range"):
        load("rram-cmo-hfox-2024").sample([10e-6], 0.1, rng)
    with pytest.raises(ConfigError, match="pcm-ibm-2020"):
        load("pcm-ibm-2021")
    with pytest.raises(ConfigError, match="must be >= 0"):
        CompositeDevice(programming=ProgrammingError(spread=Polynomial((1e-6, -2e-6),
                                                                       x_scale=10e-6)),
                        g_range=(0.0, 10e-6))
    with pytest.raises(ConfigError, match="below g_max"):
        CompositeDevice(g_range=(10e-6, 10e-6))
    with pytest.raises(ConfigError, match="equal"):
        Table(g=[1e-6, 2e-6], y=[1e-6])
    with pytest.raises(ConfigError, match="one curve per time"):
        TimeSurface(times=(1.0, 2.0), curves=(constant(1e-6),))
    with pytest.raises(ConfigError, match="is not one of"):
        ErrorDistribution(family="laplace")
    with pytest.raises(ConfigError, match="acceptance_window"):
        from xbarlab.devices.presets import build
        build("rram-cmo-hfox-2024", acceptance_window="5%")
    with pytest.raises(ConfigError, match="Generator"):
        ibm.sample([1e-6], 1.0, 42)


def test_compose_warns_when_ranges_do_not_overlap():
    """A programming model over 30-60 uS composed with a relaxation fitted over 1-20 uS
    warns (CompositionWarning) naming both ranges in S; ranges that overlap (10-60 uS with
    1-20 uS) or only touch (20-60 uS) compose silently (warnings are errors here)."""
    from xbarlab.devices.composite import warn_disjoint_ranges
    from xbarlab.errors import CompositionWarning

    relax = CompositeDevice(
        drift_law=Relaxation(mean=TimeSurface(times=(100.0,), curves=(constant(-0.5e-6),)),
                             spread=TimeSurface(times=(100.0,), curves=(constant(0.8e-6),)),
                             path="common_deviate", condition_on="input"),
        g_range=(0.0, 60e-6), range_policy="edge", g_fit=(1e-6, 20e-6),
        conditioning="initial read", valid_times=(1.0, 1e5), name="relax")

    def prog(lo):
        return CompositeDevice(programming=ProgrammingError(spread=constant(1e-6)),
                               g_range=(lo, 60e-6), name="prog")

    with pytest.warns(CompositionWarning) as rec:
        compose(relax, prog(30e-6))
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "3e-05-6e-05 S" in msg and "1e-06-2e-05 S" in msg and "do not overlap" in msg
    assert rec[0].filename == __file__  # points at the caller of compose
    for lo in (10e-6, 20e-6):
        assert compose(relax, prog(lo)).conditioning == "target"
    assert warn_disjoint_ranges((0.0, math.inf), (1e-6, 2e-6)) is None
    with pytest.raises(ConfigError, match="relaxation_range"):
        warn_disjoint_ranges((0.0, 1e-6), 5e-6)
