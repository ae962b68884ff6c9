"""Run the points of a study on an :class:`~xbarlab.sweep.engine.Engine`, keeping what
finished.

Finished points are appended to a :class:`PointStore`, one JSON line per point written with
a single ``write`` on a file opened for appending: a run stopped at any moment (Ctrl-C,
``kill -9``, a lost machine) leaves every finished point in the store and at most one torn
last line, which the next load skips. A rerun computes only the points whose key has no
finished record; a point whose settings changed has a new key, so it runs again while the
untouched points are taken from the store.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataFormatError
from .engine import Engine, check_chunk
from .points import Point

__all__ = ["PointResult", "PointStore", "run_points", "call_point"]


@dataclass(frozen=True)
class PointResult:
    """What one point gave: its metrics or its error, with where and how long it ran."""

    #: The point.
    point: Point
    #: Metric name -> value (units as the point function documents); empty on error.
    metrics: Mapping[str, float]
    #: ``"TypeName: message"`` of the point's exception, or None.
    error: str | None
    #: Wall time of the point on its worker [s].
    wall_s: float
    #: The worker that ran it.
    worker: str
    #: Whether it was taken from the store rather than computed in this run.
    cached: bool = False

    def record(self) -> dict:
        """The JSON record of the store (everything but ``cached``)."""
        return {"key": self.point.key, "settings": dict(self.point.settings),
                "metrics": dict(self.metrics), "error": self.error,
                "wall_s": self.wall_s, "worker": self.worker}


class PointStore:
    """An append-only file of finished points (JSON lines), keyed by point key.

    Parameters
    ----------
    path : str or os.PathLike
        The file (created at the first :meth:`append`).
    """

    def __init__(self, path):
        self.path = Path(path)
        self._checked_end = False

    def load(self) -> dict[str, dict]:
        """Key -> the last record of each point in the file (a torn last line and records
        that are not points are skipped)."""
        found: dict[str, dict] = {}
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return found
        except IsADirectoryError:
            raise DataFormatError(f"{self.path} is a folder; expected the point store "
                                  "(JSON lines)") from None
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                found[rec["key"]] = rec
        return found

    def append(self, record: Mapping) -> None:
        """Append one record as one line, in a single ``write`` (after a line cut short by
        an earlier run, the first record starts on a new line)."""
        data = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if not self._checked_end:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data
                self._checked_end = True
            os.write(fd, data)
        finally:
            os.close(fd)


def call_point(function: Callable, point: Point) -> dict[str, float]:
    """``function(settings, rng)`` of one point, with the generator of the point's seed;
    its metrics checked to be a mapping of names to real numbers (what a worker runs)."""
    metrics = function(dict(point.settings), np.random.default_rng(point.seed))
    if not isinstance(metrics, Mapping):
        raise TypeError(f"a point function must return a mapping of metric names to numbers, "
                        f"got {type(metrics).__name__}")
    out = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer
                                                     | np.floating):
            raise TypeError(f"metric {name!r} must be a number, got {value!r}")
        out[str(name)] = int(value) if isinstance(value, int | np.integer) else float(value)
    return out


def _from_record(point: Point, rec: Mapping) -> PointResult:
    return PointResult(point=point, metrics=dict(rec.get("metrics") or {}),
                       error=rec.get("error"), wall_s=float(rec.get("wall_s", math.nan)),
                       worker=str(rec.get("worker", "")), cached=True)


def run_points(function: Callable, points: Sequence[Point], *, store: PointStore | None = None,
               engine: Engine | None = None, fail_fast: bool = False,
               progress: bool | None = None, name: str = "point",
               chunk: int | None = None) -> list[PointResult]:
    """Run ``function`` on every point not finished in ``store``; return every point's result.

    Parameters
    ----------
    function : callable
        ``function(settings, rng) -> {metric: number}``: ``settings`` the point's settings
        (SI units), ``rng`` a :class:`numpy.random.Generator` of the point's seed. A
        module-level function or a closure (sent to the workers by value).
    points : sequence of Point
        The study's points (keys unique).
    store : PointStore, optional
        Where finished points are kept; points with a finished record (no error) are not
        run again. None: nothing is kept.
    engine : Engine, optional
        An entered :class:`~xbarlab.sweep.engine.Engine`; None: a local cluster sized to
        the machine, started and stopped here.
    fail_fast : bool
        Stop at the first point that raises (the points not yet run are cancelled and
        left out of the result).
    progress : bool, optional
        A progress bar counting points on stderr; None: only where stderr is a terminal.
    name : str
        Prefix of the tasks' names on the cluster.
    chunk : int, optional
        Points per Dask task, >= 1 (None: each worker gets about
        :data:`~xbarlab.sweep.engine.CHUNKS_PER_WORKER` chunks,
        :func:`~xbarlab.sweep.engine.default_chunk`). Results, the store and retries stay
        per point: every point of a finished chunk is stored as it arrives, a chunk whose
        worker died runs again whole, and a rerun computes only the points not stored.

    Returns
    -------
    list of PointResult
        One per point run or found in the store, sorted by point key.

    Raises
    ------
    ConfigError
        Two points with the same key, or ``chunk`` not an integer >= 1.
    """
    check_chunk(chunk)
    by_key = {}
    for p in points:
        if p.key in by_key:
            raise ConfigError(f"two points have the same settings {dict(p.settings)!r}")
        by_key[p.key] = p
    found = store.load() if store is not None else {}
    results = {k: _from_record(by_key[k], rec) for k, rec in found.items()
               if k in by_key and rec.get("error") is None}
    todo = [p for k, p in sorted(by_key.items()) if k not in results]
    if todo:
        if engine is None:
            with Engine() as own:
                _run(function, todo, store, own, fail_fast, progress, name, results, chunk)
        else:
            _run(function, todo, store, engine, fail_fast, progress, name, results, chunk)
    return [results[k] for k in sorted(results)]


def _run(function, todo, store, engine, fail_fast, progress, name, results, chunk) -> None:
    bar = None
    if progress if progress is not None else (sys.stderr is not None and sys.stderr.isatty()):
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="points", unit="point")
    try:
        for i, out in engine.stream(_PointCall(function), todo, name=name, chunk=chunk):
            p = todo[i]
            res = PointResult(point=p, metrics=out.value or {}, error=out.error,
                              wall_s=out.wall_s, worker=out.worker)
            if store is not None:
                store.append(res.record())
            results[p.key] = res
            if bar is not None:
                bar.update(1)
            if fail_fast and out.error is not None:
                break
    finally:
        if bar is not None:
            bar.close()


class _PointCall:
    """``call_point`` bound to one point function, as a picklable callable."""

    def __init__(self, function: Callable):
        self.function = function

    def __call__(self, point: Point) -> dict[str, float]:
        return call_point(self.function, point)
