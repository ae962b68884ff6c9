"""The ``xbarlab`` command line.

Each subcommand has an ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` handler. Handlers import what they need lazily, so that
``xbarlab --help`` and ``xbarlab inspect`` import neither numba kernels nor torch.
A subcommand is listed only once it works.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import XbarlabError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xbarlab",
        description="Analog NVM compute-in-memory simulator: calibrate, solve crossbars, train.",
    )
    parser.add_argument("--version", action="version", version=f"xbarlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


# --------------------------------------------------------------------------- subcommands
# (each issue adds its own _add_<name>/_run_<name> pair and appends _add_<name> below)

_SUBCOMMANDS: list = []


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a small network with HA-SGD against weight noise; write metrics.json",
        description="Train digits/MNIST-5k/MNIST-1D networks with Hessian-Aware SGD (L weight "
        "perturbations per minibatch) and evaluate their accuracy under weight noise.",
    )
    p.add_argument("--dataset", required=True, choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--model", required=True, choices=["mlp", "cnn"])
    p.add_argument("--train-noise", required=True, metavar="SIGMA|NOISE.h5",
                   help="σ relative to each layer's max|w| (0 = none), or a noise file")
    p.add_argument("--samples", required=True, type=int, metavar="L",
                   help="perturbations per minibatch (0 = plain training, 1 = noise injection)")
    p.add_argument("--epochs", required=True, type=int, metavar="E")
    p.add_argument("--seed", required=True, type=int, metavar="S")
    p.add_argument("--eval-noise", required=True, metavar="X,X,...",
                   help="test noise levels (σ, same convention as --train-noise)")
    p.add_argument("--eval-draws", type=int, default=10, metavar="N",
                   help="independent noise draws per test level (default 10)")
    p.add_argument("--train-shift", type=float, default=0.0, metavar="F",
                   help="mean shift during training, a fraction of each weight")
    p.add_argument("--eval-shift", type=float, default=0.0, metavar="F",
                   help="mean shift during evaluation, a fraction of each weight")
    p.add_argument("--adc-bits", type=int, default=None, metavar="B",
                   help="quantize each layer's output to B bits at evaluation (range per "
                   "layer = max |output| of the clean net on the training split)")
    p.add_argument("--antithetic", action="store_true",
                   help="draw the L perturbations as antithetic pairs (±z); L must be even")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--force", action="store_true", help="replace outputs in DIR")
    p.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from .nn.train import run_training  # imports torch, only when training

    m = run_training(
        dataset=args.dataset, model=args.model, train_noise=args.train_noise,
        samples=args.samples, epochs=args.epochs, seed=args.seed, eval_noise=args.eval_noise,
        eval_draws=args.eval_draws, train_shift=args.train_shift, eval_shift=args.eval_shift,
        adc_bits=args.adc_bits, antithetic=args.antithetic, out=args.out, force=args.force,
        command="train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "train",
    )
    rows = ", ".join(f"{e['noise']:g}: {e['accuracy_mean']:.3f}±{e['accuracy_std']:.3f}"
                     for e in m["eval"])
    print(f"clean accuracy {m['clean_accuracy']:.4f}; under noise {rows}")
    print(f"wrote {args.out}/metrics.json and {args.out}/model.pt ({m['train_time_s']:.1f} s)")
    return 0


_SUBCOMMANDS.append(_add_train)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except XbarlabError as exc:
        print(f"xbarlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xbarlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
