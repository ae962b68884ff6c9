"""Digital SGD vs Analog SGD vs Tiki-Taka v2 trained in situ (Wu et al. 2024's FCN).

    python -m xbarlab.nn.figures.insitu_training --out DIR [--dataset mnist5k|digits]
        [--epochs 30] [--seeds 0,1,2] [--taus 0.6,0.8] [--jobs 1] [--device soft-bounds]

The FCN n_in-256-128-10 (sigmoid), batch 10, stochastic pulse trains (BL 31, update
management) on a pulsed device (default the ``soft-bounds`` preset), tau from ``--taus``:
digital SGD (lr 0.1), Analog SGD (lr 0.05) and Tiki-Taka v2 (lr 0.05, every column of A
read into H each step, beta 0.05), each over ``--seeds``; ``--jobs`` runs that many in
parallel processes (one torch thread each). Every run is
:func:`~xbarlab.nn.insitu_run.train_insitu` into ``DIR/<algorithm>-tau<tau>-seed<s>``
(reused when its metrics exist). Writes ``results.json`` (final test accuracy per run, mean
and 95 % t-interval per algorithm and tau), ``table.md`` and ``insitu.png`` (mean test
accuracy vs epoch).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["run", "main"]

LR = {"digital": 0.1, "analog-sgd": 0.05, "tiki-taka": 0.05}
TIKI_TAKA = {"transfer_lr": 0.05, "columns_per_transfer": 100_000}


def _one(args) -> dict:
    from ...devices.pulsed import PulsedDevice
    from ...devices.pulsed_presets import pulsed_preset, pulsed_preset_names
    from ..insitu_run import METRICS_NAME, train_insitu
    from ..train import torch_threads

    out, dataset, alg, tau, seed, epochs, device = args
    out = Path(out)
    if (out / METRICS_NAME).exists():
        return json.loads((out / METRICS_NAME).read_text())
    dev = (pulsed_preset(device) if device in pulsed_preset_names()
           else PulsedDevice.from_json(Path(device).read_text()))
    with torch_threads(1):  # one thread per run, the count restored afterwards
        return train_insitu(dataset=dataset, algorithm=alg,
                            device=None if alg == "digital" else dev, tau=tau, epochs=epochs,
                            seed=seed, lr=LR[alg],
                            tiki_taka=TIKI_TAKA if alg == "tiki-taka" else None, out=out,
                            force=True, device_source=device, progress=False,
                            command=f"figure run: {dataset} {alg} tau={tau} seed={seed}")


def run(*, out: Path, dataset: str = "mnist5k", epochs: int = 30, seeds=(0, 1, 2),
        taus=(0.6, 0.8), jobs: int = 1, device: str = "soft-bounds") -> dict:
    """Train every (algorithm, tau, seed), then write the results, table and figure."""
    import numpy as np

    from ..evaluate import t_interval
    from .common import new_figure

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [(out / f"{a}-tau{t:g}-seed{s}", dataset, a, t, s, epochs, device)
            for a in LR for t in taus for s in seeds]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            ms = list(ex.map(_one, todo))
    else:
        ms = [_one(a) for a in todo]
    res = {"dataset": dataset, "epochs": epochs, "device": device, "runs": [], "summary": []}
    fig, ax = new_figure()
    for a in LR:
        for t in taus:
            acc = [m for (_, _, aa, tt, _, _, _), m in zip(todo, ms, strict=True)
                   if aa == a and tt == t]
            final = [100 * m["final_test_accuracy"] for m in acc]
            mean, lo, hi = t_interval(final)
            res["summary"].append({"algorithm": a, "tau": t, "mean": mean, "lo": lo, "hi": hi,
                                   "n": len(final)})
            res["runs"] += [{"algorithm": a, "tau": t, "seed": m["seed"], "accuracy": f}
                            for m, f in zip(acc, final, strict=True)]
            curve = np.mean([[100 * r["test_accuracy"] for r in m["history"]] for m in acc],
                            axis=0)
            ax.plot(np.arange(1, len(curve) + 1), curve, label=f"{a}, tau {t:g}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test accuracy [%], mean of {len(seeds)} seeds")
    ax.legend()
    fig.savefig(out / "insitu.png", dpi=110)
    rows = ["| algorithm | tau | final test accuracy [%] (mean, 95 % interval) |", "|---|---|---|"]
    rows += [f"| {s['algorithm']} | {s['tau']:g} | {s['mean']:.2f} [{s['lo']:.2f}, "
             f"{s['hi']:.2f}] |" for s in res["summary"]]
    (out / "table.md").write_text("\n".join(rows) + "\n")
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xbarlab.nn.figures.insitu_training")
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", default="mnist5k", choices=["mnist5k", "digits"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--taus", default="0.6,0.8")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--device", default="soft-bounds")
    a = p.parse_args(argv)
    res = run(out=Path(a.out), dataset=a.dataset, epochs=a.epochs,
              seeds=tuple(int(s) for s in a.seeds.split(",")),
              taus=tuple(float(t) for t in a.taus.split(",")), jobs=a.jobs, device=a.device)
    print((Path(a.out) / "table.md").read_text())
    return 0 if res else 1


if __name__ == "__main__":
    raise SystemExit(main())
