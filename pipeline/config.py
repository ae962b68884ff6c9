"""The config of ``xbarlab run``: its schema, validation and loading.

:func:`load_config` reads TOML with :mod:`tomllib`; :func:`validate_config` checks every
field against :data:`SCHEMA` (unknown sections or fields, wrong types and values outside
the allowed ones raise :class:`~xbarlab.errors.ConfigError` naming the field and what is
allowed) and returns plain SI values. Strings such as "1h" or "25uS" are parsed here and
nowhere below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..checks import MAX_THREADS, check_number
from ..errors import ConfigError
from ..units import format_duration

__all__ = ["SCHEMA", "validate_config", "load_config", "example_config_path"]


@dataclass(frozen=True)
class _Field:
    """One config field: ``kind`` (int, float, str, bool, duration, conductance, choice,
    durations, floats, ints, choices, paths, conductance_range), default (``None``:
    optional, ``...``: required), allowed choices, bounds (inclusive) and a one-line doc."""

    kind: str
    default: Any
    doc: str
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False


_REQUIRED = ...

#: section -> field -> spec. The top-level keys ("" section) sit outside any table.
SCHEMA: dict[str, dict[str, _Field]] = {
    "": {
        "seed": _Field("int", 0, "master seed; each stage derives its own streams", lo=0),
        "threads": _Field("int", 1, "torch threads for training and evaluation (0 = torch's "
                          "default, one per core); not part of any stage key", lo=0,
                          hi=MAX_THREADS),
    },
    "data": {
        "files": _Field("paths", _REQUIRED,
                        "measurement files (relative paths count from the config's folder)"),
        "columns": _Field("str", "", "ROLE=SOURCE,... naming source columns ('' = headers "
                          "named like the roles)"),
        "units": _Field("str", "", "ROLE=UNIT,... of the source columns ('' = SI)"),
        "layout": _Field("choice", "long", "table layout",
                         choices=("long", "wide", "timeseries")),
        "sample_rate": _Field("float", None, "timeseries layout: samples per second [Hz]",
                              lo=0.0, lo_open=True),
        "samples_from": _Field("int", None, "timeseries layout: first sample column", lo=0),
        "same_devices": _Field("bool", False, "equal device labels in different files are one "
                               "device"),
        "strict": _Field("bool", False, "reject reads below 0 S"),
        "duplicates": _Field("choice", "refuse", "reads repeating a (device, time[, cycle]) "
                             "read: refuse the table, keep the first of each group or their "
                             "mean conductance", choices=("refuse", "first", "mean")),
    },
    "calibrate": {
        "conditioning": _Field("choice", "auto", "what the model is conditioned on",
                               choices=("auto", "target", "initial read")),
        "drift": _Field("choice", "auto", "drift/relaxation law",
                        choices=("auto", "power-law", "relaxation", "none")),
        "family": _Field("choice", "auto", "programming-error distribution family",
                         choices=("auto", "normal", "bounded", "student-t", "mixture")),
        "window": _Field("conductance", None, "write-verify half-width (estimated if absent)",
                         lo=0.0, lo_open=True),
        "min_devices": _Field("int", 20, "levels with fewer devices are skipped", lo=2),
        "n_boot": _Field("int", 50, "bootstrap replicates (devices resampled)", lo=2),
    },
    "mapping": {
        "g_min": _Field("conductance", None, "conductance of weight 0 (default: the lowest "
                        "programming target in the data, else 0 S)", lo=0.0),
        "g_max": _Field("conductance", None, "conductance of max|W| (default: the highest "
                        "programming target in the data, else the highest read)", lo=0.0),
        "compare": _Field("conductance_range", [], "a second range [g_min, g_max] evaluated "
                          "beside the main one (its own noise tables, HA-SGD network and "
                          "evaluation); [] = none", lo=0.0),
    },
    "crossbar": {
        "sizes": _Field("ints", [64], "array sizes n (n x n physical, n/2 differential pairs; "
                        "even)", lo=2, hi=4096),
        "r_wire": _Field("floats", [0.1, 1.0, 3.0], "wire resistance per segment [Ohm]",
                         lo=0.0),
        "time": _Field("duration", 3600.0, "read time after programming of the conductances"),
        "v_max": _Field("float", 0.2, "full-scale row voltage [V]", lo=1e-6),
        "adc_bits": _Field("int", 8, "ADC resolution (signed)", lo=2, hi=24),
        "vectors": _Field("int", 16, "random input vectors per array", lo=1, hi=4096),
    },
    "noise": {
        "times": _Field("durations", [1.0, 3600.0, 86400.0, 31557600.0],
                        "times after programming of the exported noise tables"),
        "samples": _Field("int", 20000, "device pairs drawn per (weight, time)", lo=100,
                          hi=10**8),
        "grid": _Field("int", 41, "points of the normalised-weight grid on [-1, 1]", lo=3,
                       hi=100_001),
        "compensation": _Field("choice", "none", "drift compensation applied in the tables",
                               choices=("none", "global")),
    },
    "train": {
        "dataset": _Field("choice", "digits", "data set",
                          choices=("digits", "mnist5k", "mnist1d")),
        "model": _Field("choice", "mlp", "network", choices=("mlp", "cnn")),
        "epochs": _Field("int", 10, "training epochs (both methods)", lo=1),
        "samples": _Field("int", 4, "HA-SGD perturbations L per minibatch", lo=1),
        "antithetic": _Field("bool", False, "draw the L perturbations as antithetic pairs"),
        "noise_scaling": _Field("choice", "layer", "HA-SGD noise relative to each layer's "
                                "max|w| (layer) or per 256x256 tile through the noise file's "
                                "mapping, as the evaluation maps the layer (tile)",
                                choices=("layer", "tile")),
        "subset": _Field("int", 0, "train on the first N examples of the training split "
                         "(0 = all; for quick smoke runs)", lo=0),
        "train_time": _Field("str", "all", "'all' (mixture over the noise times) or one of the "
                             "noise times, e.g. '1d'"),
        "seeds": _Field("int", 1, "training seeds: each trains both networks from its own "
                        "streams; with >= 2 the report gives the HA-SGD - SGD accuracy gap "
                        "with its 95 % t-interval over them", lo=1, hi=100),
    },
    "evaluate": {
        "times": _Field("durations", [1.0, 3600.0, 86400.0, 31557600.0],
                        "read times after programming"),
        "programmings": _Field("int", 30, "independent programmings (chips) per point; the "
                               "report gives the mean and its 95 % t-interval", lo=1),
        "compensation": _Field("choices", ["none", "global"], "drift compensation variants",
                               choices=("none", "global")),
        "bootstrap": _Field("int", 0, "extra evaluations with device models drawn from the "
                            "calibration's bootstrap (fit uncertainty)", lo=0),
    },
    "report": {
        "title": _Field("str", "xbarlab run", "title of the report"),
    },
}


def _where(section: str, name: str) -> str:
    return f"[{section}] {name}" if section else name


def _check_number(v, f: _Field, where: str, *, integer: bool) -> float | int:
    return check_number(v, what=where, integer=integer, lo=f.lo, hi=f.hi, lo_open=f.lo_open)


def _check_field(v, f: _Field, where: str):
    from .. import units

    k = f.kind
    if k == "int":
        return _check_number(v, f, where, integer=True)
    if k == "float":
        return float(_check_number(v, f, where, integer=False))
    if k == "bool":
        if not isinstance(v, bool):
            raise ConfigError(f"{where} must be true or false, got {v!r}")
        return v
    if k == "str":
        if not isinstance(v, str):
            raise ConfigError(f"{where} must be a string, got {v!r}")
        return v
    if k == "choice":
        if v not in f.choices:
            raise ConfigError(f"{where} is {v!r}; allowed: {', '.join(map(repr, f.choices))}")
        return v
    if k == "choices":
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where} must be a non-empty list drawn from "
                              f"{', '.join(map(repr, f.choices))}; got {v!r}")
        for x in v:
            if x not in f.choices:
                raise ConfigError(f"{where} entry {x!r} is not allowed; allowed: "
                                  f"{', '.join(map(repr, f.choices))}")
        return list(dict.fromkeys(v))
    if k == "duration":
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise ConfigError(f"{where} must be a duration such as \"1h\" or 3600, got {v!r}")
        s = units.parse_duration(v, what=where)
        if not (math.isfinite(s) and s >= 0):
            raise ConfigError(f"{where} must be a finite duration >= 0 s, got {v!r}")
        return float(s)
    if k == "durations":
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where} must be a non-empty list of durations such as "
                              f"[\"1s\", \"1d\"], got {v!r}")
        out = [_check_field(x, _Field("duration", None, ""), f"{where} entry") for x in v]
        if len(set(out)) != len(out):
            raise ConfigError(f"{where} lists a time twice: {v!r}")
        return sorted(out)
    if k == "conductance":
        if isinstance(v, str):
            v = units.parse_conductance(v, what=where)
        return float(_check_number(v, f, where, integer=False))
    if k == "conductance_range":
        if not isinstance(v, list) or len(v) not in (0, 2):
            raise ConfigError(f"{where} must be [] or a pair [g_min, g_max] of conductances "
                              f"such as [\"0.3125uS\", \"2.5uS\"], got {v!r}")
        out = [_check_field(x, _Field("conductance", None, "", lo=f.lo), f"{where} entry")
               for x in v]
        if out and not out[1] > out[0]:
            raise ConfigError(f"{where}: g_max ({out[1]:g} S) must exceed g_min "
                              f"({out[0]:g} S), got {v!r}")
        return out
    if k in ("floats", "ints"):
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{where} must be a non-empty list of numbers, got {v!r}")
        sub = _Field(k[:-1], None, "", lo=f.lo, hi=f.hi)
        return [_check_field(x, sub, f"{where} entry") for x in v]
    if k == "paths":
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            raise ConfigError(f"{where} must be a file path or a non-empty list of paths, "
                              f"got {v!r}")
        return list(v)
    raise AssertionError(k)  # pragma: no cover


def validate_config(raw: Mapping[str, Any], *, base_dir: Path | str | None = None) -> dict:
    """Check ``raw`` (as parsed from TOML) against :data:`SCHEMA`; return normalised values.

    Durations become seconds, conductances siemens; defaults fill what is absent;
    ``data.files`` become absolute paths resolved against ``base_dir`` (default: the
    working directory). Unknown sections or fields, and bad values, raise ConfigError
    naming the field and the allowed values.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be a table, got {type(raw).__name__}")
    sections = [s for s in SCHEMA if s]
    out: dict[str, dict[str, Any]] = {s: {} for s in SCHEMA}
    for key, value in raw.items():
        if key in SCHEMA[""]:
            continue
        if key not in SCHEMA or key == "":
            allowed = ", ".join([*SCHEMA[""], *(f"[{s}]" for s in sections)])
            raise ConfigError(f"unknown config entry {key!r}; allowed: {allowed}")
        if not isinstance(value, Mapping):
            raise ConfigError(f"[{key}] must be a table of fields, got {value!r}")
    for section, spec in SCHEMA.items():
        given = raw if section == "" else raw.get(section, {})
        for name, value in given.items():
            if section == "" and name in SCHEMA:
                continue
            if name not in spec:
                raise ConfigError(f"unknown field {_where(section, name)!r}; fields of "
                                  f"[{section or 'top level'}]: {', '.join(spec)}")
            out[section][name] = _check_field(value, spec[name], _where(section, name))
        for name, f in spec.items():
            if name in out[section]:
                continue
            if f.default is _REQUIRED:
                raise ConfigError(f"{_where(section, name)} is required ({f.doc})")
            out[section][name] = f.default
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    out["data"]["files"] = [str((base / p).resolve()) if not Path(p).is_absolute() else p
                            for p in out["data"]["files"]]
    d = out["data"]
    if d["layout"] == "timeseries" and (d["sample_rate"] is None or d["samples_from"] is None):
        raise ConfigError("[data] layout = 'timeseries' needs [data] sample_rate (Hz) and "
                          "[data] samples_from (column)")
    if d["layout"] != "timeseries" and (d["sample_rate"] is not None
                                        or d["samples_from"] is not None):
        raise ConfigError("[data] sample_rate/samples_from apply to layout = 'timeseries' only")
    for n in out["crossbar"]["sizes"]:
        if n % 2:
            raise ConfigError(f"[crossbar] sizes entries must be even (differential pairs), "
                              f"got {n}")
    m = out["mapping"]
    if m["g_min"] is not None and m["g_max"] is not None and not m["g_max"] > m["g_min"]:
        raise ConfigError(f"[mapping] g_max ({m['g_max']:g} S) must exceed g_min "
                          f"({m['g_min']:g} S)")
    tt = out["train"]["train_time"]
    if tt != "all":
        from .. import units

        secs = units.parse_duration(tt, what="[train] train_time")
        if not any(math.isclose(secs, x, rel_tol=1e-9) for x in out["noise"]["times"]):
            raise ConfigError(f"[train] train_time {tt!r} is not one of [noise] times "
                              f"({', '.join(format_duration(x) for x in out['noise']['times'])}) "
                              "nor 'all'")
    top = out.pop("")
    out["seed"] = top["seed"]
    out["threads"] = top["threads"]
    return out


def load_config(path=None) -> tuple[dict, Path]:
    """Read and validate a TOML config (``None``: the shipped example); return it and its path."""
    import tomllib

    p = example_config_path() if path is None else Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a UTF-8 text file ({exc})") from None
    try:
        return validate_config(raw, base_dir=p.resolve().parent), p
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def example_config_path() -> Path:
    """The shipped example config (``xbarlab/data/examples/example_config.toml``)."""
    ref = resources.files("xbarlab").joinpath("data", "examples", "example_config.toml")
    p = Path(str(ref))
    if not p.is_file():
        raise ConfigError(f"the shipped example config is missing ({p}); reinstall xbarlab")
    return p
