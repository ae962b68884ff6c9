"""``xbarlab export-noise``: weight-domain noise tables from a device model."""

from __future__ import annotations

import argparse

from ..checks import check_memory, number_type
from .options import (
    add_device_option,
    add_mapping_options,
    add_output_options,
    add_seed_option,
    check_model_path,
    mapping_from_args,
    parse_array_size,
)
from .train import add_threads_option, compute_threads, threads_from_args

#: The command's name on the command line.
NAME = "export-noise"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "derive weight-domain noise (quantile tables of Δw|w) from a device model"
)
#: The text atop ``xbarlab export-noise --help``.
DESCRIPTION = (
    "Map weights on a grid of w/max|W| to conductances (differential pairs, "
    "several pairs of significance, or a reference column: the mapping options), "
    "program the devices, read them at the given times and store quantile tables of "
    "Δw/max|W| (plus mean shift and spread) in an HDF5 noise file for `xbarlab train "
    "--train-noise`."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab export-noise``."""
    add_device_option(p, "model")
    p.add_argument("--time", action="append", required=True, metavar="T",
                   help="time after programming (e.g. 1h, 1d, 3600); repeat for several")
    p.add_argument("--compensation", choices=["none", "global"], default="none",
                   help="global drift compensation of the tables (default none)")
    p.add_argument("--samples", type=number_type(integer=True, lo=100),
                   default=200_000, metavar="N",
                   help="device pairs per (weight, time) (default 200000)")
    p.add_argument("--grid", type=number_type(integer=True, lo=2, hi=100_001),
                   default=101, metavar="M",
                   help="points of the normalised-weight grid on [-1, 1] (default 101)")
    p.add_argument("--adc-bits", type=number_type(integer=True, lo=2, hi=24),
                   default=None, metavar="B",
                   help="record the periphery's ADC resolution in the file")
    p.add_argument("--ir-drop", metavar="ROWSxCOLS@OHM", default=None,
                   help="also store the systematic IR-drop error of sample tiles, e.g. "
                   "256x256@1 (wire resistance per segment in Ohm)")
    add_seed_option(p)
    p.add_argument("--yes", action="store_true",
                   help="go on even where the memory estimate exceeds half the available "
                   "memory")
    add_mapping_options(p, extrapolation=True)
    add_threads_option(p, default=0)
    add_output_options(p, metavar="NOISE.h5", what="noise file to write")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab export-noise`` with the parsed ``args``; return the exit status."""
    from pathlib import Path

    from ..formats import check_not_input, check_output_path
    from ..units import parse_duration

    # options and paths are checked before numpy/torch-heavy imports and any work
    times = [parse_duration(t, what="--time") for t in args.time]
    if not args.yes:  # the draws of one weight at every time, and their sorted copy
        check_memory(3 * 8.0 * len(times) * args.samples, go_on="--yes",
                     what=f"--samples {args.samples} at {len(times)} time(s)")
    ir = None
    if args.ir_drop:
        ir = dict(zip(("rows", "cols", "r_wire"),
                      parse_array_size(args.ir_drop, "--ir-drop", wire=True), strict=True))
    check_model_path(args.model, "device model")
    if Path(args.model).exists():
        check_not_input(args.out, [args.model], what="noise file (-o)")
    check_output_path(args.out, force=args.force, what="noise file (-o)")

    import numpy as np

    from ..formats import Provenance
    from ..nn.export import export_noise, load_device_model

    device = load_device_model(args.model)
    mapping = mapping_from_args(args, device)
    with compute_threads(threads_from_args(args)):
        tables = export_noise(device, times, np.random.default_rng(args.seed), mapping=mapping,
                              w_grid=np.linspace(-1, 1, args.grid), n_samples=args.samples,
                              compensation=args.compensation,
                              allow_extrapolation=args.allow_extrapolation,
                              adc_bits=args.adc_bits, ir_drop=ir, device_name=str(args.model),
                              progress=None)
    prov = Provenance(method="nn.export.export_noise",
                      settings={"model": str(args.model), "times_s": times,
                                "compensation": args.compensation, "samples": args.samples,
                                "grid": args.grid, "seed": args.seed, "g_min": tables.g_min,
                                "g_max": tables.g_max, "mapping": mapping.to_dict(),
                                "ir_drop": args.ir_drop})
    tables.write(args.out, force=args.force, provenance=prov)
    per = "one device + reference column" if mapping.scheme.value == "reference" else \
        f"{mapping.n_pairs} differential pair(s)"
    print(f"mapping: {per} per weight, {mapping.scaling.value} scaling, g_min..g_max = "
          f"{mapping.g_min:.4g}..{mapping.g_max:.4g} S")
    for i, t in enumerate(tables.times):
        j = int(np.argmax(tables.w_grid))
        print(f"t = {t:g} s: mean shift at w = max|W| {tables.mean[i, j]:+.4f}, spread "
              f"{tables.std[i].min():.4f}..{tables.std[i].max():.4f} (× max|W|), "
              f"drift factor {tables.drift_factor[i]:.4f}")
    if tables.weights_map_to == "first reads":
        print("note: the model is conditioned on the first read: weights were mapped to first "
              "reads (no programming error) unless it was composed with a programming model")
    print(f"wrote {args.out}")
    return 0
