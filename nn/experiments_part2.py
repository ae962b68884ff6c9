"""nn part 2 experiments (README): device-derived noise, HA-SGD against it, accuracy over time.

Run as ``python -m xbarlab.nn.experiments_part2 <experiment> --out DIR [options]``:

* ``pcm``: IBM PCM preset (``pcm-ibm-2020``). Export the weight-domain noise at 1 s, 1 h,
  1 d, 1 y; train plain SGD and HA-SGD (L samples, against the mixture of the exported
  times, mean shift included); evaluate both over time in statistical mode (N
  programmings, with and without global drift compensation) and in circuit mode (one
  chip, a subset of the test split, wire resistance given). Writes ``noise.h5``,
  ``sgd/``, ``hasgd/`` (model.pt), ``results.json``, ``table.md``, ``accuracy_vs_time.png``.
* ``shift``: the poster's Fig. 8. Networks trained (HA-SGD, Gaussian σ = 5 % of max|w|)
  with different mean shifts μ_train, tested under σ = 5 % and shifts μ_test.
  ``--shift-kind offset`` (the poster's perturbation model, ν ~ N(μ, σ²) i.i.d. in units
  of the layer's range: every weight moves by the same μ·max|w|, :class:`OffsetNoise`)
  or ``proportional`` (``GaussianNoise(σ, shift=μ)``: each weight moves by μ·w, which a
  ReLU MLP mostly absorbs as a rescaling of its logits).
  Writes ``results.json``, ``table.md``, ``shift.png``.
* ``fitted``: the ``pcm`` experiment for a fitted device-model file (e.g. Stanford tech C
  from ``xbarlab calibrate``), adding ``--bootstrap K`` calibration replicates.

Everything is seeded (``--seed``); small settings run on a 2-core CPU in minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["OffsetNoise", "run_pcm", "run_shift", "main"]

TIMES = "1s,1h,1d,1y"


@dataclass(frozen=True)
class OffsetNoise:
    """The poster's perturbation model with a non-zero mean (its Fig. 8).

    ``Δw = (μ + σ·z)·max|w|``, ``z ~ N(0, 1)`` i.i.d.: every entry of a layer tensor
    moves by the same offset μ·max|w| (a device shift in the layer's conductance range,
    whatever the weight) plus zero-mean noise. ``max|w|`` per tensor (weight and bias
    separately, as :class:`~xbarlab.nn.noise.GaussianNoise`), detached.
    """

    sigma: float
    """σ: standard deviation relative to the layer's max|w| (dimensionless, ≥ 0)."""
    offset: float = 0.0
    """μ: mean of the perturbation relative to the layer's max|w| (dimensionless)."""

    def __post_init__(self):
        from ..errors import ConfigError

        for name in ("sigma", "offset"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"OffsetNoise.{name} must be a finite number, got {v!r}")
        if self.sigma < 0:
            raise ConfigError(f"OffsetNoise.sigma must be >= 0, got {self.sigma!r}")

    def perturbation(self, w: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        w = w.detach()
        peak = w.abs().amax() if w.numel() else w.new_zeros(())
        return (self.offset + self.sigma * z) * peak

    def to_dict(self) -> dict:
        return {"kind": "offset", "sigma": float(self.sigma), "offset": float(self.offset)}


def _train(data, cfg, *, noise, samples, epochs, seed, out: Path):
    from .train import WEIGHTS_NAME, accuracy, init_model, seed_generators, train_model

    gens = seed_generators(seed)
    net = init_model(cfg, gens["init"])
    t0 = time.perf_counter()
    hist = train_model(net, data, noise=noise, samples=samples, epochs=epochs, generators=gens)
    secs = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "config": cfg,
                "train": {"samples": samples, "epochs": epochs, "seed": seed,
                          "train_noise": None if noise is None else noise.to_dict()}},
               out / WEIGHTS_NAME)
    return net, {"clean_accuracy": accuracy(net, data.x_test, data.y_test),
                 "train_time_s": secs, "final_loss": hist[-1]["loss"] if hist else None}


def _plot_methods(evs: dict, path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    colors = {"SGD": "tab:red", "HA-SGD": "tab:blue"}
    for method, ev in evs.items():
        groups = {}
        for e in ev["results"]:
            if e["model_draw"] != "fit":
                continue
            groups.setdefault((e["mode"], e["compensation"]), []).append(e)
        for (mode, comp), es in groups.items():
            es.sort(key=lambda e: e["time_s"])
            ax.errorbar([max(e["time_s"], 1e-3) for e in es], [e["accuracy_mean"] for e in es],
                        yerr=[e["accuracy_std"] for e in es], capsize=3,
                        color=colors.get(method), ls="-" if comp == "none" else "--",
                        marker="o" if mode == "statistical" else "s",
                        label=f"{method}, {mode}, "
                        f"{'no comp.' if comp == 'none' else 'drift comp.'}")
        ax.axhline(ev["clean_accuracy"], color=colors.get(method), ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("time after programming [s]")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(evs: dict) -> str:
    times = None
    lines = []
    for method, ev in evs.items():
        rows = {}
        for e in ev["results"]:
            key = (e["mode"], e["compensation"], e["model_draw"])
            rows.setdefault(key, {})[e["time"]] = e
            times = times or [x["time"] for x in ev["results"]
                              if (x["mode"], x["compensation"], x["model_draw"]) == key]
        for (mode, comp, draw), r in rows.items():
            cells = [f"{r[t]['accuracy_mean']:.3f} ± {r[t]['accuracy_std']:.3f}" for t in times]
            extra = "" if draw == "fit" else " (bootstrap)"
            lines.append(f"| {method} | {ev['clean_accuracy']:.3f} | {mode}{extra} | {comp} | "
                         + " | ".join(cells) + " |")
    head = ("| training | digital | mode | drift comp. | " + " | ".join(times) + " |\n"
            "|---|---|---|---|" + "---|" * len(times) + "\n")
    return head + "\n".join(lines) + "\n"


def run_pcm(*, out: Path, device_model: str = "pcm-ibm-2020", dataset: str = "digits",
            epochs: int = 20, samples: int = 4, g_max: float | None = 2.5e-6,
            g_min: float | None = None, allow_extrapolation: bool = False,
            times: str = TIMES, programmings: int = 10, circuit_samples: int = 120,
            r_wire: float = 0.5, tile: int = 512, seed: int = 0, bootstrap: int = 0,
            grid: int = 51, noise_samples: int = 100_000, train_time: str | None = None,
            progress: bool = True) -> dict:
    from ..crossbar.tiling import TileConfig
    from ..units import parse_durations
    from .data import load_dataset, model_config
    from .evaluate import evaluate_over_time
    from .export import export_noise, load_device_model
    from .noise_file import NoiseFile

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(torch, "use_deterministic_algorithms"):
        torch.use_deterministic_algorithms(True)
    dev = load_device_model(device_model)
    ts = parse_durations(times)
    t0 = time.perf_counter()
    tab = export_noise(dev, ts, np.random.default_rng(seed), g_min=g_min, g_max=g_max,
                       w_grid=np.linspace(-1, 1, grid), n_samples=noise_samples,
                       device_name=device_model, allow_extrapolation=allow_extrapolation)
    tab.write(out / "noise.h5", force=True)
    export_s = time.perf_counter() - t0
    nf = NoiseFile.load(out / "noise.h5")
    noise = nf.noise(train_time)
    data = load_dataset(dataset)
    cfg = model_config("mlp", data)
    info = {}
    nets = {}
    nets["SGD"], info["SGD"] = _train(data, cfg, noise=None, samples=0, epochs=epochs,
                                      seed=seed, out=out / "sgd")
    nets["HA-SGD"], info["HA-SGD"] = _train(data, cfg, noise=noise, samples=samples,
                                            epochs=epochs, seed=seed, out=out / "hasgd")
    tcfg = TileConfig(rows=tile, cols=tile, g_min=tab.g_min, g_max=tab.g_max, r_row=r_wire,
                      r_col=r_wire)
    evs = {}
    for method, net in nets.items():
        modes = ("statistical", "circuit") if circuit_samples else ("statistical",)
        evs[method] = evaluate_over_time(
            net, data.x_test, data.y_test, dev, ts, np.random.default_rng(seed + 1),
            programmings=programmings, modes=modes, tile=tcfg, x_cal=data.x_train,
            circuit_programmings=1, circuit_samples=circuit_samples or None,
            bootstrap=bootstrap, progress=progress)
    res = {"experiment": "pcm", "device_model": device_model, "dataset": dataset,
           "epochs": epochs, "samples": samples, "g_max_S": tab.g_max, "times_s": ts,
           "train_noise": noise.to_dict(), "noise_file": nf.describe(),
           "export_time_s": export_s, "training": info, "evaluations": evs,
           "settings": {"programmings": programmings, "circuit_samples": circuit_samples,
                        "r_wire_ohm": r_wire, "tile": tile, "seed": seed,
                        "bootstrap": bootstrap, "torch_threads": torch.get_num_threads()}}
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    table = _table(evs)
    (out / "table.md").write_text(table)
    gm = f"{tab.g_max * 1e6:g} µS"
    _plot_methods(evs, out / "accuracy_vs_time.png",
                  f"{dataset} MLP on {device_model} (g_max {gm}, {tile}×{tile} tiles, "
                  f"circuit r = {r_wire:g} Ω)")
    print(table)
    return res


def run_shift(*, out: Path, dataset: str = "digits", epochs: int = 20, samples: int = 4,
              sigma: float = 0.05, train_shifts=(0.0, -0.2, -0.4),
              test_shifts=(0.0, -0.1, -0.2, -0.3, -0.4, -0.5), draws: int = 10,
              seed: int = 0, kind: str = "proportional") -> dict:
    """Poster Fig. 8: train at shift μ_train (σ = 5 %), test at σ = 5 % and shift μ_test.

    ``kind``: "proportional" (Δw mean μ·w, :class:`GaussianNoise`) or "offset" (mean
    μ·max|w| for every entry, :class:`OffsetNoise`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..errors import ConfigError
    from .data import load_dataset, model_config
    from .noise import GaussianNoise
    from .train import evaluate_noise, seed_generators

    if kind not in ("proportional", "offset"):
        raise ConfigError(f"shift kind must be 'proportional' or 'offset', got {kind!r}")

    def make(s: float, mu: float):
        return GaussianNoise(s, shift=mu) if kind == "proportional" else OffsetNoise(s, mu)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(torch, "use_deterministic_algorithms"):
        torch.use_deterministic_algorithms(True)
    data = load_dataset(dataset)
    cfg = model_config("mlp", data)
    rows = []
    for mu in train_shifts:
        net, info = _train(data, cfg, noise=make(sigma, mu), samples=samples,
                           epochs=epochs, seed=seed, out=out / f"train_shift_{mu:+.2f}")
        accs = []
        for mt in test_shifts:
            e = evaluate_noise(net, data.x_test, data.y_test, levels=[sigma],
                               make_noise=lambda s, mt=mt: make(s, mt),
                               draws=draws, generator=seed_generators(seed)["eval"])[0]
            accs.append({"test_shift": mt, "accuracy_mean": e["accuracy_mean"],
                         "accuracy_std": e["accuracy_std"]})
        rows.append({"train_shift": mu, **info, "eval": accs})
    res = {"experiment": "shift", "kind": kind, "dataset": dataset, "sigma": sigma,
           "samples": samples,
           "epochs": epochs, "draws": draws, "seed": seed, "rows": rows}
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    head = "| μ_train \\ μ_test | " + " | ".join(f"{m:+.3g}" for m in test_shifts) + " |\n"
    head += "|---|" + "---|" * len(test_shifts) + "\n"
    body = "".join(f"| {r['train_shift']:+.3g} | " + " | ".join(
        f"{a['accuracy_mean']:.3f} ± {a['accuracy_std']:.3f}" for a in r["eval"]) + " |\n"
        for r in rows)
    (out / "table.md").write_text(head + body)
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.errorbar([a["test_shift"] for a in r["eval"]], [a["accuracy_mean"] for a in r["eval"]],
                    yerr=[a["accuracy_std"] for a in r["eval"]], marker="o", capsize=3,
                    label=f"trained at μ = {r['train_shift']:+.3g}")
    ax.set_xlabel("test mean shift μ (" + ("fraction of each weight" if kind == "proportional"
                                           else "fraction of the layer's max|w|") + ")")
    ax.set_ylabel(f"test accuracy (σ = {sigma:g} · max|w|)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{dataset} MLP, HA-SGD L = {samples}, σ_train = {sigma:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "shift.png", dpi=120)
    plt.close(fig)
    print(head + body)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xbarlab.nn.experiments_part2")
    p.add_argument("experiment", choices=["pcm", "shift", "fitted"])
    p.add_argument("--out", required=True)
    p.add_argument("--device-model", default="pcm-ibm-2020")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--g-max", type=float, default=2.5e-6)
    p.add_argument("--g-min", type=float, default=None)
    p.add_argument("--allow-extrapolation", action="store_true")
    p.add_argument("--times", default=TIMES)
    p.add_argument("--train-time", default=None,
                   help="train against one stored time (default: mixture of all)")
    p.add_argument("--programmings", type=int, default=10)
    p.add_argument("--circuit-samples", type=int, default=120)
    p.add_argument("--r-wire", type=float, default=0.5)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--bootstrap", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-shifts", default="0,-0.2,-0.4", help="shift experiment")
    p.add_argument("--test-shifts", default="0,-0.1,-0.2,-0.3,-0.4,-0.5",
                   help="shift experiment")
    p.add_argument("--shift-kind", default="proportional", choices=["proportional", "offset"],
                   help="shift experiment: mean μ·w or μ·max|w| (the poster's model)")
    p.add_argument("--sigma", type=float, default=0.05, help="shift experiment: σ train/test")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.experiment == "shift":
        run_shift(out=Path(a.out), dataset=a.dataset, epochs=a.epochs, samples=a.samples,
                  seed=a.seed, sigma=a.sigma, kind=a.shift_kind,
                  train_shifts=tuple(float(v) for v in a.train_shifts.split(",")),
                  test_shifts=tuple(float(v) for v in a.test_shifts.split(",")))
    else:
        run_pcm(out=Path(a.out), device_model=a.device_model, dataset=a.dataset,
                epochs=a.epochs, samples=a.samples, g_max=a.g_max, g_min=a.g_min,
                allow_extrapolation=a.allow_extrapolation, times=a.times,
                programmings=a.programmings, circuit_samples=a.circuit_samples,
                r_wire=a.r_wire, tile=a.tile, seed=a.seed, bootstrap=a.bootstrap,
                train_time=a.train_time, progress=not a.no_progress)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
