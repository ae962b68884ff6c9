"""``xbarlab run``: the whole chain from measured data to an evaluated network."""

from __future__ import annotations

import argparse

from .options import add_output_options, command_line

#: The command's name on the command line.
NAME = "run"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "the whole chain: measured data -> device model -> crossbar study -> noise -> "
    "HA-SGD -> accuracy vs time -> report"
)
#: The text atop ``xbarlab run --help``.
DESCRIPTION = (
    "Run the pipeline of CONFIG.toml (default: the shipped example) into OUT: "
    "load measurements, calibrate a device model, crossbar IR-drop/ADC study, export "
    "weight-domain noise, train plain SGD and HA-SGD, evaluate accuracy over time, write "
    "report.md/report.html. Finished stages are cached in OUT; a rerun resumes and reruns "
    "only what a changed input or setting affects."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab run``."""
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="run configuration (default: data/examples/example_config.toml)")
    add_output_options(p, required=False, metavar="OUT",
                       what="output folder (default: ./xbarlab-run)",
                       force_help="use OUT even if it is a non-empty folder xbarlab did not create")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they show only when stderr is a terminal anyway)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab run`` with the parsed ``args``; return the exit status."""
    from .. import pipeline  # numba/torch load inside the stages that need them

    config, path = pipeline.load_config(args.config)
    out = args.out if args.out is not None else pipeline.DEFAULT_OUT
    print(f"xbarlab run: {path} -> {out}")
    res = pipeline.run_pipeline(config, out, force=args.force,
                                progress=False if args.no_progress else None,
                                command=command_line(args))
    ran = sum(v == "ran" for v in res["status"].values())
    print(f"{ran} stage(s) ran, {len(res['status']) - ran} cached; report: "
          f"{res['report'].resolve() if res['report'] else '(none)'}")
    return 0
