"""Accuracy vs test weight noise for plain training, noise injection and HA-SGD (poster Fig. 7).

    python -m xbarlab.nn.figures.noise_level_sweep --out runs/nn-exp [--datasets digits,mnist5k]

MLP, 40 epochs, seed 0: plain training (L = 0), noise injection (L = 1) and HA-SGD
(L = 4, 8) trained at σ_train ∈ {0.1, 0.2, 0.3, 0.4} (MNIST-5k: 0.4 only), each tested on
σ = 0 … 0.8 (10 draws). Runs go to ``OUT/exp1/<dataset>/<run>/`` and are reused when
present. Writes ``exp1.md``, ``exp1.json`` and ``exp1_<dataset>.png`` into ``OUT``,
with the robustness comparison: at the smallest test σ where plain training loses ≥ 30
points, how much HA-SGD L = 4 trained at that σ loses (the claim: at most a third).
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    DATASETS,
    EVAL_SIGMAS,
    SIGMAS,
    curve,
    figure_main,
    markdown_table,
    plot_curves,
    trained_run,
    write_outputs,
)

__all__ = ["run", "main"]


def _comparison(root: Path, ds: str, clean: float, plain: dict) -> dict | None:
    for x in EVAL_SIGMAS:
        drop = clean - plain[x][0]
        if drop >= 0.30:
            ha = trained_run(root / f"ha4_s{x:g}", ds, x, 4)
            ha_drop = clean - curve(ha)[x][0]
            return {"test_sigma": x, "plain_clean": clean, "plain_drop": drop,
                    "hasgd_L4_drop": ha_drop, "ratio": ha_drop / drop,
                    "pass": ha_drop <= drop / 3}
    return None


def run(out: Path, datasets=DATASETS) -> dict:
    """Train (or reuse) every run, write the tables and plots; returns the summary dict."""
    summary, md = {}, ["## Accuracy (%) vs test σ, MLP, 40 epochs, seed 0", ""]
    for ds in datasets:
        root = out / "exp1" / ds
        runs = {"plain (L=0)": trained_run(root / "plain", ds, 0.0, 0)}
        for s in SIGMAS.get(ds, (0.4,)):
            runs[f"inj L=1 σt={s:g}"] = trained_run(root / f"inj_s{s:g}", ds, s, 1)
            runs[f"HA-SGD L=4 σt={s:g}"] = trained_run(root / f"ha4_s{s:g}", ds, s, 4)
            runs[f"HA-SGD L=8 σt={s:g}"] = trained_run(root / f"ha8_s{s:g}", ds, s, 8)
        curves = {k: curve(m) for k, m in runs.items()}
        clean = runs["plain (L=0)"]["clean_accuracy"]
        check = _comparison(root, ds, clean, curves["plain (L=0)"])
        summary[ds] = {"curves": {k: {str(x): v for x, v in c.items()} for k, c in curves.items()},
                       "check": check,
                       "train_time_s": {k: m["train_time_s"] for k, m in runs.items()}}
        plot_curves(out / f"exp1_{ds}.png", f"{ds}: MLP trained at σt, tested at σ", curves)
        md += [f"### {ds}", "", markdown_table(curves, EVAL_SIGMAS, "method \\ test σ"), ""]
        if check:
            md.append(
                f"Robustness ({ds}): plain clean {100 * clean:.1f} %; at test σ = "
                f"{check['test_sigma']:g} plain loses {100 * check['plain_drop']:.1f} points, "
                f"HA-SGD L=4 trained at σ = {check['test_sigma']:g} loses "
                f"{100 * check['hasgd_L4_drop']:.1f} (ratio {check['ratio']:.2f}; at most a "
                f"third: {'yes' if check['pass'] else 'no'})")
            md.append("")
    write_outputs(out, "exp1", md, summary)
    return summary


def main(argv=None) -> int:
    return figure_main("noise_level_sweep", "exp1", run, DATASETS, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
