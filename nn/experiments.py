"""The nn experiments of the README (poster Figs. 7 and 9), run on the CPU.

    python -m xbarlab.nn.experiments --out runs/nn-exp [--only exp1,exp2,exp3,variance]

Every training run goes through the ``xbarlab train`` command line (in process), into
``OUT/<experiment>/<dataset>/<run>/``; existing runs are reused, so an interrupted
sweep resumes. Each experiment writes a Markdown table, a JSON summary and a PNG plot
into ``OUT``:

1. ``exp1``: accuracy vs test σ for plain training (L = 0), noise injection (L = 1)
   and HA-SGD (L = 4, 8) trained at σ_train ∈ {0.1, 0.2, 0.3, 0.4} (MNIST-5k: 0.4 only);
   the done-when check
   (smallest test σ where plain loses ≥ 30 points; HA-SGD L = 4 trained there must lose
   at most a third as much).
2. ``exp2``: equal compute: HA-SGD L = 4 for 40 epochs against noise injection L = 1
   for 160 epochs (the same number of forward/backward passes). ``exp2-trajectory``
   retrains both (same seed, so the same networks) and measures the accuracy at test σ
   along the way, on one grid of forward/backward passes, so a method whose accuracy
   peaks early is not judged by its last epoch only.
3. ``exp3``: accuracy vs ADC bits (per-layer output quantization, range = max |output|
   on the training split) for the plain and HA-SGD networks of exp1, clean and at a
   test σ.
4. ``variance``: gradient-estimate variance vs L with independent draws and with
   antithetic pairs, for the trained plain digits MLP at a fixed minibatch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .data import load_dataset, model_config
from .hasgd import HASGD
from .noise import GaussianNoise
from .quant import attach_adc, calibrate_adc_ranges, detach_adc
from .train import accuracy, evaluate_noise, init_model, load_trained, seed_generators, train_model

__all__ = ["run_exp1", "run_exp2", "run_exp2_trajectory", "run_exp3", "run_variance", "main"]

EVAL = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
#: σ_train grid per data set (MNIST-5k coarser: 2 CPU cores)
SIGMAS = {"digits": [0.1, 0.2, 0.3, 0.4], "mnist5k": [0.4]}
DATASETS = ("digits", "mnist5k")


def _train(out: Path, dataset: str, sigma: float, samples: int, epochs: int = 40,
           seed: int = 0, extra=()) -> dict:
    from ..cli import main

    if not (out / "metrics.json").exists():
        rc = main(["train", "--dataset", dataset, "--model", "mlp", "--train-noise", str(sigma),
                   "--samples", str(samples), "--epochs", str(epochs), "--seed", str(seed),
                   "--eval-noise", ",".join(f"{v:g}" for v in EVAL), "--out", str(out),
                   "--force", *extra])
        if rc:
            raise RuntimeError(f"xbarlab train failed for {out}")
    return json.loads((out / "metrics.json").read_text())


def _curve(m: dict) -> dict[float, tuple[float, float]]:
    return {e["noise"]: (e["accuracy_mean"], e["accuracy_std"]) for e in m["eval"]}


def _plot(path: Path, title: str, curves: dict[str, dict[float, tuple[float, float]]],
          xlabel: str = "test σ (relative to max|w| per layer)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.8))
    sig = sorted({lab.split("σt=")[1] for lab in curves if "σt=" in lab})
    cmap = plt.get_cmap("viridis")
    for label, c in curves.items():
        xs = sorted(c)
        # colour = training σ, line style = method (plain black)
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
    plt.close(fig)


def _table(curves: dict[str, dict[float, tuple[float, float]]], xs, head: str) -> str:
    lines = [f"| {head} | " + " | ".join(f"{x:g}" for x in xs) + " |",
             "|---|" + "---|" * len(xs)]
    for label, c in curves.items():
        lines.append(f"| {label} | " + " | ".join(
            f"{100 * c[x][0]:.1f} ± {100 * c[x][1]:.1f}" if x in c else "" for x in xs) + " |")
    return "\n".join(lines)


def run_exp1(out: Path, datasets=DATASETS) -> dict:
    """Exp. 1 (poster Fig. 7) and the done-when check; returns the summary dict."""
    summary, md = {}, ["## Experiment 1: accuracy (%) vs test σ, MLP, 40 epochs, seed 0", ""]
    for ds in datasets:
        root = out / "exp1" / ds
        runs = {"plain (L=0)": _train(root / "plain", ds, 0.0, 0)}
        for s in SIGMAS.get(ds, [0.4]):
            runs[f"inj L=1 σt={s:g}"] = _train(root / f"inj_s{s:g}", ds, s, 1)
            runs[f"HA-SGD L=4 σt={s:g}"] = _train(root / f"ha4_s{s:g}", ds, s, 4)
            runs[f"HA-SGD L=8 σt={s:g}"] = _train(root / f"ha8_s{s:g}", ds, s, 8)
        curves = {k: _curve(m) for k, m in runs.items()}
        clean = runs["plain (L=0)"]["clean_accuracy"]
        check = None
        for x in EVAL:
            drop = clean - curves["plain (L=0)"][x][0]
            if drop >= 0.30:
                ha = _train(root / f"ha4_s{x:g}", ds, x, 4)
                ha_drop = clean - _curve(ha)[x][0]
                check = {"test_sigma": x, "plain_clean": clean, "plain_drop": drop,
                         "hasgd_L4_drop": ha_drop, "ratio": ha_drop / drop,
                         "pass": ha_drop <= drop / 3}
                break
        summary[ds] = {"curves": {k: {str(x): v for x, v in c.items()} for k, c in curves.items()},
                       "check": check,
                       "train_time_s": {k: m["train_time_s"] for k, m in runs.items()}}
        _plot(out / f"exp1_{ds}.png", f"{ds}: MLP trained at σt, tested at σ", curves)
        md += [f"### {ds}", "", _table(curves, EVAL, "method \\ test σ"), ""]
        if check:
            md.append(
                f"Done-when check ({ds}): plain clean {100 * clean:.1f} %; at test σ = "
                f"{check['test_sigma']:g} plain loses {100 * check['plain_drop']:.1f} points, "
                f"HA-SGD L=4 trained at σ = {check['test_sigma']:g} loses "
                f"{100 * check['hasgd_L4_drop']:.1f} (ratio {check['ratio']:.2f}, needs ≤ 0.33):"
                f" {'PASS' if check['pass'] else 'FAIL'}")
            md.append("")
    (out / "exp1.md").write_text("\n".join(md) + "\n")
    (out / "exp1.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_exp2(out: Path, datasets=DATASETS, sigmas=None) -> dict:
    """Exp. 2: HA-SGD L=4 (40 epochs) vs noise injection L=1 (160 epochs), same passes."""
    summary, md = {}, ["## Experiment 2: equal compute (accuracy %, MLP, seed 0)", ""]
    for ds in datasets:
        curves = {}
        for s in sigmas or ((0.2, 0.4) if ds == "digits" else (0.4,)):
            curves[f"HA-SGD L=4, 40 ep, σt={s:g}"] = _curve(
                _train(out / "exp1" / ds / f"ha4_s{s:g}", ds, s, 4))
            curves[f"inj L=1, 160 ep, σt={s:g}"] = _curve(
                _train(out / "exp2" / ds / f"inj160_s{s:g}", ds, s, 1, epochs=160))
            curves[f"inj L=1, 40 ep, σt={s:g}"] = _curve(
                _train(out / "exp1" / ds / f"inj_s{s:g}", ds, s, 1))
        summary[ds] = {k: {str(x): v for x, v in c.items()} for k, c in curves.items()}
        _plot(out / f"exp2_{ds}.png", f"{ds}: equal compute (4·40 = 160 epochs of passes)",
              curves)
        md += [f"### {ds}", "", _table(curves, EVAL, "method \\ test σ"), ""]
    (out / "exp2.md").write_text("\n".join(md) + "\n")
    (out / "exp2.json").write_text(json.dumps(summary, indent=2))
    return summary


def _trajectory(dataset: str, sigma: float, samples: int, epochs: int, every: int,
                test_sigmas, draws: int = 10, seed: int = 0) -> list[dict]:
    """Train like ``xbarlab train`` (same seed streams, so the same network) and, every
    ``every`` epochs, measure clean accuracy and accuracy at each test σ (``draws``
    perturbations from a generator of its own) on a copy, so training is untouched."""
    import copy

    data = load_dataset(dataset)
    gens = seed_generators(seed)
    net = init_model(model_config("mlp", data), gens["init"])
    ev_gen = seed_generators(seed)["eval"]
    rows = []

    def measure(epoch: int, loss: float) -> None:
        if epoch % every:
            return
        probe = copy.deepcopy(net)
        ev = evaluate_noise(probe, data.x_test, data.y_test, levels=list(test_sigmas),
                            make_noise=GaussianNoise, draws=draws, generator=ev_gen)
        rows.append({"epoch": epoch, "passes_per_example": epoch * max(samples, 1),
                     "train_loss": loss, "clean": accuracy(probe, data.x_test, data.y_test),
                     "acc": {f"{e['noise']:g}": (e["accuracy_mean"], e["accuracy_std"])
                             for e in ev}})

    train_model(net, data, noise=GaussianNoise(sigma) if samples else None, samples=samples,
                epochs=epochs, generators=gens, callback=measure)
    return rows


def run_exp2_trajectory(out: Path, datasets=DATASETS, sigma: float = 0.4,
                        test_sigmas=(0.4, 0.5), points: int = 20) -> dict:
    """Exp. 2 along the way: HA-SGD L=4 (40 epochs) and injection L=1 (160 epochs), both
    measured at ``points`` equally spaced numbers of forward/backward passes."""
    runs = {"HA-SGD L=4": (4, 40), "inj L=1": (1, 160)}
    summary = {}
    md = [f"## Experiment 2 along training: accuracy (%) vs passes, σ_train = {sigma:g}, "
          "MLP, seed 0", "",
          "Passes = epochs × L (forward/backward passes per training example). Test σ "
          f"{', '.join(f'{t:g}' for t in test_sigmas)}; 10 draws each.", ""]
    for ds in datasets:
        summary[ds] = {lab: _trajectory(ds, sigma, L, ep, ep // points, test_sigmas)
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
    (out / "exp2-trajectory.md").write_text("\n".join(md) + "\n")
    (out / "exp2-trajectory.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_exp3(out: Path, datasets=DATASETS, bits=(2, 3, 4, 5, 6, 8), test_sigma=0.1,
             draws=10) -> dict:
    """Exp. 3 (poster Fig. 9): accuracy vs ADC bits for the exp1 networks."""
    summary, md = {}, ["## Experiment 3: accuracy (%) vs ADC bits (per-layer output "
                       f"quantization), clean and at test σ = {test_sigma:g}", ""]
    for ds in datasets:
        data = load_dataset(ds)
        nets = {"plain (L=0)": "plain", "inj L=1 σt=0.4": "inj_s0.4",
                "HA-SGD L=4 σt=0.4": "ha4_s0.4", "HA-SGD L=8 σt=0.4": "ha8_s0.4"}
        curves_clean, curves_noisy = {}, {}
        for label, run in nets.items():
            folder = out / "exp1" / ds / run
            _train(folder, ds, float(run.split("_s")[1]) if "_s" in run else 0.0,
                   {"plain": 0, "inj": 1, "ha4": 4, "ha8": 8}[run.split("_")[0]])
            net, _ = load_trained(folder)
            ranges = calibrate_adc_ranges(net, [data.x_train])
            cc, cn = {}, {}
            for b in bits:
                attach_adc(net, bits=b, ranges=ranges)
                try:
                    a = accuracy(net, data.x_test, data.y_test)
                    cc[b] = (a, 0.0)
                    e = evaluate_noise(net, data.x_test, data.y_test, levels=[test_sigma],
                                       make_noise=GaussianNoise, draws=draws,
                                       generator=seed_generators(0)["eval"])[0]
                    cn[b] = (e["accuracy_mean"], e["accuracy_std"])
                finally:
                    detach_adc(net)
            curves_clean[label], curves_noisy[label] = cc, cn
        summary[ds] = {"clean": {k: {str(b): v for b, v in c.items()}
                                 for k, c in curves_clean.items()},
                       f"sigma_{test_sigma:g}": {k: {str(b): v for b, v in c.items()}
                                                 for k, c in curves_noisy.items()}}
        _plot(out / f"exp3_{ds}_clean.png", f"{ds}: accuracy vs ADC bits (no weight noise)",
              curves_clean, xlabel="ADC bits")
        _plot(out / f"exp3_{ds}_sigma{test_sigma:g}.png",
              f"{ds}: accuracy vs ADC bits at test σ = {test_sigma:g}", curves_noisy,
              xlabel="ADC bits")
        md += [f"### {ds}, no weight noise", "", _table(curves_clean, bits, "method \\ bits"),
               "", f"### {ds}, test σ = {test_sigma:g} ({draws} draws)", "",
               _table(curves_noisy, bits, "method \\ bits"), ""]
    (out / "exp3.md").write_text("\n".join(md) + "\n")
    (out / "exp3.json").write_text(json.dumps(summary, indent=2))
    return summary


def run_variance(out: Path, sigmas=(0.05, 0.1, 0.3), Ls=(1, 2, 4, 8), K=64) -> dict:
    """Gradient-estimate variance vs L, independent vs antithetic, trained digits MLP.

    Variance = E‖ĝ - E ĝ‖² (summed over all parameters), estimated from K independent
    HA-SGD estimates at the same weights and minibatch (the first 32 training images).
    """
    folder = out / "exp1" / "digits" / "plain"
    _train(folder, "digits", 0.0, 0)
    net, _ = load_trained(folder)
    net.train()
    data = load_dataset("digits")
    x, y = data.x_train[:32], data.y_train[:32]
    res, md = {}, ["## Gradient-estimate variance vs L (digits MLP, plain-trained, batch 32, "
                   f"K = {K})", "", "| σ | draws | " + " | ".join(f"L={L}" for L in Ls) + " |",
                   "|---|---|" + "---|" * len(Ls)]
    for s in sigmas:
        for anti in (False, True):
            row = {}
            for L in Ls:
                if anti and L % 2:
                    continue
                g = torch.Generator().manual_seed(1)
                h = HASGD(net, torch.optim.SGD(net.parameters(), lr=0.0), GaussianNoise(s),
                          samples=L, antithetic=anti, generator=g, mode="sequential")
                est = []
                for _ in range(K):
                    net.zero_grad()
                    h.gradient(x, y)
                    est.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
                e = torch.stack(est).double()
                row[L] = float(((e - e.mean(0)) ** 2).sum(1).mean() * K / (K - 1))
            res[f"sigma={s:g}/{'anti' if anti else 'indep'}"] = row
            md.append(f"| {s:g} | {'antithetic' if anti else 'independent'} | " + " | ".join(
                f"{row[L]:.3g}" if L in row else "–" for L in Ls) + " |")
    (out / "variance.md").write_text("\n".join(md) + "\n")
    (out / "variance.json").write_text(json.dumps(res, indent=2))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m xbarlab.nn.experiments")
    ap.add_argument("--out", default="runs/nn-exp")
    ap.add_argument("--only", default="exp1,exp2,exp3,variance",
                    help="comma list of exp1, exp2, exp2-trajectory, exp3, variance")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = tuple(a.datasets.split(","))
    torch.use_deterministic_algorithms(True)
    for name in a.only.split(","):
        fn = {"exp1": lambda: run_exp1(out, ds), "exp2": lambda: run_exp2(out, ds),
              "exp2-trajectory": lambda: run_exp2_trajectory(out, ds),
              "exp3": lambda: run_exp3(out, ds), "variance": lambda: run_variance(out)}[name]
        fn()
        print((out / f"{name}.md").read_text())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

