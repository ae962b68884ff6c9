"""Shared fixtures of the formats tests: a small long table and a model-file tree."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from xbarlab.formats import Quantity

_G = np.array([1.0e-5, 2.5e-5, -1.0e-7, 4.0e-5, 3.0e-5, 1.5e-5])
_T = np.array([0.0, 10.0, 0.0, 10.0, 0.0, 10.0])
_DEV = np.array([7, 7, 9, 9, 11, 11])
_ROWS = list(zip(_DEV.tolist(), _T.tolist(), _G.tolist(), strict=True))


def _long_csv(path: Path, sep: str = ",", header: bool = True) -> Path:
    lines = [sep.join(["device", "time", "g"])] if header else []
    lines += [sep.join([str(d), repr(t), repr(g)]) for d, t, g in _ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def long_table():
    """Six reads of devices 7, 9, 11 (two each, at 0 s and 10 s; one read below zero):
    ``g`` [S], ``time`` [s], ``device`` labels, ``rows`` (device, time, g) and
    ``write(path, sep=",", header=True)`` writing them as a text table."""
    return SimpleNamespace(g=_G, time=_T, device=_DEV, rows=_ROWS, write=_long_csv)


@pytest.fixture
def model_tree():
    """A model-file tree with a scalar and a 2-D dataset, a nested group and attrs."""
    return {
        "g_max": Quantity(2.5e-4, "S"),
        "nu": Quantity(np.array([[0.01, 0.02], [0.03, 0.04]]), "1"),
        "drift": {"t0": Quantity(1.0, "s"), "law": "power", "levels": 32, "on": True,
                  "note": None},
    }
