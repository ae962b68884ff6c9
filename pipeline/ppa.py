"""The accuracy-cost study of ``xbarlab ppa``: accuracy against energy per inference.

For every point of a sweep over ADC bits, array size and conductance range, one trained
network is

* evaluated by :func:`xbarlab.nn.evaluate.evaluate` in circuit mode (tiles of the array size
  with their wire resistance, an ADC of those bits per tile column with the range
  ``max-possible``, the weight mapping over that conductance range, read at one time after
  programming, N programmings; the points of one array size and conductance range are one
  evaluation, their ADCs ``adc_variants`` of it: the same chips and reads, each tile's
  circuit solved once for every bit width, the same numbers as one evaluation per point),
  and
* costed by :func:`xbarlab.energy.network.network_cost` on the chosen chip description with
  its arrays, ADC bits and conductance range replaced by the point's (a ``s x s`` physical
  tile of differential column pairs holds ``s`` inputs and ``s / 2`` outputs, two devices a
  weight; every other value stays the chip's, its node's and the survey's).

The Pareto front keeps the points no other point beats in both accuracy and energy. The
folder gets ``ppa.json``, ``report.md``, ``report.html`` and ``plots/`` (the front, and the
energy breakdown of the network on the chip as described).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["PpaSweep", "network_layers", "pareto_front", "run_ppa", "PPA_NAME"]

#: The study's results file in the output folder.
PPA_NAME = "ppa.json"


@dataclass(frozen=True)
class PpaSweep:
    """The points of the study and how each is evaluated."""

    adc_bits: tuple[int, ...] = (4, 6, 8)
    """ADC resolutions [bits], each >= 2."""
    tiles: tuple[int, ...] = (64, 256)
    """Array sizes ``s`` [1]: ``s x s`` physical tiles, even, >= 4."""
    g_max: tuple[float, ...] | None = None
    """Highest conductances of the mapping [S]; None: half and all of the device's range."""
    time: float = 86400.0
    """Time after programming of the read [s]."""
    programmings: int = 2
    """Independent programmings per point [1]."""
    circuit_samples: int | None = 100
    """Test samples per point (None: all) [1]."""
    r_wire: float = 0.0
    """Wire resistance per cell segment, rows and columns [Ohm]."""
    compensation: str = "global"
    """Drift compensation scored (:class:`~xbarlab.devices.mapping.Compensation`)."""

    def __post_init__(self):
        def ints(name, lo, even=False):
            v = tuple(getattr(self, name))
            if not v or any(isinstance(k, bool) or not isinstance(k, int) or k < lo
                            or (even and k % 2) for k in v):
                raise ConfigError(f"{name} {list(v)!r} must be a non-empty list of "
                                  f"{'even ' if even else ''}integers >= {lo}")
            object.__setattr__(self, name, v)
        ints("adc_bits", 2)
        ints("tiles", 4, even=True)
        if self.g_max is not None:
            g = tuple(float(x) for x in self.g_max)
            if not g or not all(math.isfinite(x) and x > 0 for x in g):
                raise ConfigError(f"g_max {list(self.g_max)!r} must be conductances > 0 [S]")
            object.__setattr__(self, "g_max", g)
        for name in ("time", "r_wire"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.programmings, int) or self.programmings < 1:
            raise ConfigError(f"programmings must be an integer >= 1, got {self.programmings!r}")


def network_layers(model, x_sample) -> list:
    """The :class:`~xbarlab.energy.network.Layer` of every ``Linear``, ``Conv1d`` and
    ``Conv2d`` of a torch ``model``, in call order, with its weights and bias and, for a
    convolution, its output positions per input as ``vectors`` (found by one forward pass
    of ``x_sample``, one input)."""
    import torch
    from torch import nn

    from ..energy.network import Layer

    found: list[tuple[nn.Module, int]] = []

    def hook(mod, _inp, out):
        found.append((mod, int(np.prod(out.shape[2:])) if out.dim() > 2 else 1))

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model.eval()(x_sample[:1])
    finally:
        for h in handles:
            h.remove()
    layers = []
    for k, (m, vectors) in enumerate(found):
        W = m.weight.detach().cpu().double().numpy().reshape(m.weight.shape[0], -1)
        b = None if m.bias is None else m.bias.detach().cpu().double().numpy()
        layers.append(Layer(f"{k}:{type(m).__name__}", n_out=W.shape[0], n_in=W.shape[1],
                            vectors=vectors, W=W, bias=b))
    return layers


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Mask of the points that no other point beats: none has energy <= and accuracy >=
    with one of them strict."""
    e, a = np.asarray(energy, dtype=np.float64), np.asarray(accuracy, dtype=np.float64)
    le = e[None, :] <= e[:, None]
    ge = a[None, :] >= a[:, None]
    strict = (e[None, :] < e[:, None]) | (a[None, :] > a[:, None])
    return ~np.any(le & ge & strict, axis=1)


def _point_chip(chip, s: int, bits: int, g_min: float, g_max: float, extrapolate: bool):
    return dataclasses.replace(chip, rows=s, cols=s // 2, devices_per_weight=2,
                               output_bits=bits, g_min=g_min, g_max=g_max,
                               adc_extrapolate=chip.adc_extrapolate or extrapolate)


def _accuracy(ev: dict, compensation: str, adc_variant: str | None = None
              ) -> tuple[float, list | None]:
    for e in ev["results"]:
        if e["mode"] == "circuit" and e["compensation"] == compensation \
                and e["model_draw"] == "fit" and e.get("adc_variant") == adc_variant:
            return float(e["accuracy_mean"]), e.get("accuracy_ci95")
    raise ConfigError(f"the evaluation holds no circuit-mode result with compensation "
                      f"{compensation!r}")


def _evaluate_bits(net, data, device, sweep: PpaSweep, s: int, g_max: float, g_min: float,
                   seed: int, workers: int | None) -> dict[int, tuple[float, list | None]]:
    """``{adc bits: (accuracy, 95 % interval)}`` of one array size and conductance range:
    one evaluation, the first bit width its ADC, the others its ``adc_variants``."""
    from ..crossbar.converters import ADC
    from ..crossbar.tiling import TileConfig
    from ..devices.mapping import mapping_for
    from ..nn.evaluate import EvaluationSettings, evaluate

    adcs = {b: ADC(bits=b, range_mode="max-possible") for b in sweep.adc_bits}
    first, *others = sweep.adc_bits
    st = EvaluationSettings(
        times=(sweep.time,), programmings=sweep.programmings, modes=("circuit",),
        compensations=(sweep.compensation,),
        tile=TileConfig(rows=s, cols=s, r_row=sweep.r_wire, r_col=sweep.r_wire),
        mapping=mapping_for(device, g_min=g_min, g_max=g_max), adc=adcs[first],
        circuit_programmings=sweep.programmings, circuit_samples=sweep.circuit_samples)
    ev = evaluate(net, data.x_test, data.y_test, device, st, np.random.default_rng(seed),
                  x_cal=data.x_train, workers=workers,
                  adc_variants={str(b): adcs[b] for b in others if b != first})
    comp = st.compensations[0].value
    return {b: _accuracy(ev, comp, None if b == first else str(b)) for b in sweep.adc_bits}


def run_ppa(*, model_dir, device_model: str, chip, survey_dir, sweep: PpaSweep, out,
            seed: int = 0, extrapolate: bool = False, force: bool = False,
            command: str = "ppa", progress=None, workers: int | None = None
            ) -> dict[str, Any]:
    """Run the study (module docstring) and write its folder; returns ``ppa.json``'s dict.

    Parameters
    ----------
    model_dir : Path
        Output folder of ``xbarlab train``.
    device_model : str
        Preset name or device-model file.
    chip : ChipDescription
        The chip whose periphery and node cost the points.
    survey_dir : Path
        Folder of the ADC survey.
    sweep : PpaSweep
        The points and their evaluation.
    out : Path
        Output folder.
    seed : int
        Seed of every point's programmings (the same chips for every point).
    extrapolate : bool
        Allow ADC bits outside the survey's span.
    force, command
        As for every output folder (:func:`~xbarlab.formats.prepare_output_dir`).
    progress : callable, optional
        Called with one line per point done.
    workers : int, optional
        Worker processes that program and read the chips of each evaluation
        (:func:`~xbarlab.nn.evaluate.evaluate`; the same numbers); None: this process.
    """
    from ..devices.mapping import device_range, mapping_for
    from ..energy import fit_adc_area, load_adc_survey
    from ..energy.chip import chip_to_dict
    from ..energy.cost import adc_conversion_energy
    from ..energy.network import network_cost
    from ..formats import check_output_path, prepare_output_dir, write_text_atomic
    from ..nn.data import load_dataset
    from ..nn.export import load_device_model
    from ..nn.train import load_trained

    check_output_path(out, folder=True, what="output folder")
    out = Path(out)
    if (out / PPA_NAME).exists() and not force:
        from ..errors import OutputExistsError

        raise OutputExistsError(f"{out / PPA_NAME} exists; pass force=True to replace it")
    t0 = time.perf_counter()
    survey = load_adc_survey(survey_dir)
    for b in sweep.adc_bits:  # refuse before any evaluation
        adc_conversion_energy(_point_chip(chip, sweep.tiles[0], b, chip.g_min, chip.g_max,
                                          extrapolate), survey)
    device = load_device_model(device_model)
    lo, hi = device_range(device)
    g_maxes = sweep.g_max if sweep.g_max is not None else (lo + 0.5 * (hi - lo), hi)
    for g in g_maxes:
        mapping_for(device, g_min=lo, g_max=g)
    net, blob = load_trained(model_dir)
    area_model = fit_adc_area(survey)
    data = load_dataset(blob["config"]["dataset"])
    layers = network_layers(net, data.x_test)
    prepare_output_dir(out, force=force, command=command)
    rows = []
    for g in g_maxes:
        for s in sweep.tiles:
            accs = _evaluate_bits(net, data, device, sweep, s, g, lo, seed, workers)
            for b in sweep.adc_bits:
                acc, ci = accs[b]
                cost = network_cost(layers, _point_chip(chip, s, b, lo, g, extrapolate),
                                    survey, mapping=mapping_for(device, g_min=lo, g_max=g),
                                    area_model=area_model)
                rows.append({"adc_bits": b, "tile": s, "g_min_S": lo, "g_max_S": g,
                             "accuracy": acc, "accuracy_ci95": ci, "energy_J": cost.energy,
                             "latency_s": cost.latency, "area_m2": cost.area,
                             "tiles_used": cost.n_tiles, "tops_per_w": cost.tops_per_w,
                             "energy_by_part_J": {k: sum(la.energy[k] for la in cost.layers)
                                                  for k in cost.layers[0].energy}})
                if progress is not None:
                    progress(f"adc {b} bits, tile {s}, g_max {g * 1e6:.3g} uS: accuracy "
                             f"{acc:.4f}, {cost.energy * 1e9:.4g} nJ per inference")
    front = pareto_front([r["energy_J"] for r in rows], [r["accuracy"] for r in rows])
    for r, f in zip(rows, front, strict=True):
        r["pareto"] = bool(f)
    base = network_cost(layers, chip, survey, area_model=area_model)
    res = {"schema": "xbarlab.ppa/1", "model_dir": str(model_dir), "device_model": device_model,
           "chip": chip.name, "chip_citation": chip.citation,
           "chip_from_node": {k: v for k, v in chip_to_dict(chip).items()
                              if k in chip.from_node},
           "dataset": data.name,
           "model": blob["config"]["model"], "seed": seed,
           "sweep": {k: v for k, v in dataclasses.asdict(sweep).items()},
           "ops_per_inference": base.ops, "ops_rule": "2 operations per multiply-accumulate",
           "points": rows}
    res["elapsed_s"] = time.perf_counter() - t0
    write_text_atomic(out / PPA_NAME, json.dumps(res, indent=2) + "\n", force=True)
    from .ppa_report import write_ppa_report

    write_ppa_report(out, res, base)
    return res
