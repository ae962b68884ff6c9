"""The ``xbarlab`` command line.

Each subcommand is an ``_add_<name>(p)`` function, registered with :func:`_subcommand`, that
declares its arguments and sets its ``_run_<name>`` handler. Options that several subcommands
share (measurement tables, output, device model, weight mapping, seed) are declared once below,
with the converters of their values. Handlers import what they need lazily, so that
``xbarlab --help`` and ``xbarlab inspect`` import neither numba kernels nor torch.
A subcommand is listed only once it works.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import XbarlabError

__all__ = [
    "main",
    "build_parser",
    "add_measurement_options",
    "measurement_options_from_args",
    "read_measurements_from_args",
    "add_output_options",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xbarlab",
        description="Analog NVM compute-in-memory simulator: calibrate, solve crossbars, train.",
    )
    parser.add_argument("--version", action="version", version=f"xbarlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary, description, add in _SUBCOMMANDS:
        add(sub.add_parser(name, help=summary, description=description))
    return parser


# --------------------------------------------------------------------------- subcommands

# (name, one-line help, description, _add_<name>), in the order `xbarlab --help` lists them
_SUBCOMMANDS: list = []


def _subcommand(name: str, *, summary: str, description: str):
    """Register the decorated ``_add_<name>(p)`` as subcommand ``name``: ``summary`` is its line
    in ``xbarlab --help``, ``description`` the text atop ``xbarlab <name> --help``."""
    def register(add):
        _SUBCOMMANDS.append((name, summary, description, add))
        return add
    return register


# -- shared options: every command that reads measurements or writes files uses these ------


def add_measurement_options(parser: argparse.ArgumentParser, *, inputs: bool = True) -> None:
    """Declare the measurement-table options (and, if ``inputs``, the FILE arguments).

    Read them back with :func:`measurement_options_from_args` or
    :func:`read_measurements_from_args`.
    """
    if inputs:
        parser.add_argument("inputs", nargs="+", metavar="FILE",
                            help="measurement file(s): CSV/TSV (plain or .gz), HDF5, .npz; "
                            "several files are read as one table")
    g = parser.add_argument_group("measurement tables")
    g.add_argument("--columns", metavar="ROLE=SOURCE,...",
                   help="source column of each role, by header name or 0-based position; "
                   "roles: device, g, time, time_point, g_target, g_initial, level, cycle, "
                   "v_read, temperature (a header named like a role needs no mapping)")
    g.add_argument("--units", metavar="ROLE=UNIT,...",
                   help="unit of a column: S mS uS nS, Ohm kOhm MOhm (-> conductance), "
                   "s ms min h d y (y = 365.25 d), V mV, K C; default SI")
    g.add_argument("--wide", action="store_true",
                   help="one column per programmed target, its value in the header "
                   "(same as --layout wide)")
    g.add_argument("--layout", choices=["long", "wide", "timeseries"], default=None,
                   help="table layout (default long: one row per read)")
    g.add_argument("--sample-rate", type=float, metavar="HZ",
                   help="timeseries layout: samples per second along a row")
    g.add_argument("--samples-from", type=int, metavar="K",
                   help="timeseries layout: 0-based column where the samples start")
    g.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the first line is a header (default: detect)")
    g.add_argument("--same-devices", action="store_true",
                   help="equal device labels in different files are the same device")
    g.add_argument("--strict", action="store_true",
                   help="reject reads below 0 S (default: keep and count them)")


def measurement_options_from_args(args: argparse.Namespace) -> dict:
    """Keyword arguments for :func:`xbarlab.formats.read_measurements` from parsed options."""
    from .errors import ConfigError

    layout = args.layout or "long"
    if args.wide:
        if args.layout not in (None, "wide"):
            raise ConfigError(f"--wide contradicts --layout {args.layout}")
        layout = "wide"
    return {
        "columns": args.columns,
        "units": args.units,
        "layout": layout,
        "sample_rate": args.sample_rate,
        "samples_from": args.samples_from,
        "strict": args.strict,
        "header": args.header,
        "same_devices": args.same_devices,
    }


def read_measurements_from_args(args: argparse.Namespace, paths=None):
    """Read ``paths`` (default ``args.inputs``) with the measurement options of ``args``."""
    from .formats import read_measurements

    return read_measurements(args.inputs if paths is None else paths,
                             **measurement_options_from_args(args))


def _measurement_options_given(args: argparse.Namespace) -> list[str]:
    """The measurement-table options on the command line (values set, or flags on)."""
    given = []
    for name in ("columns", "units", "layout", "sample_rate", "samples_from", "header"):
        if getattr(args, name, None) is not None:
            given.append("--" + name.replace("_", "-"))
    for name in ("wide", "strict", "same_devices"):
        if getattr(args, name, False):
            given.append("--" + name.replace("_", "-"))
    return given


def add_output_options(parser: argparse.ArgumentParser, *, required: bool = True,
                       metavar: str = "PATH", what: str = "output",
                       flags: tuple[str, ...] = ("-o", "--out"),
                       force_help: str = "overwrite an existing output (never done without it)"
                       ) -> None:
    """``-o/--out`` (or just the option names in ``flags``) and ``--force``, whose help
    ``force_help`` says what it allows (replace an existing file, reuse a foreign folder)."""
    parser.add_argument(*flags, dest="out", required=required, metavar=metavar, help=what)
    parser.add_argument("--force", action="store_true", help=force_help)


def _add_device_option(parser: argparse.ArgumentParser, *flags: str, metavar: str = "MODEL",
                       required: bool = False, default: str | None = None) -> None:
    """The device model to use: a preset name or a model file (a positional ``flags`` names
    the argument; options take ``required`` or ``default``)."""
    text = "device preset name or model file (.h5" + (f"; default {default})" if default else ")")
    if not flags[0].startswith("-"):
        parser.add_argument(*flags, metavar=metavar, help=text)
        return
    parser.add_argument(*flags, required=required, default=default, metavar=metavar, help=text)


def _add_seed_option(parser: argparse.ArgumentParser, *, what: str = "random seed",
                     required: bool = False) -> None:
    """``--seed S`` (an integer; default 0 unless ``required``) of what ``what`` says."""
    parser.add_argument("--seed", type=int, required=required,
                        default=None if required else 0, metavar="S",
                        help=what if required else f"{what} (default 0)")


def _add_mapping_options(parser: argparse.ArgumentParser, *,
                         extrapolation: bool = False) -> None:
    """Options of devices.mapping.WeightMapping and its conductance range (read back by
    :func:`_mapping_from_args`); ``extrapolation`` adds ``--allow-extrapolation``."""
    from .devices.mapping import Scaling, Scheme

    g = parser.add_argument_group("weight mapping (devices.mapping.WeightMapping)")
    g.add_argument("--g-min", type=float, default=None, metavar="S",
                   help="conductance of weight 0 [S] (default: the model's lower bound)")
    g.add_argument("--g-max", type=float, default=None, metavar="S",
                   help="conductance of max|W| [S] (default: the model's upper bound)")
    if extrapolation:
        g.add_argument("--allow-extrapolation", action="store_true",
                       help="accept a mapping beyond a fitted model's range (edge statistics)")
    g.add_argument("--scheme", choices=[m.value for m in Scheme], default=Scheme.DIFFERENTIAL.value,
                   help="differential device pairs, or one device per weight against a "
                   "reference column at (g_min + g_max)/2 (default differential)")
    g.add_argument("--pairs", type=int, default=1, metavar="P",
                   help="device pairs per weight, pair k weighing F^-k (differential; "
                   "default 1)")
    g.add_argument("--significance", type=float, default=None, metavar="F",
                   help="significance ratio F between consecutive pairs (--pairs > 1; "
                   "default 4)")
    g.add_argument("--pair-levels", type=int, default=None, metavar="L",
                   help="grid steps per polarity of the upper pairs (--pairs > 1; default 2; "
                   "needs F <= 2 L)")
    g.add_argument("--scaling", choices=[m.value for m in Scaling], default=Scaling.TILE.value,
                   help="one weight scale max|W| per tile or per column (default tile)")


def _mapping_from_args(args, device):
    """The WeightMapping of the mapping options, g_min/g_max from --g-min/--g-max or the
    device model's range (beyond it only with --allow-extrapolation, where declared)."""
    from .devices.mapping import WeightMapping
    from .errors import ConfigError
    from .nn.export import mapping_range

    extra = {}
    for opt, key in (("significance", "significance"), ("pair_levels", "levels")):
        v = getattr(args, opt)
        if v is not None:
            if args.pairs == 1:
                raise ConfigError(f"--{opt.replace('_', '-')} needs --pairs > 1 (one pair has "
                                  "no significance steps)")
            extra[key] = v
    g_min, g_max = mapping_range(device, args.g_min, args.g_max,
                                 allow_extrapolation=getattr(args, "allow_extrapolation", False))
    return WeightMapping(g_max=g_max, g_min=g_min, scheme=args.scheme, scaling=args.scaling,
                         n_pairs=args.pairs, **extra)


# -- shared converters: bad values raise ConfigError naming the option (one-line error) ----


def _parse_floats(text: str, option: str) -> tuple[float, ...]:
    """A comma-separated list of numbers, e.g. ``"0.1,0.3,1"``."""
    from .errors import ConfigError
    from .units import parse_list

    try:
        return tuple(float(x) for x in parse_list(text, what=option))
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers, got {text!r}") from None


def _parse_array_size(text: str, option: str, *, wire: bool = False):
    """``ROWSxCOLS`` -> ``(rows, cols)``; with ``wire``, ``ROWSxCOLS@OHM`` -> ``(rows, cols,
    ohm)`` (wire resistance per segment [Ω])."""
    from .errors import ConfigError

    try:
        size, *ohm = text.split("@") if wire else [text]
        rows, cols = (int(v) for v in size.lower().split("x"))
        if wire:
            (r_wire,) = (float(v) for v in ohm)
            return rows, cols, r_wire
        return rows, cols
    except ValueError:
        form = "ROWSxCOLS@OHM, e.g. 256x256@1" if wire else "ROWSxCOLS, e.g. 256x256"
        raise ConfigError(f"{option} {text!r} is not {form}") from None


def _parse_conductance(text: str, option: str) -> float:
    """A conductance with its unit, e.g. ``5uS`` (a bare number is in S) -> S."""
    import re

    from .errors import ConfigError
    from .units import to_si

    m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([A-Za-z]*)\s*", str(text))
    if not m:
        raise ConfigError(f"{option}: expected a conductance such as 5uS, got {text!r}")
    try:
        value = float(m.group(1))
    except ValueError:
        raise ConfigError(f"{option}: {m.group(1)!r} is not a number") from None
    return float(to_si(value, m.group(2) or "S", "conductance", what=option))


def _command_line(args) -> str:
    """The subcommand and its words as typed, for the output folder's manifest."""
    return " ".join(args.argv)


# -- inspect -------------------------------------------------------------------------------


@_subcommand(
    "inspect",
    summary="show what a measurement, device-model or noise-model file holds",
    description="Print what a measurement table (devices, levels or targets, time points, "
    "conductance range in µS, reads below zero) or a device-/noise-model file (kind, "
    "parameters, provenance) holds. Several measurement files are read as one table.",
)
def _add_inspect(p) -> None:
    add_measurement_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_run_inspect)


def _run_inspect(args) -> int:
    import json
    from pathlib import Path

    from . import formats
    from .errors import ConfigError, DataFormatError

    model_files, tables = [], []
    for name in args.inputs:
        path = Path(name)
        if not path.is_file():
            raise DataFormatError(f"{path}: no such file")
        kind = formats.file_kind(path)
        (model_files if kind in ("xbarlab-device-model", "xbarlab-noise-model")
         else tables).append(path)
    if model_files and _measurement_options_given(args):
        raise ConfigError(f"{', '.join(_measurement_options_given(args))} apply to measurement "
                          f"tables, but {model_files[0]} is a model file")
    reports = []
    for path in model_files:
        reports.append(_inspect_model(path))
    if tables:
        m = read_measurements_from_args(args, tables)
        s = m.summary()
        s["sha256"] = {str(p): formats.sha256_file(p) for p in tables}
        reports.append(("measurements", s))
    if args.json:
        out = [dict(what=what, **s) for what, s in reports]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2, default=str))
        return 0
    for what, s in reports:
        print(_format_measurements(s) if what == "measurements" else _format_model(s))
    return 0


def _us(g: float) -> str:
    return f"{g * 1e6:.4g}"


def _n(k: int) -> str:
    return f"{k:,}"


def _values(d: dict, fmt) -> str:
    """A summary entry's values, each through ``fmt``, or its range when there are too many
    to list (``values`` empty)."""
    if d["values"]:
        return ", ".join(fmt(v) for v in d["values"])
    return f"{fmt(d['min'])} to {fmt(d['max'])}"


def _format_measurements(s: dict) -> str:
    from .units import format_duration

    lines = [f"measurement table ({s['layout']} layout)"]
    for src in s["sources"]:
        lines.append(f"  file         {src}  (sha256 {s['sha256'].get(src, '')[:16]}…)")
    roles = "; ".join(
        f"{r} <- {v['column'] or 'row'}" + (f" [{v['unit']}]" if v["unit"] not in ("", "1")
                                            else "")
        for r, v in s["roles"].items())
    lines.append(f"  columns      {roles}")
    lines.append(f"  reads        {_n(s['reads'])}")
    rpd = s.get("reads_per_device")
    each = ""
    if rpd:
        each = (f" ({_n(rpd[0])} read{'s' if rpd[0] != 1 else ''} each)" if rpd[0] == rpd[2]
                else f" ({_n(rpd[0])} to {_n(rpd[2])} reads each, median {rpd[1]:g})")
    lines.append(f"  devices      {_n(s['devices'])}{each}")
    if "levels" in s:
        lv = s["levels"]
        lines.append(f"  levels       {lv['count']}: {_values(lv, str)}")
    if "targets" in s:
        tg = s["targets"]
        per = s.get("devices_per_target", [0, 0])
        per_txt = f"{per[0]}" if per[0] == per[1] else f"{per[0]} to {per[1]}"
        lines.append(f"  targets      {tg['count']} ({_us(tg['min'])} to {_us(tg['max'])} µS) "
                     f"x {per_txt} device{'s' if per[1] != 1 else ''}: {_values(tg, _us)} µS")
    if "time_points" in s:
        tp = s["time_points"]
        lines.append(f"  time points  {tp['count']}: {_values(tp, format_duration)}")
    if "time_range" in s:
        lo, hi = s["time_range"]
        origin = ("the first read" if s["time_origin"] == "first read"
                  else "the end of programming")
        lines.append(f"  time         {format_duration(lo)} to {format_duration(hi)}, counted "
                     f"from {origin}")
    if "g_min" in s:
        lines.append(f"  conductance  {_us(s['g_min'])} to {_us(s['g_max'])} µS "
                     f"(mean {_us(s['g_mean'])} µS)")
    below = s["reads_below_zero"]
    low = f" (lowest {_us(s['g_negative_min'])} µS)" if below else ""
    lines.append(f"  below zero   {_n(below)} read{'s' if below != 1 else ''}{low}")
    if s.get("missing_cells"):
        lines.append(f"  blank cells  {_n(s['missing_cells'])} (skipped)")
    return "\n".join(lines)


def _inspect_model(path) -> tuple[str, dict]:
    import numpy as np

    from . import formats

    kind, tree, prov = formats.read_model_file(path)
    ftype = formats.file_kind(path)

    def walk(node, prefix=""):
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                yield from walk(value, name + "/")
            elif isinstance(value, formats.Quantity):
                arr = np.asarray(value.value)
                entry = {"name": name, "units": value.units, "shape": list(arr.shape)}
                if arr.size and arr.dtype.kind in "fiub":
                    entry["min"] = float(arr.min())
                    entry["max"] = float(arr.max())
                yield entry
            else:
                yield {"name": name, "value": value}

    return ("model", {"file": str(path), "file_type": ftype, "kind": kind,
                      "contents": list(walk(tree)), "provenance": prov.to_dict()})


def _format_model(s: dict) -> str:
    p = s["provenance"]
    what = s["file_type"].removeprefix("xbarlab-").replace("-", " ")
    lines = [f"{what} file {s['file']}",
             f"  kind         {s['kind']}",
             f"  format       version {p['format_version']}, written by xbarlab "
             f"{p['xbarlab_version']} at {p['created']}",
             f"  method       {p['method']}"]
    if p["settings"]:
        lines.append(f"  settings     {p['settings']}")
    for src in p["sources"]:
        lines.append(f"  source       {src.get('path', '')} (sha256 {src.get('sha256', '')[:16]}…)")
    if p["notes"]:
        lines.append(f"  notes        {p['notes']}")
    for e in s["contents"]:
        if "value" in e:
            lines.append(f"  {e['name']:<12} {e['value']}")
            continue
        unit, scale = (("µS", 1e6) if e["units"] == "S" else (e["units"], 1.0))
        shape = "x".join(str(k) for k in e["shape"]) or "scalar"
        if "min" not in e:
            rng = ""
        elif e["min"] == e["max"]:
            rng = f" = {e['min'] * scale:.6g} {unit}"
        else:
            rng = f" {e['min'] * scale:.6g} to {e['max'] * scale:.6g} {unit}"
        lines.append(f"  {e['name']:<12} [{shape}]{rng}" + ("" if rng else f" [{unit}]"))
    return "\n".join(lines)


@_subcommand(
    "train",
    summary="train a small network with HA-SGD against weight noise; write metrics.json",
    description="Train digits/MNIST-5k/MNIST-1D networks with Hessian-Aware SGD (L weight "
    "perturbations per minibatch) and evaluate their accuracy under weight noise.",
)
def _add_train(p) -> None:
    p.add_argument("--dataset", required=True, choices=["digits", "mnist5k", "mnist1d"])
    p.add_argument("--model", required=True, choices=["mlp", "cnn"])
    p.add_argument("--train-noise", required=True, metavar="SIGMA|NOISE.h5",
                   help="σ relative to each layer's max|w| (0 = none), or a noise file")
    p.add_argument("--samples", required=True, type=int, metavar="L",
                   help="perturbations per minibatch (0 = plain training, 1 = noise injection)")
    p.add_argument("--epochs", required=True, type=int, metavar="E")
    _add_seed_option(p, required=True)
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
    p.set_defaults(handler=_run_train)


def _parse_train_noise(value: str):
    """``--train-noise``: a σ >= 0 (float) or a path to a noise file (``.h5``/``.hdf5``)."""
    import math
    from pathlib import Path

    from .errors import ConfigError

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


def _parse_levels(value: str) -> list[float]:
    """``--eval-noise``: comma-separated numbers >= 0."""
    import math

    from .errors import ConfigError

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


def _train_noise_from_args(args):
    """``(training noise, level -> evaluation noise, noise file or None)`` of the options."""
    from pathlib import Path

    from .errors import ConfigError
    from .nn.noise import GaussianNoise

    arg = _parse_train_noise(args.train_noise)
    if isinstance(arg, Path):
        from .nn.noise_file import load_noise
        from .units import parse_duration

        if args.train_shift != 0.0 or args.eval_shift != 0.0:
            raise ConfigError("--train-shift/--eval-shift apply to σ noise; a noise file "
                              f"({arg}) carries its own mean shift")
        if not arg.exists():
            raise ConfigError(f"noise file {arg} does not exist")
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


def _run_train(args) -> int:
    from .nn.train import train_and_evaluate  # imports torch, only when training

    noise, make_eval, source = _train_noise_from_args(args)
    m = train_and_evaluate(
        dataset=args.dataset, model=args.model, noise=noise, samples=args.samples,
        epochs=args.epochs, seed=args.seed, eval_levels=_parse_levels(args.eval_noise),
        eval_noise=make_eval, eval_draws=args.eval_draws, adc_bits=args.adc_bits,
        antithetic=args.antithetic, out=args.out, force=args.force, noise_source=source,
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


# -- crossbar ------------------------------------------------------------------------------


@_subcommand(
    "crossbar",
    summary="IR-drop and ADC study: relative output error vs array size and wire resistance",
    description="Program random weights onto n x n arrays (differential column pairs) with a "
    "device model, solve the exact circuit for each wire resistance and report the relative "
    "output error of IR drop, ADC (max-possible and calibrated range), device and total; "
    "writes ir_drop_study.csv/.md/.png into OUT.",
)
def _add_crossbar(p) -> None:
    _add_device_option(p, "--device", default="pcm-ibm-2020", metavar="PRESET|MODEL.h5")
    p.add_argument("--sizes", default="64,128,256,512,1024", metavar="N,N,...",
                   help="array sizes n (n x n, even; default 64,128,256,512,1024)")
    p.add_argument("--r-wire", default="0.1,0.3,1,3,10", metavar="R,R,...",
                   help="wire resistance per segment in Ohm (default 0.1,0.3,1,3,10)")
    p.add_argument("--vectors", type=int, default=16, metavar="B",
                   help="input vectors for n <= 256; max(2, B*256/n) above (default 16)")
    p.add_argument("--time", default="1h", metavar="T",
                   help="read time after programming, e.g. 1h, 1d, 3600 (default 1h)")
    p.add_argument("--v-max", type=float, default=0.2, metavar="V",
                   help="full-scale row voltage in V (default 0.2)")
    p.add_argument("--adc-bits", type=int, default=8, metavar="B", help="ADC bits (default 8)")
    _add_seed_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_output_options(p, metavar="OUT", what="output folder")
    p.set_defaults(handler=_run_crossbar)


def _run_crossbar(args) -> int:
    from . import devices, formats, units
    from .crossbar.study import StudyConfig, format_table, run_study, write_study
    from .errors import ConfigError

    sizes = _parse_floats(args.sizes, "--sizes")
    if any(n != int(n) for n in sizes):
        raise ConfigError(f"--sizes must be integers, got {args.sizes!r}")
    config = StudyConfig(sizes=tuple(int(n) for n in sizes),
                         r_wire=_parse_floats(args.r_wire, "--r-wire"), vectors=args.vectors,
                         t=units.parse_duration(args.time, what="--time"), v_max=args.v_max,
                         adc_bits=args.adc_bits, seed=args.seed)
    device = devices.load(args.device)
    out = formats.prepare_output_dir(args.out, force=args.force, command=_command_line(args))
    rows = run_study(device, config, progress=not args.no_progress)
    title = (f"{args.device}, t = {args.time}, v_max = {config.v_max:g} V, "
             f"{config.adc_bits}-bit ADC, seed {config.seed}")
    paths = write_study(rows, out, title=title, overwrite=True)
    print(format_table(rows), end="")
    print(f"wrote {paths['csv']}, {paths['md']} and {paths['png']}")
    return 0


# -- calibrate -----------------------------------------------------------------------------


@_subcommand(
    "calibrate",
    summary="fit programming error, drift/relaxation and read noise from measured data",
    description="Fit a device model to measured reads (programming error vs target, "
    "drift/relaxation vs time, read noise) with bootstrap bands; write the model file and "
    "a report folder (PNG plots, report.md with tables, model choices and KS distances).",
)
def _add_calibrate(p) -> None:
    add_measurement_options(p)
    add_output_options(p, metavar="MODEL.h5", what="device-model file to write (HDF5)")
    p.add_argument("--report", metavar="DIR", help="report folder (plots and report.md)")
    p.add_argument("--conditioning", choices=["target", "initial read"], default=None,
                   help="what the model's input means (default: target when a g_target "
                   "column exists, else the first read)")
    p.add_argument("--drift", choices=["auto", "power-law", "relaxation", "none"],
                   default="auto", help="drift model (auto: chosen by held-out likelihood)")
    p.add_argument("--family", choices=["auto", "normal", "bounded", "student-t", "mixture"],
                   default="auto", help="programming-error family (auto: lowest AIC)")
    p.add_argument("--window", metavar="G",
                   help="write-verify window half-width, e.g. 5uS (default: estimated)")
    p.add_argument("--t0", metavar="DURATION", help="power-law reference time (default: fitted)")
    p.add_argument("--t-max", default="10y", metavar="DURATION",
                   help="last time the relaxation table extrapolates to (default 10y)")
    p.add_argument("--min-devices", type=int, default=20, metavar="N",
                   help="levels with fewer devices are skipped and listed (default 20)")
    p.add_argument("--bootstrap", type=int, default=100, metavar="B",
                   help="bootstrap replicates, devices resampled (default 100)")
    _add_seed_option(p, what="seed of the bootstrap")
    p.add_argument("--compose-with", metavar="MODEL.h5",
                   help="a target-conditioned model whose programming error precedes this "
                   "fit's relaxation (the result is target-conditioned)")
    p.set_defaults(handler=_run_calibrate)


def _run_calibrate(args) -> int:
    from pathlib import Path

    import numpy as np
    from tqdm import tqdm

    from .calibration import fit, write_report
    from .devices import load
    from .errors import OutputExistsError
    from .units import parse_duration

    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError(f"{out} exists; pass --force to replace it")
    # bad option values fail before the (slow) read
    window = _parse_conductance(args.window, "--window") if args.window else None
    t0 = parse_duration(args.t0, what="--t0") if args.t0 else None
    t_max = parse_duration(args.t_max, what="--t-max")
    meas = read_measurements_from_args(args)
    stages = ["read", "pivot", "drift / relaxation", "programming error", "read noise", "save",
              "report"]
    bar = tqdm(total=len(stages), desc="calibrate", unit="step", leave=False)

    def progress(step):
        bar.set_postfix_str(step)
        bar.update(1)

    progress("read")
    composed = None
    if args.compose_with:
        from .formats import read_model_file

        composed = load(args.compose_with)
        composed.provenance = read_model_file(args.compose_with)[2]
    model = fit(meas, conditioning=args.conditioning, drift=args.drift, family=args.family,
                window=window, t0=t0, t_max=t_max, min_devices=args.min_devices,
                n_boot=args.bootstrap,
                rng=np.random.default_rng(args.seed), progress=progress,
                programming_from=composed)
    progress("save")
    model.to_file(out, overwrite=args.force)
    if args.report:
        progress("report")
        md = write_report(model, meas, args.report, rng=np.random.default_rng(args.seed),
                          force=args.force)
    bar.close()
    print(f"wrote {out} ({model!r})")
    if args.report:
        print(f"wrote {md} and plots in {args.report}")
    return 0


# -- run (the main job: measured data -> evaluated network; xbarlab/pipeline.py) ------------


@_subcommand(
    "run",
    summary="the whole chain: measured data -> device model -> crossbar study -> noise -> "
    "HA-SGD -> accuracy vs time -> report",
    description="Run the pipeline of CONFIG.toml (default: the shipped example) into OUT: "
    "load measurements, calibrate a device model, crossbar IR-drop/ADC study, export "
    "weight-domain noise, train plain SGD and HA-SGD, evaluate accuracy over time, write "
    "report.md/report.html. Finished stages are cached in OUT; a rerun resumes and reruns "
    "only what a changed input or setting affects.",
)
def _add_run(p) -> None:
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="run configuration (default: data/examples/example_config.toml)")
    add_output_options(p, required=False, metavar="OUT",
                       what="output folder (default: ./xbarlab-run)",
                       force_help="use OUT even if it is a non-empty folder xbarlab did not create")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(handler=_run_run)


def _run_run(args) -> int:
    from . import pipeline  # numba/torch load inside the stages that need them

    config, path = pipeline.load_config(args.config)
    out = args.out if args.out is not None else pipeline.DEFAULT_OUT
    print(f"xbarlab run: {path} -> {out}")
    res = pipeline.run_pipeline(config, out, force=args.force, progress=not args.no_progress,
                                command=_command_line(args))
    ran = sum(v == "ran" for v in res["status"].values())
    print(f"{ran} stage(s) ran, {len(res['status']) - ran} cached; report: "
          f"{res['report'].resolve() if res['report'] else '(none)'}")
    return 0


# -- export-noise / evaluate (nn part 2) ---------------------------------------------------


@_subcommand(
    "export-noise",
    summary="derive weight-domain noise (quantile tables of Δw|w) from a device model",
    description="Map weights on a grid of w/max|W| to conductances (differential pairs, "
    "several pairs of significance, or a reference column: the mapping options), "
    "program the devices, read them at the given times and store quantile tables of "
    "Δw/max|W| (plus mean shift and spread) in an HDF5 noise file for `xbarlab train "
    "--train-noise`.",
)
def _add_export_noise(p) -> None:
    _add_device_option(p, "model")
    p.add_argument("--time", action="append", required=True, metavar="T",
                   help="time after programming (e.g. 1h, 1d, 3600); repeat for several")
    p.add_argument("--compensation", choices=["none", "global"], default="none",
                   help="global drift compensation of the tables (default none)")
    p.add_argument("--samples", type=int, default=200_000, metavar="N",
                   help="device pairs per (weight, time) (default 200000)")
    p.add_argument("--grid", type=int, default=101, metavar="M",
                   help="points of the normalised-weight grid on [-1, 1] (default 101)")
    p.add_argument("--adc-bits", type=int, default=None, metavar="B",
                   help="record the periphery's ADC resolution in the file")
    p.add_argument("--ir-drop", metavar="ROWSxCOLS@OHM", default=None,
                   help="also store the systematic IR-drop error of sample tiles, e.g. "
                   "256x256@1 (wire resistance per segment in Ohm)")
    _add_seed_option(p)
    _add_mapping_options(p, extrapolation=True)
    add_output_options(p, metavar="NOISE.h5", what="noise file to write")
    p.set_defaults(handler=_run_export_noise)


def _run_export_noise(args) -> int:
    import numpy as np

    from .errors import ConfigError
    from .formats import Provenance
    from .nn.export import export_noise, load_device_model
    from .units import parse_duration

    times = [parse_duration(t, what="--time") for t in args.time]
    ir = None
    if args.ir_drop:
        ir = dict(zip(("rows", "cols", "r_wire"),
                      _parse_array_size(args.ir_drop, "--ir-drop", wire=True), strict=True))
    if args.grid < 2:
        raise ConfigError(f"--grid must be >= 2, got {args.grid}")
    device = load_device_model(args.model)
    mapping = _mapping_from_args(args, device)
    tables = export_noise(device, times, np.random.default_rng(args.seed), mapping=mapping,
                          w_grid=np.linspace(-1, 1, args.grid),
                          n_samples=args.samples, compensation=args.compensation,
                          allow_extrapolation=args.allow_extrapolation, adc_bits=args.adc_bits,
                          ir_drop=ir, device_name=str(args.model))
    prov = Provenance(method="nn.export.export_noise",
                      settings={"model": str(args.model), "times_s": times,
                                "compensation": args.compensation, "samples": args.samples,
                                "grid": args.grid, "seed": args.seed, "g_min": tables.g_min,
                                "g_max": tables.g_max, "mapping": mapping.to_dict(),
                                "ir_drop": args.ir_drop})
    tables.write(args.out, overwrite=args.force, provenance=prov)
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


@_subcommand(
    "evaluate",
    summary="accuracy of a trained network programmed onto devices, vs time after programming",
    description="Program the weights of a model saved by `xbarlab train` through a device "
    "model and read them at several times: statistical mode (effective weights, N "
    "programmings) and circuit mode (crossbar tiles with IR drop, DAC, ADC). Writes "
    "OUT/evaluation.json and OUT/accuracy_vs_time.png.",
)
def _add_evaluate(p) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR", help="output folder of xbarlab train")
    _add_device_option(p, "--device-model", required=True)
    p.add_argument("--times", required=True, metavar="T,T,...", help="e.g. 1s,1h,1d,1y")
    p.add_argument("--programmings", type=int, default=10, metavar="N",
                   help="independent programmings (chips) (default 10)")
    p.add_argument("--modes", default="statistical", metavar="M,M",
                   help="statistical and/or circuit (default statistical)")
    p.add_argument("--compensation", default="none,global", metavar="C,C",
                   help="none and/or global drift compensation (default both)")
    p.add_argument("--tile", default="256x256", metavar="ROWSxCOLS",
                   help="crossbar tile size (default 256x256; differential column pairs)")
    p.add_argument("--r-wire", type=float, default=0.0, metavar="OHM",
                   help="wire resistance per segment, circuit mode (default 0)")
    p.add_argument("--dac-bits", type=int, default=None, metavar="B", help="circuit mode")
    p.add_argument("--adc-bits", type=int, default=None, metavar="B",
                   help="circuit mode (range: maximum possible per tile)")
    p.add_argument("--circuit-programmings", type=int, default=1, metavar="N")
    p.add_argument("--circuit-samples", type=int, default=None, metavar="N",
                   help="test samples in circuit mode (default all)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K",
                   help="also evaluate K models drawn from the calibration's bootstrap")
    _add_seed_option(p)
    _add_mapping_options(p)
    add_output_options(p, metavar="OUT", what="output folder")
    p.set_defaults(handler=_run_evaluate)


def _run_evaluate(args) -> int:
    from .crossbar.converters import ADC, DAC
    from .crossbar.tiling import TileConfig
    from .nn.evaluate import EvaluationSettings, evaluate_to_folder
    from .nn.export import load_device_model
    from .units import parse_durations, parse_list

    rows, cols = _parse_array_size(args.tile, "--tile")
    mapping = _mapping_from_args(args, load_device_model(args.device_model))
    settings = EvaluationSettings(
        times=tuple(parse_durations(args.times, what="--times")),
        programmings=args.programmings, modes=tuple(parse_list(args.modes, what="--modes")),
        compensations=tuple(parse_list(args.compensation, what="--compensation")),
        tile=TileConfig(rows=rows, cols=cols, r_row=args.r_wire, r_col=args.r_wire),
        mapping=mapping, dac=None if args.dac_bits is None else DAC(bits=args.dac_bits),
        adc=None if args.adc_bits is None else ADC(bits=args.adc_bits,
                                                   range_mode="max-possible"),
        circuit_programmings=args.circuit_programmings, circuit_samples=args.circuit_samples,
        bootstrap=args.bootstrap)
    ev = evaluate_to_folder(model_dir=args.model_dir, device_model=args.device_model,
                            settings=settings, out=args.out, seed=args.seed, force=args.force,
                            command=_command_line(args))
    print(f"digital accuracy {ev['clean_accuracy']:.4f}")
    for e in ev["results"]:
        print(f"{e['time']:>8} {e['mode']:<11} comp={e['compensation']:<6} "
              f"{e['model_draw']:<9} {e['accuracy_mean']:.4f} ± {e['accuracy_std']:.4f} "
              f"(N={e['n_programmings']})")
    print(f"wrote {args.out}/evaluation.json and {args.out}/accuracy_vs_time.png "
          f"({ev['elapsed_s']:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    args.argv = argv  # the words as typed, which output manifests record
    try:
        return int(args.handler(args) or 0)
    # a bad option or input, an unreadable file, a full disk: one line, no traceback
    except (XbarlabError, OSError) as exc:
        print(f"xbarlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"xbarlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
