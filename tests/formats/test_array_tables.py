"""HDF5 and .npz measurement tables (xbarlab/formats/array_tables.py)."""

import h5py
import numpy as np
import pytest
from xbarlab import errors
from xbarlab.formats import read_measurements


def test_foreign_hdf5_and_npz_with_units(tmp_path):
    """An HDF5 file of the documented layout in uS/h converts to S/s; its units attribute
    wins, and a contradicting --units is an error. A plain .npz takes --units."""
    path = tmp_path / "lab.h5"
    with h5py.File(path, "w") as f:
        grp = f.create_group("measurements")
        for name, data, unit in (("cell", [3, 3, 5], "1"), ("G", [10.0, 9.5, 20.0], "uS"),
                                 ("t", [0.0, 2.0, 0.0], "h")):
            grp[name] = np.array(data)
            grp[name].attrs["units"] = unit
    m = read_measurements(path, columns="device=cell,g=G,time=t")
    np.testing.assert_array_equal(m.g, [1e-5, 9.5e-6, 2e-5])
    np.testing.assert_array_equal(m.time, [0.0, 7200.0, 0.0])
    assert m.n_devices == 2
    with pytest.raises(errors.ConfigError, match="says units 'uS' but --units gives g=S"):
        read_measurements(path, columns="device=cell,g=G,time=t", units="g=S")
    npz = tmp_path / "lab.npz"
    np.savez(npz, G=np.array([10.0, 20.0]), t=np.array([1.0, 2.0]))
    m2 = read_measurements(npz, columns="g=G,time=t", units="g=uS,time=min")
    np.testing.assert_array_equal(m2.g, [1e-5, 2e-5])
    np.testing.assert_array_equal(m2.time, [60.0, 120.0])


@pytest.mark.parametrize("offset, byte", [(6, 70), (10, 99)])
def test_npz_of_an_unknown_zip_version_or_method_is_one_error(tmp_path, offset, byte):
    """An .npz whose central directory asks for a zip version (offset 6 of the entry) or a
    compression method (offset 10) that Python's zipfile does not read, which it reports
    as NotImplementedError, gives one DataFormatError line naming the file."""
    p = tmp_path / "m.npz"
    np.savez(p, g=np.ones(3), device=np.arange(3), time=np.ones(3))
    raw = bytearray(p.read_bytes())
    at = raw.index(b"PK\x01\x02") + offset
    raw[at] = byte
    p.write_bytes(bytes(raw))
    with pytest.raises(errors.DataFormatError, match=r"m\.npz is not a readable \.npz") as err:
        read_measurements(p)
    assert "\n" not in str(err.value)
