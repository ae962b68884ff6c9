"""Nonlinear crossbar cells (polynomial, sinh) solved by Newton's method on the whole circuit."""

import numpy as np
import pytest
from _shared import need_ngspice, rel_err
from scipy.optimize import brentq
from xbarlab.crossbar import column_currents
from xbarlab.crossbar.nonlinear import PolynomialCell, SinhCell, newton_solve
from xbarlab.crossbar.spice import ngspice_column_currents
from xbarlab.crossbar.topologies import build_circuit, direct_solver
from xbarlab.errors import ConfigError, ConvergenceError


def _wires(rng, M, N):
    return dict(r_row=rng.uniform(0.5, 3.0, (M, N)), r_col=rng.uniform(0.5, 3.0, (M, N)),
                r_driver=rng.uniform(1, 20, M), r_sense=rng.uniform(1, 20, N),
                r_access=rng.uniform(0, 500, (M, N)))


@pytest.mark.parametrize("M, N, kind, opts", [
    (4, 3, "poly", {}),
    (8, 8, "sinh", {"sense": "top"}),
    (16, 16, "poly", {"drive": "both", "r_row": 2.0}),
    (16, 16, "sinh", {}),
])
def test_nonlinear_matches_ngspice(M, N, kind, opts):
    """Random arrays up to 16x16, G 1-100 uS, v in +-0.4 V, per-segment wires, drivers, sense
    and access resistors; polynomial cells (a2 in +-2e-5 A/V^2, a3 = 1e-4 A/V^3 per cell) or
    sinh cells (b 2-6 1/V): column currents agree with ngspice behavioural sources
    (reltol 1e-9, abstol 1e-15, binary rawfile) to <= 1e-7 relative, and differ from the linear
    solve by more than 1 %."""
    need_ngspice()
    rng = np.random.default_rng(M * 100 + N)
    G = rng.uniform(1e-6, 1e-4, (M, N))
    v = rng.uniform(-0.4, 0.4, M)
    kw = _wires(rng, M, N)
    kw.update(opts)
    if kind == "poly":
        cell = PolynomialCell(a2=rng.uniform(-2e-5, 2e-5, (M, N)), a3=1e-4)
    else:
        cell = SinhCell(b=rng.uniform(2, 6, (M, N)))
    I = column_currents(G, v, cell=cell, **kw)
    ref = ngspice_column_currents(G, v, cell=cell, **kw)
    assert rel_err(I, ref) <= 1e-7
    assert rel_err(column_currents(G, v, **kw), ref) > 1e-2


def test_single_cell_closed_form():
    """One cubic cell I = G V + a3 V^3 (G = 1 mS, a3 = 5 mA/V^3) behind r_driver = 100 Ohm and
    r_sense = 50 Ohm at v = 1 V: I solves 1 = 150 I + V(I), V = cell voltage (scalar root,
    brentq to 1e-15); the solver agrees to 1e-12 relative."""
    G, a3 = 1e-3, 5e-3

    def f(V):
        I = G * V + a3 * V**3
        return V + 150.0 * I - 1.0

    V = brentq(f, 0.0, 1.0, xtol=1e-16, rtol=1e-15)
    I_ref = G * V + a3 * V**3
    I = column_currents(np.array([[G]]), np.array([1.0]), cell=PolynomialCell(a3=a3),
                        r_driver=100.0, r_sense=50.0)
    assert I[0] == pytest.approx(I_ref, rel=1e-12)


def test_linear_coefficients_recover_linear_solve():
    """PolynomialCell with a2 = a3 = 0 is the linear cell: equal to the linear solve to 1e-13
    relative, Newton stops after 0 iterations (the first, linear iterate is exact)."""
    rng = np.random.default_rng(3)
    G = rng.uniform(1e-6, 1e-4, (10, 7))
    v = rng.uniform(0, 0.3, (3, 10))
    kw = _wires(rng, 10, 7)
    I_lin = column_currents(G, v, solver=direct_solver, **kw)
    I_nl = column_currents(G, v, cell=PolynomialCell(), **kw)
    assert rel_err(I_nl, I_lin) <= 1e-13
    res = newton_solve(build_circuit(G.shape, **kw), PolynomialCell(), G, v.T)
    assert res.iterations == [0, 0, 0]


def test_newton_converges_quadratically():
    """Strongly nonlinear sinh cells (b = 8 1/V, v up to 0.9 V) in a 12x12 array with wires:
    in the asymptotic phase (1e-15 < r_{k+1}, r_k < 1e-3) the ratio r_{k+1} / r_k^2 of successive
    Kirchhoff residuals stays within a factor 10 of its first value (quadratic convergence; a
    linear rate would make it grow by >= 1e3 per step), and the residual ends <= 1e-12."""
    rng = np.random.default_rng(4)
    G = rng.uniform(1e-5, 1e-4, (12, 12))
    v = rng.uniform(0.3, 0.9, (1, 12)).T
    circ = build_circuit(G.shape, **_wires(rng, 12, 12))
    res = newton_solve(circ, SinhCell(b=8.0), G, v, tol=1e-14)
    r = np.array(res.residuals[0])
    assert r[-1] <= 1e-14
    k = [i for i in range(len(r) - 1) if r[i] < 1e-3 and 1e-15 < r[i + 1]]
    assert len(k) >= 2
    ratios = r[[i + 1 for i in k]] / r[k] ** 2
    assert np.all(ratios / ratios[0] < 10) and np.all(ratios / ratios[0] > 0.1)


def test_convergence_error_reports_residual():
    """max_iter = 1 on the strongly nonlinear array above: ConvergenceError whose .residual is
    the relative residual reached (> tol = 1e-12)."""
    rng = np.random.default_rng(4)
    G = rng.uniform(1e-5, 1e-4, (12, 12))
    v = rng.uniform(0.3, 0.9, 12)
    with pytest.raises(ConvergenceError) as err:
        column_currents(G, v, cell=SinhCell(b=8.0), max_iter=1, **_wires(rng, 12, 12))
    assert err.value.residual is not None and err.value.residual > 1e-12


def test_non_monotonic_coefficients_raise():
    """G = 10 uS, a3 = -100 uA/V^3: dI/dV = G + 3 a3 V^2 < 0 for |V| > 0.18 V, so v = 0.5 V
    raises ConfigError naming a3, while v = 0.1 V (operating range 0.1 V) is accepted; sinh with
    b <= 0 raises naming b."""
    G = np.full((2, 2), 1e-5)
    cell = PolynomialCell(a3=-1e-4)
    with pytest.raises(ConfigError, match="a3"):
        column_currents(G, np.array([0.5, 0.2]), cell=cell, r_row=1.0)
    I = column_currents(G, np.array([0.1, 0.05]), cell=cell, r_row=1.0)
    assert np.all(np.isfinite(I))
    with pytest.raises(ConfigError, match="b"):
        SinhCell(b=-1.0)
    with pytest.raises(ConfigError, match="a2"):
        PolynomialCell(a2=np.ones((3, 3))).bind(G)


def test_nonlinearity_direction():
    """Superlinear cells (a3 > 0, sinh) carry more current than linear cells at the same
    voltage: with ideal wires I = v G + a3 v^3 exactly (sum over rows), and sinh gives
    (G/b) sinh(b v) exactly."""
    G = np.array([[2e-5, 1e-5], [3e-5, 4e-5]])
    v = np.array([0.3, 0.2])
    I = column_currents(G, v, cell=PolynomialCell(a3=1e-4))
    np.testing.assert_allclose(I, v @ G + (v**3).sum() * 1e-4, rtol=1e-13)
    I = column_currents(G, v, cell=SinhCell(b=3.0))
    np.testing.assert_allclose(I, (np.sinh(3.0 * v) / 3.0) @ G, rtol=1e-13)


@pytest.mark.parametrize("opts, grid_solver", [
    ({}, None),
    ({"drive": "both", "sense": "top"}, "pcg"),
    ({"zeros": True}, None),
])
def test_grid_newton_matches_netlist_newton(opts, grid_solver, monkeypatch):
    """Random 20x14 array, per-segment r_row/r_col, r_driver, r_sense, r_access (0-500 Ohm),
    sinh cells (b = 6 1/V), 3 vectors in +-0.5 V; one case with drive="both", sense="top" and
    solver=pcg(), one with 30 % zero-resistance row/column segments (merged nodes: the grid's
    direct()). Newton with the grid solver (one Crossbar.solve per step, residual injected) and
    Newton on the netlist's sparse Jacobian (SuperLU) take the same iterates: equal iteration
    counts, equal linear-iterate residuals (1e-6 relative), currents equal to 1e-12 relative;
    Crossbar.solve runs once for the batch's linear iterate and once per Newton step."""
    from xbarlab.crossbar import pcg
    from xbarlab.crossbar.circuit import Crossbar
    from xbarlab.crossbar.topologies import direct_solver

    rng = np.random.default_rng(21)
    M, N = 20, 14
    G = rng.uniform(1e-5, 1e-4, (M, N))
    v = rng.uniform(-0.5, 0.5, (3, M))
    kw = _wires(rng, M, N)
    kw.update({k: val for k, val in opts.items() if k != "zeros"})
    if kw.get("drive") == "both":
        kw["r_row"] = rng.uniform(0.5, 3.0, (M, N + 1))
    if opts.get("zeros"):
        kw["r_row"] = np.where(rng.random((M, N)) < 0.3, 0.0, kw["r_row"])
        kw["r_col"] = np.where(rng.random((M, N)) < 0.3, 0.0, kw["r_col"])
    circ = build_circuit(G.shape, **kw)
    cell = SinhCell(b=6.0)
    calls = []
    solve = Crossbar.solve
    monkeypatch.setattr(Crossbar, "solve", lambda self, *a, **k: calls.append(1) or solve(
        self, *a, **k))
    grid = newton_solve(circ, cell, G, v.T, solver=pcg() if grid_solver else None)
    assert len(calls) == 1 + sum(grid.iterations)
    sparse = newton_solve(circ, cell, G, v.T, solver=direct_solver)
    assert len(calls) == 1 + sum(grid.iterations)
    assert grid.iterations == sparse.iterations and min(grid.iterations) >= 2
    r0 = np.array([h[0] for h in grid.residuals])
    np.testing.assert_allclose(r0, [h[0] for h in sparse.residuals], rtol=1e-6)
    assert rel_err(grid.currents, sparse.currents) <= 1e-12


def test_grid_solver_needs_standard_topology():
    """solver=pcg() (a grid solver) with the source-line topology: ConfigError naming
    the standard topology."""
    from xbarlab.crossbar import pcg

    with pytest.raises(ConfigError, match="standard"):
        column_currents(np.full((2, 2), 1e-5), np.array([1.0, 0.0]), topology="source-line",
                        v_read=0.2, cell=SinhCell(b=3.0), solver=pcg())


@pytest.mark.parametrize("topology", ["source-line", "differential-columns", "differential-rows"])
def test_other_topologies_nonlinear_match_ngspice(topology):
    """Sinh cells (b = 5 1/V) on the other topologies, 6x5 (per-pair arrays), wires 1.5 Ohm,
    r_driver 4 Ohm, r_sense 2 Ohm, r_access 200 Ohm: the source line (netlist Newton, gates
    0/1, v_read = 0.4 V, r_source 1.5 Ohm) and the differential pairs / interleaved cells (grid
    Newton, v in +-0.5 V) agree with ngspice behavioural sources to <= 1e-7 relative."""
    need_ngspice()
    rng = np.random.default_rng(31)
    G = rng.uniform(1e-5, 1e-4, (6, 5))
    kw = dict(r_col=1.5, r_driver=4.0, r_sense=2.0, r_access=200.0, topology=topology,
              cell=SinhCell(b=5.0))
    if topology == "source-line":
        v = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
        kw.update(r_source=1.5, v_read=0.4)
    else:
        G = (G, rng.uniform(1e-5, 1e-4, (6, 5)))
        v = rng.uniform(-0.5, 0.5, 6)
        kw.update(r_row=1.5)
    I = column_currents(G, v, **kw)
    assert rel_err(I, ngspice_column_currents(G, v, **kw)) <= 1e-7
