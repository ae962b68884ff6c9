"""Atomic writing and xbarlab output folders.

Every file xbarlab writes goes through :func:`atomic_output`: readers see the old file
or the complete new one, never a partial write. An output folder xbarlab created holds
``xbarlab-manifest.json`` (:data:`MANIFEST_NAME`), the log of commands run in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .. import __version__
from ..errors import DataFormatError, OutputExistsError
from .provenance import utc_now

__all__ = ["MANIFEST_NAME", "atomic_output", "write_text_atomic", "prepare_output_dir"]

#: Name of the manifest file that marks a folder as an xbarlab output folder.
MANIFEST_NAME = "xbarlab-manifest.json"


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=folder)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if path.exists() and not force:  # appeared while we were writing
            raise OutputExistsError(f"{path} appeared during the write; not replacing it")
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
