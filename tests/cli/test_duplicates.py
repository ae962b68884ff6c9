"""Repeated reads through the command line: ``--duplicates {refuse,first,mean}`` of
``xbarlab inspect``/``calibrate`` and ``duplicates = "..."`` of the ``xbarlab run`` config
(the library's ``duplicates=`` of read_measurements)."""

from __future__ import annotations

import json

import pytest
from xbarlab.cli import main

# device 0 read three times at 1 s (1, 3 and 5 µS: mean 3 µS), device 1 once (2 µS)
TABLE = "device,time,g\n0,1,1e-6\n0,1,3e-6\n0,1,5e-6\n1,1,2e-6\n"


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text(TABLE)
    return path


def _inspect(capsys, *words):
    rc = main(["inspect", *map(str, words)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_inspect_refuses_repeated_reads_by_default(table, capsys):
    """Without --duplicates (and with --duplicates refuse): exit 1, one line that counts the
    2 repeated reads, calls them conflicting and names the option that keeps one read."""
    for extra in ([], ["--duplicates", "refuse"]):
        rc, out, err = _inspect(capsys, table, *extra)
        assert (rc, out) == (1, "")
        assert err.splitlines() == [
            f"xbarlab inspect: error: {table}: 2 reads repeat a (device, time) read with "
            "different conductances (e.g. reads 1 and 2: device 0 at 1 s); counting them "
            "twice would be wrong. Pass --duplicates first or mean to keep one read each"]


@pytest.mark.parametrize("policy, g_min, g_mean", [
    ("first", 1e-6, 1.5e-6),   # device 0 keeps 1 µS: (1 + 2) / 2
    ("mean", 2e-6, 2.5e-6),    # device 0 becomes (1 + 3 + 5) / 3 = 3 µS: (3 + 2) / 2
])
def test_inspect_keeps_one_read_per_group(table, capsys, policy, g_min, g_mean):
    """--duplicates first / mean: 2 reads of 2 devices; the conductances are the first read
    or the group's mean (numbers worked out by hand from TABLE)."""
    rc, out, err = _inspect(capsys, table, "--duplicates", policy, "--json")
    s = json.loads(out)
    assert (rc, err) == (0, "")
    assert (s["reads"], s["devices"]) == (2, 2)
    assert s["g_min"] == pytest.approx(g_min, rel=1e-12)
    assert s["g_mean"] == pytest.approx(g_mean, rel=1e-12)


def test_unknown_policy_is_a_usage_error(table, capsys):
    """--duplicates last: exit 2, one line listing the three choices."""
    rc, _, err = _inspect(capsys, table, "--duplicates", "last")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "invalid choice: 'last' (choose from 'refuse', 'first', 'mean')" in err


def test_calibrate_passes_the_policy_on(table, tmp_path, capsys):
    """calibrate refuses the repeated reads by default (exit 1, before any output); with
    --duplicates first the read succeeds and the fit fails on the next problem (two devices
    are too few), which shows the option reached the reader."""
    out = tmp_path / "m.h5"
    assert main(["calibrate", str(table), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Pass --duplicates first or mean" in err
    assert main(["calibrate", str(table), "--duplicates", "first", "--bootstrap", "0",
                 "-o", str(out)]) == 1
    err = capsys.readouterr().err.split("\r")[-1]   # after the cleared progress bar
    assert err.count("\n") == 1 and "repeat a" not in err and "xbarlab calibrate: error:" in err
    assert not out.exists()


def test_duplicates_with_a_model_file_is_refused(tmp_path, capsys):
    """--duplicates applies to measurement tables: with a model file, exit 2 naming it."""
    from xbarlab import devices

    path = devices.IdealDevice().to_file(tmp_path / "ideal.h5")
    rc, _, err = _inspect(capsys, path, "--duplicates", "mean")
    assert rc == 2 and "--duplicates apply to measurement tables" in err


def _config(tmp_path, table, line):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[data]\nfiles = ["{table.name}"]\n{line}\n')
    return cfg


def test_run_config_duplicates(table, tmp_path, capsys):
    """[data] duplicates: a value outside refuse/first/mean is exit 2 naming the field; the
    default refuses the table in the load stage (exit 1, one line naming the reads)."""
    out = tmp_path / "o"
    assert main(["run", str(_config(tmp_path, table, 'duplicates = "last"')),
                 "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "[data] duplicates is 'last'; allowed: 'refuse', 'first', " \
                             "'mean'" in err[0]
    assert main(["run", str(_config(tmp_path, table, "")), "-o", str(out),
                 "--no-progress"]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "2 reads repeat a (device, time) read" in err[0]


@pytest.mark.parametrize("policy, g", [("first", [1e-6, 2e-6]), ("mean", [3e-6, 2e-6])])
def test_run_load_stage_applies_the_policy(table, tmp_path, policy, g):
    """The load stage of `xbarlab run` with duplicates = first/mean keeps one read per
    (device, time): 1 µS or the mean 3 µS for device 0, 2 µS for device 1."""
    import numpy as np
    from xbarlab import pipeline
    from xbarlab.formats import read_measurements

    config, _ = pipeline.load_config(_config(tmp_path, table, f'duplicates = "{policy}"'))
    assert config["data"]["duplicates"] == policy
    out = tmp_path / "o"
    pipeline.run_pipeline(config, out, progress=False, stages=("load",), echo=lambda s: None)
    m = read_measurements(out / "load" / "measurements.npz")
    np.testing.assert_allclose(m.g[np.argsort(m.device)], g, rtol=1e-12)
