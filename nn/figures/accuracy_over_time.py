"""Accuracy over time after programming: SGD vs HA-SGD trained against device-derived noise.

    python -m xbarlab.nn.figures.accuracy_over_time --out DIR [--device-model pcm-ibm-2020]
        [--dataset digits] [--epochs 20] [--samples 4] [--g-max 2.5e-6] [--times 1s,1h,1d,1y]
        [--programmings 10] [--circuit-samples 120] [--r-wire 0.5] [--tile 512]
        [--bootstrap K] [--seed 0]

Export the weight-domain noise of the device model at the given times
(:func:`~xbarlab.nn.export.export_noise`); train plain SGD and HA-SGD (L samples, against the
mixture of the exported times, mean shift included, or one ``--train-time``); evaluate both
over time (:func:`~xbarlab.nn.evaluate.evaluate`) in statistical mode (N programmings, with
and without global drift compensation) and in circuit mode (one chip, a subset of the test
split, the wire resistance given). A fitted device-model file (e.g. from ``xbarlab
calibrate``) works the same way, with ``--bootstrap K`` calibration replicates. Writes
``noise.h5``, ``sgd/``, ``hasgd/`` (model.pt), ``results.json``, ``table.md`` and
``accuracy_vs_time.png``. Everything is seeded (``--seed``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...crossbar.tiling import TileConfig
from ...devices.mapping import mapping_for
from ...units import parse_duration, parse_durations
from ..data import load_dataset, model_config
from ..evaluate import EvaluationSettings, evaluate
from ..export import export_noise, load_device_model
from ..noise_file import NoiseFile
from ..train import deterministic_algorithms, train
from .common import new_figure

__all__ = ["TIMES", "run", "main"]

#: default read times [s]: 1 s, 1 h, 1 d, 1 y
TIMES = (1.0, 3600.0, 86400.0, 365.25 * 86400.0)


def _train(data, cfg, *, noise, samples, epochs, seed, out: Path):
    res = train(data, cfg, noise=noise, samples=samples, epochs=epochs, seed=seed, out=out)
    return res.model, {"clean_accuracy": res.clean_accuracy, "train_time_s": res.train_time_s,
                       "final_loss": res.history[-1]["loss"] if res.history else None}


def _plot_methods(evs: dict, path: Path, title: str):
    fig, ax = new_figure(figsize=(6.8, 4.4))
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


def run(*, out: Path, device_model: str = "pcm-ibm-2020", dataset: str = "digits",
            epochs: int = 20, samples: int = 4, g_max: float | None = 2.5e-6,
            g_min: float | None = None, allow_extrapolation: bool = False,
            times: Sequence[float] = TIMES, programmings: int = 10, circuit_samples: int = 120,
            r_wire: float = 0.5, tile: int = 512, seed: int = 0, bootstrap: int = 0,
            grid: int = 51, noise_samples: int = 100_000, train_time: float | None = None,
            progress: bool = True) -> dict:
    """Export, train SGD and HA-SGD, evaluate over ``times`` [s]; returns the results dict.

    ``g_min``/``g_max`` [S]: the mapping range (None: the model's); ``train_time`` [s]:
    train against the table at that stored time (None: the mixture of all).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = load_device_model(device_model)
    ts = [float(t) for t in times]
    t0 = time.perf_counter()
    mapping = mapping_for(dev, g_min=g_min, g_max=g_max, allow_extrapolation=allow_extrapolation)
    tab = export_noise(dev, ts, np.random.default_rng(seed), mapping=mapping,
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
    tcfg = TileConfig(rows=tile, cols=tile, r_row=r_wire, r_col=r_wire)
    evs = {}
    for method, net in nets.items():
        modes = ("statistical", "circuit") if circuit_samples else ("statistical",)
        settings = EvaluationSettings(times=tuple(ts), programmings=programmings, modes=modes,
                                      tile=tcfg, mapping=mapping,
                                      allow_extrapolation=allow_extrapolation,
                                      circuit_programmings=1,
                                      circuit_samples=circuit_samples or None,
                                      bootstrap=bootstrap)
        evs[method] = evaluate(net, data.x_test, data.y_test, dev, settings,
                               np.random.default_rng(seed + 1), x_cal=data.x_train,
                               progress=progress)
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xbarlab.nn.figures.accuracy_over_time")
    p.add_argument("--out", required=True)
    p.add_argument("--device-model", default="pcm-ibm-2020")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--g-max", type=float, default=2.5e-6)
    p.add_argument("--g-min", type=float, default=None)
    p.add_argument("--allow-extrapolation", action="store_true")
    p.add_argument("--times", default="1s,1h,1d,1y")
    p.add_argument("--train-time", default=None,
                   help="train against one stored time (default: mixture of all)")
    p.add_argument("--programmings", type=int, default=10)
    p.add_argument("--circuit-samples", type=int, default=120)
    p.add_argument("--r-wire", type=float, default=0.5)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--bootstrap", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    with deterministic_algorithms():
        run(out=Path(a.out), device_model=a.device_model, dataset=a.dataset, epochs=a.epochs,
            samples=a.samples, g_max=a.g_max, g_min=a.g_min,
            allow_extrapolation=a.allow_extrapolation,
            times=parse_durations(a.times, what="--times"), programmings=a.programmings,
            circuit_samples=a.circuit_samples, r_wire=a.r_wire, tile=a.tile, seed=a.seed,
            bootstrap=a.bootstrap,
            train_time=None if a.train_time is None else parse_duration(a.train_time,
                                                                          what="--train-time"),
            progress=not a.no_progress)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
