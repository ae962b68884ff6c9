"""The grid solvers (xbarlab.crossbar.solvers): the effective matrix, convergence reports,
custom solver callables, options, and the same bits whatever the thread count."""

import hashlib

import numpy as np
import pytest
from _shared import rel_err
from _threads import thread_count, thread_counts_available
from xbarlab.crossbar import Crossbar, WireParams, column_currents, direct, pcg
from xbarlab.errors import ConfigError, ConvergenceError

# ----------------------------------------------------------------------------- effective matrix


@pytest.mark.parametrize("sense,drive", [("bottom", "left"), ("top", "both")])
def test_effective_matrix_reproduces_solves(sense, drive):
    """48x36, r = 2.5 Ohm, G 1-100 uS: A @ v from effective_matrix() (block elimination)
    equals column_currents for 6 random inputs to <= 1e-12, and so does direct()'s A."""
    rng = np.random.default_rng(4)
    M, N = 48, 36
    G = rng.uniform(1e-6, 100e-6, (M, N))
    V = rng.uniform(-1, 1, (6, M))
    w = WireParams(r_row=2.5, r_col=2.5, r_driver=10.0, r_sense=5.0)
    xb = Crossbar(G, wires=w, sense=sense, drive=drive)
    A = xb.effective_matrix()
    assert A.shape == (N, M)
    ref = column_currents(G, V, sense=sense, drive=drive, solver=pcg(), **w.to_dict())
    assert rel_err(V @ A.T, ref) <= 1e-12
    assert rel_err(xb.mvm(V), ref) <= 1e-12
    Ad = Crossbar(G, wires=w, sense=sense, drive=drive, solver=direct()).effective_matrix()
    assert rel_err(V @ Ad.T, ref) <= 1e-12


# ----------------------------------------------------------------------------- solver behaviour


def test_pcg_reports_convergence_failure():
    """pcg(maxiter=1) on a 64x64 array with strong IR drop cannot converge: ConvergenceError
    carrying the residual reached (> 0)."""
    rng = np.random.default_rng(9)
    G = rng.uniform(1e-6, 100e-6, (64, 64))
    with pytest.raises(ConvergenceError) as info:
        column_currents(G, rng.uniform(0, 1, 64), r_row=2.5, r_col=2.5, solver=pcg(maxiter=1))
    assert info.value.residual is not None and info.value.residual > 0


def test_custom_solver_callable_and_kirchhoff_check():
    """A solver is any callable grid -> object with solve(v, i_row, i_col). One that returns the
    ideal node voltages (rows at v, columns at 0) for a 6x5 array with 2-Ohm wires violates
    KCL: ConvergenceError with residual > 1e-6; with zero wire resistance the same voltages are
    exact and I = v @ G (<= 1e-15)."""

    class Ideal:
        def __init__(self, grid):
            self.shape = grid.shape

        def solve(self, v, i_row=None, i_col=None):
            B, (M, N) = v.shape[0], self.shape
            return np.repeat(v[:, :, None], N, axis=2), np.zeros((B, M, N))

    rng = np.random.default_rng(10)
    G = rng.uniform(1e-6, 1e-4, (6, 5))
    v = rng.uniform(0, 1, 6)
    with pytest.raises(ConvergenceError) as info:
        Crossbar(G, wires=WireParams(r_row=2.0, r_col=2.0), solver=Ideal).mvm(v)
    assert info.value.residual > 1e-6
    assert rel_err(Crossbar(G, solver=Ideal).mvm(v), v @ G) <= 1e-15


def test_pcg_rejects_isolated_zero_segments():
    """pcg() needs positive wires (or a whole ideal layer): a lone 0-Ohm segment -> ConfigError
    naming the solver; the default picks direct() and succeeds."""
    r_row = np.ones((4, 4))
    r_row[1, 2] = 0.0
    G = np.full((4, 4), 1e-5)
    with pytest.raises(ConfigError, match="solver"):
        column_currents(G, np.ones(4), r_row=r_row, r_col=1.0, solver=pcg())
    assert column_currents(G, np.ones(4), r_row=r_row, r_col=1.0).shape == (4,)


def _solver_digest() -> str:
    rng = np.random.default_rng(0)
    G = rng.uniform(1e-6, 25e-6, (96, 80))
    V = rng.uniform(0, 1, (3, 96))
    xb = Crossbar(G, wires=WireParams(r_row=1.0, r_col=1.0))
    h = hashlib.sha256()
    for a in (xb.mvm(V), xb.node_voltages(V[0])[1], xb.effective_matrix()):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def test_same_bits_whatever_the_thread_count():
    """Currents, node voltages and the effective matrix hash identically with 1 and 2 Numba
    and BLAS threads (expected: one hash)."""
    thread_counts_available((1, 2))
    hashes = set()
    for n in (1, 2):
        with thread_count(n):
            hashes.add(_solver_digest())
    assert len(hashes) == 1


G0 = np.full((3, 4), 1e-5)


def test_bad_solver_options():
    """pcg(rtol=0), pcg(maxiter=0), Crossbar(rtol=2), wires not a WireParams -> ConfigError."""
    with pytest.raises(ConfigError, match="rtol"):
        pcg(rtol=0.0)
    with pytest.raises(ConfigError, match="maxiter"):
        pcg(maxiter=0)
    with pytest.raises(ConfigError, match="rtol"):
        Crossbar(G0, rtol=2.0)
    with pytest.raises(ConfigError, match="wires"):
        Crossbar(G0, wires={"r_row": 1.0})



def test_effective_matrix_leaves_blas_threads_as_found():
    """The block elimination runs BLAS on one thread (threadpoolctl) and restores the thread
    count it found: threadpool_info() before and after an effective matrix are equal."""
    from threadpoolctl import threadpool_info

    before = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    rng = np.random.default_rng(5)
    Crossbar(rng.uniform(1e-6, 25e-6, (40, 30)), wires=WireParams(r_row=1.0, r_col=1.0)
             ).effective_matrix()
    assert [(i["internal_api"], i["num_threads"]) for i in threadpool_info()] == before


def test_nan_solution_reports_a_nan_residual():
    """A solver that returns NaN node voltages: ConvergenceError whose residual is NaN and
    whose message says nan (a max over NaN once hid it as 0.000e+00)."""

    class Broken:
        def __init__(self, grid):
            self.shape = grid.shape

        def solve(self, v, i_row=None, i_col=None):
            B, (M, N) = v.shape[0], self.shape
            return np.full((B, M, N), np.nan), np.full((B, M, N), np.nan)

    G = np.full((4, 3), 1e-5)
    with pytest.raises(ConvergenceError, match="nan") as info:
        Crossbar(G, wires=WireParams(r_row=1.0, r_col=1.0), solver=Broken).mvm(np.ones(4))
    assert np.isnan(info.value.residual)
