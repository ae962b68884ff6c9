"""The stage bodies of ``xbarlab run``, in execution order (:data:`STAGES`).

Each stage reads its config sections and the folders of the finished stages it needs and
writes its files into ``ctx.out``; the runner (:mod:`.runner`) keys, caches and publishes
them. Random streams come from the run seed and stable names (:func:`.context.stage_seed`).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..units import format_duration
from .context import Stage, StageContext, plain, read_json, write_json
from .report import write_run_report

__all__ = ["STAGES", "BY_NAME", "check_data_files"]


# -- load -------------------------------------------------------------------------------------


def _stage_load(ctx: StageContext) -> dict:
    from ..formats import Provenance, read_measurements, sha256_file, write_measurements

    d = ctx.config["data"]
    files = check_data_files(ctx.config)
    m = read_measurements(files, columns=d["columns"] or None, units=d["units"] or None,
                          layout=d["layout"], sample_rate=d["sample_rate"],
                          samples_from=d["samples_from"], strict=d["strict"],
                          same_devices=d["same_devices"], duplicates=d["duplicates"])
    prov = Provenance.for_files("xbarlab run: load", files, settings=plain(d))
    write_measurements(ctx.out / "measurements.npz", m, provenance=prov)
    s = m.summary()
    s["sha256"] = {str(p): sha256_file(p) for p in files}
    write_json(ctx.out / "summary.json", s)
    return {"reads": m.n_reads, "devices": m.n_devices,
            "line": f"{m.n_reads:,} reads of {m.n_devices:,} devices from {len(files)} file(s)"}


def check_data_files(config: dict) -> list[Path]:
    """The measurement files of ``config["data"]["files"]`` as paths, each checked to be a
    regular file (a missing one, a folder or a FIFO refused naming it, before any work).

    Raises
    ------
    ConfigError
        Naming the field and the path that is not a readable file.
    """
    from ..formats import check_input_file

    files = [Path(p) for p in config["data"]["files"]]
    for p in files:
        if not p.exists():
            raise ConfigError(f"[data] files: {p} does not exist")
        check_input_file(p, what="[data] files:")
    return files


def _measurements(ctx: StageContext):
    from ..formats import read_measurements

    return read_measurements(ctx.upstream["load"] / "measurements.npz")


# -- calibrate --------------------------------------------------------------------------------


def _stage_calibrate(ctx: StageContext) -> dict:
    from ..calibration import fit, ks_table, write_report
    c = ctx.config["calibrate"]
    m = _measurements(ctx)
    sources = read_json(ctx.upstream["load"] / "summary.json").get("sources", [])
    steps = ["pivot", "drift / relaxation", "programming error", "read noise"]
    bar = ctx.progress(total=len(steps), desc="calibrate")

    def step(name):
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        model = fit(m, conditioning=None if c["conditioning"] == "auto" else c["conditioning"],
                    drift=c["drift"], family=c["family"], window=c["window"],
                    min_devices=c["min_devices"], n_boot=c["n_boot"], rng=ctx.rng("fit"),
                    sources=sources, progress=step)
    finally:
        bar.close()
    model.to_file(ctx.out / "device-model.h5", provenance=getattr(model, "provenance", None))
    rep = getattr(model, "report", None)
    summary: dict[str, Any] = {"model": repr(model), "conditioning": model.conditioning}
    summary["model_blocks"] = {  # the report names them in words
        part: type(block).__name__ if block is not None else None
        for part, block in (("programming", getattr(model, "programming", None)),
                            ("drift", getattr(model, "drift_law", None)),
                            ("read noise", getattr(model, "read_noise", None)))}
    if rep is not None:
        summary.update(drift_choice=rep.drift_choice, drift_loglik=rep.drift_loglik,
                       skipped=[list(map(float, s[:2])) + [s[2]] for s in rep.skipped],
                       notes=list(rep.notes), n_devices=rep.n_devices, n_reads=rep.n_reads)
    # goodness of fit: KS distance per (level, time point > 0), 20 samples per device
    kt = ks_table(model, m, rng=ctx.rng("ks"),
                  min_devices=min(50, c["min_devices"]))
    summary["ks"] = {"values": np.asarray(kt.ks, float).tolist(),
                     "level_g": np.asarray(kt.level_g, float).tolist(),
                     "times": np.asarray(kt.t, float).tolist(),
                     "devices": np.asarray(kt.n).tolist(),
                     "cells": int(np.isfinite(kt.ks).sum()),
                     "median": float(kt.median) if np.isfinite(kt.median) else None,
                     "max": (float(np.nanmax(kt.ks)) if np.isfinite(kt.ks).any() else None)}
    # the calibration's own report (plots, report.md): an extra, so a failure there is
    # recorded (with the error) in this run's report instead of discarding the fit
    report_dir = ctx.out / "report"
    try:
        write_report(model, m, report_dir, ks=kt,
                     rng=ctx.rng("report"))
        summary["report"] = "report/report.md"
        if (report_dir / "goodness.json").is_file():  # verdict, floor and baselines per time
            summary["goodness"] = read_json(report_dir / "goodness.json")
    except Exception as exc:  # noqa: BLE001 - any failure of the optional report
        shutil.rmtree(report_dir, ignore_errors=True)
        summary["report_error"] = f"{type(exc).__name__}: {exc}"
    summary["stats"] = _fitted_stats(model, m, ctx.rng("stats"))
    g_lo, g_hi = _default_mapping(m)
    summary["mapping_default"] = {"g_min": g_lo, "g_max": g_hi}
    write_json(ctx.out / "summary.json", summary)
    ks = summary.get("ks", {})
    line = f"{summary.get('drift_choice') or 'no'} drift"
    if ks.get("median") is not None:
        line += f", median KS {ks['median']:.3f} over {ks['cells']} (level, time) cells"
    return {"line": line}


def _fitted_stats(model, m, rng: np.random.Generator, n_model: int = 4000) -> list[dict]:
    """Measured vs model mean and standard deviation of g per (target, time point) [S].

    Target-conditioned data only (each target sampled ``n_model`` times at the time
    points); at most 16 targets and 12 time points (the first ones)."""
    if model.conditioning != "target" or m.g_target is None:
        return []
    tcol = m.time_point if m.time_point is not None else m.time
    targets = np.unique(m.g_target)[:16]
    times = np.unique(tcol)[:12] if tcol is not None else np.array([0.0])
    rows = []
    for gt in targets:
        try:
            sim = np.asarray(model.sample(np.full(n_model, gt), times, rng), dtype=float)
        except ConfigError:  # a time or target the model does not cover
            continue
        sim = sim.reshape(times.size, n_model)
        for k, t in enumerate(times):
            sel = m.g_target == gt
            if tcol is not None:
                sel &= tcol == t
            g = m.g[sel]
            if g.size < 2:
                continue
            rows.append({"g_target": float(gt), "t": float(t), "n": int(g.size),
                         "meas_mean": float(g.mean()), "meas_std": float(g.std(ddof=1)),
                         "model_mean": float(sim[k].mean()),
                         "model_std": float(sim[k].std(ddof=1))})
    return rows


def _default_mapping(m) -> tuple[float, float]:
    if m.g_target is not None and m.g_target.size:
        return float(max(m.g_target.min(), 0.0)), float(m.g_target.max())
    g = m.g[np.isfinite(m.g)]
    return 0.0, float(np.percentile(g, 99.0)) if g.size else 0.0


def _mapping(ctx: StageContext, device):
    """The run's weight mapping (``devices.mapping.mapping_for``): one differential pair per
    weight on the config's g_min/g_max [S], else the data's programming targets; beyond the
    fitted model's range its edge statistics are used. The crossbar study, the noise export
    and the evaluation all receive it."""
    from ..devices.mapping import mapping_for

    s = read_json(ctx.upstream["calibrate"] / "summary.json")["mapping_default"]
    mp = ctx.config["mapping"]
    g_min = mp["g_min"] if mp["g_min"] is not None else s["g_min"]
    g_max = mp["g_max"] if mp["g_max"] is not None else s["g_max"]
    if not g_max > g_min:
        raise ConfigError(f"[mapping] g_max ({g_max:g} S) must exceed g_min ({g_min:g} S)")
    return mapping_for(device, g_min=float(g_min), g_max=float(g_max), allow_extrapolation=True)


#: Folder (inside the noise, train-hasgd and evaluate stages) of each weight-mapping range:
#: the main range writes into the stage folder itself, ``[mapping] compare`` into a subfolder.
RANGE_FOLDERS = {"main": ".", "compare": "compare"}


def _ranges(ctx: StageContext) -> list[str]:
    """The weight-mapping ranges the run evaluates: ``["main"]``, plus ``"compare"`` where
    ``[mapping] compare`` is set."""
    return ["main"] + (["compare"] if ctx.config["mapping"]["compare"] else [])


def _range_mapping(ctx: StageContext, device, which: str):
    """The :class:`~xbarlab.devices.mapping.WeightMapping` of range ``which`` (see
    :func:`_ranges`): the main one of :func:`_mapping`, or ``[mapping] compare``'s
    [g_min, g_max] [S] built by the same ``mapping_for``."""
    from ..devices.mapping import mapping_for

    if which == "main":
        return _mapping(ctx, device)
    g_min, g_max = ctx.config["mapping"]["compare"]
    return mapping_for(device, g_min=float(g_min), g_max=float(g_max), allow_extrapolation=True)


def _range_label(mapping) -> str:
    """A range's name in reports, e.g. "0.3125–25 µS"."""
    return f"{mapping.g_min * 1e6:.4g}–{mapping.g_max * 1e6:.4g} µS"


def _device(ctx: StageContext):
    from .. import devices

    return devices.load(ctx.upstream["calibrate"] / "device-model.h5")


# -- crossbar ---------------------------------------------------------------------------------


def _stage_crossbar(ctx: StageContext) -> dict:
    from ..crossbar.study import StudyConfig, format_table, run_study, write_study

    c = ctx.config["crossbar"]
    dev = _device(ctx)
    mapping = _mapping(ctx, dev)
    seed = int(ctx.seed_sequence("study").generate_state(1, np.uint32)[0])
    cfg = StudyConfig(sizes=tuple(c["sizes"]), r_wire=tuple(c["r_wire"]), vectors=c["vectors"],
                      t=c["time"], v_max=c["v_max"], adc_bits=c["adc_bits"], seed=seed)
    rows = run_study(dev, cfg, mapping=mapping, allow_extrapolation=True,
                     progress=ctx.show_progress)
    write_study(rows, ctx.out, title=f"fitted device at t = {format_duration(c['time'])}, "
                f"G {mapping.g_min * 1e6:.3g}-{mapping.g_max * 1e6:.3g} µS")
    write_json(ctx.out / "summary.json", {"rows": rows, "table_md": format_table(rows),
                                           "g_min": mapping.g_min, "g_max": mapping.g_max,
                                           "mapping": mapping.to_dict()})
    worst = max(rows, key=lambda r: r["ir_drop"])
    return {"line": f"{len(rows)} solves; IR drop up to {100 * worst['ir_drop']:.3g} % "
                    f"(n = {worst['n']}, r = {worst['r_wire_ohm']:g} Ω)"}


# -- noise ------------------------------------------------------------------------------------


def _stage_noise(ctx: StageContext) -> dict:
    c = ctx.config["noise"]
    dev = _device(ctx)
    lines = []
    for which in _ranges(ctx):
        out = ctx.out / RANGE_FOLDERS[which]
        out.mkdir(parents=True, exist_ok=True)
        # the main range keeps the stream it always had; the compared one gets its own
        rng = ctx.rng("tables" if which == "main" else f"tables {which}")
        lines.append(_noise_tables(c, dev, _range_mapping(ctx, dev, which), rng, out))
    return {"line": "; ".join(lines)}


def _noise_tables(c: dict, dev, mapping, rng: np.random.Generator, out: Path) -> str:
    """Export the weight-noise tables of ``mapping`` into ``out`` (noise.h5, summary.json);
    return the stage line's part."""
    from ..formats import Provenance
    from ..nn.export import export_noise

    g_min, g_max = mapping.g_min, mapping.g_max
    w_grid = np.linspace(-1.0, 1.0, c["grid"])
    tables = export_noise(dev, c["times"], rng, mapping=mapping,
                          w_grid=w_grid, n_samples=c["samples"],
                          compensation=c["compensation"], allow_extrapolation=True,
                          device_name="calibrated (xbarlab run)")
    prov = Provenance(method="nn.export.export_noise", settings=plain(c) | {
        "g_min_S": g_min, "g_max_S": g_max, "mapping": mapping.to_dict()})
    tables.write(out / "noise.h5", provenance=prov)
    # spread and shift at the largest weight, per time (for the report)
    top = int(np.argmax(tables.w_grid))
    per_t = [{"t": float(t), "mean_at_wmax": float(tables.mean[i, top]),
              "std_mean": float(np.mean(tables.std[i])),
              "drift_factor": float(tables.drift_factor[i])}
             for i, t in enumerate(tables.times)]
    write_json(out / "summary.json", {
        "times": [float(t) for t in tables.times], "per_time": per_t, "g_min": g_min,
        "g_max": g_max, "mapping": mapping.to_dict(), "weights_map_to": tables.weights_map_to,
        "w_grid": tables.w_grid.tolist(), "std": tables.std.tolist(),
        "mean": tables.mean.tolist()})
    sd = ", ".join(f"{format_duration(p['t'])}: σ {p['std_mean']:.3f}" for p in per_t)
    return f"{_range_label(mapping)}: Δw/max|W| tables at {len(per_t)} times ({sd})"


# -- training ---------------------------------------------------------------------------------


def _seed_folder(k: int) -> str:
    """Folder of training seed ``k`` inside a range's folder: seed 0 writes into the range's
    folder itself, seed k >= 1 into ``seed-k``."""
    return "." if k == 0 else f"seed-{k}"


def _train(ctx: StageContext, *, noise_file: Path | None, out: Path, k: int = 0) -> str:
    """Train one network into ``out``: plain SGD (``noise_file`` None) or HA-SGD against the
    noise tables of ``noise_file``, from the streams of training seed ``k``; return the stage
    line's part."""
    from ..nn import train as T
    from ..nn.data import load_dataset, model_config

    c = ctx.config["train"]
    hasgd = noise_file is not None
    noise = _noise_model(ctx, noise_file) if hasgd else None
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(c["dataset"])
    if c["subset"]:
        import dataclasses

        data = dataclasses.replace(data, x_train=data.x_train[:c["subset"]],
                                   y_train=data.y_train[:c["subset"]])
    cfg = model_config(c["model"], data)
    # both trainings draw from the same "train" streams: the same initial weights and
    # minibatch order, so SGD and HA-SGD differ only by the training noise
    # seed k >= 1 draws from its own named stream; seed 0 keeps the stream it always had
    seed = int(ctx.seed_sequence("network" if k == 0 else f"network {k}",
                                 stage="train").generate_state(1, np.uint32)[0])
    bar = ctx.progress(total=c["epochs"], desc=ctx.name, unit="epoch")

    def cb(epoch, loss, _model):
        bar.set_postfix_str(f"loss {loss:.4f}")
        bar.update(1)

    train_info = {"method": "HA-SGD" if hasgd else "SGD", "samples": c["samples"] if hasgd else 0,
                  "epochs": c["epochs"], "seed": ctx.seed, "train_seed": seed,
                  "dataset": c["dataset"], "model": c["model"],
                  "antithetic": bool(c["antithetic"]) if hasgd else False,
                  "train_noise": (noise.to_dict() if noise is not None else {"sigma": 0.0}),
                  "train_time": c["train_time"] if hasgd else None}
    scaling = {}
    if hasgd and c["noise_scaling"] == "tile":  # the evaluation's tile, the file's mapping
        from ..crossbar.tiling import TileConfig

        scaling = {"noise_scaling": "tile", "noise_tile": TileConfig(rows=256, cols=256)}
        train_info["noise_scaling"] = "tile"
    try:
        res = T.train(data, cfg, noise=noise, samples=c["samples"] if hasgd else 0,
                      epochs=c["epochs"], seed=seed,
                      antithetic=c["antithetic"] if hasgd else False, callback=cb,
                      out=out, info=train_info, **scaling)
    finally:
        bar.close()
    history, secs, clean = res.history, res.train_time_s, res.clean_accuracy
    metrics = {"clean_accuracy": clean, "history": history, "train_time_s": secs,
               "model_config": cfg, **train_info,
               "n_train": int(data.x_train.shape[0]), "n_test": int(data.x_test.shape[0])}
    write_json(out / T.METRICS_NAME, metrics)
    ep = f"{c['epochs']} epoch{'s' if c['epochs'] != 1 else ''}"
    return (f"{train_info['method']} {c['dataset']}/{c['model']}, {ep}: "
            f"clean accuracy {clean:.4f} ({secs:.1f} s)")


@contextlib.contextmanager
def _torch_state(ctx: StageContext):
    """Run with the config's torch thread count and torch's deterministic algorithms, both
    restored afterwards. Small networks on a busy CPU train many times faster on one
    thread than on oversubscribed ones."""
    import torch

    from ..nn.train import deterministic_algorithms

    n = int(ctx.config.get("threads", 0))
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        with deterministic_algorithms():
            yield
    finally:
        torch.set_num_threads(before)


def _noise_model(ctx: StageContext, path: Path):
    """The torch-side noise of the exported file ``path``, at ``train_time`` or the mixture
    over its times."""
    from ..nn.noise_file import load_noise
    from ..units import parse_duration

    c = ctx.config["train"]
    t = (None if c["train_time"] == "all"
         else parse_duration(c["train_time"], what="[train] train_time"))
    return load_noise(path, time=t)


def _stage_train_sgd(ctx: StageContext) -> dict:
    """One plain-SGD network per training seed."""
    with _torch_state(ctx):
        lines = [_train(ctx, noise_file=None, out=ctx.out / _seed_folder(k), k=k)
                 for k in range(ctx.config["train"]["seeds"])]
    return {"line": lines[0] + (f" (+ {len(lines) - 1} more seeds)" if len(lines) > 1 else "")}


def _stage_train_hasgd(ctx: StageContext) -> dict:
    """One HA-SGD network per weight-mapping range and training seed, each against that
    range's noise."""
    lines = []
    with _torch_state(ctx):
        for which in _ranges(ctx):
            sub = RANGE_FOLDERS[which]
            for k in range(ctx.config["train"]["seeds"]):
                line = _train(ctx, noise_file=ctx.upstream["noise"] / sub / "noise.h5",
                              out=ctx.out / sub / _seed_folder(k), k=k)
                if k == 0:
                    lines.append(line if which == "main" else f"{which} range: {line}")
    n = ctx.config["train"]["seeds"]
    return {"line": "; ".join(lines) + (f" (+ {n - 1} more seeds each)" if n > 1 else "")}


# -- evaluate ---------------------------------------------------------------------------------


def _stage_evaluate(ctx: StageContext) -> dict:
    c = ctx.config["evaluate"]
    dev = _device(ctx)
    rows, raw, ranges, gaps = [], {}, [], []
    with _torch_state(ctx):
        for which in _ranges(ctx):
            mapping = _range_mapping(ctx, dev, which)
            label = _range_label(mapping)
            ranges.append({"range": which, "label": label, "g_min": mapping.g_min,
                           "g_max": mapping.g_max, "mapping": mapping.to_dict()})
            # one seed for every network and range: the same chips (common random numbers)
            # where shapes agree
            per_seed = [_evaluate_range(ctx, c, dev, mapping, which, k)
                        for k in range(ctx.config["train"]["seeds"])]
            if len(per_seed) > 1:
                gaps += _seed_gaps(per_seed, which, label)
            for method, ev in per_seed[0]:
                raw.setdefault(which, {})[method] = ev
                for r in ev["results"]:
                    rows.append({"range": which, "range_label": label, "method": method,
                                 "t": r["time_s"], "compensation": r["compensation"],
                                 "model_draw": r.get("model_draw", "fit"),
                                 "accuracy_mean": r["accuracy_mean"],
                                 "accuracy_std": r["accuracy_std"],
                                 "accuracy_ci95": r["accuracy_ci95"],
                                 "n_programmings": r["n_programmings"]})
    main = ranges[0]
    write_json(ctx.out / "evaluation.json", {"rows": rows, "g_min": main["g_min"],
                                              "g_max": main["g_max"],
                                              "mapping": main["mapping"], "ranges": ranges,
                                              "seed_gaps": gaps, "raw": raw})
    last = max(c["times"])
    parts = [f"{r['range_label']} {r['method']}/{r['compensation']}: {r['accuracy_mean']:.3f}"
             for r in rows if r["t"] == last and r["model_draw"] == "fit"]
    return {"line": f"accuracy at {format_duration(last)}: " + ", ".join(parts)}


def _seed_gaps(per_seed: list, which: str, label: str) -> list[dict]:
    """HA-SGD − SGD accuracy gap per (compensation, time) over training seeds: each seed's
    gap of the means over programmings, and their mean with its 95 % t-interval."""
    from ..nn.evaluate import t_interval

    def means(ev_pair):
        out = {}
        for method, ev in ev_pair:
            for r in ev["results"]:
                if r.get("model_draw", "fit") == "fit":
                    out[(method, r["compensation"], r["time_s"])] = r["accuracy_mean"]
        return out

    seeds = [means(p) for p in per_seed]
    rows = []
    for (method, comp, t) in seeds[0]:
        if method != "SGD":
            continue
        g = [m[("HA-SGD", comp, t)] - m[("SGD", comp, t)] for m in seeds]
        mean, lo, hi = t_interval(g)
        rows.append({"range": which, "range_label": label, "compensation": comp, "t": t,
                     "gaps": g, "gap_mean": mean, "gap_ci95": [lo, hi],
                     "n_seeds": len(g)})
    return rows


def _evaluate_range(ctx, c, dev, mapping, which, k: int = 0):
    """``(method, evaluation)`` of both networks of training seed ``k`` read on
    ``mapping``'s range ``which``."""
    from ..crossbar.tiling import TileConfig
    from ..nn.data import load_dataset
    from ..nn.evaluate import EvaluationSettings, evaluate
    from ..nn.train import load_trained

    comp = c["compensation"]
    settings = EvaluationSettings(
        times=tuple(c["times"]), programmings=c["programmings"], modes=("statistical",),
        compensations=(comp,) if isinstance(comp, str) else tuple(comp),
        tile=TileConfig(rows=256, cols=256), mapping=mapping, allow_extrapolation=True,
        bootstrap=c["bootstrap"])
    data = None
    out = []
    for method, up in (("SGD", ctx.upstream["train-sgd"] / _seed_folder(k)),
                       ("HA-SGD", ctx.upstream["train-hasgd"] / RANGE_FOLDERS[which]
                        / _seed_folder(k))):
        net, blob = load_trained(up)
        if data is None:
            data = load_dataset(blob["train"]["dataset"])
        ev = evaluate(net, data.x_test, data.y_test, dev, settings,
                      np.random.default_rng(ctx.seed_sequence("chips")),
                      progress=ctx.show_progress)
        out.append((method, ev))
    return out


# -- report -----------------------------------------------------------------------------------


def _stage_report(ctx: StageContext) -> dict:
    n_plots = write_run_report(ctx)
    return {"line": f"report.md, report.html and {n_plots} plots"}


#: The stages in execution order.
STAGES: tuple[Stage, ...] = (
    Stage("load", "load measurements", ("data",), (), _stage_load, random=False),
    Stage("calibrate", "calibrate device model", ("calibrate",), ("load",), _stage_calibrate),
    Stage("crossbar", "crossbar study (IR drop, ADC)", ("mapping", "crossbar"), ("calibrate",),
          _stage_crossbar, ignore=("mapping.compare",)),
    Stage("noise", "export weight-domain noise", ("mapping", "noise"), ("calibrate",),
          _stage_noise),
    Stage("train-sgd", "train plain SGD baseline", ("train",), (), _stage_train_sgd,
          ignore=("train.samples", "train.antithetic", "train.train_time")),
    Stage("train-hasgd", "train HA-SGD against the noise", ("train",), ("noise",),
          _stage_train_hasgd),
    Stage("evaluate", "analog evaluation over time", ("mapping", "evaluate"),
          ("calibrate", "train-sgd", "train-hasgd"), _stage_evaluate),
    Stage("report", "report", ("report",),
          ("load", "calibrate", "crossbar", "noise", "train-sgd", "train-hasgd", "evaluate"),
          _stage_report, random=False),
)
#: Stage name -> stage.
BY_NAME = {s.name: s for s in STAGES}
