"""Drift compensation on a BatchNorm CNN: accuracy over time, none / global / column.

    python -m xbarlab.nn.figures.cnn_compensation --out DIR [--device-model pcm-ibm-2020]
        [--dataset digits] [--epochs 15] [--samples 4] [--times 1s,1h,1d,7d,1y]
        [--programmings 30] [--train-compensation global] [--seed 0]

The ``resnet`` of the model zoo (:func:`~xbarlab.nn.data.build_model`: convolutions without
bias, each followed by a digital BatchNorm, residual blocks, a Linear classifier) is trained
with plain SGD (Adam, no noise) and with HA-SGD (L samples against the weight-domain noise
the device model gives over the mapping's range at the read times, mixture over the times,
:func:`~xbarlab.nn.export.export_noise` with ``--train-compensation``), then programmed
onto the device model over its full range (:func:`~xbarlab.devices.mapping.mapping_for`)
and read at each time (:func:`~xbarlab.nn.evaluate.evaluate`, statistical mode, 256 × 256
tiles) with no, global (one factor per layer) and column (one factor per output channel)
drift compensation, each against both references (the ideal product and the first read
after programming, :class:`~xbarlab.devices.mapping.CompensationReference`). Every cell:
mean accuracy over the N programmings of one trained network and its 95 % Student-t
interval. Writes ``noise.h5``, ``sgd/``, ``hasgd/`` (model.pt), ``results.json``,
``table.md`` and ``cnn_compensation.png``. Everything is seeded (``--seed``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...devices.mapping import CompensationReference, mapping_for
from ...units import format_duration, parse_durations
from ..data import load_dataset, model_config
from ..evaluate import COMPENSATIONS, EvaluationSettings, evaluate, t_interval
from ..export import export_noise, load_device_model
from ..noise_file import NoiseFile
from ..train import deterministic_algorithms, torch_threads, train
from .common import new_figure

__all__ = ["TIMES", "run", "main"]

#: default read times [s]: 1 s, 1 h, 1 d, 1 week, 1 y
TIMES = (1.0, 3600.0, 86400.0, 7 * 86400.0, 365.25 * 86400.0)
_REFS = tuple(CompensationReference)


def _cells(ev: dict) -> dict:
    """``{(compensation, time [s]): (mean, 95 % half-width)}`` of an evaluation
    (:func:`~xbarlab.nn.evaluate.t_interval`; the half-width is NaN for one programming)."""
    out = {}
    for e in ev["results"]:
        m, lo, hi = t_interval(e["accuracies"])
        out[(e["compensation"], e["time_s"])] = (m, (hi - lo) / 2)
    return out


def _table(evs: dict, ts: Sequence[float]) -> str:
    head = ("| training | digital | reference | compensation | "
            + " | ".join(format_duration(t) for t in ts) + " |\n"
            "|---|---|---|---|" + "---|" * len(ts) + "\n")
    lines = []
    for (method, ref), ev in evs.items():
        cells = _cells(ev)
        for comp in COMPENSATIONS:
            if comp == "none" and ref != _REFS[0]:
                continue  # the same reads as the first reference
            row = [f"{cells[comp, t][0]:.3f} ± {cells[comp, t][1]:.3f}" for t in ts]
            lines.append(f"| {method} | {ev['clean_accuracy']:.3f} | "
                         f"{'—' if comp == 'none' else ref} | {comp} | " + " | ".join(row)
                         + " |")
    return head + "\n".join(lines) + "\n"


def _plot(evs: dict, path: Path, title: str) -> None:
    fig, ax = new_figure(figsize=(7.2, 4.6))
    colors = {"SGD": "tab:red", "HA-SGD": "tab:blue"}
    styles = {"none": "-", "global": "--", "column": ":"}
    for (method, ref), ev in evs.items():
        if ref != CompensationReference.IDEAL:
            continue
        cells = _cells(ev)
        ts = sorted({t for _, t in cells})
        for comp in COMPENSATIONS:
            m = [cells[comp, t][0] for t in ts]
            h = [cells[comp, t][1] for t in ts]
            ax.errorbar(ts, m, yerr=h, capsize=3, color=colors[method], ls=styles[comp],
                        marker="o", ms=3, label=f"{method}, {comp}")
        ax.axhline(ev["clean_accuracy"], color=colors[method], ls=(0, (1, 4)), lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("time after programming [s]")
    ax.set_ylabel("test accuracy (mean, 95 % t-interval)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run(*, out: Path, device_model: str = "pcm-ibm-2020", dataset: str = "digits",
        epochs: int = 15, samples: int = 4, times: Sequence[float] = TIMES,
        programmings: int = 30, train_compensation: str = "global", seed: int = 0,
        grid: int = 51, noise_samples: int = 100_000, progress: bool = True) -> dict:
    """Export the training noise, train SGD and HA-SGD, evaluate both over ``times`` [s]
    with every compensation and reference; returns the results dict (also written)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = load_device_model(device_model)
    ts = [float(t) for t in times]
    mapping = mapping_for(dev)
    t0 = time.perf_counter()
    tab = export_noise(dev, ts, np.random.default_rng(seed), mapping=mapping,
                       w_grid=np.linspace(-1, 1, grid), n_samples=noise_samples,
                       compensation=train_compensation, device_name=device_model)
    tab.write(out / "noise.h5", force=True)
    export_s = time.perf_counter() - t0
    noise = NoiseFile.load(out / "noise.h5").noise(None)
    data = load_dataset(dataset)
    cfg = model_config("resnet", data)
    nets, info = {}, {}
    for method, sub, noise_m, L in (("SGD", "sgd", None, 0), ("HA-SGD", "hasgd", noise, samples)):
        res = train(data, cfg, noise=noise_m, samples=L, epochs=epochs, seed=seed,
                    out=out / sub, progress=progress)
        nets[method] = res.model
        info[method] = {"clean_accuracy": res.clean_accuracy, "train_time_s": res.train_time_s,
                        "final_loss": res.history[-1]["loss"] if res.history else None}
    evs = {}
    for method, net in nets.items():
        for ref in _REFS:
            st = EvaluationSettings(times=tuple(ts), programmings=programmings,
                                    compensations=COMPENSATIONS, mapping=mapping,
                                    compensation_reference=ref)
            evs[method, ref] = evaluate(net, data.x_test, data.y_test, dev, st,
                                        np.random.default_rng(seed + 1), x_cal=data.x_train,
                                        progress=progress)
    table = _table(evs, ts)
    res = {"experiment": "cnn-compensation", "device_model": device_model, "dataset": dataset,
           "model": cfg, "epochs": epochs, "samples": samples, "times_s": ts,
           "mapping": mapping.to_dict(), "train_compensation": train_compensation,
           "train_noise": noise.to_dict(), "export_time_s": export_s, "training": info,
           "evaluations": {f"{m} / {r}": ev for (m, r), ev in evs.items()},
           "settings": {"programmings": programmings, "seed": seed, "interval": "95 % t",
                        "torch_threads": torch.get_num_threads()}}
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "table.md").write_text(table)
    _plot(evs, out / "cnn_compensation.png",
          f"{dataset} BatchNorm ResNet on {device_model} ({mapping.g_min * 1e6:g}–"
          f"{mapping.g_max * 1e6:g} µS), reference: ideal product, N = {programmings}")
    print(table)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xbarlab.nn.figures.cnn_compensation")
    p.add_argument("--out", required=True)
    p.add_argument("--device-model", default="pcm-ibm-2020")
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--times", default="1s,1h,1d,7d,1y")
    p.add_argument("--programmings", type=int, default=30)
    p.add_argument("--train-compensation", default="global", choices=["none", "global"],
                   help="compensation of the HA-SGD training noise tables (default global)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    with deterministic_algorithms(), torch_threads(a.threads):
        run(out=Path(a.out), device_model=a.device_model, dataset=a.dataset, epochs=a.epochs,
            samples=a.samples, times=parse_durations(a.times, what="--times"),
            programmings=a.programmings, train_compensation=a.train_compensation,
            seed=a.seed, progress=not a.no_progress)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
