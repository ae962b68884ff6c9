"""The calibration report: PNG plots and ``report.md`` with the tables and model choices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..devices.fitted import FittedPowerLaw
from ..devices.relaxation_table import RelaxationTable
from .powerlaw import structure_summary

US = 1e6  # S -> uS for plots and tables only


def _figure(nrows: int = 1, ncols: int = 1, *, figsize):
    """A figure drawn by the Agg canvas (no pyplot, no global backend) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def _save(fig, path: Path, force: bool = True):
    from ..formats import atomic_output

    with atomic_output(path, force=force, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path.name


def _plot_programming(model, out: Path):
    rep = model.report.programming
    pb = model.programming
    fig, ax = _figure(1, 2, figsize=(10, 4))
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
        blo, bhi = np.quantile(rep.boot_spread_level, [0.025, 0.975], axis=0)
        ax[1].errorbar(rep.levels_g * US, rep.spread * US,
                       yerr=[(rep.spread - blo) * US, (bhi - rep.spread) * US], fmt="ko", ms=4,
                       label="per-level std (bootstrap 95 %)")
    ax[1].set_xlabel("target g_T [uS]")
    ax[1].set_ylabel("std of g_prog - g_T [uS]")
    ax[1].set_ylim(bottom=0)
    ax[1].legend(fontsize=8)
    fig.suptitle(f"Programming error; family: {pb.family.value}")
    fig.tight_layout()
    return _save(fig, out / "programming_error.png")


def _plot_time(model, pv, lev, centres, out: Path, rng: np.random.Generator):
    """Measured mean +- std of g vs time per level, with the model's band (samples drawn
    from ``rng``)."""
    d = model.drift_law
    fig, ax = _figure(figsize=(7, 5))
    nl = centres.size
    show = np.unique(np.linspace(0, nl - 1, min(nl, 6)).astype(int))
    tt = np.geomspace(max(np.nanmin(pv.t[pv.t > 0]) if np.any(pv.t > 0) else 1e-3, 1e-3),
                      max(np.nanmax(pv.t) * 10, 1.0), 60)
    for c, i in enumerate(show):
        m = lev == i
        if not np.any(m):
            continue
        col = f"C{c % 10}"
        cols = np.nonzero(pv.tp > 0)[0]
        tm = np.array([np.nanmedian(pv.t[m, k]) for k in cols])
        mu = np.array([np.nanmean(pv.g[m, k]) for k in cols])
        sd = np.array([np.nanstd(pv.g[m, k]) for k in cols])
        ok = np.isfinite(mu)
        ax.errorbar(tm[ok], mu[ok] * US, yerr=sd[ok] * US, fmt="o", color=col, ms=4, capsize=2)
        g_in = pv.target[m] if model.conditioning == "target" and pv.target is not None \
            else pv.g0[m]
        g_in = g_in[: 400]
        s = model.sample(np.repeat(g_in, 20), tt, rng)
        ax.plot(tt, s.mean(axis=1) * US, "-", color=col,
                label=f"level {centres[i] * US:.1f} uS")
        ax.fill_between(tt, (s.mean(axis=1) - s.std(axis=1)) * US,
                        (s.mean(axis=1) + s.std(axis=1)) * US, color=col, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("time [s]")
    ax.set_ylabel("g [uS]")
    kind = "power law" if isinstance(d, FittedPowerLaw) else "relaxation table"
    ax.set_title(f"g vs time: measured mean +- std (points), model ({kind}, lines/bands)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out / "g_vs_time.png")


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
    fig, ax = _figure(1, len(panels), figsize=(4.5 * len(panels), 3.8))
    ax = np.atleast_1d(ax)
    for a, (name, curve, pts, raw, label) in zip(ax, panels, strict=True):
        if curve is not None:
            lo, hi = curve.band()
            a.fill_between(curve.g * US, lo, hi, alpha=0.3)
            a.plot(curve.g * US, curve.value, "C0-")
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
    return _save(fig, out / "parameters_vs_g.png")


def _plot_ks(tab, out: Path, name="ks_heatmap.png", title="KS distance"):
    fig, ax = _figure(figsize=(1.2 * tab.t.size + 3, 0.22 * tab.level.size + 2))
    im = ax.imshow(np.ma.masked_invalid(tab.ks), aspect="auto", cmap="viridis", vmin=0,
                   vmax=max(0.3, float(np.nanmax(tab.ks)) if np.any(np.isfinite(tab.ks)) else 0.3))
    ax.set_xticks(range(tab.t.size), [f"{t:.3g}" for t in tab.t])
    ax.set_yticks(range(tab.level.size), [f"{g * US:.1f}" for g in tab.level_g], fontsize=6)
    ax.set_xlabel("time [s]")
    ax.set_ylabel("level g [uS]")
    ax.set_title(f"{title} (median {tab.median:.3f})")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return _save(fig, out / name)


def _md_table(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _md_programming(model, rep) -> list[str]:
    """Markdown lines of the programming-error section (empty without one)."""
    md: list[str] = []
    if model.programming is not None and rep.programming is not None:
        pi = rep.programming
        md += ["## Programming error", "",
               f"Family: **{pi.family}** (lowest AIC; "
               + ", ".join(f"{k}: {v:.1f}" for k, v in pi.aic.items()) + "). "
               f"Verify window half-width: {pi.window * US:.3f} uS "
               f"({'estimated from the largest error' if pi.window_estimated else 'given'}). "
               f"Bias smoothing: {pi.bias_choice}; spread smoothing: {pi.spread_choice} "
               "(leave-one-level-out cross-validation).", ""]
        blo = bhi = None
        if pi.boot_spread_level.shape[0] > 1:
            blo, bhi = np.quantile(pi.boot_spread_level, [0.025, 0.975], axis=0)
        rows = []
        for i, g in enumerate(pi.levels_g):
            band = (f"{blo[i] * US:.3f}-{bhi[i] * US:.3f}" if blo is not None else "")
            rows.append([f"{g * US:.3f}", int(pi.n[i]), f"{pi.bias[i] * US:.3f}",
                         f"{pi.spread[i] * US:.3f}", band,
                         f"{model.programming.spread(g) * US:.3f}"])
        md += [_md_table(["target [uS]", "devices", "bias [uS]", "std [uS]",
                          "std 95 % bootstrap [uS]", "model std [uS]"], rows), ""]
    return md


def _md_drift(model, rep) -> list[str]:
    """Markdown lines of the drift / relaxation section (empty without one)."""
    md: list[str] = []
    if model.drift_law is not None:
        md += ["## Drift / relaxation", ""]
        if rep.drift_loglik:
            md.append("Chosen by held-out likelihood (fit on half of the devices, mean "
                      "log-likelihood per read of the other half): "
                      + ", ".join(f"{k}: {v:.3f}" for k, v in rep.drift_loglik.items())
                      + f" -> **{rep.drift_choice}**.")
        else:
            md.append(f"Model: **{rep.drift_choice}** (asked for).")
        md.append("")
        if isinstance(model.drift_law, FittedPowerLaw) and rep.power_law is not None:
            pl = rep.power_law
            md += [f"t0 = {pl.t0:.4g} s ({'fitted' if pl.t0_fitted else 'given'}); smoothing: "
                   f"{pl.choices}. sigma_nu is deconvolved from the read noise "
                   "(sigma_nu^2 = var(nu_hat) - Q^2 mean(1/S)).", "",
                   structure_summary(pl), ""]
            rows = [[f"{g * US:.3f}", f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", f"{q:.4f}"]
                    for g, a, b, c, q in zip(pl.levels_g, pl.mu_nu, pl.sigma_nu,
                                             pl.sigma_nu_raw, pl.q_read, strict=True)]
            head = ["g [uS]", "mu_nu", "sigma_nu", "sigma_nu raw", "Q"]
            if pl.q_independent.size:
                rows = [r + [f"{qi:.4f}"] for r, qi in zip(rows, pl.q_independent, strict=True)]
                head.append("Q_i")
            md += [_md_table(head, rows), ""]
        elif rep.relaxation is not None:
            ri = rep.relaxation
            md += [f"tau = {ri.tau:.3g} s; u = ln(1 + t/tau). Measured up to "
                   f"{ri.t_fit_max:.3g} s; beyond it the change grows by independent normal "
                   f"increments (mean slope smoothing {ri.beta_choice}, variance slope "
                   f"{ri.gamma_choice}); table extends to {ri.t_table[-1]:.3g} s and holds "
                   "its last row after that.", ""]
            rows = [[f"{g * US:.3f}", f"{b * US:.4f}", f"{c * US**2:.4f}"]
                    for g, b, c in zip(ri.levels_g, ri.beta, ri.gamma, strict=True)]
            md += [_md_table(["level g [uS]", "beta [uS]", "gamma [uS^2]"], rows), ""]
    return md


def write_report(model, measurements, out, *, rng: np.random.Generator, ks=None,
                 force: bool = False, extra: dict | None = None) -> Path:
    """Write the report folder ``out``: PNG plots and ``report.md``.

    ``model``: a model returned by :func:`fit` (its ``report`` holds the evidence);
    ``measurements``: the table it was fitted on (for the data plots and the KS table);
    ``ks``: a precomputed :class:`KSTable` (computed here when None); ``extra``: more
    named KS tables (e.g. baselines) to list. Returns the path of ``report.md``.
    """
    from ..devices.composite import CompositeDevice
    from ..errors import ConfigError
    from ..formats import prepare_output_dir, write_text_atomic
    from . import tables
    from .goodness import ks_table, level_index

    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    out = prepare_output_dir(out, force=force, command="calibrate")
    rep = model.report
    cols = tables.columns(measurements)
    use_initial = cols["g_initial"] is not None
    pv = tables.pivot(cols, use_initial=use_initial)
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
    if ks is None and has_time:  # first: its samples are the first draws from rng
        ks = ks_table(scored, measurements, rng=rng, min_devices=min(50, max(pv.n_dev // 10, 5)))
    figs = []
    if model.programming is not None and rep.programming is not None:
        figs.append(_plot_programming(model, out))
    if has_time:
        figs.append(_plot_time(scored, pv, lev, centres, out, rng))
    p = _plot_parameters(model, out)
    if p:
        figs.append(p)
    if ks is not None and np.any(np.isfinite(ks.ks)):
        figs.append(_plot_ks(ks, out))

    md = ["# Calibration report", ""]
    prov = model.provenance
    md += [f"- conditioning: **{model.conditioning}**",
           f"- devices: {rep.n_devices}, reads: {rep.n_reads}, time points [s]: "
           f"{', '.join(f'{t:.3g}' for t in rep.time_points)}",
           f"- fitted conductance range: {model.stat_range[0] * US:.3f}-"
           f"{model.stat_range[1] * US:.3f} uS "
           "(outside it the model uses its edge statistics)"]
    if prov is not None:
        for s in prov.sources:
            md.append(f"- data: `{s['path']}` (SHA-256 `{s['sha256']}`)")
        md.append(f"- method: {prov.method}; settings: `{dict(prov.settings)}`")
    md.append("")
    for note in rep.notes:
        md += [f"> {note}", ""]
    md += _md_programming(model, rep) + _md_drift(model, rep)
    if model.read_noise is not None:
        rn = rep.read_noise
        md += ["## Read noise", "", f"Repeated-read std vs g (smoothing {rn.get('choice')}).", ""]
        rows = [[f"{g * US:.3f}", f"{s * US:.4f}", int(n)]
                for g, s, n in zip(rn["g"], rn["sigma"], rn["n"], strict=True)]
        md += [_md_table(["mean g [uS]", "read std [uS]", "reads"], rows), ""]
        if np.isfinite(model.read_noise.psd_exponent):
            md += [f"1/f exponent of the read-noise spectrum: {model.read_noise.psd_exponent:.3f}",
                   ""]
    if ks is not None and np.any(np.isfinite(ks.ks)):
        md += ["## Goodness of fit", "",
               "KS distance between the measured conductances of each (level, time point) "
               "and 20 model samples per device (devices per cell in brackets).",
               f"Median {ks.median:.3f}; worst cells: "
               + "; ".join(f"{g * US:.2f} uS at {t:.3g} s: {v:.3f} ({n})"
                           for g, t, v, n in ks.worst(3)), "", ks.to_markdown(), ""]
    for name, tab in (extra or {}).items():
        md += [f"### {name}", "", f"Median KS {tab.median:.3f}", ""]
    if rep.skipped:
        md += ["## Skipped levels (too few devices)", "",
               _md_table(["g [uS]", "devices", "part"],
                         [[f"{g * US:.3f}", n, part] for g, n, part in rep.skipped]), ""]
    md += ["## Figures", ""] + [f"![{f}]({f})" for f in figs if f] + [""]
    return write_text_atomic(out / "report.md", "\n".join(md), force=True)
