"""The calibration report: PNG plots, ``report.md`` and ``report.html`` with the tables,
the model choices, the goodness of fit beside its sampling floor and two baselines, and a
one-line verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..checks import check_rng
from ..devices.fitted import FittedPowerLaw
from ..devices.relaxation_table import RelaxationTable
from .goodness import model_levels
from .powerlaw import LAW_MARGIN_SE, PowerLawInfo
from .structure import BOTH_MARGIN_SE, W_LEVELS_BELOW

US = 1e6  # S -> uS for plots and tables only


def structure_summary(info: PowerLawInfo) -> str:
    """One sentence for the report: the fitted read-noise structure and what chose it
    (held-out log-likelihood per read of each structure, the gain of "both" with its
    standard error and shared share w)."""
    ev = info.read_noise_evidence
    amp = ("Q is the random walk's amplitude; the independent part's is listed as Q_i"
           if info.read_noise == "both" else "Q is its amplitude")
    if info.read_noise == "both" and info.w_levels_g.size and info.w_independent.size:
        amp += (f"; the fitted share w = {info.w_independent[0]:.3f} comes from the "
                f"{info.w_levels_g.size} levels {info.w_levels_g.min() * 1e6:.4g}-"
                f"{info.w_levels_g.max() * 1e6:.4g} uS, where the read noise's std in ln g "
                f"at the last read is <= {W_LEVELS_BELOW:g} (ln g near normal)")
    if not ev:
        return f"Read noise: **{info.read_noise}** (asked for); {amp}."
    ll = ", ".join(f"{k}: {v:.4f}" for k, v in ev["loglik"].items())
    return (f"Read noise: **{info.read_noise}**, chosen by held-out log-likelihood per read "
            f"({ev['devices']} devices, {ev['reads']} reads after their first: {ll}); "
            f"'both' (one independent share w = {ev['w_both']:.3f} for all levels) gains "
            f"{ev['both_gain']:.5f} +- {ev['both_gain_se']:.5f} per read over the better "
            f"single structure and is taken only above {BOTH_MARGIN_SE:g} standard errors; "
            f"{amp}.")


def law_summary(info: PowerLawInfo) -> str:
    """One sentence for the report: how the read noise enters the reads and what chose
    it (held-out log-likelihood per read of each law, the gain of "linear" with its
    standard error)."""
    form = ("g(t) (1 + e), clamped at 0 S" if info.law == "linear"
            else "g(t) e^e")
    ev = info.law_evidence
    if not ev:
        return f"Read-noise law: **{info.law}** (asked for): reads {form}."
    ll = ", ".join(f"{k}: {v:.4f}" for k, v in ev["loglik"].items())
    lp = ", ".join(f"{k}: {v:.4f}" for k, v in ev["loglik_positive"].items())
    return (f"Read-noise law: **{info.law}**, reads {form}, chosen by held-out "
            f"log-likelihood per read given each device's first positive read "
            f"({ev['devices']} devices, {ev['reads']} reads, {ev['zero_reads']} of them at "
            f"0 S: {ll}; over the positive reads {lp}); 'linear' gains {ev['gain']:.5f} +- "
            f"{ev['gain_se']:.5f} per read and is taken only above {LAW_MARGIN_SE:g} "
            f"standard errors.")


def agg_figure(nrows: int = 1, ncols: int = 1, *, figsize):
    """A figure drawn by the Agg canvas (no pyplot, no global backend) and its axes
    (``figsize`` in inches)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def save_png(fig, path: Path, force: bool = True):
    """Write ``fig`` to ``path`` as a PNG (110 dpi, atomically); return ``path``."""
    from ..formats import atomic_output

    with atomic_output(path, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path


def _plot_programming(model, out: Path):
    rep = model.report.programming
    pb = model.programming
    fig, ax = agg_figure(1, 2, figsize=(10, 4))
    g = pb.bias.g
    lo, hi = pb.bias.band()
    ax[0].fill_between(g * US, lo * US, hi * US, alpha=0.3, label="bias, 95 % bootstrap band")
    ax[0].plot(g * US, pb.bias.value * US, "C0-", label=f"bias fit ({rep.bias_choice})")
    ax[0].errorbar(rep.levels_g * US, rep.bias * US, yerr=rep.spread / np.sqrt(rep.n) * US,
                   fmt="ko", ms=4, label="per-level mean error")
    ax[0].set_xlabel("target g_T [uS]")
    ax[0].set_ylabel("g_prog - g_T [uS]")
    ax[0].legend(fontsize=8)
    lo, hi = pb.spread.band()
    ax[1].fill_between(g * US, lo * US, hi * US, alpha=0.3, color="C1",
                       label="spread, 95 % bootstrap band")
    ax[1].plot(g * US, pb.spread.value * US, "C1-", label=f"spread fit ({rep.spread_choice})")
    if rep.boot_spread_level.shape[0] > 1:
        # a percentile interval need not contain the estimate (few replicates, skewed
        # resamples): drawn as its own segment, not as error bars around the point
        blo, bhi = np.quantile(rep.boot_spread_level, [0.025, 0.975], axis=0)
        ax[1].vlines(rep.levels_g * US, blo * US, bhi * US, colors="k", lw=1,
                     label="per-level std, bootstrap 95 %")
        ax[1].plot(rep.levels_g * US, rep.spread * US, "ko", ms=4, label="per-level std")
    ax[1].set_xlabel("target g_T [uS]")
    ax[1].set_ylabel("std of g_prog - g_T [uS]")
    ax[1].set_ylim(bottom=0)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"Programming error; family: {pb.family.value}")
    fig.tight_layout()
    return save_png(fig, out / "programming_error.png")


def _plot_parameters(model, out: Path):
    rep = model.report
    d = model.drift_law
    panels = []
    if isinstance(d, FittedPowerLaw):
        pl = rep.power_law
        panels = [("mu_nu", d.mu_nu, pl.mu_nu, None, "mean drift exponent mu_nu [1]"),
                  ("sigma_nu", d.sigma_nu, pl.sigma_nu, pl.sigma_nu_raw,
                   "exponent spread sigma_nu [1] (deconvolved; x: raw)"),
                  ("q_read", d.q_read, pl.q_read, None, "1/f read-noise amplitude Q [1]")]
    elif isinstance(d, RelaxationTable):
        ri = rep.relaxation
        panels = [("beta", None, ri.beta * US, None, "mean shift per unit ln(1+t/tau) [uS]"),
                  ("gamma", None, ri.gamma * US**2, None,
                   "variance growth per unit ln(1+t/tau) [uS^2]")]
    if model.read_noise is not None:
        panels.append(("sigma_read", model.read_noise.sigma, rep.read_noise.get("sigma"), None,
                       "read-to-read std [S]"))
    if not panels:
        return None
    fig, ax = agg_figure(1, len(panels), figsize=(4.5 * len(panels), 3.8))
    ax = np.atleast_1d(ax)
    for a, (name, curve, pts, raw, label) in zip(ax, panels, strict=True):
        if curve is not None:
            lo, hi = curve.band()
            a.fill_between(curve.g * US, lo, hi, alpha=0.3)
            a.plot(curve.g * US, curve.value, "C0-")
            if curve.boot.shape[0] >= 20:
                for edge in curve.band(simultaneous=True):
                    a.plot(curve.g * US, edge, "C0--", lw=0.8)
        xs = (rep.read_noise.get("g") if name == "sigma_read"
              else (rep.power_law.levels_g if isinstance(d, FittedPowerLaw)
                    else rep.relaxation.levels_g))
        if pts is not None:
            a.plot(np.asarray(xs) * US, pts, "ko", ms=3)
        if raw is not None:
            a.plot(np.asarray(xs) * US, raw, "rx", ms=4)
        a.set_xlabel("g [uS]")
        a.set_title(label, fontsize=9)
    fig.tight_layout()
    return save_png(fig, out / "parameters_vs_g.png")


def _band_times(pv, t_fit_max: float) -> np.ndarray:
    """Plot times [s]: from the first read time to 100 x the last fitted (or measured)
    time, with the last fitted time and 10x, 100x it on the grid."""
    pos = pv.t[np.isfinite(pv.t) & (pv.t > 0)]
    t_lo = max(float(pos.min()) if pos.size else 1e-3, 1e-3)
    t_end = max(float(np.nanmax(pv.t)), t_fit_max)
    tt = np.geomspace(min(t_lo, t_fit_max), 100 * t_end, 60)
    return np.unique(np.concatenate([tt, t_fit_max * np.array([1.0, 10.0, 100.0])]))


def _plot_bands(model, pv, lev, centres, t_fit_max: float, out: Path, rng):
    """Measured median and 5-95 % range per level and time point (points) with the model's
    median and 90 % prediction band (samples drawn from ``rng``) up to 100 x the last
    fitted time, marked by a dashed line (a model that takes a cell's level is given its
    level's, :func:`~.goodness.model_levels`). Returns the plot's path and rows (level [S],
    band width at 1x, 10x and 100x the last fitted time [S], |median| at 1x and 100x [S])."""
    fig, ax = agg_figure(figsize=(7.5, 5))
    nl = centres.size
    show = np.unique(np.linspace(0, nl - 1, min(nl, 6)).astype(int))
    tt = _band_times(pv, t_fit_max)
    at = [int(np.argmin(np.abs(tt - f * t_fit_max))) for f in (1.0, 10.0, 100.0)]
    cols = np.nonzero(pv.tp > 0)[0]
    levels = model_levels(model, pv, centres)
    widths = []
    for c, i in enumerate(show):
        m = lev == i
        if not np.any(m):
            continue
        col = f"C{c % 10}"
        tm = np.array([np.nanmedian(pv.t[m, k]) for k in cols])
        q = np.array([np.nanquantile(pv.g[m, k], [0.05, 0.5, 0.95]) if np.any(
            np.isfinite(pv.g[m, k])) else [np.nan] * 3 for k in cols]).reshape(-1, 3)
        ok = np.isfinite(q[:, 1])
        ax.errorbar(tm[ok], q[ok, 1] * US, yerr=[(q[ok, 1] - q[ok, 0]) * US,
                                                  (q[ok, 2] - q[ok, 1]) * US],
                    fmt="o", color=col, ms=4, capsize=2)
        g_in = (pv.target[m] if model.conditioning == "target" and pv.target is not None
                else pv.g0[m])[:400]
        kw = {} if levels is None else {"g_level": levels[i]}
        s = model.sample(np.repeat(g_in, 20), tt, rng, **kw)
        lo, med, hi = np.quantile(s, [0.05, 0.5, 0.95], axis=1)
        ax.plot(tt, med * US, "-", color=col, label=f"level {centres[i] * US:.2f} uS")
        ax.fill_between(tt, lo * US, hi * US, color=col, alpha=0.15)
        widths.append((float(centres[i]), *[float(hi[k] - lo[k]) for k in at],
                       float(abs(med[at[0]])), float(abs(med[at[2]]))))
    ax.axvline(t_fit_max, color="k", ls="--", lw=1)
    ax.axvspan(t_fit_max, tt[-1], color="0.5", alpha=0.08, lw=0)
    ax.text(t_fit_max, 1.0, " last fitted time", transform=ax.get_xaxis_transform(),
            va="top", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("g [uS]")
    kind = ("power law" if isinstance(model.drift_law, FittedPowerLaw)
            else "relaxation table" if isinstance(model.drift_law, RelaxationTable) else "model")
    ax.set_title(f"g vs time: measured median and 5-95 % (points); {kind}: median and 90 % "
                 "band", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, out / "g_vs_time.png"), widths


def _band_blocks(widths, t_fit_max: float) -> list:
    """Blocks that say whether the model's bands widen beyond the last fitted time, in S
    and relative to the median (a decaying conductance narrows its band in S)."""
    if not widths:
        return []
    w = np.array(widths)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(w[:, 1] > 0, w[:, 3] / w[:, 1], np.inf)
        rel = np.where((w[:, 1] > 0) & (w[:, 5] > 0), ratio * w[:, 4] / w[:, 5], np.inf)
    flat = (ratio <= 1.01) & (rel <= 1.01)
    rel_only = (ratio <= 1.01) & ~flat
    text = (f"Prediction bands beyond the data: the dashed line marks the last fitted time "
            f"(t = {t_fit_max:.3g} s); to its right (shaded) the model extrapolates.")
    wide = ~(flat | rel_only)
    if np.all(wide):
        text += (f" The model's 90 % band widens at every plotted level (x{ratio.min():.2f} to "
                 f"x{ratio.max():.2f} from the last fitted time to 100x it).")
    elif np.any(wide):
        text += (" The model's 90 % band widens at level(s) "
                 + ", ".join(f"{g * US:.3g}" for g in w[wide, 0]) + f" uS (x"
                 f"{ratio[wide].min():.2f} to x{ratio[wide].max():.2f} from the last fitted "
                 "time to 100x it).")
    if np.any(rel_only):
        text += (" At level(s) " + ", ".join(f"{g * US:.3g}" for g in w[rel_only, 0])
                 + " uS the band narrows in S but widens relative to the median (x"
                 f"{rel[rel_only].min():.2f} to x{rel[rel_only].max():.2f}): the conductance "
                 "itself decays.")
    if np.any(flat):
        text += (" **The model's 90 % band does not widen** beyond it at level(s) "
                 + ", ".join(f"{g * US:.3g}" for g in w[flat, 0]) + " uS (neither in S nor "
                 "relative to the median): it predicts later times as confidently as fitted "
                 "ones, which data that end there cannot support.")
    rows = [[f"{x[0] * US:.3f}", f"{x[1] * US:.4f}", f"{x[2] * US:.4f}", f"{x[3] * US:.4f}",
             f"{r:.2f}", f"{q:.2f}"] for x, r, q in zip(w, ratio, rel, strict=True)]
    return [("p", text),
            ("table", ["level g [uS]", "90 % band at t_fit [uS]", "at 10 t_fit [uS]",
                       "at 100 t_fit [uS]", "ratio 100 t_fit / t_fit",
                       "ratio relative to the median"], rows)]


def _plot_ks(gt, out: Path):
    """Heat maps of the model's KS and of KS / sampling floor (x: beyond the family-wise
    threshold, dot: above the cell's own floor)."""
    tab = gt.ks
    fig, ax = agg_figure(1, 2, figsize=(1.1 * tab.t.size + 6, 0.16 * tab.level.size + 2))
    ratio = tab.ks / np.where(gt.floor > 0, gt.floor, np.nan)
    panels = ((tab.ks, f"KS distance (median {tab.median:.3f})",
               max(0.3, float(np.nanmax(tab.ks)) if np.any(np.isfinite(tab.ks)) else 0.3)),
              (ratio, "KS / sampling floor (95 %)", max(2.0, float(np.nanmax(ratio)) if np.any(
                  np.isfinite(ratio)) else 2.0)))
    for a, (v, title, vmax) in zip(ax, panels, strict=True):
        im = a.imshow(np.ma.masked_invalid(v), aspect="auto", cmap="viridis", vmin=0, vmax=vmax)
        a.set_xticks(range(tab.t.size), [f"{t:.3g}" + ("*" if gt.extrapolated(t) else "")
                                         for t in tab.t], fontsize=7)
        a.set_xlabel("time [s] (*: beyond the last fitted time)", fontsize=8)
        a.set_title(title, fontsize=9)
        fig.colorbar(im, ax=a)
    ax[0].set_yticks(range(tab.level.size), [f"{g * US:.1f}" for g in tab.level_g], fontsize=6)
    ax[0].set_ylabel("level g [uS]")
    ax[1].set_yticks([])
    r, c = np.nonzero(gt.above_floor & ~gt.failing)
    ax[1].plot(c, r, "w.", ms=4)
    r, c = np.nonzero(gt.failing)
    ax[1].plot(c, r, "rx", ms=6)
    fig.tight_layout()
    return save_png(fig, out / "ks_heatmap.png")


def _f3(v) -> str:
    return f"{v:.3f}" if np.isfinite(v) else "-"


def _goodness_blocks(gt, *, in_sample: bool, n_samples: int, ks_png) -> list:
    """Blocks of the goodness-of-fit section: verdict, per-time summary, heat map and the
    per-cell table with the sampling floor and both baselines."""
    tab, fl, above, fail = gt.ks, gt.floor, gt.above_floor, gt.failing
    B: list = [("h2", "Goodness of fit"),
               ("p", f"KS distance between the measured conductances of each (level, time "
                     f"point) and {n_samples} model samples per device, "
                     + ("on the reads the model was fitted on (in-sample: biased low; "
                        "held-out reads are the stricter test)." if in_sample else
                        "on held-out reads the fit never saw (the floor leaves out the fit's "
                        "own sampling error, so at fitted times a cell can exceed it by that "
                        "much).")
                     + f" Median {tab.median:.3f}; worst cells: "
                     + "; ".join(f"{g * US:.2f} uS at {t:.3g} s: {v:.3f} ({n})"
                                 for g, t, v, n in tab.worst(3)) + "."),
               ("p", f"**Sampling floor**: the {round(100 * gt.quantile)} % quantile of the KS "
                     f"that data drawn from the fitted model itself (one read per device, "
                     f"same inputs and cell sizes; {gt.floor_replicates.shape[0]} replicates, "
                     "no refits) show against model samples drawn the same way: the KS "
                     "expected from the sample sizes alone. A cell above its floor is "
                     "flagged (about 5 % of cells are by chance); a cell above "
                     f"{_f3(gt.threshold)} x its floor (the family-wise 5 % threshold) fails. "
                     "**Baselines** on the same cells: *empirical bootstrap*, reads of the "
                     "training devices of the same level and time point resampled"
                     + (" (here the scored reads themselves: a lower bound)" if in_sample
                        else "") + "; *persistence*, each device's first read plus the change "
                     "a training device of its level showed at the latest earlier time point "
                     "at or before the last fitted time (no change before the first)."),
               ("p", f"**Verdict**: {gt.verdict()}.")]
    rows = [[f"{r['t']:.3g}", "extrapolated" if r["extrapolated"] else "fitted", r["cells"],
             _f3(r["ks"]), _f3(r["floor"]), _f3(r["empirical"]), _f3(r["persistence"]),
             r["above"], r["failing"]] for r in gt.per_time()]
    B.append(("table", ["t [s]", "", "cells", "median KS", "median floor",
                        "median empirical bootstrap", "median persistence",
                        "cells above floor", "cells failing"], rows))
    if ks_png is not None:
        B.append(("img", ks_png, "KS per cell and KS / sampling floor (x: fails, dot: above "
                                 "its floor)"))
    cells = []
    p = gt.p_value
    for i in range(tab.level.size):
        for j, t in enumerate(tab.t):
            if not np.isfinite(fl[i, j]):
                continue
            flag = "fails" if fail[i, j] else ("above floor" if above[i, j] else "")
            cells.append([f"{tab.level[i]:g}", f"{tab.level_g[i] * US:.3f}", f"{t:.3g}",
                          int(tab.n[i, j]), _f3(tab.ks[i, j]), _f3(fl[i, j]), f"{p[i, j]:.2f}",
                          _f3(gt.empirical.ks[i, j]), _f3(gt.persistence.ks[i, j]), flag])
    B += [("h3", "Per cell"),
          ("table", ["level", "g [uS]", "t [s]", "devices", "KS", "floor", "p",
                     "empirical bootstrap", "persistence", "flag"], cells)]
    return B


def _programming_blocks(model, rep, png) -> list:
    """Blocks of the programming-error section (empty without one)."""
    if model.programming is None or rep.programming is None:
        return []
    pi = rep.programming
    B: list = [("h2", "Programming error"),
               ("p", f"Family: **{pi.family}** (lowest AIC; "
                     + ", ".join(f"{k}: {v:.1f}" for k, v in pi.aic.items()) + "). "
                     f"Verify window half-width: {pi.window * US:.3f} uS "
                     f"({'estimated from the largest error' if pi.window_estimated else 'given'})."
                     f" Bias smoothing: {pi.bias_choice}; spread smoothing: {pi.spread_choice} "
                     "(leave-one-level-out cross-validation).")]
    blo = bhi = None
    if pi.boot_spread_level.shape[0] > 1:
        blo, bhi = np.quantile(pi.boot_spread_level, [0.025, 0.975], axis=0)
    rows = []
    for i, g in enumerate(pi.levels_g):
        band = (f"{blo[i] * US:.3f}-{bhi[i] * US:.3f}" if blo is not None else "")
        rows.append([f"{g * US:.3f}", int(pi.n[i]), f"{pi.bias[i] * US:.3f}",
                     f"{pi.spread[i] * US:.3f}", band,
                     f"{model.programming.spread(g) * US:.3f}"])
    B.append(("table", ["target [uS]", "devices", "bias [uS]", "std [uS]",
                        "std 95 % bootstrap [uS]", "model std [uS]"], rows))
    if png is not None:
        B.append(("img", png, "Programming error vs target with bootstrap bands"))
    return B


def _form_scores(ri) -> str:
    """The extrapolation forms' median KS at the held-out time, as a clause ("" if none)."""
    if not ri.extrapolation_ks:
        return ""
    return (f" ({ri.t_holdout:.3g} s predicted from the times at least ten times earlier, "
            "median KS over levels: " + ", ".join(
                f"{f} {v:.3f}" for f, v in ri.extrapolation_ks.items()) + ")")


def _drift_blocks(model, rep) -> list:
    """Blocks of the drift / relaxation section (empty without one)."""
    if model.drift_law is None:
        return []
    B: list = [("h2", "Drift / relaxation")]
    if rep.drift_loglik:
        B.append(("p", "Chosen by held-out likelihood (fit on half of the devices, mean "
                       "log-likelihood per read of the other half): "
                       + ", ".join(f"{k}: {v:.3f}" for k, v in rep.drift_loglik.items())
                       + f" -> **{rep.drift_choice}**."))
    else:
        B.append(("p", f"Model: **{rep.drift_choice}** (asked for)."))
    if isinstance(model.drift_law, FittedPowerLaw) and rep.power_law is not None:
        pl = rep.power_law
        B.append(("p", f"t0 = {pl.t0:.4g} s ({'fitted' if pl.t0_fitted else 'given'}); "
                       f"smoothing: {pl.choices}. sigma_nu is deconvolved from the read noise "
                       "(sigma_nu^2 = var(nu_hat) - Q^2 mean(1/S))."))
        B.append(("p", structure_summary(pl)))
        B.append(("p", law_summary(pl)))
        rows = [[f"{g * US:.3f}", f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", f"{q:.4f}"]
                for g, a, b, c, q in zip(pl.levels_g, pl.mu_nu, pl.sigma_nu,
                                         pl.sigma_nu_raw, pl.q_read, strict=True)]
        head = ["g [uS]", "mu_nu", "sigma_nu", "sigma_nu raw", "Q"]
        if pl.q_independent.size:
            rows = [r + [f"{qi:.4f}"] for r, qi in zip(rows, pl.q_independent, strict=True)]
            head.append("Q_i")
        B.append(("table", head, rows))
    elif rep.relaxation is not None:
        ri = rep.relaxation
        tau_m = getattr(ri, "tau_mean", np.nan)
        if ri.extrapolation == "persistence":
            beyond = "beyond it the last measured law is held (persistence)"
        elif ri.extrapolation == "geometric":
            beyond = (f"beyond it each quantile of the conductance at a level's reference "
                      f"decays geometrically in ln(1 + t/tau_m), tau_m = {tau_m:.3g} s, "
                      "with its own rate over the measured times (decay only)")
        else:
            beyond = (f"beyond it the mean of the change grows linearly in ln(1 + t/tau_m), "
                      f"tau_m = {tau_m:.3g} s, and its variance in u, by increments "
                      "independent of the change so far with the last measured time's "
                      f"shape (growth slopes smoothed across levels: mean "
                      f"{ri.growth_choice[0]}, variance {ri.growth_choice[1]})")
        B.append(("p", f"tau = {ri.tau:.3g} s; u = ln(1 + t/tau). Measured up to "
                       f"{ri.t_fit_max:.3g} s; {beyond}, the form chosen on a held-out time "
                       f"point{_form_scores(ri)}; the table extends to {ri.t_table[-1]:.3g} s "
                       "and holds its last row after that."))
        if ri.level_smoothing:
            B.append(("p", "Quantiles of the change (q) and their within-level slopes (s) "
                           "smoothed across levels (or kept: own), chosen per measured time "
                           "by Stein's unbiased estimate of their error, each level's noise "
                           "from its two halves: " + "; ".join(
                               f"{t:.3g} s: {a} / {b}" for t, (a, b)
                               in sorted(ri.level_smoothing.items())) + "."))
        if getattr(ri, "zero_cells", 0) and np.isfinite(ri.zero_share):
            B.append(("p", f"{ri.zero_cells} cells read 0 S at the first read; "
                           f"{ri.zero_share:.1%} of their later reads are at 0 S, where the "
                           f"table's own changes would leave {ri.zero_table:.1%}: a cell at "
                           f"0 S stays there for good with probability {ri.zero_stay:.3f} "
                           "(and otherwise changes as the table says, clamped at 0 S)."))
        if getattr(model, "takes_level", False):
            B.append(("p", "The levels are labelled and may overlap in the first read: a cell "
                           "is sampled given its level's conductance (g_level) with its first "
                           "read, and follows that level."))
        rows = [[f"{g * US:.3f}", f"{b * US:.4f}", f"{c * US**2:.4f}"]
                for g, b, c in zip(ri.levels_g, ri.beta, ri.gamma, strict=True)]
        B.append(("table", ["level g [uS]", "beta [uS]", "gamma [uS^2]"], rows))
    return B


def _read_noise_blocks(model, rep) -> list:
    """Blocks of the read-noise section (empty without one)."""
    if model.read_noise is None:
        return []
    rn = rep.read_noise
    rows = [[f"{g * US:.3f}", f"{s * US:.4f}", int(n)]
            for g, s, n in zip(rn["g"], rn["sigma"], rn["n"], strict=True)]
    B: list = [("h2", "Read noise"),
               ("p", f"Repeated-read std vs g (smoothing {rn.get('choice')})."),
               ("table", ["mean g [uS]", "read std [uS]", "reads"], rows)]
    if np.isfinite(model.read_noise.psd_exponent):
        B.append(("p", "1/f exponent of the read-noise spectrum: "
                       f"{model.read_noise.psd_exponent:.3f}"))
    return B


def _header_blocks(model, rep, verdict) -> list:
    """Title, what was fitted on, the verdict and the fit's notes."""
    prov = model.provenance
    items = [f"conditioning: **{model.conditioning}**",
             f"devices: {rep.n_devices}, reads: {rep.n_reads}, time points [s]: "
             f"{', '.join(f'{t:.3g}' for t in rep.time_points)}",
             f"fitted conductance range: {model.stat_range[0] * US:.3f}-"
             f"{model.stat_range[1] * US:.3f} uS (outside it the model uses its edge statistics)"]
    if prov is not None:
        items += [f"data: `{s['path']}` (SHA-256 `{s['sha256']}`)" for s in prov.sources]
        items.append(f"method: {prov.method}; settings: `{dict(prov.settings)}`")
    B: list = [("h1", "Calibration report"), ("ul", items)]
    if verdict is not None:
        B.append(("p", f"**Verdict**: {verdict}."))
    return B + [("quote", note) for note in rep.notes]


def write_report(model, measurements, out, *, rng: np.random.Generator, ks=None,
                 force: bool = False, extra: dict | None = None, held_out=None,
                 n_replicates: int = 100) -> Path:
    """Write the report folder ``out``: PNG plots, ``report.md``, ``report.html`` and, where
    cells were scored, ``goodness.json`` (:meth:`GoodnessTable.summary` plus ``scored``:
    "in-sample" or "held-out").

    Parameters
    ----------
    model : CompositeDevice
        A model returned by :func:`fit` (its ``report`` holds the evidence).
    measurements : table
        The table it was fitted on (the data plots, the baselines' training reads and,
        without ``held_out``, the scored reads).
    out : str or os.PathLike
        The report folder (an xbarlab output folder).
    rng : numpy.random.Generator
        Draws the model samples of the KS table first (as :func:`ks_table` with the same
        generator), then the sampling floor, the baselines and the plotted bands.
    ks : KSTable, optional
        The model's KS table of the scored reads, precomputed (not drawn again).
    force : bool
        Replace files of an earlier report in ``out``.
    extra : dict, optional
        More named KS tables (e.g. other baselines) whose medians are listed.
    held_out : table, optional
        Reads the fit never saw (other devices, later times) to score instead.
    n_replicates : int
        Replicates of the sampling floor's parametric bootstrap [1].

    Returns
    -------
    pathlib.Path
        The path of ``report.md`` (``report.html`` lies beside it, plots inline).
    """
    from ..devices.composite import CompositeDevice
    from ..formats import prepare_output_dir, write_text_atomic
    from ..formats.report_doc import render_html, render_markdown
    from . import tables
    from .goodness import goodness_table, last_fitted_time, level_index

    check_rng(rng)
    out = prepare_output_dir(out, force=force, command="calibrate")
    rep = model.report
    scored_meas = measurements if held_out is None else held_out
    cols = tables.columns(scored_meas)
    pv = tables.pivot(cols, use_initial=cols["g_initial"] is not None)
    lev, labels, centres = level_index(pv, None)
    scored = model
    if model.conditioning == "target" and pv.target is None and model.drift_law is not None:
        # composed model, data without targets: score its drift part given the first reads
        scored = CompositeDevice(conditioning="initial read", programming=None,
                                 drift_law=model.drift_law, read_noise=model.read_noise,
                                 g_range=model.g_range, range_policy=model.range_policy,
                                 g_fit=model.g_fit)
        rep.notes.append("The data hold no programming targets: the KS table scores the "
                         "relaxation part of the model given each cell's first read.")
    has_time = np.any(pv.tp > 0) and model.drift_law is not None
    gt = None
    if has_time:  # first: its samples are the first draws from rng
        gt = goodness_table(scored, measurements, rng=rng, held_out=held_out, ks=ks,
                            min_devices=min(50, max(pv.n_dev // 10, 5)),
                            n_replicates=n_replicates)
    t_fit = last_fitted_time(model, float(np.nanmax(pv.t)) if np.any(np.isfinite(pv.t))
                             else 1.0)
    prog_png = (_plot_programming(model, out)
                if model.programming is not None and rep.programming is not None else None)
    band_png, widths = (_plot_bands(scored, pv, lev, centres, t_fit, out, rng) if has_time
                        else (None, []))
    par_png = _plot_parameters(model, out)
    scored_ok = gt is not None and np.any(np.isfinite(gt.floor))
    ks_png = _plot_ks(gt, out) if scored_ok else None

    B = _header_blocks(model, rep, gt.verdict() if scored_ok else None)
    B += _programming_blocks(model, rep, prog_png) + _drift_blocks(model, rep)
    if par_png is not None:
        B.append(("img", par_png, "Fitted parameters vs g: shaded, the pointwise 95 % "
                                  "bootstrap band (holds the truth at 95 % of the levels); "
                                  "dashed (with >= 20 replicates), the simultaneous 95 % "
                                  "band (holds the whole curve with probability 0.95)"))
    if band_png is not None:
        B.append(("img", band_png, "g vs time: measured points, model median and 90 % band; "
                                   "dashed: last fitted time"))
        B += _band_blocks(widths, t_fit)
    B += _read_noise_blocks(model, rep)
    if scored_ok:
        B += _goodness_blocks(gt, in_sample=held_out is None, n_samples=20, ks_png=ks_png)
    for name, tab in (extra or {}).items():
        B += [("h3", name), ("p", f"Median KS {tab.median:.3f}")]
    if rep.skipped:
        B += [("h2", "Skipped levels (too few devices)"),
              ("table", ["g [uS]", "devices", "part"],
               [[f"{g * US:.3f}", n, part] for g, n, part in rep.skipped])]
    write_text_atomic(out / "report.html", render_html(B, title="Calibration report"),
                      force=True)
    if scored_ok:
        write_text_atomic(out / "goodness.json", json.dumps(
            dict(gt.summary(), scored="in-sample" if held_out is None else "held-out"),
            indent=1), force=True)
    return write_text_atomic(out / "report.md", render_markdown(B, base=out), force=True)
