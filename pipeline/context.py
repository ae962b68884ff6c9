"""What every pipeline stage shares: :class:`Stage`, :class:`StageContext`, seeds, JSON files."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Stage", "StageContext", "stage_seed", "write_json", "read_json", "json_default",
           "plain"]


def stage_seed(seed: int, stage: str, purpose: str) -> np.random.SeedSequence:
    """The seed sequence of one random stream of a run, from stable names only.

    Parameters
    ----------
    seed : int
        The run seed (config ``seed``, >= 0).
    stage : str
        The stage (or shared task, e.g. ``"train"``) the stream belongs to.
    purpose : str
        What the stream draws (e.g. ``"fit"``, ``"ks"``).

    Returns
    -------
    numpy.random.SeedSequence
        ``SeedSequence(entropy=seed, spawn_key=(crc32(stage), crc32(purpose)))``: the same
        names give the same stream whatever else the run draws, in whatever order.
    """
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(
        zlib.crc32(stage.encode("utf-8")), zlib.crc32(purpose.encode("utf-8"))))


@dataclass
class StageContext:
    """What a stage function gets: its (temporary) output folder, the config, the finished
    upstream folders, the run seed, and ``progress(total, desc)`` making a tqdm bar."""

    name: str
    out: Path
    config: dict
    upstream: dict[str, Path]
    seed: int
    progress: Callable[..., Any]
    show_progress: bool

    def seed_sequence(self, purpose: str, *, stage: str | None = None
                      ) -> np.random.SeedSequence:
        """:func:`stage_seed` of the run seed, ``stage`` (default: this stage) and ``purpose``."""
        return stage_seed(self.seed, self.name if stage is None else stage, purpose)

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator for ``purpose`` in this stage (see :func:`stage_seed`)."""
        return np.random.default_rng(self.seed_sequence(purpose))


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


def json_default(o):
    """JSON encoding of numpy scalars and arrays, paths and anything else (as text)."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def write_json(path: Path, obj) -> None:
    """Write ``obj`` as indented JSON, atomically (replacing an existing file)."""
    from ..formats import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2, default=json_default) + "\n",
                      force=True)


def read_json(path: Path):
    """The JSON content of ``path``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def plain(d: Mapping) -> dict:
    """``d`` as plain JSON values (numpy values and paths converted)."""
    return json.loads(json.dumps(dict(d), default=json_default))
