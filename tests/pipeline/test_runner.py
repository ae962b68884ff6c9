"""The cached runner of ``xbarlab run`` (xbarlab/pipeline/runner.py): a rerun is fully
cached, a changed setting or data file reruns exactly the stages downstream of it, a run
killed with SIGKILL or interrupted resumes, a foreign output folder is refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from _tiny_run import ALL, events, run, setup, tiny_data
from xbarlab import pipeline as P
from xbarlab.errors import OutputExistsError


def test_rerun_is_fully_cached(tiny_run, tmp_path):
    """Rerunning an unchanged config runs nothing: every stage reports 'cached'."""
    cfg, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    res = run(cfg, out)
    assert res["status"] == {s: "cached" for s in ALL}


@pytest.mark.parametrize("edit, expect_ran", [
    # crossbar settings feed only the crossbar study and the report
    (("r_wire = [1.0]", "r_wire = [2.0]"), {"crossbar", "report"}),
    # training settings: both trainings, the evaluation, the report
    (("epochs = 1", "epochs = 2"), {"train-sgd", "train-hasgd", "evaluate", "report"}),
    # noise settings: the noise tables, HA-SGD trained on them, evaluation, report
    (("grid = 5", "grid = 7"), {"noise", "train-hasgd", "evaluate", "report"}),
    # evaluation settings: evaluation and report
    (("programmings = 2", "programmings = 3"), {"evaluate", "report"}),
    # the compared mapping range: its noise, HA-SGD network and evaluation, not the crossbar
    (('compare = ["3.125uS", "12.5uS"]', 'compare = ["3.125uS", "10uS"]'),
     {"noise", "train-hasgd", "evaluate", "report"}),
    # L of HA-SGD: not the plain-SGD baseline
    (("samples = 2\ntrain_time", "samples = 1\ntrain_time"),
     {"train-hasgd", "evaluate", "report"}),
    # the report title: the report only
    (('title = "tiny"', 'title = "tiny 2"'), {"report"}),
    # the seed: every stage that draws random numbers (not load, which only reads a file)
    (("seed = 3", "seed = 4"), set(ALL) - {"load"}),
])
def test_changed_setting_reruns_exactly_downstream(tiny_run, tmp_path, edit, expect_ran):
    """A changed setting reruns exactly the stages that depend on it (listed per case);
    every other stage is 'cached'."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    shutil.copy(cfg0.parent / "tiny.csv", tmp_path / "tiny.csv")
    text = cfg0.read_text()
    assert edit[0] in text
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(text.replace(edit[0], edit[1]))
    res = run(cfg, out)
    ran = {s for s, v in res["status"].items() if v == "ran"}
    assert ran == expect_ran


def test_changed_code_reruns_every_stage(tiny_run, tmp_path, monkeypatch):
    """Another implementation (the code digest of the package's sources changes, as an edit
    of an editable checkout does) reruns every stage: results of other code are not
    reused."""
    from xbarlab.pipeline import runner

    d = runner.code_digest()
    assert len(d) == 64 and d == runner.code_digest()
    cfg, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    monkeypatch.setattr(runner, "code_digest", lambda: "0" * 64)
    res = run(cfg, out)
    assert res["status"] == {s: "ran" for s in ALL}


def test_source_digest_follows_sources_and_presets_only(tmp_path):
    """source_digest of a small tree against hashlib over the same bytes: it changes when a
    source file or a preset changes, or a source file is added, and not when a file under
    tests/, .venv/, build/ or __pycache__/ changes, nor for a file that is not Python."""
    import hashlib

    from xbarlab.pipeline.runner import source_digest

    files = {"a.py": b"x = 1\n", "sub/b.py": b"y = 2\n", "data/presets/p.json": b"{}",
             "tests/t.py": b"assert 1\n", ".venv/lib/m.py": b"", "build/lib/c.py": b"",
             "sub/__pycache__/b.py": b"", "notes.txt": b"hello"}
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    want = hashlib.sha256()
    for rel in ("a.py", "data/presets/p.json", "sub/b.py"):
        want.update(rel.encode() + b"\0" + files[rel] + b"\0")
    d0 = source_digest(tmp_path)
    assert d0 == want.hexdigest()
    for rel in ("tests/t.py", ".venv/lib/m.py", "build/lib/c.py", "sub/__pycache__/b.py",
                "notes.txt"):
        (tmp_path / rel).write_bytes(b"changed")
        assert source_digest(tmp_path) == d0, rel
    for rel in ("sub/b.py", "data/presets/p.json", "new.py"):
        (tmp_path / rel).write_bytes(b"changed " + rel.encode())
        d1 = source_digest(tmp_path)
        assert d1 != d0, rel
        d0 = d1


def test_changed_data_reruns_everything_but_sgd(tiny_run, tmp_path):
    """New measurement content (another seed) reruns every stage that depends on the data:
    all but the plain-SGD baseline, which does not use device statistics."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    shutil.copy(cfg0, tmp_path / "tiny.toml")
    tiny_data(tmp_path / "tiny.csv", seed=2)
    res = run(tmp_path / "tiny.toml", out)
    assert {s for s, v in res["status"].items() if v == "cached"} == {"train-sgd"}


def test_moved_data_file_is_still_cached(tiny_run, tmp_path):
    """The load stage is keyed by the data's content, not its path: the same file under
    another name in another folder reruns nothing."""
    cfg0, out0 = tiny_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    (tmp_path / "d").mkdir()
    shutil.copy(cfg0.parent / "tiny.csv", tmp_path / "d" / "renamed.csv")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(cfg0.read_text().replace('"tiny.csv"', '"d/renamed.csv"'))
    res = run(cfg, out)
    assert res["status"] == {s: "cached" for s in ALL}


_KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from xbarlab import pipeline as P
    cfg, _ = P.load_config(sys.argv[1])
    flag = Path(sys.argv[3])
    def hook(name, tmp):
        (tmp / "partial.bin").write_bytes(b"x" * 1000)   # a stage half written
        if name == "train-sgd":
            flag.write_text("training")
            time.sleep(120)
    P.run_pipeline(cfg, sys.argv[2], progress=False, on_stage_start=hook,
                   echo=lambda s: None)
""")


def test_kill_during_training_resumes(tmp_path):
    """A run killed with SIGKILL while training leaves load, calibrate, crossbar and noise
    finished; the rerun skips them ('cached' in the result and the run log, no new 'start'
    event for them), runs the training and later stages, and removes the half-written
    temporary folder of the killed stage."""
    cfg = setup(tmp_path)
    out = tmp_path / "out"
    flag = tmp_path / "flag"
    script = tmp_path / "kill_me.py"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(cfg), str(out), str(flag)],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 240
        while not flag.exists():
            assert proc.poll() is None, "the pipeline process ended before training"
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    finished = {s for s in ALL if (out / s / P.MARKER).is_file()}
    assert finished == {"load", "calibrate", "crossbar", "noise"}
    assert any(p.name.startswith(".tmp-train-sgd") for p in out.iterdir())
    n_before = len(events(out))
    res = run(cfg, out)
    assert {s for s, v in res["status"].items() if v == "cached"} == finished
    new = events(out)[n_before:]
    started = {e["stage"] for e in new if e["event"] == "start"}
    assert started == set(ALL) - finished
    assert {e["stage"] for e in new if e["event"] == "cached"} == finished
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())


def test_interrupted_stage_keeps_finished_ones(tmp_path):
    """Ctrl-C (KeyboardInterrupt) inside the crossbar stage propagates, logs 'failed',
    removes the stage's temporary folder, and keeps load and calibrate finished."""
    cfg = setup(tmp_path)
    out = tmp_path / "out"

    def hook(name, tmp):
        if name == "crossbar":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(cfg, out, on_stage_start=hook)
    assert {s for s in ALL if (out / s / P.MARKER).is_file()} == {"load", "calibrate"}
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
    assert events(out)[-1]["event"] == "failed" and events(out)[-1]["stage"] == "crossbar"
    res = run(cfg, out, stages=("crossbar",))
    assert res["status"] == {"load": "cached", "calibrate": "cached", "crossbar": "ran"}


def test_foreign_output_folder_refused(tmp_path):
    """OUT that is a non-empty folder without an xbarlab manifest is refused
    (OutputExistsError) unless force=True."""
    cfg = setup(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("do not touch")
    with pytest.raises(OutputExistsError):
        run(cfg, out, stages=("load",))
    res = run(cfg, out, stages=("load",), force=True)
    assert res["status"] == {"load": "ran"}
    assert (out / "thesis.tex").read_text() == "do not touch"


def test_force_into_a_foreign_folder_deletes_nothing_of_the_users(tmp_path):
    """`run --force` into a folder that holds the user's things (dot-folders named like the
    runner's own, '.tmp-notes/', '.old-results/', a '.tmp-load-x' folder, files) removes only
    leftovers of its own pattern: a stage folder of a dead process and a dead writer's
    temporary file."""
    cfg = setup(tmp_path)
    out = tmp_path / "mine"
    users = [out / ".tmp-notes", out / ".old-results", out / ".tmp-load-x",
             out / ".old-calibrate-12ab"]
    for d in users:
        (d / "inner").mkdir(parents=True)
        (d / "inner" / "note.txt").write_text("keep")
    (out / "notes.txt").write_text("keep")
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = int(proc.stdout)
    stale_stage = out / f".tmp-noise-{dead}"
    stale_stage.mkdir()
    stale_file = out / f".report.html.xbl{dead}-abcdefgh.tmp"
    stale_file.write_text("half")
    run(cfg, out, force=True, stages=("load",))
    assert all((d / "inner" / "note.txt").read_text() == "keep" for d in users)
    assert (out / "notes.txt").read_text() == "keep"
    assert not stale_stage.exists() and not stale_file.exists()


def test_force_never_replaces_a_users_folder_named_like_a_stage(tmp_path):
    """A folder of the user's named like a stage ('load/') in a foreign OUT used with force:
    refused (OutputExistsError naming it), its content untouched."""
    cfg = setup(tmp_path)
    out = tmp_path / "mine"
    (out / "load").mkdir(parents=True)
    (out / "load" / "data.csv").write_text("keep")
    with pytest.raises(OutputExistsError, match="is not a stage folder"):
        run(cfg, out, force=True, stages=("load",))
    assert (out / "load" / "data.csv").read_text() == "keep"


def test_second_run_into_a_locked_folder_refuses(tmp_path):
    """While another run holds OUT's lock, a run refuses at once (RunLockedError naming the
    holder's pid) and writes no stage; once the lock is released the run proceeds."""
    import fcntl

    cfg = setup(tmp_path)
    out = tmp_path / "out"
    run(cfg, out, stages=("load",))
    fd = os.open(out / P.LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, b"4242\n", 0)
        n_before = len(events(out))
        with pytest.raises(P.RunLockedError, match=r"another xbarlab run \(pid 4242\)"):
            run(cfg, out, stages=("calibrate",))
        assert len(events(out)) == n_before and not (out / "calibrate").exists()
    finally:
        os.close(fd)
    assert run(cfg, out, stages=("load",))["status"] == {"load": "cached"}
