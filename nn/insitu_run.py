"""In-situ training runs and their report: what ``xbarlab train-insitu`` does.

The network is the fully connected network of Wu et al. 2024, n_in-256-128-10 with sigmoid
activations (n_in = 784 for MNIST-5k, 64 for digits; other hidden widths by ``hidden``, e.g.
(256, 128, 64) for a 4-layer network that a K = 4 pipeline splits one layer per stage),
initialised as torch initialises a Linear layer (weights and biases uniform on
+-1 / sqrt(fan_in)) from the run's ``init`` stream. Seeds:
:func:`~xbarlab.nn.train.seed_generators` (``init``: weights, ``shuffle``: the order of the
samples, ``noise``: the device gains, the pulse bits and the step noise).
Every epoch is a shuffled pass over the training split in micro-batches of ``batch``
samples, run through :func:`~xbarlab.nn.pipelines.train_pipelined` (K = 1 stage and one
micro-batch per update is plain training, one cycle per update); the pipeline fills anew
each epoch. The learning rate may drop by ``lr_decay`` every ``lr_step`` epochs (StepLR).

Written to the output folder: ``metrics.json`` (settings, per-epoch test accuracy, training
loss, samples, clock cycles, pulses per layer, wall time), ``report.md`` and
``report.html`` with the accuracy vs epoch and vs clock cycles, the weight histograms of
every layer against the device's weight range, and the pulse counts per layer.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..devices.pulsed import PulsedDevice, WeightDomain
from ..enums import coerce_enum
from ..errors import ConfigError
from .insitu import DEFAULT_PULSES, Algorithm, PulseSettings, make_optimizer
from .pipelines import Schedule, train_pipelined

__all__ = ["fcn", "check_hidden", "train_insitu", "METRICS_NAME", "DEFAULT_HIDDEN"]

METRICS_NAME = "metrics.json"
#: Hidden widths of the FCN of Wu et al. 2024 (n_in-256-128-10).
DEFAULT_HIDDEN = (256, 128)


def check_hidden(hidden) -> tuple[int, ...]:
    """``hidden`` as a tuple of widths; a ConfigError unless it is a non-empty sequence of
    integers >= 1."""
    ok = isinstance(hidden, (list, tuple)) and len(hidden) > 0 and all(
        not isinstance(h, bool) and isinstance(h, int) and h >= 1 for h in hidden)
    if not ok:
        raise ConfigError(f"hidden must be a non-empty sequence of integers >= 1 (the hidden "
                          f"layers' widths), got {hidden!r}")
    return tuple(hidden)


def fcn(n_in: int, generator: torch.Generator, hidden=DEFAULT_HIDDEN,
        n_out: int = 10) -> nn.Module:
    """n_in-hidden[0]-...-n_out with sigmoid activations (default n_in-256-128-10),
    initialised from ``generator`` only.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths [1].
    generator : torch.Generator
        Draws every weight and bias (uniform on +-1 / sqrt(fan_in)), layer by layer.
    hidden : sequence of int
        Hidden widths [1] (default 256, 128: the FCN of Wu et al. 2024).

    Returns
    -------
    torch.nn.Sequential
    """
    hidden = check_hidden(hidden)
    sizes = [n_in, *hidden, n_out]
    mods: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        lin = nn.Linear(sizes[i], sizes[i + 1])
        bound = 1.0 / math.sqrt(sizes[i])
        with torch.no_grad():
            for p in lin.parameters():
                p.copy_(torch.rand(p.shape, generator=generator) * (2 * bound) - bound)
        mods.append(lin)
        if i < len(sizes) - 2:
            mods.append(nn.Sigmoid())
    return nn.Sequential(*mods)


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    return v


def train_insitu(*, dataset: str, algorithm: Algorithm, device: PulsedDevice | None,
                 tau: float, epochs: int, seed: int, lr: float, batch: int = 10,
                 hidden=DEFAULT_HIDDEN, pulses: PulseSettings = DEFAULT_PULSES,
                 stages: int = 1,
                 schedule: Schedule = Schedule.SYNCHRONOUS, per_update: int = 1,
                 lr_step: int = 0, lr_decay: float = 0.1,
                 tiki_taka: dict[str, Any] | None = None, out: Path | None = None,
                 force: bool = False, command: str = "", device_source: str = "",
                 progress=None) -> dict[str, Any]:
    """Train the FCN in situ and (with ``out``) write its metrics and report.

    Parameters
    ----------
    dataset : str
        ``"mnist5k"`` or ``"digits"`` (:func:`~xbarlab.nn.data.load_dataset`).
    algorithm : Algorithm
        Digital SGD, Analog SGD, Tiki-Taka v2 or its chopped variant.
    device : PulsedDevice or None
        The cells' device (None only for digital SGD).
    tau : float
        Weight-range half-width of the device (:class:`~xbarlab.devices.pulsed.WeightDomain`) [1].
    epochs, seed, lr, batch : int, int, float, int
        Epochs, run seed, learning rate [1] and micro-batch size.
    hidden : sequence of int
        Hidden widths of the FCN [1] (default 256, 128).
    pulses : PulseSettings
        How updates become pulses.
    stages, schedule, per_update : int, Schedule, int
        Pipeline: K accelerators (1 to the FCN's Linear layers, len(hidden) + 1), schedule,
        M micro-batches per synchronous update.
    lr_step, lr_decay : int, float
        Multiply lr by ``lr_decay`` every ``lr_step`` epochs (0: constant lr).
    tiki_taka : dict, optional
        Keyword arguments of :class:`~xbarlab.nn.insitu.TikiTaka`.
    out : pathlib.Path, optional
        Output folder (metrics.json, report.md, report.html).
    force : bool
        Replace outputs in ``out``.
    command, device_source : str
        Recorded in the manifest and the metrics.
    progress : bool or None
        Progress bar over epochs (None: only on a terminal).

    Returns
    -------
    dict
        The metrics (as written to ``metrics.json``).
    """
    from .data import load_dataset
    from .train import accuracy, progress_bar, seed_generators

    algorithm = coerce_enum(Algorithm, algorithm, "algorithm")
    schedule = coerce_enum(Schedule, schedule, "schedule")
    if dataset not in ("mnist5k", "digits"):
        raise ConfigError(f"dataset must be 'mnist5k' or 'digits', got {dataset!r}")
    _check_int("epochs", epochs, 1)
    _check_int("batch", batch, 1)
    _check_int("lr_step", lr_step, 0)
    hidden = check_hidden(hidden)
    n_layers = len(hidden) + 1
    if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= n_layers:
        raise ConfigError(f"stages must be an integer in 1..{n_layers} (the FCN's Linear "
                          f"layers), got {stages!r}")
    if device is None and algorithm is not Algorithm.DIGITAL:
        raise ConfigError(f"algorithm {algorithm.value!r} needs a pulsed device")
    domain = None if device is None else WeightDomain(device, tau)
    if out is not None:
        from ..formats.output import prepare_output_dir

        out = prepare_output_dir(out, force=force, command=command)
    data = load_dataset(dataset)
    xtr, ytr = data.x_train.reshape(len(data.x_train), -1), data.y_train
    xte, yte = data.x_test.reshape(len(data.x_test), -1), data.y_test
    gens = seed_generators(seed)
    model = fcn(xtr.shape[1], gens["init"], hidden)
    opt = make_optimizer(algorithm, model, lr=lr, domain=domain, pulses=pulses,
                         generator=gens["noise"], **(tiki_taka or {}))
    sched = None
    if lr_step:
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=lr_step, gamma=lr_decay)
    rows, cycles, samples, t0 = [], 0, 0, time.perf_counter()
    for epoch in progress_bar(progress, iterable=range(1, epochs + 1), desc="epochs"):
        order = torch.randperm(len(xtr), generator=gens["shuffle"])
        mbs = [(xtr[order[i:i + batch]], ytr[order[i:i + batch]])
               for i in range(0, len(xtr), batch)]
        log = train_pipelined(model, opt, mbs, stages=stages, schedule=schedule,
                              per_update=per_update)
        cycles += log.cycles[-1]
        samples += log.samples[-1]
        if sched is not None:
            sched.step()
        counts = opt.pulse_counts() if hasattr(opt, "pulse_counts") else {}
        rows.append({"epoch": epoch, "test_accuracy": accuracy(model, xte, yte),
                     "train_loss": float(np.mean(log.loss)), "samples": samples,
                     "cycles": cycles, "pulses": counts,
                     "wall_s": time.perf_counter() - t0})
    if hasattr(opt, "remove_hooks"):
        opt.remove_hooks()
    metrics = {
        "dataset": dataset, "algorithm": algorithm.value, "tau": tau, "epochs": epochs,
        "seed": seed, "lr": lr, "batch": batch, "hidden": list(hidden),
        "lr_step": lr_step, "lr_decay": lr_decay,
        "update_mode": pulses.mode.value, "bit_length": pulses.bit_length,
        "update_management": pulses.update_management, "stages": stages,
        "schedule": schedule.value, "per_update": per_update, "tiki_taka": tiki_taka or {},
        "device": None if device is None else json.loads(device.to_json()),
        "device_source": device_source,
        "weight_range": None if domain is None else [domain.w_min, domain.w_max],
        "dw_min": None if domain is None else domain.dw_min,
        "final_test_accuracy": rows[-1]["test_accuracy"], "history": rows,
        "torch_threads": torch.get_num_threads(),
    }
    if out is not None:
        from ..formats.output import write_text_atomic

        write_text_atomic(out / METRICS_NAME, json.dumps(metrics, indent=1) + "\n", force=True)
        _write_report(out, metrics, model, domain)
    return metrics


def _figure(ncols=1, figsize=(6.4, 4.2)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _write_report(out: Path, m: dict, model: nn.Module, domain: WeightDomain | None) -> None:
    from ..formats.output import write_text_atomic
    from ..formats.report_doc import render_html, render_markdown

    h = m["history"]
    fig, (a1, a2) = _figure(2, (10.0, 4.0))
    acc = [100 * r["test_accuracy"] for r in h]
    a1.plot([r["epoch"] for r in h], acc, "o-")
    a1.set_xlabel("epoch")
    a1.set_ylabel("test accuracy [%]")
    a2.plot([r["cycles"] for r in h], acc, "o-")
    a2.set_xlabel("clock cycles")
    a2.set_ylabel("test accuracy [%]")
    fig.tight_layout()
    acc_png = out / "accuracy.png"
    fig.savefig(acc_png, dpi=100)
    layers = [(n, mod) for n, mod in model.named_modules() if isinstance(mod, nn.Linear)]
    fig, axes = _figure(len(layers), (3.6 * len(layers), 3.2))
    for ax, (n, mod) in zip(axes, layers, strict=True):
        w = torch.cat([mod.weight.detach().flatten(), mod.bias.detach().flatten()]).numpy()
        ax.hist(w, bins=80, color="C0")
        if domain is not None:
            for b in (domain.w_min, domain.w_max):
                ax.axvline(b, color="C3", ls="--")
        ax.set_title(f"layer {n}")
        ax.set_xlabel("weight")
    fig.tight_layout()
    hist_png = out / "weights.png"
    fig.savefig(hist_png, dpi=100)
    last = h[-1]
    B = [("h1", "In-situ training report"),
         ("p", f"{m['algorithm']} on {m['dataset']} (FCN hidden widths "
               f"{'-'.join(map(str, m['hidden']))}), {m['epochs']} epochs, lr {m['lr']}, "
               f"batch {m['batch']}, seed {m['seed']}; update `{m['update_mode']}`"
               + (f" (BL {m['bit_length']}, update management "
                  f"{'on' if m['update_management'] else 'off'})"
                  if m["update_mode"] == "stochastic" else "")
               + f"; pipeline: {m['stages']} stage(s), {m['schedule']}."),
         ("p", f"Final test accuracy **{100 * m['final_test_accuracy']:.2f} %** after "
               f"{last['samples']} samples and {last['cycles']} clock cycles "
               f"({last['wall_s']:.1f} s)."),
         ("img", acc_png, "Test accuracy vs epoch and vs clock cycles"),
         ("table", ["epoch", "test accuracy [%]", "train loss", "samples", "cycles"],
          [[r["epoch"], f"{100 * r['test_accuracy']:.2f}", f"{r['train_loss']:.4f}",
            r["samples"], r["cycles"]] for r in h])]
    if domain is not None:
        B += [("p", f"Device: `{m['device_source']}`, tau {m['tau']}, weight range "
                    f"[{domain.w_min:.4g}, {domain.w_max:.4g}], dw_min {domain.dw_min:.4g}, "
                    f"{domain.device.n_states():.0f} states, symmetric point "
                    f"{domain.g_ref * 1e6:.4g} uS.")]
    B.append(("img", hist_png, "Weights (and biases) of each layer; dashed: the device's "
                               "weight range"))
    if last["pulses"]:
        B += [("h2", "Pulses per layer"),
              ("table", ["layer", "pulses", "pulses per cell"],
               [[n, f"{c:.4g}", f"{c / (mod.weight.numel() + mod.bias.numel()):.4g}"]
                for (n, mod) in layers for k, c in last["pulses"].items() if k == n])]
    write_text_atomic(out / "report.md", render_markdown(B, base=out), force=True)
    write_text_atomic(out / "report.html", render_html(B, title="In-situ training report"),
                      force=True)
