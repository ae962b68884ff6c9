"""Equal compute: HA-SGD L = 4 for 40 epochs against noise injection L = 1 for 160 epochs.

    python -m xbarlab.nn.figures.equal_compute --out runs/nn-exp [--datasets digits,mnist5k]

Both make the same number of forward/backward passes; noise injection for 40 epochs is
shown too. Runs are shared with :mod:`~xbarlab.nn.figures.noise_level_sweep`
(``OUT/exp1/...``) and ``OUT/exp2/...``. Writes ``exp2.md``, ``exp2.json`` and
``exp2_<dataset>.png``.
"""

from __future__ import annotations

from pathlib import Path

from .common import (
    DATASETS,
    EVAL_SIGMAS,
    curve,
    figure_main,
    markdown_table,
    plot_curves,
    trained_run,
    write_outputs,
)

__all__ = ["run", "main"]


def run(out: Path, datasets=DATASETS, sigmas=None) -> dict:
    """HA-SGD L=4 (40 epochs) vs noise injection L=1 (160 epochs), same passes."""
    summary, md = {}, ["## Equal compute (accuracy %, MLP, seed 0)", ""]
    for ds in datasets:
        curves = {}
        for s in sigmas or ((0.2, 0.4) if ds == "digits" else (0.4,)):
            curves[f"HA-SGD L=4, 40 ep, σt={s:g}"] = curve(
                trained_run(out / "exp1" / ds / f"ha4_s{s:g}", ds, s, 4))
            curves[f"inj L=1, 160 ep, σt={s:g}"] = curve(
                trained_run(out / "exp2" / ds / f"inj160_s{s:g}", ds, s, 1, epochs=160))
            curves[f"inj L=1, 40 ep, σt={s:g}"] = curve(
                trained_run(out / "exp1" / ds / f"inj_s{s:g}", ds, s, 1))
        summary[ds] = {k: {str(x): v for x, v in c.items()} for k, c in curves.items()}
        plot_curves(out / f"exp2_{ds}.png", f"{ds}: equal compute (4·40 = 160 epochs of passes)",
                    curves)
        md += [f"### {ds}", "", markdown_table(curves, EVAL_SIGMAS, "method \\ test σ"), ""]
    write_outputs(out, "exp2", md, summary)
    return summary


def main(argv=None) -> int:
    return figure_main("equal_compute", "exp2", run, DATASETS, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
