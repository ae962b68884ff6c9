"""What a study writes: ``results.csv``, plots of its metrics against its axes, and a
report (``report.md`` and ``report.html``, the blocks of :mod:`xbarlab.formats.report_doc`).

``results.csv`` has one row per point, sorted by point key: ``key`` (the point's
SHA-256), its settings (SI units; every setting of the kind, swept or not), ``seed`` (the
entropy of the point's seed sequence, hexadecimal), its metrics (Python's shortest
round-trip text of each float, so equal numbers are equal bytes; empty when the point
failed), ``error``, ``wall_s`` (wall time on its worker [s]) and ``worker``. The metric
columns depend on the study seed and the points' settings only: the same bytes with any
number of workers, on any cluster.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..units import format_duration
from .runner import PointResult
from .study import Study

__all__ = ["results_csv", "write_results", "summary_rows"]


def _cell(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def results_csv(study: Study, results: Sequence[PointResult]) -> str:
    """The text of ``results.csv`` (see the module docstring)."""
    names = [s.name for s in study.kind.settings]
    metrics = list(study.kind.metrics)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", *names, "seed", *metrics, "error", "wall_s", "worker"])
    for r in sorted(results, key=lambda r: r.point.key):
        p = r.point
        w.writerow([p.key, *(_cell(p.settings[n]) for n in names), f"{p.entropy:#x}",
                    *(_cell(r.metrics[m]) if m in r.metrics else "" for m in metrics),
                    r.error or "", f"{r.wall_s:.4g}", r.worker])
    return buf.getvalue()


def summary_rows(study: Study, results: Sequence[PointResult]) -> list[tuple[dict, dict]]:
    """Per combination of the axes other than ``programming``: its settings and, for each
    plotted metric, ``(mean, min, max, count)`` over the points that finished."""
    axes = [a for a in study.axes if a != "programming"]
    groups: dict[tuple, list[PointResult]] = {}
    for r in results:
        groups.setdefault(tuple(r.point.settings[a] for a in axes), []).append(r)
    out = []
    for combo in sorted(groups, key=lambda c: tuple((isinstance(v, str), v) for v in c)):
        rs = [r for r in groups[combo] if r.error is None]
        stats = {}
        for m in study.metrics:
            v = np.array([r.metrics[m] for r in rs], dtype=np.float64)
            stats[m] = ((float(v.mean()), float(v.min()), float(v.max()), int(v.size))
                        if v.size else (math.nan, math.nan, math.nan, 0))
        out.append((dict(zip(axes, combo, strict=True)), stats))
    return out


def _plot_metric(study: Study, results, metric: str, path: Path) -> Path | None:
    """``metric`` against each numeric axis: the mean over every finished point that
    shares the axis value, and the range (min to max) of those points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..formats import atomic_output

    ok = [r for r in results if r.error is None and metric in r.metrics]
    axes = [a for a in study.axes if a != "programming"
            and all(isinstance(r.point.settings[a], int | float) for r in ok)]
    if not ok or not axes:
        return None
    fig = Figure(figsize=(3.2 * len(axes), 3.0))
    FigureCanvasAgg(fig)
    subs = fig.subplots(1, len(axes), squeeze=False)[0]
    for ax, a in zip(subs, axes, strict=True):
        xs = sorted({r.point.settings[a] for r in ok})
        vals = [[r.metrics[metric] for r in ok if r.point.settings[a] == x] for x in xs]
        mean = [float(np.mean(v)) for v in vals]
        ax.fill_between(xs, [min(v) for v in vals], [max(v) for v in vals], alpha=0.25)
        ax.plot(xs, mean, "o-")
        unit = next(s.unit for s in study.kind.settings if s.name == a)
        ax.set_xlabel(a + ("" if unit == "1" else f" [{unit}]"))
        if min(xs) > 0 and max(xs) / min(xs) >= 20:
            ax.set_xscale("log")
        if all(m > 0 for m in mean) and max(mean) / min(mean) >= 20:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    subs[0].set_ylabel(f"{metric} (mean, range)")
    fig.suptitle(f"{study.title}: {metric}", fontsize=9)
    fig.tight_layout()
    with atomic_output(path, force=True, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def write_results(study: Study, results: Sequence[PointResult], out, *, command: str = "",
                  elapsed_s: float = math.nan, workers: int = 0) -> dict[str, Path]:
    """Write ``results.csv``, ``plots/<metric>.png`` and ``report.md``/``report.html`` into
    the folder ``out``; return their paths (``"csv"``, ``"md"``, ``"html"``, ``"plots"``)."""
    from ..formats import write_text_atomic
    from ..formats.report_doc import render_html, render_markdown

    out = Path(out)
    paths: dict = {"csv": write_text_atomic(out / "results.csv", results_csv(study, results),
                                            force=True)}
    plots = [p for m in study.metrics
             if (p := _plot_metric(study, results, m, out / "plots" / f"{m}.png"))]
    failed = [r for r in results if r.error is not None]
    B: list = [("h1", study.title),
               ("p", f"Made by xbarlab {__version__} (`{command or 'xbarlab sweep'}`), kind "
                     f"`{study.kind.name}`, seed {study.seed}, "
                     f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
                     f"{len(results)} points ({len(failed)} failed), "
                     f"{sum(not r.cached for r in results)} computed in this run on "
                     f"{workers} workers in {elapsed_s:.1f} s. Every point's settings, seed "
                     "and metrics are in `results.csv`.")]
    B.append(("h2", "Results"))
    rows = summary_rows(study, results)
    head = [a for a in study.axes if a != "programming"] + [
        f"{m} mean (min–max)" for m in study.metrics] + ["points"]
    types = {st.name: st.type for st in study.kind.settings}

    def shown(name, v):
        return format_duration(v) if types[name] == "duration" else _cell(v)

    B.append(("table", head, [
        [shown(k, v) for k, v in combo.items()]
        + [f"{s[0]:.4g} ({s[1]:.3g}–{s[2]:.3g})" for s in stats.values()]
        + [str(next(iter(stats.values()))[3])] for combo, stats in rows]))
    for p in plots:
        B.append(("img", p, f"{p.stem} against the swept settings"))
    if failed:
        B.append(("h2", "Failed points"))
        B.append(("ul", [f"`{r.point.key[:12]}` {dict(r.point.settings)}: {r.error}"
                         for r in failed]))
    B.append(("h2", "Study file"))
    B.append(("pre", study.text or "(given as an object)"))
    paths["md"] = write_text_atomic(out / "report.md", render_markdown(B, base=out), force=True)
    paths["html"] = write_text_atomic(out / "report.html",
                                      render_html(B, title=study.title), force=True)
    paths["plots"] = plots
    return paths
