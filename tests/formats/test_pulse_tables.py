"""Readers of pulse-response data (formats.pulse_tables): ramps by column and by row, step
tables of quantiles and of rows, the layout learned from content, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.errors import DataFormatError
from xbarlab.formats.pulse_tables import (
    PulseLayout,
    parse_direction,
    pulse_layout,
    read_pulse_ramps,
    read_step_table,
)


def _columns(path, ramps):
    """A ramp-columns file: header r1..rk, ramps as columns, short ones end blank."""
    n = max(len(r) for r in ramps)
    lines = [",".join(f"r{k + 1}" for k in range(len(ramps)))]
    for i in range(n):
        lines.append(",".join(repr(r[i]) if i < len(r) else "" for r in ramps))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ramp_columns_directions_from_names(tmp_path):
    """set/reset files: 2 up ramps (3 and 2 reads) and 1 down ramp, in uS -> S."""
    up = _columns(tmp_path / "set.csv", [[1.0, 2.0, 3.0], [1.5, 2.5]])
    down = _columns(tmp_path / "reset.csv", [[3.0, 2.0, 1.0]])
    assert pulse_layout([up, down]) is PulseLayout.RAMP_COLUMNS
    r = read_pulse_ramps([up, down], unit="uS")
    assert r.n_ramps == 3 and r.n_devices == 1
    assert r.direction.tolist() == [1, 1, -1]
    np.testing.assert_allclose(r.g, np.array([1, 2, 3, 1.5, 2.5, 3, 2, 1]) * 1e-6)
    g, step, ramp = r.steps()
    np.testing.assert_allclose(step, np.array([1, 1, 1, -1, -1]) * 1e-6)
    assert ramp.tolist() == [0, 0, 1, 2, 2]


def test_ramp_rows_several_devices(tmp_path):
    """Rows of (device, pulse, direction, g): a new ramp where the device or the direction
    changes; equal device labels are one device."""
    p = tmp_path / "ramps.csv"
    p.write_text("device,pulse,direction,g\n"
                 "a,0,set,1e-5\na,1,set,2e-5\na,0,reset,2e-5\na,1,reset,1e-5\n"
                 "b,0,up,1e-5\nb,1,up,3e-5\nb,0,-1,3e-5\nb,1,-1,1e-5\n")
    assert pulse_layout(p) is PulseLayout.RAMP_ROWS
    r = read_pulse_ramps(p)
    assert r.n_ramps == 4 and r.n_devices == 2
    assert r.direction.tolist() == [1, -1, 1, -1] and r.device.tolist() == [0, 0, 1, 1]
    sub = r.subset([3, 3])
    assert sub.n_ramps == 2 and sub.direction.tolist() == [-1, -1]


def test_one_direction_missing(tmp_path):
    """Only SET ramps -> error naming the missing direction and what was found."""
    up = _columns(tmp_path / "set.csv", [[1.0, 2.0], [1.0, 3.0]])
    with pytest.raises(DataFormatError, match=r"no down \(RESET\) ramps \(found 2 ramps"):
        read_pulse_ramps(up, unit="uS")


def test_nan_and_blank_inside_a_ramp(tmp_path):
    p = _columns(tmp_path / "set.csv", [[1.0, 2.0]])
    p.write_text("r1,r2\n1,1\nnan,2\n")
    with pytest.raises(DataFormatError, match=r"line 3, column 0 \('r1'\): 'nan' is not a "
                                              "finite number"):
        read_pulse_ramps(p, unit="uS")
    p.write_text("r1,r2\n1,1\n,2\n3,3\n")
    with pytest.raises(DataFormatError, match="line 3, column 0.*blank cell inside a ramp"):
        read_pulse_ramps(p, unit="uS")


def test_non_monotone_pulse_index(tmp_path):
    p = tmp_path / "ramps.csv"
    p.write_text("pulse,direction,g\n0,up,1\n2,up,2\n1,up,3\n0,down,3\n1,down,1\n")
    with pytest.raises(DataFormatError, match="line 4, column 'pulse': pulse index 1 follows 2"):
        read_pulse_ramps(p)


def test_bad_direction_label(tmp_path):
    p = tmp_path / "ramps.csv"
    p.write_text("pulse,direction,g\n0,sideways,1\n")
    with pytest.raises(DataFormatError, match="'sideways' is neither up"):
        read_pulse_ramps(p)
    assert parse_direction("SET") == 1 and parse_direction(-1.0) == -1


def _quantile_file(path, bins, cdf, steps):
    lines = ["1st Row = Gbins, 2nd Row = CDF Points, 3rd row onward = dG matrix",
             ", ".join(map(repr, bins)), ", ".join(map(repr, cdf))]
    lines += [", ".join(map(repr, row)) for row in steps]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_step_quantiles(tmp_path):
    """Two files (increasing/decreasing), 3 bins x 3 CDF points, read in S."""
    bins, cdf = [1e-5, 2e-5, 3e-5], [0.0, 0.5, 1.0]
    up = _quantile_file(tmp_path / "dG_increasing.txt", bins, cdf,
                        [[1e-7, 1e-7, 1e-7], [2e-7, 2e-7, 2e-7], [3e-7, 3e-7, 3e-7]])
    dn = _quantile_file(tmp_path / "dG_decreasing.txt", bins, cdf,
                        [[-3e-7, -3e-7, -3e-7], [-2e-7, -2e-7, -2e-7], [-1e-7, -1e-7, -1e-7]])
    assert pulse_layout([up, dn]) is PulseLayout.STEP_QUANTILES
    t = read_step_table([up, dn])
    np.testing.assert_allclose(t.g_bins, bins)
    np.testing.assert_allclose(t.steps_up[:, 1], [1e-7, 2e-7, 3e-7])
    with pytest.raises(DataFormatError, match="no down"):
        read_step_table([up])


def test_step_quantiles_empty_bin_and_nan(tmp_path):
    bins, cdf = [1e-5, 2e-5, 3e-5], [0.0, 0.5, 1.0]
    rows = [[1e-7, 0.0, 1e-7], [2e-7, 0.0, 2e-7], [3e-7, 0.0, 3e-7]]
    up = _quantile_file(tmp_path / "dG_increasing.txt", bins, cdf, rows)
    dn = _quantile_file(tmp_path / "dG_decreasing.txt", bins, cdf, rows)
    with pytest.raises(DataFormatError, match=r"bin 1 \(G = 2e-05 S\) is empty"):
        read_step_table([up, dn])
    rows[1][2] = float("nan")
    _quantile_file(up, bins, cdf, rows)
    with pytest.raises(DataFormatError, match="line 5, field 2: 'nan' is not a finite"):
        read_step_table([up, dn])


def test_step_rows_and_empty_bin(tmp_path):
    """Rows (g, direction, step): bins are the distinct g; a bin without down steps fails."""
    p = tmp_path / "steps.csv"
    p.write_text("g,direction,step\n1,up,0.5\n1,up,0.7\n1,down,-0.2\n2,up,0.3\n2,down,-0.4\n")
    assert pulse_layout(p) is PulseLayout.STEP_ROWS
    t = read_step_table(p, unit="uS")
    np.testing.assert_allclose(t.g_bins, [1e-6, 2e-6])
    assert t.steps_up[0, 0] == pytest.approx(0.5e-6) and t.steps_up[-1, 0] == pytest.approx(
        0.7e-6)
    p.write_text("g,direction,step\n1,up,0.5\n1,down,-0.2\n2,up,0.3\n")
    with pytest.raises(DataFormatError, match=r"bin 1 \(G = 2e-06 S\) has no down steps"):
        read_step_table(p, unit="uS")


def test_layout_mismatch(tmp_path):
    p = tmp_path / "steps.csv"
    p.write_text("g,direction,step\n1,up,0.5\n")
    with pytest.raises(DataFormatError, match="holds a step table"):
        read_pulse_ramps(p)
    q = tmp_path / "x.csv"
    q.write_text("1,2\n3,4\n")
    with pytest.raises(DataFormatError, match="no header line"):
        pulse_layout(q)


def test_conductances_above_one_siemens_warn(tmp_path):
    """Ramps in uS read as S (values 1-3): a PlausibilityWarning naming the largest value."""
    from xbarlab.errors import PlausibilityWarning

    up = _columns(tmp_path / "set.csv", [[1.0, 2.0, 3.0]])
    down = _columns(tmp_path / "reset.csv", [[3.0, 2.0, 1.0]])
    with pytest.warns(PlausibilityWarning, match="conductances up to 3 S"):
        read_pulse_ramps([up, down])
