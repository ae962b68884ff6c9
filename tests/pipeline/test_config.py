"""The config of ``xbarlab run`` (xbarlab/pipeline/config.py): errors name the field and
what is allowed, units are normalised, the shipped example config and data are valid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from xbarlab import pipeline as P
from xbarlab.errors import ConfigError


def _validate(text: str, tmp_path: Path):
    import tomllib

    return P.validate_config(tomllib.loads(text), base_dir=tmp_path)


@pytest.mark.parametrize("text, needles", [
    ('[data]\nfiles = ["a.csv"]\nfoo = 1', ["[data] foo", "files", "columns"]),
    ('[data]\nfiles = ["a.csv"]\n[trian]\nepochs = 1', ["'trian'", "[train]"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\ndataset = "cifar"',
     ["[train] dataset", "'cifar'", "'digits'", "'mnist5k'", "'mnist1d'"]),
    ('[data]\nfiles = ["a.csv"]\n[calibrate]\ndrift = "linear"',
     ["[calibrate] drift", "'power-law'", "'relaxation'"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\nepochs = 0', ["[train] epochs", ">= 1"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\nepochs = 2.5', ["[train] epochs", "integer"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nsizes = [63]', ["[crossbar] sizes", "even"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nr_wire = [-1.0]', ["[crossbar] r_wire", ">= 0"]),
    ('[data]\nfiles = ["a.csv"]\n[noise]\ntimes = ["1 fortnight"]', ["[noise] times"]),
    ('[data]\nfiles = ["a.csv"]\n[train]\ntrain_time = "2d"', ["[train] train_time", "'all'"]),
    ('[data]\nfiles = ["a.csv"]\n[evaluate]\ncompensation = ["local"]',
     ["[evaluate] compensation", "'none'", "'global'"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ng_max = "25 furlongs"', ["[mapping] g_max"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ng_min = "25uS"\ng_max = "10uS"',
     ["[mapping] g_max", "g_min"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ncompare = ["1uS"]',
     ["[mapping] compare", "[g_min, g_max]"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ncompare = ["2.5uS", "1uS"]',
     ["[mapping] compare", "must exceed g_min"]),
    ('[data]\nfiles = ["a.csv"]\n[mapping]\ncompare = ["-1uS", "1uS"]',
     ["[mapping] compare entry", ">= 0"]),
    ('[data]\nfiles = ["a.csv"]\nlayout = "timeseries"', ["timeseries", "sample_rate"]),
    ('seed = -1\n[data]\nfiles = ["a.csv"]', ["seed", ">= 0"]),
    ('threads = 100000\n[data]\nfiles = ["a.csv"]', ["threads", "in [0, 1024]"]),
    ('[data]\nfiles = ["a.csv"]\n[calibrate]\nwindow = "1e400uS"',
     ["[calibrate] window", "finite"]),
    ('[data]\nfiles = ["a.csv"]\n[calibrate]\nwindow = "0uS"', ["[calibrate] window", "> 0"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nsizes = [200000]', ["[crossbar] sizes", "4096"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nvectors = 1000000000',
     ["[crossbar] vectors", "in [1, 4096]"]),
    ('[data]\nfiles = ["a.csv"]\n[crossbar]\nv_max = nan', ["[crossbar] v_max", "finite"]),
    ('[data]\nfiles = ["a.csv"]\n[noise]\ngrid = 1000000000', ["[noise] grid", "100001"]),
    ('[data]\nfiles = ["a.csv"]\n[noise]\nsamples = 1000000000000',
     ["[noise] samples", "1e+08"]),
    ('[data]\nfiles = ["a.csv"]\nsample_rate = 0.0\nsamples_from = 1\nlayout = "timeseries"',
     ["[data] sample_rate", "> 0"]),
    ('[calibrate]\nn_boot = 10', ["[data] files", "required"]),
])
def test_config_errors_name_field_and_allowed(tmp_path, text, needles):
    """Each bad config raises ConfigError whose message contains the field name and the
    allowed values or bound (the listed substrings)."""
    with pytest.raises(ConfigError) as ei:
        _validate(text, tmp_path)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_config_normalises_units(tmp_path):
    """Durations become seconds and conductances siemens: "1h" -> 3600, "1y" -> 31557600,
    "25uS" -> 2.5e-5, [mapping] compare ["0.3125uS", 2.5e-6] -> [3.125e-7, 2.5e-6] (default
    []); times are sorted; relative files resolve against the config folder."""
    c = _validate('[data]\nfiles = ["x/a.csv"]\n[mapping]\ng_max = "25uS"\n'
                  'compare = ["0.3125uS", 2.5e-6]\n'
                  '[evaluate]\ntimes = ["1y", "1h", 60]', tmp_path)
    assert c["evaluate"]["times"] == [60.0, 3600.0, 31557600.0]
    assert c["mapping"]["g_max"] == pytest.approx(2.5e-5, rel=1e-15)
    assert c["mapping"]["compare"] == pytest.approx([3.125e-7, 2.5e-6], rel=1e-15)
    assert _validate('[data]\nfiles = ["a.csv"]', tmp_path)["mapping"]["compare"] == []
    assert c["data"]["files"] == [str((tmp_path / "x" / "a.csv").resolve())]
    assert c["seed"] == 0 and c["train"]["dataset"] == "digits"


def test_bad_toml_and_missing_file(tmp_path):
    """Invalid TOML and a missing config file are ConfigErrors naming the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\nfiles = 1")
    with pytest.raises(ConfigError, match="bad.toml"):
        P.load_config(bad)
    with pytest.raises(ConfigError, match="nope.toml"):
        P.load_config(tmp_path / "nope.toml")


def test_example_config_is_shipped_and_valid():
    """The shipped example config validates, points at the shipped data file, and documents
    every schema field (each field name appears in it, commented or set)."""
    cfg, path = P.load_config(None)
    assert path.name == "example_config.toml"
    assert all(Path(f).is_file() for f in cfg["data"]["files"])
    text = path.read_text()
    for section, fields in P.SCHEMA.items():
        if section:
            assert f"[{section}]" in text
        for name in fields:
            assert f"{name} =" in text or f"# {name} =" in text, name


def test_example_data_is_what_its_generator_makes(tmp_path):
    """The shipped pcm_drift.csv is exactly (byte for byte) what make_example_data.py draws
    from the pcm-ibm-2020 preset with its seed: 2,550 cells read 6 times, at the 17 targets
    0.3125 µS x 1..8 (the reduced range) and 2.5 µS x 2..10 (up to the preset's 25 µS); if
    device physics or its random streams change, regenerate it: python
    data/examples/make_example_data.py --force."""
    import importlib.util

    from xbarlab.formats import Provenance, write_measurements

    folder = P.example_config_path().parent
    spec = importlib.util.spec_from_file_location("make_example_data",
                                                  folder / "make_example_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.make(np.random.default_rng(mod.SEED))
    assert (m.n_devices, m.n_reads) == (2550, 15300)
    want = np.concatenate([0.3125e-6 * np.arange(1, 9), 2.5e-6 * np.arange(2, 11)])
    np.testing.assert_allclose(np.unique(m.g_target), want, rtol=1e-15)
    out = tmp_path / mod.FILE_NAME
    write_measurements(out, m, provenance=Provenance(method="test"), float_format="%.6g")
    assert out.read_bytes() == (folder / mod.FILE_NAME).read_bytes()
