"""``xbarlab sweep``: results.csv, report and exit status; bad study files before work."""

import csv
import dataclasses

import pytest
from xbarlab.cli import main
from xbarlab.sweep import kinds

STUDY = """
[study]
kind = "draw"
seed = 4
max_points = 6

[settings]
samples = 8

[grid]
index = [0, 1, 2, 3, 4]
"""


def _write(tmp_path, text=STUDY):
    f = tmp_path / "s_study.toml"
    f.write_text(text)
    return f


def test_sweep_writes_results_and_reruns_nothing(tmp_path, capsys):
    """5 points on one worker: exit 0, one row per point sorted by key with the draw's
    metrics, a report; the rerun takes every point from the store."""
    f, out = _write(tmp_path), tmp_path / "out"
    assert main(["sweep", str(f), "-o", str(out), "--workers", "1", "--no-progress"]) == 0
    assert "5 points: 5 computed on 1 workers" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows) and len(rows) == 5
    assert all(r["error"] == "" and float(r["std"]) > 0 for r in rows)
    assert (out / "report.md").read_text().startswith("# s_study")
    first = (out / "results.csv").read_text()
    assert main(["sweep", str(f), "-o", str(out), "--workers", "1", "--no-progress"]) == 0
    assert "0 computed on 0 workers" in capsys.readouterr().out
    again = (out / "results.csv").read_text()
    strip = [line.rsplit(",", 2)[0] for line in first.splitlines()]
    assert strip == [line.rsplit(",", 2)[0] for line in again.splitlines()]


def test_failing_point_exits_1(tmp_path, capsys, monkeypatch):
    """A point that raises on its worker is recorded in results.csv; exit status 1."""
    run = kinds.KINDS["draw"].run

    def sometimes(settings, rng):
        if settings["index"] == 2:
            raise ArithmeticError("index 2 overflows")
        return run(settings, rng)

    monkeypatch.setitem(kinds.KINDS, "draw", dataclasses.replace(kinds.KINDS["draw"],
                                                                 run=sometimes))
    out = tmp_path / "out"
    assert main(["sweep", str(_write(tmp_path)), "-o", str(out), "--workers", "1",
                 "--no-progress"]) == 1
    assert "1 failed" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    bad = [r for r in rows if r["error"]]
    assert [r["index"] for r in bad] == ["2"] and bad[0]["error"] == (
        "ArithmeticError: index 2 overflows") and bad[0]["mean"] == ""


@pytest.mark.parametrize("text, needle", [
    (STUDY.replace("samples = 8", "sample = 8"), "unknown setting 'sample'"),
    (STUDY.replace("[0, 1, 2, 3, 4]", "[]"), "axis 'index' is empty"),
    (STUDY.replace("[0, 1, 2, 3, 4]", "[0, 1, 2, 3, 4, 5, 6]"),
     "7 points, more than max_points 6; pass --yes"),
    (STUDY.replace('kind = "draw"', 'kind = "crossbar"').replace("samples = 8", "n = 7")
     .replace("index", "adc_bits").replace("[0, 1, 2, 3, 4]", "[6]"),
     "cannot be built: n must be even"),
])
def test_bad_study_is_one_line_exit_2(tmp_path, capsys, text, needle):
    """Unknown setting, empty axis, too many points, a point that cannot be built: exit
    2 and one error line, nothing written."""
    out = tmp_path / "out"
    assert main(["sweep", str(_write(tmp_path, text)), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and err.startswith("xbarlab sweep: error:")
    assert not out.exists()


def test_workers_and_scheduler_exclude_each_other(tmp_path, capsys):
    """--workers sizes a local cluster; with --scheduler it is a usage error."""
    assert main(["sweep", str(_write(tmp_path)), "-o", str(tmp_path / "o"), "--workers", "2",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
