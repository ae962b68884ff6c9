"""Accuracy vs ADC bits on the BatchNorm CNN, programmed onto a device model (poster Fig. 9).

    python -m xbarlab.nn.figures.adc_bits_cnn --networks runs/device-noise/cnn-compensation
        --out DIR [--device-model pcm-ibm-2020] [--bits 2,3,4,5,6,8] [--times 1s,1d]
        [--programmings 30] [--compensation global] [--logits adc|float|both] [--seed 0]

The SGD and HA-SGD ``resnet`` networks that :mod:`~xbarlab.nn.figures.cnn_compensation`
trained (``NETWORKS/sgd``, ``NETWORKS/hasgd``) get the crossbar's signed ADC after every
analog layer (:func:`xbarlab.nn.quant.attach_adc`: the codes of
``crossbar.converters.ADC(bits=B, signed=True)``, ``-(2**(B-1) - 1) .. 2**(B-1) - 1`` with a
zero code; full scale per layer = max |output| of the clean network on the training split,
:func:`~xbarlab.nn.quant.calibrate_adc_ranges`), with the logits through the ADC or in
floating point (``--logits``), and are then programmed onto the device model over its full
range and read at ``--times`` (:func:`~xbarlab.nn.evaluate.evaluate`, statistical mode,
256 × 256 tiles, ``--compensation`` of the drift; the compensation factor multiplies the
weights, so the ADC sees the compensated outputs: an ADC whose range follows the drift).
Every (bits, logits) setting is scored on the same chips and reads
(:func:`~xbarlab.nn.evaluate.evaluate`'s ``variants``), so differences between settings
are paired. Each cell: mean accuracy over the programmings and its 95 % Student-t
interval (:func:`~xbarlab.nn.evaluate.t_interval`). The mechanism columns, from the clean
networks on the test split: per analog layer, max |output| over its 99th percentile, and
the fraction of outputs in the ADC's zero bin at 3 bits (|y| < half a step). Writes
``results.json`` and ``table.md`` into ``OUT``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...devices.mapping import mapping_for
from ...errors import ConfigError
from ...units import format_duration, parse_durations
from ..data import load_dataset
from ..evaluate import EvaluationSettings, evaluate, t_interval
from ..export import load_device_model
from ..noise import NOISY_LAYER_TYPES
from ..quant import attach_adc, calibrate_adc_ranges
from ..train import deterministic_algorithms, load_trained, torch_threads

__all__ = ["METHODS", "output_statistics", "run", "main"]

#: label -> sub-folder of the cnn_compensation output
METHODS = {"SGD": "sgd", "HA-SGD": "hasgd"}
_LOGITS = {"adc": (True,), "float": (False,), "both": (True, False)}


@torch.no_grad()
def output_statistics(net: torch.nn.Module, x: torch.Tensor, ranges: dict[str, float], *,
                      bits: int = 3) -> dict[str, dict[str, float]]:
    """Per analog layer of ``net`` on inputs ``x``: ``{"peak_over_p99": max|y| / 99th
    percentile of |y| [1], "zero_bin": fraction of outputs with |y| below half the step of a
    ``bits``-bit signed ADC of full scale ``ranges[layer]`` [1]}``."""
    mods = {n: m for n, m in net.named_modules() if isinstance(m, NOISY_LAYER_TYPES)}
    outs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, y, n=n: outs.__setitem__(n, y.abs()))
             for n, m in mods.items()]
    try:
        net.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    half_step = {n: ranges[n] / (2 * (2 ** (bits - 1) - 1)) for n in mods}
    return {n: {"peak_over_p99": float(y.max() / torch.quantile(y.flatten()[:1_000_000], 0.99)),
                "zero_bin": float((y < half_step[n]).double().mean())} for n, y in outs.items()}


def _cells(results: list[dict]) -> dict[float, tuple[float, float]]:
    """``{time [s]: (mean, 95 % half-width)}`` of evaluation results."""
    out = {}
    for e in results:
        m, lo, hi = t_interval(e["accuracies"])
        out[e["time_s"]] = (m, (hi - lo) / 2)
    return out


def _table(rows: list[dict], ts: Sequence[float]) -> str:
    head = ("| training | logits | ADC bits | digital | " + " | ".join(
        format_duration(t) for t in ts) + " |\n|---|---|---|---|" + "---|" * len(ts) + "\n")
    lines = [f"| {r['method']} | {r['logits']} | {r['bits'] or 'none'} | "
             f"{r['digital_accuracy']:.3f} | " + " | ".join(
                 f"{r['cells'][t][0]:.3f} ± {r['cells'][t][1]:.3f}" for t in ts) + " |"
             for r in rows]
    return head + "\n".join(lines) + "\n"


def _stats_table(stats: dict) -> str:
    layers = list(next(iter(stats.values())))
    head = ("| training | " + " | ".join(layers) + " |\n|---|" + "---|" * len(layers) + "\n")
    return head + "\n".join(
        f"| {m} | " + " | ".join(f"{s[n]['peak_over_p99']:.2f} / {100 * s[n]['zero_bin']:.0f} %"
                                 for n in layers) + " |" for m, s in stats.items()) + "\n"


def run(*, networks: Path, out: Path, device_model: str = "pcm-ibm-2020",
        bits: Sequence[int] = (2, 3, 4, 5, 6, 8), times: Sequence[float] = (1.0, 86400.0),
        programmings: int = 30, compensation: str = "global", logits: str = "both",
        seed: int = 0, progress: bool = False) -> dict:
    """Evaluate the networks in ``networks`` with each ADC setting; returns the results dict
    (also written to ``out``)."""
    if logits not in _LOGITS:
        raise ConfigError(f"logits must be one of {sorted(_LOGITS)}, got {logits!r}")
    networks, out = Path(networks), Path(out)
    for sub in METHODS.values():
        if not (networks / sub).is_dir():
            raise ConfigError(f"{networks / sub} is missing: run python -m "
                              f"xbarlab.nn.figures.cnn_compensation --out {networks} first")
    out.mkdir(parents=True, exist_ok=True)
    dev = load_device_model(device_model)
    st = EvaluationSettings(times=tuple(float(t) for t in times), programmings=programmings,
                            compensations=(compensation,), mapping=mapping_for(dev))
    rows, stats, t0 = [], {}, time.perf_counter()
    for method, sub in METHODS.items():
        net, blob = load_trained(networks / sub)
        data = load_dataset(blob["config"]["dataset"])
        ranges = calibrate_adc_ranges(net, [data.x_train])
        stats[method] = output_statistics(net, data.x_test, ranges)
        settings = {f"{b} bits, {lab}": (b, lab) for lab, last in
                    (("through the ADC", True), ("floating point", False))
                    if last in _LOGITS[logits] for b in bits}
        variants = {k: attach_adc(copy.deepcopy(net), bits=int(b), ranges=ranges,
                                  last_layer=lab == "through the ADC")
                    for k, (b, lab) in settings.items()}
        ev = evaluate(net, data.x_test, data.y_test, dev, st, np.random.default_rng(seed + 1),
                      x_cal=data.x_train, progress=progress, variants=variants)
        for k, (b, lab) in {None: (None, "—"), **settings}.items():
            res = [e for e in ev["results"] if e.get("variant") == k]
            rows.append({"method": method, "logits": lab, "bits": b,
                         "digital_accuracy": ev["clean_accuracy"] if k is None
                         else ev["variant_clean_accuracy"][k],
                         "cells": _cells(res), "accuracies": {e["time_s"]: e["accuracies"]
                                                               for e in res}})
    ts = list(st.times)
    table = _table(rows, ts)
    stats_md = _stats_table(stats)
    res = {"experiment": "adc-bits-cnn", "device_model": device_model,
           "networks": str(networks), "times_s": ts, "bits": list(bits),
           "mapping": st.mapping.to_dict(), "compensation": compensation,
           "settings": {"programmings": programmings, "seed": seed, "interval": "95 % t",
                        "adc": "crossbar.converters.ADC(signed=True) codes, full scale = "
                               "max |output| on the training split",
                        "torch_threads": torch.get_num_threads()},
           "rows": [{**r, "cells": {str(t): list(c) for t, c in r["cells"].items()},
                     "accuracies": {str(t): a for t, a in r["accuracies"].items()}}
                    for r in rows],
           "output_statistics": stats, "elapsed_s": time.perf_counter() - t0}
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "table.md").write_text(table + "\nmax|y| / p99 |y| and zero-bin share at 3 bits, "
                                  "per analog layer (clean network, test split):\n\n"
                                  + stats_md)
    print(table)
    print(stats_md)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xbarlab.nn.figures.adc_bits_cnn")
    p.add_argument("--networks", required=True,
                   help="output folder of xbarlab.nn.figures.cnn_compensation (sgd/, hasgd/)")
    p.add_argument("--out", required=True)
    p.add_argument("--device-model", default="pcm-ibm-2020")
    p.add_argument("--bits", default="2,3,4,5,6,8")
    p.add_argument("--times", default="1s,1d")
    p.add_argument("--programmings", type=int, default=30)
    p.add_argument("--compensation", default="global", choices=["none", "global", "column"])
    p.add_argument("--logits", default="both", choices=sorted(_LOGITS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    try:
        bits = tuple(int(b) for b in a.bits.split(","))
    except ValueError:
        p.error(f"--bits must be integers separated by commas, got {a.bits!r}")
    with deterministic_algorithms(), torch_threads(a.threads):
        run(networks=Path(a.networks), out=Path(a.out), device_model=a.device_model,
            bits=bits, times=parse_durations(a.times, what="--times"),
            programmings=a.programmings, compensation=a.compensation, logits=a.logits,
            seed=a.seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
