"""Shared fixtures of the nn tests: the PCM preset and a PCM noise file; puts this folder on
``sys.path`` so that ``from _toy import ...`` finds the toy networks."""

import sys
from pathlib import Path

import numpy as np
import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from _toy import D, H  # noqa: E402


@pytest.fixture(scope="module")
def pcm():
    from xbarlab import devices

    return devices.load("pcm-ibm-2020")


@pytest.fixture(scope="module")
def pcm_file(pcm, tmp_path_factory):
    """PCM noise tables at 1 h and 1 d on a coarse grid, 2e5 pairs per (u, t)."""
    from xbarlab.nn.export import export_noise

    tab = export_noise(pcm, [H, D], np.random.default_rng(1),
                       w_grid=np.array([-1, -0.5, 0, 0.25, 0.5, 0.75, 1.0]), n_samples=200_000)
    path = tmp_path_factory.mktemp("noise") / "pcm.h5"
    tab.write(path)
    return path, tab

