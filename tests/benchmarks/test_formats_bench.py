"""Benchmarks of the measurement reader (run on demand: ``pytest -m benchmark tests/benchmarks``).

Goals: the 89k-row Stanford techC table loads in well under a
second; a 10^7-row table loads without more than a few copies in memory. Each test prints
its numbers and the machine (CPU count, Python, numpy) so results can be quoted.
"""

import subprocess
import sys
import time

import numpy as np
import pytest
from _bench import machine
from _shared import shared_path
from xbarlab.formats import read_measurements

pytestmark = pytest.mark.benchmark


def test_techc_loads_well_under_a_second():
    """techC relaxdata (89,115 rows, 7 columns, gzip): best of 5 loads < 0.5 s."""
    path = shared_path("data", "measured", "stanford_rram_relaxation", "techC",
                       "relaxdata.min.tsv.gz")
    cols = "device=0,time=1,g=3,g_initial=4,level=5,time_point=6"
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        m = read_measurements(path, columns=cols)
        times.append(time.perf_counter() - t0)
    assert m.n_reads == 89115
    print(f"\ntechC 89,115 rows: best {min(times):.3f} s, median {np.median(times):.3f} s "
          f"[{machine()}]")
    assert min(times) < 0.5


@pytest.fixture(scope="module")
def big_table(tmp_path_factory):
    """A 10^7-row CSV (device, time, g, level), written in chunks."""
    n, chunk = 10_000_000, 1_000_000
    path = tmp_path_factory.mktemp("big") / "big.csv"
    rng = np.random.default_rng(1)
    with open(path, "w") as fh:
        fh.write("device,time,g,level\n")
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            dev = (np.arange(lo, lo + k) // 8).astype(np.int64)
            block = np.column_stack([dev, rng.uniform(0, 1e5, k).round(3),
                                     rng.uniform(1e-6, 4e-5, k), dev % 32])
            np.savetxt(fh, block, fmt=["%d", "%.3f", "%.6e", "%d"], delimiter=",")
    return path, n


def test_ten_million_rows_few_copies(big_table):
    """10^7 rows x 4 roles, read in a fresh process: the rise of its peak resident memory
    during the read is <= 4x the final arrays (g, time, device, level: 32 B per row =
    320 MB), i.e. no more than a few copies of the table."""
    path, n = big_table
    code = (
        "import resource, sys, time\n"
        "from xbarlab.formats import read_measurements\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t0 = time.perf_counter()\n"
        f"m = read_measurements({str(path)!r})\n"
        "elapsed = time.perf_counter() - t0\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "final = sum(a.nbytes for a in (m.g, m.time, m.device, m.level))\n"
        "print(m.n_reads, m.n_devices, elapsed, (after - before) * 1024, final)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr
    reads, devices, elapsed, rise, final = proc.stdout.split()
    reads, devices, elapsed, rise, final = (int(reads), int(devices), float(elapsed),
                                            float(rise), int(final))
    assert reads == n and devices == n // 8
    print(f"\n10^7 rows: {elapsed:.1f} s ({n / elapsed / 1e6:.2f} M rows/s), peak RSS rise "
          f"{rise / 1e6:.0f} MB = {rise / final:.2f} x the {final / 1e6:.0f} MB result "
          f"[{machine()}]")
    assert rise <= 4 * final
