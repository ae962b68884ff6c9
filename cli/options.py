"""Options and converters that several ``xbarlab`` commands share.

Measurement tables, output, device model, weight mapping and seed options are declared
here once; the converters turn option text ("0.1,0.3", "256x256@1", "5uS") into typed
values, and a bad value raises :class:`~xbarlab.errors.ConfigError` naming the option
(the command prints it as one line). Nothing here imports numba or torch.
"""

from __future__ import annotations

import argparse

from ..checks import check_number, number_type

__all__ = [
    "add_measurement_options",
    "measurement_options_from_args",
    "read_measurements_from_args",
    "measurement_options_given",
    "add_output_options",
    "add_device_option",
    "add_seed_option",
    "add_workers_option",
    "add_mapping_options",
    "mapping_from_args",
    "parse_floats",
    "parse_integers",
    "parse_array_size",
    "parse_conductance",
    "command_line",
    "check_model_path",
]


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
    g.add_argument("--sample-rate", type=number_type(lo=0, lo_open=True), metavar="HZ",
                   help="timeseries layout: samples per second along a row")
    g.add_argument("--samples-from", type=number_type(integer=True, lo=0), metavar="K",
                   help="timeseries layout: 0-based column where the samples start")
    g.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                   help="whether the first line is a header (default: detect)")
    g.add_argument("--same-devices", action="store_true",
                   help="equal device labels in different files are the same device")
    g.add_argument("--strict", action="store_true",
                   help="reject reads below 0 S (default: keep and count them)")
    g.add_argument("--duplicates", choices=["refuse", "first", "mean"], default=None,
                   help="reads that repeat a (device, time[, cycle]) read: refuse the table "
                   "(default), keep the first read of each group, or one read with their "
                   "mean conductance")


def measurement_options_from_args(args: argparse.Namespace) -> dict:
    """Keyword arguments for :func:`xbarlab.formats.read_measurements` from parsed options."""
    from ..errors import ConfigError

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
        "duplicates": args.duplicates or "refuse",
    }


def read_measurements_from_args(args: argparse.Namespace, paths=None):
    """Read ``paths`` (default ``args.inputs``) with the measurement options of ``args``."""
    from ..formats import check_input_file, read_measurements

    paths = args.inputs if paths is None else paths
    for p in [paths] if isinstance(paths, str) else paths:
        check_input_file(p, what="measurement file")
    return read_measurements(paths, **measurement_options_from_args(args))


def measurement_options_given(args: argparse.Namespace) -> list[str]:
    """The measurement-table options on the command line (values set, or flags on)."""
    given = []
    for name in ("columns", "units", "layout", "sample_rate", "samples_from", "header",
                 "duplicates"):
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


def add_device_option(parser: argparse.ArgumentParser, *flags: str, metavar: str = "MODEL",
                       required: bool = False, default: str | None = None) -> None:
    """The device model to use: a preset name or a model file (a positional ``flags`` names
    the argument; options take ``required`` or ``default``)."""
    text = "device preset name or model file (.h5" + (f"; default {default})" if default else ")")
    if not flags[0].startswith("-"):
        parser.add_argument(*flags, metavar=metavar, help=text)
        return
    parser.add_argument(*flags, required=required, default=default, metavar=metavar, help=text)


def add_seed_option(parser: argparse.ArgumentParser, *, what: str = "random seed",
                     required: bool = False) -> None:
    """``--seed S`` (an integer; default 0 unless ``required``) of what ``what`` says."""
    parser.add_argument("--seed", type=number_type(integer=True, lo=0), required=required,
                        default=None if required else 0, metavar="S",
                        help=what if required else f"{what} (default 0)")


def add_workers_option(parser: argparse.ArgumentParser, *, default_text: str) -> None:
    """``--workers N``: worker processes of a local Dask cluster (``N >= 1``); what the
    default (None) does is ``default_text``."""
    parser.add_argument("--workers", type=number_type(integer=True, lo=1), default=None,
                        metavar="N", help="worker processes of a local Dask cluster, one "
                        f"thread each (default: {default_text})")


def add_mapping_options(parser: argparse.ArgumentParser, *, extrapolation: bool = False,
                        range_only: bool = False) -> None:
    """Options of devices.mapping.WeightMapping and its conductance range (read back by
    :func:`mapping_from_args`); ``extrapolation`` adds ``--allow-extrapolation``;
    ``range_only`` declares only ``--g-min``/``--g-max`` (one differential pair per weight,
    per-tile scaling)."""
    from ..devices.mapping import Scaling, Scheme

    g = parser.add_argument_group("weight mapping (devices.mapping.WeightMapping)")
    g.add_argument("--g-min", type=number_type(lo=0), default=None, metavar="S",
                   help="conductance of weight 0 [S] (default: the model's lower bound)")
    g.add_argument("--g-max", type=number_type(lo=0, lo_open=True), default=None, metavar="S",
                   help="conductance of max|W| [S] (default: the model's upper bound)")
    if extrapolation:
        g.add_argument("--allow-extrapolation", action="store_true",
                       help="accept a mapping beyond a fitted model's range (edge statistics)")
    if range_only:
        return
    g.add_argument("--scheme", choices=[m.value for m in Scheme], default=Scheme.DIFFERENTIAL.value,
                   help="differential device pairs, or one device per weight against a "
                   "reference column at (g_min + g_max)/2 (default differential)")
    g.add_argument("--pairs", type=number_type(integer=True, lo=1), default=1, metavar="P",
                   help="device pairs per weight, pair k weighing F^-k (differential; "
                   "default 1)")
    g.add_argument("--significance", type=number_type(lo=1, lo_open=True),
                   default=None, metavar="F",
                   help="significance ratio F between consecutive pairs (--pairs > 1; "
                   "default 4)")
    g.add_argument("--pair-levels", type=number_type(integer=True, lo=1), default=None, metavar="L",
                   help="grid steps per polarity of the upper pairs (--pairs > 1; default 2; "
                   "needs F <= 2 L)")
    g.add_argument("--scaling", choices=[m.value for m in Scaling], default=Scaling.TILE.value,
                   help="one weight scale max|W| per tile or per column (default tile)")


def mapping_from_args(args, device):
    """The WeightMapping of the mapping options (devices.mapping.mapping_for): g_min/g_max
    from --g-min/--g-max or the device model's range (beyond it only with
    --allow-extrapolation, where declared)."""
    from ..devices.mapping import mapping_for
    from ..errors import ConfigError

    extra = {}
    if not hasattr(args, "scheme"):  # declared with range_only
        return mapping_for(device, g_min=args.g_min, g_max=args.g_max,
                           allow_extrapolation=getattr(args, "allow_extrapolation", False))
    for opt, key in (("significance", "significance"), ("pair_levels", "levels")):
        v = getattr(args, opt)
        if v is not None:
            if args.pairs == 1:
                raise ConfigError(f"--{opt.replace('_', '-')} needs --pairs > 1 (one pair has "
                                  "no significance steps)")
            extra[key] = v
    return mapping_for(device, g_min=args.g_min, g_max=args.g_max,
                       allow_extrapolation=getattr(args, "allow_extrapolation", False),
                       scheme=args.scheme, scaling=args.scaling, n_pairs=args.pairs, **extra)


def parse_floats(text: str, option: str) -> tuple[float, ...]:
    """A comma-separated list of numbers, e.g. ``"0.1,0.3,1"``."""
    from ..errors import ConfigError
    from ..units import parse_list

    try:
        return tuple(float(x) for x in parse_list(text, what=option))
    except ValueError:
        raise ConfigError(f"{option} must be comma-separated numbers, got {text!r}") from None


def parse_integers(text: str, option: str) -> tuple[int, ...]:
    """A comma-separated list of integers, e.g. ``"64,128"`` (``1e3`` is read as 1000)."""
    from ..checks import parse_number
    from ..units import parse_list

    return tuple(int(parse_number(x, what=f"{option} entry", integer=True))
                 for x in parse_list(text, what=option))


def parse_array_size(text: str, option: str, *, wire: bool = False):
    """``ROWSxCOLS`` -> ``(rows, cols)``; with ``wire``, ``ROWSxCOLS@OHM`` -> ``(rows, cols,
    ohm)`` (wire resistance per segment [Ω])."""
    from ..errors import ConfigError

    try:
        size, *ohm = text.split("@") if wire else [text]
        rows, cols = (int(v) for v in size.lower().split("x"))
        if wire:
            (r_wire,) = (float(v) for v in ohm)
    except ValueError:
        form = "ROWSxCOLS@OHM, e.g. 256x256@1" if wire else "ROWSxCOLS, e.g. 256x256"
        raise ConfigError(f"{option} {text!r} is not {form}") from None
    if not (rows >= 1 and cols >= 1):
        raise ConfigError(f"{option} {text!r}: rows and columns must be >= 1")
    if wire:
        return rows, cols, check_number(r_wire, what=f"{option} wire resistance", lo=0)
    return rows, cols


def parse_conductance(text: str, option: str, *, lo_open: bool = False) -> float:
    """A finite conductance >= 0 (> 0 with ``lo_open``) with its unit, e.g. ``5uS`` (a
    bare number is in S) -> S (:func:`xbarlab.units.parse_conductance`)."""
    from ..units import parse_conductance as parse

    return check_number(parse(text, what=option), what=option, lo=0, lo_open=lo_open)


def check_model_path(value, option: str) -> None:
    """A device model or noise file named by ``option``: if the path exists it must be a
    regular file (a folder or FIFO is refused without opening it); a name that is no path
    is left to the loader (a preset name)."""
    import os

    from ..formats import check_input_file

    if os.path.lexists(value):
        check_input_file(value, what=option)


def command_line(args) -> str:
    """The subcommand and its words as typed, for the output folder's manifest."""
    return " ".join(args.argv)
