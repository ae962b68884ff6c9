"""Fixtures of the command tests: a small device-derived noise file."""

import numpy as np
import pytest

H, D = 3600.0, 86400.0


@pytest.fixture(scope="module")
def pcm_file(tmp_path_factory):
    """PCM noise tables at 1 h and 1 d on a coarse grid, 2e5 pairs per (u, t)."""
    from xbarlab import devices
    from xbarlab.nn.export import export_noise

    tab = export_noise(devices.load("pcm-ibm-2020"), [H, D], np.random.default_rng(1),
                       w_grid=np.array([-1, -0.5, 0, 0.25, 0.5, 0.75, 1.0]), n_samples=200_000)
    path = tmp_path_factory.mktemp("noise") / "pcm.h5"
    tab.write(path)
    return path, tab

