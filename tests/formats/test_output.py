"""Atomic writing and output folders (xbarlab/formats/output.py)."""

import json

import numpy as np
import pytest
from xbarlab import formats
from xbarlab.errors import DataFormatError, OutputExistsError
from xbarlab.formats import Quantity


def test_failed_write_leaves_earlier_file_intact(model_tree, tmp_path):
    """A model write that fails midway (an unstorable leaf after good ones) leaves the earlier
    file byte-identical and no temporary file behind; so does an exception inside
    atomic_output after bytes were written."""
    path = formats.write_model_file(tmp_path / "m.h5", file_type="xbarlab-device-model",
                                    kind="first", tree=model_tree)
    before = path.read_bytes()
    bad_tree = {"a": Quantity(np.arange(1000.0), "S"), "b": object()}
    with pytest.raises(DataFormatError, match="cannot store /b"):
        formats.write_model_file(path, file_type="xbarlab-device-model", kind="second",
                                 tree=bad_tree, force=True)
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError, match="disk full"):
        with formats.atomic_output(path, force=True) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("disk full")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


def test_output_folder_manifest_rule(tmp_path):
    """A new folder gets a manifest; reusing it appends a run; a non-empty folder without a
    manifest is refused unless force; a file in place of the folder is refused."""
    out = formats.prepare_output_dir(tmp_path / "run", command="calibrate a")
    manifest = json.loads((out / formats.MANIFEST_NAME).read_text())
    assert [r["command"] for r in manifest["runs"]] == ["calibrate a"]
    (out / "result.txt").write_text("x")
    formats.prepare_output_dir(out, command="calibrate b")
    manifest = json.loads((out / formats.MANIFEST_NAME).read_text())
    assert [r["command"] for r in manifest["runs"]] == ["calibrate a", "calibrate b"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="did not create"):
        formats.prepare_output_dir(foreign)
    formats.prepare_output_dir(foreign, force=True)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert (foreign / formats.MANIFEST_NAME).exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    formats.prepare_output_dir(empty)  # an empty folder is fine
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputExistsError, match="not a folder"):
        formats.prepare_output_dir(tmp_path / "afile")


def _dead_pid() -> int:
    """The id of a process that has ended."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_files_get_the_users_umask(tmp_path):
    """A written file has mode 0666 & ~umask (0644 under umask 022, 0640 under 027), not
    mkstemp's 0600."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        for mask, mode in ((0o022, 0o644), (0o027, 0o640)):
            os.umask(mask)
            p = formats.write_text_atomic(tmp_path / f"r{mask:o}.txt", "x")
            assert stat.S_IMODE(p.stat().st_mode) == mode
    finally:
        os.umask(old)


def test_stale_temporaries_are_cleaned_by_the_next_write(tmp_path):
    """A temporary file of atomic_output's pattern whose process is gone is removed by the
    next write into that folder; a live process's temporary and the user's own dot-files
    and folders (even named like temporaries) are kept."""
    import os

    dead, live = _dead_pid(), os.getppid()
    stale = tmp_path / f".model.h5.xbl{dead}-abcd_123.h5.tmp"
    busy = tmp_path / f".other.h5.xbl{live}-abcd_123.h5.tmp"
    mine = [tmp_path / ".model.h5.notes.tmp", tmp_path / ".tmp-notes", tmp_path / "keep.txt"]
    for p in (stale, busy, *mine[::2]):
        p.write_text("x")
    mine[1].mkdir()
    folder_like = tmp_path / f".dir.xbl{dead}-abcd_123.tmp"
    folder_like.mkdir()
    formats.write_text_atomic(tmp_path / "model.h5", "new")
    assert not stale.exists()
    assert busy.exists() and folder_like.is_dir() and all(p.exists() for p in mine)


def test_enospc_during_the_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    """An OSError(ENOSPC) raised while the new file is put in place leaves the previous file
    byte-identical and no temporary file."""
    import errno
    import os

    path = formats.write_text_atomic(tmp_path / "r.json", "old")

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        formats.write_text_atomic(path, "new", force=True)
    monkeypatch.undo()
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_input_files_are_checked_before_opening(tmp_path):
    """A folder or a FIFO given as an input file is refused by what it is (a FIFO without
    being opened, so nothing blocks); a missing path is left to the reader."""
    import os

    with pytest.raises(DataFormatError, match="is a folder; expected a file"):
        formats.check_input_file(tmp_path, what="measurement file")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataFormatError, match=r"is a FIFO \(named pipe\)"):
        formats.check_input_file(fifo)
    assert formats.check_input_file(tmp_path / "none.csv") == tmp_path / "none.csv"


def test_output_equal_to_an_input_is_refused(tmp_path, monkeypatch):
    """The same file through a relative path, a symlink or a hard link is refused."""
    import os

    from xbarlab.errors import ConfigError

    data = tmp_path / "data.h5"
    data.write_text("x")
    (tmp_path / "link.h5").symlink_to(data)
    os.link(data, tmp_path / "hard.h5")
    monkeypatch.chdir(tmp_path)
    for out in ("data.h5", "./sub/../data.h5", "link.h5", "hard.h5", str(data)):
        if out.startswith("./sub"):
            (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(ConfigError, match="would replace the input"):
            formats.check_not_input(out, [data])
    formats.check_not_input("other.h5", [data])


def test_kill_9_during_a_write_leaves_no_orphan_after_the_next_write(tmp_path):
    """A writer killed with SIGKILL inside atomic_output leaves the previous file intact and
    its temporary file, which the next write into that folder removes."""
    import os
    import signal
    import subprocess
    import sys

    path = formats.write_text_atomic(tmp_path / "model.h5", "old")
    code = ("import sys, time\nfrom xbarlab.formats import atomic_output\n"
            "with atomic_output(sys.argv[1], force=True, suffix='.h5.tmp') as tmp:\n"
            "    tmp.write_text('half')\n    print('writing', flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    orphans = [p for p in tmp_path.iterdir() if p.name != "model.h5"]
    assert len(orphans) == 1 and formats.TEMP_PATTERN.match(orphans[0].name)
    assert path.read_text() == "old"
    formats.write_text_atomic(tmp_path / "report.md", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5", "report.md"]
