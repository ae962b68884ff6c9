"""``xbarlab train``: train a small network with HA-SGD against weight noise."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ..checks import MAX_THREADS, number_type
from .options import add_output_options, add_seed_option, check_model_path, parse_array_size

#: The command's name on the command line.
NAME = "train"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "train a small network with HA-SGD against weight noise; write metrics.json"
)
#: The text atop ``xbarlab train --help``.
DESCRIPTION = (
    "Train digits/MNIST-5k/MNIST-1D networks with Hessian-Aware SGD (L weight "
    "perturbations per minibatch) and evaluate their accuracy under weight noise."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab train``."""
    p.add_argument("--dataset", required=True, choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--model", required=True, choices=["mlp", "cnn", "resnet"])
    p.add_argument("--train-noise", required=True, metavar="SIGMA|NOISE.h5",
                   help="σ relative to each layer's max|w| (0 = none), or a noise file")
    p.add_argument("--samples", required=True, type=number_type(integer=True, lo=0), metavar="L",
                   help="perturbations per minibatch (0 = plain training, 1 = noise injection)")
    p.add_argument("--epochs", required=True, type=number_type(integer=True, lo=0), metavar="E")
    add_seed_option(p, required=True)
    p.add_argument("--eval-noise", required=True, metavar="X,X,...",
                   help="test noise levels (σ, same convention as --train-noise)")
    p.add_argument("--eval-draws", type=number_type(integer=True, lo=1), default=10, metavar="N",
                   help="independent noise draws per test level (default 10)")
    p.add_argument("--train-shift", type=number_type(), default=0.0, metavar="F",
                   help="mean shift during training, a fraction of each weight")
    p.add_argument("--eval-shift", type=number_type(), default=0.0, metavar="F",
                   help="mean shift during evaluation, a fraction of each weight")
    p.add_argument("--adc-bits", type=number_type(integer=True, lo=2, hi=24), default=None,
                   metavar="B",
                   help="quantize each layer's output to B bits at evaluation (range per "
                   "layer = max |output| of the clean net on the training split)")
    p.add_argument("--antithetic", action="store_true",
                   help="draw the L perturbations as antithetic pairs (±z); L must be even")
    p.add_argument("--train-time", default=None, metavar="T",
                   help="with a noise file: train against its table at time T (e.g. 1d); "
                   "default: the mixture of all its times")
    p.add_argument("--noise-scaling", choices=["layer", "tile"], default="layer",
                   help="training noise relative to each layer's max|w| (layer, default) or to "
                   "each tile's, as the evaluation maps the layer (tile: the noise file's "
                   "mapping, or with σ one differential pair per weight and --mapping-scaling)")
    p.add_argument("--tile", default="256x256", metavar="ROWSxCOLS",
                   help="tile size for --noise-scaling tile (default 256x256; differential "
                   "column pairs)")
    p.add_argument("--mapping-scaling", choices=["tile", "column"], default="tile",
                   help="with σ and --noise-scaling tile: one weight scale per tile or per "
                   "column (a noise file brings its own)")
    p.add_argument("--nproc", type=number_type(integer=True, lo=1), default=1, metavar="N",
                   help="processes on this host (gloo over 127.0.0.1) that split each step's "
                   "L passes; L must be a multiple of N (default 1)")
    add_threads_option(p)
    add_output_options(p, flags=("--out",), metavar="DIR", what="output folder",
                       force_help="replace outputs in DIR")
    p.set_defaults(handler=run)


#: ``xbarlab train``'s ``--threads`` default: one per core. With the short OpenMP spin the
#: command line sets (:func:`xbarlab.cli.short_openmp_spin`) it is near the best setting
#: both on an idle machine and when other processes keep the cores busy (README,
#: "Threads"); ``evaluate`` and ``export-noise`` default to it as well.
DEFAULT_THREADS = 0


def add_threads_option(p: argparse.ArgumentParser, default: int = DEFAULT_THREADS) -> None:
    """Declare ``--threads N`` (compute threads of torch and of the device kernels)."""
    what = "one per core" if default == 0 else str(default)
    p.add_argument("--threads", type=number_type(integer=True, lo=0, hi=MAX_THREADS),
                   default=default, metavar="N",
                   help=f"compute threads for torch and the device kernels (default {what}; "
                   "0 = one per core)")


def threads_from_args(args: argparse.Namespace) -> int | None:
    """``--threads``: the thread count, or None for the libraries' default (``0``)."""
    from ..errors import ConfigError

    n = args.threads
    if n < 0:
        raise ConfigError(f"--threads must be >= 0 (0 = one per core), got {n}")
    return n or None


@contextlib.contextmanager
def compute_threads(n: int | None):
    """Run a block with ``n`` torch threads (if torch is loaded) and ``n`` Numba threads (at
    most Numba's pool size); restore both counts afterwards. None: no change.
    """
    with contextlib.ExitStack() as stack:
        if n is not None and "torch" in sys.modules:
            from ..nn.train import torch_threads

            stack.enter_context(torch_threads(n))
        if n is not None:
            import numba

            before = numba.get_num_threads()
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            stack.callback(numba.set_num_threads, before)
        yield


def parse_train_noise(value: str):
    """``--train-noise``: a σ >= 0 (float) or a path to a noise file (``.h5``/``.hdf5``)."""
    import math
    from pathlib import Path

    from ..errors import ConfigError

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
    """``--eval-noise``: comma-separated numbers >= 0."""
    import math

    from ..errors import ConfigError

    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            v = float(item)
        except ValueError:
            raise ConfigError(f"--eval-noise entry {item!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"--eval-noise entries must be finite and >= 0, got {item!r}")
        out.append(v)
    if not out:
        raise ConfigError(f"--eval-noise {value!r} lists no level")
    return out


def train_noise_from_args(args):
    """``(training noise, level -> evaluation noise, noise file or None)`` of the options."""
    from pathlib import Path

    from ..errors import ConfigError
    from ..nn.noise import GaussianNoise

    arg = parse_train_noise(args.train_noise)
    if isinstance(arg, Path):
        from ..nn.noise_file import load_noise
        from ..units import parse_duration

        if args.train_shift != 0.0 or args.eval_shift != 0.0:
            raise ConfigError("--train-shift/--eval-shift apply to σ noise; a noise file "
                              f"({arg}) carries its own mean shift")
        if not arg.exists():
            raise ConfigError(f"noise file {arg} does not exist")
        check_model_path(arg, "--train-noise")
        t = None if args.train_time is None else parse_duration(args.train_time,
                                                                  what="--train-time")
        noise = load_noise(arg, time=t)
        return noise, noise.scaled, str(arg)
    if args.train_time is not None:
        raise ConfigError(f"--train-time {args.train_time} needs a noise file as --train-noise")
    eval_shift = args.eval_shift

    def make_eval(level: float):
        return GaussianNoise(level, shift=eval_shift)

    return GaussianNoise(arg, shift=args.train_shift), make_eval, None


def noise_scaling_from_args(args, noise) -> dict:
    """``{"noise_scaling", "noise_mapping", "noise_tile"}`` of ``--noise-scaling``, ``--tile``
    and ``--mapping-scaling``: a noise file's noise keeps its own mapping; σ noise gets one
    differential pair per weight (the conductance range does not enter a σ relative to the
    weight scale)."""
    from ..crossbar.tiling import TileConfig
    from ..devices.mapping import WeightMapping
    from ..errors import ConfigError

    if args.noise_scaling == "layer":
        if args.tile != "256x256" or args.mapping_scaling != "tile":
            raise ConfigError("--tile and --mapping-scaling apply to --noise-scaling tile")
        return {}
    rows, cols = parse_array_size(args.tile, "--tile")
    mapping = getattr(noise, "mapping", None)
    if mapping is None:
        mapping = WeightMapping(g_max=1.0, scaling=args.mapping_scaling)
    elif args.mapping_scaling != "tile":
        raise ConfigError("--mapping-scaling applies to σ noise; the noise file records its "
                          "mapping's scaling")
    return {"noise_scaling": "tile", "noise_mapping": mapping,
            "noise_tile": TileConfig(rows=rows, cols=cols)}


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab train`` with the parsed ``args``; return the exit status."""
    from ..nn.train import train_and_evaluate  # imports torch, only when training

    noise, make_eval, source = train_noise_from_args(args)
    scaling = noise_scaling_from_args(args, noise)
    m = train_and_evaluate(
        dataset=args.dataset, model=args.model, noise=noise, samples=args.samples,
        epochs=args.epochs, seed=args.seed, eval_levels=parse_levels(args.eval_noise),
        eval_noise=make_eval, eval_draws=args.eval_draws, adc_bits=args.adc_bits,
        antithetic=args.antithetic, out=args.out, force=args.force, noise_source=source,
        threads=threads_from_args(args), progress=None, nproc=args.nproc, **scaling,
        # every setting, defaults included, so the manifest documents the run in full
        command="train " + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
            for k, v in vars(args).items()
            if k not in ("command", "handler", "argv") and v is not None and v is not False),
    )
    rows = ", ".join(f"{e['noise']:g}: {e['accuracy_mean']:.3f}±{e['accuracy_std']:.3f}"
                     for e in m["eval"])
    print(f"clean accuracy {m['clean_accuracy']:.4f}; under noise {rows}")
    print(f"wrote {args.out}/metrics.json and {args.out}/model.pt ({m['train_time_s']:.1f} s, "
          f"{m['torch_threads']} thread(s)"
          + (f" in each of {args.nproc} processes)" if args.nproc > 1 else ")"))
    return 0

