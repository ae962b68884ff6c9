"""Torch sampling of the device blocks (devices/torch_sampling.py) against the Numba sampler.

Each supported block is sampled both ways from the same block objects and the two samples
must agree in law: at 10^6 cells a two-sample KS statistic <= 0.01 (slow tests; under equal
laws the statistic stays below 0.002 with probability 0.999, so 0.01 is crossed only by a
real difference in the distribution); the default suite runs the same comparisons at 10^5
cells with the bound 0.02 (equal laws: below 0.0087 with probability 0.999). Curves are
checked point by point against the Numba curve program.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import stats
from xbarlab.devices import IdealDevice, load
from xbarlab.devices.blocks import (
    ErrorDistribution,
    ProgrammingError,
    ReadNoise,
    Relaxation,
    TimeSurface,
)
from xbarlab.devices.composite import CompositeDevice
from xbarlab.devices.curves import LogLinear, Piecewise, Polynomial, PowerLaw, Table, constant
from xbarlab.devices.fitted import WhiteReadNoise
from xbarlab.devices.mapping import device_range
from xbarlab.devices.torch_sampling import (
    check_supported,
    curve_values,
    program_cells,
    programming_errors,
    read_cells,
)
from xbarlab.errors import ConfigError

N = 1_000_000
KS_MAX = 0.01
N_FAST = 100_000
KS_MAX_FAST = 0.02
SIZES = [pytest.param(N_FAST, KS_MAX_FAST, id="1e5"),
         pytest.param(N, KS_MAX, id="1e6", marks=pytest.mark.slow)]
IDENT = ProgrammingError(identity=True)


def _targets(device, n=N):
    lo, hi = device_range(device)
    return np.tile(np.linspace(lo, hi, 1000), n // 1000)


def _both(device, t, seed=0, n=N):
    """(Numba, torch) deviations read - target [S] of the same targets read at ``t`` [s]
    (deviations, not reads: the spread of the targets would hide differences in the law)."""
    g = _targets(device, n)
    ref = device.sample(g, t, np.random.default_rng(seed))
    gen = torch.Generator().manual_seed(seed)
    gt = torch.as_tensor(g)
    got = read_cells(device, program_cells(device, gt, gen), t, gen).numpy()
    return ref - g, got - g


def _ks(a, b):
    return stats.ks_2samp(a, b).statistic


def _preset_blocks(name, **kw):
    return dataclasses.replace(load(name), **kw)


CASES = {
    # one block at a time, the others off, from the presets' own block objects
    "programming pcm-ibm-2020": (lambda: _preset_blocks("pcm-ibm-2020", drift_law=None,
                                                        read_noise=None), 1.0),
    "programming pcm-hermes-2023": (lambda: _preset_blocks("pcm-hermes-2023", drift_law=None,
                                                           read_noise=None), 1.0),
    "programming rram-cmo-hfox-2024": (lambda: _preset_blocks(
        "rram-cmo-hfox-2024", drift_law=None, read_noise=None), 1.0),
    "power-law drift pcm-ibm-2020": (lambda: _preset_blocks("pcm-ibm-2020", programming=IDENT,
                                                            read_noise=None), 3.15e7),
    "power-law drift pcm-hermes-2023": (lambda: _preset_blocks(
        "pcm-hermes-2023", programming=IDENT, read_noise=None), 3600.0),
    "relaxation rram-cmo-hfox-2024": (lambda: _preset_blocks(
        "rram-cmo-hfox-2024", programming=IDENT, read_noise=None), 1e5),
    "relaxation rram-neurram-2022": (lambda: _preset_blocks(
        "rram-neurram-2022", programming=IDENT, read_noise=None), 3600.0),
    "1/f read noise pcm-ibm-2020": (lambda: _preset_blocks("pcm-ibm-2020", programming=IDENT,
                                                           drift_law=None), 3.15e7),
    "1/f read noise pcm-hermes-2023": (lambda: _preset_blocks(
        "pcm-hermes-2023", programming=IDENT, drift_law=None), 60.0),
    "1/f read noise rram-cmo-hfox-2024": (lambda: _preset_blocks(
        "rram-cmo-hfox-2024", programming=IDENT, drift_law=None), 1e4),
    # whole presets: every block chained
    "preset pcm-ibm-2020": (lambda: load("pcm-ibm-2020"), 86400.0),
    "preset rram-cmo-hfox-2024": (lambda: load("rram-cmo-hfox-2024"), 86400.0),
    "preset rram-neurram-2022": (lambda: load("rram-neurram-2022"), 86400.0),
    # blocks and options no preset uses
    "absolute 1/f and short-term noise": (lambda: CompositeDevice(
        programming=IDENT, g_range=(1e-6, 20e-6),
        read_noise=ReadNoise(amplitude=constant(0.3e-6), scaling="absolute",
                             short_term=PowerLaw(a=0.2e-6, p=0.5, x_scale=20e-6, units="S"))),
        100.0),
    "stuck-at, gain, levels, clipping": (lambda: CompositeDevice(
        programming=ProgrammingError(spread=constant(1.5e-6), d2d=0.05, p_stuck_low=0.02,
                                     p_stuck_high=0.01, g_stuck_low=0.5e-6, g_stuck_high=25e-6,
                                     levels=tuple(np.linspace(0, 20e-6, 9)), prog_lo=0.0,
                                     prog_hi=22e-6),
        g_range=(0.0, 20e-6)), 1.0),
    "relaxation with mean, conditioned on the input, edge range": (lambda: CompositeDevice(
        programming=ProgrammingError(spread=constant(1e-6)), g_range=(0.0, 40e-6),
        range_policy="edge", g_fit=(5e-6, 30e-6),
        drift_law=Relaxation(
            mean=TimeSurface((1.0, 1e4), (Table([5e-6, 30e-6], [0.0, -1e-6]),
                                          Table([5e-6, 30e-6], [-0.5e-6, -3e-6])),
                             extrapolation="linear_log_t"),
            spread=TimeSurface((1.0, 1e4), (constant(0.2e-6), Polynomial(
                (0.5e-6, 1e-6), x_scale=30e-6))), path="common_deviate",
            condition_on="input")), 3e3),
}


@pytest.mark.parametrize("n,ks_max", SIZES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_block_matches_numba_sampler(case, n, ks_max):
    """Reads of n cells (targets spread over the model's range) at one time t: the torch
    sampler's and the Numba sampler's deviations from the targets follow the same law,
    two-sample KS <= 0.01 at 10^6 cells (0.02 at 10^5)."""
    make, t = CASES[case]
    ref, got = _both(make(), t, n=n)
    assert np.all(np.isfinite(got))
    assert _ks(ref, got) <= ks_max


@pytest.mark.parametrize("dist", [
    ErrorDistribution(family="normal"),
    ErrorDistribution(family="uniform_normal", uniform_fraction=0.7),
    ErrorDistribution(family="student-t", t_dof=3.5),
    ErrorDistribution(family="mixture", mix_weight=0.2, mix_offset=2.0, mix_scale=3.0),
    ErrorDistribution(family="bounded", window=3e-6),
], ids=lambda d: d.family.value)
@pytest.mark.parametrize("n,ks_max", SIZES)
def test_programming_families_match_numba(dist, n, ks_max):
    """Programming errors of every family, bias and spread varying over the cells (bounded
    family: beta shapes both above and below 1): torch and Numba KS <= 0.01 at 10^6 (0.02
    at 10^5)."""
    bias = np.tile(np.linspace(-0.5e-6, 0.5e-6, 100), n // 100)
    spread = np.tile(np.linspace(0.3e-6, 1.5e-6, 50), n // 50)
    ref = dist.errors(bias, spread, np.random.default_rng(3))
    gen = torch.Generator().manual_seed(3)
    got = programming_errors(dist, torch.as_tensor(bias), torch.as_tensor(spread), gen).numpy()
    assert _ks(ref, got) <= ks_max


def test_normal_programming_error_moments():
    """Independent truth: normal errors with bias 1e-7 S and spread 2e-6 S have sample mean
    and std within 5 standard errors of (1e-7, 2e-6) S at 10^6 draws (float32)."""
    gen = torch.Generator().manual_seed(4)
    b = torch.full((N,), 1e-7, dtype=torch.float32)
    s = torch.full((N,), 2e-6, dtype=torch.float32)
    e = programming_errors(ErrorDistribution(), b, s, gen).double()
    assert abs(float(e.mean()) - 1e-7) < 5 * 2e-6 / math.sqrt(N)
    assert abs(float(e.std()) - 2e-6) < 5 * 2e-6 / math.sqrt(2 * N)


@pytest.mark.parametrize("curve", [
    Polynomial((1e-6, -2e-7, 3e-8), x_scale=25e-6, lo=0.0),
    LogLinear(a=0.007, b=0.05, x_scale=25e-6, x_floor=1e-3, log_base=10, hi=0.1),
    PowerLaw(a=0.02, p=-0.4, b=0.001, x_scale=20e-6, units="1"),
    Table([1e-6, 5e-6, 6e-6, 20e-6], [0.1, 0.3, -0.2, 0.5], units="1"),
    Piecewise((5e-6, 12e-6), (constant(0.01, "1"), LogLinear(a=0.01, b=0.02, x_scale=1e-5),
                              Polynomial((0.1, -0.01), x_scale=1e-5, units="1")), units="1"),
], ids=lambda c: type(c).__name__)
def test_curves_match_numba_program(curve):
    """Every curve kind at 2001 conductances from 0 to 30 uS (grid points, breaks and the
    clipped regions included): torch float64 equals the Numba curve program to 1e-12
    relative."""
    g = np.linspace(0.0, 30e-6, 2001)
    ref = curve(g)
    got = curve_values(curve, torch.as_tensor(g)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-30)


def test_ideal_device_programs_and_reads_exactly():
    """An ideal device: g_prog = g and every read = g."""
    g = torch.linspace(0, 1e-5, 11)
    st = program_cells(IdealDevice(g_max=1e-5), g, torch.Generator().manual_seed(0))
    assert torch.equal(read_cells(IdealDevice(g_max=1e-5), st, 1e6), g)


def test_unsupported_blocks_are_named():
    """Fitted blocks have no torch sampler: ConfigError naming the block."""
    m = CompositeDevice(programming=IDENT, read_noise=WhiteReadNoise(constant(1e-7)),
                        g_range=(0.0, 1e-5))
    with pytest.raises(ConfigError, match="WhiteReadNoise has no torch sampler"):
        check_supported(m)


def test_short_term_noise_needs_a_generator_and_range_is_checked():
    """Reads with short-term noise need a torch.Generator; targets outside a refusing model's
    range and times outside its valid range raise ConfigError."""
    m = CompositeDevice(programming=IDENT, g_range=(0.0, 1e-5),
                        read_noise=ReadNoise(amplitude=None, short_term=constant(1e-8)))
    st = program_cells(m, torch.full((4,), 5e-6), torch.Generator())
    with pytest.raises(ConfigError, match="torch.Generator"):
        read_cells(m, st, 1.0)
    with pytest.raises(ConfigError, match="outside the valid range"):
        program_cells(m, torch.full((4,), 2e-5), torch.Generator())
    p = load("rram-neurram-2022")
    st = program_cells(p, torch.full((4,), 5e-6), torch.Generator())
    with pytest.raises(ConfigError, match="valid time range"):
        read_cells(p, st, 1e9)
