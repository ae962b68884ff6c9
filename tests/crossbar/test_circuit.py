"""Exact physics of the crossbar circuit (xbarlab.crossbar.circuit and grid): closed forms,
Kirchhoff, limits, batches, parameters.

Each test states its circuit and the answer it expects; the references are independent of the
solver (hand eliminations, hyperbolic ladder solutions, KCL recomputed here from the physical
parameters, ``v @ G``).
"""

import numpy as np
import pytest
from _shared import rel_err
from xbarlab.crossbar import (
    Crossbar,
    Drive,
    Sense,
    WireParams,
    column_currents,
    direct,
    pcg,
)
from xbarlab.errors import ConfigError

# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("solver", [None, pcg(), direct()])
def test_single_row_ladder_closed_form(solver):
    """One row, N = 40 equal cells g, segment r, ideal columns: node j sits at
    V_j = v cosh(t (N - 1/2 - j)) / cosh(t (N + 1/2)) with cosh t = 1 + r g / 2, and
    I_j = g V_j (relative error <= 1e-12)."""
    N, g, r, v = 40, 50e-6, 5.0, 0.8
    th = np.arccosh(1.0 + r * g / 2.0)
    j = np.arange(N)
    expected = g * v * np.cosh(th * (N - 0.5 - j)) / np.cosh(th * (N + 0.5))
    got = column_currents(np.full((1, N), g), [v], r_row=r, solver=solver)
    assert rel_err(got, expected) <= 1e-12


@pytest.mark.parametrize("solver", [None, pcg(), direct()])
def test_single_column_ladder_closed_form(solver):
    """One column, M = 30 equal cells g all driven at v0 through ideal rows, column segment r,
    top open, sense at the bottom: I = v0 (1 - cosh(t (M - 1/2)) / cosh(t (M + 1/2))) / r with
    cosh t = 1 + r g / 2 (relative error <= 1e-12)."""
    M, g, r, v0 = 30, 80e-6, 4.0, 0.6
    th = np.arccosh(1.0 + r * g / 2.0)
    expected = v0 * (1.0 - np.cosh(th * (M - 0.5)) / np.cosh(th * (M + 0.5))) / r
    got = column_currents(np.full((M, 1), g), np.full(M, v0), r_col=r, solver=solver)
    assert abs(got[0] - expected) / expected <= 1e-12


def test_two_by_two_rows_only_by_hand():
    """2x2, row segments r, ideal columns. Row i: node b sees g_i1, node a sees g_i0 plus
    g_i1 behind r: Y_a = g_i0 + g_i1 / (1 + r g_i1); V_a = v_i / (1 + r Y_a);
    V_b = V_a / (1 + r g_i1); I_0 = sum_i g_i0 V_a, I_1 = sum_i g_i1 V_b (<= 1e-13)."""
    G = np.array([[10e-6, 20e-6], [30e-6, 5e-6]])
    v = np.array([0.7, -0.4])
    r = 1000.0
    Ya = G[:, 0] + G[:, 1] / (1 + r * G[:, 1])
    Va = v / (1 + r * Ya)
    Vb = Va / (1 + r * G[:, 1])
    expected = np.array([G[:, 0] @ Va, G[:, 1] @ Vb])
    for solver in (pcg(), direct()):
        assert rel_err(column_currents(G, v, r_row=r, solver=solver), expected) <= 1e-13


def test_two_by_two_columns_by_hand():
    """2x2, ideal rows, column segments r, sense resistance rs, all cells g. Column j: top
    node c0 = (g r v0 + c1) / (1 + g r); bottom node from
    g (v1 - c1) + (c0 - c1) / r = c1 / (r + rs), i.e.
    c1 = (g v1 + g v0 / (1 + g r)) / (g + 1 / (r + rs) + g / (1 + g r)); I = c1 / (r + rs)
    (<= 1e-13)."""
    g, r, rs = 40e-6, 800.0, 300.0
    v0, v1 = 0.9, 0.3
    c1 = (g * v1 + g * v0 / (1 + g * r)) / (g + 1 / (r + rs) + g / (1 + g * r))
    expected = c1 / (r + rs)
    G = np.full((2, 2), g)
    for solver in (pcg(), direct()):
        got = column_currents(G, [v0, v1], r_col=r, r_sense=rs, solver=solver)
        assert rel_err(got, np.full(2, expected)) <= 1e-13


def test_access_resistance_is_series_combination():
    """With ideal wires a cell with access resistance ra carries g / (1 + g ra) per volt:
    I = v @ (G / (1 + G ra)) to rounding (<= 1e-14)."""
    rng = np.random.default_rng(0)
    G = rng.uniform(1e-6, 1e-4, (6, 5))
    ra = rng.uniform(0, 1e4, (6, 5))
    v = rng.uniform(-1, 1, 6)
    assert rel_err(column_currents(G, v, r_access=ra), v @ (G / (1 + G * ra))) <= 1e-14


# ----------------------------------------------------------------------------- Kirchhoff


def _kirchhoff(G, v, w: WireParams, s, drive):
    """Independent KCL from the physical parameters (drive left/both, sense bottom)."""
    M, N = G.shape
    R, C = s.row_voltages, s.col_voltages
    rr = np.broadcast_to(w.r_row, (M, N + 1 if drive == "both" else N))
    rc = np.broadcast_to(w.r_col, (M, N))
    rd = np.broadcast_to(w.r_driver, (M,))
    rs = np.broadcast_to(w.r_sense, (N,))
    g = G / (1 + G * np.broadcast_to(w.r_access, (M, N)))
    i_in = (v - R[:, 0]) / (rd + rr[:, 0])  # driver currents
    i_right = (v - R[:, -1]) / (rd + rr[:, N]) if drive == "both" else np.zeros(M)
    seg = (R[:, :-1] - R[:, 1:]) / rr[:, 1:N]  # rightwards
    cell = g * (R - C)
    col = (C[:-1] - C[1:]) / rc[:-1]  # downwards
    i_sense = C[-1] / (rc[-1] + rs)
    res_r = -cell.copy()
    res_r[:, 0] += i_in
    res_r[:, -1] += i_right
    res_r[:, :-1] -= seg
    res_r[:, 1:] += seg
    res_c = cell.copy()
    res_c[:-1] -= col
    res_c[1:] += col
    res_c[-1] -= i_sense
    branches = np.concatenate([i_in, i_right, seg.ravel(), cell.ravel(), col.ravel(), i_sense])
    return (
        i_in.sum() + i_right.sum(),
        i_sense,
        max(np.abs(res_r).max(), np.abs(res_c).max()) / np.abs(branches).max(),
    )


@pytest.mark.parametrize("drive", ["left", "both"])
@pytest.mark.parametrize("solver", [pcg(), direct()])
def test_kirchhoff_totals_and_node_residual(solver, drive):
    """48x40, per-segment wires 0.5-3 Ohm, drivers, sense and access resistances: total
    driver current equals total sense current to rounding (<= 1e-12 relative), the sense
    current from the last column segment equals the reported I (<= 1e-12), and every node's
    KCL residual is <= 1e-12 of the largest branch current."""
    rng = np.random.default_rng(7)
    M, N = 48, 40
    G = rng.uniform(1e-6, 100e-6, (M, N))
    v = rng.uniform(-1, 1, M)
    w = WireParams(
        r_row=rng.uniform(0.5, 3, (M, N + 1 if drive == "both" else N)),
        r_col=rng.uniform(0.5, 3, (M, N)),
        r_driver=rng.uniform(1, 20, M),
        r_sense=rng.uniform(1, 20, N),
        r_access=rng.uniform(0, 2e3, (M, N)),
    )
    s = Crossbar(G, wires=w, drive=drive, solver=solver).solve(v)
    total_in, i_sense, rel = _kirchhoff(G, v, w, s, drive)
    assert abs(total_in - s.currents.sum()) <= 1e-12 * np.abs(s.currents).sum()
    assert rel_err(i_sense, s.currents) <= 1e-12
    assert rel <= 1e-12
    assert s.residual <= 1e-12


# ----------------------------------------------------------------------------- limits


def test_zero_resistance_is_exactly_ideal():
    """All resistances 0: nodes merged, I = v @ G to rounding (<= 4 ulp relative), for
    (M,) and (B, M) inputs."""
    rng = np.random.default_rng(1)
    G = rng.uniform(0, 1e-4, (17, 11))
    V = rng.uniform(-1, 1, (5, 17))
    assert rel_err(column_currents(G, V[0]), V[0] @ G) <= 4 * np.finfo(float).eps
    assert rel_err(column_currents(G, V), V @ G) <= 4 * np.finfo(float).eps


def test_error_linear_in_r_for_small_r():
    """32x32, r_row = r_col = r: the relative deviation from v @ G is linear in r for small r:
    the log-log slope over r = 1e-4 .. 1e-2 Ohm is 1 +- 0.05, and r -> 0 tends to v @ G."""
    rng = np.random.default_rng(2)
    G = rng.uniform(1e-6, 25e-6, (32, 32))
    v = rng.uniform(0, 1, 32)
    ideal = v @ G
    rs = np.array([1e-4, 1e-3, 1e-2])
    errs = np.array([rel_err(column_currents(G, v, r_row=r, r_col=r), ideal) for r in rs])
    slope = np.polyfit(np.log(rs), np.log(errs), 1)[0]
    assert abs(slope - 1.0) <= 0.05
    assert errs[0] < 2e-6  # about 1.2e-6 at 1e-4 Ohm: r -> 0 tends to v @ G


# ------------------------------------------------------------------ batches and injection


def test_large_batch_goes_through_effective_matrix():
    """64 inputs on a 32x32 array (the batched path) equal one-at-a-time solves (<= 1e-12)."""
    rng = np.random.default_rng(5)
    G = rng.uniform(1e-6, 25e-6, (32, 32))
    V = rng.uniform(0, 1, (64, 32))
    batch = column_currents(G, V, r_row=1.0, r_col=1.0)
    single = np.stack([column_currents(G, x, r_row=1.0, r_col=1.0) for x in V[:5]])
    assert rel_err(batch[:5], single) <= 1e-12


def test_many_independent_arrays():
    """G (K, M, N) with v (K, M) and (K, B, M): each slice equals its own solve exactly."""
    rng = np.random.default_rng(6)
    G = rng.uniform(1e-6, 25e-6, (3, 10, 7))
    v = rng.uniform(0, 1, (3, 10))
    vb = rng.uniform(0, 1, (3, 4, 10))
    out = column_currents(G, v, r_row=1.0, r_col=2.0)
    outb = column_currents(G, vb, r_row=1.0, r_col=2.0)
    assert out.shape == (3, 7) and outb.shape == (3, 4, 7)
    for k in range(3):
        np.testing.assert_array_equal(out[k], column_currents(G[k], v[k], r_row=1.0, r_col=2.0))
        np.testing.assert_array_equal(outb[k], column_currents(G[k], vb[k], r_row=1.0, r_col=2.0))


def test_injected_currents_superpose():
    """Linear circuit: the node voltages for (v, i_row, i_col) equal those for v plus those
    for the injections alone (<= 1e-12 of the largest voltage), in both solvers."""
    rng = np.random.default_rng(8)
    M, N = 12, 9
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(-1, 1, M)
    ir = rng.normal(0, 1e-5, (M, N))
    ic = rng.normal(0, 1e-5, (M, N))
    for solver in (pcg(), direct()):
        xb = Crossbar(G, wires=WireParams(r_row=2.0, r_col=3.0, r_sense=5.0), solver=solver)
        a = xb.solve(v, i_row=ir, i_col=ic)
        b = xb.solve(v)
        c = xb.solve(np.zeros(M), i_row=ir, i_col=ic)
        scale = np.abs(a.row_voltages).max()
        assert np.abs(a.row_voltages - b.row_voltages - c.row_voltages).max() <= 1e-12 * scale
        assert np.abs(a.col_voltages - b.col_voltages - c.col_voltages).max() <= 1e-12 * scale


# ----------------------------------------------------------------------------- parameters


def test_wireparams_roundtrip_and_frozen():
    """to_dict/from_dict round-trip (scalars stay floats, arrays stay arrays); fields are
    read-only; unknown keys -> ConfigError."""
    w = WireParams(r_row=1.5, r_col=np.ones((2, 3)), r_driver=[1.0, 2.0])
    d = w.to_dict()
    assert isinstance(d["r_row"], float) and d["r_col"].shape == (2, 3)
    assert WireParams.from_dict(d) == w
    with pytest.raises(AttributeError):
        w.r_row = 2.0
    with pytest.raises(ValueError):
        w.r_col[0, 0] = 5.0
    with pytest.raises(ConfigError, match="r_wire"):
        WireParams.from_dict({"r_wire": 1.0})


def test_enums_accept_strings():
    """Sense/Drive members and their string values give identical results."""
    G = np.full((3, 3), 1e-5)
    a = column_currents(G, np.ones(3), r_row=1.0, r_col=1.0, sense=Sense.TOP, drive=Drive.BOTH)
    b = column_currents(G, np.ones(3), r_row=1.0, r_col=1.0, sense="top", drive="both")
    np.testing.assert_array_equal(a, b)


G0 = np.full((3, 4), 1e-5)
V0 = np.ones(3)


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(G=np.array([[np.nan, 1e-5, 1e-5, 1e-5]] * 3)), "G"),
        (dict(G=np.array([[np.inf, 1e-5, 1e-5, 1e-5]] * 3)), "G"),
        (dict(G=-G0), "G"),
        (dict(G=np.ones(4)), "G"),
        (dict(v=np.ones(4)), "v"),
        (dict(v=np.array([1.0, np.nan, 0.0])), "v"),
        (dict(r_row=-1.0), "r_row"),
        (dict(r_row=np.ones((3, 5))), "r_row"),
        (dict(r_col=np.nan), "r_col"),
        (dict(r_col=np.ones((4, 4))), "r_col"),
        (dict(r_driver=np.ones(4)), "r_driver"),
        (dict(r_driver=-2.0), "r_driver"),
        (dict(r_sense=np.ones(3)), "r_sense"),
        (dict(r_sense=np.inf), "r_sense"),
        (dict(r_access=-np.ones((3, 4))), "r_access"),
        (dict(sense="middle"), "sense"),
        (dict(drive="right"), "drive"),
        (dict(solver="pcg"), "solver"),
    ],
)
def test_bad_input_raises_config_error_naming_argument(kwargs, name):
    """Non-finite or negative conductance, negative or non-finite resistance, shape mismatch,
    unknown option -> ConfigError whose message names the argument."""
    args = dict(G=G0, v=V0)
    args.update(kwargs)
    G, v = args.pop("G"), args.pop("v")
    with pytest.raises(ConfigError, match=name):
        column_currents(G, v, **args)


def test_bad_injection_and_stacked_input():
    """Injected currents of the wrong shape or non-finite, and a (K, M, N) G with v of the wrong
    leading size -> ConfigError naming i_row / i_col / v."""
    xb = Crossbar(G0, wires=WireParams(r_row=1.0, r_col=1.0))
    with pytest.raises(ConfigError, match="i_row"):
        xb.solve(V0, i_row=np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="i_col"):
        xb.solve(V0, i_col=np.full((3, 4), np.nan))
    with pytest.raises(ConfigError, match="v"):
        column_currents(np.stack([G0, G0]), np.ones((3, 3)))

