"""Text measurement tables (xbarlab/formats/text_tables.py): delimiters, headers, gzip,
unit conversion of every role, the long, wide and timeseries layouts, and the real files in
../shared/data/measured checked against the counts and statistics their READMEs state.

Synthetic tables are written by hand with known values (the independent truth).
"""

import gzip

import numpy as np
import pytest
from _shared import shared_path
from xbarlab import errors
from xbarlab.formats import read_measurements


def test_long_csv_with_header(long_table, tmp_path):
    """Header names equal to roles map themselves: 6 reads, devices 7/9/11 -> ids 0/1/2,
    one read below zero kept and counted, time counted from programming."""
    m = read_measurements(long_table.write(tmp_path / "a.csv"))
    np.testing.assert_array_equal(m.g, long_table.g)
    np.testing.assert_array_equal(m.time, long_table.time)
    np.testing.assert_array_equal(m.device, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(m.device_labels, [7, 9, 11])
    assert (m.n_reads, m.n_devices, m.n_negative) == (6, 3, 1)
    assert m.time_origin == "programming" and m.layout == "long"
    assert m.roles == ("device", "g", "time")
    assert m.summary()["reads_per_device"] == [2, 2.0, 2]


@pytest.mark.parametrize("name,sep", [("a.tsv", "\t"), ("a.txt", " "), ("a.dat", ";"),
                                      ("a.csv", ",")])
def test_delimiters_and_positions_without_header(long_table, tmp_path, name, sep):
    """Tab, space, semicolon and comma tables without a header, roles by 0-based position,
    give the same arrays as the written values."""
    path = long_table.write(tmp_path / name, sep=sep, header=False)
    m = read_measurements(path, columns="device=0,time=1,g=2")
    np.testing.assert_array_equal(m.g, long_table.g)
    np.testing.assert_array_equal(m.time, long_table.time)
    assert m.n_devices == 3


def test_gzip_comments_bom_crlf_quotes(long_table, tmp_path):
    """A .csv.gz with a UTF-8 BOM, '#' comment lines, CRLF line ends and quoted header
    names reads to the same values as the plain table."""
    body = ("\ufeff# measured 2026\r\n\"device\",\"time\",\"g\"\r\n"
            + "".join(f"{d},{t!r},{g!r}\r\n" for d, t, g in long_table.rows)
            + "# trailing comment\r\n")
    path = tmp_path / "a.csv.gz"
    path.write_bytes(gzip.compress(body.encode("utf-8")))
    m = read_measurements(path)
    np.testing.assert_array_equal(m.g, long_table.g)
    np.testing.assert_array_equal(m.time, long_table.time)


def test_units_convert_every_role(tmp_path):
    """kOhm -> S (G = 1/R), h -> s, C -> K, mV -> V, uS targets; g_target inherits g's unit
    when it is not given; level and cycle become integers."""
    path = tmp_path / "u.csv"
    path.write_text("dev,R,t_h,T,V,target,lvl,cyc\n"
                    "a,100,0.5,25,200,10,3,0\n"
                    "b,40,2,-10,100,25,4,1\n")
    m = read_measurements(path, columns="device=dev,g=R,time=t_h,temperature=T,v_read=V,"
                          "g_target=target,level=lvl,cycle=cyc",
                          units="g=kOhm,time=h,temperature=C,v_read=mV,g_target=uS")
    np.testing.assert_allclose(m.g, [1e-5, 2.5e-5], rtol=1e-15)
    np.testing.assert_array_equal(m.time, [1800.0, 7200.0])
    np.testing.assert_allclose(m.temperature, [298.15, 263.15], rtol=1e-15)
    np.testing.assert_allclose(m.v_read, [0.2, 0.1], rtol=1e-15)
    np.testing.assert_array_equal(m.g_target, [1e-5, 2.5e-5])
    assert m.level.dtype == np.int64 and m.level.tolist() == [3, 4]
    assert m.cycle.tolist() == [0, 1]
    np.testing.assert_array_equal(m.device_labels, ["a", "b"])
    assert m.units["g"] == "kOhm" and m.units["time"] == "h"
    # g_target and g_initial default to g's unit; time_point to time's
    path2 = tmp_path / "v.csv"
    path2.write_text("g,g_target,time,time_point\n10,12,1,1\n")
    m2 = read_measurements(path2, units="g=uS,time=min")
    assert (m2.g[0], m2.g_target[0], m2.time_point[0]) == (1e-5, 1.2e-5, 60.0)


def test_one_column_two_roles_and_row_devices(tmp_path):
    """device=T,g_target=T: T both names the device and is its target (in uS); without a
    device role each row is its own device."""
    path = tmp_path / "r.csv"
    path.write_text("cycle,T,G\n0,100,95.5\n1,100,95.25\n0,200,203.5\n1,200,203.75\n")
    m = read_measurements(path, columns="device=T,g_target=T,g=G,cycle=cycle", units="g=uS")
    assert m.n_devices == 2
    np.testing.assert_array_equal(m.device, [0, 0, 1, 1])
    np.testing.assert_array_equal(m.g_target, [1e-4, 1e-4, 2e-4, 2e-4])
    np.testing.assert_array_equal(m.g, [9.55e-5, 9.525e-5, 2.035e-4, 2.0375e-4])
    m2 = read_measurements(path, columns="g=G", units="g=uS")
    assert m2.n_devices == 4 and m2.device.tolist() == [0, 1, 2, 3]
    assert m2.device_labels is None


def test_unused_text_column_and_text_device_labels(tmp_path):
    """A text column no role uses is ignored; text device labels are factorised in sorted
    order (B7 -> 1, A3 -> 0); a ragged row is still caught on this slower path."""
    path = tmp_path / "t.csv"
    path.write_text("device,note,g\nB7,fine,1e-5\nA3,odd cell,2e-5\nB7,x,3e-5\n")
    m = read_measurements(path)
    np.testing.assert_array_equal(m.device, [1, 0, 1])
    np.testing.assert_array_equal(m.device_labels, ["A3", "B7"])
    np.testing.assert_array_equal(m.g, [1e-5, 2e-5, 3e-5])
    path.write_text("note,device,g\nfine,B7,1e-5\nodd cell,A3,2e-5\n")  # text before labels
    np.testing.assert_array_equal(read_measurements(path).device_labels, ["A3", "B7"])
    path.write_text("device,note,g\nB7,fine,1e-5\nA3,2e-5\n")
    with pytest.raises(errors.DataFormatError, match=r"line 3: found 2 columns, expected 3"):
        read_measurements(path)


def test_wide_layout(tmp_path):
    """Wide: one column per target (value in the header, unit from --units g); a blank cell
    is skipped and counted; each remaining cell is its own device, ordered target-major."""
    path = tmp_path / "w.csv"
    path.write_text("Target_100uS,Target_250uS\n99.5,251\n101,\n100.25,249\n")
    m = read_measurements(path, layout="wide", units="g=uS")
    np.testing.assert_array_equal(m.g, [9.95e-5, 1.01e-4, 1.0025e-4, 2.51e-4, 2.49e-4])
    np.testing.assert_array_equal(m.g_target, [1e-4] * 3 + [2.5e-4] * 2)
    assert (m.n_devices, m.n_missing, m.layout) == (5, 1, "wide")
    assert m.summary()["devices_per_target"] == [2, 3]


def test_wide_layout_with_time_and_device_columns(tmp_path):
    """Wide with a time column: each target column is one device read over time. With a
    device column: each (row device, target) pair is one device."""
    path = tmp_path / "w.csv"
    path.write_text("t,G1e-5,G2e-5\n0,1.0e-5,2.0e-5\n60,0.9e-5,1.9e-5\n")
    m = read_measurements(path, layout="wide", columns="time=t")
    np.testing.assert_array_equal(m.time, [0, 60, 0, 60])
    np.testing.assert_array_equal(m.device, [0, 0, 1, 1])
    np.testing.assert_array_equal(m.g_target, [1e-5, 1e-5, 2e-5, 2e-5])
    path2 = tmp_path / "d.csv"
    path2.write_text("cell,G1e-5,G2e-5\n4,1.0e-5,2.0e-5\n4,1.1e-5,2.1e-5\n8,0.9e-5,1.9e-5\n")
    m2 = read_measurements(path2, layout="wide", columns="device=cell")
    assert m2.n_devices == 4
    np.testing.assert_array_equal(m2.device, [0, 0, 2, 1, 1, 3])


def test_timeseries_layout(tmp_path):
    """Time series: level from column 0, column 1 unused, samples from column 2 at 4 Hz ->
    time k/4 s, cycle k, one device per row, time counted from the first read."""
    path = tmp_path / "s.tsv"
    path.write_text("3\t0\t1e-5\t1.1e-5\t1.2e-5\n7\t0\t5e-5\t5.1e-5\t4.9e-5\n")
    m = read_measurements(path, layout="timeseries", sample_rate=4, samples_from=2,
                          columns="level=0")
    np.testing.assert_array_equal(m.g, [1e-5, 1.1e-5, 1.2e-5, 5e-5, 5.1e-5, 4.9e-5])
    np.testing.assert_array_equal(m.time, [0, 0.25, 0.5] * 2)
    np.testing.assert_array_equal(m.cycle, [0, 1, 2] * 2)
    np.testing.assert_array_equal(m.level, [3, 3, 3, 7, 7, 7])
    np.testing.assert_array_equal(m.device, [0, 0, 0, 1, 1, 1])
    assert m.time_origin == "first read"
    with pytest.raises(errors.ConfigError, match="lies among the samples"):
        read_measurements(path, layout="timeseries", sample_rate=4, samples_from=2,
                          columns="level=3")
    with pytest.raises(errors.ConfigError, match="apply to the timeseries layout only"):
        read_measurements(path, sample_rate=4, columns="g=2")


# --------------------------------------------------------------------------- real files

MEASURED = ("data", "measured")


def test_stanford_techc_relaxation():
    """techC relaxdata (README): 89,115 reads of 16,292 cells; time points 0, 0.01, 0.1, 1,
    4, 1e5 s with 16292/16205/16290/16292/7744/16292 reads; exactly 1 read below zero;
    range 24 mean 30.65 uS at t = 0 and 28.65 uS at 1e5 s; time from the first read."""
    path = shared_path(*MEASURED, "stanford_rram_relaxation", "techC", "relaxdata.min.tsv.gz")
    m = read_measurements(path, columns="device=0,time=1,g=3,g_initial=4,level=5,time_point=6")
    assert (m.n_reads, m.n_devices, m.n_negative) == (89115, 16292, 1)
    tps, counts = np.unique(m.time_point, return_counts=True)
    np.testing.assert_array_equal(tps, [0, 0.01, 0.1, 1, 4, 1e5])
    np.testing.assert_array_equal(counts, [16292, 16205, 16290, 16292, 7744, 16292])
    lv24 = m.level == 24
    assert m.g[lv24 & (m.time_point == 0)].mean() * 1e6 == pytest.approx(30.65, abs=0.005)
    assert m.g[lv24 & (m.time_point == 1e5)].mean() * 1e6 == pytest.approx(28.65, abs=0.005)
    assert np.unique(m.level).size == 42
    assert m.time_origin == "first read"


def test_stanford_techc_resistance_column_matches(tmp_path):
    """Column r (Ohm) read as conductance equals column g to 1e-12 relative (README:
    r = 1/g); the one negative r is refused, naming line 2 + its data row."""
    path = shared_path(*MEASURED, "stanford_rram_relaxation", "techC", "relaxdata.min.tsv.gz")
    g = read_measurements(path, columns="device=0,g=3")
    row = int(np.flatnonzero(g.g < 0)[0])
    with pytest.raises(errors.DataFormatError,
                       match=rf"line {row + 1}, column 2: resistance -8137958"):
        read_measurements(path, columns="device=0,g=2", units="g=Ohm")
    with gzip.open(path, "rt") as fh:
        lines = [ln for i, ln in enumerate(fh) if i != row]
    rest = tmp_path / "rest.tsv"
    rest.write_text("".join(lines))
    r = read_measurements(rest, columns="device=0,g=2", units="g=Ohm")
    g_rest = np.delete(g.g, row)
    np.testing.assert_allclose(r.g, g_rest, rtol=1e-12)


def test_hku_wide_programming():
    """HKU fig3c (README): 7 targets 100..400 uS x 64 devices; per-target mean/std (uS)
    100.08/2.42 ... 399.38/2.84; every read within target +- 5 uS (95..405 uS)."""
    path = shared_path(*MEASURED, "hku_readc_rram", "fig3c_conductance_value.csv")
    m = read_measurements(path, layout="wide", units="g=uS")
    targets = np.unique(m.g_target)
    np.testing.assert_array_equal(targets, [1e-4, 1.5e-4, 2e-4, 2.5e-4, 3e-4, 3.5e-4, 4e-4])
    assert m.n_reads == m.n_devices == 448
    mean = [100.08, 150.24, 199.40, 249.54, 300.06, 349.11, 399.38]
    std = [2.42, 2.64, 2.98, 2.79, 2.81, 2.63, 2.84]
    for t, mu, sd in zip(targets, mean, std, strict=True):
        x = m.g[m.g_target == t] * 1e6
        assert x.size == 64
        assert x.mean() == pytest.approx(mu, abs=0.005)
        assert x.std(ddof=1) == pytest.approx(sd, abs=0.005)
    assert np.all(np.abs(m.g - m.g_target) <= 5e-6 + 1e-12)
    assert 95e-6 <= m.g.min() < 96e-6 and 404e-6 < m.g.max() <= 405e-6


def test_hku_repeated_reads():
    """HKU fig3d (README): 7 devices (one per target) x 1000 reads; per-target mean/std (uS)
    95.19/0.18, 153.09/0.35, 203.52/0.20, 253.76/0.022, 296.34/0.039, 349.58/0.078,
    397.35/0.11."""
    path = shared_path(*MEASURED, "hku_readc_rram", "fig3d.csv")
    m = read_measurements(path, columns="device=Target_Value_uS,g_target=Target_Value_uS,"
                          "g=Measured_Conductance_uS,cycle=Read_Cycle", units="g=uS")
    assert (m.n_reads, m.n_devices) == (7000, 7)
    mean = [95.19, 153.09, 203.52, 253.76, 296.34, 349.58, 397.35]
    std = [0.18, 0.35, 0.20, 0.022, 0.039, 0.078, 0.11]
    for d in range(7):
        x = m.g[m.device == d] * 1e6
        assert x.size == 1000
        assert np.array_equal(m.cycle[m.device == d], np.arange(1000))
        assert x.mean() == pytest.approx(mean[d], abs=0.005)
        assert x.std(ddof=1) == pytest.approx(std[d], rel=0.03)


def test_stanford_techa_timeseries():
    """techA tsdata (README): 5 levels 0, 8, 16, 24, 31, 100,000 samples each at 400 Hz
    (last sample at 99,999/400 = 249.9975 s); level means ~9.5, 85, 134, 185, 253 uS; the
    samples equal the file's text parsed independently."""
    path = shared_path(*MEASURED, "stanford_rram_relaxation", "techA", "tsdata.min.tsv.gz")
    m = read_measurements(path, layout="timeseries", sample_rate=400, columns="level=0",
                          samples_from=2)
    assert (m.n_reads, m.n_devices) == (500000, 5)
    np.testing.assert_array_equal(np.unique(m.level), [0, 8, 16, 24, 31])
    assert m.time.max() == 249.9975
    for lv, mu in zip([0, 8, 16, 24, 31], [9.5, 85, 134, 185, 253], strict=True):
        assert m.g[m.level == lv].mean() * 1e6 == pytest.approx(mu, rel=0.01)
    with gzip.open(path, "rt") as fh:
        first = [float(x) for x in fh.readline().split("\t")]
    np.testing.assert_array_equal(m.g[:100000], first[2:])
