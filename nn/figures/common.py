"""What the figure scripts share: cached training runs, curves, tables and plots."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..noise import GaussianNoise
from ..train import METRICS_NAME, deterministic_algorithms, train_and_evaluate

__all__ = ["EVAL_SIGMAS", "SIGMAS", "DATASETS", "figure_main", "trained_run", "curve", "new_figure",
           "plot_curves", "markdown_table", "write_outputs"]

#: test σ grid of the noise-level figures (relative to max|w| per layer)
EVAL_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
#: σ_train grid per data set (MNIST-5k coarser: 2 CPU cores)
SIGMAS = {"digits": (0.1, 0.2, 0.3, 0.4), "mnist5k": (0.4,)}
DATASETS = ("digits", "mnist5k")


def trained_run(out: Path, dataset: str, sigma: float, samples: int, epochs: int = 40,
                seed: int = 0) -> dict:
    """The metrics of an MLP trained at σ = ``sigma`` with ``samples`` perturbations into
    ``out`` (as ``xbarlab train`` does, tested on :data:`EVAL_SIGMAS`, 10 draws); a folder
    that already holds ``metrics.json`` is reused, so an interrupted sweep resumes."""
    out = Path(out)
    if not (out / METRICS_NAME).exists():
        train_and_evaluate(dataset=dataset, model="mlp", noise=GaussianNoise(float(sigma)),
                           samples=samples, epochs=epochs, seed=seed, eval_levels=EVAL_SIGMAS,
                           eval_noise=GaussianNoise, eval_draws=10, out=out, force=True,
                           command=f"figure run: {dataset} mlp sigma={sigma:g} L={samples} "
                           f"epochs={epochs} seed={seed}")
    return json.loads((out / METRICS_NAME).read_text())


def curve(metrics: dict) -> dict[float, tuple[float, float]]:
    """``{test level: (mean accuracy, std)}`` of a run's metrics."""
    return {e["noise"]: (e["accuracy_mean"], e["accuracy_std"]) for e in metrics["eval"]}


def new_figure(figsize=(7.0, 4.8)):
    """A matplotlib Figure on its own Agg canvas (no global backend change) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_curves(path: Path, title: str, curves: dict[str, dict[float, tuple[float, float]]],
                xlabel: str = "test σ (relative to max|w| per layer)") -> None:
    """Accuracy (%) curves with error bars; colour = training σ, line style = method."""
    from matplotlib import colormaps

    fig, ax = new_figure()
    sig = sorted({lab.split("σt=")[1] for lab in curves if "σt=" in lab})
    cmap = colormaps["viridis"]
    for label, c in curves.items():
        xs = sorted(c)
        color = "k" if "σt=" not in label else cmap(
            sig.index(label.split("σt=")[1]) / max(len(sig) - 1, 1) * 0.85)
        style = ("--" if "L=1" in label else ":" if "L=8" in label else "-")
        ax.errorbar(xs, [100 * c[x][0] for x in xs], yerr=[100 * c[x][1] for x in xs],
                    label=label, marker="o", ms=3, capsize=2, color=color, ls=style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown_table(curves: dict[str, dict[float, tuple[float, float]]], xs, head: str) -> str:
    """One row per curve, one column per x: ``mean ± std`` in %."""
    lines = [f"| {head} | " + " | ".join(f"{x:g}" for x in xs) + " |",
             "|---|" + "---|" * len(xs)]
    for label, c in curves.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{100 * c[x][0]:.1f} ± {100 * c[x][1]:.1f}" if x in c else "" for x in xs) + " |")
    return "\n".join(lines)


def write_outputs(out: Path, name: str, md: list[str], summary) -> None:
    """``OUT/<name>.md`` and ``OUT/<name>.json``."""
    (out / f"{name}.md").write_text("\n".join(md) + "\n")
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))


def figure_main(name: str, stem: str, run: Callable[..., object], datasets: Sequence[str],
                argv=None, *, extra: Callable[[argparse.ArgumentParser], None] | None = None
                ) -> int:
    """The command line every figure script shares: ``--out`` and ``--datasets``, then
    ``run(out, datasets, **extra options)`` with deterministic torch algorithms; prints the
    table ``<out>/<stem>.md``. ``extra`` adds a script's own options (passed to ``run`` by
    their destination names)."""
    ap = argparse.ArgumentParser(prog=f"python -m xbarlab.nn.figures.{name}")
    ap.add_argument("--out", default="runs/nn-exp")
    ap.add_argument("--datasets", default=",".join(datasets))
    if extra is not None:
        extra(ap)
    a = vars(ap.parse_args(argv))
    out = Path(a.pop("out"))
    names = tuple(a.pop("datasets").split(","))
    out.mkdir(parents=True, exist_ok=True)
    with deterministic_algorithms():
        run(out, names, **a)
    print((out / f"{stem}.md").read_text())
    return 0
