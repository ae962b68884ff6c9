"""Study files: a TOML file that names a point kind and the points to run.

Schema (every table but ``[study]`` optional; see README, "Sweeps")::

    [study]
    kind = "crossbar"          # a point kind of xbarlab.sweep.kinds.KINDS
    seed = 0                   # the study seed, integer >= 0 (default 0)
    title = "..."              # heading of report.md (default: the file's name)
    metrics = ["total"]        # metrics to plot (default: every metric of the kind)
    programmings = 8           # adds the axis programming = 0..N-1 (kinds that have it)
    max_points = 5000          # more points are refused without --yes (default 5000)

    [settings]                 # fixed settings, shared by every point
    device = "pcm-ibm-2020"

    [grid]                     # swept settings: every combination (last axis fastest)
    adc_bits = [6, 8]
    time = ["1h", "1d"]        # durations with units, or numbers in s

    [[points]]                 # explicit points (each with the fixed settings), besides
    n = 64                     # or instead of the grid
    r_wire = 2.0

A setting not given anywhere takes the kind's default; every point's settings (in SI
units, defaults included) give its key and seed (:mod:`xbarlab.sweep.points`), so writing
``"1h"`` or ``3600`` gives the same point, and adding a point or an axis value leaves the
other points' keys as they were. Durations take units (``"1h"``, ``"1d"``, ``"1y"``),
conductances too (``"5uS"``); a device-model file, and a file setting such as the
measurements of ``calibration-bootstrap``, is named relative to the study file and keyed by
its absolute path.

:func:`load_study` checks the whole file before anything runs: unknown tables, keys,
kinds or settings, values of the wrong type or range, empty axes, duplicate points, a
point whose parts cannot be built (a device model missing, an odd array size, a range
outside the device model's), and more points than ``max_points`` (unless ``yes``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataFormatError
from .kinds import Kind, Setting, check_value, get_kind
from .points import Point, make_point

__all__ = ["Study", "load_study", "parse_study", "DEFAULT_MAX_POINTS"]

#: Points a study may hold without ``yes`` when its file does not say ``max_points``.
DEFAULT_MAX_POINTS = 5000

_STUDY_KEYS = ("kind", "seed", "title", "metrics", "programmings", "max_points")
_TABLES = ("study", "settings", "grid", "points")


@dataclass(frozen=True)
class Study:
    """A checked study: its kind, points and what to show."""

    #: The point kind (:data:`xbarlab.sweep.kinds.KINDS`).
    kind: Kind
    #: The study seed. [1]
    seed: int
    #: The points, in the order the file defines them (grid first, then ``[[points]]``).
    points: tuple[Point, ...]
    #: The settings that vary between points, in the file's order.
    axes: tuple[str, ...]
    #: The metrics to plot.
    metrics: tuple[str, ...]
    #: Heading of the report.
    title: str
    #: The study file's text, as read.
    text: str = ""


def _parse_value(setting: Setting, value, where: str, base: Path | None):
    """One value of a study file in SI units, checked."""
    from ..units import parse_conductance, parse_duration

    if isinstance(value, (list, dict)):
        raise ConfigError(f"{where}: setting {setting.name!r} takes one value, got {value!r}")
    if setting.type == "duration":
        value = parse_duration(value, what=f"{where}: setting {setting.name!r}")
    elif setting.type == "conductance" and not (isinstance(value, str)
                                                 and value in setting.choices):
        value = parse_conductance(value, what=f"{where}: setting {setting.name!r}")
    elif setting.name == "device" and isinstance(value, str) and base is not None and (
            "/" in value or value.lower().endswith((".h5", ".hdf5"))):
        value = os.path.abspath(base / value)
    elif setting.type == "path" and isinstance(value, str) and value and base is not None:
        value = os.path.abspath(base / value)
    try:
        return check_value(setting, value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_keys(table, allowed, where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; valid keys: "
                              + ", ".join(allowed))


def _study_header(doc: dict, where: str) -> tuple[Kind, dict]:
    head = doc.get("study")
    if head is None:
        raise ConfigError(f"{where}: the [study] table is missing (it names the kind)")
    _check_keys(head, _STUDY_KEYS, f"{where}: [study]")
    if "kind" not in head:
        raise ConfigError(f"{where}: [study] kind is missing")
    kind = get_kind(head["kind"]) if isinstance(head["kind"], str) else get_kind(
        repr(head["kind"]))
    from ..checks import check_number

    out = {"seed": check_number(head.get("seed", 0), what=f"{where}: [study] seed",
                                integer=True, lo=0),
           "max_points": check_number(head.get("max_points", DEFAULT_MAX_POINTS),
                                      what=f"{where}: [study] max_points", integer=True, lo=1)}
    metrics = head.get("metrics", list(kind.metrics))
    if not isinstance(metrics, list) or not metrics or any(m not in kind.metrics
                                                          for m in metrics):
        raise ConfigError(f"{where}: [study] metrics must be a non-empty list of "
                          f"{', '.join(kind.metrics)}; got {metrics!r}")
    out["metrics"] = tuple(metrics)
    title = head.get("title", "")
    if not isinstance(title, str):
        raise ConfigError(f"{where}: [study] title must be a string, got {title!r}")
    out["title"] = title
    progs = head.get("programmings")
    if progs is not None:
        kind.setting("programming")
        out["programmings"] = check_number(progs, what=f"{where}: [study] programmings",
                                           integer=True, lo=1)
    return kind, out


def parse_study(doc: dict, *, where: str = "study", base: Path | None = None,
                yes: bool = False, text: str = "") -> Study:
    """The :class:`Study` of a parsed study file ``doc`` (see the module docstring).

    Parameters
    ----------
    doc : dict
        The file's tables, as :mod:`tomllib` reads them.
    where : str
        What to call the file in messages (its path).
    base : Path, optional
        Folder that relative device-model paths are relative to.
    yes : bool
        Accept more points than ``max_points``.
    text : str
        The file's text (kept for the report).

    Raises
    ------
    ConfigError
        Anything the module docstring lists, with the offending value.
    """
    _check_keys(doc, _TABLES, where)
    kind, head = _study_header(doc, where)
    fixed = {}
    for name, value in (doc.get("settings") or {}).items():
        fixed[name] = _parse_value(kind.setting(name), value, f"{where}: [settings]", base)
    grid_doc = doc.get("grid") or {}
    _check_keys(grid_doc, [s.name for s in kind.settings], f"{where}: [grid]")
    axes: dict[str, list] = {}
    for name, values in grid_doc.items():
        setting = kind.setting(name)
        if not isinstance(values, list):
            raise ConfigError(f"{where}: [grid] {name} must be a list of values, got "
                              f"{values!r}")
        if not values:
            raise ConfigError(f"{where}: [grid] axis {name!r} is empty; give it at least one "
                              "value")
        if name in fixed:
            raise ConfigError(f"{where}: setting {name!r} is both in [settings] and [grid]")
        axes[name] = [_parse_value(setting, v, f"{where}: [grid] {name}", base)
                      for v in values]
    explicit = doc.get("points")
    if explicit is not None and not (isinstance(explicit, list) and explicit):
        raise ConfigError(f"{where}: [[points]] must be a non-empty list of tables")
    combos = _combinations(axes) if axes or explicit is None else []
    for i, entry in enumerate(explicit or []):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: [[points]] entry {i + 1} must be a table")
        combos.append({name: _parse_value(kind.setting(name), v,
                                          f"{where}: [[points]] entry {i + 1}", base)
                       for name, v in entry.items()})
    if "programmings" in head:
        if "programming" in axes or "programming" in fixed:
            raise ConfigError(f"{where}: [study] programmings and a 'programming' setting "
                              "both given; keep one")
        axes["programming"] = list(range(head["programmings"]))
        combos = [{**c, "programming": k} for c in combos for k in axes["programming"]]
    n = len(combos)
    if n > head["max_points"] and not yes:
        raise ConfigError(f"{where}: the study has {n} points, more than max_points "
                          f"{head['max_points']}; pass yes=True to run them all")
    points = _build_points(kind, fixed, combos, head["seed"], where)
    varying = [s.name for s in kind.settings if len({p.settings[s.name] for p in points}) > 1]
    order = [a for a in axes if a in varying] + [a for a in varying if a not in axes]
    return Study(kind=kind, seed=head["seed"], points=tuple(points), axes=tuple(order),
                 metrics=head["metrics"], title=head["title"], text=text)


def _combinations(axes: dict[str, list]) -> list[dict]:
    import itertools

    names = list(axes)
    return [dict(zip(names, c, strict=True)) for c in itertools.product(*axes.values())]


def _names_a_file(name: str, value) -> bool:
    """Whether the setting ``name`` = ``value`` names a file: a path setting, or a device
    model given as a file (a path, or a name ending in .h5 or .hdf5) rather than a preset."""
    if name != "device":
        return True
    return isinstance(value, str) and ("/" in value or os.sep in value
                                       or value.lower().endswith((".h5", ".hdf5")))


def _file_digest(value, digests: dict) -> str | None:
    """"sha256:<hex digest>" of the file ``value`` names (read once per study), None when
    ``value`` is not a path to a readable file."""
    from ..formats import sha256_file

    if not isinstance(value, str) or not value or not os.path.isfile(value):
        return None
    if value not in digests:
        try:
            digests[value] = "sha256:" + sha256_file(value)
        except OSError:
            return None
    return digests[value]


def _build_points(kind: Kind, fixed: dict, combos: list[dict], seed: int,
                  where: str) -> list[Point]:
    defaults = kind.defaults()
    files = [s.name for s in kind.settings if s.type == "path" or s.name == "device"]
    points, seen, digests = [], {}, {}
    for c in combos:
        overlap = set(c) & set(fixed)
        if overlap:
            raise ConfigError(f"{where}: setting {sorted(overlap)[0]!r} is both in [settings] "
                              "and a point")
        settings = {**defaults, **fixed, **c}
        # a file enters the key by its content: the same data give the same points and
        # draws wherever the study lies, and a file written anew gives new points
        by_content = {n: d for n in files if n in settings and _names_a_file(n, settings[n])
                      and (d := _file_digest(settings[n], digests)) is not None}
        p = make_point(settings, seed, key_settings=by_content)
        if p.key in seen:
            raise ConfigError(f"{where}: the point {_describe(c)} appears twice")
        seen[p.key] = p
        try:
            kind.check(p.settings)
        except (ConfigError, DataFormatError, OSError) as exc:
            raise ConfigError(f"{where}: the point {_describe(c)} cannot be built: "
                              f"{' '.join(str(exc).split())}") from None
        points.append(p)
    return points


def _describe(settings: dict) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in settings.items()) + "}"


def load_study(path, *, yes: bool = False) -> Study:
    """Read and check the study file at ``path`` (see :func:`parse_study`).

    Raises
    ------
    ConfigError
        The file is not valid TOML or not a valid study (see the module docstring).
    """
    from ..formats import check_input_file

    path = Path(path)
    check_input_file(path, what="study file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"study file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"study file {path} cannot be read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    study = parse_study(doc, where=str(path), base=path.parent, yes=yes, text=text)
    if not study.title:
        study = Study(kind=study.kind, seed=study.seed, points=study.points, axes=study.axes,
                      metrics=study.metrics, title=path.stem, text=text)
    return study
