"""GPU benchmark of HA-SGD: step time vs L on a CIFAR-shaped ResNet-18.

Run on a CUDA machine (results are printed as a table and written as JSON)::

    python tests/benchmarks/test_nn_gpu_bench.py --out bench.json
    pytest -m "gpu and benchmark" tests/benchmarks/test_nn_gpu_bench.py

Setup: ResNet-18 for 32×32×3 inputs (3×3 stem, no max-pool, stages 64-128-256-512,
BatchNorm, 10 classes; 11.2 M parameters), random data, batch 128, fp32, SGD with
momentum 0.9; HA-SGD with Gaussian noise σ = 0.1 on every conv and the linear layer.
Every configuration is timed in the same process, with the same TF32 settings on
both sides (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32``, both off, then both on), cuDNN autotuning on.
The bound for L passes is one plain step on an L-times larger batch.

The gradient-estimate variance at fixed weights and minibatch is measured as the
mean squared distance of K independent HA-SGD gradient estimates from their mean
(summed over all parameters), with and without antithetic pairs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from xbarlab.nn import HASGD, GaussianNoise

# ----------------------------------------------------------------------- ResNet-18 (CIFAR)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                       nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class ResNet18(nn.Module):
    """ResNet-18 for 32×32 images: 3×3 stem, [2, 2, 2, 2] basic blocks, 10 classes."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU())
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_Block(cin, cout, stride), _Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------- timing


def _time(fn, *, warmup: int, iters: int) -> float:
    """Median milliseconds of ``fn()`` measured with CUDA events (after warm-up)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def _setup(batch: int, seed: int = 0):
    dev = torch.device("cuda")
    torch.manual_seed(seed)
    model = ResNet18().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator(device=dev).manual_seed(seed)
    x = torch.randn(batch, 3, 32, 32, device=dev, generator=g)
    y = torch.randint(0, 10, (batch,), device=dev, generator=g)
    return model, opt, x, y, g


def _plain_step(model, opt, x, y, graph: bool):
    if graph:
        g = HASGD(model, opt, None, samples=0, generator=None).cuda_graph(x, y)
        return lambda: g(x, y)

    def f():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return f


def _hasgd_step(h, x, y, graph: bool):
    if graph:
        g = h.cuda_graph(x, y)
        return lambda: g(x, y)
    return lambda: h.step(x, y)


def bench_tf32(tf32: bool, *, graph: bool = False, batch: int = 128, Ls=(1, 2, 4, 8),
               iters: int = 40, modes=("sequential", "parallel", "vmap"),
               antithetic: bool = False) -> dict:
    """Step times with TF32 ``tf32``; ``graph``: every step (plain, bound and HA-SGD)
    replayed from a CUDA graph (:meth:`HASGD.cuda_graph`) instead of run eagerly."""
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    res: dict = {"tf32": tf32, "graph": graph, "batch": batch, "plain_ms": None,
                 "bound_ms": {}, "hasgd_ms": {}, "errors": {}}
    model, opt, x, y, g = _setup(batch)
    res["plain_ms"] = _time(_plain_step(model, opt, x, y, graph), warmup=10, iters=iters)
    for L in Ls:
        if L > 1:
            m2, o2, x2, y2, _ = _setup(batch * L)
            res["bound_ms"][L] = _time(_plain_step(m2, o2, x2, y2, graph), warmup=5,
                                       iters=iters)
            del m2, o2, x2, y2
        for mode in modes:
            for anti in ((False, True) if antithetic else (False,)):
                if (anti and L % 2) or (mode not in ("sequential", "auto") and L == 1):
                    continue
                key = f"{mode}{'-anti' if anti else ''}/L={L}"
                model, opt, x, y, g = _setup(batch)
                try:
                    h = HASGD(model, opt, GaussianNoise(0.1), samples=L, generator=g,
                              mode=mode, antithetic=anti)
                    res["hasgd_ms"][key] = _time(_hasgd_step(h, x, y, graph), warmup=10,
                                                 iters=iters)
                except torch.cuda.OutOfMemoryError:
                    res["hasgd_ms"][key] = None
                except Exception as e:  # noqa: BLE001 (report and go on: one run, many configs)
                    res["hasgd_ms"][key] = None
                    res["errors"][key] = f"{type(e).__name__}: {e}"[:300]
                del model, opt
                torch.cuda.empty_cache()
    model, opt, x, y, g = _setup(batch)  # plain again at the end: the drift of the machine
    plain = _plain_step(model, opt, x, y, graph)
    res["plain_ms_end"] = _time(plain, warmup=10, iters=iters)
    # L = 1 against plain, interleaved (5 rounds) so that clock drift cancels in the ratio
    m1, o1, x1, y1, g1 = _setup(batch)
    h1 = _hasgd_step(HASGD(m1, o1, GaussianNoise(0.1), samples=1, generator=g1), x1, y1,
                     graph)
    pairs = []
    for _ in range(5):
        a = _time(plain, warmup=3, iters=iters // 2)
        b = _time(h1, warmup=3, iters=iters // 2)
        pairs.append((a, b))
    res["L1_interleaved"] = {"plain_ms": [a for a, _ in pairs], "L1_ms": [b for _, b in pairs],
                             "ratio_median": statistics.median(b / a for a, b in pairs)}
    return res


def grad_variance(*, sigma: float = 0.1, K: int = 16, Ls=(1, 2, 4, 8), batch: int = 128,
                  mode: str = "parallel") -> dict:
    """Mean squared deviation of K HA-SGD gradient estimates from their mean, per L."""
    model, opt, x, y, g = _setup(batch)
    params = [p for p in model.parameters()]
    out = {}
    for anti in (False, True):
        for L in Ls:
            if anti and L % 2:
                continue
            h = HASGD(model, opt, GaussianNoise(sigma), samples=L, generator=g, mode=mode,
                      antithetic=anti)
            est = []
            h.gradient(x, y)  # warm-up (cuDNN autotuning)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(K):
                opt.zero_grad(set_to_none=True)
                h.gradient(x, y)
                est.append(torch.cat([p.grad.flatten() for p in params]).double())
            torch.cuda.synchronize()
            ms = (time.perf_counter() - t0) / K * 1e3
            e = torch.stack(est)
            var = float(((e - e.mean(0)) ** 2).sum(1).mean() * K / (K - 1))
            out[f"{'anti' if anti else 'indep'}/L={L}"] = {"variance": var, "ms_per_estimate": ms}
    model.eval()  # BN running stats moved during the estimates; irrelevant here
    return {"sigma": sigma, "K": K, "batch": batch, "variance": out}


def run(out_path: str | None = None, modes=("auto",), variance: bool = True,
        graphs=(False, True), sigmas=(0.005, 0.02, 0.1)) -> dict:
    if not torch.cuda.is_available():
        raise RuntimeError("needs a CUDA GPU")
    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result = {"machine": info, "modes": list(modes),
              "runs": [bench_tf32(tf32, graph=graph, modes=modes)
                       for graph in graphs for tf32 in (False, True)],
              "grad_variance": [grad_variance(sigma=s) for s in sigmas] if variance else []}
    for r in result["runs"]:
        p = r["plain_ms"]
        print(f"\nGPU {info['gpu']}, TF32 {'on' if r['tf32'] else 'off'}, "
              f"{'CUDA graphs' if r['graph'] else 'eager'}: plain {p:.2f} ms "
              f"(again at the end: {r['plain_ms_end']:.2f} ms)")
        for k, v in r["hasgd_ms"].items():
            L = int(k.split("=")[1])
            bound = r["bound_ms"].get(L, p)
            s = "OOM" if v is None else f"{v:.2f} ms = {v / p:.2f}x plain, {v / bound:.2f}x bound"
            print(f"  {k:22s} {s}")
        for L, b in r["bound_ms"].items():
            print(f"  bound L={L}: {b:.2f} ms = {b / p:.2f}x plain")
        print(f"  L=1 vs plain interleaved: median ratio {r['L1_interleaved']['ratio_median']:.3f}")
        for k, e in r["errors"].items():
            print(f"  {k}: {e}")
    print("\ngradient variance:", json.dumps(result["grad_variance"], indent=1))
    if out_path:
        with open(out_path, "w") as f:
            json.dump(result, f, indent=2)
    return result


@pytest.mark.gpu
@pytest.mark.benchmark
def test_resnet18_step_time_vs_L(tmp_path):
    """Runs the benchmark and checks the goals with CUDA graphs on both sides (plain,
    bound and HA-SGD steps all replayed), TF32 off and on: L = 1 at most 1.1× plain
    (interleaved median), L > 1 (auto mode) within 1.1× of the L-times-batch bound.
    Eager steps are reported only (with TF32 on they are bound by kernel launches)."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    r = run(str(tmp_path / "bench.json"), variance=False)
    for run_ in r["runs"]:
        if not run_["graph"]:
            continue
        assert run_["L1_interleaved"]["ratio_median"] <= 1.1
        for L, b in run_["bound_ms"].items():
            assert run_["hasgd_ms"][f"auto/L={L}"] <= 1.1 * b


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--modes", default="auto", help="comma list of HASGD modes to time")
    ap.add_argument("--no-variance", action="store_true")
    ap.add_argument("--graphs", default="eager,graph",
                    help="comma list: eager (steps run eagerly), graph (CUDA graphs)")
    ap.add_argument("--sigmas", default="0.005,0.02,0.1",
                    help="σ values of the gradient-variance study")
    a = ap.parse_args()
    run(a.out, modes=tuple(a.modes.split(",")), variance=not a.no_variance,
        graphs=tuple(g == "graph" for g in a.graphs.split(",")),
        sigmas=tuple(float(v) for v in a.sigmas.split(",")))
