"""``xbarlab crossbar``: the IR-drop and ADC study of a device model."""

from __future__ import annotations

import argparse

from ..checks import check_memory, check_number, number_type
from .options import (
    add_device_option,
    add_mapping_options,
    add_output_options,
    add_seed_option,
    add_workers_option,
    check_model_path,
    command_line,
    mapping_from_args,
    parse_floats,
    parse_integers,
)

#: The command's name on the command line.
NAME = "crossbar"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "IR-drop and ADC study: relative output error vs array size and wire resistance"
)
#: The text atop ``xbarlab crossbar --help``.
DESCRIPTION = (
    "Program random weights onto n x n arrays (differential column pairs) with a "
    "device model, solve the exact circuit for each wire resistance and report the relative "
    "output error of IR drop, ADC (max-possible and calibrated range), device and total; "
    "writes ir_drop_study.csv/.md/.png into OUT."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab crossbar``."""
    add_device_option(p, "--device", default="pcm-ibm-2020", metavar="PRESET|MODEL.h5")
    p.add_argument("--sizes", default="64,128,256,512,1024", metavar="N,N,...",
                   help="array sizes n (n x n, even; default 64,128,256,512,1024)")
    p.add_argument("--r-wire", default="0.1,0.3,1,3,10", metavar="R,R,...",
                   help="wire resistance per segment in Ohm (default 0.1,0.3,1,3,10)")
    p.add_argument("--vectors", type=number_type(integer=True, lo=1), default=16, metavar="B",
                   help="input vectors for n <= 256; max(2, B*256/n) above (default 16)")
    p.add_argument("--time", default="1h", metavar="T",
                   help="read time after programming, e.g. 1h, 1d, 3600 (default 1h)")
    p.add_argument("--v-max", type=number_type(lo=0, lo_open=True), default=0.2, metavar="V",
                   help="full-scale row voltage in V (default 0.2)")
    p.add_argument("--adc-bits", type=number_type(integer=True, lo=2, hi=24),
                   default=8, metavar="B", help="ADC bits (default 8)")
    add_mapping_options(p, range_only=True)
    add_seed_option(p)
    add_workers_option(p, default_text="every solve in this process")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--yes", action="store_true",
                   help="go on even where the memory estimate exceeds half the available "
                   "memory")
    add_output_options(p, metavar="OUT", what="output folder")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab crossbar`` with the parsed ``args``; return the exit status."""
    from .. import devices, formats, units
    from ..crossbar.study import StudyConfig, format_table, run_study, write_study
    from ..errors import ConfigError

    sizes = tuple(check_number(n, what="--sizes entries", integer=True, lo=2, hi=4096)
                  for n in parse_integers(args.sizes, "--sizes"))
    if any(n % 2 for n in sizes):
        raise ConfigError(f"--sizes entries must be even (differential column pairs), "
                          f"got {args.sizes!r}")
    r_wire = tuple(check_number(r, what="--r-wire entries", lo=0)
                   for r in parse_floats(args.r_wire, "--r-wire"))
    if not args.yes:  # node voltages of both wire layers per vector, and the cell matrix
        need = max(8.0 * n * n * (4 + 2 * (args.vectors if n <= 256
                                           else max(2, args.vectors * 256 // n)))
                   for n in sizes)
        check_memory(need, go_on="--yes",
                     what=f"--sizes up to {max(sizes)} with --vectors {args.vectors}")
    config = StudyConfig(sizes=sizes, r_wire=r_wire, vectors=args.vectors,
                         t=units.parse_duration(args.time, what="--time"), v_max=args.v_max,
                         adc_bits=args.adc_bits, seed=args.seed)
    check_model_path(args.device, "--device")
    device = devices.load(args.device)
    mapping = mapping_from_args(args, device)
    out = formats.prepare_output_dir(args.out, force=args.force, command=command_line(args))
    rows = run_study(device, config, mapping=mapping, progress=not args.no_progress,
                     workers=args.workers)
    title = (f"{args.device}, t = {args.time}, v_max = {config.v_max:g} V, "
             f"{config.adc_bits}-bit ADC, G {mapping.g_min * 1e6:.3g}-{mapping.g_max * 1e6:.3g} "
             f"µS, seed {config.seed}")
    paths = write_study(rows, out, title=title, force=True)
    print(format_table(rows), end="")
    print(f"wrote {paths['csv']}, {paths['md']} and {paths['png']}")
    return 0
