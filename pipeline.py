"""The main job, ``xbarlab run``: measured device data -> evaluated noise-robust network.

One command runs the whole chain on a TOML config (default: the shipped example,
``data/examples/example_config.toml``) and writes one report::

    data files ─► load ─────► calibrate ──┬─► crossbar (IR drop, ADC; exact solver) ──┐
    (CSV, HDF5)  (SI table)  (device-     ├─► noise ─► train-hasgd ─┐                  │
                              model.h5)   │  (Δw|w)    train-sgd ───┼─► evaluate ──────┤
                                          └─────────────────────────┘   (accuracy vs t) │
                                                                                       ▼
                                   report.md + report.html (plots inline) + plots/*.png

Stages (:data:`STAGES`) each write one folder ``OUT/<stage>/``; a stage's *key* is the
SHA-256 of its name, the xbarlab version, its config sections (plus the run seed), the
content digests of the upstream stages' outputs and, for ``load``, the SHA-256 of each
input data file. A stage folder is built in ``OUT/.tmp-<stage>-<pid>/``, closed with the
completion marker ``.xbarlab-stage.json`` (key, digest of every output file, time) and
renamed into place, so an interrupted run (Ctrl-C, kill -9) keeps every finished stage
and a rerun resumes: a stage whose marker holds the current key is skipped, and a
changed input or setting reruns exactly the stages that depend on it. Every start,
skip, finish and failure is appended to ``OUT/run-log.jsonl``.

OUT is an xbarlab output folder (:func:`xbarlab.formats.prepare_output_dir`): reusing it
is allowed, a non-empty folder xbarlab did not create is refused without ``force``.
The default OUT is :data:`DEFAULT_OUT` (``./xbarlab-run``).

Config: :func:`load_config` reads TOML with :mod:`tomllib`; :func:`validate_config`
checks every field against :data:`SCHEMA` (unknown sections or fields, wrong types and
values outside the allowed ones raise :class:`~xbarlab.errors.ConfigError` naming the
field and what is allowed) and returns plain SI values.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import os
import shutil
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ConfigError

__all__ = [
    "DEFAULT_OUT",
    "SCHEMA",
    "STAGES",
    "Stage",
    "example_config_path",
    "load_config",
    "validate_config",
    "run_pipeline",
    "stage_keys",
]

#: Output folder used when ``-o`` is not given (relative to the working directory).
DEFAULT_OUT = "xbarlab-run"
MARKER = ".xbarlab-stage.json"
LOG_NAME = "run-log.jsonl"
_TMP_PREFIX = ".tmp-"
_OLD_PREFIX = ".old-"

# --------------------------------------------------------------------------- config schema


@dataclass(frozen=True)
class _Field:
    """One config field: ``kind`` (int, float, str, bool, duration, conductance, choice,
    durations, floats, ints, choices, paths), default (``None``: optional, ``...``:
    required), allowed choices, bounds (inclusive) and a one-line doc."""

    kind: str
    default: Any
    doc: str
    choices: tuple = ()
    lo: float | None = None
    hi: float | None = None


_REQUIRED = ...

#: section -> field -> spec. The top-level keys ("" section) sit outside any table.
SCHEMA: dict[str, dict[str, _Field]] = {
    "": {
        "seed": _Field("int", 0, "master seed; each stage derives its own streams", lo=0),
        "threads": _Field("int", 0, "torch threads for training and evaluation (0 = torch's "
                          "default); not part of any stage key", lo=0),
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
                              lo=0.0),
        "samples_from": _Field("int", None, "timeseries layout: first sample column", lo=0),
        "same_devices": _Field("bool", False, "equal device labels in different files are one "
                               "device"),
        "strict": _Field("bool", False, "reject reads below 0 S"),
    },
    "calibrate": {
        "conditioning": _Field("choice", "auto", "what the model is conditioned on",
                               choices=("auto", "target", "initial read")),
        "drift": _Field("choice", "auto", "drift/relaxation law",
                        choices=("auto", "power-law", "relaxation", "none")),
        "family": _Field("choice", "auto", "programming-error distribution family",
                         choices=("auto", "normal", "bounded", "student-t", "mixture")),
        "window": _Field("conductance", None, "write-verify half-width (estimated if absent)",
                         lo=0.0),
        "min_devices": _Field("int", 20, "levels with fewer devices are skipped", lo=2),
        "n_boot": _Field("int", 50, "bootstrap replicates (devices resampled)", lo=2),
    },
    "mapping": {
        "g_min": _Field("conductance", None, "conductance of weight 0 (default: the lowest "
                        "programming target in the data, else 0 S)", lo=0.0),
        "g_max": _Field("conductance", None, "conductance of max|W| (default: the highest "
                        "programming target in the data, else the highest read)", lo=0.0),
    },
    "crossbar": {
        "sizes": _Field("ints", [64], "array sizes n (n x n physical, n/2 differential pairs; "
                        "even)", lo=2, hi=4096),
        "r_wire": _Field("floats", [0.1, 1.0, 3.0], "wire resistance per segment [Ohm]",
                         lo=0.0),
        "time": _Field("duration", 3600.0, "read time after programming of the conductances"),
        "v_max": _Field("float", 0.2, "full-scale row voltage [V]", lo=1e-6),
        "adc_bits": _Field("int", 8, "ADC resolution (signed)", lo=2, hi=24),
        "vectors": _Field("int", 16, "random input vectors per array", lo=1),
    },
    "noise": {
        "times": _Field("durations", [1.0, 3600.0, 86400.0, 31557600.0],
                        "times after programming of the exported noise tables"),
        "samples": _Field("int", 20000, "device pairs drawn per (weight, time)", lo=100),
        "grid": _Field("int", 41, "points of the normalised-weight grid on [-1, 1]", lo=3),
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
        "subset": _Field("int", 0, "train on the first N examples of the training split "
                         "(0 = all; for quick smoke runs)", lo=0),
        "train_time": _Field("str", "all", "'all' (mixture over the noise times) or one of the "
                             "noise times, e.g. '1d'"),
    },
    "evaluate": {
        "times": _Field("durations", [1.0, 3600.0, 86400.0, 31557600.0],
                        "read times after programming"),
        "programmings": _Field("int", 5, "independent programmings (chips) per point", lo=1),
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
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not
                                                                  isinstance(v, int)):
        raise ConfigError(f"{where} must be {'an integer' if integer else 'a number'}, "
                          f"got {v!r}")
    if not math.isfinite(v):
        raise ConfigError(f"{where} must be finite, got {v!r}")
    if f.lo is not None and v < f.lo:
        raise ConfigError(f"{where} must be >= {f.lo:g}, got {v!r}")
    if f.hi is not None and v > f.hi:
        raise ConfigError(f"{where} must be <= {f.hi:g}, got {v!r}")
    return v


def _check_field(v, f: _Field, where: str):
    from . import units

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
            import re

            mt = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([a-zA-Z]*)\s*", v)
            if not mt:
                raise ConfigError(f"{where} must be a conductance such as \"25uS\" or 2.5e-5 "
                                  f"(S), got {v!r}")
            unit = mt.group(2) or "S"
            try:
                val = float(mt.group(1))
            except ValueError:
                raise ConfigError(f"{where}: {mt.group(1)!r} is not a number") from None
            v = float(units.to_si(np.array([val]), units.check_unit(unit, "conductance",
                                                                      what=where),
                                  "conductance", what=where)[0])
        return float(_check_number(v, f, where, integer=False))
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
        from . import units

        secs = units.parse_duration(tt, what="[train] train_time")
        if not any(math.isclose(secs, x, rel_tol=1e-9) for x in out["noise"]["times"]):
            raise ConfigError(f"[train] train_time {tt!r} is not one of [noise] times "
                              f"({', '.join(_fmt_t(x) for x in out['noise']['times'])}) "
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


# --------------------------------------------------------------------------- stages


@dataclass
class StageContext:
    """What a stage function gets: its (temporary) output folder, the config, the finished
    upstream folders, a seed, and ``progress(total, desc)`` making a tqdm bar."""

    name: str
    out: Path
    config: dict
    upstream: dict[str, Path]
    seed: np.random.SeedSequence
    progress: Callable[..., Any]
    show_progress: bool

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: ``sections`` of the config and ``needs`` (upstream stages) feed its
    key; ``func(ctx) -> summary dict`` writes its files into ``ctx.out``."""

    name: str
    title: str
    sections: tuple[str, ...]
    needs: tuple[str, ...]
    func: Callable[[StageContext], dict]
    #: whether the stage draws random numbers (then the run seed is part of its key)
    random: bool = True
    #: "section.field" entries of ``sections`` that do not affect this stage
    ignore: tuple[str, ...] = ()


def _fmt_t(t: float) -> str:
    from .units import format_duration

    return format_duration(t)


def _missing_part(what: str, exc: Exception) -> ConfigError:
    return ConfigError(f"this xbarlab lacks {what} ({type(exc).__name__}: {exc}); the "
                       "pipeline cannot run this stage")


def _write_json(path: Path, obj) -> None:
    from .formats import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default) + "\n",
                      overwrite=True)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- load -------------------------------------------------------------------------------------


def _stage_load(ctx: StageContext) -> dict:
    from .formats import Provenance, read_measurements, sha256_file, write_measurements

    d = ctx.config["data"]
    files = [Path(p) for p in d["files"]]
    for p in files:
        if not p.is_file():
            raise ConfigError(f"[data] files: {p} does not exist")
    m = read_measurements(files, columns=d["columns"] or None, units=d["units"] or None,
                          layout=d["layout"], sample_rate=d["sample_rate"],
                          samples_from=d["samples_from"], strict=d["strict"],
                          same_devices=d["same_devices"])
    prov = Provenance.for_files("xbarlab run: load", files, settings=_plain(d))
    write_measurements(ctx.out / "measurements.npz", m, provenance=prov)
    s = m.summary()
    s["sha256"] = {str(p): sha256_file(p) for p in files}
    _write_json(ctx.out / "summary.json", s)
    return {"reads": m.n_reads, "devices": m.n_devices,
            "line": f"{m.n_reads:,} reads of {m.n_devices:,} devices from {len(files)} file(s)"}


def _plain(d: Mapping) -> dict:
    return json.loads(json.dumps(dict(d), default=_json_default))


def _measurements(ctx: StageContext):
    from .formats import read_measurements

    return read_measurements(ctx.upstream["load"] / "measurements.npz")


# -- calibrate --------------------------------------------------------------------------------


def _stage_calibrate(ctx: StageContext) -> dict:
    try:
        from .calibration import fit
    except (ImportError, AttributeError) as exc:  # pragma: no cover - part missing
        raise _missing_part("calibration.fit (the calibration issue)", exc) from None
    c = ctx.config["calibrate"]
    m = _measurements(ctx)
    sources = _read_json(ctx.upstream["load"] / "summary.json").get("sources", [])
    steps = ["pivot", "drift / relaxation", "programming error", "read noise"]
    bar = ctx.progress(total=len(steps), desc="calibrate")

    def step(name):
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        model = fit(m, conditioning=None if c["conditioning"] == "auto" else c["conditioning"],
                    drift=c["drift"], family=c["family"], window=c["window"],
                    min_devices=c["min_devices"], n_boot=c["n_boot"], rng=ctx.rng(),
                    sources=sources, progress=step)
    finally:
        bar.close()
    model.to_file(ctx.out / "device-model.h5", provenance=getattr(model, "provenance", None))
    rep = getattr(model, "report", None)
    summary: dict[str, Any] = {"model": repr(model), "conditioning": model.conditioning}
    if rep is not None:
        summary.update(drift_choice=rep.drift_choice, drift_loglik=rep.drift_loglik,
                       skipped=[list(map(float, s[:2])) + [s[2]] for s in rep.skipped],
                       notes=list(rep.notes), n_devices=rep.n_devices, n_reads=rep.n_reads)
    # goodness of fit: KS distance per (level, time point > 0), 20 samples per device
    try:
        from .calibration import ks_table, write_report
    except (ImportError, AttributeError) as exc:
        raise _missing_part("calibration.ks_table/write_report (the calibration issue)",
                            exc) from None
    kt = ks_table(model, m, rng=np.random.default_rng(ctx.seed.spawn(2)[-1]),
                  min_devices=min(50, c["min_devices"]))
    summary["ks"] = {"values": np.asarray(kt.ks, float).tolist(),
                     "level_g": np.asarray(kt.level_g, float).tolist(),
                     "times": np.asarray(kt.t, float).tolist(),
                     "devices": np.asarray(kt.n).tolist(),
                     "cells": int(np.isfinite(kt.ks).sum()),
                     "median": float(kt.median) if np.isfinite(kt.median) else None,
                     "max": (float(np.nanmax(kt.ks)) if np.isfinite(kt.ks).any() else None)}
    # the calibration's own report (plots, report.md): an extra, so a failure there is
    # recorded (with the error) in this run's report instead of discarding the fit
    report_dir = ctx.out / "report"
    try:
        write_report(model, m, report_dir, ks=kt,
                     rng=np.random.default_rng(ctx.seed.spawn(3)[-1]))
        summary["report"] = "report/report.md"
    except Exception as exc:  # noqa: BLE001 - any failure of the optional report
        shutil.rmtree(report_dir, ignore_errors=True)
        summary["report_error"] = f"{type(exc).__name__}: {exc}"
    summary["stats"] = _fitted_stats(model, m, np.random.default_rng(ctx.seed.spawn(4)[-1]))
    g_lo, g_hi = _default_mapping(m)
    summary["mapping_default"] = {"g_min": g_lo, "g_max": g_hi}
    _write_json(ctx.out / "summary.json", summary)
    ks = summary.get("ks", {})
    line = f"{summary.get('drift_choice') or 'no'} drift"
    if ks.get("median") is not None:
        line += f", median KS {ks['median']:.3f} over {ks['cells']} (level, time) cells"
    return {"line": line}


def _fitted_stats(model, m, rng: np.random.Generator, n_model: int = 4000) -> list[dict]:
    """Measured vs model mean and standard deviation of g per (target, time point) [S].

    Target-conditioned data only (each target sampled ``n_model`` times at the time
    points); at most 16 targets and 12 time points (the first ones)."""
    if model.conditioning != "target" or m.g_target is None:
        return []
    tcol = m.time_point if m.time_point is not None else m.time
    targets = np.unique(m.g_target)[:16]
    times = np.unique(tcol)[:12] if tcol is not None else np.array([0.0])
    rows = []
    for gt in targets:
        try:
            sim = np.asarray(model.sample(np.full(n_model, gt), times, rng), dtype=float)
        except ConfigError:  # a time or target the model does not cover
            continue
        sim = sim.reshape(times.size, n_model)
        for k, t in enumerate(times):
            sel = m.g_target == gt
            if tcol is not None:
                sel &= tcol == t
            g = m.g[sel]
            if g.size < 2:
                continue
            rows.append({"g_target": float(gt), "t": float(t), "n": int(g.size),
                         "meas_mean": float(g.mean()), "meas_std": float(g.std(ddof=1)),
                         "model_mean": float(sim[k].mean()),
                         "model_std": float(sim[k].std(ddof=1))})
    return rows


def _default_mapping(m) -> tuple[float, float]:
    if m.g_target is not None and m.g_target.size:
        return float(max(m.g_target.min(), 0.0)), float(m.g_target.max())
    g = m.g[np.isfinite(m.g)]
    return 0.0, float(np.percentile(g, 99.0)) if g.size else 0.0


def _mapping(ctx: StageContext) -> tuple[float, float]:
    """(g_min, g_max) [S] of the weight mapping: the config's, else the data's targets."""
    s = _read_json(ctx.upstream["calibrate"] / "summary.json")["mapping_default"]
    mp = ctx.config["mapping"]
    g_min = mp["g_min"] if mp["g_min"] is not None else s["g_min"]
    g_max = mp["g_max"] if mp["g_max"] is not None else s["g_max"]
    if not g_max > g_min:
        raise ConfigError(f"[mapping] g_max ({g_max:g} S) must exceed g_min ({g_min:g} S)")
    return float(g_min), float(g_max)


def _device(ctx: StageContext):
    from . import calibration, devices

    calibration.CalibratedDevice  # noqa: B018 - registers the "calibrated" file kind
    return devices.load(ctx.upstream["calibrate"] / "device-model.h5")


class _RangedDevice:
    """A device model seen with an explicit input range (fitted models accept any g >= 0)."""

    def __init__(self, device, g_range):
        self._d = device
        self.g_range = tuple(g_range)

    def __getattr__(self, name):
        return getattr(self._d, name)


# -- crossbar ---------------------------------------------------------------------------------


def _stage_crossbar(ctx: StageContext) -> dict:
    try:
        from .crossbar.study import StudyConfig, format_table, run_study, write_study
    except (ImportError, AttributeError) as exc:
        raise _missing_part("crossbar.study (crossbar part 2)", exc) from None
    c = ctx.config["crossbar"]
    g_min, g_max = _mapping(ctx)
    dev = _RangedDevice(_device(ctx), (g_min, g_max))
    seed = int(ctx.seed.generate_state(1, np.uint32)[0])
    cfg = StudyConfig(sizes=tuple(c["sizes"]), r_wire=tuple(c["r_wire"]), vectors=c["vectors"],
                      t=c["time"], v_max=c["v_max"], adc_bits=c["adc_bits"], seed=seed)
    rows = run_study(dev, cfg, progress=ctx.show_progress)
    write_study(rows, ctx.out, title=f"fitted device at t = {_fmt_t(c['time'])}, "
                f"G {g_min * 1e6:.3g}-{g_max * 1e6:.3g} µS")
    _write_json(ctx.out / "summary.json", {"rows": rows, "table_md": format_table(rows),
                                           "g_min": g_min, "g_max": g_max})
    worst = max(rows, key=lambda r: r["ir_drop"])
    return {"line": f"{len(rows)} solves; IR drop up to {100 * worst['ir_drop']:.3g} % "
                    f"(n = {worst['n']}, r = {worst['r_wire_ohm']:g} Ω)"}


# -- noise ------------------------------------------------------------------------------------


def _stage_noise(ctx: StageContext) -> dict:
    try:
        from .nn.export import export_noise
    except (ImportError, AttributeError) as exc:
        raise _missing_part("nn.export.export_noise (nn part 2)", exc) from None
    from .formats import Provenance

    c = ctx.config["noise"]
    g_min, g_max = _mapping(ctx)
    dev = _device(ctx)
    w_grid = np.linspace(-1.0, 1.0, c["grid"])
    tables = export_noise(dev, c["times"], ctx.rng(), g_min=g_min, g_max=g_max, w_grid=w_grid,
                          n_samples=c["samples"], compensation=c["compensation"],
                          allow_extrapolation=True, device_name="calibrated (xbarlab run)")
    prov = Provenance(method="nn.export.export_noise", settings=_plain(c) | {
        "g_min_S": g_min, "g_max_S": g_max})
    tables.write(ctx.out / "noise.h5", provenance=prov)
    # spread and shift at the largest weight, per time (for the report)
    top = int(np.argmax(tables.w_grid))
    per_t = [{"t": float(t), "mean_at_wmax": float(tables.mean[i, top]),
              "std_mean": float(np.mean(tables.std[i])),
              "drift_factor": float(tables.drift_factor[i])}
             for i, t in enumerate(tables.times)]
    _write_json(ctx.out / "summary.json", {
        "times": [float(t) for t in tables.times], "per_time": per_t, "g_min": g_min,
        "g_max": g_max, "weights_map_to": tables.weights_map_to,
        "w_grid": tables.w_grid.tolist(), "std": tables.std.tolist(),
        "mean": tables.mean.tolist()})
    sd = ", ".join(f"{_fmt_t(p['t'])}: σ {p['std_mean']:.3f}" for p in per_t)
    return {"line": f"Δw/max|W| tables at {len(per_t)} times ({sd})"}


# -- training ---------------------------------------------------------------------------------


def _train(ctx: StageContext, *, hasgd: bool) -> dict:
    try:
        import torch

        from .nn import train as T
        from .nn.data import load_dataset, model_config
    except (ImportError, AttributeError) as exc:
        raise _missing_part("nn training (nn part 1)", exc) from None
    c = ctx.config["train"]
    noise = None
    if hasgd:
        noise = _noise_model(ctx)
    data = load_dataset(c["dataset"])
    if c["subset"]:
        import dataclasses

        data = dataclasses.replace(data, x_train=data.x_train[:c["subset"]],
                                   y_train=data.y_train[:c["subset"]])
    cfg = model_config(c["model"], data)
    seed = int(ctx.config["seed"])
    bar = ctx.progress(total=c["epochs"], desc=ctx.name, unit="epoch")

    def cb(epoch, loss, _model):
        bar.set_postfix_str(f"loss {loss:.4f}")
        bar.update(1)

    train_info = {"method": "HA-SGD" if hasgd else "SGD", "samples": c["samples"] if hasgd else 0,
                  "epochs": c["epochs"], "seed": seed, "dataset": c["dataset"],
                  "model": c["model"], "antithetic": bool(c["antithetic"]) if hasgd else False,
                  "train_noise": (noise.to_dict() if noise is not None else {"sigma": 0.0}),
                  "train_time": c["train_time"] if hasgd else None}
    # denormal intermediates in the quantile-table sampler slow CPU training ~10x; flushing
    # them to zero changes values below 1e-38 only (restored afterwards)
    flushed = torch.set_flush_denormal(True)
    try:
        res = T.train(data, cfg, noise=noise, samples=c["samples"] if hasgd else 0,
                      epochs=c["epochs"], seed=seed,
                      antithetic=c["antithetic"] if hasgd else False, callback=cb,
                      out=ctx.out, info=train_info)
    finally:
        bar.close()
        if flushed:
            torch.set_flush_denormal(False)
    history, secs, clean = res.history, res.train_time_s, res.clean_accuracy
    metrics = {"clean_accuracy": clean, "history": history, "train_time_s": secs,
               "model_config": cfg, **train_info,
               "n_train": int(data.x_train.shape[0]), "n_test": int(data.x_test.shape[0])}
    _write_json(ctx.out / T.METRICS_NAME, metrics)
    ep = f"{c['epochs']} epoch{'s' if c['epochs'] != 1 else ''}"
    return {"line": f"{train_info['method']} {c['dataset']}/{c['model']}, {ep}: "
                    f"clean accuracy {clean:.4f} ({secs:.1f} s)"}


@contextlib.contextmanager
def _torch_threads(ctx: StageContext):
    """Run with the config's torch thread count (restored afterwards). Small networks on a
    busy CPU train many times faster on one thread than on oversubscribed ones."""
    import torch

    n = int(ctx.config.get("threads", 0))
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _noise_model(ctx: StageContext):
    """The torch-side noise of the exported file (nn part 2), at train_time or a mixture."""
    path = ctx.upstream["noise"] / "noise.h5"
    c = ctx.config["train"]
    try:
        from .nn import noise_file
    except ImportError as exc:
        noise_file = None
        err = exc
    if noise_file is not None and hasattr(noise_file, "load_noise"):
        t = None if c["train_time"] == "all" else _parse_t(c["train_time"])
        return noise_file.load_noise(path, time=t)
    if noise_file is None:
        raise _missing_part("nn.noise_file (nn part 2: noise files as training noise)", err)
    raise _missing_part("nn.noise_file.load_noise (nn part 2)", AttributeError("load_noise"))


def _parse_t(s: str) -> float:
    from .units import parse_duration

    return parse_duration(s, what="[train] train_time")


def _stage_train_sgd(ctx: StageContext) -> dict:
    with _torch_threads(ctx):
        return _train(ctx, hasgd=False)


def _stage_train_hasgd(ctx: StageContext) -> dict:
    with _torch_threads(ctx):
        return _train(ctx, hasgd=True)


# -- evaluate ---------------------------------------------------------------------------------


def _stage_evaluate(ctx: StageContext) -> dict:
    from .nn.data import load_dataset
    from .nn.evaluate import evaluate
    from .nn.train import load_trained

    c = ctx.config["evaluate"]
    g_min, g_max = _mapping(ctx)
    dev = _device(ctx)
    # one seed for both networks: the same chips (common random numbers) where shapes agree
    eval_seed = ctx.seed.spawn(1)[0]
    with _torch_threads(ctx):
        rows, raw = _evaluate_both(ctx, c, dev, g_min, g_max, eval_seed, load_trained,
                                   load_dataset, evaluate)
    _write_json(ctx.out / "evaluation.json", {"rows": rows, "g_min": g_min, "g_max": g_max,
                                              "raw": raw})
    last = max(c["times"])
    at = {(r["method"], r["compensation"]): r["accuracy_mean"] for r in rows
          if r["t"] == last and r["model_draw"] == "fit"}
    parts = [f"{m}/{k}: {v:.3f}" for (m, k), v in at.items()]
    return {"line": f"accuracy at {_fmt_t(last)}: " + ", ".join(parts)}


def _evaluate_both(ctx, c, dev, g_min, g_max, eval_seed, load_trained, load_dataset, evaluate):
    from .crossbar.tiling import TileConfig
    from .nn.evaluate import EvaluationSettings

    data = None
    rows, raw = [], {}
    comp = c["compensation"]
    settings = EvaluationSettings(
        times=tuple(c["times"]), programmings=c["programmings"], modes=("statistical",),
        compensations=(comp,) if isinstance(comp, str) else tuple(comp),
        tile=TileConfig(rows=256, cols=256, g_min=g_min, g_max=g_max), bootstrap=c["bootstrap"])
    for method, up in (("SGD", "train-sgd"), ("HA-SGD", "train-hasgd")):
        net, blob = load_trained(ctx.upstream[up])
        if data is None:
            data = load_dataset(blob["train"]["dataset"])
        ev = evaluate(net, data.x_test, data.y_test, dev, settings,
                      np.random.default_rng(eval_seed), progress=ctx.show_progress)
        raw[method] = ev
        for r in ev["results"]:
            rows.append({"method": method, "t": r["time_s"], "compensation": r["compensation"],
                         "model_draw": r.get("model_draw", "fit"),
                         "accuracy_mean": r["accuracy_mean"], "accuracy_std": r["accuracy_std"],
                         "n_programmings": r["n_programmings"]})
    return rows, raw


# -- report -----------------------------------------------------------------------------------


def _stage_report(ctx: StageContext) -> dict:
    n_plots = _write_report(ctx)
    return {"line": f"report.md, report.html and {n_plots} plots"}


#: The stages in execution order.
STAGES: tuple[Stage, ...] = (
    Stage("load", "load measurements", ("data",), (), _stage_load, random=False),
    Stage("calibrate", "calibrate device model", ("calibrate",), ("load",), _stage_calibrate),
    Stage("crossbar", "crossbar study (IR drop, ADC)", ("mapping", "crossbar"), ("calibrate",),
          _stage_crossbar),
    Stage("noise", "export weight-domain noise", ("mapping", "noise"), ("calibrate",),
          _stage_noise),
    Stage("train-sgd", "train plain SGD baseline", ("train",), (), _stage_train_sgd,
          ignore=("train.samples", "train.antithetic", "train.train_time")),
    Stage("train-hasgd", "train HA-SGD against the noise", ("train",), ("noise",),
          _stage_train_hasgd),
    Stage("evaluate", "analog evaluation over time", ("mapping", "evaluate"),
          ("calibrate", "train-sgd", "train-hasgd"), _stage_evaluate),
    Stage("report", "report", ("report",),
          ("load", "calibrate", "crossbar", "noise", "train-sgd", "train-hasgd", "evaluate"),
          _stage_report, random=False),
)
_BY_NAME = {s.name: s for s in STAGES}


# --------------------------------------------------------------------------- runner


def _sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=_json_default)
                          .encode()).hexdigest()


def _folder_digest(folder: Path) -> dict[str, str]:
    from .formats import sha256_file

    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MARKER:
            out[p.relative_to(folder).as_posix()] = sha256_file(p)
    return out


def _stage_settings(stage: Stage, config: dict) -> dict:
    settings = {s: dict(config[s]) for s in stage.sections}
    for entry in stage.ignore:
        sec, name = entry.split(".")
        settings[sec].pop(name)
    if stage.random:
        settings["seed"] = config["seed"]
    if stage.name == "load":
        from .formats import sha256_file

        data = dict(config["data"])
        files = data.pop("files")
        missing = [p for p in files if not Path(p).is_file()]
        if missing:
            raise ConfigError(f"[data] files: {missing[0]} does not exist")
        settings["data"] = data
        settings["inputs"] = [sha256_file(p) for p in files]  # content, not location
    return settings


def stage_keys(config: dict, out) -> dict[str, str | None]:
    """The key each stage would have now (None where an upstream stage is not finished)."""
    out = Path(out)
    keys: dict[str, str | None] = {}
    for st in STAGES:
        ups = {}
        for u in st.needs:
            mk = _marker(out / u)
            ups[u] = mk["digest"] if mk and mk.get("key") == keys.get(u) else None
        if any(v is None for v in ups.values()):
            keys[st.name] = None
            continue
        keys[st.name] = _sha256_json({"stage": st.name, "xbarlab": __version__,
                                      "settings": _stage_settings(st, config),
                                      "upstream": ups})
    return keys


def _marker(folder: Path) -> dict | None:
    p = folder / MARKER
    if not p.is_file():
        return None
    try:
        mk = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # every output the marker lists must still be there
    for rel in mk.get("files", {}):
        if not (folder / rel).is_file():
            return None
    return mk


def _log(out: Path, **event) -> None:
    event = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **event}
    with open(out / LOG_NAME, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, default=_json_default) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _clean_leftovers(out: Path) -> None:
    for p in out.iterdir():
        if p.name.startswith((_TMP_PREFIX, _OLD_PREFIX)) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def _seed_for(seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(zlib.crc32(name.encode()),))


def run_pipeline(config: dict, out=DEFAULT_OUT, *, force: bool = False, progress: bool = True,
                 stages: tuple[str, ...] | None = None, command: str = "run",
                 on_stage_start: Callable[[str, Path], None] | None = None,
                 echo: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the pipeline of a validated ``config`` into the output folder ``out``.

    ``force``: reuse a non-empty folder xbarlab did not create; ``progress``: show tqdm
    bars; ``stages``: stop after the last of these (default: all); ``on_stage_start(name,
    tmp_folder)``: called before a stage runs (tests use it to interrupt a run);
    ``echo``: where the one-line-per-stage messages go (default: ``tqdm.write``).
    Returns ``{"out": Path, "status": {stage: "ran" | "cached"}, "report": Path | None,
    "seconds": {stage: s}}``.
    """
    from tqdm import tqdm

    from .formats import prepare_output_dir

    out = prepare_output_dir(Path(out), force=force, command=command)
    _clean_leftovers(out)
    say = echo or tqdm.write
    todo = list(STAGES)
    if stages is not None:
        unknown = [s for s in stages if s not in _BY_NAME]
        if unknown:
            raise ConfigError(f"unknown stage {unknown[0]!r}; stages: "
                              f"{', '.join(_BY_NAME)}")
        last = max(list(_BY_NAME).index(s) for s in stages)
        todo = todo[:last + 1]

    def bar(**kw):
        kw.setdefault("leave", False)
        kw.setdefault("dynamic_ncols", True)
        return tqdm(disable=not progress, **kw)

    status: dict[str, str] = {}
    seconds: dict[str, float] = {}
    keys: dict[str, str] = {}
    digests: dict[str, str] = {}
    _log(out, event="run-start", xbarlab=__version__)
    n = len(todo)
    overall = tqdm(total=n, desc="xbarlab run", unit="stage", disable=not progress,
                   dynamic_ncols=True, leave=False)
    try:
        _run_stages(todo, config, out, say, bar, overall, status, seconds, keys, digests,
                    progress, on_stage_start)
    finally:
        overall.close()
    report = None
    if "report" in status:
        report = _publish_report(out)
    _log(out, event="run-end", status=status)
    return {"out": out, "status": status, "report": report, "seconds": seconds, "keys": keys}


def _run_stages(todo, config, out, say, bar, overall, status, seconds, keys, digests,
                progress, on_stage_start) -> None:
    n = len(todo)
    for i, st in enumerate(todo, 1):
        overall.set_postfix_str(st.name)
        ups = {u: digests[u] for u in st.needs}
        key = _sha256_json({"stage": st.name, "xbarlab": __version__,
                            "settings": _stage_settings(st, config), "upstream": ups})
        keys[st.name] = key
        final = out / st.name
        mk = _marker(final)
        head = f"[{i}/{n}] {st.name:<12}"
        if mk is not None and mk.get("key") == key:
            status[st.name] = "cached"
            digests[st.name] = mk["digest"]
            seconds[st.name] = 0.0
            _log(out, event="cached", stage=st.name, key=key)
            say(f"{head} cached   {mk.get('line', '')}")
            overall.update(1)
            continue
        tmp = out / f"{_TMP_PREFIX}{st.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        ctx = StageContext(name=st.name, out=tmp, config=config,
                           upstream={u: out / u for u in st.needs} | _all_upstream(out, st),
                           seed=_seed_for(config["seed"], st.name), progress=bar,
                           show_progress=progress)
        _log(out, event="start", stage=st.name, key=key)
        t0 = time.perf_counter()
        try:
            if on_stage_start is not None:
                on_stage_start(st.name, tmp)
            info = st.func(ctx) or {}
        except BaseException as exc:
            _log(out, event="failed", stage=st.name, key=key,
                 error=f"{type(exc).__name__}: {exc}")
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        secs = time.perf_counter() - t0
        files = _folder_digest(tmp)
        digest = _sha256_json(files)
        marker = {"stage": st.name, "key": key, "digest": digest, "files": files,
                  "seconds": secs, "line": info.get("line", ""), "xbarlab": __version__,
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_json(tmp / MARKER, marker)
        if final.exists():  # replace the stale folder: move aside, then swap in
            old = out / f"{_OLD_PREFIX}{st.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        status[st.name] = "ran"
        seconds[st.name] = secs
        digests[st.name] = digest
        _log(out, event="done", stage=st.name, key=key, seconds=round(secs, 3))
        say(f"{head} done     {info.get('line', '')} ({secs:.1f} s)")
        overall.update(1)


def _all_upstream(out: Path, st: Stage) -> dict[str, Path]:
    # the report reads every finished stage; others only what they declare
    return {s.name: out / s.name for s in STAGES} if st.name == "report" else {}


def _publish_report(out: Path) -> Path:
    """Copy the report stage's report.html/report.md to OUT's top level (atomic)."""
    from .formats import write_text_atomic

    src = out / "report"
    write_text_atomic(out / "report.html", (src / "report.html").read_text(encoding="utf-8"),
                      overwrite=True)
    md = (src / "report.md").read_text(encoding="utf-8")
    md = md.replace("](plots/", "](report/plots/")
    write_text_atomic(out / "report.md", md, overwrite=True)
    return out / "report.html"


def _embed_png(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")




# --------------------------------------------------------------------------- report
# A report is a list of blocks rendered twice: Markdown (plots as files) and HTML (plots
# inline as base64, so report.html opens anywhere on its own).


def _pct(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.1f} %"


def _us(g) -> str:
    return f"{g * 1e6:.4g} µS"


def _html_escape(s: str) -> str:
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _render_md(blocks) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind == "h1":
            out.append(f"# {b[1]}\n")
        elif kind == "h2":
            out.append(f"## {b[1]}\n")
        elif kind == "p":
            out.append(f"{b[1]}\n")
        elif kind == "table":
            head, rows = b[1], b[2]
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out.extend("| " + " | ".join(str(c) for c in r) + " |" for r in rows)
            out.append("")
        elif kind == "img":
            out.append(f"![{b[2]}](plots/{b[1].name})\n")
        elif kind == "pre":
            out.append("```\n" + b[1].rstrip() + "\n```\n")
    return "\n".join(out)


def _render_html(blocks, title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_html_escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_html_escape(b[1])}</p>")
        elif kind == "table":
            head, rows = b[1], b[2]
            h = "".join(f"<th>{_html_escape(c)}</th>" for c in head)
            r = "".join("<tr>" + "".join(f"<td>{_html_escape(c)}</td>" for c in row) + "</tr>"
                        for row in rows)
            body.append(f"<table><thead><tr>{h}</tr></thead><tbody>{r}</tbody></table>")
        elif kind == "img":
            body.append(f'<figure><img src="{_embed_png(b[1])}" alt="{_html_escape(b[2])}">'
                        f"<figcaption>{_html_escape(b[2])}</figcaption></figure>")
        elif kind == "pre":
            body.append(f"<pre>{_html_escape(b[1])}</pre>")
    css = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;"
           "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
           "padding:.25em .6em;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
           "figure{margin:1em 0}figcaption{font-size:.9em;color:#555}pre{background:#f6f6f6;"
           "padding:.6em;overflow-x:auto}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_html_escape(title)}</title><style>{css}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig, path: Path) -> Path:
    from .formats import atomic_output

    plt = _plt()
    fig.tight_layout()
    with atomic_output(path, overwrite=True, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def _maybe(path: Path):
    try:
        return _read_json(path)
    except (OSError, ValueError):
        return None


def _write_report(ctx: StageContext) -> int:
    """Write ``report.md``, ``report.html`` and ``plots/*.png`` into ``ctx.out``."""
    plt = _plt()
    up = ctx.upstream
    cfg = ctx.config
    plots = ctx.out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    title = cfg["report"]["title"]
    B: list = [("h1", title)]
    B.append(("p", f"Made by xbarlab {__version__} (`xbarlab run`), seed {cfg['seed']}, "
                   f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every number and "
                   "plot below comes from this run; each stage's files are in the folder of "
                   "the same name beside this report."))

    # -- data
    s = _maybe(up["load"] / "summary.json") or {}
    B.append(("h2", "1. Measured data"))
    rows = [["files", ", ".join(Path(p).name for p in s.get("sources", []))],
            ["reads", f"{s.get('reads', 0):,}"], ["devices", f"{s.get('devices', 0):,}"]]
    if "targets" in s:
        tg = s["targets"]
        rows.append(["programming targets",
                     f"{tg['count']} ({_us(tg['min'])} to {_us(tg['max'])})"])
    if "time_points" in s:
        tp = s["time_points"]
        vals = tp["values"] or [tp["min"], tp["max"]]
        rows.append(["time points", f"{tp['count']}: " + ", ".join(_fmt_t(v) for v in vals)])
    if "g_min" in s:
        rows.append(["conductance", f"{_us(s['g_min'])} to {_us(s['g_max'])}"])
    rows.append(["reads below 0 S", str(s.get("reads_below_zero", 0))])
    if s.get("reads_at_zero"):
        rows.append(["reads of exactly 0 S", f"{s['reads_at_zero']:,}"])
    B.append(("table", ["", "value"], rows))

    # -- calibration
    c = _maybe(up["calibrate"] / "summary.json") or {}
    B.append(("h2", "2. Calibrated device model"))
    B.append(("p", f"Model: {c.get('model', '?')}, conditioned on the "
                   f"{c.get('conditioning', '?')}. Drift law chosen: "
                   f"{c.get('drift_choice') or 'none'}"
                   + (" (held-out mean log-likelihood per read: " + ", ".join(
                       f"{k} {v:.3f}" for k, v in c.get("drift_loglik", {}).items()) + ")"
                      if c.get("drift_loglik") else "") + "."))
    for note in c.get("notes", []):
        B.append(("p", note))
    if c.get("skipped"):
        B.append(("p", "Skipped for too few devices: " + "; ".join(
            f"{_us(g)} ({int(n)} devices, {part})" for g, n, part in c["skipped"])))
    if c.get("stats"):
        B.append(("p", "Fitted statistics: mean and standard deviation of the conductance per "
                       "programming target and time point, measured vs sampled from the "
                       "fitted model (4,000 cells per target)."))
        B.append(("table", ["target", "time", "devices", "measured mean ± std",
                            "model mean ± std"],
                  [[_us(r["g_target"]), _fmt_t(r["t"]), r["n"],
                    f"{r['meas_mean'] * 1e6:.3f} ± {r['meas_std'] * 1e6:.3f} µS",
                    f"{r['model_mean'] * 1e6:.3f} ± {r['model_std'] * 1e6:.3f} µS"]
                   for r in c["stats"]]))
    ks = c.get("ks") or {}
    if ks.get("values"):
        vals = np.asarray(ks["values"], dtype=float)
        B.append(("p", f"Goodness of fit: KS distance between measured reads and model "
                       f"samples per (level, time point) cell; median {ks['median']:.3f}, "
                       f"worst {ks['max']:.3f} over {ks['cells']} cells."))
        has_own = (up["calibrate"] / "report" / "ks_heatmap.png").is_file()
        if vals.ndim == 2 and not has_own:  # the calibration report draws its own
            fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.35 * vals.shape[0] + 1.5))
            im = ax.imshow(np.ma.masked_invalid(vals), aspect="auto", cmap="viridis", vmin=0)
            fig.colorbar(im, ax=ax, label="KS distance")
            tl = ks.get("times")
            if tl and len(tl) == vals.shape[1]:
                ax.set_xticks(range(len(tl)), [_fmt_t(t) for t in tl], rotation=45)
            gl = ks.get("level_g")
            if gl and len(gl) == vals.shape[0]:
                ax.set_yticks(range(len(gl)), [f"{g * 1e6:.3g}" for g in gl])
                ax.set_ylabel("level [µS]")
            ax.set_xlabel("time after programming")
            ax.set_title("KS distance, measured vs model")
            B.append(("img", _savefig(fig, plots / "calibration_ks.png"),
                      "KS distance per (level, time point)"))
    if c.get("report_error"):
        B.append(("p", f"The calibration's own report could not be drawn: "
                       f"{c['report_error']}"))
    crep = up["calibrate"] / "report"
    if crep.is_dir():
        for png in sorted(crep.glob("*.png")):
            dst = plots / f"calibration_{png.name}"
            shutil.copyfile(png, dst)
            B.append(("img", dst, f"calibration report: {png.stem.replace('_', ' ')}"))

    # -- crossbar
    x = _maybe(up["crossbar"] / "summary.json") or {}
    B.append(("h2", "3. Crossbar study (exact circuit solver)"))
    xc = cfg["crossbar"]
    B.append(("p", f"Weights U(-1, 1) on differential pairs ({_us(x.get('g_min', 0))} to "
                   f"{_us(x.get('g_max', 0))}), conductances of the fitted device read at "
                   f"{_fmt_t(xc['time'])}, inputs U(0, 1) x {xc['v_max']:g} V. Relative "
                   "output errors ||y - y_ref|| / ||y_ref||: IR drop against the ideal "
                   "product of the same conductances; ADC ("
                   f"{xc['adc_bits']} bits) against the circuit output; device against the "
                   "targets; total = circuit + calibrated ADC + device against the targets."))
    if x.get("rows"):
        B.append(("table", ["n", "r [Ω]", "IR drop", "ADC max-range", "ADC calibrated",
                            "device", "total", "solve [s]"],
                  [[r["n"], f"{r['r_wire_ohm']:g}", _pct(r["ir_drop"]), _pct(r["adc_max"]),
                    _pct(r["adc_cal"]), _pct(r["device"]), _pct(r["total"]),
                    f"{r['solve_s']:.2f}"] for r in x["rows"]]))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for n_ in sorted({r["n"] for r in x["rows"]}):
            sel = sorted((r for r in x["rows"] if r["n"] == n_), key=lambda r: r["r_wire_ohm"])
            rw = [max(r["r_wire_ohm"], 1e-3) for r in sel]
            ax.loglog(rw, [100 * max(r["ir_drop"], 1e-9) for r in sel], "o-",
                      label=f"IR drop, {n_}×{n_}")
            ax.loglog(rw, [100 * max(r["total"], 1e-9) for r in sel], "s--",
                      label=f"total, {n_}×{n_}")
            ax.axhline(100 * sel[0]["adc_cal"], color="k", ls=":", lw=1)
        ax.set_xlabel("wire resistance per segment [Ω]")
        ax.set_ylabel("relative output error [%]")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, title="dotted: calibrated ADC alone", title_fontsize=8)
        B.append(("img", _savefig(fig, plots / "crossbar_error.png"),
                  "Crossbar output error vs wire resistance"))

    # -- noise
    nz = _maybe(up["noise"] / "summary.json") or {}
    B.append(("h2", "4. Weight-domain noise exported from the fitted device"))
    if nz.get("per_time"):
        B.append(("p", f"Weights map to differential pairs between {_us(nz['g_min'])} and "
                       f"{_us(nz['g_max'])} (weights map to {nz.get('weights_map_to')}); "
                       "Δw is in units of max|W|. Compensation: "
                       f"{cfg['noise']['compensation']}."))
        compensated = cfg["noise"]["compensation"] != "none"
        head = ["time", "mean σ(Δw)", "μ(Δw) at w = max|W|"]
        rows = [[_fmt_t(p["t"]), f"{p['std_mean']:.4f}", f"{p['mean_at_wmax']:+.4f}"]
                for p in nz["per_time"]]
        if compensated:  # without compensation the factor is 1 by definition: no column
            head.append("drift factor α applied")
            for r, p in zip(rows, nz["per_time"], strict=True):
                r.append(f"{p['drift_factor']:.4f}")
        B.append(("table", head, rows))
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        u = np.asarray(nz["w_grid"])
        for i, t in enumerate(nz["times"]):
            a1.plot(u, np.asarray(nz["std"])[i], label=_fmt_t(t))
            a2.plot(u, np.asarray(nz["mean"])[i], label=_fmt_t(t))
        a1.set_xlabel("w / max|W|")
        a1.set_ylabel("σ(Δw) / max|W|")
        a2.set_xlabel("w / max|W|")
        a2.set_ylabel("μ(Δw) / max|W|")
        a1.legend(fontsize=8)
        for a in (a1, a2):
            a.grid(True, alpha=0.3)
        B.append(("img", _savefig(fig, plots / "noise.png"),
                  "Spread and mean shift of the weight perturbation vs weight"))

    # -- training
    tr = {m: _maybe(up[s] / "metrics.json") for m, s in (("SGD", "train-sgd"),
                                                          ("HA-SGD", "train-hasgd"))}
    B.append(("h2", "5. Training"))
    tc = cfg["train"]
    when = ("a mixture over all exported times" if tc["train_time"] == "all"
            else f"at {tc['train_time']}")
    B.append(("p", f"{tc['dataset']} / {tc['model']}, {tc['epochs']} epochs, seed "
                   f"{cfg['seed']}. HA-SGD averages the gradients of L = {tc['samples']} "
                   f"weight perturbations per minibatch drawn from the exported noise ({when})."))
    B.append(("table", ["method", "L", "clean test accuracy", "training time"],
              [[m, v.get("samples", 0), f"{v['clean_accuracy']:.4f}",
                f"{v['train_time_s']:.1f} s"] for m, v in tr.items() if v]))
    if any(tr.values()):
        fig, ax = plt.subplots(figsize=(5.6, 3.4))
        for m, v in tr.items():
            if v and v.get("history"):
                ax.plot([h["epoch"] for h in v["history"]], [h["loss"] for h in v["history"]],
                        "o-", label=m)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (under its noise)")
        ax.grid(True, alpha=0.3)
        ax.legend()
        B.append(("img", _savefig(fig, plots / "training_loss.png"), "Training loss"))

    # -- evaluation
    ev = _maybe(up["evaluate"] / "evaluation.json") or {}
    B.append(("h2", "6. Analog accuracy over time"))
    rows_ev = [dict(r, compensation=r["compensation"] + (
        " (bootstrap models)" if r.get("model_draw") == "bootstrap" else ""))
        for r in ev.get("rows", [])]
    if rows_ev:
        B.append(("p", "Each network is programmed once per chip through the fitted device "
                       "model (per-cell state kept) and read at each time with read noise, "
                       f"over {cfg['evaluate']['programmings']} independent programmings; "
                       "'global' divides the outputs by one drift-compensation factor per "
                       "time."))
        times = sorted({r["t"] for r in rows_ev})
        combos = list(dict.fromkeys((r["method"], r["compensation"]) for r in rows_ev))
        look = {(r["method"], r["compensation"], r["t"]): r for r in rows_ev}
        B.append(("table", ["method", "compensation", *[_fmt_t(t) for t in times]],
                  [[m, comp, *[(f"{look[(m, comp, t)]['accuracy_mean']:.4f} ± "
                                f"{look[(m, comp, t)]['accuracy_std']:.4f}")
                               if (m, comp, t) in look else "–" for t in times]]
                   for m, comp in combos]))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for m, comp in combos:
            pts = [look[(m, comp, t)] for t in times if (m, comp, t) in look]
            ax.errorbar([max(p["t"], 1e-3) for p in pts], [p["accuracy_mean"] for p in pts],
                        yerr=[p["accuracy_std"] for p in pts], capsize=3,
                        marker="o" if m == "HA-SGD" else "s",
                        ls="-" if comp.startswith("global") else "--", label=f"{m}, {comp}")
        for v in tr.values():
            if v:
                ax.axhline(v["clean_accuracy"], lw=0.8, color="grey", ls=":")
        ax.set_xscale("log")
        ax.set_xlabel("time after programming [s]")
        ax.set_ylabel("test accuracy")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        B.append(("img", _savefig(fig, plots / "accuracy_vs_time.png"),
                  "Accuracy vs time: plain SGD vs HA-SGD, with and without drift "
                  "compensation (dotted: clean digital accuracy)"))

    B.append(("h2", "Settings"))
    B.append(("pre", json.dumps({k: v for k, v in cfg.items()}, indent=2,
                                default=_json_default)))
    from .formats import write_text_atomic

    write_text_atomic(ctx.out / "report.md", _render_md(B), overwrite=True)
    write_text_atomic(ctx.out / "report.html", _render_html(B, title), overwrite=True)
    return sum(1 for b in B if b[0] == "img")
