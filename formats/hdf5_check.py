"""Check an HDF5 file's structure in a child process before this process trusts it.

A corrupted HDF5 file can crash the HDF5 library (segmentation fault) or make it loop
forever inside a metadata read, and h5py cannot guard against either. So before
xbarlab opens a file it reads, :func:`check_hdf5_file` opens it in a separate Python
process with a time limit, walks every group, attribute and dataset there (reading
them), and refuses the file with one line when that process crashes, times out or
finds something xbarlab does not follow:

- external links and virtual datasets (a shared file could make xbarlab read any HDF5
  file the user can read, or a FIFO that never answers), unless allowed;
- datasets stored in external raw files;
- soft links that point nowhere;
- a dataset whose declared size exceeds ``max_dataset_bytes`` (a small compressed file
  can declare gigabytes).

The check costs one Python start with h5py (about 0.15-0.25 s on an idle core); the outcome
is remembered by the file's path, size, modification time, inode and the options, so opening
it again in the same process costs nothing. A file this process wrote itself (through
:mod:`xbarlab.formats.hdf5`'s writers, which call :func:`note_written`) and that nobody
changed since (same inode, size and modification time, wherever it was renamed to) is not
walked again: it holds
no links or external storage, and only its largest dataset is compared with
``max_dataset_bytes``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from ..checks import check_number
from ..errors import DataFormatError

__all__ = ["DEFAULT_MAX_DATASET_BYTES", "DEFAULT_CHECK_SECONDS", "START_SECONDS",
           "check_hdf5_file", "note_written"]

#: Largest dataset (declared bytes) read without being told otherwise: 4 GiB.
DEFAULT_MAX_DATASET_BYTES = 4 << 30
#: Time the child process gets to open and walk a file [s], counted from the moment it has
#: started (imported h5py), so that a loaded machine's slow process start is not taken for a
#: corrupt file.
DEFAULT_CHECK_SECONDS = 5.0
#: Time the child process gets to start (interpreter and h5py import) [s].
START_SECONDS = 120.0

# The child: plain h5py and json, no xbarlab import (keeps its start short). It prints one
# JSON line: {"ok": true} or {"problem": "..."}; a crash or an exception ends it otherwise.
_CHILD = r"""
import json, sys
import h5py, numpy
path, max_bytes, allow_external = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
budget = [200000]
print("started", flush=True)

def stop(msg):
    print(json.dumps({"problem": msg}))
    sys.exit(0)

def attrs(obj, where):
    for key in list(obj.attrs):
        try:
            obj.attrs[key]
        except Exception as exc:
            stop(f"attribute {key!r} of {where} cannot be read ({type(exc).__name__}: {exc})")

def walk(group, where, depth):
    if depth > 64:
        stop(f"{where} lies more than 64 groups deep")
    attrs(group, where)
    for name in list(group):
        budget[0] -= 1
        if budget[0] < 0:
            stop("holds more than 200000 objects")
        at = where + name
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            if not allow_external:
                stop(f"{at} is an external link to {link.filename}:{link.path}; external links "
                     "are not followed unless allowed")
            continue
        obj = group.get(name)
        if obj is None:
            stop(f"{at} is a link that points nowhere")
        if isinstance(link, h5py.SoftLink):
            continue  # its target is walked through its own (hard) link
        if isinstance(obj, h5py.Group):
            walk(obj, at + "/", depth + 1)
            continue
        if not isinstance(obj, h5py.Dataset):
            stop(f"{at} is a {type(obj).__name__}, expected a group or a dataset")
        if obj.is_virtual and not allow_external:
            stop(f"{at} is a virtual dataset (it maps other files); not read unless allowed")
        if obj.external:
            stop(f"{at} keeps its data in external raw files; not read")
        attrs(obj, at)
        shape = obj.shape
        if shape is None:
            continue
        n = 1
        for k in shape:
            n *= int(k)
        nbytes = n * obj.dtype.itemsize
        if nbytes > max_bytes:
            stop(f"{at} declares {shape} x {obj.dtype} = {nbytes:,} bytes, more than the "
                 f"limit of {max_bytes:,} bytes")
        try:
            obj[()]
        except Exception as exc:
            stop(f"dataset {at} cannot be read ({type(exc).__name__}: {exc})")

with h5py.File(path, "r") as f:
    walk(f, "/", 0)
print(json.dumps({"ok": True}))
"""

#: Files checked in this process: (path, size, mtime, inode, options) -> the refusal
#: message, or None for a file that passed.
_CHECKED: dict[tuple, str | None] = {}
_CHECKED_MAX = 256
#: Files this process wrote: (device, inode, size, mtime) -> largest dataset [bytes]. The
#: path is left out: a finished stage folder renamed into place keeps its files' inodes.
_WRITTEN: dict[tuple, int] = {}


def _file_key(path: Path, st: os.stat_result) -> tuple:
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _own_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def note_written(path, largest_dataset_bytes: int) -> None:
    """Record that this process has just written the HDF5 file ``path`` itself.

    :func:`check_hdf5_file` then skips the child process for it while the file stays as
    written (same device, inode, size and modification time; renaming keeps them).

    Parameters
    ----------
    path : str or os.PathLike
        The file, after its final rename.
    largest_dataset_bytes : int
        Size of its largest dataset [bytes].
    """
    path = Path(path)
    st = path.stat()
    if len(_WRITTEN) >= _CHECKED_MAX:
        _WRITTEN.clear()
    _WRITTEN[_own_key(st)] = int(largest_dataset_bytes)


def check_hdf5_file(path, *, allow_external: bool = False,
                    max_dataset_bytes: int = DEFAULT_MAX_DATASET_BYTES,
                    timeout: float = DEFAULT_CHECK_SECONDS) -> None:
    """Open and walk an HDF5 file in a child process; refuse it if that fails.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.
    allow_external : bool
        Accept external links and virtual datasets (default: refuse them).
    max_dataset_bytes : int
        Largest declared dataset size accepted [bytes].
    timeout : float
        Time the child gets to open and walk the file [s], counted from its start (its
        interpreter start and h5py import get ``START_SECONDS`` more).

    Raises
    ------
    DataFormatError
        Naming the file and, where known, the path inside it and what is wrong.
    ConfigError
        For a timeout that is not a finite number > 0 [s] or a size limit that is not an
        integer >= 0 [bytes].
    """
    check_number(timeout, what="timeout", lo=0.0, lo_open=True)
    check_number(max_dataset_bytes, what="max_dataset_bytes", integer=True, lo=0)
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot be read ({exc.strerror})") from None
    own = _WRITTEN.get(_own_key(st))
    if own is not None and own <= max_dataset_bytes:
        return
    key = _file_key(path, st) + (bool(allow_external), int(max_dataset_bytes))
    if key in _CHECKED:
        if _CHECKED[key] is not None:
            raise DataFormatError(_CHECKED[key])
        return
    try:
        _run_child(path, allow_external, max_dataset_bytes, timeout)
    except DataFormatError as exc:
        _remember(key, str(exc))
        raise
    _remember(key, None)


def _remember(key: tuple, refusal: str | None) -> None:
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[key] = refusal


def _run_child(path: Path, allow_external: bool, max_dataset_bytes: int, timeout: float):
    cmd = [sys.executable, "-c", _CHILD, os.fspath(path.resolve()), str(int(max_dataset_bytes)),
           "1" if allow_external else "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, errors="replace")
    out: list[str] = []
    err: list[str] = []
    started = threading.Event()

    def read_stdout():
        for line in proc.stdout:
            out.append(line)
            started.set()
        started.set()

    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        if not started.wait(START_SECONDS):
            raise DataFormatError(f"{path}: the process that checks its structure did not start "
                                  f"within {START_SECONDS:g} s (machine overloaded?)")
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DataFormatError(f"{path}: the HDF5 library did not finish reading its "
                                  f"structure within {timeout:g} s; the file is probably "
                                  "corrupt") from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for reader in readers:
            reader.join()
        proc.stdout.close()
        proc.stderr.close()
    done = subprocess.CompletedProcess(cmd, proc.returncode, "".join(out), "".join(err))
    if done.returncode < 0:
        raise DataFormatError(f"{path}: the HDF5 library crashed reading it (signal "
                              f"{-done.returncode}); the file is corrupt") from None
    line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        answer = json.loads(line) if line else {}
    except ValueError:
        answer = {}
    if answer.get("ok"):
        return
    if "problem" in answer:
        raise DataFormatError(f"{path}: {answer['problem']}")
    lines = [s for s in done.stderr.strip().splitlines() if s.strip()]
    last = lines[-1].strip() if lines else f"exit status {done.returncode}"
    raise DataFormatError(f"{path} is not a readable HDF5 file ({last[:300]})")
