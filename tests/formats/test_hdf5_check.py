"""Hostile and corrupted HDF5 files (xbarlab/formats/hdf5_check.py, formats/hdf5.py, the model,
noise and network readers): each refused with one DataFormatError naming the file and the
path inside it, never a crash, a hang or a traceback of another type."""

import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from xbarlab import devices, formats
from xbarlab.cli import main
from xbarlab.errors import DataFormatError
from xbarlab.formats import Measurements, Quantity
from xbarlab.formats.hdf5_check import check_hdf5_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "written_by_0.1.0"


@pytest.fixture
def table_h5(tmp_path):
    """A small measurement file written by xbarlab."""
    m = Measurements(g=np.array([1e-5, 2e-5, 3e-5, 4e-5]), device=np.array([0, 0, 1, 1]),
                     time=np.array([1.0, 2.0, 1.0, 2.0]))
    return formats.write_measurements(tmp_path / "m.h5", m)


@pytest.fixture
def device_h5(tmp_path):
    return devices.IdealDevice(g_min=1e-6, g_max=4e-4).to_file(tmp_path / "dev.h5")


def _other_h5(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["secret"] = np.arange(4.0)
    return other


def test_external_link_refused(table_h5, tmp_path):
    """An external link inside /measurements is refused by default, naming the link; it is
    followed when allow_external is given."""
    other = _other_h5(tmp_path)
    with h5py.File(table_h5, "r+") as f:
        f["measurements/x"] = h5py.ExternalLink(str(other), "/secret")
    with pytest.raises(DataFormatError, match=r"m\.h5: /measurements/x is an external link"):
        formats.read_measurements(table_h5)
    check_hdf5_file(table_h5, allow_external=True)


def test_virtual_dataset_refused(tmp_path):
    """A virtual dataset (mapping another file) is refused unless allowed."""
    other = _other_h5(tmp_path)
    layout = h5py.VirtualLayout(shape=(4,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(other), "secret", shape=(4,))
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        f.create_group("measurements").create_virtual_dataset("g", layout)
    with pytest.raises(DataFormatError, match=r"v\.h5: /measurements/g is a virtual dataset"):
        formats.read_measurements(path)


def test_oversized_declared_dataset_refused(tmp_path):
    """A tiny compressed file whose dataset declares 32 GB is refused before any read."""
    path = tmp_path / "bomb.h5"
    with h5py.File(path, "w") as f:
        f.create_group("measurements").create_dataset(
            "g", shape=(4 << 30,), dtype="f8", chunks=(1 << 20,), compression="gzip")
    assert path.stat().st_size < 100_000
    with pytest.raises(DataFormatError, match=r"/measurements/g declares .* more than the limit"):
        formats.read_measurements(path)


def test_dangling_link_refused(device_h5):
    """A soft link that points nowhere is refused (not ``'NoneType' has no attribute``)."""
    with h5py.File(device_h5, "r+") as f:
        f["ghost"] = h5py.SoftLink("/nowhere")
    with pytest.raises(DataFormatError, match=r"dev\.h5: /ghost is a link that points nowhere"):
        devices.load(device_h5)


def test_hang_or_crash_becomes_one_line(table_h5, tmp_path):
    """A child that does not finish within the time limit gives a DataFormatError (on a
    copy: the file this process wrote itself is not walked again)."""
    copy = tmp_path / "copy.h5"
    shutil.copyfile(table_h5, copy)
    with pytest.raises(DataFormatError, match="did not finish"):
        check_hdf5_file(copy, timeout=1e-4)


def test_own_file_skips_the_child_until_changed(table_h5, monkeypatch):
    """A file written by this process is trusted while unchanged; once another writer
    changes it (new size), the child walks it again and finds the external link."""
    from xbarlab.formats import hdf5_check

    calls = []
    monkeypatch.setattr(hdf5_check, "_run_child", lambda *a: calls.append(a))
    check_hdf5_file(table_h5)
    assert calls == []
    monkeypatch.undo()
    with h5py.File(table_h5, "r+") as f:
        f["elsewhere"] = h5py.ExternalLink("other.h5", "/x")
    with pytest.raises(DataFormatError, match="external link"):
        check_hdf5_file(table_h5)


@pytest.mark.parametrize("cut", [100, 800, 2000])
def test_truncated_or_overwritten_file_refused(table_h5, cut):
    """A truncated file and a file with bytes overwritten give DataFormatError."""
    data = bytearray(table_h5.read_bytes())
    table_h5.write_bytes(bytes(data[:cut]))
    with pytest.raises(DataFormatError, match=r"m\.h5"):
        formats.read_measurements(table_h5)


@pytest.mark.parametrize("value, match", [
    ("two", "format_version 'two' is not an integer"),
    ("1", "format_version '1' is not an integer; expected an integer from 1"),
    (np.array([1, 2]), "format_version .* is not an integer"),
])
def test_format_version_of_wrong_type(device_h5, value, match):
    with h5py.File(device_h5, "r+") as f:
        f.attrs["format_version"] = value
    with pytest.raises(DataFormatError, match=match):
        devices.load(device_h5)


def test_provenance_json_list_and_non_utf8(device_h5):
    """A provenance that is a JSON list, and an attribute that is not UTF-8, name the
    attribute and what was expected."""
    with h5py.File(device_h5, "r+") as f:
        f.attrs["provenance"] = "[1, 2]"
    with pytest.raises(DataFormatError, match="provenance of / is a JSON list, expected"):
        devices.load(device_h5)
    with h5py.File(device_h5, "r+") as f:
        f.attrs["provenance"] = "{}"
        f.attrs["kind"] = np.bytes_(b"\xff\xfe")
    with pytest.raises(DataFormatError, match=r"attribute 'kind' of / is not UTF-8"):
        devices.load(device_h5)


def test_group_replaced_by_dataset_and_missing_entries(tmp_path):
    """A noise file whose mapping group is a dataset, or lacks entries, names the file."""
    from xbarlab.nn.export import NOISE_KIND, NoiseTables

    path = tmp_path / "n.h5"
    formats.write_model_file(path, file_type="xbarlab-noise-model", kind=NOISE_KIND,
                             tree={"layout_version": 2, "mapping": Quantity(1.0, "1")})
    with pytest.raises(DataFormatError, match=r"n\.h5: .*mapping"):
        NoiseTables.read(path)
    formats.write_model_file(path, file_type="xbarlab-noise-model", kind=NOISE_KIND,
                             tree={"layout_version": 2, "mapping": {
                                 "g_min": Quantity(1e-6, "S"), "g_max": Quantity(1e-4, "S")}},
                             force=True)
    with pytest.raises(DataFormatError, match=r"n\.h5"):
        NoiseTables.read(path)


def test_device_tree_of_wrong_shape(device_h5):
    """A device-model dataset of the wrong shape gives DataFormatError naming the file."""
    with h5py.File(device_h5, "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    with h5py.File(device_h5, "r+") as f:
        for n in names:
            units = f[n].attrs["units"]
            del f[n]
            f[n] = np.array(["x", "y"], dtype="S")
            f[n].attrs["units"] = units
    with pytest.raises(DataFormatError, match=r"dev\.h5"):
        devices.load(device_h5)


def test_trained_network_without_input_shape(tmp_path):
    """A model.pt whose config lacks input_shape gives DataFormatError naming the entry."""
    import torch
    from xbarlab.nn.train import load_trained

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "config": {"model": "mlp", "hidden": [4, 4]}}, path)
    with pytest.raises(DataFormatError, match=r"model\.pt: entry 'input_shape' is missing"):
        load_trained(path)


def test_inspect_escapes_control_characters(device_h5, capsys):
    """``xbarlab inspect`` prints provenance strings with escape sequences escaped."""
    with h5py.File(device_h5, "r+") as f:
        f.attrs["provenance"] = '{"method": "\\u001b]0;owned\\u0007\\u001b[2J", "notes": "a\\nb"}'
    assert main(["inspect", str(device_h5)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07\\x1b[2J" in out and "a\\x0ab" in out


def test_inspect_refuses_external_link_with_one_line(table_h5, tmp_path, capsys):
    other = _other_h5(tmp_path)
    with h5py.File(table_h5, "r+") as f:
        f["measurements/x"] = h5py.ExternalLink(str(other), "/secret")
    assert main(["inspect", str(table_h5)]) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "external link" in err[0]


def _set_dataset(f, name, value):
    units = f[name].attrs["units"]
    del f[name]
    f[name] = value
    f[name].attrs["units"] = units


@pytest.mark.parametrize("edit, match", [
    (lambda f: _set_dataset(f, "g_fit", np.array([1e-5])), "malformed content .*index 1"),
    (lambda f: f.__delitem__("programming/bias"), "entry 'bias' is missing"),
    (lambda f: (f.__delitem__("programming"), f.create_dataset("programming", data=[0.0]),
                f["programming"].attrs.__setitem__("units", "1")),
     "malformed content .*not subscriptable"),
])
def test_malformed_fitted_device_model(tmp_path, edit, match):
    """A fitted device model with a wrong shape, a missing group or a group that is a
    dataset: DataFormatError naming the file and the model kind expected."""
    path = shutil.copy(FIXTURES / "fitted_powerlaw.h5", tmp_path / "fit.h5")
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(DataFormatError, match=r"fit\.h5: " + match + ".*expected an xbarlab "
                       "device model"):
        devices.load(path)


@pytest.mark.parametrize("edit, match", [
    (lambda f: f.attrs.__setitem__("conditioning", "bogus"), "conditioning 'bogus' is not one"),
    (lambda f: f.attrs.__setitem__("weights_map_to", "x"), "weights_map_to 'x' is not one"),
    (lambda f: f["mean"].__setitem__(Ellipsis, np.nan), "mean holds NaN"),
])
def test_malformed_noise_file(tmp_path, edit, match):
    """A noise file with an unknown conditioning or all-NaN means is refused."""
    from xbarlab.nn.export import NoiseTables

    path = shutil.copy(FIXTURES / "noise.h5", tmp_path / "noise.h5")
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(DataFormatError, match=r"noise\.h5: " + match):
        NoiseTables.read(path)


def test_a_file_that_never_answers_is_refused_in_time(tmp_path):
    """A FIFO named like an HDF5 file blocks the child's open forever: refused after the
    time limit, with the child killed."""
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(DataFormatError, match=r"pipe\.h5: .*did not finish .* within 0\.5 s"):
        check_hdf5_file(fifo, timeout=0.5)
    assert time.monotonic() - t0 < 60


def test_a_slow_start_is_not_taken_for_a_corrupt_file(table_h5, tmp_path, monkeypatch):
    """The time limit counts from the child's start: a child whose interpreter and imports
    take longer than the limit (a loaded machine) still passes a good file."""
    from xbarlab.formats import hdf5_check

    copy = tmp_path / "copy.h5"
    shutil.copyfile(table_h5, copy)
    monkeypatch.setattr(hdf5_check, "_CHILD", "import time; time.sleep(1.5)\n" + hdf5_check._CHILD)
    check_hdf5_file(copy, timeout=1.0)


def test_bad_time_limit_and_size_limit_are_refused(tmp_path):
    """A time limit that is not a finite number > 0 s, or a size limit that is not an
    integer >= 0 bytes, is refused naming it before any child process starts."""
    from xbarlab.errors import ConfigError
    from xbarlab.formats.hdf5_check import check_hdf5_file

    f = tmp_path / "x.h5"
    f.write_bytes(b"")
    for kw, name in (({"timeout": float("nan")}, "timeout"), ({"timeout": 0}, "timeout"),
                     ({"max_dataset_bytes": -1}, "max_dataset_bytes"),
                     ({"max_dataset_bytes": 1.5}, "max_dataset_bytes")):
        with pytest.raises(ConfigError, match=name):
            check_hdf5_file(f, **kw)
