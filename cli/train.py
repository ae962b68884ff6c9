"""``xbarlab train``: train a small network with HA-SGD against weight noise."""

from __future__ import annotations

import argparse

from .options import add_output_options, add_seed_option

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
    p.add_argument("--model", required=True, choices=["mlp", "cnn"])
    p.add_argument("--train-noise", required=True, metavar="SIGMA|NOISE.h5",
                   help="σ relative to each layer's max|w| (0 = none), or a noise file")
    p.add_argument("--samples", required=True, type=int, metavar="L",
                   help="perturbations per minibatch (0 = plain training, 1 = noise injection)")
    p.add_argument("--epochs", required=True, type=int, metavar="E")
    add_seed_option(p, required=True)
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
    p.add_argument("--train-time", default=None, metavar="T",
                   help="with a noise file: train against its table at time T (e.g. 1d); "
                   "default: the mixture of all its times")
    add_output_options(p, flags=("--out",), metavar="DIR", what="output folder",
                       force_help="replace outputs in DIR")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab train`` with the parsed ``args``; return the exit status."""
    from ..nn.train import run_training  # imports torch, only when training

    m = run_training(
        dataset=args.dataset, model=args.model, train_noise=args.train_noise,
        samples=args.samples, epochs=args.epochs, seed=args.seed, eval_noise=args.eval_noise,
        eval_draws=args.eval_draws, train_shift=args.train_shift, eval_shift=args.eval_shift,
        adc_bits=args.adc_bits, antithetic=args.antithetic, out=args.out, force=args.force,
        noise_time=args.train_time,
        # every setting, defaults included, so the manifest documents the run in full
        command="train " + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
            for k, v in vars(args).items()
            if k not in ("command", "handler", "argv") and v is not None and v is not False),
    )
    rows = ", ".join(f"{e['noise']:g}: {e['accuracy_mean']:.3f}±{e['accuracy_std']:.3f}"
                     for e in m["eval"])
    print(f"clean accuracy {m['clean_accuracy']:.4f}; under noise {rows}")
    print(f"wrote {args.out}/metrics.json and {args.out}/model.pt ({m['train_time_s']:.1f} s)")
    return 0
