"""Helpers the benchmarks in tests/benchmarks share: the machine line they print and one
``xbarlab run`` in a child process."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time


def machine() -> str:
    """Processor model, CPU count, Python, numpy and numba versions and the 1-minute load
    average, in one line."""
    import numba
    import numpy as np

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy "
            f"{np.__version__}, numba {numba.__version__}, load average "
            f"{os.getloadavg()[0]:.1f}")


def run_main_job(out, env) -> tuple[float, float]:
    """Wall and CPU (user + system of the child) seconds [s] of one ``xbarlab run -o out
    --no-progress`` on the shipped example, in a child process with environment ``env``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xbarlab.cli", "run", "-o", str(out), "--no-progress"],
                   env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
