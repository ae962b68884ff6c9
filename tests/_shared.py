"""Locate the shared, read-only data folder (``../shared`` beside the repository).

``shared_path("data", "measured", ...)`` returns the path, or skips the test when
the folder is absent, except under ``CI=true``, where a missing shared folder is a
failure (CI always puts it beside the clone). ``XBARLAB_SHARED`` overrides the
location. Import it as ``from _shared import shared_path`` (tests/conftest.py puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["shared_root", "shared_path"]


def shared_root() -> Path:
    """The shared folder: ``$XBARLAB_SHARED`` or ``<repo>/../shared`` (may not exist)."""
    env = os.environ.get("XBARLAB_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared"


def shared_path(*parts: str) -> Path:
    """``shared_root() / parts``; pytest.skip when absent (pytest.fail under CI=true)."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        msg = (f"shared data {path} not found; put the shared folder beside the repository "
               "or set XBARLAB_SHARED")
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
