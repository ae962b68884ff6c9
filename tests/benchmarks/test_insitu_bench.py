"""Benchmarks of in-situ training (CPU).

Run: ``pytest -m benchmark tests/benchmarks/test_insitu_bench.py -s`` (or run this file with
python).

- One epoch of the FCN 784-256-128-10 (sigmoid) on MNIST-5k's 4,000 training images, batch
  10 (400 updates), Analog SGD on the ``soft-bounds`` preset (tau 0.6: dw_min 0.001, c2c
  and d2d 0.3) with stochastic pulse trains of BL 31 and update management, on one torch
  thread; forward, backward and the pulsed updates of all three layers, data loading and
  evaluation excluded. Goal: <= 0.8 s (IBM aihwkit 1.2's C++ CPU build on a 2-core
  machine); aim 0.4 s.
- One pulsed update of a 1024 x 1024 array by a batch of 64 on two threads: inputs uniform
  on [0, 1] (sigmoid-like activations), errors normal with std 1e-3, lr 0.05, BL 31, update
  management, the same device. Best of 5. Goal: <= 50 ms.
"""

from __future__ import annotations

import time

import pytest
import torch
from _bench import machine

EPOCH_GOAL, UPDATE_GOAL = 0.8, 0.050


def _domain():
    from xbarlab.devices.pulsed import WeightDomain
    from xbarlab.devices.pulsed_presets import pulsed_preset

    return WeightDomain(pulsed_preset("soft-bounds"), 0.6)


def epoch_seconds(device: str = "cpu", data=None, *, graph: bool = False) -> float:
    """Seconds of one FCN epoch (see the module docstring) on ``device``; ``data``: an
    ``(x, y)`` pair of the 4,000 training images and labels (default: MNIST-5k loaded here),
    for machines without the data set's download; ``graph``: every step replayed from a
    CUDA graph (``AnalogSGD.cuda_graph``; its capture, before the clock starts, not
    counted)."""
    from xbarlab.nn.insitu import AnalogSGD
    from xbarlab.nn.insitu_run import fcn
    from xbarlab.nn.train import torch_threads

    if data is None:
        from xbarlab.nn.data import load_dataset

        ds = load_dataset("mnist5k")
        data = ds.x_train, ds.y_train
    x, y = data
    x, y = x.reshape(len(x), -1).to(device), y.to(device)
    g = torch.Generator().manual_seed(0)
    with torch_threads(1):
        model = fcn(784, g).to(device)
        g = torch.Generator(device=device).manual_seed(0)
        opt = AnalogSGD(model, _domain(), lr=0.05, generator=g)
        loss = torch.nn.functional.cross_entropy
        if graph:
            step = opt.cuda_graph(x[:10], y[:10], loss_fn=loss)
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, len(x), 10):
            if graph:
                step(x[i:i + 10], y[i:i + 10])
                continue
            opt.zero_grad()
            loss(model(x[i:i + 10]), y[i:i + 10]).backward()
            opt.step()
        _sync(device)
        if not opt.finite_inputs():
            raise RuntimeError("a graphed step met a non-finite activation or error")
        return time.perf_counter() - t0


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def update_seconds(repeats: int = 5) -> float:
    from xbarlab.nn.pulsed_update import PulsedArray
    from xbarlab.nn.train import torch_threads

    g = torch.Generator().manual_seed(1)
    with torch_threads(2):
        arr = PulsedArray(_domain(), (1024, 1024), generator=g)
        w = torch.zeros(1024, 1024)
        x = torch.rand(64, 1024, generator=g)
        d = 1e-3 * torch.randn(64, 1024, generator=g)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            arr.update(w, x, d, lr=0.05, mode="stochastic", bit_length=31, generator=g)
            best = min(best, time.perf_counter() - t0)
        return best


@pytest.mark.benchmark
def test_insitu_benchmarks():
    """Prints both times and the machine; asserts both goals."""
    epoch, update = epoch_seconds(), update_seconds()
    print(f"\n{machine()}\nFCN epoch on MNIST-5k (1 thread): {epoch:.2f} s (goal "
          f"{EPOCH_GOAL} s); 1024 x 1024 pulsed update, batch 64 (2 threads): "
          f"{1e3 * update:.1f} ms (goal {1e3 * UPDATE_GOAL:.0f} ms)")
    assert epoch <= EPOCH_GOAL
    assert update <= UPDATE_GOAL


if __name__ == "__main__":  # pragma: no cover
    import argparse
    import json

    import numpy as np

    ap = argparse.ArgumentParser(description="in-situ training benchmarks")
    ap.add_argument("--epoch-on", nargs="*", default=None,
                    help="only the FCN epoch, on these devices (e.g. cpu cuda cuda-graph: "
                         "cuda with every step replayed from a CUDA graph)")
    ap.add_argument("--data", default=None, help="an .npz with x (4000, 784) and y")
    a = ap.parse_args()
    if a.epoch_on is None:
        test_insitu_benchmarks()
    else:
        data = None
        if a.data:
            z = np.load(a.data)
            data = torch.from_numpy(z["x"]), torch.from_numpy(z["y"])
        out = {"machine": machine(), "torch": torch.__version__}
        for name in a.epoch_on:
            dev, graph = name.removesuffix("-graph"), name.endswith("-graph")
            epoch_seconds(dev, data, graph=graph)  # warm-up: first-use costs
            out[name] = min(epoch_seconds(dev, data, graph=graph) for _ in range(3))
            if dev == "cuda":
                out["gpu"] = torch.cuda.get_device_name()
        print(json.dumps(out, indent=1))
