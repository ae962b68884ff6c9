"""The Numba kernels: bits independent of the thread count, the counter-based normals."""

from __future__ import annotations

import hashlib

import numpy as np
from _threads import thread_count, thread_counts_available
from scipy import stats
from xbarlab.devices import load

N = 200_000
KS_MAX = 0.01
US = 1e-6
PRESETS = ["pcm-ibm-2020", "pcm-hermes-2023", "rram-neurram-2022", "rram-cmo-hfox-2024"]

# ------------------------------------------------------------------ reproducibility

def _preset_digest() -> str:
    h = hashlib.sha256()
    for name in PRESETS:
        m = load(name)
        lo, hi = m.g_range
        g = np.linspace(lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo), 100_003)
        h.update(m.sample(g, np.array([1.0, 3600.0, 86400.0]),
                          np.random.default_rng(2024)).tobytes())
    return h.hexdigest()


def test_bits_independent_of_thread_count():
    """The same seed gives the same bits with 1 and 2 Numba threads (sha256 of the samples
    of every preset, 1e5 cells x 3 times), and the thread count is restored after."""
    import numba

    thread_counts_available((1, 2))
    before = numba.get_num_threads()
    digests = []
    for n in (1, 2):
        with thread_count(n):
            digests.append(_preset_digest())
    assert digests[0] == digests[1]
    assert numba.get_num_threads() == before


def _bounded_digest() -> str:
    from xbarlab.devices.blocks import ErrorDistribution, ProgrammingError
    from xbarlab.devices.composite import CompositeDevice
    from xbarlab.devices.curves import Table

    d = ErrorDistribution(family="bounded", window=5e-6)
    m = CompositeDevice(programming=ProgrammingError(
        spread=Table(g=[1e-6, 100e-6], y=[0.5e-6, 4.5e-6]), bias=Table(g=[1e-6, 100e-6],
        y=[-1e-6, 1e-6]), distribution=d), g_range=(0.0, 100e-6))
    g = np.linspace(1e-6, 100e-6, 100_003)
    h = hashlib.sha256()
    h.update(m.sample(g, 0.0, np.random.default_rng(2024)).tobytes())
    h.update(d.errors(np.linspace(-2e-6, 2e-6, 100_003), np.linspace(0.1e-6, 4.9e-6, 100_003),
                      np.random.default_rng(7)).tobytes())
    return h.hexdigest()


def test_bounded_kernel_bits_independent_of_thread_count():
    """The bounded family's Numba sampler (beta from two counter-based gamma draws with
    rejection loops) gives the same bits with 1 and 2 Numba threads: sha256 of 1e5
    composite samples (beta shapes 0.07-57 across g) and of 1e5 draws of
    ErrorDistribution.errors (shapes 0.05, clipped, to about 1000)."""
    thread_counts_available((1, 2))
    digests = []
    for n in (1, 2):
        with thread_count(n):
            digests.append(_bounded_digest())
    assert digests[0] == digests[1] and len(digests[0]) == 64


def test_generator_normals():
    """The counter-based normal generator: 1e6 draws have KS <= 0.002 against N(0, 1), and
    draws of two stages for the same cells are uncorrelated (|rho| < 0.005)."""
    from xbarlab.devices import kernels as K

    a = np.empty(1_000_000)
    b = np.empty(1_000_000)
    K.std_normals(np.uint64(123), 1, 0, a)
    K.std_normals(np.uint64(123), 2, 0, b)
    assert stats.kstest(a, "norm").statistic <= 0.002
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.005
