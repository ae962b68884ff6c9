"""Atomic writing and output folders (xbarlab/formats/output.py)."""

import json

import numpy as np
import pytest
from xbarlab import formats
from xbarlab.errors import DataFormatError, OutputExistsError
from xbarlab.formats import Quantity


def test_failed_write_leaves_earlier_file_intact(model_tree, tmp_path):
    """A model write that fails midway (an unstorable leaf after good ones) leaves the earlier
    file byte-identical and no temporary file behind; so does an exception inside
    atomic_output after bytes were written."""
    path = formats.write_model_file(tmp_path / "m.h5", file_type="xbarlab-device-model",
                                    kind="first", tree=model_tree)
    before = path.read_bytes()
    bad_tree = {"a": Quantity(np.arange(1000.0), "S"), "b": object()}
    with pytest.raises(DataFormatError, match="cannot store /b"):
        formats.write_model_file(path, file_type="xbarlab-device-model", kind="second",
                                 tree=bad_tree, force=True)
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError, match="disk full"):
        with formats.atomic_output(path, force=True) as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("disk full")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


def test_output_folder_manifest_rule(tmp_path):
    """A new folder gets a manifest; reusing it appends a run; a non-empty folder without a
    manifest is refused unless force; a file in place of the folder is refused."""
    out = formats.prepare_output_dir(tmp_path / "run", command="calibrate a")
    manifest = json.loads((out / formats.MANIFEST_NAME).read_text())
    assert [r["command"] for r in manifest["runs"]] == ["calibrate a"]
    (out / "result.txt").write_text("x")
    formats.prepare_output_dir(out, command="calibrate b")
    manifest = json.loads((out / formats.MANIFEST_NAME).read_text())
    assert [r["command"] for r in manifest["runs"]] == ["calibrate a", "calibrate b"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(OutputExistsError, match="did not create"):
        formats.prepare_output_dir(foreign)
    formats.prepare_output_dir(foreign, force=True)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert (foreign / formats.MANIFEST_NAME).exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    formats.prepare_output_dir(empty)  # an empty folder is fine
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputExistsError, match="not a folder"):
        formats.prepare_output_dir(tmp_path / "afile")
