"""Analog evaluation over time: a trained network programmed onto devices and read later.

Statistical mode
    Program the trained weights once through the device model (per-cell state kept:
    programmed value, drift exponent, 1/f path), read them at each time with read noise,
    and classify with the effective weights (the mapping's inverse of the read
    conductances, ``devices.mapping``; differential: ``(G+ − G−)/alpha``) (torch).
    Repeated over ``N`` independent programmings (chips) of one trained network; accuracy
    mean, population std and 95 % t-interval of the mean over them (:func:`t_interval`).
    Drift compensation (Joshi et al. 2020; see :mod:`xbarlab.nn.analog_layers`): none,
    global (one factor per layer) or column (one factor per output column of a layer),
    measured at every read from a calibration input (every input of a layer at its
    ``x_max``) against a selectable reference: the ideal product ``W x_cal + b`` or the
    chip's first read (the read at the first of ``times``, taken right after programming).
    The factors multiply the layer's outputs digitally.

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
                  "tile": TileConfig.to_dict(), "mapping": WeightMapping.to_dict(),
                  "dac": {...} | null, "adc": {...} | null,
                  "x_max": {layer: float}, "seed": int, "bootstrap": K,
                  "compensation_reference": "ideal" | "first-read"},
     "results": [{"time_s": float, "time": "1d", "mode": "statistical" | "circuit",
                  "compensation": "none" | "global" | "column",
                  "model_draw": "fit" | "bootstrap",
                  "accuracy_mean": float, "accuracy_std": float,   # population std
                  "accuracy_ci95": [lo, hi] | null,  # 95 % t-interval of the mean over
                                                     # programmings (null for one)
                  "n_programmings": int,   # bootstrap: one programming per model drawn
                  "n_test": int,
                  "accuracies": [float, ...],                      # one per programming
                  "variant": str,     # only for a variant of evaluate(variants=...)
                  "adc_variant": str, # only for an ADC of evaluate(adc_variants=...)
                  "drift_factors": {layer: mean factor}},   # global / column only; column:
                                                            # mean over columns and chips
                 ...],
     "variant_clean_accuracy": {name: float},   # only with evaluate(variants=...)
     "adc_variants": {name: {...}},             # only with evaluate(adc_variants=...)
     "elapsed_s": float}
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checks import check_rng
from ..errors import ConfigError
from ..units import format_duration

__all__ = ["SCHEMA", "MODES", "COMPENSATIONS", "EvaluationSettings", "evaluate",
           "t_interval", "bootstrap_models", "evaluate_to_folder", "plot_evaluation",
           "EVALUATION_NAME", "PLOT_NAME"]

SCHEMA = "xbarlab-evaluation/1"
MODES = ("statistical", "circuit")
#: drift compensations (the values of :class:`~xbarlab.devices.mapping.Compensation`)
COMPENSATIONS = ("none", "global", "column")
EVALUATION_NAME = "evaluation.json"
PLOT_NAME = "accuracy_vs_time.png"


@torch.no_grad()
def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    hit = 0
    for i in range(0, x.shape[0], batch):
        hit += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return hit / max(x.shape[0], 1)


def t_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and the two-sided Student-t confidence interval of that mean.

    Parameters
    ----------
    values : array_like
        Independent draws, e.g. one accuracy per programming (any unit).
    level : float
        Confidence level, 0 < level < 1 [1].

    Returns
    -------
    (mean, lo, hi) : tuple of float
        ``mean ± t_{(1+level)/2, n-1} s / sqrt(n)`` with ``s`` the sample standard deviation
        (``ddof=1``), in the unit of ``values``; ``lo`` and ``hi`` are NaN for one value.

    Raises
    ------
    ConfigError
        ``values`` is empty or not finite, or ``level`` is outside (0, 1).
    """
    from scipy import stats

    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ConfigError(f"values must be a non-empty set of finite numbers, got {a.size} "
                          "values" + ("" if a.size == 0 else " with NaN or inf"))
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ConfigError(f"level must be a confidence level in (0, 1), got {level!r}")
    m = float(a.mean())
    if a.size < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + 0.5 * level, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))
    return m, m - h, m + h


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


def _check_int(name: str, v, lo: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")


@dataclass(frozen=True)
class EvaluationSettings:
    """How a trained network is programmed, read and scored by :func:`evaluate`.

    Fields are validated on construction; variants via :func:`dataclasses.replace`.
    """

    #: times after programming at which the chips are read [s] (non-empty, finite, >= 0).
    times: tuple[float, ...]
    #: ``N``: independent programmings (chips) of the fitted device model [1].
    programmings: int = 10
    #: subset of :data:`MODES` ("statistical", "circuit").
    modes: tuple[str, ...] = ("statistical",)
    #: drift compensations to score, each a :class:`~xbarlab.devices.mapping.Compensation`
    #: (or its value): NONE, GLOBAL (one factor per layer), COLUMN (one per output column).
    compensations: tuple[str, ...] = ("none", "global")
    #: what the calibration outputs are compared with
    #: (:class:`~xbarlab.devices.mapping.CompensationReference`): IDEAL, the product of the
    #: target weights; FIRST_READ, the chip's read at ``times[0]`` (right after programming).
    compensation_reference: str = "ideal"
    #: :class:`~xbarlab.crossbar.tiling.TileConfig` (None: the default 256 x 256 tile).
    #: Statistical mode uses its size, circuit mode also its wires.
    tile: Any = None
    #: the :class:`~xbarlab.devices.mapping.WeightMapping` of every layer (None:
    #: :func:`~xbarlab.devices.mapping.mapping_for` of the device model: one differential
    #: pair over its range).
    mapping: Any = None
    #: accept a ``mapping`` whose ``g_min..g_max`` [S] lies outside the device model's range
    #: (:func:`~xbarlab.devices.mapping.device_range`; a fitted model then uses its edge
    #: statistics).
    allow_extrapolation: bool = False
    #: circuit mode: input DAC (:class:`~xbarlab.crossbar.converters.DAC`; None: ideal).
    dac: Any = None
    #: circuit mode: ADC (:class:`~xbarlab.crossbar.converters.ADC`; None: ideal).
    adc: Any = None
    #: how many of the N chips also run in circuit mode [1].
    circuit_programmings: int = 1
    #: test samples in circuit mode (None: all) [1].
    circuit_samples: int | None = None
    #: ``K``: device models drawn from the calibration's bootstrap, one programming each [1].
    bootstrap: int = 0
    #: dtype of the statistical-mode network (circuit mode computes in float64).
    dtype: torch.dtype = torch.float32

    def __post_init__(self):
        ts = tuple(float(t) for t in np.atleast_1d(np.asarray(self.times, dtype=np.float64)))
        if not ts or not all(math.isfinite(t) and t >= 0 for t in ts):
            raise ConfigError(f"times must be a non-empty list of finite times >= 0 s, got "
                              f"{self.times!r}")
        object.__setattr__(self, "times", ts)
        _check_int("programmings", self.programmings, 1)
        _check_int("circuit_programmings", self.circuit_programmings, 0)
        _check_int("bootstrap", self.bootstrap, 0)
        if self.circuit_samples is not None:
            _check_int("circuit_samples", self.circuit_samples, 1)
        for name, allowed in (("modes", MODES), ("compensations", COMPENSATIONS)):
            v = getattr(self, name)
            v = (v,) if isinstance(v, str) else tuple(v)
            if not v or any(m not in allowed for m in v):
                raise ConfigError(f"{name} {list(v)!r} must be a non-empty subset of {allowed}")
            object.__setattr__(self, name, v)
        from ..devices.mapping import Compensation, CompensationReference
        from ..enums import coerce_enum

        object.__setattr__(self, "compensations",
                           tuple(Compensation(c) for c in self.compensations))
        object.__setattr__(self, "compensation_reference",
                           coerce_enum(CompensationReference, self.compensation_reference,
                                       "compensation_reference"))
        if "circuit" in self.modes and self.circuit_programmings == 0:
            raise ConfigError("circuit mode needs circuit_programmings >= 1")
        if self.mapping is not None:
            from ..devices.mapping import WeightMapping

            if not isinstance(self.mapping, WeightMapping):
                raise ConfigError(f"mapping must be a devices.mapping.WeightMapping, got "
                                  f"{type(self.mapping).__name__}")

    def resolved(self, device) -> EvaluationSettings:
        """These settings with the defaults that depend on ``device`` filled in.

        ``tile`` None becomes the default :class:`~xbarlab.crossbar.tiling.TileConfig`;
        ``mapping`` None becomes :func:`~xbarlab.devices.mapping.mapping_for` ``(device)``;
        a given mapping is checked against the device model's range
        (:func:`~xbarlab.devices.mapping.check_mapping`, honouring ``allow_extrapolation``).
        Raises ConfigError where the range rule refuses.
        """
        from ..crossbar.tiling import TileConfig
        from ..devices.mapping import check_mapping, mapping_for

        mapping = (mapping_for(device) if self.mapping is None else
                   check_mapping(device, self.mapping,
                                 allow_extrapolation=self.allow_extrapolation))
        return dataclasses.replace(self, tile=TileConfig() if self.tile is None else self.tile,
                                   mapping=mapping)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device,
             settings: EvaluationSettings, rng: np.random.Generator, *,
             x_cal: torch.Tensor | None = None, progress: bool = False,
             workers: int | None = None,
             variants: Mapping[str, nn.Module] | None = None,
             adc_variants: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Accuracy of ``model`` on ``(x, y)`` at ``settings.times`` after programming onto ``device``.

    The one evaluation entry: ``xbarlab evaluate``, the pipeline and the figure scripts call it.

    Parameters
    ----------
    model : torch.nn.Module
        Trained network (digital weights; not modified).
    x, y : torch.Tensor
        Test inputs (dimensionless) and labels.
    device
        Device model (``devices.load`` or a calibrated model).
    settings : EvaluationSettings
        Times [s], programmings, modes, compensations, tile, mapping, converters...
    rng : numpy.random.Generator
        Source of every chip. Its children are spawned once, ``N·(1 + K)`` of them: the
        fitted model's programming ``n`` uses child ``n`` (so a run with more programmings
        repeats the first chips of a smaller one), bootstrap model ``i`` uses child
        ``(i + 1)·N``; each chip's stream depends on its index, not on loop order.
    x_cal : torch.Tensor, optional
        Inputs whose max |input| per layer sets the DAC full scale (default ``x``).
    progress : bool
        Show a progress bar (reads) on stderr.
    workers : int, optional
        Worker processes of a local Dask cluster that program and read the chips, one
        torch thread each (:class:`xbarlab.sweep.engine.Engine`); the same numbers as in
        this process. None: every chip in this process.
    variants : mapping of str to torch.nn.Module, optional
        Other versions of ``model`` (the same analog layers and weights, other digital
        behaviour: e.g. an ADC after each layer, :func:`~xbarlab.nn.quant.attach_adc`)
        scored in statistical mode on the same chips and reads as ``model``: each of their
        results carries ``"variant": name``, and ``"variant_clean_accuracy"`` holds their
        digital accuracies. The chips are ``model``'s (DAC full scales from ``model`` on
        ``x_cal``). Forward hooks of ``model`` and of the variants are kept (the analog
        copies are deep copies).
    adc_variants : mapping of str to ADC, optional
        Other ADCs (:class:`~xbarlab.crossbar.converters.ADC`) scored in circuit mode on the
        same chips and reads as ``settings.adc``, each tile's circuit solved once for all
        (:meth:`~xbarlab.crossbar.tiling.TiledMatrix.with_adc`, one view per variant and
        read, used for every compensation): each of their results carries
        ``"adc_variant": name``. They must draw nothing (no noise, no static errors), so
        ``model``'s results do not change; where ``settings.adc`` draws nothing either, a
        variant's results equal bit for bit an evaluation with ``settings.adc`` set to it
        (with the first-read reference on wired tiles, a fine variant's drift factors may
        differ from it in the last bits: its view of the first read starts afresh at each
        read, as a grid solve by Kirchhoff-checked solves, where the model's may already
        use the effective matrix).

    Returns
    -------
    dict
        The evaluation documented in the module docstring (without the file-level fields
        added by :func:`evaluate_to_folder`).
    """
    from .analog_layers import input_ranges

    check_rng(rng)
    if not isinstance(settings, EvaluationSettings):
        raise ConfigError(f"settings must be an EvaluationSettings, got "
                          f"{type(settings).__name__}")
    st = settings
    ts = np.asarray(st.times, dtype=np.float64)
    vt = getattr(device, "valid_times", None)
    if vt is not None and (ts.min() < vt[0] or ts.max() > vt[1]):
        b = ts.min() if ts.min() < vt[0] else ts.max()
        raise ConfigError(f"{getattr(device, 'name', '') or 'device model'}: time {b:g} s is "
                          f"outside the model's valid range [{vt[0]:g}, {vt[1]:g}] s")
    st = st.resolved(device)
    variants = _check_variants(model, variants)
    adc_variants = _check_adc_variants(adc_variants, st)
    n_circ = min(st.circuit_programmings, st.programmings) if "circuit" in st.modes else 0
    model = model.eval()
    x_max = input_ranges(model, x if x_cal is None else x_cal)
    xc, yc = (x, y) if st.circuit_samples is None else (x[:st.circuit_samples],
                                                         y[:st.circuit_samples])
    devices = [("fit", device)]
    if st.bootstrap:
        devices += [("bootstrap", m) for m in bootstrap_models(device, st.bootstrap)]
    acc, factors = _read_chips(model, devices, st, rng, x_max=x_max, n_circ=n_circ,
                               test=(x.to(st.dtype), y), circuit_test=(xc.to(torch.float64), yc),
                               progress=progress, workers=workers, variants=variants,
                               adc_variants=adc_variants)
    results = _summarize(acc, factors, st, ts, n_test=int(x.shape[0]),
                         n_circ_test=int(xc.shape[0]), variants=variants,
                         adc_variants=adc_variants)
    cond = str(getattr(device, "conditioning", "target"))
    return {
        "schema": SCHEMA,
        "device_conditioning": cond,
        "weights_map_to": "first reads" if cond == "initial read" else "targets",
        "times_s": [float(t) for t in ts],
        "clean_accuracy": _accuracy(copy.deepcopy(model).to(st.dtype), x.to(st.dtype), y),
        "n_test": int(x.shape[0]),
        "settings": {"programmings": st.programmings, "circuit_programmings": n_circ,
                     "circuit_samples": int(xc.shape[0]) if "circuit" in st.modes else None,
                     "tile": st.tile.to_dict(),
                     "mapping": st.mapping.to_dict(),
                     "dac": None if st.dac is None else st.dac.to_dict(),
                     "adc": None if st.adc is None else st.adc.to_dict(), "x_max": x_max,
                     "bootstrap": st.bootstrap,
                     "compensation_reference": str(st.compensation_reference)},
        "results": results,
    } | ({"variant_clean_accuracy": {
        k: _accuracy(copy.deepcopy(v).to(st.dtype), x.to(st.dtype), y)
        for k, v in variants.items()}} if variants else {}) | (
        {"adc_variants": {k: a.to_dict() for k, a in adc_variants.items()}}
        if adc_variants else {})


def _check_variants(model: nn.Module, variants) -> dict[str, nn.Module]:
    """``variants`` as a dict, each checked to hold ``model``'s analog layers (names and
    weight shapes)."""
    from .analog_layers import ANALOG_LAYER_TYPES

    if variants is None:
        return {}
    if not isinstance(variants, Mapping):
        raise ConfigError(f"variants must map names to torch.nn.Module, got "
                          f"{type(variants).__name__}")

    def layers(m):
        return {n: tuple(x.weight.shape) for n, x in m.named_modules()
                if isinstance(x, ANALOG_LAYER_TYPES)}

    want = layers(model)
    for name, v in variants.items():
        if not isinstance(name, str) or not isinstance(v, nn.Module) or layers(v) != want:
            raise ConfigError(f"variant {name!r} must be a torch.nn.Module with the model's "
                              "analog layers (names and weight shapes)")
    return dict(variants)


def _check_adc_variants(adc_variants, st: EvaluationSettings) -> dict[str, Any]:
    """``adc_variants`` as a dict of ADCs that draw nothing (circuit mode only)."""
    from ..crossbar.converters import ADC

    if adc_variants is None:
        return {}
    if not isinstance(adc_variants, Mapping):
        raise ConfigError(f"adc_variants must map names to crossbar.converters.ADC, got "
                          f"{type(adc_variants).__name__}")
    for name, a in adc_variants.items():
        if not isinstance(name, str) or not isinstance(a, ADC):
            raise ConfigError(f"adc variant {name!r} must be a crossbar.converters.ADC")
        if a.noise_std > 0 or a.gain_error_std > 0 or a.offset_std > 0 or a.inl_max > 0:
            raise ConfigError(f"adc variant {name!r} must draw nothing (noise_std, "
                              "gain_error_std, offset_std and inl_max 0)")
    if adc_variants and "circuit" not in st.modes:
        raise ConfigError("adc_variants are scored in circuit mode: add 'circuit' to modes")
    return dict(adc_variants)


def _read_chips(model, devices, st: EvaluationSettings, rng, *, x_max, n_circ, test,
                circuit_test, progress, variants, adc_variants=None, workers=None):
    """Program every chip, read it at every time, score it: ``(accuracies, drift factors)``
    keyed by ``(mode, compensation, model draw, t)``, each list in chip order.

    Chip ``i`` (fitted model: programming ``n``, ``i = n``; bootstrap model ``k``: ``i = (k
    + 1)·N``) draws from child ``i`` of ``rng.spawn``, so the chips are independent points
    that ``workers`` processes may run in any order with the same results."""
    from ..sweep.engine import Engine

    acc: dict[tuple, list[float]] = {}
    factors: dict[tuple, dict[str, list[float]]] = {}
    kids = rng.spawn(st.programmings * len(devices))
    chips = [(di, n, kids[di * st.programmings + n]) for di, (draw, _) in enumerate(devices)
             for n in range(st.programmings if draw == "fit" else 1)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(chips) * len(st.times), desc="evaluate", unit="read")
    shared = (model, devices, st, x_max, n_circ, test, circuit_test, variants,
              adc_variants or {})
    try:
        with Engine(workers=0 if workers is None else workers) as engine:
            found = engine.map(_read_chip, chips, shared=shared, name="evaluate-chip",
                               progress=None if bar is None else
                               lambda: bar.update(len(st.times)))
    finally:
        if bar is not None:
            bar.close()
    for chip_acc, chip_factors in found:
        for key, a in chip_acc:
            acc.setdefault(key, []).append(a)
        for key, layer, f in chip_factors:
            factors.setdefault(key, {}).setdefault(layer, []).append(f)
    return acc, factors


def _read_chip(shared, chip):
    """One chip of :func:`_read_chips`: ``([(key, accuracy)], [(key, layer, factor)])`` in
    the order of its reads."""
    from .analog_layers import circuit_model, program_network, statistical_model

    model, devices, st, x_max, n_circ, (xs, y), (xcd, yc), variants, adcs = shared
    di, n, r = chip
    draw, dev = devices[di]
    acc, factors = [], []
    use_circ = draw == "fit" and n < n_circ
    layers = program_network(model, dev, r, tile=st.tile if use_circ else
                             _ideal_tile(st.tile), dac=st.dac if use_circ else None,
                             adc=st.adc if use_circ else None, x_max=x_max,
                             t=float(st.times[0]), mapping=st.mapping,
                             allow_extrapolation=st.allow_extrapolation)
    for t in st.times:
        for pl in layers:
            pl.read(float(t), r)
        # views of this read (a later read does not reach them), used for every compensation
        views = {an: [dataclasses.replace(pl, matrix=pl.matrix.with_adc(adc)) for pl in layers]
                 for an, adc in adcs.items()} if use_circ else {}
        for comp in st.compensations:
            for mode in ("statistical", "circuit") if use_circ else ("statistical",):
                circ = mode == "circuit"
                key = (mode, comp, draw, float(t))
                f = None
                if comp != "none":
                    f = {pl.name: pl.compensation_factors(
                        comp, circuit=circ, reference=st.compensation_reference)
                        for pl in layers}
                    factors += [(key, k2, float(v[0] if comp == "global" else np.mean(v)))
                                for k2, v in f.items()]
                if circ:
                    net = circuit_model(model, layers, factors=f, rng=r)
                    a = _accuracy(net, xcd, yc, batch=256)
                    for an, vl in views.items():
                        acc_v, fac_v = _adc_variant(model, vl, comp, st, r, (xcd, yc))
                        acc.append(((*key, an), acc_v))
                        factors += [((*key, an), k2, v) for k2, v in fac_v]
                else:
                    for vn, vm in variants.items():
                        net = statistical_model(vm, layers, factors=f, dtype=st.dtype)
                        acc.append(((*key, vn), _accuracy(net, xs, y)))
                    net = statistical_model(model, layers, factors=f, dtype=st.dtype)
                    a = _accuracy(net, xs, y)
                acc.append((key, a))
    return acc, factors


def _adc_variant(model, vl, comp, st: EvaluationSettings, r, test):
    """Circuit-mode accuracy of the layers ``vl`` (views of the current read with another ADC,
    :meth:`~xbarlab.crossbar.tiling.TiledMatrix.with_adc`), and its ``(layer, mean drift
    factor)`` (none without compensation)."""
    from .analog_layers import circuit_model

    f = None
    if comp != "none":
        f = {pl.name: pl.compensation_factors(comp, circuit=True,
                                              reference=st.compensation_reference)
             for pl in vl}
    fac = [] if f is None else [(k, float(v[0] if comp == "global" else np.mean(v)))
                                for k, v in f.items()]
    return _accuracy(circuit_model(model, vl, factors=f, rng=r), *test, batch=256), fac


def _summarize(acc, factors, st: EvaluationSettings, ts, *, n_test: int, n_circ_test: int,
               variants, adc_variants=None):
    """One result per (model draw, mode, variant, compensation, time), in that order; the
    variants (statistical mode) or ADC variants (circuit mode) after the model itself."""
    results = []
    modes_order = [m for m in MODES if m in st.modes]
    for draw, mode, vn, comp, t in [
            (d, m, v, c, t) for d in (("fit", "bootstrap") if st.bootstrap else ("fit",))
            for m in modes_order
            for v in (None, *(variants if m == "statistical" else adc_variants or ()))
            for c in st.compensations for t in ts]:
        if draw == "bootstrap" and mode == "circuit":
            continue
        key = (mode, comp, draw, float(t))
        a = np.asarray(acc[key if vn is None else (*key, vn)])
        fkey = key if vn is None or mode == "statistical" else (*key, vn)
        _, lo, hi = t_interval(a)
        e = {"time_s": float(t), "time": format_duration(float(t)), "mode": mode,
             "compensation": str(comp), "model_draw": draw,
             "accuracy_mean": float(a.mean()), "accuracy_std": float(a.std()),
             "accuracy_ci95": None if a.size < 2 else [lo, hi],
             "n_programmings": int(a.size),
             "n_test": n_circ_test if mode == "circuit" else n_test,
             "accuracies": [float(v) for v in a]}
        if vn is not None:
            e["variant" if mode == "statistical" else "adc_variant"] = vn
        if fkey in factors:
            e["drift_factors"] = {k: float(np.mean(v)) for k, v in factors[fkey].items()}
        results.append(e)
    return results


def _half_width(e: dict) -> float:
    """Half-width of a result's 95 % interval (0 where it has none)."""
    ci = e.get("accuracy_ci95")
    return 0.0 if not ci else 0.5 * (ci[1] - ci[0])


def plot_evaluation(ev: dict[str, Any], path, *, title: str = "") -> Path:
    """Accuracy vs time after programming (log time axis), one line per mode and
    compensation, error bars = 95 % t-interval of the mean over programmings (none for a
    single programming); the digital accuracy dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..formats import atomic_output

    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    groups: dict[tuple, list] = {}
    for e in ev["results"]:
        groups.setdefault((e["mode"], e["compensation"], e["model_draw"]), []).append(e)
    styles = {"none": "-", "global": "--", "column": ":"}
    names = {"none": "no comp.", "global": "global comp.", "column": "column comp."}
    for (mode, comp, draw), es in groups.items():
        es = sorted(es, key=lambda e: e["time_s"])
        t = [max(e["time_s"], 1e-3) for e in es]
        label = f"{mode}, {names.get(comp, comp)}"
        if draw == "bootstrap":
            label += ", calibration bootstrap"
        ax.errorbar(t, [e["accuracy_mean"] for e in es], yerr=[_half_width(e) for e in es],
                    ls=styles.get(comp, "-"), marker="o" if mode == "statistical" else "s",
                    capsize=3, label=label)
    ax.axhline(ev["clean_accuracy"], color="k", ls=":", lw=1, label="digital")
    ax.set_xscale("log")
    ax.set_xlabel("time after programming [s]")
    ax.set_ylabel("test accuracy")
    lo = min([e["accuracy_mean"] - _half_width(e) for e in ev["results"]]
             + [ev["clean_accuracy"]])
    ax.set_ylim(max(0.0, lo - 0.05), 1.01)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_output(Path(path), force=True, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return Path(path)


def evaluate_to_folder(*, model_dir: Path, device_model: str, settings: EvaluationSettings,
                       out: Path, seed: int = 0, force: bool = False, progress: bool = True,
                       command: str = "evaluate", workers: int | None = None) -> dict[str, Any]:
    """What ``xbarlab evaluate`` does: :func:`evaluate` a saved network, write the results.

    Parameters
    ----------
    model_dir : Path
        Folder (or ``model.pt``) written by ``xbarlab train`` / :func:`~xbarlab.nn.train.train`.
    device_model : str
        Preset name or device-model file.
    settings : EvaluationSettings
        Its ``mapping`` defaults to :func:`~xbarlab.devices.mapping.mapping_for` of the
        device model (its range; a fitted model's: the range its data covered).
    out : Path
        Output folder: ``evaluation.json`` and ``accuracy_vs_time.png`` (existing ones
        need ``force``).
    seed : int
        Seed of the numpy generator that draws the chips.
    progress : bool
        Progress bar on stderr.
    command : str
        The command line recorded in the folder's manifest.
    workers : int, optional
        Worker processes that program and read the chips (:func:`evaluate`); None: this
        process.

    Returns
    -------
    dict
        What is written to ``out/evaluation.json``.
    """
    from ..formats import check_output_path, prepare_output_dir, write_text_atomic
    from .data import load_dataset
    from .export import load_device_model
    from .train import load_trained

    check_output_path(out, folder=True, what="output folder")
    net, blob = load_trained(model_dir)
    cfg = blob["config"]
    device = load_device_model(device_model)
    settings = settings.resolved(device)  # the range rule refuses before anything is written
    data = load_dataset(cfg["dataset"])
    out = Path(out)
    if (out / EVALUATION_NAME).exists() and not force:
        from ..errors import OutputExistsError

        raise OutputExistsError(f"{out / EVALUATION_NAME} exists; pass force=True to "
                                "replace it")
    prepare_output_dir(out, force=force, command=command)
    t0 = _time.perf_counter()
    ev = evaluate(net, data.x_test, data.y_test, device, settings, np.random.default_rng(seed),
                  x_cal=data.x_train, progress=progress, workers=workers)
    ev = {"schema": ev.pop("schema"), "model_dir": str(model_dir), "device_model": device_model,
          **ev, "elapsed_s": _time.perf_counter() - t0}
    ev["settings"]["seed"] = seed
    write_text_atomic(out / EVALUATION_NAME, json.dumps(ev, indent=2) + "\n", force=True)
    plot_evaluation(ev, out / PLOT_NAME, title=f"{cfg['dataset']} {cfg['model']} on "
                    f"{device_model}")
    return ev
