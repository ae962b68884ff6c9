"""Calibration fits of two or more xbarlab trees on 10^6 PCM reads, alternated (run on demand).

Run: ``python tests/benchmarks/compare_calibration_trees.py before=/path/to/old/checkout
now=.`` (each tree a checkout of the repository). For R rounds (environment ``R``, default
2) each tree, in turn and in a fresh process of its own, generates the 10^6 reads of
``test_calibration_bench.py`` (tests/_synthetic_pcm.py of *this* tree: 41 targets over
0-25 uS x 4,066 devices, independent reads at six times from 1 s to 1 y; seed 2), warms up
with a default fit of 16,400 devices (Numba and imports), then times ``fit`` twice: as a
power law with its read-noise law chosen (``drift="power-law"``, ``read_noise_law="auto"``,
100 bootstrap replicates) and with its defaults. Prints per tree and round both times [s],
the load average, and the drift choice with its held-out log-likelihoods per read.
"""

from __future__ import annotations

import os
import subprocess
import sys

_CHILD = r"""
import importlib.util, os, sys, time
root, tests = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("xbarlab", os.path.join(root, "__init__.py"),
                                              submodule_search_locations=[root])
mod = importlib.util.module_from_spec(spec)
sys.modules["xbarlab"] = mod
spec.loader.exec_module(mod)
sys.path.insert(0, tests)
import numpy as np
from _synthetic_pcm import pcm_independent_reads
from xbarlab.calibration import fit
warm, _ = pcm_independent_reads(np.random.default_rng(1), per_target=400)
fit(warm, rng=np.random.default_rng(0), n_boot=5)
table, _ = pcm_independent_reads(np.random.default_rng(2), per_target=4066)
out = []
for name, kw in (("power law, law chosen", {"drift": "power-law", "read_noise_law": "auto"}),
                 ("defaults", {})):
    t = time.perf_counter()
    m = fit(table, rng=np.random.default_rng(0), **kw)
    out.append(f"{name} {time.perf_counter() - t:.1f} s (choice {m.report.drift_choice}, "
               f"{m.report.drift_loglik})")
print(f"load {os.getloadavg()[0]:.2f} | " + " | ".join(out), flush=True)
"""


def main(argv: list[str]) -> None:
    trees = [a.split("=", 1) for a in argv]
    if not trees or any(len(t) != 2 or not os.path.isfile(os.path.join(t[1], "__init__.py"))
                        for t in trees):
        raise SystemExit("usage: compare_calibration_trees.py NAME=PATH [NAME=PATH ...], each "
                         "PATH a checkout of xbarlab")
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for r in range(int(os.environ.get("R", "2"))):
        for name, path in trees:
            res = subprocess.run([sys.executable, "-c", _CHILD, os.path.abspath(path), tests],
                                 capture_output=True, text=True, check=True)
            print(f"round {r + 1}, {name}: {res.stdout.strip()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
