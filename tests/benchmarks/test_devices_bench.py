"""Benchmark: program + drift + read of 10^7 pcm-ibm-2020 cells (goal >= 30 million cells/s).

Run: ``pytest -m benchmark tests/benchmarks/test_devices_bench.py -s`` (or run this file
with python). Beside xbarlab's sample() (at 10^7 cells the fused program-and-read kernel,
devices.composite.FUSED_MIN_CELLS) it measures

- the floor: the same counter-based generator drawing only the three normals a PCM cell
  needs (programming error, drift exponent, 1/f noise), nothing else;
- program() then read() as two passes (state kept in memory);
- a plain-numpy implementation of the same published formulas (rng.standard_normal).

It prints a table (million cells per second, best of ``REPEATS``) and the machine. To compare
code versions on a machine whose speed drifts, use compare_trees.py beside this file (both
trees in one process, called alternately). It
checks that the numpy and xbarlab samples follow the same distribution (KS < 0.005);
speed is reported, not asserted.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import pytest

N = 10_000_000
REPEATS = 5
T = 86400.0
GMAX = 25e-6


def numpy_pcm(g, t, rng):
    """pcm-ibm-2020 in plain numpy (the published formulas, float64)."""
    z = rng.standard_normal((3, g.size))
    x = g / GMAX
    sp = (0.26348 + 1.9650 * x - 1.1731 * x * x) * 1e-6
    gp = np.maximum(g + sp * z[0], 0.0)
    lx = np.log(np.maximum(x, 1e-7))
    mu = np.clip(-0.0155 * lx + 0.0244, 0.049, 0.1)
    sd = np.clip(-0.0125 * lx - 0.0059, 0.008, 0.045)
    nu = np.abs(mu + sd * z[1])
    gd = gp * np.exp(-nu * np.log((t + 20.0) / 20.0))
    qs = np.minimum(0.0088 / np.maximum(gp / GMAX, 1e-3) ** 0.65, 0.2)
    su = np.sqrt(np.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
    return np.maximum(gd + gd * qs * su * z[2], 0.0)


def _best(fn, repeats=REPEATS):
    fn()  # warm (compile, page in)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_benchmark(n=N, repeats=REPEATS):
    from scipy import stats
    from xbarlab.devices import kernels as K
    from xbarlab.devices import load

    model = load("pcm-ibm-2020")
    rng = np.random.default_rng(0)
    g = rng.uniform(0.0, GMAX, n)
    floor_out = np.empty(n)
    rows = []

    def add(name, secs):
        rows.append((name, n / secs / 1e6, secs))

    add("floor: 3 counter-based normals per cell",
        _best(lambda: K._normals_kernel(np.uint64(1), 3, floor_out), repeats))
    add("xbarlab sample(), float64",
        _best(lambda: model.sample(g, T, rng), repeats))
    add("xbarlab sample(), float32 out",
        _best(lambda: model.sample(g, T, rng, dtype=np.float32), repeats))

    def two_pass():
        st = model.program(g, rng)
        model.read(st, T, rng)

    add("xbarlab program() + read() (state kept)", _best(two_pass, repeats))
    add("plain numpy, same formulas", _best(lambda: numpy_pcm(g, T, rng), repeats))
    a = model.sample(g[:200_000] * 0 + 10e-6, T, np.random.default_rng(1))
    b = numpy_pcm(g[:200_000] * 0 + 10e-6, T, np.random.default_rng(2))
    ks = stats.ks_2samp(a, b).statistic
    try:
        import numba

        threads = numba.get_num_threads()
    except Exception:  # pragma: no cover
        threads = -1
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs "
               f"visible, affinity {len(os.sched_getaffinity(0))} CPUs, numba threads {threads}")
    lines = [f"pcm-ibm-2020 program+drift+read of {n:.0e} cells at t = 1 day; {machine}",
             f"{'what':45s} {'M cells/s':>10s} {'seconds':>9s}"]
    lines += [f"{name:45s} {rate:10.1f} {secs:9.3f}" for name, rate, secs in rows]
    lines.append(f"KS(xbarlab, numpy) at 10 uS = {ks:.4f}")
    return rows, ks, "\n".join(lines)


@pytest.mark.benchmark
def test_pcm_program_drift_read_speed():
    """Prints the table; xbarlab and numpy samples agree in distribution (KS < 0.005 for
    2e5 cells each at 10 uS, 1 day) and every rate is positive and finite."""
    rows, ks, table = run_benchmark()
    print("\n" + table)
    assert ks < 0.005
    assert all(np.isfinite(r) and r > 0 for _, r, _ in rows)


if __name__ == "__main__":
    print(run_benchmark()[2])
