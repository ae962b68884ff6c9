"""``xbarlab ppa``: accuracy against energy per inference over ADC bits, array size and
conductance range, with the Pareto front; ``--anchors`` compares the shipped chip
descriptions with their published figures."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..checks import number_type
from .options import (
    add_device_option,
    add_output_options,
    add_seed_option,
    add_workers_option,
    check_model_path,
    command_line,
    parse_floats,
    parse_integers,
)
from .train import add_threads_option, compute_threads, threads_from_args

#: The command's name on the command line.
NAME = "ppa"
#: Its line in ``xbarlab --help``.
SUMMARY = "accuracy vs energy per inference over ADC bits, array size and conductance range"
#: The text atop ``xbarlab ppa --help``.
DESCRIPTION = (
    "Evaluate a model saved by `xbarlab train` in circuit mode at every point of a sweep "
    "(ADC bits x array size x conductance range) and cost each point's inference on a chip "
    "description (energy, latency, area from the exact circuit model, the chip's node file "
    "and the ADC survey). Writes OUT/ppa.json, OUT/report.md, OUT/report.html and "
    "OUT/plots/ (Pareto front, energy breakdown). With --anchors, print the shipped chips "
    "against their published figures and exit."
)


def default_survey() -> Path:
    """The ADC survey folder: ``$XBARLAB_SHARED/data/adc_survey``, else ``shared/`` beside
    the repository."""
    root = os.environ.get("XBARLAB_SHARED")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / "shared"
    return base / "data" / "adc_survey"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab ppa``."""
    p.add_argument("model_dir", metavar="MODEL_DIR", nargs="?",
                   help="output folder of xbarlab train (not with --anchors)")
    p.add_argument("--anchors", action="store_true",
                   help="print the shipped chips against their published figures and exit")
    p.add_argument("--node-value", action="append", metavar="NODE:FIELD=VALUE",
                   help="with --anchors: give the chips that take FIELD from node NODE another "
                   "value (SI units, e.g. 14nm:v_read=0.2); repeatable")
    p.add_argument("--breakdown", action="store_true",
                   help="with --anchors: also print each anchor's energy per array product by "
                   "component [nJ] and its latency [ns]")
    add_device_option(p, "--device-model")
    p.add_argument("--chip", default="hermes-core", metavar="NAME|FILE",
                   help="chip description: a shipped one (hermes-core, hermes-chip, neurram, "
                   "aon-cim) or a TOML file (default hermes-core)")
    p.add_argument("--adc-bits", default="4,6,8", metavar="B,B,...",
                   help="ADC resolutions (default 4,6,8; 3 bits lies below the survey's "
                   "span at these rates and needs --extrapolate)")
    p.add_argument("--tiles", default="64,256", metavar="S,S,...",
                   help="array sizes: S x S physical tiles of differential column pairs "
                   "(default 64,256)")
    p.add_argument("--g-max", default=None, metavar="S,S,...",
                   help="highest conductances of the mapping [S] (default: half and all of "
                   "the device model's range)")
    p.add_argument("--time", default="1d", metavar="T", help="read time after programming "
                   "(default 1d)")
    p.add_argument("--programmings", type=number_type(integer=True, lo=1), default=2,
                   metavar="N", help="programmings per point (default 2)")
    p.add_argument("--circuit-samples", type=number_type(integer=True, lo=1), default=100,
                   metavar="N", help="test samples per point (default 100)")
    p.add_argument("--r-wire", type=number_type(lo=0), default=0.0, metavar="OHM",
                   help="wire resistance per segment (default 0)")
    p.add_argument("--compensation", choices=["none", "global", "column"], default="global",
                   help="drift compensation scored (default global)")
    p.add_argument("--adc-survey", default=None, metavar="DIR",
                   help="ADC survey folder (default $XBARLAB_SHARED/data/adc_survey)")
    p.add_argument("--extrapolate", action="store_true",
                   help="allow ADC bits outside the survey's span")
    add_seed_option(p)
    add_threads_option(p, default=0)
    add_workers_option(p, default_text="every programming in this process")
    add_output_options(p, required=False, metavar="OUT", what="output folder")
    p.set_defaults(handler=run)


def parse_node_values(items) -> dict[tuple[str, str], float]:
    """``["14nm:v_read=0.2", ...]`` -> ``{("14nm", "v_read"): 0.2}`` (SI units)."""
    from ..errors import ConfigError

    out = {}
    for it in items or ():
        node, sep, rest = it.partition(":")
        name, eq, val = rest.partition("=")
        try:
            v = float(val)
        except ValueError:
            v = float("nan")
        if not (sep and eq and node and name) or v != v or v in (float("inf"), -float("inf")):
            raise ConfigError(f"--node-value {it!r}: expected NODE:FIELD=VALUE with a finite "
                              "number in SI units, e.g. 14nm:v_read=0.2")
        out[(node, name)] = v
    return out


def _anchors(survey_dir: Path, node_values: dict, breakdown: bool) -> int:
    from ..energy import fit_adc_area, load_adc_survey
    from ..energy.anchors import anchor_rows, anchor_table, breakdown_table, node_value_table

    s = load_adc_survey(survey_dir)
    rows = anchor_rows(s, fit_adc_area(s), node_values=node_values)
    print(anchor_table(rows))
    print()
    if breakdown:
        print(breakdown_table(rows))
        print()
    print(node_value_table() if not node_values else
          "node values changed: " + ", ".join(f"{n}:{f}={v:g}"
                                              for (n, f), v in node_values.items()))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab ppa`` with the parsed ``args``; return the exit status."""
    from ..energy.chip import load_chip
    from ..errors import ConfigError
    from ..pipeline.ppa import PpaSweep, run_ppa
    from ..units import parse_duration

    survey = Path(args.adc_survey) if args.adc_survey else default_survey()
    if not survey.is_dir():
        raise ConfigError(f"--adc-survey {str(survey)!r} is not a folder (the ADC survey's "
                          "isscc.csv and vlsi.csv)")
    node_values = parse_node_values(args.node_value)
    if (node_values or args.breakdown) and not args.anchors:
        raise ConfigError(f"{'--node-value' if node_values else '--breakdown'} is for "
                          "--anchors only")
    if args.anchors:
        return _anchors(survey, node_values, args.breakdown)
    for opt, v in (("MODEL_DIR", args.model_dir), ("--device-model", args.device_model),
                   ("--out", args.out)):
        if v is None:
            raise ConfigError(f"{opt} is required (unless --anchors)")
    check_model_path(args.device_model, "--device-model")
    sweep = PpaSweep(
        adc_bits=parse_integers(args.adc_bits, "--adc-bits"),
        tiles=parse_integers(args.tiles, "--tiles"),
        g_max=None if args.g_max is None else parse_floats(args.g_max, "--g-max"),
        time=parse_duration(args.time, what="--time"), programmings=args.programmings,
        circuit_samples=args.circuit_samples, r_wire=args.r_wire,
        compensation=args.compensation)
    chip = load_chip(args.chip)
    try:
        with compute_threads(threads_from_args(args)):
            res = run_ppa(model_dir=args.model_dir, device_model=args.device_model, chip=chip,
                          survey_dir=survey, sweep=sweep, out=args.out, seed=args.seed,
                          extrapolate=args.extrapolate, force=args.force,
                          command=command_line(args), workers=args.workers,
                          progress=lambda line: print(line, file=sys.stderr, flush=True))
    except ConfigError as exc:
        if "extrapolate=True" not in str(exc):
            raise
        raise ConfigError(str(exc).replace("extrapolate=True", "--extrapolate")) from None
    front = [p for p in res["points"] if p["pareto"]]
    print(f"{len(res['points'])} points, {len(front)} on the Pareto front:")
    for p in sorted(front, key=lambda p: p["energy_J"]):
        print(f"  adc {p['adc_bits']} bits, {p['tile']}x{p['tile']}, g_max "
              f"{p['g_max_S'] * 1e6:.3g} uS: accuracy {p['accuracy']:.4f}, "
              f"{p['energy_J'] * 1e9:.4g} nJ per inference")
    print(f"wrote {args.out}/ppa.json, report.md, report.html and plots/ "
          f"({res['elapsed_s']:.1f} s)")
    return 0
