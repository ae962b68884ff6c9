"""Benchmark of the main job (run on demand: ``pytest -m benchmark tests/benchmarks -s``).

`xbarlab run` on the shipped example, in a child process, twice: first with an empty
Numba cache (what a user sees right after installing), then with that cache warm. Prints
wall time, CPU time and peak resident memory of each run with the machine; the run (two
weight-mapping ranges, 30 programmings) must finish within 10 minutes on 2 cores.
"""

import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"numpy {np.__version__}, load average {os.getloadavg()[0]:.1f}")


def _run(out, env) -> tuple[float, float]:
    """Wall and CPU seconds [s] of one `xbarlab run -o out` (children's user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xbarlab.cli", "run", "-o", str(out), "--no-progress"],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def test_main_job_on_the_shipped_example(tmp_path):
    """Cold Numba cache < 600 s wall; the warm rerun (a fresh output folder, so every
    stage runs) is faster than the cold one."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    cold = _run(tmp_path / "cold", env)
    warm = _run(tmp_path / "warm", env)
    # ru_maxrss of children: the largest child so far, in KiB on Linux
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert (tmp_path / "warm" / "report.html").is_file()
    print(f"\nxbarlab run, shipped example: cold Numba cache {cold[0]:.1f} s wall "
          f"({cold[1]:.1f} s CPU); warm {warm[0]:.1f} s wall ({warm[1]:.1f} s CPU); "
          f"peak resident {peak_mb:.0f} MB [{_machine()}]")
    assert cold[0] < 600
    assert warm[0] < cold[0]
