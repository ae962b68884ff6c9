"""Device sampling of several xbarlab trees, compared in one process (run on demand).

Run: ``python tests/benchmarks/compare_trees.py before=/path/to/old/checkout now=.`` with
``NUMBA_CACHE_DIR`` set to a fresh folder (each tree is imported under the name
``xb_<name>``, so Numba's cache entries of the usual ``xbarlab`` name do not apply) and
``NUMBA_NUM_THREADS`` as wanted. Each tree's ``devices.load("pcm-ibm-2020")`` samples the
same N cells (uniform in 0-25 uS) at 1 d; the trees are called alternately, R rounds, the
order reversed every other round, so that a machine whose speed drifts during the run
slows every tree alike. Prints each tree's median and best rate [M cells/s] of ``sample()``
and of ``program()`` + ``read()``, and the median over rounds of its speed ratio to the
first tree named (the paired ratios); it first checks that every tree gives the first
tree's bits on 10^5 cells. Environment: ``N`` cells (default 10^6), ``R`` rounds (default
40).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time

import numpy as np


def load_tree(name: str, path: str):
    """The ``pcm-ibm-2020`` model of the xbarlab tree at ``path`` (its code and its preset
    file), imported as xb_<name>."""
    alias = "xb_" + name
    spec = importlib.util.spec_from_file_location(
        alias, os.path.join(path, "__init__.py"), submodule_search_locations=[path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    # presets are package data found by the name "xbarlab": point it at this tree meanwhile
    before = sys.modules.get("xbarlab")
    sys.modules["xbarlab"] = module
    try:
        return importlib.import_module(alias + ".devices").load("pcm-ibm-2020")
    finally:
        if before is None:
            del sys.modules["xbarlab"]
        else:
            sys.modules["xbarlab"] = before


def compare(trees: dict[str, str], n: int, rounds: int) -> list[str]:
    """Lines of the comparison of ``trees`` (name -> path), ``n`` cells, ``rounds`` rounds."""
    models = {name: load_tree(name, path) for name, path in trees.items()}
    g = np.random.default_rng(0).uniform(0.0, 25e-6, n)
    rng = np.random.default_rng(1)
    lines, ref = [], None
    for name, m in models.items():
        m.sample(g[:1000], 86400.0, rng)  # compile or load the kernels
        x = m.sample(g[:100_000], 86400.0, np.random.default_rng(3))
        ref = x if ref is None else ref
        lines.append(f"{name}: same bits as {next(iter(models))}: {np.array_equal(x, ref)}")
    ts = {k: [] for k in models}
    tp = {k: [] for k in models}
    for r in range(rounds):
        for k in (list(models) if r % 2 == 0 else list(models)[::-1]):
            m = models[k]
            t0 = time.perf_counter()
            m.sample(g, 86400.0, rng)
            ts[k].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            m.read(m.program(g, rng), 86400.0, rng)
            tp[k].append(time.perf_counter() - t0)
    first = next(iter(models))
    for k in models:
        a, b = np.array(ts[k]), np.array(tp[k])
        lines.append(
            f"{k}: sample() median {n / np.median(a) / 1e6:.1f}, best {n / a.min() / 1e6:.1f} "
            f"M cells/s; program()+read() median {n / np.median(b) / 1e6:.1f}, best "
            f"{n / b.min() / 1e6:.1f}; speed / {first} (median of paired ratios): sample() "
            f"{np.median(np.array(ts[first]) / a):.3f}, program()+read() "
            f"{np.median(np.array(tp[first]) / b):.3f}")
    return lines


if __name__ == "__main__":
    pairs = dict(arg.split("=", 1) for arg in sys.argv[1:])
    if not pairs:
        raise SystemExit("usage: compare_trees.py NAME=PATH [NAME=PATH ...]")
    n_cells = int(os.environ.get("N", 1_000_000))
    n_rounds = int(os.environ.get("R", 40))
    print(f"{n_cells} cells, {n_rounds} rounds, numba threads "
          f"{os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    print("\n".join(compare({k: os.path.abspath(v) for k, v in pairs.items()}, n_cells,
                            n_rounds)))
