"""Atomic writing and xbarlab output folders.

Every file xbarlab writes goes through :func:`atomic_output`: readers see the old file
or the complete new one, never a partial write, and the file gets the permissions of the
user's umask. Its temporary files are named ``.NAME.xbl<pid>-<random><suffix>``
(:data:`TEMP_PATTERN`); one whose process is gone (killed during a write) is removed by
the next write into the same folder. An output folder xbarlab created holds
``xbarlab-manifest.json`` (:data:`MANIFEST_NAME`), the log of commands run in it.
:func:`check_not_input` refuses an output that is one of the inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, DataFormatError, OutputExistsError
from .provenance import utc_now

__all__ = ["MANIFEST_NAME", "TEMP_PATTERN", "atomic_output", "write_text_atomic",
           "prepare_output_dir", "clean_stale_temporaries", "check_input_file",
           "check_not_input", "check_output_path", "process_alive"]

#: Name of the manifest file that marks a folder as an xbarlab output folder.
MANIFEST_NAME = "xbarlab-manifest.json"
#: The names of :func:`atomic_output`'s temporary files; ``pid`` is the writing process.
TEMP_PATTERN = re.compile(r"^\.(?P<name>.+)\.xbl(?P<pid>\d+)-[A-Za-z0-9_]{8}(?P<suffix>.*)$")


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process: not ours to judge
    return True


def clean_stale_temporaries(folder) -> list[Path]:
    """Remove :func:`atomic_output`'s temporary files in ``folder`` whose writing process is
    gone; return the removed paths. Only plain files named like :data:`TEMP_PATTERN` are
    touched."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = TEMP_PATTERN.match(e.name)
        if m is None or not e.is_file(follow_symlinks=False):
            continue
        pid = int(m.group("pid"))
        if pid == os.getpid() or process_alive(pid):
            continue  # being written (this process may write it from another thread)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(e.path)
            removed.append(Path(e.path))
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_input_file(path, *, what: str = "input file") -> Path:
    """``path`` as a Path if it is a regular file (or does not exist: the reader says so);
    a folder, FIFO, socket or device is refused without opening it (a FIFO would block).

    Raises
    ------
    DataFormatError
        Naming the path and what it is instead of a file.
    """
    import stat

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path
    if stat.S_ISREG(mode):
        return path
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a device, not a regular file")
    raise DataFormatError(f"{what} {path} is {kind}; expected a file")


def check_not_input(out, inputs, *, what: str = "output") -> None:
    """Refuse an output path that is one of ``inputs`` (same file through any path: relative,
    absolute, a symlink or a hard link).

    Raises
    ------
    ConfigError
        Naming the output and the input it would overwrite.
    """
    out = Path(out)
    for p in inputs:
        p = Path(p)
        same = False
        try:
            same = out.exists() and p.exists() and os.path.samefile(out, p)
        except OSError:
            same = False
        if same or out.resolve() == p.resolve():
            raise ConfigError(f"the {what} {out} is the input {p}; writing it would replace "
                              "the input: choose another path")


#: Characters :func:`atomic_output`'s temporary name adds to the output's name.
_TEMP_EXTRA = 48


def check_output_path(path, *, force: bool = False, folder: bool = False,
                      what: str = "output") -> Path:
    """Refuse an output path that a write would fail on, before any work starts.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or, with ``folder``, the folder) to write.
    force : bool
        Whether an existing file may be replaced (a folder may always be reused here;
        :func:`prepare_output_dir` decides whether it is xbarlab's).
    folder : bool
        ``path`` is an output folder rather than a file.
    what : str
        What the path is for, e.g. ``"model file (-o)"`` (named in the message).

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        An existing file without ``force``.
    ConfigError
        ``path`` is a folder, FIFO or device where a file goes (or a file where a folder
        goes); a folder above it is a file or cannot be written; its name is too long.
    """
    import stat

    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a name too long, a file in place of a folder above it, ...
        raise ConfigError(f"the {what} {path} cannot be written: {exc.strerror}") from None
    if mode is not None:
        if folder and not stat.S_ISDIR(mode):
            raise ConfigError(f"the {what} {path} exists and is not a folder")
        if not folder and not stat.S_ISREG(mode):
            kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)"
                    if stat.S_ISFIFO(mode) else "not a regular file")
            raise ConfigError(f"the {what} {path} is {kind}; expected a file path")
        if not folder and not force:
            raise OutputExistsError(f"{path} exists; pass force=True to replace it")
    above = path.absolute().parent
    while not above.exists():
        above = above.parent
    if not above.is_dir():
        raise ConfigError(f"the {what} {path} cannot be written: {above} is not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"the {what} {path} cannot be written: no permission to write "
                          f"in {above}")
    room = os.pathconf(above, "PC_NAME_MAX") - (0 if folder else _TEMP_EXTRA)
    if len(os.fsencode(path.name)) > room:
        raise ConfigError(f"the {what} {path}: its name of {len(os.fsencode(path.name))} "
                          f"bytes is too long (at most {room} here)")
    return path


@contextlib.contextmanager
def atomic_output(path, *, force: bool = False, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is
    atomic: readers see the old file or the complete new one, never a partial
    write. If the body raises, the temporary file is removed and ``path`` is
    untouched. An existing ``path`` raises :class:`OutputExistsError` unless
    ``force`` is true.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass force=True to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(folder)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.xbl{os.getpid()}-",
                               suffix=suffix or ".tmp", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.exists() and not force:  # appeared while we were writing
            raise OutputExistsError(f"{path} appeared during the write; not replacing it")
        # mkstemp makes the file 0600: give it what a plain open() would (0666 & ~umask)
        if tmp_path.is_file():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def prepare_output_dir(path, *, force: bool = False, command: str = "") -> Path:
    """Create or reuse an xbarlab output folder and return it.

    A folder xbarlab created holds ``xbarlab-manifest.json``; reusing such a
    folder is allowed (later stages resume in it). A non-empty folder without a
    manifest is refused with :class:`OutputExistsError` unless ``force``.
    """
    path = Path(path)
    manifest = path / MANIFEST_NAME
    if path.exists():
        if not path.is_dir():
            raise OutputExistsError(f"{path} exists and is not a folder")
        if not manifest.exists() and any(path.iterdir()) and not force:
            raise OutputExistsError(
                f"{path} is a non-empty folder that xbarlab did not create (no {MANIFEST_NAME});"
                " choose another folder or pass force=True"
            )
    path.mkdir(parents=True, exist_ok=True)
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataFormatError(f"{manifest} is not valid JSON: {exc}") from None
    else:
        data = {"created": utc_now(), "xbarlab_version": __version__, "runs": []}
    data.setdefault("runs", []).append(
        {"command": command, "time": utc_now(), "xbarlab_version": __version__}
    )
    write_text_atomic(manifest, json.dumps(data, indent=2) + "\n", force=True)
    return path
