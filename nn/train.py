"""Training: the one training driver (:func:`train`) and what ``xbarlab train`` writes.

Fixed defaults (so runs compare): Adam, lr 1e-3, batch 32, a shuffled pass over the
training split per epoch. Seeds: one integer ``seed`` is split (numpy SeedSequence)
into independent streams for weight init, shuffling, training noise and evaluation
noise, each a :class:`torch.Generator` derived from the seed and the stream's name; the
global RNG is left alone. The evaluation stream depends on the seed only, so models
trained with different methods but the same seed are tested on the same noise draws
wherever their layer shapes agree. :func:`train` runs with
:func:`deterministic_algorithms` on and restores torch's previous setting afterwards.

Processes: ``train(..., nproc=N)`` splits the ``L`` passes of every step over ``N``
processes on this host (gloo over 127.0.0.1; :mod:`~xbarlab.nn.distributed`), each
holding a replica of the network wrapped in DistributedDataParallel and the same
generators (:class:`~xbarlab.nn.hasgd.HASGD`, "Several processes"); the network trained
on ``N`` processes equals the one trained on one up to rounding.

Threads: :func:`torch_threads` runs a block with a given torch thread count. These
networks are small: one thread is within 1.3x of the best setting on an idle machine and
many times faster than torch's default (one thread per core) when other processes keep
the cores busy, where torch's threads spin waiting for each other (README, "Threads").
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checks import MAX_THREADS
from ..errors import ConfigError, DataFormatError, OutputExistsError, malformed_file
from .data import DATASETS, Dataset, build_model, load_dataset, model_config
from .hasgd import HASGD, check_split
from .noise import GaussianNoise, NoiseModel, attach_noise, detach_noise, resample_noise
from .quant import attach_adc, calibrate_adc_ranges, detach_adc
from .tile_noise import NoiseScaling

__all__ = ["deterministic_algorithms", "torch_threads", "progress_bar", "seed_generators",
           "init_model", "TrainResult", "train",
           "save_trained", "load_trained", "accuracy", "evaluate_noise", "train_and_evaluate",
           "resolve_noise_scaling", "scaling_record",
           "WEIGHTS_NAME", "METRICS_NAME", "BATCH_SIZE", "LEARNING_RATE"]

WEIGHTS_NAME = "model.pt"
METRICS_NAME = "metrics.json"
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
_STREAMS = ("init", "shuffle", "noise", "eval")


@contextlib.contextmanager
def deterministic_algorithms(enabled: bool = True, *, warn_only: bool = False) -> Iterator[None]:
    """Run a block with ``torch.use_deterministic_algorithms(enabled, warn_only=warn_only)``.

    On exit torch's previous setting (and its ``warn_only`` flag) is restored, whatever
    happened inside the block.
    """
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


def _check_threads(n) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int)
                          or not 1 <= n <= MAX_THREADS):
        raise ConfigError(f"threads must be an integer in [1, {MAX_THREADS}] or None, got {n!r}")


def _check_counts(samples, epochs, nproc, antithetic, threads) -> None:
    """The integer options of :func:`train_and_evaluate`, checked before any work."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ConfigError(f"samples must be an integer >= 0, got {samples!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"epochs must be an integer >= 0, got {epochs!r}")
    check_split(samples, nproc)
    if antithetic and samples % 2:
        raise ConfigError(f"antithetic pairs need an even number of samples, got L={samples}")
    _check_threads(threads)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(n)``; restore the previous count on exit.

    ``n``: threads (1 to :data:`~xbarlab.checks.MAX_THREADS`), or None to leave torch's
    setting alone.
    """
    _check_threads(n)
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def progress_bar(progress: bool | None, **kw):
    """A tqdm bar on stderr: ``progress`` True shows it, False hides it, None shows it only
    when stderr is a terminal. ``kw``: tqdm's arguments."""
    from tqdm.auto import tqdm

    return tqdm(disable=None if progress is None else not progress, **kw)


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Run a block with denormal floats flushed to zero on the CPU; restore the setting after.

    Adam's second moments and the quantile-table sampler produce denormal intermediates
    that slow CPU training by an order of magnitude; flushing them changes only values
    below 1.2e-38 (float32) / 2.2e-308 (float64). torch offers no query of the flag, so the
    previous state is taken to be off (torch's default) and restored as off.
    """
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def seed_generators(seed: int, device="cpu") -> dict[str, torch.Generator]:
    """Independent generators ``init``, ``shuffle``, ``noise``, ``eval`` derived from ``seed``.

    Stream ``name`` is child ``i`` of ``numpy.random.SeedSequence(seed)`` with ``i`` the
    name's fixed position in ``("init", "shuffle", "noise", "eval")``: each generator
    depends on the seed and its name only, not on which others are used or in what order.
    ``device``: where the ``noise`` and ``eval`` generators live (``init`` and ``shuffle``
    stay on the CPU).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    kids = np.random.SeedSequence(int(seed)).spawn(len(_STREAMS))
    out = {}
    for n, k in zip(_STREAMS, kids, strict=True):
        dev = "cpu" if n in ("init", "shuffle") else device
        out[n] = torch.Generator(device=dev).manual_seed(int(k.generate_state(1, np.uint64)[0]
                                                            & 0x7FFF_FFFF_FFFF_FFFF))
    return out


def init_model(config: dict[str, Any], generator: torch.Generator) -> nn.Module:
    """Build the model of ``config`` with weights initialised from ``generator`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return build_model(config)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch: int = 2000) -> float:
    """Fraction of ``x`` classified as ``y`` (model in eval mode)."""
    was = model.training
    model.eval()
    hit = 0
    for i in range(0, x.shape[0], batch):
        hit += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    model.train(was)
    return hit / max(x.shape[0], 1)


def evaluate_noise(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *,
                   levels: Sequence[float], make_noise: Callable[[float], NoiseModel],
                   draws: int, generator: torch.Generator) -> list[dict[str, Any]]:
    """Accuracy under ``make_noise(level)`` for each level: mean and population std over draws.

    Each draw is one independent perturbation of every noisy tensor (one programmed
    chip), kept for the whole test split.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ConfigError(f"draws must be an integer >= 1, got {draws!r}")
    out = []
    for level in levels:
        attach_noise(model, make_noise(level), generator=generator)
        try:
            accs = []
            for _ in range(draws):
                resample_noise(model)
                accs.append(accuracy(model, x, y))
        finally:
            detach_noise(model)
        a = np.asarray(accs)
        out.append({"noise": float(level), "accuracy_mean": float(a.mean()),
                    "accuracy_std": float(a.std()), "n_draws": int(draws)})
    return out


# --------------------------------------------------------------------------- training driver


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    ``model``: the trained network (eval mode); ``config``: the dict that rebuilds it
    (:func:`~xbarlab.nn.data.build_model`); ``history``: ``[{"epoch", "loss"}]`` per epoch
    (mean training loss over the epoch); ``train_time_s``: wall time of the training loop [s]
    (with several processes: rank 0's loop, starting the processes not included);
    ``clean_accuracy``: test accuracy of the noise-free network (fraction); ``info``: the
    settings recorded with the weights (JSON-serialisable).
    """

    model: nn.Module
    config: dict[str, Any]
    history: list[dict[str, float]]
    train_time_s: float
    clean_accuracy: float
    info: dict[str, Any] = field(default_factory=dict)


def resolve_noise_scaling(noise, scaling, mapping, tile) -> dict[str, Any]:
    """``{"scaling", "mapping", "tile"}`` for :class:`~xbarlab.nn.hasgd.HASGD` (see
    :func:`train`'s ``noise_scaling``, ``noise_mapping``, ``noise_tile``): TILE takes the
    mapping a noise file's noise records when none is given and refuses a different one."""
    from ..crossbar.tiling import TileConfig
    from ..enums import coerce_enum

    scaling = coerce_enum(NoiseScaling, scaling, "noise_scaling")
    if scaling is NoiseScaling.LAYER:
        if mapping is not None or tile is not None:
            raise ConfigError("noise_mapping and noise_tile apply to noise_scaling='tile'")
        return {"scaling": scaling}
    recorded = getattr(noise, "mapping", None)
    if mapping is None:
        mapping = recorded
    elif recorded is not None and mapping != recorded:
        raise ConfigError(f"noise_mapping {mapping.to_dict()} differs from the mapping the "
                          f"noise file was exported with ({recorded.to_dict()}); training "
                          "noise per tile uses the noise's own mapping")
    if mapping is None:
        raise ConfigError("noise_scaling='tile' needs noise_mapping (a "
                          "devices.mapping.WeightMapping) or a noise file that records one")
    return {"scaling": scaling, "mapping": mapping,
            "tile": TileConfig() if tile is None else tile}


def scaling_record(scaling: dict[str, Any]) -> dict[str, Any]:
    """The JSON record of :func:`resolve_noise_scaling`'s result."""
    out = {"scaling": str(scaling["scaling"])}
    if scaling["scaling"] is NoiseScaling.TILE:
        t = scaling["tile"]
        out |= {"mapping": scaling["mapping"].to_dict(),
                "tile": {"rows": t.rows, "cols": t.cols, "layout": t.layout.value}}
    return out


def _generators(seed) -> dict[str, torch.Generator]:
    if isinstance(seed, torch.Generator):
        draws = torch.randint(0, 2**62, (len(_STREAMS),), generator=seed)
        return {n: torch.Generator().manual_seed(int(d))
                for n, d in zip(_STREAMS, draws, strict=True)}
    return seed_generators(seed)


def train(data: Dataset, config: Mapping[str, Any], *, noise: NoiseModel | None, samples: int,
          epochs: int, seed: int | torch.Generator, lr: float = LEARNING_RATE,
          batch_size: int = BATCH_SIZE, antithetic: bool = False, mode: str = "auto",
          callback: Callable[[int, float, nn.Module], None] | None = None,
          out: Path | None = None, info: Mapping[str, Any] | None = None,
          progress: bool | None = False, nproc: int = 1,
          noise_scaling: NoiseScaling | str = NoiseScaling.LAYER, noise_mapping=None,
          noise_tile=None) -> TrainResult:
    """Build the network of ``config`` and train it with Adam + HA-SGD: the one training driver.

    Parameters
    ----------
    data : Dataset
        Train/test split (:func:`~xbarlab.nn.data.load_dataset`, possibly a subset).
    config : mapping
        Model configuration (:func:`~xbarlab.nn.data.model_config`).
    noise : NoiseModel or None
        Weight noise the HA-SGD samples are drawn from; ignored when ``samples == 0``.
    samples : int
        ``L``, perturbations per minibatch: 0 = plain training, 1 = noise injection [1].
    epochs : int
        Passes over the training split [1].
    seed : int or torch.Generator
        An integer: the streams of :func:`seed_generators` (``init``, ``shuffle``,
        ``noise``), so the network equals that of ``xbarlab train --seed``; a generator:
        three seeds drawn from it.
    lr : float
        Adam learning rate [1].
    batch_size : int
        Minibatch size [1].
    antithetic : bool
        Draw the ``L`` perturbations as antithetic pairs (``L`` even).
    mode : str
        HA-SGD execution mode (:class:`~xbarlab.nn.hasgd.HASGD`).
    callback : callable, optional
        ``callback(epoch, mean loss, model)`` after every epoch (model in train mode; do
        not modify it); only with ``nproc == 1``.
    out : Path, optional
        Folder to write ``model.pt`` into (:func:`save_trained`); None writes nothing.
    info : mapping, optional
        Entries added to (or replacing) the recorded settings.
    progress : bool or None
        Progress bars (epochs, batches) on stderr; None: only when stderr is a terminal.
    nproc : int
        Processes on this host (CPU, gloo) that split each step's ``samples`` passes
        (``samples`` a multiple of ``nproc``); 1 trains in this process.
    noise_scaling : NoiseScaling or str
        Reference magnitude of the training noise (:mod:`xbarlab.nn.tile_noise`): LAYER,
        each tensor's max|w| (default), or TILE, per tile as the evaluation maps the layer.
    noise_mapping : WeightMapping, optional
        TILE: the mapping (default: the one a noise file's ``QuantileNoise`` records; a
        different one is refused, so training uses the mapping the noise was made with).
    noise_tile : TileConfig, optional
        TILE: the tile size (default ``TileConfig()``, 256 x 256).

    Returns
    -------
    TrainResult
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ConfigError(f"samples must be an integer >= 0, got {samples!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"epochs must be an integer >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a finite number > 0, got {lr!r}")
    check_split(samples, nproc)
    if nproc > 1 and callback is not None:
        raise ConfigError(f"callback runs in this process, but with nproc={nproc} training "
                          "runs in other processes; pass callback=None")
    config = dict(config)
    scaling = resolve_noise_scaling(noise, noise_scaling, noise_mapping, noise_tile)
    gens = _generators(seed)
    fit = dict(noise=noise, samples=samples, epochs=epochs, antithetic=antithetic,
               batch_size=batch_size, lr=lr, mode=mode, progress=progress, scaling=scaling)
    with deterministic_algorithms(), flush_denormal():
        net = init_model(config, gens["init"])
        if nproc == 1:
            t0 = time.perf_counter()
            history = _fit(net, data, generators=gens, callback=callback, **fit)
            secs = time.perf_counter() - t0
        else:
            history, secs = _fit_on_ranks(net, data, config, nproc=nproc, generators=gens, **fit)
        clean = accuracy(net, data.x_test, data.y_test)
    record = {"dataset": data.name, "model": config.get("model"), "samples": samples,
              "epochs": epochs, "seed": seed if isinstance(seed, int) else None,
              "antithetic": bool(antithetic),
              "train_noise": None if noise is None or not samples else noise.to_dict(),
              "batch_size": batch_size, "optimizer": {"name": "Adam", "lr": lr}}
    if nproc > 1:
        record["nproc"] = nproc
    if scaling["scaling"] is NoiseScaling.TILE:
        record["noise_scaling"] = scaling_record(scaling)
    record.update(info or {})
    res = TrainResult(model=net, config=config, history=history, train_time_s=secs,
                      clean_accuracy=clean, info=record)
    if out is not None:
        save_trained(Path(out) / WEIGHTS_NAME, res)
    return res


def _fit_on_ranks(model: nn.Module, data: Dataset, config: dict[str, Any], *, nproc: int,
                  generators: dict[str, torch.Generator], **fit) -> tuple[list, float]:
    """:func:`_fit` on ``nproc`` new processes (gloo, 127.0.0.1) from ``model``'s weights and
    the ``generators``' states; load rank 0's result into ``model``; return ``(epoch
    losses, rank 0's loop time [s])``."""
    from .distributed import run_ranks

    # the settings' errors here, before any process starts (constructing draws nothing)
    HASGD(model, torch.optim.Adam(model.parameters(), lr=fit["lr"]),
          fit["noise"] if fit["samples"] else None, samples=fit["samples"],
          generator=generators["noise"], antithetic=fit["antithetic"], mode=fit["mode"],
          **fit["scaling"])
    states = {k: g.get_state() for k, g in generators.items()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rank0.pt"
        run_ranks(_fit_rank, nproc, config, model.state_dict(), data, states, fit,
                  torch.get_num_threads(), str(path))
        blob = torch.load(path, weights_only=True)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return blob["history"], float(blob["secs"])


def _fit_rank(rank: int, config: dict[str, Any], state: dict, data: Dataset,
              generator_states: dict, fit: dict, threads: int, path: str) -> None:
    """One rank of :func:`_fit_on_ranks` (runs in its own process, in the process group)."""
    gens = {k: torch.Generator().set_state(v) for k, v in generator_states.items()}
    with deterministic_algorithms(), flush_denormal(), torch_threads(threads):
        net = build_model(config)
        net.load_state_dict(state)
        if rank:
            fit = {**fit, "progress": False}
        t0 = time.perf_counter()
        history = _fit(net, data, generators=gens, callback=None, replicas=True, **fit)
        secs = time.perf_counter() - t0
    if rank == 0:
        torch.save({"state_dict": net.state_dict(), "history": history, "secs": secs}, path)


def _fit(model: nn.Module, data: Dataset, *, noise: NoiseModel | None, samples: int,
         epochs: int, generators: dict[str, torch.Generator], antithetic: bool, batch_size: int,
         lr: float, mode: str, callback, progress: bool | None = False, replicas: bool = False,
         scaling: dict | None = None) -> list[dict[str, float]]:
    """The training loop: Adam + HA-SGD over shuffled minibatches; returns epoch losses.

    ``replicas``: the model is one replica in the default process group (wrapped in
    DistributedDataParallel; HASGD splits the passes over the ranks).
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    net = model
    if replicas:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model)
    trainer = HASGD(net, opt, noise if samples else None, samples=samples,
                    generator=generators["noise"], antithetic=antithetic, mode=mode,
                    **(scaling or {}))
    n = data.x_train.shape[0]
    history = []
    model.train()
    epoch_bar = progress_bar(progress, total=epochs, desc="train", unit="epoch")
    batch_bar = progress_bar(progress, total=math.ceil(n / batch_size), desc="batches",
                             unit="batch", leave=False)
    with epoch_bar, batch_bar:
        for epoch in range(epochs):
            perm = torch.randperm(n, generator=generators["shuffle"])
            tot, cnt = 0.0, 0
            batch_bar.reset()
            for i in range(0, n, batch_size):
                idx = perm[i:i + batch_size]
                loss = trainer.step(data.x_train[idx], data.y_train[idx])
                tot = tot + loss * idx.numel()
                cnt += idx.numel()
                batch_bar.update()
            history.append({"epoch": epoch + 1, "loss": float(tot) / max(cnt, 1)})
            epoch_bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
            epoch_bar.update()
            if callback is not None:
                callback(epoch + 1, history[-1]["loss"], model)
    model.eval()
    return history


def save_trained(path: Path, result: TrainResult, *, extra: Mapping[str, Any] | None = None
                 ) -> Path:
    """Write ``{"state_dict", "config", "train": result.info | extra}`` to ``path`` atomically.

    :func:`load_trained` rebuilds the network from it.
    """
    from ..formats import atomic_output

    with atomic_output(Path(path), force=True) as tmp:
        torch.save({"state_dict": result.model.state_dict(), "config": result.config,
                    "train": {**result.info, **(extra or {})}}, tmp)
    return Path(path)


# --------------------------------------------------------------------- what xbarlab train does


def train_and_evaluate(*, dataset: str, model: str, noise: NoiseModel | None, samples: int,
                       epochs: int, seed: int, eval_levels: Sequence[float],
                       eval_noise: Callable[[float], NoiseModel], eval_draws: int = 10,
                       adc_bits: int | None = None, adc_last_layer: bool = True,
                       antithetic: bool = False, out: Path, force: bool = False,
                       command: str = "train", noise_source: str | None = None,
                       threads: int | None = None, progress: bool | None = False,
                       nproc: int = 1, noise_scaling: NoiseScaling | str = NoiseScaling.LAYER,
                       noise_mapping=None, noise_tile=None) -> dict[str, Any]:
    """Train (:func:`train`), evaluate under weight noise, write ``model.pt`` and ``metrics.json``.

    Parameters
    ----------
    dataset, model : str
        Names of :data:`~xbarlab.nn.data.DATASETS` and :data:`~xbarlab.nn.data.MODELS`.
    noise : NoiseModel or None
        Training noise; with ``samples == 0`` only None or ``GaussianNoise(0)``.
    samples, epochs, seed, antithetic
        As in :func:`train` (``seed`` an integer >= 0).
    eval_levels : sequence of float
        Test noise levels ``x >= 0`` (dimensionless), each evaluated as ``eval_noise(x)``.
    eval_noise : callable
        Level -> noise model (e.g. ``lambda s: GaussianNoise(s)`` or a noise file's
        ``QuantileNoise.scaled``).
    eval_draws : int
        Independent noise draws per level [1].
    adc_bits : int, optional
        Evaluate with a signed ``adc_bits``-bit ADC after every analog layer (full scale per
        layer = max |output| of the clean network on the training split).
    adc_last_layer : bool
        Whether the last layer's outputs (the logits) pass the ADC too.
    out : Path
        Output folder (manifest, ``model.pt``, ``metrics.json``); existing outputs need
        ``force``.
    command : str
        The command line recorded in the folder's manifest.
    noise_source : str, optional
        Where ``noise`` came from (a noise file's path), recorded in the metrics.
    threads : int, optional
        Torch threads for training and evaluation (:func:`torch_threads`); None leaves
        torch's setting.
    progress : bool or None
        Progress bars while training (as in :func:`train`).
    nproc : int
        Processes that split each step's ``samples`` passes (as in :func:`train`).
    noise_scaling, noise_mapping, noise_tile
        The training noise's reference magnitude (as in :func:`train`).

    Returns
    -------
    dict
        The metrics written to ``out/metrics.json``.
    """
    from ..formats import check_output_path, prepare_output_dir, write_text_atomic

    _check_counts(samples, epochs, nproc, antithetic, threads)
    if samples == 0 and noise is not None and noise != GaussianNoise(0.0):
        raise ConfigError(f"samples=0 is plain training and takes no training noise (None or "
                          f"GaussianNoise(0)); got {noise.to_dict()} (use samples=1 for noise "
                          "injection)")
    levels = [float(v) for v in eval_levels]
    if not levels or not all(math.isfinite(v) and v >= 0 for v in levels):
        raise ConfigError(f"eval_levels must be a non-empty list of finite numbers >= 0, got "
                          f"{list(eval_levels)!r}")
    if adc_bits is not None:
        attach_adc(nn.Linear(1, 1), bits=adc_bits, ranges=1.0)  # validates bits before training
    if isinstance(eval_draws, bool) or not isinstance(eval_draws, int) or eval_draws < 1:
        raise ConfigError(f"eval_draws must be an integer >= 1, got {eval_draws!r}")
    model_config(model, dataset, (1,))  # validates the model name before any work
    scaling = resolve_noise_scaling(noise, noise_scaling, noise_mapping, noise_tile)
    out = check_output_path(out, folder=True, what="output folder")
    for name in (METRICS_NAME, WEIGHTS_NAME):
        if (out / name).exists() and not force:
            raise OutputExistsError(f"{out / name} exists; pass force=True to "
                                    "replace it")
    data = load_dataset(dataset)
    prepare_output_dir(out, force=force, command=command)
    with deterministic_algorithms(), torch_threads(threads):
        n_threads = torch.get_num_threads()
        res = train(data, model_config(model, data), noise=noise, samples=samples,
                    epochs=epochs, seed=seed, antithetic=antithetic, progress=progress,
                    nproc=nproc, **{f"noise_{k}": v for k, v in scaling.items()})
        net = res.model
        adc_ranges = None
        if adc_bits is not None:
            adc_ranges = calibrate_adc_ranges(net, [data.x_train])
            attach_adc(net, bits=adc_bits, ranges=adc_ranges, last_layer=adc_last_layer)
        try:
            clean = accuracy(net, data.x_test, data.y_test)
            evals = evaluate_noise(net, data.x_test, data.y_test, levels=levels,
                                   make_noise=eval_noise, draws=eval_draws,
                                   generator=seed_generators(seed)["eval"])
        finally:
            if adc_bits is not None:
                detach_adc(net)
    adc = {"adc_bits": adc_bits, "adc_ranges": adc_ranges,
           "adc_last_layer": adc_last_layer if adc_bits is not None else None}
    metrics = {
        "eval": evals,
        "clean_accuracy": clean,
        "clean_accuracy_no_adc": res.clean_accuracy,
        "dataset": dataset, "model": model, "model_config": res.config,
        "train_noise": (noise if noise is not None else GaussianNoise(0.0)).to_dict(),
        "eval_noise_kind": eval_noise(1.0).to_dict() | (
            {"scale": "per entry"} if noise_source else {"sigma": "per entry"}),
        "samples": samples, "antithetic": antithetic, "epochs": epochs,
        "steps": epochs * math.ceil(data.x_train.shape[0] / BATCH_SIZE),
        "seed": seed, "batch_size": BATCH_SIZE, "optimizer": {"name": "Adam", "lr": LEARNING_RATE},
        **adc,
        "n_train": int(data.x_train.shape[0]), "n_test": int(data.x_test.shape[0]),
        "train_time_s": res.train_time_s, "history": res.history,
        "torch_version": torch.__version__, "torch_threads": n_threads, "nproc": nproc,
    }
    metrics |= {"noise_source": noise_source} if noise_source is not None else {}
    metrics |= ({"noise_scaling": scaling_record(scaling)}  # LAYER: metrics as they were
                if scaling["scaling"] is NoiseScaling.TILE else {})
    save_trained(out / WEIGHTS_NAME, res, extra={k: metrics[k] for k in (
        "train_noise", "samples", "epochs", "seed", "antithetic", "adc_bits", "adc_ranges")})
    write_text_atomic(out / METRICS_NAME, json.dumps(metrics, indent=2) + "\n", force=True)
    return metrics


def load_trained(path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by ``xbarlab train`` (a folder or its ``model.pt``); eval mode."""
    p = Path(path)
    if p.is_dir():
        p = p / WEIGHTS_NAME
    if not p.exists():
        raise ConfigError(f"{p} does not exist (expected the {WEIGHTS_NAME} of xbarlab train)")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise DataFormatError(f"{p} is not a model saved by xbarlab train ({exc})") from None
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise DataFormatError(f"{p} lacks 'state_dict'/'config'; not saved by xbarlab train")
    with malformed_file(p, "a model saved by xbarlab train (state_dict and config with "
                           "model, dataset, input_shape, hidden, n_classes)"):
        cfg, state = blob["config"], blob["state_dict"]
        if not isinstance(cfg, dict) or not isinstance(state, dict):
            raise DataFormatError("config or state_dict is not a dict")
        _check_weights(cfg, state)
        if cfg.get("dataset") not in DATASETS:
            raise DataFormatError(f"config dataset {cfg.get('dataset')!r} is not one of "
                                  f"{DATASETS}")
        net = build_model(cfg)
        net.load_state_dict(state)
    net.eval()
    return net, blob


def _check_weights(cfg: dict, state: dict) -> None:
    """Refuse weights whose names or shapes differ from the network ``cfg`` describes
    (compared on the meta device, so an absurd config allocates nothing) or that hold NaN
    or infinite values."""
    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        diff = sorted(set(want) ^ set(have)) or [k for k in want if want[k] != have[k]]
        k = diff[0]
        raise DataFormatError(f"weight {k!r} has shape {have.get(k, 'missing')}, the config's "
                              f"network needs {want.get(k, 'none')}")
    for k, v in state.items():
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise DataFormatError(f"weight {k!r} holds NaN or infinite values")
