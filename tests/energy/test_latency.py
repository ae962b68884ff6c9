"""RC settling of the solved circuit against the eigenvalues of a uniform RC ladder."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _shared import need_ngspice
from xbarlab.crossbar import Crossbar, WireParams, run_ngspice, to_spice
from xbarlab.energy import LineCapacitance, read_latency, settling_time, settling_time_constant
from xbarlab.energy.latency import rc_matrices
from xbarlab.errors import ConfigError


def _ladder_tau(n, R, g, C):
    """Slowest time constant of n nodes in a chain of resistors R, the last tied to ground
    through R and the first open, each node with shunt g and C to ground: the chain's
    Laplacian has eigenvalues (2/R)(1 - cos((2k-1) pi / (2n+1))), so
    tau_max = C / (g + (2/R)(1 - cos(pi / (2n+1))))."""
    return C / (g + (2 / R) * (1 - math.cos(math.pi / (2 * n + 1))))


@pytest.mark.parametrize("M", [1, 5, 40, 300])
def test_column_ladder(M):
    """One column of M cells G, ideal rows (held at the drivers), column segments R to the
    virtual ground: an RC ladder with shunt G and C = c_wire p + c_junction per node."""
    R, G = 50.0, 20e-6
    caps = LineCapacitance(c_wire=2e-10, c_junction=3e-17, pitch=1e-7)
    xb = Crossbar(np.full((M, 1), G), wires=WireParams(r_col=R))
    tau = settling_time_constant(xb, caps)
    assert tau == pytest.approx(_ladder_tau(M, R, G, caps.per_cell), rel=1e-10)


def test_row_ladder():
    """One row of N cells G to ideal columns, driver and segments R, no junction
    capacitance: the same ladder along the row, C = c_wire p per node."""
    N, R, G = 12, 30.0, 5e-6
    caps = LineCapacitance(c_wire=2e-10, c_junction=0.0, pitch=2e-7)
    xb = Crossbar(np.full((1, N), G), wires=WireParams(r_row=R))
    tau = settling_time_constant(xb, caps)
    assert tau == pytest.approx(_ladder_tau(N, R, G, 2e-10 * 2e-7), rel=1e-10)
    eps = 2.0**-9
    assert settling_time(xb, caps, eps) == pytest.approx(tau * math.log(1 / eps), rel=1e-14)


def test_sparse_path_agrees_with_dense(monkeypatch):
    """A 6x6 array with every resistance: the sparse (Lanczos) eigensolver gives the dense
    one's tau_max."""
    import xbarlab.energy.latency as lat

    rng = np.random.default_rng(0)
    caps = LineCapacitance(c_wire=2e-10, c_junction=1e-16, pitch=1e-7)
    xb = Crossbar(rng.uniform(1e-6, 50e-6, (6, 6)),
                  wires=WireParams(r_row=2.0, r_col=3.0, r_driver=100.0, r_sense=50.0))
    monkeypatch.setattr(lat, "_DENSE_NODES", 100)
    dense = settling_time_constant(xb, caps)
    monkeypatch.setattr(lat, "_DENSE_NODES", 10)
    assert settling_time_constant(xb, caps) == pytest.approx(dense, rel=1e-8)
    K, C = rc_matrices(xb, caps)
    assert K.shape == (72, 72)


def test_read_latency_and_bad_input():
    """8 bit-serial cycles of (settle 5 ns, then 4 shared conversions of 2 ns) = 104 ns; an
    integrating converter overlaps the read: 8 max(5, 8) = 64 ns, and with a 127 ns pulse
    one cycle lasts the pulse (127 ns); a non-boolean ``integrating`` is refused."""
    assert read_latency(5e-9, 2e-9, input_cycles=8, columns_per_adc=4) == pytest.approx(104e-9)
    assert read_latency(5e-9, 2e-9, input_cycles=8, columns_per_adc=4,
                        integrating=True) == pytest.approx(64e-9)
    assert read_latency(5e-9, 77e-9, t_pulse=127e-9, integrating=True) == pytest.approx(127e-9)
    with pytest.raises(ConfigError, match="integrating"):
        read_latency(1e-9, 1e-9, integrating=1)
    with pytest.raises(ConfigError, match="t_conversion"):
        read_latency(1e-9, -1e-9)
    with pytest.raises(ConfigError, match="columns_per_adc"):
        read_latency(1e-9, 1e-9, columns_per_adc=0)
    with pytest.raises(ConfigError, match="eps"):
        settling_time(Crossbar(np.ones((1, 1)) * 1e-6),
                      LineCapacitance(c_wire=1e-10, c_junction=0.0, pitch=1e-7), 1.5)


def test_slowest_mode_matches_an_ngspice_transient():
    """3x4 array with random row, column, driver and sense resistances, wire capacitance at
    every node and a junction capacitance across every cell, drivers at 0 V and the nodes
    released from 1 V (rows) and 0.5 V (columns): late in ngspice's transient a column node
    decays as exp(-t / tau_max); the log-slope between 16 and 24 tau_max gives tau_max to
    0.5 % (the next-slowest mode has not quite died out)."""
    need_ngspice()
    rng = np.random.default_rng(0)
    M, N = 3, 4
    G = rng.uniform(5e-6, 50e-6, (M, N))
    kw = dict(r_row=rng.uniform(50, 200, (M, N)), r_col=rng.uniform(50, 200, (M, N)),
              r_driver=300.0, r_sense=200.0)
    caps = LineCapacitance(c_wire=2e-10, c_junction=5e-17, pitch=1e-6)
    tau = settling_time_constant(Crossbar(G, wires=WireParams(**kw)), caps)
    lines = [ln for ln in to_spice(G, np.zeros(M), **kw).splitlines() if not ln.startswith(".")]
    cw = caps.c_wire * caps.pitch
    ic = []
    for i in range(M):
        for j in range(N):
            lines += [f"cr{i}_{j} r{i}_{j} 0 {cw!r}", f"cc{i}_{j} c{i}_{j} 0 {cw!r}",
                      f"cj{i}_{j} r{i}_{j} c{i}_{j} {caps.c_junction!r}"]
            ic += [f"v(r{i}_{j})=1", f"v(c{i}_{j})=0.5"]
    t1, t2 = 16 * tau, 24 * tau
    lines += [".options reltol=1e-9 abstol=1e-20 vntol=1e-15 method=gear maxord=6",
              ".ic " + " ".join(ic), f".tran {tau / 400!r} {t2 * 1.01!r} 0 {tau / 400!r} uic",
              ".end", ""]
    res = run_ngspice("\n".join(lines))
    t, v = res["time"].real, res["v(c1_1)"].real
    tau_spice = (t2 - t1) / np.log(np.interp(t1, t, v) / np.interp(t2, t, v))
    assert tau_spice == pytest.approx(tau, rel=5e-3)
