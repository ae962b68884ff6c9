"""Study points: settings with a stable key and a seed derived from it.

A point is a mapping ``setting name -> value`` in SI units (floats in s, Ω, S, V; integers
for counts and bit widths; strings for names). Its **key** is the SHA-256 of its canonical
JSON (names sorted, no spaces, floats as Python's shortest round-trip text), so the same
settings written differently ("1h" or 3600 in a study file, once parsed) give the same key;
a study gives a file setting by its content's digest instead of its path
(:func:`make_point`'s ``key_settings``).
Its **seed** is a :class:`numpy.random.SeedSequence` whose entropy is the study seed
followed by the key's eight 32-bit words: a point's random stream depends on the study seed
and its own settings only, never on which worker runs it, in what order, or which other
points the study holds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

__all__ = ["Point", "canonical_json", "point_key", "point_seed", "make_point", "grid_points"]


def _check_value(name: str, value) -> int | float | str | bool:
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ConfigError(f"setting {name!r} must be finite, got {value!r}")
        return float(value)
    raise ConfigError(f"setting {name!r} must be a number, string or boolean, got "
                      f"{type(value).__name__} {value!r}")


def canonical_json(settings: Mapping[str, int | float | str | bool]) -> str:
    """The canonical JSON text of ``settings``: names sorted, ``","``/``":"`` separators,
    floats as their shortest round-trip text (``3600.0``), integers as integers.

    Parameters
    ----------
    settings : mapping of str to int, float, str or bool
        A point's settings in SI units (s, Ω, S, V; counts as integers).

    Raises
    ------
    ConfigError
        A value that is not a finite number, a string or a boolean; a name that is not a
        non-empty string.
    """
    clean = {}
    for name, value in settings.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"setting names must be non-empty strings, got {name!r}")
        clean[name] = _check_value(name, value)
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def point_key(settings: Mapping[str, int | float | str | bool]) -> str:
    """The hexadecimal SHA-256 of :func:`canonical_json` ``(settings)`` (64 characters)."""
    return hashlib.sha256(canonical_json(settings).encode("ascii")).hexdigest()


def point_seed(study_seed: int, key: str) -> np.random.SeedSequence:
    """The seed of the point with ``key`` in a study seeded with ``study_seed``.

    Parameters
    ----------
    study_seed : int
        The study's seed, >= 0.
    key : str
        The point's :func:`point_key` (64 hexadecimal digits).

    Returns
    -------
    numpy.random.SeedSequence
        Entropy ``[study_seed, w0, ..., w7]`` with ``w_i`` the key's 32-bit words
        (big-endian); ``numpy.random.default_rng(seed)`` gives the point's generator.
    """
    if isinstance(study_seed, bool) or not isinstance(study_seed, numbers.Integral) \
            or study_seed < 0:
        raise ConfigError(f"study_seed must be an integer >= 0, got {study_seed!r}")
    try:
        digest = bytes.fromhex(key)
    except (TypeError, ValueError):
        digest = b""
    if len(digest) != 32:
        raise ConfigError(f"key must be 64 hexadecimal digits (a SHA-256), got {key!r}")
    words = [int.from_bytes(digest[i:i + 4], "big") for i in range(0, 32, 4)]
    return np.random.SeedSequence([int(study_seed), *words])


@dataclass(frozen=True)
class Point:
    """One point of a study: its settings, key and seed.

    Build it with :func:`make_point` (which computes ``key`` and ``seed``).
    """

    #: The point's settings, SI units (s, Ω, S, V; counts and bit widths as integers).
    settings: Mapping[str, int | float | str | bool]
    #: :func:`point_key` of ``settings``, with the ``key_settings`` given to
    #: :func:`make_point` in place of theirs (a file's content digest; 64 hexadecimal digits).
    key: str
    #: :func:`point_seed` of the study seed and ``key``.
    seed: np.random.SeedSequence = field(compare=False)

    def rng(self) -> np.random.Generator:
        """A fresh generator of the point's seed (the same stream at every call)."""
        return np.random.default_rng(self.seed)

    @property
    def entropy(self) -> int:
        """The seed's entropy as one integer (what results.csv records as the seed)."""
        e = self.seed.entropy
        if isinstance(e, int):
            return e
        return sum(int(w) << (32 * i) for i, w in enumerate(e))


def make_point(settings: Mapping[str, int | float | str | bool], study_seed: int, *,
               key_settings: Mapping[str, str] | None = None) -> Point:
    """The :class:`Point` of ``settings`` (SI values) in a study seeded with ``study_seed``.

    ``key_settings``: values that stand for some settings in the key (and so the seed),
    e.g. a file's content digest for its path, so that a point's key and random stream
    follow the file's content, not the folder it lies in; they must name settings of
    ``settings``."""
    clean = {name: _check_value(name, settings[name]) for name in sorted(settings)}
    keyed = dict(clean)
    for name, value in (key_settings or {}).items():
        if name not in clean:
            raise ConfigError(f"key_settings names {name!r}, which is not a setting of the "
                              f"point (settings: {sorted(clean)})")
        keyed[name] = _check_value(name, value)
    key = point_key(keyed)
    return Point(settings=clean, key=key, seed=point_seed(study_seed, key))


def grid_points(axes: Mapping[str, Sequence], fixed: Mapping | None = None, *,
                study_seed: int) -> list[Point]:
    """Every combination of the ``axes`` values, each with the ``fixed`` settings.

    Parameters
    ----------
    axes : mapping of str to sequence
        Swept settings and their values (SI units), in the order combinations vary (the
        last axis fastest).
    fixed : mapping of str to value, optional
        Settings shared by every point (SI units).
    study_seed : int
        The study's seed.

    Raises
    ------
    ConfigError
        An empty axis; a setting both fixed and swept.
    """
    fixed = dict(fixed or {})
    for name, values in axes.items():
        if len(values) == 0:
            raise ConfigError(f"axis {name!r} is empty; give it at least one value")
        if name in fixed:
            raise ConfigError(f"setting {name!r} is both fixed and swept")
    names = list(axes)
    return [make_point({**fixed, **dict(zip(names, combo, strict=True))}, study_seed)
            for combo in itertools.product(*(axes[n] for n in names))]
