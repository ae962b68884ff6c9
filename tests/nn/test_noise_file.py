"""Loading device-derived noise files as torch noise models."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _toy import D, H
from xbarlab.errors import ConfigError, DataFormatError


def test_newer_format_or_layout_version_is_refused(pcm_file, tmp_path):
    """A noise file whose format_version (or layout_version) is newer than this code reads
    raises DataFormatError naming the version."""
    import h5py
    from xbarlab.nn.noise_file import load_noise

    for attr in ("format_version", "layout_version"):
        p = tmp_path / f"{attr}.h5"
        shutil.copy(pcm_file[0], p)
        with h5py.File(p, "r+") as f:
            f.attrs[attr] = 99
        with pytest.raises(DataFormatError, match="99"):
            load_noise(p)


def test_unstored_time_and_duration_text_are_refused(pcm):
    """A time not stored in a noise file raises ConfigError naming it; a duration given as
    text ("1d") is refused: the library takes seconds (the CLI parses durations)."""
    from xbarlab.nn.export import export_noise
    from xbarlab.nn.noise_file import NoiseFile

    tab = export_noise(pcm, [H], np.random.default_rng(0), w_grid=np.linspace(-1, 1, 3),
                       n_samples=1000)
    with pytest.raises(ConfigError, match="not in the noise file"):
        NoiseFile(tab).noise(D)
    with pytest.raises(ConfigError, match="seconds"):
        NoiseFile(tab).noise("1h")
    assert NoiseFile(tab).noise(H).to_dict()["kind"] == "quantile"


def test_unreadable_noise_file_is_refused(tmp_path):
    """A file with the HDF5 signature but nothing readable -> DataFormatError/ConfigError
    (both ValueError) naming the file."""
    from xbarlab.nn.noise_file import load_noise

    f = tmp_path / "noise.h5"
    f.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match="noise.h5"):
        load_noise(f)
