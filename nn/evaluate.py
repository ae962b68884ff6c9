"""Analog evaluation over time: a trained network programmed onto devices and read later.

Statistical mode
    Program the trained weights once through the device model (per-cell state kept:
    programmed value, drift exponent, 1/f path), read them at each time with read noise,
    and classify with the effective weights (the mapping's inverse of the read
    conductances, ``devices.mapping``; differential: ``(G+ − G−)/alpha``) (torch).
    Repeated over ``N`` independent programmings (chips); accuracy mean ± population
    std over them. With and without global drift compensation (one factor per layer from
    a calibration input, Joshi et al. 2020; see :mod:`xbarlab.nn.analog_layers`).

Circuit mode
    The same programmed chips (the first ``circuit_programmings`` of them), but each
    layer's matrix products run through crossbar tiles: conductances read at time t,
    exact IR drop for the tile's wire resistances, DAC and ADC, convolutions via im2col.
    Position- and input-dependent errors that i.i.d. weight noise misses are included.
    Slow (float64 numpy circuit solves): meant for small networks and spot checks.

Calibration uncertainty
    ``bootstrap=K`` repeats the statistical evaluation with ``K`` device models drawn from
    the calibration's bootstrap (each fitted curve replaced by one of its replicates,
    :func:`bootstrap_models`), so the spread includes the fit's uncertainty.

``evaluation.json`` (schema ``"xbarlab-evaluation/1"``)::

    {"schema": "xbarlab-evaluation/1",
     "model_dir": str, "device_model": str, "device_conditioning": "target" | "initial read",
     "weights_map_to": "targets" | "first reads",
     "times_s": [float, ...],                    # times after programming [s]
     "clean_accuracy": float,                    # digital (float) network, fraction in [0, 1]
     "n_test": int,                              # test samples (statistical mode)
     "settings": {"programmings": N, "circuit_programmings": Nc, "circuit_samples": n,
                  "tile": TileConfig.to_dict(), "mapping": WeightMapping.to_dict() | null,
                  "dac": {...} | null, "adc": {...} | null,
                  "x_max": {layer: float}, "seed": int, "bootstrap": K},
     "results": [{"time_s": float, "time": "1d", "mode": "statistical" | "circuit",
                  "compensation": "none" | "global",
                  "model_draw": "fit" | "bootstrap",
                  "accuracy_mean": float, "accuracy_std": float,   # population std
                  "n_programmings": int,   # bootstrap: one programming per model drawn
                  "n_test": int,
                  "accuracies": [float, ...],                      # one per programming
                  "drift_factors": {layer: mean factor} (global compensation only)}, ...],
     "elapsed_s": float}
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time as _time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["SCHEMA", "MODES", "COMPENSATIONS", "evaluate_over_time", "evaluate_statistical",
           "bootstrap_models",
           "run_evaluation", "plot_evaluation", "EVALUATION_NAME", "PLOT_NAME"]

SCHEMA = "xbarlab-evaluation/1"
MODES = ("statistical", "circuit")
COMPENSATIONS = ("none", "global")
EVALUATION_NAME = "evaluation.json"
PLOT_NAME = "accuracy_vs_time.png"


@torch.no_grad()
def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    hit = 0
    for i in range(0, x.shape[0], batch):
        hit += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return hit / max(x.shape[0], 1)


def bootstrap_models(device, k: int) -> list:
    """``k`` device models, each with every fitted curve replaced by its bootstrap replicate
    ``i`` (i = 0..k-1), rebuilt through the model's file tree (``to_tree``/``from_tree``).

    Works for any model whose tree stores tabulated curves as ``{"value", "bootstrap"}``
    quantities with replicates along the first axis (the calibration's layout), and for
    quantile tables ``{"quantiles" (..., P), "p" (P,), "bootstrap_mean",
    "bootstrap_std" (B, ...)}`` (a relaxation table): replicate i moves each tabulated
    distribution to the replicate's mean and standard deviation (location-scale). Raises
    ConfigError when the model carries fewer than ``k`` replicates.
    """
    from ..formats import Quantity

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"bootstrap must be an integer >= 1, got {k!r}")
    tree = device.to_tree()
    found = []

    def walk(node, i):
        if isinstance(node, dict):
            out = {key: walk(v, i) for key, v in node.items()}
            b = node.get("bootstrap")
            v = node.get("value")
            if isinstance(b, Quantity) and isinstance(v, Quantity) and np.ndim(b.value) >= 1:
                bv = np.asarray(b.value)
                if bv.ndim == np.ndim(v.value) + 1 and bv.shape[1:] == np.shape(v.value):
                    found.append(bv.shape[0])
                    if bv.shape[0] > i:
                        out["value"] = Quantity(bv[i], v.units)
            q, pr = node.get("quantiles"), node.get("p")
            bm, bs = node.get("bootstrap_mean"), node.get("bootstrap_std")
            if all(isinstance(a, Quantity) for a in (q, pr, bm, bs)):
                qv, pv = np.asarray(q.value), np.asarray(pr.value)
                bmv, bsv = np.asarray(bm.value), np.asarray(bs.value)
                if bmv.ndim == qv.ndim and bmv.shape[1:] == qv.shape[:-1] == bsv.shape[1:]:
                    found.append(bmv.shape[0])
                    if bmv.shape[0] > i:
                        # location-scale move of each tabulated distribution onto the
                        # replicate's mean and spread
                        m = np.trapezoid(qv, pv, axis=-1)
                        sd = np.sqrt(np.maximum(np.trapezoid(qv**2, pv, axis=-1) - m**2, 0))
                        k = np.where(sd > 0, bsv[i] / np.where(sd > 0, sd, 1.0), 1.0)
                        new = bmv[i][..., None] + (qv - m[..., None]) * k[..., None]
                        out["quantiles"] = Quantity(np.maximum.accumulate(new, axis=-1),
                                                    q.units)
            return out
        return node

    walk(tree, 0)
    if not found or min(found) < k:
        have = min(found) if found else 0
        raise ConfigError(f"the device model carries {have} bootstrap replicates per fitted "
                          f"curve; --bootstrap {k} needs at least {k} (fit with more, or "
                          "use a calibrated model file)")
    out = []
    for i in range(k):
        t = walk(tree, i)
        if hasattr(device, "conditioning") and "conditioning" not in t:
            t["conditioning"] = device.conditioning
        out.append(type(device).from_tree(t))
    return out


def _ideal_tile(tile):
    return dataclasses.replace(tile, r_row=0.0, r_col=0.0, r_driver=0.0, r_sense=0.0,
                               r_access=0.0)


def evaluate_over_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device,
                       times: Sequence[float], rng: np.random.Generator, *,
                       programmings: int = 10, modes: Sequence[str] = ("statistical",),
                       compensations: Sequence[str] = COMPENSATIONS, tile=None, dac=None,
                       adc=None, x_cal: torch.Tensor | None = None,
                       circuit_programmings: int = 1, circuit_samples: int | None = None,
                       bootstrap: int = 0, dtype: torch.dtype = torch.float32,
                       mapping=None, progress: bool = False) -> dict[str, Any]:
    """Accuracy of ``model`` on ``(x, y)`` at ``times`` [s] after programming onto ``device``.

    ``rng``: numpy Generator (one child per programming); ``programmings``: N chips;
    ``modes``: subset of :data:`MODES`; ``compensations``: subset of
    :data:`COMPENSATIONS`; ``tile``: :class:`~xbarlab.crossbar.tiling.TileConfig`
    (statistical mode uses its size and mapping, circuit mode also its wires); ``dac``,
    ``adc``: converters for circuit mode (None: ideal); ``x_cal``: inputs whose max |input|
    per layer sets the DAC full scale (default ``x``); ``circuit_programmings``: how many of
    the N chips also run in circuit mode; ``circuit_samples``: test samples for circuit
    mode (default all); ``bootstrap``: K models from the calibration's bootstrap
    (statistical mode); ``mapping``: a :class:`~xbarlab.devices.mapping.WeightMapping` for
    every layer (None: the tile's differential mapping; both modes use it); returns the
    dict documented in the module docstring (without the file-level fields added by
    :func:`run_evaluation`).
    """
    from ..crossbar.tiling import TileConfig
    from ..units import format_duration
    from .analog_layers import circuit_model, input_ranges, program_network, statistical_model

    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    for name, v, lo in (("programmings", programmings, 1),
                        ("circuit_programmings", circuit_programmings, 0),
                        ("bootstrap", bootstrap, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError(f"modes {list(modes)!r} must be a non-empty subset of {MODES}")
    bad = [c for c in compensations if c not in COMPENSATIONS]
    if bad or not compensations:
        raise ConfigError(f"compensations {list(compensations)!r} must be a non-empty subset "
                          f"of {COMPENSATIONS}")
    ts = np.asarray(times, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or not np.all(np.isfinite(ts)) or np.any(ts < 0):
        raise ConfigError(f"times must be a non-empty list of finite times >= 0 s, got {times}")
    vt = getattr(device, "valid_times", None)
    if vt is not None and (ts.min() < vt[0] or ts.max() > vt[1]):
        b = ts.min() if ts.min() < vt[0] else ts.max()
        raise ConfigError(f"{getattr(device, 'name', '') or 'device model'}: time {b:g} s is "
                          f"outside the model's valid range [{vt[0]:g}, {vt[1]:g}] s")
    tile = TileConfig() if tile is None else tile
    circuit = "circuit" in modes
    n_circ = min(circuit_programmings, programmings) if circuit else 0
    if circuit and n_circ == 0:
        raise ConfigError("circuit mode needs circuit_programmings >= 1")
    model = model.eval()
    x_max = input_ranges(model, x if x_cal is None else x_cal)
    xc, yc = (x, y) if circuit_samples is None else (x[:circuit_samples], y[:circuit_samples])
    xs = x.to(dtype)
    xcd = xc.to(torch.float64)

    devices = [("fit", device)]
    if bootstrap:
        devices += [("bootstrap", m) for m in bootstrap_models(device, bootstrap)]

    acc: dict[tuple, list[float]] = {}
    factors: dict[tuple, dict[str, list[float]]] = {}
    total = sum(programmings if d == "fit" else 1 for d, _ in devices) * ts.size
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="evaluate", unit="read")
    kids = rng.spawn(programmings * len(devices))
    try:
        for di, (draw, dev) in enumerate(devices):
            n_prog = programmings if draw == "fit" else 1
            for n in range(n_prog):
                r = kids[di * programmings + n]
                use_circ = draw == "fit" and n < n_circ
                layers = program_network(model, dev, r, tile=tile if use_circ else
                                         _ideal_tile(tile), dac=dac if use_circ else None,
                                         adc=adc if use_circ else None, x_max=x_max,
                                         t=float(ts[0]), mapping=mapping)
                for t in ts:
                    for pl in layers:
                        pl.read(float(t), r)
                    for comp in compensations:
                        f = None
                        if comp == "global":
                            f = {pl.name: pl.drift_factor(circuit=False) for pl in layers}
                            key = ("statistical", comp, draw, float(t))
                            for k2, v in f.items():
                                factors.setdefault(key, {}).setdefault(k2, []).append(v)
                        net = statistical_model(model, layers, factors=f, dtype=dtype)
                        acc.setdefault(("statistical", comp, draw, float(t)), []).append(
                            _accuracy(net, xs, y))
                        if use_circ:
                            fc = None
                            if comp == "global":
                                fc = {pl.name: pl.drift_factor(circuit=True) for pl in layers}
                                key = ("circuit", comp, draw, float(t))
                                for k2, v in fc.items():
                                    factors.setdefault(key, {}).setdefault(k2, []).append(v)
                            cnet = circuit_model(model, layers, factors=fc, rng=r)
                            acc.setdefault(("circuit", comp, draw, float(t)), []).append(
                                _accuracy(cnet, xcd, yc, batch=256))
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    results = []
    modes_order = [m for m in MODES if m in modes]
    for draw in ("fit", "bootstrap") if bootstrap else ("fit",):
        for mode in modes_order:
            if draw == "bootstrap" and mode == "circuit":
                continue
            for comp in compensations:
                for t in ts:
                    key = (mode, comp, draw, float(t))
                    a = np.asarray(acc[key])
                    e = {"time_s": float(t), "time": format_duration(float(t)), "mode": mode,
                         "compensation": comp, "model_draw": draw,
                         "accuracy_mean": float(a.mean()), "accuracy_std": float(a.std()),
                         "n_programmings": int(a.size),
                         "n_test": int(xc.shape[0] if mode == "circuit" else x.shape[0]),
                         "accuracies": [float(v) for v in a]}
                    if key in factors:
                        e["drift_factors"] = {k: float(np.mean(v)) for k, v in
                                              factors[key].items()}
                    results.append(e)
    cond = str(getattr(device, "conditioning", "target"))
    return {
        "schema": SCHEMA,
        "device_conditioning": cond,
        "weights_map_to": "first reads" if cond == "initial read" else "targets",
        "times_s": [float(t) for t in ts],
        "clean_accuracy": _accuracy(copy.deepcopy(model).to(dtype), xs, y),
        "n_test": int(x.shape[0]),
        "settings": {"programmings": programmings, "circuit_programmings": n_circ,
                     "circuit_samples": int(xc.shape[0]) if circuit else None,
                     "tile": tile.to_dict(),
                     "mapping": None if mapping is None else mapping.to_dict(),
                     "dac": None if dac is None else dac.to_dict(),
                     "adc": None if adc is None else adc.to_dict(), "x_max": x_max,
                     "bootstrap": bootstrap},
        "results": results,
    }


def evaluate_statistical(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, device,
                         times: Sequence[float], rng: np.random.Generator,
                         programmings: int = 10, compensation: Sequence[str] | str = COMPENSATIONS,
                         g_min: float | None = None, g_max: float | None = None,
                         tile_rows: int = 256, tile_cols: int = 256, bootstrap: int = 0,
                         progress: bool = False) -> dict[str, Any]:
    """Statistical mode only (see :func:`evaluate_over_time`), mapping given by
    ``g_min``/``g_max`` [S] on ``tile_rows`` × ``tile_cols`` tiles."""
    from ..crossbar.tiling import TileConfig

    comps = [compensation] if isinstance(compensation, str) else list(compensation)
    tile = TileConfig(rows=tile_rows, cols=tile_cols, g_min=g_min, g_max=g_max)
    return evaluate_over_time(model, x, y, device, times, rng, programmings=programmings,
                              modes=("statistical",), compensations=comps, tile=tile,
                              bootstrap=bootstrap, progress=progress)


def plot_evaluation(ev: dict[str, Any], path, *, title: str = "") -> Path:
    """Accuracy vs time after programming (log time axis), one line per mode and
    compensation, error bars = std over programmings; the digital accuracy dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..formats import atomic_output

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    groups: dict[tuple, list] = {}
    for e in ev["results"]:
        groups.setdefault((e["mode"], e["compensation"], e["model_draw"]), []).append(e)
    styles = {"none": "-", "global": "--"}
    for (mode, comp, draw), es in groups.items():
        es = sorted(es, key=lambda e: e["time_s"])
        t = [max(e["time_s"], 1e-3) for e in es]
        label = f"{mode}, {'drift comp.' if comp == 'global' else 'no comp.'}"
        if draw == "bootstrap":
            label += ", calibration bootstrap"
        ax.errorbar(t, [e["accuracy_mean"] for e in es], yerr=[e["accuracy_std"] for e in es],
                    ls=styles.get(comp, "-"), marker="o" if mode == "statistical" else "s",
                    capsize=3, label=label)
    ax.axhline(ev["clean_accuracy"], color="k", ls=":", lw=1, label="digital")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming [s]")
    ax.set_ylabel("test accuracy")
    lo = min([e["accuracy_mean"] - e["accuracy_std"] for e in ev["results"]]
             + [ev["clean_accuracy"]])
    ax.set_ylim(max(0.0, lo - 0.05), 1.01)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(Path(path), force=True, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


def run_evaluation(*, model_dir, device_model: str, times: str, out, programmings: int = 10,
                   modes: str = "statistical", compensation: str = "none,global",
                   tile_rows: int = 256, tile_cols: int = 256, r_wire: float = 0.0,
                   g_min: float | None = None, g_max: float | None = None,
                   dac_bits: int | None = None, adc_bits: int | None = None,
                   circuit_programmings: int = 1, circuit_samples: int | None = None,
                   bootstrap: int = 0, seed: int = 0, force: bool = False,
                   progress: bool = True, command: str = "evaluate",
                   mapping=None) -> dict[str, Any]:
    """Everything ``xbarlab evaluate`` does; returns the dict written to ``OUT/evaluation.json``.

    ``mapping``: a :class:`~xbarlab.devices.mapping.WeightMapping` for every layer (then
    ``g_min``/``g_max`` come from it and must not be given), or None for the tile's
    differential mapping on ``g_min..g_max``."""
    from ..crossbar.converters import ADC, DAC
    from ..crossbar.tiling import TileConfig
    from ..formats import prepare_output_dir, write_text_atomic
    from ..units import parse_durations, parse_list
    from .data import load_dataset
    from .export import load_device_model
    from .train import load_trained

    ts = parse_durations(times, what="--times")
    mode_list = parse_list(modes, what="--modes")
    comp_list = parse_list(compensation, what="--compensation")
    if not (math.isfinite(r_wire) and r_wire >= 0):
        raise ConfigError(f"--r-wire must be a finite resistance >= 0 Ohm, got {r_wire!r}")
    if mapping is not None:
        from ..devices.mapping import WeightMapping

        if not isinstance(mapping, WeightMapping):
            raise ConfigError(f"mapping must be a devices.mapping.WeightMapping, got "
                              f"{type(mapping).__name__}")
        if g_min is not None or g_max is not None:
            raise ConfigError("give g_min/g_max either in mapping or as --g-min/--g-max, "
                              "not both")
        g_min, g_max = mapping.g_min, mapping.g_max
    net, blob = load_trained(model_dir)
    cfg = blob["config"]
    device = load_device_model(device_model)
    lo, hi = (float(v) for v in getattr(device, "g_range", (0.0, math.inf)))
    fit = getattr(device, "g_fit", None)  # fitted models: the range the data covered
    if fit is not None and np.size(fit) == 2 and np.all(np.isfinite(fit)):
        lo, hi = max(lo, float(fit[0])), min(hi, float(fit[1]))
    gmin = lo if g_min is None else g_min
    gmax = hi if g_max is None else g_max
    if not math.isfinite(gmax):
        raise ConfigError(f"{device_model}: the model's range has no finite upper bound; give "
                          "--g-max [S]")
    if gmin < lo * (1 - 1e-12) or gmax > hi * (1 + 1e-12):
        raise ConfigError(f"{device_model}: the device model's range [{lo:.6g}, {hi:.6g}] S does "
                          f"not cover the mapping [{gmin:.6g}, {gmax:.6g}] S (--g-min/--g-max)")
    tile = TileConfig(rows=tile_rows, cols=tile_cols, g_min=None if mapping else gmin,
                      g_max=None if mapping else gmax, r_row=r_wire, r_col=r_wire)
    dac = None if dac_bits is None else DAC(bits=dac_bits)
    adc = None if adc_bits is None else ADC(bits=adc_bits, range_mode="max-possible")
    data = load_dataset(cfg["dataset"])
    out = Path(out)
    if (out / EVALUATION_NAME).exists() and not force:
        from ..errors import OutputExistsError

        raise OutputExistsError(f"{out / EVALUATION_NAME} exists; pass --force to replace it")
    prepare_output_dir(out, force=force, command=command)
    t0 = _time.perf_counter()
    ev = evaluate_over_time(net, data.x_test, data.y_test, device, ts,
                            np.random.default_rng(seed), programmings=programmings,
                            modes=mode_list, compensations=comp_list, tile=tile, dac=dac,
                            adc=adc, x_cal=data.x_train, circuit_programmings=circuit_programmings,
                            circuit_samples=circuit_samples, bootstrap=bootstrap,
                            mapping=mapping, progress=progress)
    ev = {"schema": ev.pop("schema"), "model_dir": str(model_dir), "device_model": device_model,
          **ev, "elapsed_s": _time.perf_counter() - t0}
    ev["settings"]["seed"] = seed
    write_text_atomic(out / EVALUATION_NAME, json.dumps(ev, indent=2) + "\n", force=True)
    plot_evaluation(ev, out / PLOT_NAME, title=f"{cfg['dataset']} {cfg['model']} on "
                    f"{device_model}")
    return ev
