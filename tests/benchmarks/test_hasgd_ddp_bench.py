"""GPU benchmark: HA-SGD with its L passes split over N GPUs against HA-SGD on one GPU.

Run on one host with N >= 2 GPUs (results printed by rank 0, optionally written as JSON)::

    python tests/benchmarks/test_hasgd_ddp_bench.py --nproc 2 --samples 8 --out ddp2.json
    torchrun --nproc-per-node 4 tests/benchmarks/test_hasgd_ddp_bench.py --samples 16
    pytest -m "gpu and benchmark" tests/benchmarks/test_hasgd_ddp_bench.py -s

With fewer GPUs than ``--nproc`` the script says so and exits 0; the pytest cases skip.

Setup (as tests/benchmarks/test_nn_gpu_bench.py): the CIFAR-shaped ResNet-18 of that file,
random data, batch 128 (the whole minibatch on every rank), fp32, SGD with momentum 0.9,
Gaussian noise σ = 0.1 on every conv and the linear layer, cuDNN autotuning on; TF32
(``torch.backends.cuda.matmul.allow_tf32`` and ``torch.backends.cudnn.allow_tf32``) off,
then on, the same on both sides. Every rank times single-GPU HASGD with all ``L`` passes on
its own GPU (all GPUs at once, so both sides run on a busy host), in mode ``"auto"`` eagerly
and replayed from a CUDA graph (:meth:`HASGD.cuda_graph`); the faster one is the
baseline. Then the ranks run HASGD on a DistributedDataParallel replica (NCCL), ``L/N``
passes each plus one all-reduce, eagerly and from a CUDA graph; its time is the slowest
rank's. Every time is the median of 50 steps after 10 warm-up steps (CUDA events). The
ratio is split / baseline (goals: <= 0.55 for L = 8 on 2 GPUs, <= 0.28 for L = 16 on 4).

The averaged gradient is checked at fixed weights and minibatch: one process with all
``L`` passes against the ranks with ``L/N`` each, the same generator seed, mode
``"sequential"``, cuDNN deterministic (so every pass computes the same bits on both sides
and only the order of the sums differs). Expected: ‖g_split − g_one‖ / ‖g_one‖ <= 1e-6,
and the same for the BatchNorm running statistics.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from xbarlab.nn import HASGD, GaussianNoise
from xbarlab.nn.distributed import backend_for, run_ranks

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from test_nn_gpu_bench import ResNet18  # noqa: E402

SIGMA = 0.1
#: the gradient check's bound on ‖g_split − g_one‖ / ‖g_one‖
GRAD_RTOL = 1e-6


def _setup(cfg: dict, dev: torch.device, seed: int = 0):
    """ResNet-18, SGD, a random minibatch and a noise generator, the same on every rank."""
    with torch.random.fork_rng(devices=[]):  # weights drawn on the CPU, then moved
        torch.manual_seed(seed)
        model = ResNet18().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator(device=dev).manual_seed(seed)
    x = torch.randn(cfg["batch"], 3, 32, 32, device=dev, generator=g)
    y = torch.randint(0, 10, (cfg["batch"],), device=dev, generator=g)
    return model, opt, x, y, torch.Generator(device=dev).manual_seed(seed + 1)


def _median_ms(fn, dev: torch.device, *, warmup: int, iters: int) -> float:
    """Median milliseconds of ``fn()`` (CUDA events on a GPU, perf_counter on the CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        for _ in range(iters):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
    else:
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _wrap(model, dev):
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def _step_ms(cfg: dict, dev: torch.device, *, split: bool, graph: bool) -> float:
    """Median step time of HASGD (mode auto) on this rank alone or split over the ranks."""
    model, opt, x, y, g = _setup(cfg, dev)
    h = HASGD(_wrap(model, dev) if split else model, opt, GaussianNoise(SIGMA),
              samples=cfg["samples"], generator=g, mode="auto")
    step = h.cuda_graph(x, y) if graph else h.step
    ms = _median_ms(functools.partial(step, x, y), dev, warmup=cfg["warmup"], iters=cfg["steps"])
    del step, h, model, opt
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return ms


def _grad_check(cfg: dict, dev: torch.device) -> dict:
    """Relative distance of the split gradient and BatchNorm statistics from one process's."""
    out = []
    for split in (False, True):
        model, opt, x, y, g = _setup(cfg, dev)
        h = HASGD(_wrap(model, dev) if split else model, opt, GaussianNoise(SIGMA),
                  samples=cfg["samples"], generator=g, mode="sequential")
        model.train()
        h.gradient(x, y)
        out.append((torch.cat([p.grad.flatten() for p in model.parameters()]).double(),
                    torch.cat([b.flatten() for n, b in model.named_buffers()
                               if b.is_floating_point()]).double()))
    (g1, b1), (g2, b2) = out
    return {"grad_rel": float((g2 - g1).norm() / g1.norm()),
            "grad_max_rel": float((g2 - g1).abs().max() / g1.abs().max()),
            "bn_rel": float((b2 - b1).norm() / b1.norm())}


def bench_rank(rank: int, cfg: dict) -> None:
    """Everything one rank does (in the default process group); rank 0 reports."""
    dev = (torch.device("cuda", torch.cuda.current_device()) if cfg["device"] == "cuda"
           else torch.device("cpu"))
    graphs = (False, True) if dev.type == "cuda" and cfg["graph"] else (False,)
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    runs = []
    try:
        for tf32 in (False, True):
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
            single = {("graph" if gr else "eager"): _step_ms(cfg, dev, split=False, graph=gr)
                      for gr in graphs}
            dist.barrier()
            split = {}
            for gr in graphs:
                ms = torch.tensor([_step_ms(cfg, dev, split=True, graph=gr)], device=dev)
                dist.all_reduce(ms, op=dist.ReduceOp.MAX)  # the slowest rank's time
                split["graph" if gr else "eager"] = float(ms)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
            check = _grad_check(cfg, dev)
            base, best = min(single.values()), min(split.values())
            runs.append({"tf32": tf32, "single_ms": single, "split_ms": split,
                         "baseline_ms": base, "split_best_ms": best, "ratio": best / base,
                         **check})
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) = flags
    if rank:
        return
    world = dist.get_world_size()
    info = {"device": (torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"),
            "nproc": world, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
            "nccl": str(torch.cuda.nccl.version()) if dev.type == "cuda" else None,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result = {"machine": info, "config": cfg, "runs": runs}
    for r in runs:
        print(f"\n{world} x {info['device']}, L = {cfg['samples']}, batch {cfg['batch']}, "
              f"TF32 {'on' if r['tf32'] else 'off'}")
        print("  one GPU  " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["single_ms"].items()))
        print(f"  {world} GPUs   " + ", ".join(f"{k} {v:.2f} ms"
                                             for k, v in r["split_ms"].items()))
        print(f"  ratio (best split / best one GPU): {r['ratio']:.3f}")
        print(f"  gradient |g_split - g_one| / |g_one| = {r['grad_rel']:.2e} (max element "
              f"{r['grad_max_rel']:.2e} of max|g|), BatchNorm statistics {r['bn_rel']:.2e}")
    if cfg["out"]:
        Path(cfg["out"]).write_text(json.dumps(result, indent=2) + "\n")


def _config(a: argparse.Namespace) -> dict:
    return {"samples": a.samples, "batch": a.batch, "steps": a.steps, "warmup": a.warmup,
            "device": a.device, "out": a.out, "graph": not a.no_graph}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, default=2, help="ranks (GPUs) when not under torchrun")
    ap.add_argument("--samples", type=int, default=8, help="L, perturbations per step")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50, help="timed steps (median)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu: gloo, eager only (a check of the script, not a benchmark)")
    ap.add_argument("--no-graph", action="store_true",
                    help="time eager steps only (no HASGD.cuda_graph on either side)")
    ap.add_argument("--out", default=None, help="JSON file for rank 0's results")
    a = ap.parse_args(argv)
    cfg = _config(a)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        if a.device == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend_for(a.device))
        try:
            bench_rank(dist.get_rank(), cfg)
        finally:
            dist.destroy_process_group()
        return 0
    if a.device == "cuda" and torch.cuda.device_count() < a.nproc:
        print(f"skipped: --nproc {a.nproc} needs {a.nproc} GPUs, this host has "
              f"{torch.cuda.device_count()}")
        return 0
    run_ranks(bench_rank, a.nproc, cfg, device=a.device)
    return 0


@pytest.mark.gpu
@pytest.mark.benchmark
@pytest.mark.parametrize("nproc,samples,bound", [(2, 8, 0.55), (4, 16, 0.28)])
def test_split_hasgd_step_time_and_gradient(tmp_path, nproc, samples, bound):
    """L passes over ``nproc`` GPUs: at most ``bound`` × the best single-GPU step (TF32 off
    and on), and the averaged gradient and BatchNorm statistics within 1e-6 (relative
    norm) of the single-process ones. Runs this file as a script (spawned ranks)."""
    if torch.cuda.device_count() < nproc:
        pytest.skip(f"needs {nproc} GPUs, found {torch.cuda.device_count()}")
    out = tmp_path / "ddp.json"
    subprocess.run([sys.executable, __file__, "--nproc", str(nproc), "--samples", str(samples),
                    "--out", str(out)], check=True)
    for r in json.loads(out.read_text())["runs"]:
        assert r["grad_rel"] <= GRAD_RTOL and r["bn_rel"] <= GRAD_RTOL, r
        assert r["ratio"] <= bound, r


if __name__ == "__main__":
    sys.exit(main())
