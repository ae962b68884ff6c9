"""Published device models, loaded from ``xbarlab/data/presets/*.json``.

Each JSON file holds ``name``, ``title``, ``citation``, ``notes``, ``model`` (the
:class:`~xbarlab.devices.composite.CompositeDevice` tree, numbers as
``{"value": ..., "units": ...}`` in SI) and optionally ``variants`` (named option
values, each a partial tree merged over ``model``) with ``default_variants``.

The published coefficients are written in SI in the files (µS -> S); the file's
``notes`` give the formula as published.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..enums import coerce_enum
from ..errors import ConfigError, DataFormatError
from ..formats import Quantity
from .blocks import ReadNoiseStructure

__all__ = ["preset_names", "build", "preset_info", "tree_to_json", "json_to_tree"]


def _preset_dir():
    return resources.files("xbarlab").joinpath("data", "presets")


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    out = {}
    for entry in _preset_dir().iterdir():
        if entry.name.endswith(".json"):
            out[entry.name[:-5]] = entry.name
    return out


def preset_names() -> list[str]:
    """Names of the published presets shipped as data files."""
    return sorted(_index())


@cache
def _raw(name: str) -> dict[str, Any]:
    if name not in _index():
        raise ConfigError(f"unknown device preset {name!r}; valid names: {preset_names()}")
    text = _preset_dir().joinpath(_index()[name]).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DataFormatError(f"preset file {name}.json is not valid JSON: {exc}") from None


def preset_info(name: str) -> dict[str, Any]:
    """Title, citation, notes and variant options of a preset (plain JSON values)."""
    raw = _raw(name)
    return {k: raw.get(k) for k in ("name", "title", "citation", "notes", "default_variants")} | {
        "variants": {k: sorted(v) for k, v in raw.get("variants", {}).items()}}


#: Options whose values are members of an enum (coerced with :func:`coerce_enum`).
_ENUM_OPTIONS = {"read_noise": ReadNoiseStructure}


def build(name: str, **variants):
    """The preset ``name`` as a CompositeDevice; ``variants`` pick documented options,
    e.g. ``build("rram-cmo-hfox-2024", acceptance_window="2%")`` or
    ``build("pcm-ibm-2020", read_noise="independent")`` (a :class:`ReadNoiseStructure`
    or its value; the presets that offer it say so in :func:`preset_info`)."""
    from .composite import CompositeDevice

    raw = _raw(name)
    tree = json_to_tree(raw["model"])
    allowed = raw.get("variants", {})
    chosen = dict(raw.get("default_variants", {}))
    for key, val in variants.items():
        if key not in allowed:
            raise ConfigError(f"preset {name!r} has no option {key!r}; options: {sorted(allowed)}")
        if key in _ENUM_OPTIONS:
            val = coerce_enum(_ENUM_OPTIONS[key], val, key).value
        if val not in allowed[key]:
            raise ConfigError(
                f"preset {name!r}: {key}={val!r} is not one of {sorted(allowed[key])}")
        chosen[key] = val
    for key, val in chosen.items():
        tree = _merge(tree, json_to_tree(allowed[key][val]))
    tree.setdefault("name", name)
    tree.setdefault("citation", raw.get("citation", ""))
    return CompositeDevice.from_tree(tree)


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and "kind" not in v:
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _num_json(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    return v


def tree_to_json(tree: Any) -> Any:
    """A model tree as JSON-able values (Quantity -> {"value", "units"}; inf as "inf")."""
    if isinstance(tree, Quantity):
        v = tree.value
        if np.ndim(v):
            v = [_num_json(float(x)) for x in np.asarray(v).ravel()]
            return {"value": v, "units": tree.units, "shape": list(np.shape(tree.value))}
        return {"value": _num_json(float(v)), "units": tree.units}
    if isinstance(tree, Mapping):
        return {k: tree_to_json(v) for k, v in tree.items()}
    return tree


def _from_num(v):
    if isinstance(v, str):
        if v in ("inf", "-inf", "nan"):
            return float(v)
        raise DataFormatError(f"expected a number, got {v!r}")
    return float(v)


def json_to_tree(obj: Any) -> Any:
    """Inverse of :func:`tree_to_json`."""
    if isinstance(obj, Mapping):
        if set(obj) in ({"value", "units"}, {"value", "units", "shape"}):
            v = obj["value"]
            if isinstance(v, list):
                arr = np.array([_from_num(x) for x in v], dtype=np.float64)
                return Quantity(arr.reshape(obj.get("shape", [arr.size])), obj["units"])
            return Quantity(_from_num(v), obj["units"])
        return {k: json_to_tree(v) for k, v in obj.items()}
    return obj
