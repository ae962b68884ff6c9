"""``xbarlab run`` (xbarlab/cli/run.py): one-line config errors, resuming, the report path."""

from __future__ import annotations

import shutil

from _tiny_run import ALL


def test_cli_run_config_error_is_one_line(tmp_path, capsys):
    """`xbarlab run` with a bad field exits 2 with one 'error:' line naming the field."""
    from xbarlab.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('[data]\nfiles = ["a.csv"]\n[train]\nmodel = "transformer"\n')
    assert main(["run", str(cfg), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[train] model" in err[0] and "'mlp'" in err[0]


def test_cli_run_resumes_and_prints_report(tiny_run, tmp_path, capsys):
    """`xbarlab run CONFIG -o OUT` on a finished OUT exits 0, prints one 'cached' line per
    stage (8) and the absolute path of OUT/report.html."""
    from xbarlab.cli import main

    cfg, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    assert main(["run", str(cfg), "-o", str(out), "--no-progress"]) == 0
    text = capsys.readouterr()
    both = text.out + text.err
    assert both.count(" cached ") == len(ALL)
    assert str((out / "report.html").resolve()) in text.out


def test_cli_run_shows_no_progress_bar_when_stderr_is_not_a_terminal(tiny_run, tmp_path,
                                                                     capsys):
    """Without --no-progress, a resumed run whose stderr is captured (not a terminal)
    writes no tqdm bar: no '%|' on stderr, the 8 'cached' lines still printed."""
    from xbarlab.cli import main

    cfg, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    assert main(["run", str(cfg), "-o", str(out)]) == 0
    text = capsys.readouterr()
    assert "%|" not in text.err and "stage/s" not in text.err
    assert (text.out + text.err).count(" cached ") == len(ALL)
