"""``xbarlab inspect``: what a measurement table or a model file holds."""

from __future__ import annotations

import argparse

from .options import add_measurement_options, measurement_options_given, read_measurements_from_args

#: The command's name on the command line.
NAME = "inspect"
#: Its line in ``xbarlab --help``.
SUMMARY = (
    "show what a measurement, device-model or noise-model file holds"
)
#: The text atop ``xbarlab inspect --help``.
DESCRIPTION = (
    "Print what a measurement table (devices, levels or targets, time points, "
    "conductance range in µS, reads below zero) or a device-/noise-model file (kind, "
    "parameters, provenance) holds. Several measurement files are read as one table."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``xbarlab inspect``."""
    add_measurement_options(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``xbarlab inspect`` with the parsed ``args``; return the exit status."""
    import json
    from pathlib import Path

    from .. import formats
    from ..errors import ConfigError, DataFormatError

    model_files, tables = [], []
    for name in args.inputs:
        path = Path(name)
        if not path.is_file():
            raise DataFormatError(f"{path}: no such file")
        kind = formats.file_kind(path)
        (model_files if kind in ("xbarlab-device-model", "xbarlab-noise-model")
         else tables).append(path)
    if model_files and measurement_options_given(args):
        raise ConfigError(f"{', '.join(measurement_options_given(args))} apply to measurement "
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


def printable(value) -> str:
    """``value`` as text with control characters (terminal escape sequences, newlines, bidi
    overrides) written as ``\\xNN``/``\\uNNNN`` escapes, for strings a file supplies."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
                   for c in text)


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
    from ..units import format_duration

    lines = [f"measurement table ({s['layout']} layout)"]
    for src in s["sources"]:
        lines.append(f"  file         {printable(src)}  "
                     f"(sha256 {s['sha256'].get(src, '')[:16]}…)")
    roles = "; ".join(
        f"{r} <- {printable(v['column'] or 'row')}"
        + (f" [{printable(v['unit'])}]" if v["unit"] not in ("", "1") else "")
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

    from .. import formats

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
    lines = [f"{what} file {printable(s['file'])}",
             f"  kind         {printable(s['kind'])}",
             f"  format       version {p['format_version']}, written by xbarlab "
             f"{printable(p['xbarlab_version'])} at {printable(p['created'])}",
             f"  method       {printable(p['method'])}"]
    if p["settings"]:
        lines.append(f"  settings     {printable(p['settings'])}")
    for src in p["sources"]:
        lines.append(f"  source       {printable(src.get('path', ''))} "
                     f"(sha256 {printable(str(src.get('sha256', ''))[:16])}…)")
    if p["notes"]:
        lines.append(f"  notes        {printable(p['notes'])}")
    for e in s["contents"]:
        name = printable(e["name"])
        if "value" in e:
            lines.append(f"  {name:<12} {printable(e['value'])}")
            continue
        unit, scale = (("µS", 1e6) if e["units"] == "S" else (e["units"], 1.0))
        shape = "x".join(str(k) for k in e["shape"]) or "scalar"
        if "min" not in e:
            rng = ""
        elif e["min"] == e["max"]:
            rng = f" = {e['min'] * scale:.6g} {unit}"
        else:
            rng = f" {e['min'] * scale:.6g} to {e['max'] * scale:.6g} {unit}"
        lines.append(f"  {name:<12} [{shape}]{rng}" + ("" if rng else f" [{unit}]"))
    return "\n".join(lines)
