"""Provenance of xbarlab files: where a result came from, file hashes, format versions."""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..errors import DataFormatError

__all__ = ["FORMAT_VERSION", "Provenance", "sha256_file", "utc_now", "check_format_version"]

#: Current version of the file layouts xbarlab writes (model files, measurement tables).
#: Files with a larger number are refused; smaller numbers stay readable.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Provenance:
    """Where a model file came from.

    ``method``: how it was made (e.g. ``"preset"``, ``"calibration.fit"``);
    ``settings``: JSON-serialisable options of that method; ``sources``: list of
    ``{"path": str, "sha256": str}`` for each input data file; ``notes``: free text.
    ``xbarlab_version``, ``created`` and ``format_version`` are filled on writing and
    read back from the file.
    """

    method: str = "unknown"
    settings: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[Mapping[str, str], ...] = ()
    notes: str = ""
    xbarlab_version: str = __version__
    created: str = ""
    format_version: int = FORMAT_VERSION

    @staticmethod
    def for_files(method: str, paths, settings: Mapping[str, Any] | None = None, notes: str = ""):
        """Provenance for a result made from data files ``paths`` (hashes them)."""
        sources = tuple({"path": str(p), "sha256": sha256_file(p)} for p in paths)
        return Provenance(method=method, settings=dict(settings or {}), sources=sources,
                          notes=notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "settings": dict(self.settings),
            "sources": [dict(s) for s in self.sources],
            "notes": self.notes,
            "xbarlab_version": self.xbarlab_version,
            "created": self.created,
            "format_version": self.format_version,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Provenance:
        return Provenance(
            method=str(d.get("method", "unknown")),
            settings=dict(d.get("settings", {})),
            sources=tuple(dict(s) for s in d.get("sources", ())),
            notes=str(d.get("notes", "")),
            xbarlab_version=str(d.get("xbarlab_version", "")),
            created=str(d.get("created", "")),
            format_version=int(d.get("format_version", FORMAT_VERSION)),
        )


def sha256_file(path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()



def utc_now() -> str:
    """The current UTC time as ISO 8601 text, to the second (``...+00:00``)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def check_format_version(path, version) -> None:
    """Refuse a file whose ``format_version`` is not an integer in 1 .. FORMAT_VERSION.

    Raises
    ------
    DataFormatError
        Naming ``path`` and the version found.
    """
    if isinstance(version, np.ndarray) and version.shape == ():
        version = version.item()
    if isinstance(version, (bool, np.bool_)) or not isinstance(version, (int, np.integer)):
        shown = version.tolist() if isinstance(version, np.ndarray) else version
        raise DataFormatError(f"{path}: format_version {shown!r} is not an integer; expected "
                              f"an integer from 1 to {FORMAT_VERSION}")
    version = int(version)
    if version > FORMAT_VERSION:
        raise DataFormatError(f"{path} has format_version {version}, newer than this xbarlab "
                              f"reads ({FORMAT_VERSION}); upgrade xbarlab")
    if version < 1:
        raise DataFormatError(f"{path} has an invalid format_version {version}")
