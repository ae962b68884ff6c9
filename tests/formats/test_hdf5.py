"""HDF5 files (xbarlab/formats/hdf5.py): model files round trip with units and provenance,
refusals of wrong, newer or unit-less files, and one header for every xbarlab HDF5 file."""

import h5py
import numpy as np
import pytest
import xbarlab
from xbarlab import devices, formats
from xbarlab.errors import DataFormatError, OutputExistsError
from xbarlab.formats import Measurements, Provenance, Quantity


def test_model_file_round_trip(model_tree, tmp_path):
    """Every leaf comes back with its value, dtype class and unit; provenance keeps method,
    settings, sources (sha256 of the source file) and records version and creation time."""
    src = tmp_path / "data.csv"
    src.write_text("g\n1e-5\n")
    prov = Provenance.for_files("calibration.fit", [src], settings={"bins": 8}, notes="n")
    path = formats.write_model_file(tmp_path / "m.h5", file_type="xbarlab-device-model",
                                    kind="test", tree=model_tree, provenance=prov)
    kind, tree, got = formats.read_model_file(path, file_type="xbarlab-device-model")
    assert kind == "test"
    assert tree["g_max"] == Quantity(2.5e-4, "S")
    np.testing.assert_array_equal(tree["nu"].value, [[0.01, 0.02], [0.03, 0.04]])
    assert tree["nu"].units == "1"
    assert tree["drift"] == {"t0": Quantity(1.0, "s"), "law": "power", "levels": 32,
                             "on": True, "note": None}
    assert got.method == "calibration.fit" and got.settings == {"bins": 8}
    assert got.sources == ({"path": str(src), "sha256": formats.sha256_file(src)},)
    assert got.xbarlab_version == xbarlab.__version__
    assert got.format_version == formats.FORMAT_VERSION and got.created.endswith("+00:00")
    assert formats.file_kind(path) == "xbarlab-device-model"


def test_ideal_device_file_round_trip(tmp_path):
    """IdealDevice(g_min=1e-6, g_max=4e-4) saved and loaded back keeps its range and reads
    exactly the programmed conductances."""
    model = devices.IdealDevice(g_min=1e-6, g_max=4e-4)
    path = model.to_file(tmp_path / "ideal.h5")
    back = devices.load(path)
    assert back.g_range == (1e-6, 4e-4)
    g = np.array([1e-6, 2e-4, 4e-4])
    np.testing.assert_array_equal(back.sample(g, 10.0, np.random.default_rng(0)), g)


def test_wrong_file_type_refused(tmp_path):
    """Reading a noise-model file as a device model raises DataFormatError naming both."""
    path = formats.write_model_file(tmp_path / "n.h5", file_type="xbarlab-noise-model",
                                    kind="k", tree={})
    with pytest.raises(DataFormatError, match="noise-model.*expected.*device-model"):
        formats.read_model_file(path, file_type="xbarlab-device-model")


def test_newer_format_version_refused(model_tree, tmp_path):
    """A file with format_version = FORMAT_VERSION + 1 is refused ('newer ... upgrade')."""
    path = formats.write_model_file(tmp_path / "m.h5", file_type="xbarlab-device-model",
                                    kind="k", tree=model_tree)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = formats.FORMAT_VERSION + 1
    with pytest.raises(DataFormatError, match=r"format_version 2, newer.*upgrade"):
        formats.read_model_file(path)


def test_dataset_without_units_refused(model_tree, tmp_path):
    """A dataset with its units attribute removed is refused, naming the dataset path."""
    path = formats.write_model_file(tmp_path / "m.h5", file_type="xbarlab-device-model",
                                    kind="k", tree=model_tree)
    with h5py.File(path, "r+") as f:
        del f["drift/t0"].attrs["units"]
    with pytest.raises(DataFormatError, match=r"dataset /drift/t0 has no 'units'"):
        formats.read_model_file(path)


def test_unknown_units_and_bare_float_refused(model_tree, tmp_path):
    """Units must be SI ('uS' refused on write and on read); a bare float must be a Quantity."""
    with pytest.raises(DataFormatError, match="'uS' is not an SI unit"):
        Quantity(1.0, "uS")
    with pytest.raises(DataFormatError, match="bare float"):
        formats.write_model_file(tmp_path / "a.h5", file_type="xbarlab-device-model",
                                 kind="k", tree={"x": 1.0})
    path = formats.write_model_file(tmp_path / "b.h5", file_type="xbarlab-device-model",
                                    kind="k", tree=model_tree)
    with h5py.File(path, "r+") as f:
        f["g_max"].attrs["units"] = "uS"
    with pytest.raises(DataFormatError, match="/g_max has units 'uS'"):
        formats.read_model_file(path)


def test_not_hdf5_refused(tmp_path):
    """A text file named .h5 is not a readable HDF5 file: DataFormatError naming it."""
    path = tmp_path / "fake.h5"
    path.write_text("hello\n")
    with pytest.raises(DataFormatError, match="fake.h5 is not a readable HDF5 file"):
        formats.read_model_file(path)
    assert formats.file_kind(path) is None


def test_existing_file_never_overwritten_unless_asked(tmp_path):
    """Writing onto an existing file raises OutputExistsError and keeps its bytes;
    force=True replaces it."""
    path = tmp_path / "m.h5"
    path.write_bytes(b"user data")
    with pytest.raises(OutputExistsError, match="pass force=True"):
        formats.write_model_file(path, file_type="xbarlab-device-model", kind="k", tree={})
    assert path.read_bytes() == b"user data"
    formats.write_model_file(path, file_type="xbarlab-device-model", kind="k", tree={},
                             force=True)
    assert formats.file_kind(path) == "xbarlab-device-model"


def test_model_and_measurement_files_share_one_header(tmp_path):
    """A model file and a measurement HDF5 file carry the same root attributes: format,
    format_version (= FORMAT_VERSION), xbarlab_version, created, provenance (JSON with the
    same version and creation time), plus kind (model) or time_origin (measurements)."""
    import json

    model = formats.write_model_file(tmp_path / "m.h5", file_type="xbarlab-device-model",
                                     kind="k", tree={}, provenance=Provenance(method="x"))
    m = Measurements(g=np.array([1e-5, 2e-5]), device=np.array([0, 1]))
    table = formats.write_measurements(tmp_path / "t.h5", m)
    common = {"format", "format_version", "xbarlab_version", "created", "provenance"}
    for path, fmt, extra in ((model, "xbarlab-device-model", "kind"),
                             (table, formats.MEASUREMENTS_FORMAT, "time_origin")):
        with h5py.File(path, "r") as f:
            assert set(f.attrs) == common | {extra}
            assert f.attrs["format"] == fmt
            assert f.attrs["format_version"] == formats.FORMAT_VERSION
            assert f.attrs["xbarlab_version"] == xbarlab.__version__
            prov = json.loads(f.attrs["provenance"])
            assert prov["created"] == f.attrs["created"]
            assert prov["format_version"] == formats.FORMAT_VERSION
