"""Pipelined training across K simulated accelerators (Wu, Xiao, Gokmen, Tsai, El Maghraoui,
Chen, arXiv 2410.15155): the network's Linear layers split into K consecutive stages, one
stage per accelerator.

Cycle model: one clock cycle is one stage's forward and backward of one micro-batch; every
stage works on a different micro-batch in the same cycle.

- ``SYNCHRONOUS``: an update takes M micro-batches; they enter the pipeline one per cycle
  and the last one leaves after K - 1 more (fill and drain), so an update costs M + K - 1
  cycles; every stage computes with the current weights and all stages update together
  (the update of the M micro-batches is that of their union as one batch).
- ``ASYNCHRONOUS``: one micro-batch enters per cycle and every stage updates as soon as it
  has its backward of it (no drain); stage k (1..K) then computes its forward and backward
  with weights K - k updates old (the last stage with the newest), which are kept for the
  backward (weight stashing), and applies the update to its current weights. After the
  first K - 1 fill cycles an update costs one cycle.

The weights of a stage are whatever its Linear layers hold (a digital parameter, or the
array an in-situ optimizer pulses), so any optimizer of :mod:`xbarlab.nn.insitu` or
``torch.optim.SGD`` trains the pipeline.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..enums import coerce_enum
from ..errors import ConfigError

__all__ = ["Schedule", "PipelineLog", "split_stages", "cycles_per_update", "train_pipelined"]


class Schedule(enum.StrEnum):
    """Pipeline schedule (see the module docstring)."""

    SYNCHRONOUS = "synchronous"
    ASYNCHRONOUS = "asynchronous"


@dataclass
class PipelineLog:
    """What a pipelined run reports after each update."""

    cycles: list[int] = field(default_factory=list)
    """Clock cycles elapsed at the end of each update [1]."""
    samples: list[int] = field(default_factory=list)
    """Training samples seen at the end of each update [1]."""
    loss: list[float] = field(default_factory=list)
    """Mean training loss of the update's micro-batches [1]."""
    evaluations: list[tuple[int, int, float]] = field(default_factory=list)
    """(cycles, samples, value of ``evaluate``) every ``eval_every`` updates."""


def split_stages(model: nn.Module, stages: int) -> list[list[nn.Linear]]:
    """The model's Linear layers (module order) in ``stages`` consecutive groups whose sizes
    differ by at most one (the first groups take the extra layers)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if isinstance(stages, bool) or not isinstance(stages, int) or not 1 <= stages <= len(layers):
        raise ConfigError(f"stages must be an integer in 1..{len(layers)} (the model's Linear "
                          f"layers), got {stages!r}")
    q, r = divmod(len(layers), stages)
    out, i = [], 0
    for k in range(stages):
        n = q + (1 if k < r else 0)
        out.append(layers[i:i + n])
        i += n
    return out


def cycles_per_update(schedule: Schedule, stages: int, micro_batches: int) -> int:
    """Clock cycles of one update in the steady state: M + K - 1 (synchronous), 1
    (asynchronous, after K - 1 fill cycles at the start)."""
    schedule = coerce_enum(Schedule, schedule, "schedule")
    return micro_batches + stages - 1 if schedule is Schedule.SYNCHRONOUS else 1


def _snapshot(layers: list[nn.Linear]) -> list[torch.Tensor]:
    return [p.detach().clone() for m in layers for p in m.parameters(recurse=False)]


def _load(layers: list[nn.Linear], values: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip((p for m in layers for p in m.parameters(recurse=False)), values,
                        strict=True):
            p.copy_(v)


def train_pipelined(model: nn.Module, optimizer, micro_batches: Iterable, *, stages: int,
                    schedule: Schedule, per_update: int = 1,
                    loss_fn: Callable = nn.functional.cross_entropy,
                    evaluate: Callable[[], float] | None = None,
                    eval_every: int = 0) -> PipelineLog:
    """Train ``model`` with ``optimizer`` on a pipeline of ``stages`` accelerators.

    Parameters
    ----------
    model : torch.nn.Module
        The network (its Linear layers form the stages, :func:`split_stages`).
    optimizer
        ``torch.optim.SGD`` or an optimizer of :mod:`xbarlab.nn.insitu` over ``model``.
    micro_batches : iterable of (x, y)
        Micro-batches in the order they enter the pipeline.
    stages : int
        K, accelerators.
    schedule : Schedule
        Synchronous (M = ``per_update`` micro-batches per update) or asynchronous (one).
    per_update : int
        M, micro-batches per update of the synchronous schedule (must be 1 for the
        asynchronous one).
    loss_fn : callable
        ``loss_fn(model(x), y)``, a mean over the micro-batch.
    evaluate : callable, optional
        Called without arguments every ``eval_every`` updates (and after the last); its
        value is logged.
    eval_every : int
        Updates between evaluations (0: only after the last).

    Returns
    -------
    PipelineLog
    """
    schedule = coerce_enum(Schedule, schedule, "schedule")
    groups = split_stages(model, stages)
    if isinstance(per_update, bool) or not isinstance(per_update, int) or per_update < 1:
        raise ConfigError(f"per_update must be an integer >= 1, got {per_update!r}")
    if schedule is Schedule.ASYNCHRONOUS and per_update != 1:
        raise ConfigError(f"the asynchronous schedule updates after every micro-batch; "
                          f"per_update must be 1, got {per_update}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ConfigError(f"eval_every must be an integer >= 0, got {eval_every!r}")
    log = PipelineLog()
    # history[k]: the stage's weights after each of its last K - 1 - k updates, oldest first
    history = [deque([_snapshot(g)], maxlen=stages - k) for k, g in enumerate(groups)]
    cycles, samples, updates = stages - 1, 0, 0
    pending: list = []

    def run_update(batch_list):
        nonlocal cycles, samples, updates
        x = torch.cat([b[0] for b in batch_list])
        y = torch.cat([b[1] for b in batch_list])
        current = None
        if schedule is Schedule.ASYNCHRONOUS:
            current = [_snapshot(g) for g in groups]
            for g, h in zip(groups, history, strict=True):
                _load(g, h[0])  # K - k updates old (or the oldest kept, at the start)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if current is not None:
            for g, v in zip(groups, current, strict=True):
                _load(g, v)
        optimizer.step()
        if schedule is Schedule.ASYNCHRONOUS:
            for g, h in zip(groups, history, strict=True):
                h.append(_snapshot(g))
            cycles += 1
        else:
            # M micro-batches enter one per cycle, then K - 1 cycles of drain (the first
            # update's fill is counted at the start)
            cycles += len(batch_list) + (stages - 1 if updates > 0 else 0)
        samples += int(x.shape[0])
        updates += 1
        log.cycles.append(cycles)
        log.samples.append(samples)
        log.loss.append(float(loss.detach()))
        if evaluate is not None and eval_every and updates % eval_every == 0:
            log.evaluations.append((cycles, samples, float(evaluate())))

    for mb in micro_batches:
        pending.append(mb)
        if len(pending) == per_update:
            run_update(pending)
            pending = []
    if pending:
        run_update(pending)
    if evaluate is not None and (not log.evaluations or log.evaluations[-1][0] != cycles):
        log.evaluations.append((cycles, samples, float(evaluate())))
    return log
