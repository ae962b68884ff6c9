"""Mutated real inputs through the readers and ``xbarlab inspect`` (in process): 1-4 byte
changes of the shipped example tables, a small measurement table as .csv.gz, .npz and HDF5,
a device-model file and a noise file. Each example either reads, or ends in one of
xbarlab's own errors (exit 1 or 2 from the command); nothing else escapes, nothing hangs
(HDF5 goes through the child check and its 5 s limit; each example has an 8 s deadline)
and nothing is written. The default run tries a few examples per input; ``pytest -m slow``
runs 10,500."""

import contextlib
import io
import shutil
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xbarlab import devices, formats
from xbarlab.cli import main
from xbarlab.errors import XbarlabError
from xbarlab.formats import Measurements
from xbarlab.nn.export import NoiseTables

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"
NOISE_FIXTURE = ROOT / "tests" / "fixtures" / "written_by_0.1.0" / "noise.h5"
INPUTS = ("pcm_drift.csv", "rram_relaxation.tsv", "measurements.csv.gz", "measurements.npz",
          "measurements.h5", "device.h5", "noise.h5")


def _head(path: Path, lines: int = 30) -> bytes:
    """The first ``lines`` lines of a shipped table (keeps every example fast)."""
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """name -> bytes of each unmutated input."""
    d = tmp_path_factory.mktemp("fuzz_inputs")
    out = {"pcm_drift.csv": _head(EXAMPLES / "pcm_drift.csv"),
           "rram_relaxation.tsv": _head(EXAMPLES / "rram_relaxation.csv").replace(b",", b"\t")}
    m = Measurements(g=np.linspace(1e-6, 1e-4, 12), device=np.repeat(np.arange(4), 3),
                     time=np.tile([1.0, 10.0, 100.0], 4))
    for suffix in ("h5", "npz", "csv.gz"):
        out[f"measurements.{suffix}"] = formats.write_measurements(d / f"m.{suffix}",
                                                                   m).read_bytes()
    dev = devices.IdealDevice(g_min=1e-6, g_max=4e-4).to_file(d / "device.h5")
    out["device.h5"] = dev.read_bytes()
    out["noise.h5"] = NOISE_FIXTURE.read_bytes()
    return out


def _read(path: Path) -> None:
    """The library reader that fits the file."""
    if path.name == "device.h5":
        devices.load(path)
    elif path.name == "noise.h5":
        NoiseTables.read(path)
    else:
        formats.read_measurements(path)


def _mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for op, where, byte in edits:
        p = min(int(where * len(b)), len(b) - 1)
        if op == 0:
            b[p] = byte
        elif op == 1:
            b.insert(p, byte)
        else:
            del b[p]
    return bytes(b)


EDITS = st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1, exclude_max=True),
                           st.integers(0, 255)), min_size=1, max_size=4)


def _check_one(originals, name: str, edits, workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir()
    path = workdir / name
    path.write_bytes(_mutate(originals[name], edits))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plausibility warning is a legitimate outcome
        try:
            _read(path)
        except XbarlabError:
            pass
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(["inspect", str(path)])
    assert rc in (0, 1, 2), err.getvalue()
    if rc:
        assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    assert sorted(p.name for p in workdir.iterdir()) == [name]  # nothing written


def _fuzz(n: int):
    # 5 s for the child that walks an HDF5 file (its time limit), the rest for reading
    @settings(max_examples=n, deadline=timedelta(seconds=8), derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(edits=EDITS)
    def run(originals, name, tmp_path, edits):
        _check_one(originals, name, edits, tmp_path / "case")
    return run


_few_text = _fuzz(8)
_few_hdf5 = _fuzz(2)  # each HDF5 example starts a child process (about 0.3 s)
_many = _fuzz(1500)


@pytest.mark.parametrize("name", INPUTS)
def test_mutated_inputs_give_xbarlab_errors(originals, name, tmp_path):
    """A few mutations of each input (the default suite)."""
    (_few_hdf5 if name.endswith(".h5") else _few_text)(originals, name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", INPUTS)
def test_mutated_inputs_give_xbarlab_errors_10000(originals, name, tmp_path):
    """1,500 mutations of each of the seven inputs: 10,500 examples."""
    _many(originals, name, tmp_path)
