"""The report of ``xbarlab ppa``: the sweep's table, its Pareto front and the energy
breakdown of the network on the chip as described (Markdown and HTML, plots in ``plots/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_ppa_report", "plot_pareto"]


def plot_pareto(points: list[dict], path: Path, *, title: str = "") -> Path:
    """Accuracy against energy per inference [nJ, log axis], one marker per array size and
    conductance range with its 95 % interval over programmings as an error bar, the Pareto
    front as a line, each point labelled with its ADC bits; written as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..formats import atomic_output

    fig = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    markers = "osD^v<>"
    keys = sorted({(p["tile"], p["g_max_S"]) for p in points})
    for k, (tile, g) in enumerate(keys):
        sel = [p for p in points if (p["tile"], p["g_max_S"]) == (tile, g)]
        e = np.array([p["energy_J"] for p in sel]) * 1e9
        a = np.array([p["accuracy"] for p in sel])
        half = [0.0 if not p.get("accuracy_ci95") else
                0.5 * (p["accuracy_ci95"][1] - p["accuracy_ci95"][0]) for p in sel]
        ax.errorbar(e, a, yerr=half, fmt=markers[k % len(markers)], ms=5, capsize=2, lw=0.8,
                    label=f"{tile}x{tile}, g_max {g * 1e6:.3g} uS")
        for p, x, y in zip(sel, e, a, strict=True):
            ax.annotate(str(p["adc_bits"]), (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["energy_J"])
    ax.plot([p["energy_J"] * 1e9 for p in front], [p["accuracy"] for p in front], "k--",
            lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("energy per inference [nJ]")
    ax.set_ylabel("accuracy (circuit mode)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(path, force=True, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    return path


def _from_node(res: dict) -> str:
    """The chip fields its paper does not give, as taken from the node file (a clause)."""
    vals = res.get("chip_from_node") or {}
    if not vals:
        return ""
    from ..energy.chip import format_value

    return ("; from the node file, as its paper does not give them: "
            + ", ".join(f"{k} = {format_value(v)}" for k, v in vals.items()))


def write_ppa_report(out: Path, res: dict[str, Any], base) -> None:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` of a study ``res``
    (:func:`~xbarlab.pipeline.ppa.run_ppa`'s dict) into ``out``; ``base`` is the
    :class:`~xbarlab.energy.network.NetworkCost` of the network on the chip as described."""
    from ..energy.network import cost_rows, plot_cost
    from ..formats import write_text_atomic
    from ..formats.report_doc import render_html, render_markdown

    plots = Path(out) / "plots"
    plots.mkdir(exist_ok=True)
    sw = res["sweep"]
    title = f"Accuracy and energy: {res['dataset']} {res['model']} on {res['chip']}"
    pareto = plot_pareto(res["points"], plots / "pareto.png",
                         title=f"{res['dataset']} {res['model']}, {res['device_model']}, "
                               f"{res['chip']} periphery")
    energy_png = plot_cost(base, plots / "energy_breakdown.png")
    rows = []
    for p in res["points"]:
        ci = p["accuracy_ci95"]
        half = f" ± {0.5 * (ci[1] - ci[0]):.3f}" if ci else ""
        rows.append([str(p["adc_bits"]), f"{p['tile']}x{p['tile']}",
                     f"{p['g_max_S'] * 1e6:.3g}", f"{p['accuracy']:.4f}{half}",
                     f"{p['energy_J'] * 1e9:.4g}", f"{p['tops_per_w']:.3g}",
                     str(p["tiles_used"]), "yes" if p["pareto"] else ""])
    head, crow, note = cost_rows(base)
    blocks = [
        ("h1", title),
        ("p", f"Model `{res['model_dir']}`, device model `{res['device_model']}`, chip "
              f"{res['chip']} ({res['chip_citation']}){_from_node(res)}. Accuracy: circuit "
              "mode at "
              f"{sw['time']:g} s after programming, {sw['programmings']} programmings, "
              f"{sw['circuit_samples'] or 'all'} test samples, wire resistance "
              f"{sw['r_wire']:g} Ohm per segment, drift compensation {sw['compensation']}, "
              f"seed {res['seed']}. Energy: nominal inputs (uniform codes), the mapped "
              f"weights' conductances; {res['ops_per_inference']:,} operations per inference "
              "(2 per multiply-accumulate)."),
        ("table", ["ADC bits", "array", "g_max [uS]", "accuracy (± 95 % half-width)",
                   "energy [nJ]", "TOPS/W", "tiles", "Pareto"], rows),
        ("img", pareto, "accuracy against energy per inference"),
        ("h2", f"Energy of one inference on {res['chip']} as described"),
        ("table", head, crow),
        ("p", note),
        ("img", energy_png, "energy per inference by layer and component"),
    ]
    write_text_atomic(Path(out) / "report.md", render_markdown(blocks, base=Path(out)),
                      force=True)
    write_text_atomic(Path(out) / "report.html", render_html(blocks, title=title), force=True)
