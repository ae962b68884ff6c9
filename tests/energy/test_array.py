"""Array energy from the solved circuit against closed forms, Tellegen's theorem and ngspice."""

from __future__ import annotations

import numpy as np
import pytest
from _shared import need_ngspice
from xbarlab.crossbar import Crossbar, WireParams, run_ngspice, to_spice
from xbarlab.crossbar.solvers import direct
from xbarlab.crossbar.topologies import Topology, differential_array
from xbarlab.energy import ArrayEnergy, array_energy, pulse_width_energy
from xbarlab.errors import ConfigError

T = 10e-9  # read pulse [s]


def test_ideal_2x2_equals_sum_v2_g_t():
    """2x2 array, ideal wires: every cell sees its row voltage, so E = sum_ij v_i^2 G_ij t,
    all of it in the cells."""
    G = np.array([[10e-6, 20e-6], [5e-6, 40e-6]])
    v = np.array([0.2, -0.1])
    e = array_energy(Crossbar(G), v, T)
    ref = float(((v[:, None] ** 2) * G).sum() * T)
    assert e.total[0] == pytest.approx(ref, rel=1e-14)
    assert e.cells[0] == pytest.approx(ref, rel=1e-14)
    assert e.source[0] == pytest.approx(ref, rel=1e-14)
    assert e.row_wires[0] == e.col_wires[0] == e.drivers[0] == e.sense[0] == 0.0


def test_2x2_access_resistance_splits_by_hand():
    """2x2 array, cell G in series with access r_a, ideal wires: the branch conductance is
    g = G / (1 + G r_a); E = sum v^2 g t, of which the cell takes g / G and the access
    transistor G r_a g / G."""
    G = np.array([[10e-6, 20e-6], [5e-6, 40e-6]])
    ra = 5e3
    v = np.array([0.2, 0.3])
    e = array_energy(Crossbar(G, wires=WireParams(r_access=ra)), v, T)
    g = G / (1 + G * ra)
    p = (v[:, None] ** 2) * g
    assert e.total[0] == pytest.approx(p.sum() * T, rel=1e-13)
    assert e.cells[0] == pytest.approx((p * g / G).sum() * T, rel=1e-13)
    assert e.access[0] == pytest.approx((p * g * ra).sum() * T, rel=1e-13)


def test_single_row_ladder_closed_form():
    """One row of two cells to ideal columns, driver R_d and row segments r: the input
    resistance is R_in = R_d + r + (1/G1 || (r + 1/G2)), so E = V^2 t / R_in; the node
    voltages follow by division, V_a = V Z_a / R_in and V_b = V_a (1/G2) / (r + 1/G2), and
    E_cell = (V_a^2 G1 + V_b^2 G2) t, E_driver = I^2 R_d t with I = V / R_in."""
    G1, G2, rd, r, V = 30e-6, 50e-6, 1e3, 2e3, 0.25
    xb = Crossbar(np.array([[G1, G2]]), wires=WireParams(r_row=r, r_driver=rd))
    e = array_energy(xb, np.array([V]), T)
    za = 1 / (G1 + 1 / (r + 1 / G2))
    rin = rd + r + za
    va = V * za / rin
    vb = va * (1 / G2) / (r + 1 / G2)
    assert e.total[0] == pytest.approx(V**2 / rin * T, rel=1e-12)
    assert e.cells[0] == pytest.approx((va**2 * G1 + vb**2 * G2) * T, rel=1e-12)
    assert e.drivers[0] == pytest.approx((V / rin) ** 2 * rd * T, rel=1e-12)
    assert e.source[0] == pytest.approx(e.total[0], rel=1e-12)


@pytest.mark.parametrize("drive", ["left", "both"])
@pytest.mark.parametrize("sense", ["bottom", "top"])
def test_tellegen_dissipated_equals_delivered(drive, sense):
    """Random 6x5 array with every resistance nonzero: the energy summed over branches equals
    the energy delivered by the drivers (Tellegen) to rounding, for a batch of inputs."""
    rng = np.random.default_rng(3)
    G = rng.uniform(1e-6, 100e-6, (6, 5))
    w = WireParams(r_row=rng.uniform(1, 20, (6, 6 if drive == "both" else 5)),
                   r_col=rng.uniform(1, 20, (6, 5)), r_driver=50.0, r_sense=30.0,
                   r_access=rng.uniform(100, 1e3, (6, 5)))
    v = rng.uniform(-0.3, 0.3, (4, 6))
    e = array_energy(Crossbar(G, wires=w, drive=drive, sense=sense), v, T)
    np.testing.assert_allclose(e.total, e.source, rtol=1e-12)
    assert np.all(e.row_wires > 0) and np.all(e.sense > 0) and np.all(e.access > 0)


def test_zero_resistance_segments_dissipate_nothing():
    """Zero-resistance segments (merged nodes, direct solver) dissipate nothing; the rest
    still balances the drivers' energy."""
    G = np.array([[10e-6, 20e-6, 5e-6], [40e-6, 1e-6, 7e-6]])
    w = WireParams(r_row=np.array([[0, 5, 0], [3, 0, 4.0]]), r_col=2.0, r_driver=10.0)
    e = array_energy(Crossbar(G, wires=w, solver=direct()), np.array([0.2, 0.1]), T)
    assert e.total[0] == pytest.approx(e.source[0], rel=1e-12)


def test_differential_rows_physical_array():
    """Differential rows, ideal wires: rows 2i and 2i+1 are driven at +v_i and -v_i, so
    E = sum_ij v_i^2 (G+_ij + G-_ij) t."""
    gp = np.array([[10e-6, 20e-6], [5e-6, 40e-6]])
    gn = np.array([[1e-6, 3e-6], [7e-6, 2e-6]])
    v = np.array([0.2, -0.1])
    G, to_phys, _ = differential_array(gp, gn, Topology.DIFFERENTIAL_ROWS)
    e = array_energy(Crossbar(G), to_phys(v), T)
    assert e.total[0] == pytest.approx(((v[:, None] ** 2) * (gp + gn)).sum() * T, rel=1e-14)


def test_pulse_width_sums_the_intervals():
    """Ideal wires, pulse widths w_i at amplitude V: the cells of row i dissipate
    V^2 (sum_j G_ij) w_i, so E = V^2 sum_i w_i sum_j G_ij."""
    G = np.array([[10e-6, 20e-6], [5e-6, 40e-6], [1e-6, 2e-6]])
    widths = np.array([3e-9, 0.0, 7e-9])
    e = pulse_width_energy(Crossbar(G), widths, 0.2)
    assert e.total[0] == pytest.approx(0.04 * (widths * G.sum(axis=1)).sum(), rel=1e-13)


def test_dict_round_trip_and_bad_input():
    """ArrayEnergy round-trips through to_dict; negative or NaN durations and widths raise."""
    e = array_energy(Crossbar(np.full((2, 2), 1e-5)), np.array([0.1, 0.2]), T)
    back = ArrayEnergy.from_dict(e.to_dict())
    np.testing.assert_array_equal(back.total, e.total)
    with pytest.raises(ConfigError, match="t_pulse"):
        array_energy(Crossbar(np.full((2, 2), 1e-5)), np.array([0.1, 0.2]), -1e-9)
    with pytest.raises(ConfigError, match="nan"):
        pulse_width_energy(Crossbar(np.full((2, 2), 1e-5)), np.array([np.nan, 1e-9]), 0.2)
    with pytest.raises(ConfigError, match=r"v_read has shape \(3,\)"):
        pulse_width_energy(Crossbar(np.full((2, 2), 1e-5)), np.array([1e-9, 1e-9]), [0.1] * 3)
    with pytest.raises(ConfigError, match="unknown|expected"):
        ArrayEnergy.from_dict({"cells": 1.0})


@pytest.fixture
def ngspice():
    need_ngspice()


@pytest.mark.parametrize("seed,M,N,drive", [(0, 3, 4, "left"), (1, 4, 3, "both")])
def test_power_matches_ngspice(ngspice, seed, M, N, drive):
    """Random small arrays with every kind of series resistance: the power the solve's
    branches dissipate equals the power the ngspice operating point's driver sources deliver,
    -sum_i v_i i(vd_i), to 1e-9 relative."""
    rng = np.random.default_rng(seed)
    G = rng.uniform(1e-6, 100e-6, (M, N))
    kw = dict(r_row=rng.uniform(1, 50, (M, N + 1 if drive == "both" else N)),
              r_col=rng.uniform(1, 50, (M, N)), r_driver=rng.uniform(10, 100, M),
              r_sense=rng.uniform(10, 100, N), r_access=rng.uniform(100, 2e3, (M, N)))
    v = rng.uniform(-0.3, 0.3, M)
    res = run_ngspice(to_spice(G, v, drive=drive, **kw))
    p_spice = -sum(v[i] * float(res[f"i(vd{i})"][0]) for i in range(M))
    e = array_energy(Crossbar(G, wires=WireParams(**kw), drive=drive), v, 1.0)
    assert abs(e.total[0] - p_spice) <= 1e-9 * abs(p_spice)
    assert abs(e.source[0] - p_spice) <= 1e-9 * abs(p_spice)
