"""Measured data sets shared by the calibration tests (HKU write-verify RRAM, Stanford
tech C relaxation), each read and fitted once per session."""

from __future__ import annotations

import numpy as np
import pytest
from _shared import shared_path
from xbarlab.calibration import fit, read_measurements, split_devices

TECHC_COLUMNS = "device=0,time=1,g=3,g_initial=4,level=5,time_point=6"


@pytest.fixture(scope="session")
def hku_path():
    return shared_path("data", "measured", "hku_readc_rram", "fig3c_conductance_value.csv")


@pytest.fixture(scope="session")
def hku(hku_path):
    meas = read_measurements(hku_path, layout="wide", units="g=uS")
    return meas, fit(meas, rng=np.random.default_rng(0), n_boot=200)


@pytest.fixture(scope="session")
def techc():
    path = shared_path("data", "measured", "stanford_rram_relaxation", "techC",
                       "relaxdata.min.tsv.gz")
    return path, read_measurements(path, columns=TECHC_COLUMNS)


@pytest.fixture(scope="session")
def techc_split(techc):
    _, meas = techc
    return split_devices(meas, rng=np.random.default_rng(2024))
