"""Training and noisy evaluation loops behind ``xbarlab train``.

Fixed settings (so runs compare): Adam, lr 1e-3, batch 32, a shuffled pass over the
training split per epoch. Seeds: one integer ``seed`` is split (numpy SeedSequence)
into independent streams for weight init, shuffling, training noise and evaluation
noise, each a :class:`torch.Generator`; the global RNG is left alone. The evaluation
stream depends on the seed only, so models trained with different methods but the
same seed are tested on the same noise draws wherever their layer shapes agree.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, DataFormatError, OutputExistsError
from .data import Dataset, build_model, load_dataset, model_config
from .hasgd import HASGD
from .noise import GaussianNoise, NoiseModel, attach_noise, detach_noise, resample_noise
from .quant import attach_adc, calibrate_adc_ranges, detach_adc

__all__ = ["seed_generators", "train_model", "accuracy", "evaluate_noise", "run_training",
           "load_trained", "WEIGHTS_NAME", "METRICS_NAME"]

WEIGHTS_NAME = "model.pt"
METRICS_NAME = "metrics.json"
BATCH_SIZE = 32
LEARNING_RATE = 1e-3


def seed_generators(seed: int, device="cpu") -> dict[str, torch.Generator]:
    """Independent generators ``init``, ``shuffle``, ``noise``, ``eval`` derived from ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    names = ("init", "shuffle", "noise", "eval")
    kids = np.random.SeedSequence(int(seed)).spawn(len(names))
    out = {}
    for n, k in zip(names, kids, strict=True):
        dev = "cpu" if n in ("init", "shuffle") else device
        out[n] = torch.Generator(device=dev).manual_seed(int(k.generate_state(1, np.uint64)[0]
                                                            & 0x7FFF_FFFF_FFFF_FFFF))
    return out


def init_model(config: dict[str, Any], generator: torch.Generator) -> nn.Module:
    """Build the model of ``config`` with weights initialised from ``generator`` only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return build_model(config)


def train_model(model: nn.Module, data: Dataset, *, noise: NoiseModel | None, samples: int,
                epochs: int, generators: dict[str, torch.Generator], antithetic: bool = False,
                batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE, mode: str = "auto",
                callback: Callable[[int, float], None] | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place with Adam + HA-SGD (``samples=0``: plain); return epoch losses."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"epochs must be an integer >= 0, got {epochs!r}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    trainer = HASGD(model, opt, noise if samples else None, samples=samples,
                    generator=generators["noise"], antithetic=antithetic, mode=mode)
    n = data.x_train.shape[0]
    history = []
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=generators["shuffle"])
        tot, cnt = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            loss = trainer.step(data.x_train[idx], data.y_train[idx])
            tot = tot + loss * idx.numel()
            cnt += idx.numel()
        history.append({"epoch": epoch + 1, "loss": float(tot) / max(cnt, 1)})
        if callback is not None:
            callback(epoch + 1, history[-1]["loss"])
    model.eval()
    return history


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
        raise ConfigError(f"eval draws must be an integer >= 1, got {draws!r}")
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


# --------------------------------------------------------------------------- CLI driver


def parse_noise_arg(value: str) -> float | Path:
    """``--train-noise``: a σ ≥ 0 (float) or a path to a noise file (``.h5``/``.hdf5``)."""
    try:
        sigma = float(value)
    except ValueError:
        p = Path(value)
        if p.suffix.lower() in (".h5", ".hdf5") or p.exists():
            return p
        raise ConfigError(f"--train-noise {value!r} is neither a number (σ) nor a noise file "
                          "(.h5)") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise ConfigError(f"--train-noise σ must be a finite number >= 0, got {value!r}")
    return sigma


def parse_levels(value: str) -> list[float]:
    """``--eval-noise``: comma-separated numbers ≥ 0."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            v = float(part)
        except ValueError:
            raise ConfigError(f"--eval-noise entry {part!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"--eval-noise entries must be finite and >= 0, got {part!r}")
        out.append(v)
    if not out:
        raise ConfigError(f"--eval-noise {value!r} lists no level")
    return out


def load_noise_file(path: Path, *, scale: float = 1.0, time: str | float | None = None
                    ) -> NoiseModel:
    """The noise model of a device-derived noise file (``xbarlab export-noise``, nn part 2).

    ``time``: one stored time (s or a duration such as ``"1d"``); None: the mixture of
    all stored times. ``scale`` multiplies the spread.
    """
    if not Path(path).exists():
        raise ConfigError(f"noise file {path} does not exist")
    try:
        from .noise_file import load_noise
    except ImportError:  # pragma: no cover - part 2 absent
        raise ConfigError(f"{path}: noise files need xbarlab.nn.noise_file (nn part 2)") from None
    return load_noise(path, time=time, scale=scale)


def run_training(*, dataset: str, model: str, train_noise: str, samples: int, epochs: int,
                 seed: int, eval_noise: str, eval_draws: int = 10, train_shift: float = 0.0,
                 eval_shift: float = 0.0, adc_bits: int | None = None, antithetic: bool = False,
                 out: Path, force: bool = False, command: str = "train",
                 noise_time: str | None = None) -> dict[str, Any]:
    """Everything ``xbarlab train`` does; returns the metrics dict written to ``out``."""
    from ..formats import atomic_output, prepare_output_dir, write_text_atomic

    noise_arg = parse_noise_arg(train_noise)
    levels = parse_levels(eval_noise)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ConfigError(f"--samples L must be an integer >= 0, got {samples!r}")
    for name, v in (("--train-shift", train_shift), ("--eval-shift", eval_shift)):
        if not math.isfinite(v):
            raise ConfigError(f"{name} must be finite, got {v!r}")
    if samples == 0 and (noise_arg != 0.0 or train_shift != 0.0):
        raise ConfigError(f"--samples 0 is plain training and needs --train-noise 0 and no "
                          f"--train-shift; got --train-noise {train_noise} --train-shift "
                          f"{train_shift} (use --samples 1 for noise injection)")
    if adc_bits is not None and not 1 <= adc_bits <= 24:
        raise ConfigError(f"--adc-bits must be in 1..24, got {adc_bits}")
    if epochs < 0:
        raise ConfigError(f"--epochs must be >= 0, got {epochs}")
    if isinstance(eval_draws, bool) or not isinstance(eval_draws, int) or eval_draws < 1:
        raise ConfigError(f"--eval-draws: eval draws must be an integer >= 1, got {eval_draws!r}")
    noise_source = None
    if isinstance(noise_arg, Path):
        if train_shift != 0.0 or eval_shift != 0.0:
            raise ConfigError("--train-shift/--eval-shift apply to σ noise; a noise file "
                              f"({noise_arg}) carries its own mean shift")
        noise_source = str(noise_arg)
        train_model_noise = load_noise_file(noise_arg, time=noise_time)

        def make_eval(level: float) -> NoiseModel:
            return train_model_noise.scaled(level)
    else:
        if noise_time is not None:
            raise ConfigError(f"--train-time {noise_time} needs a noise file as --train-noise")
        train_model_noise = GaussianNoise(float(noise_arg), shift=train_shift)

        def make_eval(level: float) -> NoiseModel:
            return GaussianNoise(level, shift=eval_shift)

    model_config(model, dataset, (1,))  # validates the model name before any work
    out = Path(out)
    for name in (METRICS_NAME, WEIGHTS_NAME):
        if (out / name).exists() and not force:
            raise OutputExistsError(f"{out / name} exists; pass --force to replace it")
    data = load_dataset(dataset)
    cfg = model_config(model, data)
    prepare_output_dir(out, force=force, command=command)

    if hasattr(torch, "use_deterministic_algorithms"):
        torch.use_deterministic_algorithms(True)
    gens = seed_generators(seed)
    net = init_model(cfg, gens["init"])
    t0 = time.perf_counter()
    history = train_model(net, data, noise=train_model_noise, samples=samples, epochs=epochs,
                          generators=gens, antithetic=antithetic)
    train_time = time.perf_counter() - t0

    adc_ranges = None
    clean_float = accuracy(net, data.x_test, data.y_test)
    if adc_bits is not None:
        adc_ranges = calibrate_adc_ranges(net, [data.x_train])
        attach_adc(net, bits=adc_bits, ranges=adc_ranges)
    try:
        clean = accuracy(net, data.x_test, data.y_test)
        evals = evaluate_noise(net, data.x_test, data.y_test, levels=levels, make_noise=make_eval,
                               draws=eval_draws, generator=gens["eval"])
    finally:
        if adc_bits is not None:
            detach_adc(net)
    steps = epochs * math.ceil(data.x_train.shape[0] / BATCH_SIZE)
    metrics = {
        "eval": evals,
        "clean_accuracy": clean,
        "clean_accuracy_no_adc": clean_float,
        "dataset": dataset, "model": model, "model_config": cfg,
        "train_noise": train_model_noise.to_dict(),
        "eval_noise_kind": make_eval(1.0).to_dict() | (
            {"scale": "per entry"} if noise_source else {"sigma": "per entry"}),
        "samples": samples, "antithetic": antithetic, "epochs": epochs, "steps": steps,
        "seed": seed, "batch_size": BATCH_SIZE, "optimizer": {"name": "Adam", "lr": LEARNING_RATE},
        "adc_bits": adc_bits, "adc_ranges": adc_ranges,
        "n_train": int(data.x_train.shape[0]), "n_test": int(data.x_test.shape[0]),
        "train_time_s": train_time, "history": history,
        "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
    }
    if noise_source is not None:
        metrics["noise_source"] = noise_source
    with atomic_output(out / WEIGHTS_NAME, force=True) as tmp:
        torch.save({"state_dict": net.state_dict(), "config": cfg,
                    "train": {k: metrics[k] for k in ("train_noise", "samples", "epochs", "seed",
                                                      "antithetic", "adc_bits", "adc_ranges")}},
                   tmp)
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
    net = build_model(blob["config"])
    net.load_state_dict(blob["state_dict"])
    net.eval()
    return net, blob
