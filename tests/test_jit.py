"""Kernels compiled at their first call, and the notice of a compile on a cold cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from xbarlab.jit import COMPILE_MESSAGE, Kernel, kernel


def _halve(x):
    return 0.5 * x


def test_kernel_compiles_its_declared_signature_at_the_first_call():
    """Nothing compiles at decoration; the first call compiles exactly the declared
    float64(float64) signature, so an int argument is converted (halve(3) = 1.5, as
    an eager ``njit("float64(float64)")`` gives) and no int64 version is added; an array
    matches no signature and raises TypeError."""
    k = kernel("float64(float64)", cache=False)(_halve)
    assert isinstance(k, Kernel) and not k.compiled
    assert k.__name__ == "_halve"
    assert k(3) == 1.5
    assert k.compiled
    assert [str(s) for s in k.dispatcher().signatures] == ["(float64,)"]
    with pytest.raises(TypeError):
        k(np.ones(2))


_CHILD = textwrap.dedent("""
    import numpy as np
    from xbarlab.jit import compile_notice
    from xbarlab.devices import kernels as K

    assert not K.scan.compiled and not K.program_kernel.compiled  # nothing at import
    with compile_notice(lambda message: print("NOTICE", message)):
        print("scan", K.scan(np.array([1.0, np.nan, -2.0, np.inf])))
        K.scan(np.array([3.0]))
    assert not K.program_kernel.compiled  # only the kernel called was compiled
""")


@pytest.mark.slow
def test_compile_notice_on_a_cold_cache_only(tmp_path):
    """Two child processes share a fresh NUMBA_CACHE_DIR and call the small ``scan``
    kernel: the first (cold cache) gets the notice exactly once, the second (the cache the
    first wrote) never; both get (min, max, non-finite count) = (-2, 1, 2)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def child() -> list[str]:
        r = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    cold, warm = child(), child()
    assert cold.count(f"NOTICE {COMPILE_MESSAGE}") == 1
    assert not any(line.startswith("NOTICE") for line in warm)
    assert "scan (-2.0, 1.0, 2.0)" in cold and "scan (-2.0, 1.0, 2.0)" in warm


def test_first_parallel_kernel_leaves_torch_thread_count_as_set():
    """Numba's OpenMP layer sets the OpenMP thread count torch shares when its thread pool
    starts (at the first parallel kernel of the process): a count given to torch before
    that must survive it. Fresh process, so the pool starts inside the test."""
    import subprocess
    import sys

    code = ("import torch, numpy as np\n"
            "torch.set_num_threads(1)\n"
            "assert torch.get_num_threads() == 1\n"  # a query starts torch's OpenMP use
            "from xbarlab import devices\n"
            "devices.load('pcm-ibm-2020').program(np.full(8, 1e-5), np.random.default_rng(0))\n"
            "print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split()[-1] == "1"
