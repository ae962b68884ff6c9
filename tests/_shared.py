"""Locate the shared, read-only data folder (``../shared`` beside the repository).

``shared_path("data", "measured", ...)`` returns the path, or skips the test when
the folder is absent, except under ``CI=true``, where a missing shared folder is a
failure (CI always puts it beside the clone). ``XBARLAB_SHARED`` overrides the
location. Import it as ``from _shared import shared_path`` (tests/conftest.py puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

__all__ = ["shared_root", "shared_path", "need_ngspice", "rel_err"]


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
        _skip_or_fail(msg)
    return path


def _skip_or_fail(msg: str) -> None:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def need_ngspice() -> None:
    """Skip the test when ngspice is not on PATH (pytest.fail under CI=true, which installs it)."""
    if shutil.which("ngspice") is None:
        _skip_or_fail("ngspice not installed (apt-get install ngspice)")


def rel_err(a, ref) -> float:
    """Largest absolute deviation of ``a`` from ``ref`` over the largest ``|ref|``."""
    return float(np.max(np.abs(np.asarray(a) - ref)) / np.max(np.abs(ref)))
