"""Calibration benchmarks: fitting the full Stanford tech C file (89,115 reads, 16,292 cells),
and 10^6 synthetic PCM reads.

Run: ``pytest -m benchmark tests/benchmarks/test_calibration_bench.py -s`` (a few minutes).

Tech C: best-of-3 wall time of ``fit`` with its defaults (drift model chosen by held-out
likelihood: both a relaxation table and a power law are fitted on half of the cells and
scored on the other half, then the chosen one is refitted on all cells with 100 bootstrap
replicates), and separately the reading of the file. Goal: fit <= 10 s on the
2-core machine. The machine, its load average and the numbers are printed; the goal is
asserted only when the 1-minute load average is below the core count (a busy shared machine
measures the neighbours, not the code).

PCM: 10^6 reads of aihwkit-style PCM with independent reads (tests/_synthetic_pcm.py, the
published equations: 41 targets over 0-25 uS x 4,066 devices, read at 1 s, 1 h, 1 d, 7 d,
30 d and 1 y), fitted by ``fit`` with its defaults (drift model and read-noise structure
chosen by held-out likelihood, 100 bootstrap replicates). One timed fit after an untimed
warm-up fit on a tenth of the devices (Numba and imports). Goal: <= 60 s on the 2-core
machine, asserted under the same load rule.

PCM with the power law asked for: the same 10^6 reads fitted with ``drift="power-law"`` under
the read-noise law "log" and under "auto" (the default: both laws fitted on half of the
devices and scored on the other half, then the chosen one, "linear" on these reads, refitted
with 100 bootstrap replicates), alternated twice in the same process. No goal is asserted:
the 60 s goal is that of the defaults above; this prints what choosing the law costs.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from _bench import machine
from _shared import shared_path
from _synthetic_pcm import pcm_independent_reads
from xbarlab.calibration import fit, read_measurements

pytestmark = pytest.mark.benchmark

COLUMNS = "device=0,time=1,g=3,g_initial=4,level=5,time_point=6"


def _best(f, n=3):
    best, out = np.inf, None
    for _ in range(n):
        t0 = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - t0)
    return best, out


def test_fit_full_techc_within_10_s():
    """Best of 3 fits of the full tech C file: <= 10 s (when the machine is not overloaded);
    the fit chooses the relaxation table (held-out log-likelihood higher than the power law's)."""
    path = shared_path("data", "measured", "stanford_rram_relaxation", "techC",
                       "relaxdata.min.tsv.gz")
    t_read, meas = _best(lambda: read_measurements(path, columns=COLUMNS), n=2)
    t_fit, model = _best(lambda: fit(meas, rng=np.random.default_rng(0)))
    load1, cores = os.getloadavg()[0], os.cpu_count() or 1
    print(f"\nmachine: {machine()}")
    print(f"read techC: {t_read:.2f} s; fit (held-out choice + 100 bootstrap replicates): "
          f"{t_fit:.2f} s (goal <= 10 s: {'met' if t_fit <= 10 else 'missed'}); "
          f"choice {model.report.drift_choice}, log-lik {model.report.drift_loglik}")
    assert model.report.drift_choice == "relaxation"
    if load1 < cores:
        assert t_fit <= 10.0


def test_fit_million_pcm_reads_within_60_s():
    """10^6 reads of independent-read PCM, defaults: <= 60 s (when the machine is not
    overloaded); prints the choices the fit made."""
    warm, _ = pcm_independent_reads(np.random.default_rng(1), per_target=400)
    fit(warm, rng=np.random.default_rng(0), n_boot=5)
    table, _ = pcm_independent_reads(np.random.default_rng(2), per_target=4066)
    n_reads = table["g"].size
    t0 = time.perf_counter()
    model = fit(table, rng=np.random.default_rng(0))
    t_fit = time.perf_counter() - t0
    load1, cores = os.getloadavg()[0], os.cpu_count() or 1
    print(f"\nmachine: {machine()}")
    print(f"fit {n_reads} PCM reads (held-out choices + 100 bootstrap replicates): "
          f"{t_fit:.2f} s (goal <= 60 s: {'met' if t_fit <= 60 else 'missed'}); "
          f"drift {model.report.drift_choice} (held-out log-likelihood per read "
          f"{model.report.drift_loglik}), read noise "
          f"{getattr(model.drift_law, 'read_noise', None)}")
    assert n_reads >= 1_000_000
    if load1 < cores:
        assert t_fit <= 60.0


def test_power_law_fit_under_each_read_noise_law():
    """10^6 reads of independent-read PCM fitted as a power law under the law "log" and
    under "auto", alternated twice: prints both times and the law "auto" chose (asserted
    "linear", the law of these reads)."""
    warm, _ = pcm_independent_reads(np.random.default_rng(1), per_target=400)
    fit(warm, drift="power-law", rng=np.random.default_rng(0), n_boot=5)
    table, _ = pcm_independent_reads(np.random.default_rng(2), per_target=4066)
    times = {"log": [], "auto": []}
    for _ in range(2):
        for law in times:
            t0 = time.perf_counter()
            model = fit(table, drift="power-law", read_noise_law=law,
                        rng=np.random.default_rng(0))
            times[law].append(time.perf_counter() - t0)
            if law == "auto":
                chosen = model.report.power_law.law
    print(f"\nmachine: {machine()}")
    print(f"power-law fit of {table['g'].size} PCM reads (100 bootstrap replicates): law "
          f"'log' {', '.join(f'{t:.1f}' for t in times['log'])} s; law 'auto' (chose "
          f"{chosen!r}) {', '.join(f'{t:.1f}' for t in times['auto'])} s")
    assert chosen == "linear"
