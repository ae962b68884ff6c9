"""The report of ``xbarlab run``: one section per stage, rendered as Markdown and HTML.

A report is a list of blocks (:mod:`xbarlab.formats.report_doc`) rendered twice: Markdown
(plots as files) and HTML (plots inline as base64, so report.html opens anywhere on its
own). It opens with the headline result (accuracy over time of both networks), then follows
the chain from the measured data to training. Plots are drawn on
:class:`matplotlib.figure.Figure` objects with the Agg canvas; matplotlib's global state
(backend, pyplot figures) is not touched.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..units import format_duration
from .context import StageContext, json_default, read_json

__all__ = ["write_run_report"]


def write_run_report(ctx: StageContext) -> int:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` into ``ctx.out``.

    Returns
    -------
    int
        The number of plots in the report.
    """
    up = ctx.upstream
    cfg = ctx.config
    plots = _Plots(ctx.out / "plots", ctx.out.parent / ctx.name / "plots")
    title = cfg["report"]["title"]
    B: list = [("h1", title)]
    B.append(("p", f"Made by xbarlab {__version__} (`xbarlab run`), seed {cfg['seed']}, "
                   f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every number and "
                   "plot below comes from this run; each stage's files are in the folder of "
                   "the same name beside this report."))
    B += _evaluation_section(up, cfg, plots)
    B += _data_section(up)
    B += _calibration_section(up, plots)
    B += _crossbar_section(up, cfg, plots)
    B += _noise_section(up, cfg, plots)
    B += _training_section(up, cfg, plots)
    B.append(("h2", "Settings"))
    B.append(("pre", json.dumps({k: v for k, v in cfg.items()}, indent=2,
                                default=json_default)))
    from ..formats import write_text_atomic
    from ..formats.report_doc import render_html, render_markdown

    plots.write_keys()
    write_text_atomic(ctx.out / "report.md", render_markdown(B, base=ctx.out), force=True)
    write_text_atomic(ctx.out / "report.html", render_html(B, title=title), force=True)
    return sum(1 for b in B if b[0] == "img")


def _data_section(up: dict[str, Path]) -> list:
    """Section 2: what the measured data hold."""
    B: list = []
    s = _maybe(up["load"] / "summary.json") or {}
    B.append(("h2", "2. Measured data"))
    rows = [["files", ", ".join(Path(p).name for p in s.get("sources", []))],
            ["reads", f"{s.get('reads', 0):,}"], ["devices", f"{s.get('devices', 0):,}"]]
    if "targets" in s:
        tg = s["targets"]
        rows.append(["programming targets",
                     f"{tg['count']} ({_us(tg['min'])} to {_us(tg['max'])})"])
    if "time_points" in s:
        tp = s["time_points"]
        vals = tp["values"] or [tp["min"], tp["max"]]
        rows.append(["time points",
                     f"{tp['count']}: " + ", ".join(format_duration(v) for v in vals)])
    if "g_min" in s:
        rows.append(["conductance", f"{_us(s['g_min'])} to {_us(s['g_max'])}"])
    rows.append(["reads below 0 S", str(s.get("reads_below_zero", 0))])
    if s.get("reads_at_zero"):
        rows.append(["reads of exactly 0 S", f"{s['reads_at_zero']:,}"])
    B.append(("table", ["", "value"], rows))
    return B


def _calibration_section(up: dict[str, Path], plots: _Plots) -> list:
    """Section 3: the fitted model, goodness of fit, its statistics against the data."""
    B: list = []
    c = _maybe(up["calibrate"] / "summary.json") or {}
    B.append(("h2", "3. Calibrated device model"))
    B.append(("p", f"Model: {_model_words(c)}; conditioned on the "
                   f"{c.get('conditioning', '?')}. Drift law chosen: "
                   f"{c.get('drift_choice') or 'none'}"
                   + (" (held-out mean log-likelihood per read: " + ", ".join(
                       f"{k} {v:.3f}" for k, v in c.get("drift_loglik", {}).items()) + ")"
                      if c.get("drift_loglik") else "") + "."))
    for note in c.get("notes", []):
        B.append(("p", note))
    if c.get("skipped"):
        B.append(("p", "Skipped for too few devices: " + "; ".join(
            f"{_us(g)} ({int(n)} devices, {part})" for g, n, part in c["skipped"])))
    ks = c.get("ks") or {}
    if ks.get("values"):
        vals = np.asarray(ks["values"], dtype=float)
        B.append(("p", f"Goodness of fit: KS distance between measured reads and model "
                       f"samples per (level, time point) cell; median {ks['median']:.3f}, "
                       f"worst {ks['max']:.3f} over {ks['cells']} cells."))
        B += _goodness_blocks(c.get("goodness"))
        has_own = (up["calibrate"] / "report" / "ks_heatmap.png").is_file()
        if vals.ndim == 2 and not has_own:  # the calibration report draws its own

            def draw(fig):
                ax = fig.subplots()
                im = ax.imshow(np.ma.masked_invalid(vals), aspect="auto", cmap="viridis", vmin=0)
                fig.colorbar(im, ax=ax, label="KS distance")
                tl = ks.get("times")
                if tl and len(tl) == vals.shape[1]:
                    ax.set_xticks(range(len(tl)), [format_duration(t) for t in tl], rotation=45)
                gl = ks.get("level_g")
                if gl and len(gl) == vals.shape[0]:
                    ax.set_yticks(range(len(gl)), [f"{g * 1e6:.3g}" for g in gl])
                    ax.set_ylabel("level [µS]")
                ax.set_xlabel("time after programming")
                ax.set_title("KS distance, measured vs model")

            B.append(("img", plots.save("calibration_ks.png", ks, (6.4, 0.5 + 0.35 * vals.shape[0]
                                                                  + 1.5), draw),
                      "KS distance per (level, time point)"))
    if c.get("report_error"):
        B.append(("p", f"The calibration's own report could not be drawn: "
                       f"{c['report_error']}"))
    crep = up["calibrate"] / "report"
    if crep.is_dir():
        for png in sorted(crep.glob("*.png")):
            dst = plots.folder / f"calibration_{png.name}"
            shutil.copyfile(png, dst)
            B.append(("img", dst, f"calibration report: {png.stem.replace('_', ' ')}"))
    if c.get("stats"):
        B.append(("p", "Fitted statistics: mean and standard deviation of the conductance per "
                       "programming target and time point, measured vs sampled from the "
                       "fitted model (4,000 cells per target)."))
        B.append(("table", ["target", "time", "devices", "measured mean ± std",
                            "model mean ± std"],
                  [[_us(r["g_target"]), format_duration(r["t"]), r["n"],
                    f"{r['meas_mean'] * 1e6:.3f} ± {r['meas_std'] * 1e6:.3f} µS",
                    f"{r['model_mean'] * 1e6:.3f} ± {r['model_std'] * 1e6:.3f} µS"]
                   for r in c["stats"]]))
    return B


def _goodness_blocks(g: dict | None) -> list:
    """The calibration's verdict and, per time point, the medians over levels of the KS,
    its sampling floor and both baselines (empty without a scored goodness table)."""
    if not g or not g.get("per_time"):
        return []
    pct = round(100 * g["quantile"])
    B: list = [("p", f"**Calibration verdict** ({g.get('scored', 'in-sample')}): "
                     f"{g['verdict']}.")]
    B.append(("p", f"Per time point, medians over levels: the model's KS; the sampling floor "
                   f"({pct} % quantile of the KS that data drawn from the fitted model itself "
                   f"show, {g['replicates']} replicates: the KS expected from the sample sizes "
                   "alone); two baselines on the same cells, the empirical bootstrap "
                   "(resampled measured reads of the level and time) and persistence (each "
                   "cell's first read plus the change a cell of its level showed at the "
                   "latest earlier time point that was fitted)."))
    B.append(("table", ["time", "", "cells", "median KS", "sampling floor",
                        "empirical bootstrap", "persistence", "above floor", "failing"],
              [[format_duration(r["t"]), "extrapolated" if r["extrapolated"] else "fitted",
                r["cells"], _f3(r["ks"]), _f3(r["floor"]), _f3(r["empirical"]),
                _f3(r["persistence"]), r["above"], r["failing"]] for r in g["per_time"]]))
    return B


def _crossbar_section(up: dict[str, Path], cfg: dict, plots: _Plots) -> list:
    """Section 4: output errors of the crossbar study (IR drop, ADC, device)."""
    B: list = []
    x = _maybe(up["crossbar"] / "summary.json") or {}
    B.append(("h2", "4. Crossbar study (exact circuit solver)"))
    xc = cfg["crossbar"]
    B.append(("p", f"Weights U(-1, 1) on differential pairs ({_us(x.get('g_min', 0))} to "
                   f"{_us(x.get('g_max', 0))}), conductances of the fitted device read at "
                   f"{format_duration(xc['time'])}, inputs U(0, 1) x {xc['v_max']:g} V. Relative "
                   "output errors ||y - y_ref|| / ||y_ref||: IR drop against the ideal "
                   "product of the same conductances; ADC ("
                   f"{xc['adc_bits']} bits) against the circuit output; device against the "
                   "targets; total = circuit + calibrated ADC + device against the targets."))
    if x.get("rows"):
        B.append(("table", ["n", "r [Ω]", "IR drop", "ADC max-range", "ADC calibrated",
                            "device", "total", "solve [s]"],
                  [[r["n"], f"{r['r_wire_ohm']:g}", _pct(r["ir_drop"]), _pct(r["adc_max"]),
                    _pct(r["adc_cal"]), _pct(r["device"]), _pct(r["total"]),
                    f"{r['solve_s']:.2f}"] for r in x["rows"]]))
        def draw(fig):
            ax = fig.subplots()
            for n_ in sorted({r["n"] for r in x["rows"]}):
                sel = sorted((r for r in x["rows"] if r["n"] == n_),
                             key=lambda r: r["r_wire_ohm"])
                rw = [max(r["r_wire_ohm"], 1e-3) for r in sel]
                ax.loglog(rw, [100 * max(r["ir_drop"], 1e-9) for r in sel], "o-",
                          label=f"IR drop, {n_}×{n_}")
                ax.loglog(rw, [100 * max(r["total"], 1e-9) for r in sel], "s--",
                          label=f"total, {n_}×{n_}")
                ax.axhline(100 * sel[0]["adc_cal"], color="k", ls=":", lw=1)
            ax.set_xlabel("wire resistance per segment [Ω]")
            ax.set_ylabel("relative output error [%]")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8, title="dotted: calibrated ADC alone", title_fontsize=8)

        B.append(("img", plots.save("crossbar_error.png", x["rows"], (6.4, 4.2), draw),
                  "Crossbar output error vs wire resistance"))
    return B


def _noise_section(up: dict[str, Path], cfg: dict, plots: _Plots) -> list:
    """Section 5: the exported weight-domain noise per time, for each weight-mapping range."""
    B: list = [("h2", "5. Weight-domain noise exported from the fitted device")]
    for sub, png in ((".", "noise.png"), ("compare", "noise_compare.png")):
        nz = _maybe(up["noise"] / sub / "summary.json") or {}
        if nz.get("per_time"):
            B += _noise_tables(nz, cfg, plots, png)
    return B


def _noise_tables(nz: dict, cfg: dict, plots: _Plots, png: str) -> list:
    """The noise summary ``nz`` of one weight-mapping range: a sentence, a table, a plot."""
    B: list = []
    B.append(("p", f"Weights map to differential pairs between {_us(nz['g_min'])} and "
                   f"{_us(nz['g_max'])} (weights map to {nz.get('weights_map_to')}); "
                   "Δw is in units of max|W|. Compensation: "
                   f"{cfg['noise']['compensation']}."))
    compensated = cfg["noise"]["compensation"] != "none"
    head = ["time", "mean σ(Δw)", "μ(Δw) at w = max|W|"]
    rows = [[format_duration(p["t"]), f"{p['std_mean']:.4f}", f"{p['mean_at_wmax']:+.4f}"]
            for p in nz["per_time"]]
    if compensated:  # without compensation the factor is 1 by definition: no column
        head.append("drift factor α applied")
        for r, p in zip(rows, nz["per_time"], strict=True):
            r.append(f"{p['drift_factor']:.4f}")
    B.append(("table", head, rows))

    def draw(fig):
        a1, a2 = fig.subplots(1, 2)
        u = np.asarray(nz["w_grid"])
        for i, t in enumerate(nz["times"]):
            a1.plot(u, np.asarray(nz["std"])[i], label=format_duration(t))
            a2.plot(u, np.asarray(nz["mean"])[i], label=format_duration(t))
        a1.set_xlabel("w / max|W|")
        a1.set_ylabel("σ(Δw) / max|W|")
        a2.set_xlabel("w / max|W|")
        a2.set_ylabel("μ(Δw) / max|W|")
        a1.legend(fontsize=8)
        for a in (a1, a2):
            a.grid(True, alpha=0.3)

    B.append(("img", plots.save(png, [nz["w_grid"], nz["times"], nz["std"], nz["mean"]],
                                (9, 3.6), draw),
              f"Spread and mean shift of the weight perturbation vs weight, "
              f"{_us(nz['g_min'])} to {_us(nz['g_max'])}"))
    return B


def _training_metrics(up: dict[str, Path]) -> dict:
    """Network -> metrics.json of its training (None where unreadable): SGD, HA-SGD and,
    where the run compares a second weight-mapping range, that range's HA-SGD network."""
    out = {m: _maybe(up[s] / "metrics.json") for m, s in (("SGD", "train-sgd"),
                                                          ("HA-SGD", "train-hasgd"))}
    other = _maybe(up["train-hasgd"] / "compare" / "metrics.json")
    nz = _maybe(up["noise"] / "compare" / "summary.json") or {}
    if other:
        where = (f"{nz['g_min'] * 1e6:.4g}–{nz['g_max'] * 1e6:.4g} µS" if "g_max" in nz
                 else "compared range")
        out[f"HA-SGD, {where}"] = other
    return out


def _training_section(up: dict[str, Path], cfg: dict, plots: _Plots) -> list:
    """Section 6: clean accuracy and loss of both trainings."""
    B: list = []
    tr = _training_metrics(up)
    B.append(("h2", "6. Training"))
    tc = cfg["train"]
    when = ("a mixture over all exported times" if tc["train_time"] == "all"
            else f"at {tc['train_time']}")
    B.append(("p", f"{tc['dataset']} / {tc['model']}, {tc['epochs']} epochs, seed "
                   f"{cfg['seed']}. HA-SGD averages the gradients of L = {tc['samples']} "
                   f"weight perturbations per minibatch drawn from the exported noise ({when})."))
    B.append(("table", ["method", "L", "clean test accuracy", "training time"],
              [[m, v.get("samples", 0), f"{v['clean_accuracy']:.4f}",
                f"{v['train_time_s']:.1f} s"] for m, v in tr.items() if v]))
    if any(tr.values()):
        hist = {m: [[h["epoch"], h["loss"]] for h in v["history"]]
                for m, v in tr.items() if v and v.get("history")}

        def draw(fig):
            ax = fig.subplots()
            for m, h in hist.items():
                ax.plot([e for e, _ in h], [loss for _, loss in h], "o-", label=m)
            ax.set_xlabel("epoch")
            ax.set_ylabel("training loss (under its noise)")
            ax.grid(True, alpha=0.3)
            ax.legend()

        B.append(("img", plots.save("training_loss.png", hist, (5.6, 3.4), draw),
                  "Training loss"))
    return B


def _evaluation_section(up: dict[str, Path], cfg: dict, plots: _Plots) -> list:
    """Section 1, the headline: analog accuracy over time of both networks, in one sentence,
    a table (the weight-mapping ranges side by side) and a plot."""
    B: list = []
    tr = _training_metrics(up)
    ev = _maybe(up["evaluate"] / "evaluation.json") or {}
    B.append(("h2", "1. Result: analog accuracy over time"))
    rows_ev = [dict(r, range=r.get("range", "main"), compensation=r["compensation"] + (
        " (bootstrap models)" if r.get("model_draw") == "bootstrap" else ""))
        for r in ev.get("rows", [])]
    if not rows_ev:
        return B
    labels = {g["range"]: g["label"] for g in ev.get("ranges", [])}
    ranges = list(dict.fromkeys(r["range"] for r in rows_ev))
    for which in ranges:
        nets = {"SGD": tr.get("SGD"), "HA-SGD": (
            tr.get("HA-SGD") if which == "main"
            else _maybe(up["train-hasgd"] / which / "metrics.json"))}
        headline = _headline([r for r in rows_ev if r["range"] == which], nets,
                             where=labels.get(which, ""))
        if headline:
            B.append(("p", headline))
    n = cfg["evaluate"]["programmings"]
    B.append(("p", "Each network is programmed once per chip through the fitted device "
                   "model (per-cell state kept) and read at each time with read noise, "
                   f"over {n} independent programmings; each entry is the mean accuracy ± "
                   "the half-width of its 95 % t-interval over the programmings (Student t, "
                   f"{n - 1} degrees of freedom; a single network, so training-seed spread is "
                   "not included); 'global' divides the outputs by one drift-compensation "
                   "factor per time."
                   + (" Weights map to each range's g_min (weight 0) and g_max (max|W|); "
                      "HA-SGD trains against the noise of the range it is read on."
                      if len(ranges) > 1 else "")))
    times = sorted({r["t"] for r in rows_ev})
    combos = list(dict.fromkeys((r["method"], r["compensation"]) for r in rows_ev))
    look = {(r["range"], r["method"], r["compensation"], r["t"]): r for r in rows_ev}
    head = ["method", "compensation"] + [
        (f"{labels.get(w, w)}, {format_duration(t)}" if len(ranges) > 1
         else format_duration(t)) for w in ranges for t in times]
    B.append(("table", head, [[m, comp, *[_acc_cell(look.get((w, m, comp, t)))
                                          for w in ranges for t in times]]
                              for m, comp in combos]))
    clean = [v["clean_accuracy"] for v in tr.values() if v]

    def draw(fig):
        axes = np.atleast_1d(fig.subplots(1, len(ranges), sharey=True, squeeze=False)[0])
        for ax, w in zip(axes, ranges, strict=True):
            for m, comp in combos:
                pts = [look[(w, m, comp, t)] for t in times if (w, m, comp, t) in look]
                ax.errorbar([max(p["t"], 1e-3) for p in pts], [p["accuracy_mean"] for p in pts],
                            yerr=[_half_width(p) for p in pts], capsize=3,
                            marker="o" if m == "HA-SGD" else "s",
                            ls="-" if comp.startswith("global") else "--", label=f"{m}, {comp}")
            for acc in clean:
                ax.axhline(acc, lw=0.8, color="grey", ls=":")
            ax.set_xscale("log")
            ax.set_xlabel("time after programming [s]")
            ax.grid(True, which="both", alpha=0.3)
            if len(ranges) > 1:
                ax.set_title(f"G {labels.get(w, w)}", fontsize=9)
        axes[0].set_ylabel("test accuracy")
        axes[0].legend(fontsize=8)

    B.append(("img", plots.save("accuracy_vs_time.png", [rows_ev, clean, labels],
                                (6.4 * (1 + 0.6 * (len(ranges) - 1)), 4.2), draw),
              "Accuracy vs time: plain SGD vs HA-SGD, with and without drift "
              "compensation; error bars: 95 % t-interval over programmings (dotted: clean "
              "digital accuracy)"))
    B += _gap_table(ev.get("seed_gaps") or [], labels)
    return B


def _gap_table(gaps: list[dict], labels: dict) -> list:
    """The HA-SGD − SGD accuracy gap over training seeds: a sentence and a table (nothing
    for a run with one seed)."""
    if not gaps:
        return []
    n = gaps[0]["n_seeds"]
    ranges = list(dict.fromkeys(g["range"] for g in gaps))
    times = sorted({g["t"] for g in gaps})
    comps = list(dict.fromkeys(g["compensation"] for g in gaps))
    look = {(g["range"], g["compensation"], g["t"]): g for g in gaps}

    def cell(g):
        if g is None:
            return "–"
        lo, hi = g["gap_ci95"]
        return f"{g['gap_mean']:+.4f} ± {0.5 * (hi - lo):.4f}"

    text = (f"HA-SGD − SGD accuracy gap over {n} training seeds (each seed trains both "
            "networks from its own streams and reads them on the same chips; per seed the "
            "gap of the means over programmings; mean ± the half-width of its 95 % "
            f"t-interval over the seeds, {n - 1} degrees of freedom). The table above is "
            "the first seed's.")
    head = ["range", "compensation", *[format_duration(t) for t in times]]
    rows = [[labels.get(w, w), c, *[cell(look.get((w, c, t))) for t in times]]
            for w in ranges for c in comps]
    return [("p", text), ("table", head, rows)]


def _half_width(r: dict) -> float:
    """Half-width of a row's 95 % interval (0 where it has none)."""
    ci = r.get("accuracy_ci95")
    return 0.0 if not ci else 0.5 * (ci[1] - ci[0])


def _acc_cell(r: dict | None) -> str:
    """"mean ± half-width of the 95 % interval" (mean alone for one programming)."""
    if r is None:
        return "–"
    if not r.get("accuracy_ci95"):
        return f"{r['accuracy_mean']:.4f}"
    return f"{r['accuracy_mean']:.4f} ± {_half_width(r):.4f}"


def _headline(rows: list[dict], trained: dict, *, where: str = "") -> str:
    """One sentence: both networks' accuracy at the latest time read without compensation
    (empty where either is missing); ``where`` names the weight-mapping range."""
    plain = {(r["method"], r["t"]): r for r in rows if r["compensation"] == "none"}
    times = sorted({t for m, t in plain if (("SGD", t) in plain and ("HA-SGD", t) in plain)})
    if not times:
        return ""
    t = times[-1]
    h, s = plain[("HA-SGD", t)], plain[("SGD", t)]
    clean = ", ".join(f"{m} {v['clean_accuracy']:.4f}" for m, v in trained.items() if v)
    return (f"**At {format_duration(t)} after programming"
            + (f", weights on {where}" if where else "")
            + f", HA-SGD keeps a test accuracy of {_acc_cell(h)} and plain SGD "
            f"{_acc_cell(s)}** (95 % t-intervals over {h['n_programmings']} programmings; "
            "no drift compensation"
            + (f"; clean digital accuracy {clean}" if clean else "") + ").")


def _model_words(c: dict) -> str:
    """The fitted model in words, e.g. "programming = fitted programming; drift = fitted
    power law; read noise = none" (the summary's class names split into words; a summary
    without them: its text)."""
    blocks = c.get("model_blocks")
    if not blocks:
        return str(c.get("model", "?"))
    return "; ".join(f"{k} = {_words(v) if v else 'none'}" for k, v in blocks.items())


def _words(name: str) -> str:
    import re

    return " ".join(w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name))


def _f3(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def _us(g) -> str:
    return f"{g * 1e6:.4g} µS"


class _Plots:
    """The report's plots, drawn into ``folder``. A plot whose data, size and drawing code
    are those of the same plot in the previous report of this run folder (``previous``;
    ``keys.json`` there holds each plot's digest) is copied from it instead of drawn again:
    a rerun after a change in one stage redraws only the plots that change."""

    def __init__(self, folder: Path, previous: Path):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.previous = previous
        self.keys: dict[str, str] = {}
        old = _maybe(previous / "keys.json")
        self.old_keys = old if isinstance(old, dict) else {}

    def save(self, name: str, data, figsize: tuple[float, float], draw) -> Path:
        """``draw(fig)`` on a new figure of ``figsize`` [inch], saved as ``name``, unless the
        previous report holds it for the same ``data`` (JSON-able); returns its path."""
        key = hashlib.sha256(json.dumps([_plot_code(), name, list(figsize), data],
                                        sort_keys=True, default=json_default).encode()
                             ).hexdigest()
        path = self.folder / name
        old = self.previous / name
        self.keys[name] = key
        if self.old_keys.get(name) == key and old.is_file():
            shutil.copyfile(old, path)
            return path
        fig = _figure(figsize=figsize)
        draw(fig)
        return _savefig(fig, path)

    def write_keys(self) -> None:
        """Record the digests of this report's plots (``keys.json``)."""
        from ..formats import write_text_atomic

        write_text_atomic(self.folder / "keys.json", json.dumps(self.keys, indent=1),
                          force=True)


@functools.cache
def _plot_code() -> str:
    """Digest of the drawing code: this module's source and the versions that draw."""
    import matplotlib

    return hashlib.sha256(Path(__file__).read_bytes() + __version__.encode()
                          + matplotlib.__version__.encode()).hexdigest()


def _figure(*, figsize: tuple[float, float]):
    """A new figure on its own Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _savefig(fig, path: Path) -> Path:
    from ..formats import atomic_output

    fig.tight_layout()
    with atomic_output(path, force=True, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    return path


def _maybe(path: Path):
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None
