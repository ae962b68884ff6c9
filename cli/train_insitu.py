"""``xbarlab train-insitu``: train the FCN with its weights in pulsed analog arrays."""

from __future__ import annotations

import argparse

from ..checks import number_type
from .options import add_output_options, add_seed_option
from .train import add_threads_option, compute_threads, threads_from_args

#: The command's name on the command line.
NAME = "train-insitu"
#: Its line in ``xbarlab --help``.
SUMMARY = "train a network in situ on pulsed analog arrays (Analog SGD, Tiki-Taka, digital)"
#: The text atop ``xbarlab train-insitu --help``.
DESCRIPTION = (
    "Train the fully connected network n_in-256-128-10 (sigmoid; other hidden widths with "
    "--hidden) on MNIST-5k or digits with "
    "its weights in cells of a pulsed-update device (a preset, or a JSON file written by "
    "PulsedDevice.to_json), updated by stochastic pulse trains, deterministic pulse counts "
    "or the mean field; optionally pipelined across K simulated accelerators. Writes "
    "metrics.json, report.md and report.html (accuracy vs epoch and clock cycles, weight "
    "histograms against the device's range, pulses per layer).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab train-insitu``."""
    p.add_argument("--dataset", required=True, choices=["mnist5k", "digits"])
    p.add_argument("--update", required=True,
                   choices=["digital", "analog-sgd", "tiki-taka", "chopped-tiki-taka"],
                   help="training algorithm")
    p.add_argument("--device", default="soft-bounds", metavar="PRESET|FILE.json",
                   help="pulsed device: a preset (soft-bounds, soft-bounds-ideal, "
                   "constant-step) or a JSON file (default soft-bounds)")
    p.add_argument("--tau", type=number_type(lo=0, lo_open=True), default=0.6, metavar="T",
                   help="weight-range half-width of the device (default 0.6)")
    p.add_argument("--epochs", required=True, type=number_type(integer=True, lo=1),
                   metavar="E")
    p.add_argument("--lr", type=number_type(lo=0, lo_open=True), default=0.05, metavar="LR",
                   help="learning rate (default 0.05)")
    p.add_argument("--batch", type=number_type(integer=True, lo=1), default=10, metavar="B",
                   help="micro-batch size (default 10)")
    p.add_argument("--lr-step", type=number_type(integer=True, lo=0), default=0, metavar="N",
                   help="multiply lr by --lr-decay every N epochs (default 0: never)")
    p.add_argument("--lr-decay", type=number_type(lo=0, lo_open=True), default=0.1,
                   metavar="F", help="lr factor of each --lr-step (default 0.1)")
    p.add_argument("--mode", choices=["stochastic", "pulse_count", "mean_field"],
                   default="stochastic", help="how updates become pulses (default stochastic)")
    p.add_argument("--bit-length", type=number_type(integer=True, lo=1), default=31,
                   metavar="BL", help="bits per stochastic pulse train (default 31)")
    p.add_argument("--no-update-management", action="store_true",
                   help="do not balance the input and error trains")
    p.add_argument("--transfer-lr", type=number_type(lo=0, lo_open=True), default=0.05,
                   metavar="BETA", help="Tiki-Taka: scale of a read of A into H (default 0.05)")
    p.add_argument("--transfer-every", type=number_type(integer=True, lo=1), default=1,
                   metavar="N", help="Tiki-Taka: steps between transfers (default 1)")
    p.add_argument("--columns-per-transfer", type=number_type(integer=True, lo=1), default=1,
                   metavar="N", help="Tiki-Taka: columns of A read per transfer (default 1)")
    p.add_argument("--hidden", type=hidden_type, default=None, metavar="W1,W2,...",
                   help="hidden widths of the FCN, comma-separated (default 256,128; "
                   "256,128,64 gives 4 layers for --stages 4)")
    p.add_argument("--stages", type=number_type(integer=True, lo=1), default=1, metavar="K",
                   help="pipeline stages (accelerators), at most the FCN's layers, "
                   "len(--hidden) + 1 (default 1)")
    p.add_argument("--schedule", choices=["synchronous", "asynchronous"],
                   default="synchronous", help="pipeline schedule (default synchronous)")
    p.add_argument("--micro-batches", type=number_type(integer=True, lo=1), default=1,
                   metavar="M", help="micro-batches per synchronous update (default 1)")
    add_seed_option(p)
    add_threads_option(p)
    add_output_options(p, flags=("--out",), metavar="DIR", what="output folder",
                       force_help="replace outputs in DIR")
    p.set_defaults(handler=run)


def hidden_type(text: str) -> tuple[int, ...]:
    """``--hidden``: comma-separated integers >= 1 (an ``argparse`` ``type=``)."""
    items = [t.strip() for t in text.split(",")]
    if not items or not all(t.isascii() and t.isdigit() and int(t) >= 1 for t in items):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1 (hidden "
                                         f"widths, e.g. 256,128,64), got {text!r}")
    return tuple(int(t) for t in items)


def device_from_arg(value: str):
    """``--device``: a preset name or a JSON file of a pulsed device."""
    from pathlib import Path

    from ..devices.pulsed import PulsedDevice
    from ..devices.pulsed_presets import pulsed_preset, pulsed_preset_names
    from ..errors import ConfigError, malformed_file

    if value in pulsed_preset_names():
        return pulsed_preset(value)
    p = Path(value)
    if not p.exists():
        raise ConfigError(f"--device {value!r} is neither a preset ({pulsed_preset_names()}) "
                          "nor an existing JSON file")
    with malformed_file(p, "a pulsed device (PulsedDevice.to_json)"):
        return PulsedDevice.from_json(p.read_text(encoding="utf-8"))


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab train-insitu`` with the parsed ``args``; return the exit status."""
    from ..nn.insitu import PulseSettings
    from ..nn.insitu_run import DEFAULT_HIDDEN, train_insitu

    device = None if args.update == "digital" else device_from_arg(args.device)
    tt = None
    if args.update in ("tiki-taka", "chopped-tiki-taka"):
        tt = {"transfer_lr": args.transfer_lr, "transfer_every": args.transfer_every,
              "columns_per_transfer": args.columns_per_transfer}
    command = "train-insitu " + " ".join(args.argv)
    with compute_threads(threads_from_args(args)):
        m = train_insitu(
            dataset=args.dataset, algorithm=args.update, device=device, tau=args.tau,
            epochs=args.epochs, seed=args.seed, lr=args.lr, batch=args.batch,
            hidden=DEFAULT_HIDDEN if args.hidden is None else args.hidden,
            pulses=PulseSettings(mode=args.mode, bit_length=args.bit_length,
                                 update_management=not args.no_update_management),
            stages=args.stages, schedule=args.schedule, per_update=args.micro_batches,
            lr_step=args.lr_step, lr_decay=args.lr_decay, tiki_taka=tt, out=args.out,
            force=args.force, command=command, device_source=args.device, progress=None)
    last = m["history"][-1]
    print(f"test accuracy {m['final_test_accuracy']:.4f} after {m['epochs']} epochs "
          f"({last['cycles']} cycles, {last['wall_s']:.1f} s); wrote {args.out}/metrics.json "
          "and report.md")
    return 0
