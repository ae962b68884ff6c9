"""The point runner and its store: finished points are kept, reruns compute what is missing,
a point that raises is recorded and the study goes on (in this process: no cluster)."""

import json

import numpy as np
import pytest
from xbarlab.errors import ConfigError
from xbarlab.sweep.engine import Engine
from xbarlab.sweep.points import grid_points, make_point
from xbarlab.sweep.runner import PointStore, call_point, run_points


def _counting(calls_file):
    """A point function that appends its x to ``calls_file`` and returns one draw;
    x = 3 raises."""

    def f(settings, rng):
        with open(calls_file, "a") as fh:
            fh.write(f"{settings['x']}\n")
        if settings["x"] == 3:
            raise ValueError("x = 3 is not allowed")
        return {"u": float(rng.random()), "x2": settings["x"] ** 2}

    return f


def _calls(path):
    return sorted(int(v) for v in path.read_text().split()) if path.exists() else []


def test_point_gets_the_generator_of_its_seed():
    """call_point hands the function default_rng(point.seed): its first draw equals a
    generator built from the seed by hand."""
    p = make_point({"x": 1}, 5)
    got = call_point(lambda s, rng: {"u": rng.random()}, p)
    assert got == {"u": np.random.default_rng(p.seed).random()}
    with pytest.raises(TypeError, match="metric 'u'"):
        call_point(lambda s, rng: {"u": "high"}, p)


def test_failed_point_recorded_and_study_goes_on(tmp_path):
    """x = 3 raises: its result carries 'ValueError: x = 3 is not allowed', the others
    finish; results come back sorted by key."""
    pts = grid_points({"x": [1, 2, 3, 4]}, study_seed=0)
    res = run_points(_counting(tmp_path / "c"), pts, engine=Engine(workers=0), progress=False)
    assert [r.point.key for r in res] == sorted(p.key for p in pts)
    bad = [r for r in res if r.error]
    assert len(bad) == 1 and bad[0].point.settings["x"] == 3
    assert bad[0].error == "ValueError: x = 3 is not allowed" and bad[0].metrics == {}
    assert all(r.metrics["x2"] == r.point.settings["x"] ** 2 for r in res if not r.error)


def test_fail_fast_stops_at_the_first_failure(tmp_path):
    """With fail_fast the points after the failing one (in key order) do not run."""
    pts = grid_points({"x": [1, 2, 3, 4, 5, 6]}, study_seed=0)
    order = [p.settings["x"] for p in sorted(pts, key=lambda p: p.key)]
    res = run_points(_counting(tmp_path / "c"), pts, engine=Engine(workers=0),
                     fail_fast=True, progress=False)
    assert len(res) == order.index(3) + 1
    assert _calls(tmp_path / "c") == sorted(order[:order.index(3) + 1])


def test_rerun_computes_only_missing_and_failed_points(tmp_path):
    """A rerun with the store runs only the failed point; a changed axis value runs only
    the new point; metrics of stored points are the same numbers."""
    store = PointStore(tmp_path / "points.jsonl")
    pts = grid_points({"x": [1, 2, 3, 4]}, study_seed=0)
    first = run_points(_counting(tmp_path / "a"), pts, store=store, engine=Engine(workers=0),
                       progress=False)
    assert _calls(tmp_path / "a") == [1, 2, 3, 4]
    again = run_points(_counting(tmp_path / "b"), pts, store=store, engine=Engine(workers=0),
                       progress=False)
    assert _calls(tmp_path / "b") == [3]
    assert [r.metrics for r in again] == [r.metrics for r in first]
    assert sum(r.cached for r in again) == 3
    changed = grid_points({"x": [1, 2, 5, 4]}, study_seed=0)
    run_points(_counting(tmp_path / "c"), changed, store=store, engine=Engine(workers=0),
               progress=False)
    assert _calls(tmp_path / "c") == [5]


def test_store_skips_a_torn_last_line(tmp_path):
    """A line cut by a kill mid-write is skipped; the records before it load."""
    store = PointStore(tmp_path / "points.jsonl")
    store.append({"key": "a" * 64, "metrics": {"u": 0.5}, "error": None})
    with open(store.path, "a") as fh:
        fh.write('{"key": "' + "b" * 64 + '", "metr')
    found = store.load()
    assert list(found) == ["a" * 64] and found["a" * 64]["metrics"] == {"u": 0.5}
    # a rerun's first record starts on a line of its own, after the torn one
    again = PointStore(store.path)
    again.append({"key": "c" * 64, "metrics": {}, "error": None})
    assert sorted(again.load()) == ["a" * 64, "c" * 64]
    json.loads(store.path.read_text().splitlines()[-1])


def test_duplicate_points_refused():
    """Two points with the same settings cannot both run."""
    p = make_point({"x": 1}, 0)
    with pytest.raises(ConfigError, match="same settings"):
        run_points(lambda s, r: {}, [p, p], engine=Engine(workers=0), progress=False)
