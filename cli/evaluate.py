"""``xbarlab evaluate``: accuracy of a trained network on devices over time."""

from __future__ import annotations

import argparse

from ..checks import number_type
from .options import (
    add_device_option,
    add_mapping_options,
    add_output_options,
    add_seed_option,
    add_workers_option,
    check_model_path,
    command_line,
    mapping_from_args,
    parse_array_size,
)
from .train import add_threads_option, compute_threads, threads_from_args

#: The command's name on the command line.
NAME = "evaluate"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "accuracy of a trained network programmed onto devices, vs time after programming"
)
#: The text atop ``xbarlab evaluate --help``.
DESCRIPTION = (
    "Program the weights of a model saved by `xbarlab train` through a device "
    "model and read them at several times: statistical mode (effective weights, N "
    "programmings) and circuit mode (crossbar tiles with IR drop, DAC, ADC). Writes "
    "OUT/evaluation.json and OUT/accuracy_vs_time.png."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab evaluate``."""
    p.add_argument("model_dir", metavar="MODEL_DIR", help="output folder of xbarlab train")
    add_device_option(p, "--device-model", required=True)
    p.add_argument("--times", required=True, metavar="T,T,...", help="e.g. 1s,1h,1d,1y")
    p.add_argument("--programmings", type=number_type(integer=True, lo=1), default=30, metavar="N",
                   help="independent programmings (chips); accuracy is reported as the mean "
                        "and its 95 %% t-interval over them (default 30)")
    p.add_argument("--modes", default="statistical", metavar="M,M",
                   help="statistical and/or circuit (default statistical)")
    p.add_argument("--compensation", default="none,global", metavar="C,C",
                   help="drift compensations: none, global (one factor per layer), column "
                   "(one factor per output column) (default none,global)")
    p.add_argument("--compensation-reference", choices=["ideal", "first-read"],
                   default="ideal",
                   help="what compensation compares the calibration outputs with: the ideal "
                   "product of the target weights, or the first read after programming "
                   "(default ideal)")
    p.add_argument("--tile", default="256x256", metavar="ROWSxCOLS",
                   help="crossbar tile size (default 256x256; differential column pairs)")
    p.add_argument("--r-wire", type=number_type(lo=0), default=0.0, metavar="OHM",
                   help="wire resistance per segment, circuit mode (default 0)")
    p.add_argument("--dac-bits", type=number_type(integer=True, lo=1, hi=24),
                   default=None, metavar="B", help="circuit mode")
    p.add_argument("--adc-bits", type=number_type(integer=True, lo=2, hi=24),
                   default=None, metavar="B",
                   help="circuit mode (range: maximum possible per tile)")
    p.add_argument("--circuit-programmings", type=number_type(integer=True, lo=1),
                   default=1, metavar="N")
    p.add_argument("--circuit-samples", type=number_type(integer=True, lo=1),
                   default=None, metavar="N",
                   help="test samples in circuit mode (default all)")
    p.add_argument("--bootstrap", type=number_type(integer=True, lo=0), default=0, metavar="K",
                   help="also evaluate K models drawn from the calibration's bootstrap")
    add_seed_option(p)
    add_mapping_options(p)
    add_threads_option(p, default=0)
    add_workers_option(p, default_text="every programming in this process, --threads "
                       "threads")
    add_output_options(p, metavar="OUT", what="output folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab evaluate`` with the parsed ``args``; return the exit status."""
    from ..crossbar.converters import ADC, DAC
    from ..crossbar.tiling import TileConfig
    from ..nn.evaluate import EvaluationSettings, evaluate_to_folder
    from ..nn.export import load_device_model
    from ..units import parse_durations, parse_list

    rows, cols = parse_array_size(args.tile, "--tile")
    check_model_path(args.device_model, "--device-model")
    mapping = mapping_from_args(args, load_device_model(args.device_model))
    settings = EvaluationSettings(
        times=tuple(parse_durations(args.times, what="--times")),
        programmings=args.programmings, modes=tuple(parse_list(args.modes, what="--modes")),
        compensations=tuple(parse_list(args.compensation, what="--compensation")),
        compensation_reference=args.compensation_reference,
        tile=TileConfig(rows=rows, cols=cols, r_row=args.r_wire, r_col=args.r_wire),
        mapping=mapping, dac=None if args.dac_bits is None else DAC(bits=args.dac_bits),
        adc=None if args.adc_bits is None else ADC(bits=args.adc_bits,
                                                   range_mode="max-possible"),
        circuit_programmings=args.circuit_programmings, circuit_samples=args.circuit_samples,
        bootstrap=args.bootstrap)
    with compute_threads(threads_from_args(args)):
        ev = evaluate_to_folder(model_dir=args.model_dir, device_model=args.device_model,
                                settings=settings, out=args.out, seed=args.seed,
                                force=args.force, command=command_line(args),
                                workers=args.workers)
    print(f"digital accuracy {ev['clean_accuracy']:.4f}")
    print("accuracy: mean ± half-width of its 95 % t-interval over N programmings (std)")
    for e in ev["results"]:
        ci = e.get("accuracy_ci95")
        half = f"± {0.5 * (ci[1] - ci[0]):.4f}" if ci else "(no interval)"
        print(f"{e['time']:>8} {e['mode']:<11} comp={e['compensation']:<6} "
              f"{e['model_draw']:<9} {e['accuracy_mean']:.4f} {half} "
              f"(N={e['n_programmings']}; std {e['accuracy_std']:.4f})")
    print(f"wrote {args.out}/evaluation.json and {args.out}/accuracy_vs_time.png "
          f"({ev['elapsed_s']:.1f} s)")
    return 0
