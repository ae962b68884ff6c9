"""The Numba kernels: bits independent of the thread count, the counter-based normals."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
from scipy import stats
from xbarlab.devices import load

N = 200_000
KS_MAX = 0.01
US = 1e-6
PRESETS = ["pcm-ibm-2020", "pcm-hermes-2023", "rram-neurram-2022", "rram-cmo-hfox-2024"]

# ------------------------------------------------------------------ reproducibility

_SCRIPT = """
import hashlib, numpy as np
from xbarlab.devices import load
h = hashlib.sha256()
for name in {names!r}:
    m = load(name)
    lo, hi = m.g_range
    g = np.linspace(lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo), 100_003)
    h.update(m.sample(g, np.array([1.0, 3600.0, 86400.0]), np.random.default_rng(2024)).tobytes())
print(h.hexdigest())
"""


def test_bits_independent_of_thread_count():
    """The same seed gives the same bits with NUMBA_NUM_THREADS=1 and 2 (sha256 of the
    samples of every preset, 1e5 cells x 3 times, computed in subprocesses), and equals
    the digest computed in this process."""
    digests = []
    for n in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=n)
        out = subprocess.run([sys.executable, "-c", _SCRIPT.format(names=PRESETS)], env=env,
                             capture_output=True, text=True, check=True, timeout=600)
        digests.append(out.stdout.strip())
    h = hashlib.sha256()
    for name in PRESETS:
        m = load(name)
        lo, hi = m.g_range
        g = np.linspace(lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo), 100_003)
        h.update(m.sample(g, np.array([1.0, 3600.0, 86400.0]),
                          np.random.default_rng(2024)).tobytes())
    assert digests[0] == digests[1] == h.hexdigest()


_SCRIPT_BOUNDED = """
import hashlib, numpy as np
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
print(h.hexdigest())
"""


def test_bounded_kernel_bits_independent_of_thread_count():
    """The bounded family's Numba sampler (beta from two counter-based gamma draws with
    rejection loops) gives the same bits with NUMBA_NUM_THREADS=1 and 2: sha256 of 1e5
    composite samples (beta shapes 0.07-57 across g) and of 1e5 draws of
    ErrorDistribution.errors (shapes 0.05, clipped, to about 1000), in subprocesses."""
    digests = []
    for n in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=n)
        out = subprocess.run([sys.executable, "-c", _SCRIPT_BOUNDED], env=env,
                             capture_output=True, text=True, check=True, timeout=600)
        digests.append(out.stdout.strip())
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
