"""Networks trained and tested under a mean weight shift (poster Fig. 8).

    python -m xbarlab.nn.figures.mean_shift --out DIR [--shift-kind proportional|offset]
        [--dataset digits] [--epochs 20] [--samples 4] [--sigma 0.05]
        [--train-shifts 0,-0.2,-0.4] [--test-shifts 0,-0.1,-0.2,-0.3,-0.4,-0.5] [--seed 0]

Networks trained (HA-SGD, Gaussian σ = 5 % of max|w|) with different mean shifts μ_train,
tested under σ = 5 % and shifts μ_test. ``--shift-kind offset`` (the poster's perturbation
model, ν ~ N(μ, σ²) i.i.d. in units of the layer's range: every weight moves by the same
μ·max|w|, :class:`~xbarlab.nn.noise.OffsetNoise`) or ``proportional``
(``GaussianNoise(σ, shift=μ)``: each weight moves by μ·w, which a ReLU MLP mostly absorbs as
a rescaling of its logits). Writes ``results.json``, ``table.md``, ``shift.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...errors import ConfigError
from ..data import load_dataset, model_config
from ..noise import GaussianNoise, OffsetNoise
from ..train import deterministic_algorithms, evaluate_noise, seed_generators, train
from .common import new_figure

__all__ = ["run", "main"]


def run(*, out: Path, dataset: str = "digits", epochs: int = 20, samples: int = 4,
              sigma: float = 0.05, train_shifts=(0.0, -0.2, -0.4),
              test_shifts=(0.0, -0.1, -0.2, -0.3, -0.4, -0.5), draws: int = 10,
              seed: int = 0, kind: str = "proportional") -> dict:
    """Train at shift μ_train (σ = 5 %), test at σ = 5 % and shift μ_test.

    ``kind``: "proportional" (Δw mean μ·w, :class:`GaussianNoise`) or "offset" (mean
    μ·max|w| for every entry, :class:`OffsetNoise`)."""
    if kind not in ("proportional", "offset"):
        raise ConfigError(f"shift kind must be 'proportional' or 'offset', got {kind!r}")

    def make(s: float, mu: float):
        return GaussianNoise(s, shift=mu) if kind == "proportional" else OffsetNoise(s, mu)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(dataset)
    cfg = model_config("mlp", data)
    rows = []
    for mu in train_shifts:
        res = train(data, cfg, noise=make(sigma, mu), samples=samples, epochs=epochs,
                    seed=seed, out=out / f"train_shift_{mu:+.2f}")
        net = res.model
        info = {"clean_accuracy": res.clean_accuracy, "train_time_s": res.train_time_s,
                "final_loss": res.history[-1]["loss"] if res.history else None}
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
    fig, ax = new_figure(figsize=(6, 4))
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
    print(head + body)
    return res


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(f"{flag} {text!r} is not a comma-separated list of numbers") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xbarlab.nn.figures.mean_shift")
    p.add_argument("--out", required=True)
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-shifts", default="0,-0.2,-0.4")
    p.add_argument("--test-shifts", default="0,-0.1,-0.2,-0.3,-0.4,-0.5")
    p.add_argument("--shift-kind", default="proportional", choices=["proportional", "offset"],
                   help="mean μ·w or μ·max|w| (the poster's model)")
    p.add_argument("--sigma", type=float, default=0.05, help="σ in training and test")
    a = p.parse_args(argv)
    with deterministic_algorithms():
        run(out=Path(a.out), dataset=a.dataset, epochs=a.epochs, samples=a.samples,
            seed=a.seed, sigma=a.sigma, kind=a.shift_kind,
            train_shifts=_floats(a.train_shifts, "--train-shifts"),
            test_shifts=_floats(a.test_shifts, "--test-shifts"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
