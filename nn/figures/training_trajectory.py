"""Equal compute measured along training: accuracy vs forward/backward passes.

    python -m xbarlab.nn.figures.training_trajectory --out runs/nn-exp [--datasets digits]

HA-SGD L = 4 (40 epochs) and noise injection L = 1 (160 epochs) at σ_train = 0.4 are
retrained (same seed streams as ``xbarlab train``, so the same networks) and measured at
20 equally spaced numbers of passes, so a method whose accuracy peaks early is not judged
by its last epoch only. Writes ``exp2-trajectory.md`` and ``exp2-trajectory.json``.
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..data import load_dataset, model_config
from ..noise import GaussianNoise
from ..train import accuracy, evaluate_noise, seed_generators, train
from .common import DATASETS, figure_main, write_outputs

__all__ = ["trajectory", "run", "main"]


def trajectory(dataset: str, sigma: float, samples: int, epochs: int, every: int,
               test_sigmas, draws: int = 10, seed: int = 0) -> list[dict]:
    """Train like ``xbarlab train`` (same seed streams, so the same network) and, every
    ``every`` epochs, measure clean accuracy and accuracy at each test σ (``draws``
    perturbations from a generator of its own) on a copy, so training is untouched."""
    data = load_dataset(dataset)
    ev_gen = seed_generators(seed)["eval"]
    rows = []

    def measure(epoch: int, loss: float, net) -> None:
        if epoch % every:
            return
        probe = copy.deepcopy(net)
        ev = evaluate_noise(probe, data.x_test, data.y_test, levels=list(test_sigmas),
                            make_noise=GaussianNoise, draws=draws, generator=ev_gen)
        rows.append({"epoch": epoch, "passes_per_example": epoch * max(samples, 1),
                     "train_loss": loss, "clean": accuracy(probe, data.x_test, data.y_test),
                     "acc": {f"{e['noise']:g}": (e["accuracy_mean"], e["accuracy_std"])
                             for e in ev}})

    train(data, model_config("mlp", data), noise=GaussianNoise(sigma) if samples else None,
          samples=samples, epochs=epochs, seed=seed, callback=measure)
    return rows


def run(out: Path, datasets=DATASETS, sigma: float = 0.4,
                        test_sigmas=(0.4, 0.5), points: int = 20) -> dict:
    """Equal compute along the way: HA-SGD L=4 (40 epochs) and injection L=1 (160 epochs), both
    measured at ``points`` equally spaced numbers of forward/backward passes."""
    runs = {"HA-SGD L=4": (4, 40), "inj L=1": (1, 160)}
    summary = {}
    md = [f"## Equal compute along training: accuracy (%) vs passes, σ_train = {sigma:g}, "
          "MLP, seed 0", "",
          "Passes = epochs × L (forward/backward passes per training example). Test σ "
          f"{', '.join(f'{t:g}' for t in test_sigmas)}; 10 draws each.", ""]
    for ds in datasets:
        summary[ds] = {lab: trajectory(ds, sigma, L, ep, ep // points, test_sigmas)
                       for lab, (L, ep) in runs.items()}
        md += [f"### {ds}", "",
               "| passes | " + " | ".join(f"{lab}: train loss, clean, σ " + " / ".join(
                   f"{t:g}" for t in test_sigmas) for lab in runs) + " |",
               "|---|" + "---|" * len(runs)]
        for i in range(points):
            cells = []
            for lab in runs:
                r = summary[ds][lab][i]
                cells.append(f"{r['train_loss']:.3f}, {100 * r['clean']:.1f}, " + " / ".join(
                    f"{100 * r['acc'][f'{t:g}'][0]:.1f}" for t in test_sigmas))
            md.append(f"| {summary[ds]['inj L=1'][i]['passes_per_example']} | "
                      + " | ".join(cells) + " |")
        md.append("")
        for lab in runs:
            best = max(summary[ds][lab], key=lambda r: r["acc"][f"{test_sigmas[0]:g}"][0])
            md.append(f"{ds}, {lab}: best at σ {test_sigmas[0]:g} after "
                      f"{best['passes_per_example']} passes ({best['epoch']} epochs): "
                      + " / ".join(f"{100 * best['acc'][f'{t:g}'][0]:.1f}"
                                   for t in test_sigmas)
                      + " (picked on the test split: an upper bound, not a fair score)")
        md.append("")
    write_outputs(out, "exp2-trajectory", md, summary)
    return summary


def main(argv=None) -> int:
    return figure_main("training_trajectory", "exp2-trajectory", run, DATASETS, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
