"""The report of a pulsed-device fit: PNG plots, ``report.md`` and ``report.html`` with the
rule comparison, the fitted values with bootstrap bands, the KS of simulated vs measured
steps per conductance bin beside its sampling floor and two baselines, and a one-line
verdict; ``goodness.json`` and ``fit.json`` hold the numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..formats.pulse_tables import PulseRamps, PulseStepTable
from .pulsed import DERIVED, PulseFit
from .pulsed_goodness import PulseKS
from .report import agg_figure, save_png

__all__ = ["write_pulse_report", "fit_summary"]

US = 1e6  # S -> uS for plots and tables only


def _measured_curve(data):
    """(g [S], mean step magnitude [S], direction) of the measured steps, binned."""
    if isinstance(data, PulseStepTable):
        from .pulsed import step_table_rule

        rule = step_table_rule(data)
        c = data.g_bins
        return [(c, rule.mean(c, np.full(c.size, s)), s) for s in (1, -1)]
    g, dg, ramp = data.steps()
    d = data.direction[ramp]
    out = []
    for s in (1, -1):
        gs, ys = g[d == s], s * dg[d == s]
        e = np.quantile(gs, np.linspace(0, 1, 21))
        i = np.clip(np.searchsorted(e, gs, side="right") - 1, 0, 19)
        cnt = np.bincount(i, minlength=20)
        ok = cnt > 0
        out.append(((np.bincount(i, gs, 20)[ok] / cnt[ok]),
                    (np.bincount(i, ys, 20)[ok] / cnt[ok]), s))
    return out


def _plot_steps(fit: PulseFit, data, out: Path) -> Path:
    fig, ax = agg_figure(1, 1, figsize=(6.5, 4.2))
    dev = fit.device
    grid = fit.grid
    for (gm, ym, s), col in zip(_measured_curve(data), ("C0", "C3"), strict=True):
        j = 0 if s > 0 else 1
        name = "up (SET)" if s > 0 else "down (RESET)"
        if fit.boot_curves is not None:
            lo, hi = np.quantile(fit.boot_curves[:, j], [0.025, 0.975], axis=0)
            ax.fill_between(grid * US, lo * US, hi * US, color=col, alpha=0.25,
                            label=f"{name}: 95 % bootstrap band")
        ax.plot(grid * US, dev.mean_magnitude(grid, s) * US, color=col,
                label=f"{name}: fitted mean step ({fit.form.value})")
        ax.plot(gm * US, ym * US, "o", color=col, ms=3, label=f"{name}: measured mean")
    gs = fit.values["symmetric_point"]
    if math.isfinite(gs):
        ax.axvline(gs * US, color="k", ls="--", lw=1, label="symmetric point")
    ax.set_xlabel("conductance before the pulse G [uS]")
    ax.set_ylabel("mean step magnitude |dG| [uS]")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, out / "step_vs_state.png")


def _plot_ks(ks: PulseKS, out: Path) -> Path:
    fig, ax = agg_figure(1, 1, figsize=(6.5, 3.6))
    for s, mk, name in ((1, "o", "up"), (-1, "s", "down")):
        m = ks.direction == s
        gc = ks.bins[m].mean(axis=1) * US
        ax.plot(gc, ks.ks[m], mk + "-", label=f"{name}: fitted device")
        ax.plot(gc, ks.floor[m], mk + ":", color="gray", label=f"{name}: sampling floor")
        for k, v in ks.baselines.items():
            ax.plot(gc, v[m], mk, ms=3, alpha=0.5, label=f"{name}: {k}")
    ax.set_xlabel("conductance bin [uS]")
    ax.set_ylabel("KS distance of the steps")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return save_png(fig, out / "ks_per_bin.png")


def _fmt(v, unit: str) -> str:
    if not math.isfinite(v):
        return "-"
    if unit == "S":
        return f"{v * US:.4g} uS"
    return f"{v:.4g}"


def fit_summary(fit: PulseFit) -> dict:
    """JSON-ready numbers of a fit: rule, held-out scores, values and bands (SI units, NaN as
    None), counts, notes and the device (its ``to_json`` tree)."""
    def num(v):
        return float(v) if math.isfinite(v) else None

    units = {**DERIVED, "d2d": "1", "d2d_asymmetry": "1", "a_up": "S", "a_down": "S",
             "gamma_up": "1", "gamma_down": "1"}
    vals = {**fit.values, **fit.params}
    return {"rule": fit.form.value, "data": fit.data_kind, "counts": dict(fit.counts),
            "held_out_loglik_per_item": {k: num(v) for k, v in fit.held_out.items()},
            "values": {k: {"value": num(v), "units": units.get(k, "1"),
                           "band_95": [num(x) for x in fit.bands.get(k, (math.nan,) * 2)]}
                       for k, v in vals.items()},
            "bootstrap": list(fit.n_boot), "notes": list(fit.notes),
            "device": json.loads(fit.device.to_json())}


def _value_rows(fit: PulseFit) -> list:
    labels = {"a_up": ("up amplitude a_up", "S"), "a_down": ("down amplitude a_down", "S"),
              "gamma_up": ("gamma_up", "1"), "gamma_down": ("gamma_down", "1"),
              "g_min": ("G_min", "S"), "g_max": ("G_max", "S"),
              "symmetric_point": ("symmetric point", "S"), "n_states": ("number of states", "1"),
              "asymmetry": ("asymmetry (mean up - down)/(up + down)", "1"),
              "step_up_mid": ("mean up step at mid-range", "S"),
              "step_down_mid": ("mean down step at mid-range", "S"),
              "c2c_spread": ("cycle-to-cycle spread (step std / mean at the symmetric point)",
                             "1"),
              "c2c": ("c2c (relative part)", "1"), "write_noise": ("write noise (additive part)",
                                                                   "S"),
              "sigma_read": ("read error std (not part of the device)", "S"),
              "d2d": ("device-to-device spread", "1"),
              "d2d_asymmetry": ("device-to-device up/down imbalance", "1")}
    vals = {**fit.params, **fit.values}
    rows = []
    for k, (name, unit) in labels.items():
        if k not in vals:
            continue
        lo, hi = fit.bands.get(k, (math.nan, math.nan))
        band = f"{_fmt(lo, unit)} - {_fmt(hi, unit)}" if math.isfinite(lo) else "-"
        rows.append([name, _fmt(vals[k], unit), band])
    return rows


def write_pulse_report(fit: PulseFit, data, out, *, ks: PulseKS, force: bool = False,
                       sources: tuple[str, ...] = ()) -> Path:
    """Write the report folder ``out`` of a pulsed-device fit.

    Parameters
    ----------
    fit : PulseFit
        The fit (:func:`~xbarlab.calibration.pulsed.fit_pulsed_ramps` or
        :func:`~xbarlab.calibration.pulsed.fit_step_table`).
    data : PulseRamps or PulseStepTable
        The data it was fitted on (the measured points of the plot).
    out : str or os.PathLike
        The report folder (an xbarlab output folder).
    ks : PulseKS
        Its goodness (:func:`~xbarlab.calibration.pulsed_goodness.ramp_goodness` or
        :func:`~xbarlab.calibration.pulsed_goodness.table_goodness`).
    force : bool
        Replace files of an earlier report in ``out``.
    sources : tuple of str
        Data files, listed with their SHA-256.

    Returns
    -------
    pathlib.Path
        The path of ``report.md`` (``report.html`` beside it, plots inline).
    """
    from ..formats import prepare_output_dir, sha256_file, write_text_atomic
    from ..formats.report_doc import render_html, render_markdown

    if not isinstance(data, (PulseRamps, PulseStepTable)):
        raise ConfigError(f"data must be PulseRamps or a PulseStepTable, got "
                          f"{type(data).__name__}")
    out = prepare_output_dir(out, force=force, command="calibrate")
    png_steps = _plot_steps(fit, data, out)
    png_ks = _plot_ks(ks, out)
    counts = ", ".join(f"{k}: {v}" for k, v in fit.counts.items())
    items = [f"data: {fit.data_kind} ({counts})", f"step rule: **{fit.form.value}**"]
    items += [f"data file: `{s}` (SHA-256 `{sha256_file(s)}`)" for s in sources]
    B: list = [("h1", "Pulsed-device calibration report"), ("ul", items),
               ("p", f"**Verdict**: {ks.verdict()}.")]
    B += [("quote", n) for n in fit.notes]
    how = ("whole ramps held out, 5-fold; Gaussian log-density per step"
           if fit.data_kind == "ramps" else
           "whole bins held out, 5-fold; expected Gaussian log-density of each bin's step "
           "distribution")
    if fit.held_out:
        best = max(fit.held_out.values())
        B += [("h2", "Step rule"),
              ("p", f"Held-out log-likelihood per {'step' if fit.data_kind == 'ramps' else 'bin'}"
                    f" ({how}); the highest wins. Differences are in nats."),
              ("table", ["rule", "held-out log-likelihood", "minus the best"],
               [[k, f"{v:.4f}", f"{v - best:.4f}"] for k, v in fit.held_out.items()])]
    B += [("h2", "Fitted device"),
          ("p", f"Bootstrap: {fit.n_boot[0]} of {fit.n_boot[1]} replicates "
                + ("(ramps resampled within each direction, the rule refitted)"
                   if fit.data_kind == "ramps" else "(bins resampled, the rule refitted)")
                + "; 95 % percentile bands."),
          ("table", ["quantity", "value", "95 % band"], _value_rows(fit)),
          ("img", png_steps, "Mean step magnitude vs the conductance before the pulse, up and "
                             "down, with bootstrap bands and the measured means")]
    B += [("h2", "Goodness of fit"),
          ("p", "KS distance of simulated vs measured single-pulse steps per (direction, "
                "conductance bin). " + ("Every measured ramp is simulated from its first read "
                                        "with its direction and length; simulated reads carry "
                                        "the fitted read error." if fit.data_kind == "ramps"
                                        else "Steps drawn from the measured distribution vs "
                                        "one-pulse steps of the device, both read through the "
                                        "table's apparent read resolution.")
                + f" **Sampling floor**: 95 % quantile of the KS of data drawn from the "
                f"fitted device itself ({ks.n_replicates} replicates). **Baselines**: "
                "*state-blind* (one bin: every step drawn from all measured steps of its "
                "direction) and *no spread* (the fitted mean step, no spread about it)."),
          ("table", ["direction", "bin [uS]", "steps", "KS", "floor",
                     *ks.baselines.keys()],
           [["up" if d > 0 else "down", f"{r[0] * US:.1f}-{r[1] * US:.1f}", int(n),
             f"{k:.3f}", f"{f:.3f}", *[f"{v[i]:.3f}" for v in ks.baselines.values()]]
            for i, (d, r, n, k, f) in enumerate(zip(ks.direction, ks.bins, ks.n, ks.ks,
                                                    ks.floor, strict=True))]),
          ("img", png_ks, "KS per conductance bin: fitted device, sampling floor, baselines")]
    write_text_atomic(out / "goodness.json", json.dumps(ks.summary(), indent=1), force=True)
    write_text_atomic(out / "fit.json", json.dumps(fit_summary(fit), indent=1), force=True)
    write_text_atomic(out / "report.html",
                      render_html(B, title="Pulsed-device calibration report"), force=True)
    return write_text_atomic(out / "report.md", render_markdown(B, base=out), force=True)
