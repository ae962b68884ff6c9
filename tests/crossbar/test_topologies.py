"""Crossbar topologies: 1T1R source line, differential column pairs, interleaved differential
cells; against ngspice and against single-ended solves."""

import numpy as np
import pytest
from _shared import need_ngspice, rel_err
from xbarlab.crossbar import column_currents, to_spice
from xbarlab.crossbar.spice import ngspice_column_currents
from xbarlab.crossbar.topologies import direct_solver
from xbarlab.errors import ConfigError

#: the sparse netlist solve (``column_currents`` of a standard linear array solves on the grid)
NETLIST = dict(solver=direct_solver)


def _pair(rng, M, N):
    return rng.uniform(1e-6, 1e-4, (M, N)), rng.uniform(1e-6, 1e-4, (M, N))


@pytest.mark.parametrize("M, N, end", [(5, 4, "top"), (12, 9, "bottom")])
def test_source_line_matches_ngspice(M, N, end):
    """1T1R source-line array, random gates (0/1), v_read = 0.2 V, per-segment r_source and
    r_col, r_driver, r_sense, transistor r_access: currents agree with ngspice to <= 1e-9 and
    differ from the ideal v_read * gates @ G by more than 0.1 %."""
    need_ngspice()
    rng = np.random.default_rng(M)
    G = rng.uniform(1e-6, 1e-4, (M, N))
    gates = (rng.uniform(size=M) < 0.6).astype(float)
    gates[0] = 1.0
    kw = dict(r_source=rng.uniform(0.5, 3, (M, N)), r_col=rng.uniform(0.5, 3, (M, N)),
              r_driver=5.0, r_sense=rng.uniform(1, 10, N), r_access=rng.uniform(100, 5e3, (M, N)),
              v_read=0.2, source_end=end)
    I = column_currents(G, gates, topology="source-line", **kw)
    ref = ngspice_column_currents(G, gates, topology="source-line", **kw)
    assert rel_err(I, ref) <= 1e-9
    assert rel_err(0.2 * gates @ G, ref) > 1e-3


def test_source_line_ideal_and_batch():
    """With zero wire resistance the source line gives v_read * gates @ G exactly (to 1e-15
    relative), for a batch of gate patterns with repeats."""
    rng = np.random.default_rng(1)
    G = rng.uniform(1e-6, 1e-4, (6, 3))
    gates = (rng.uniform(size=(9, 6)) < 0.5).astype(float)
    gates[3] = gates[0]
    I = column_currents(G, gates, topology="source-line", v_read=0.15)
    assert rel_err(I, 0.15 * gates @ G) <= 1e-15


@pytest.mark.parametrize("topology", ["differential-columns", "differential-rows"])
def test_differential_matches_ngspice(topology):
    """Differential pairs (G_pos, G_neg) 6x5, v in +-0.3 V, scalar wires 1.5 Ohm, r_driver 4 Ohm,
    r_sense 2 Ohm: the subtracted outputs agree with ngspice (column pairs: the sense-amplifier
    subtraction v(out_j) of the netlist; interleaved cells: the column currents) to <= 1e-9."""
    need_ngspice()
    rng = np.random.default_rng(7)
    G = _pair(rng, 6, 5)
    v = rng.uniform(-0.3, 0.3, 6)
    kw = dict(r_row=1.5, r_col=1.5, r_driver=4.0, r_sense=2.0, topology=topology)
    I = column_currents(G, v, **kw)
    ref = ngspice_column_currents(G, v, **kw)
    assert ref.shape == (5,)
    assert rel_err(I, ref) <= 1e-9
    assert rel_err(v @ (G[0] - G[1]), ref) > 1e-4


def test_differential_columns_equal_difference_of_single_ended():
    """Column pairs with ideal rows (r_row = r_driver = 0, so the columns decouple) and
    per-column wires: the differential output equals column_currents(G_pos) -
    column_currents(G_neg), each solved single-ended with its own column resistances, to 1e-14
    relative."""
    rng = np.random.default_rng(8)
    gp, gn = _pair(rng, 7, 4)
    v = rng.uniform(-0.3, 0.3, (3, 7))
    rc = rng.uniform(0.5, 3, (7, 8))
    rs = rng.uniform(1, 10, 8)
    ra = rng.uniform(0, 100, (7, 8))
    I = column_currents((gp, gn), v, topology="differential-columns", r_col=rc, r_sense=rs,
                        r_access=ra)
    Ip = column_currents(gp, v, r_col=rc[:, 0::2], r_sense=rs[0::2], r_access=ra[:, 0::2],
                        **NETLIST)
    In = column_currents(gn, v, r_col=rc[:, 1::2], r_sense=rs[1::2], r_access=ra[:, 1::2],
                        **NETLIST)
    assert rel_err(I, Ip - In) <= 1e-14


def test_differential_rows_equal_difference_of_single_ended():
    """Interleaved differential cells with ideal columns (r_col = r_sense = 0, so the rows
    decouple): the output equals column_currents(G_pos, v) - column_currents(G_neg, v), each
    single-ended with its own row wires and drivers, to 1e-14 relative."""
    rng = np.random.default_rng(9)
    gp, gn = _pair(rng, 5, 6)
    v = rng.uniform(-0.3, 0.3, (4, 5))
    rr = rng.uniform(0.5, 3, (10, 6))
    rd = rng.uniform(1, 10, 10)
    I = column_currents((gp, gn), v, topology="differential-rows", r_row=rr, r_driver=rd)
    Ip = column_currents(gp, v, r_row=rr[0::2], r_driver=rd[0::2], **NETLIST)
    In = column_currents(gn, v, r_row=rr[1::2], r_driver=rd[1::2], **NETLIST)
    assert rel_err(I, Ip - In) <= 1e-14


def test_differential_ir_drop_couples_pairs():
    """With row resistance the column pair shares the row wire: the differential output is the
    difference of the two columns of the single-ended solve of the physical (M, 2N) array
    (to 1e-14) but not the difference of two separate arrays (> 1e-4 relative)."""
    rng = np.random.default_rng(10)
    gp, gn = _pair(rng, 8, 4)
    v = rng.uniform(0, 0.3, 8)
    I = column_currents((gp, gn), v, topology="differential-columns", r_row=2.0, r_col=2.0)
    phys = np.empty((8, 8))
    phys[:, 0::2], phys[:, 1::2] = gp, gn
    Ip = column_currents(phys, v, r_row=2.0, r_col=2.0, **NETLIST)
    assert rel_err(I, Ip[0::2] - Ip[1::2]) <= 1e-14
    sep = (column_currents(gp, v, r_row=2.0, r_col=2.0, **NETLIST)
           - column_currents(gn, v, r_row=2.0, r_col=2.0, **NETLIST))
    assert rel_err(I, sep) > 1e-4


def test_bad_topology_input():
    """Unknown topology, a single array for a differential topology, source-line without
    v_read or with non-binary gates, r_row on a source-line array: ConfigError naming it."""
    G = np.full((2, 2), 1e-5)
    v = np.array([0.1, 0.2])
    with pytest.raises(ConfigError, match="topology"):
        column_currents(G, v, topology="crossbar-3d")
    with pytest.raises(ConfigError, match="G_pos"):
        column_currents(G, v, topology="differential-columns")
    with pytest.raises(ConfigError, match="v_read"):
        column_currents(G, np.array([1.0, 0.0]), topology="source-line")
    with pytest.raises(ConfigError, match="0 or 1"):
        column_currents(G, v, topology="source-line", v_read=0.2)
    with pytest.raises(ConfigError, match="r_row"):
        column_currents(G, np.array([1.0, 0.0]), topology="source-line", v_read=0.2, r_row=1.0)
    with pytest.raises(ConfigError, match="r_col"):
        column_currents(G, v, r_col=-1.0)


def test_netlist_assembly_matches_grid_solver():
    """The netlist assembly of crossbar.topologies (a sparse solver) and the structured grid
    solver agree on the standard topology (random 12x9, per-segment wires, drivers, sense,
    access, both sense and drive options) to 1e-12 relative: two independent assemblies of one
    geometry."""
    rng = np.random.default_rng(11)
    G = rng.uniform(1e-6, 1e-4, (12, 9))
    v = rng.uniform(-0.3, 0.3, (3, 12))
    base = dict(r_col=rng.uniform(0.5, 3, (12, 9)), r_driver=rng.uniform(1, 9, 12),
                r_sense=rng.uniform(1, 9, 9), r_access=rng.uniform(0, 300, (12, 9)))
    for opts in ({"r_row": rng.uniform(0.5, 3, (12, 9))}, {"r_row": 1.0, "sense": "top"},
                 {"r_row": rng.uniform(0.5, 3, (12, 10)), "drive": "both"}):
        kw = dict(base, **opts)
        assert rel_err(column_currents(G, v, **NETLIST, **kw), column_currents(G, v, **kw)) <= 1e-12


def test_column_currents_dispatches_topology_and_cell():
    """xbarlab.crossbar.column_currents / to_spice with topology= or cell= give exactly the
    results of the netlist solves of crossbar.topologies and crossbar.nonlinear (a
    differential-columns pair: the subtracted columns of the physical array's netlist solve;
    a sinh cell: newton_solve of the standard netlist); to_spice writes the netlist of the
    topology (the subtracting sources BD<j>); an unknown topology raises ConfigError naming
    it."""
    import xbarlab.crossbar as xc
    from xbarlab.crossbar.nonlinear import SinhCell, newton_solve
    from xbarlab.crossbar.topologies import build_circuit

    rng = np.random.default_rng(12)
    G = _pair(rng, 4, 3)
    v = rng.uniform(-0.3, 0.3, 4)
    kw = dict(r_row=1.0, r_col=1.0, topology="differential-columns")
    phys = np.empty((4, 6))
    phys[:, 0::2], phys[:, 1::2] = G
    circ = build_circuit(phys.shape, r_row=1.0, r_col=1.0)
    _, I = circ.solve_linear(phys.ravel(), v[:, None])
    np.testing.assert_array_equal(xc.column_currents(G, v, **kw), I[0, 0::2] - I[0, 1::2])
    text = xc.to_spice(G, v, **kw)
    assert "BD0 0 out0 I=i(VS0)-i(VS1)" in text and text == to_spice(G, v, **kw)
    cell = SinhCell(b=3.0)
    circ = build_circuit(G[0].shape, r_row=1.0)
    ref = newton_solve(circ, cell, G[0], v[:, None]).currents[0]
    np.testing.assert_array_equal(xc.column_currents(G[0], v, cell=cell, r_row=1.0), ref)
    with pytest.raises(ConfigError, match="topology"):
        xc.column_currents(G[0], v, topology="crossbar-3d")
