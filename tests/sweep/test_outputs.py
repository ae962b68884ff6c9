"""Study outputs: results.csv's layout and the report."""

import csv

from xbarlab.sweep.engine import Engine
from xbarlab.sweep.outputs import results_csv, summary_rows, write_results
from xbarlab.sweep.runner import run_points
from xbarlab.sweep.study import parse_study


def _study():
    return parse_study({"study": {"kind": "draw", "seed": 3, "title": "t"},
                        "grid": {"samples": [10, 1000], "index": [0, 1, 2]}})


def test_results_csv_rows_sorted_by_key_floats_round_trip():
    """One row per point, sorted by key; metric text parses back to the same float."""
    s = _study()
    res = run_points(s.kind.run, s.points, engine=Engine(workers=0), progress=False)
    rows = list(csv.DictReader(results_csv(s, res).splitlines()))
    assert [r["key"] for r in rows] == sorted(p.key for p in s.points)
    by_key = {r.point.key: r for r in res}
    for row in rows:
        assert float(row["mean"]) == by_key[row["key"]].metrics["mean"]
        assert int(row["seed"], 16) == by_key[row["key"]].point.entropy


def test_summary_means_over_other_axes_and_report(tmp_path):
    """summary_rows groups by every axis (mean, min, max, count); write_results writes the
    csv, one plot per metric and a report."""
    s = parse_study({"study": {"kind": "draw", "seed": 3, "title": "t", "metrics": ["std"]},
                     "grid": {"samples": [10, 1000], "index": [0, 1, 2]}})
    res = run_points(s.kind.run, s.points, engine=Engine(workers=0), progress=False)
    rows = summary_rows(s, res)
    assert len(rows) == 6 and all(st["std"][3] == 1 for _, st in rows)
    paths = write_results(s, res, tmp_path)
    assert paths["csv"].exists() and [p.name for p in paths["plots"]] == ["std.png"]
    md = paths["md"].read_text()
    assert md.startswith("# t") and "plots/std.png" in md
