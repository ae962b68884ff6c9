"""Benchmark: forward of a converted 512 x 512 analog layer at batch 256 vs nn.Linear (CPU).

Run: ``pytest -m benchmark tests/benchmarks/test_nn_analog_bench.py -s`` (or run this file
with python). The analog layer (``xbarlab.nn.convert`` of ``nn.Linear(512, 512)`` on the
pcm-ibm-2020 preset, read one day after programming) runs its statistical forward with
everything inside: 8-bit signed DAC on the inputs, 3 row tiles (256 + 256 inputs, then
the bias row) x 4 column tiles of the default 256 x 256 tile (per-tile scale alpha), the
8-bit signed ADC of every tile's partial sums (max-possible range per tile; the bias row's
tile, whose input is the constant drive, is converted once per read), the digital sum
over row tiles. Both run in float32 under ``torch.no_grad``, interleaved in one process
(same load): best, median and quartiles of ``REPEATS`` calls each, and of the ratio of
each analog call to the ``nn.Linear`` call before it. Goal: analog forward <= 2 x
nn.Linear. Also timed: one ``read(t)`` (device read of all 525,312 cells, G+ and G- of
513 x 512 weights, the effective weights and what the forward takes from them).
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import pytest
import torch
from torch import nn

BATCH, N_IN, N_OUT = 256, 512, 512
REPEATS = 200
GOAL = 2.0


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_benchmark(repeats: int = REPEATS) -> dict:
    from xbarlab.devices import load
    from xbarlab.nn import convert

    torch.manual_seed(0)
    lin = nn.Linear(N_IN, N_OUT)
    model = convert(nn.Sequential(lin), load("pcm-ibm-2020"), dac_bits=8, adc_bits=8)
    model.program(torch.Generator().manual_seed(0))
    t_read = min(_time(lambda: model.read(86400.0)) for _ in range(3))
    x = torch.rand(BATCH, N_IN, generator=torch.Generator().manual_seed(1))
    times = {"nn.Linear": [], "analog": []}
    with torch.no_grad():
        for _ in range(10):  # warm up both
            lin(x)
            model(x)
        for _ in range(repeats):
            times["nn.Linear"].append(_time(lambda: lin(x)))
            times["analog"].append(_time(lambda: model(x)))
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    quart = {k: statistics.quantiles(v, n=4) for k, v in times.items()}
    # each analog call over the nn.Linear call just before it: the spread under load
    pair = statistics.quantiles(
        [a / b for a, b in zip(times["analog"], times["nn.Linear"], strict=True)], n=4)
    return {"best_s": best, "median_s": med, "quartiles_s": quart, "read_s": t_read,
            "ratio_best": best["analog"] / best["nn.Linear"],
            "ratio_median": med["analog"] / med["nn.Linear"], "ratio_per_call": pair,
            "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                        "processor": platform.processor() or platform.machine()}}


def _print(res: dict) -> None:
    print(f"\nanalog forward, {N_IN}x{N_OUT} layer, batch {BATCH}, float32 (CPU)")
    for k in ("nn.Linear", "analog"):
        q = res["quartiles_s"][k]
        print(f"  {k:10s} best {res['best_s'][k] * 1e3:7.3f} ms  median "
              f"{res['median_s'][k] * 1e3:7.3f} ms  quartiles {q[0] * 1e3:.3f}-"
              f"{q[2] * 1e3:.3f} ms")
    r = res["ratio_per_call"]
    print(f"  ratio analog / nn.Linear: best {res['ratio_best']:.2f}, median "
          f"{res['ratio_median']:.2f} (goal <= {GOAL}); per call: median {r[1]:.2f}, "
          f"quartiles {r[0]:.2f}-{r[2]:.2f}")
    print(f"  read(t) of 525,312 cells + cache: {res['read_s'] * 1e3:.1f} ms")
    print(f"  machine: {res['machine']}")


@pytest.mark.benchmark
def test_analog_forward_within_twice_linear():
    """The analog forward (DAC, per-tile matmul, per-tile ADC, sum) takes at most twice
    nn.Linear's time (best of 200 interleaved calls)."""
    res = run_benchmark()
    _print(res)
    assert res["ratio_best"] <= GOAL


if __name__ == "__main__":
    _print(run_benchmark())
