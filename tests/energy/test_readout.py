"""Voltage-mode (integrating) readout against a numerical integration and an ngspice transient."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _shared import need_ngspice
from scipy.integrate import solve_ivp
from xbarlab.crossbar import run_ngspice
from xbarlab.energy import integrating_readout, integration_time
from xbarlab.errors import ConfigError


def test_single_cell_closed_form():
    """One cell G from V into C: V_c = V (1 - e^(-t/tau)), tau = C / G, the driver delivers
    C V V_c (the charge C V_c at V) and C V_c^2 / 2 stays on the capacitor."""
    G, C, V, t = 20e-6, 1e-12, 0.3, 70e-9
    r = integrating_readout(np.array([[G]]), np.array([V]), C, t)
    vc = V * (1 - math.exp(-t * G / C))
    assert r.column_voltage[0, 0] == pytest.approx(vc, rel=1e-13)
    assert r.energy[0] == pytest.approx(C * V * vc, rel=1e-12)
    assert r.stored[0] == pytest.approx(C * vc**2 / 2, rel=1e-13)


def test_matches_numerical_integration_of_the_rc_equations():
    """4x3 array with inputs of both signs: integrating C dV/dt = sum_i G_ij (v_i - V) and the
    driver power sum_ij v_i G_ij (v_i - V_j) with a tight-tolerance ODE solver reproduces the
    closed-form voltages and energy to 1e-8."""
    rng = np.random.default_rng(3)
    G = rng.uniform(1e-6, 40e-6, (4, 3))
    v = rng.uniform(-0.3, 0.3, 4)
    C = np.array([1e-12, 2e-12, 0.5e-12])
    t = 100e-9

    def rhs(_, y):
        vc, _ = y[:3], y[3]
        i = ((v[:, None] - vc[None, :]) * G)
        return np.concatenate([i.sum(axis=0) / C, [float((v[:, None] * i).sum())]])

    sol = solve_ivp(rhs, (0, t), np.zeros(4), method="DOP853", rtol=1e-12, atol=1e-22)
    r = integrating_readout(G, v, C, t)
    assert r.column_voltage[0] == pytest.approx(sol.y[:3, -1], rel=1e-8)
    assert r.energy[0] == pytest.approx(sol.y[3, -1], rel=1e-8)
    assert r.dissipated[0] > 0


def test_settled_voltage_and_time():
    """The settled column voltage is the conductance-weighted mean of the inputs, reached to
    the fraction eps after max_j C / G_T,j ln(1/eps)."""
    G = np.array([[10e-6, 0.0], [30e-6, 5e-6]])
    v = np.array([0.4, 0.0])
    r = integrating_readout(G, v, 1e-12, 1.0)
    assert r.settled_voltage[0] == pytest.approx([0.1, 0.0], abs=1e-15)
    assert integration_time(G, 1e-12, 1e-3) == pytest.approx(1e-12 / 5e-6 * math.log(1e3))


def test_matches_an_ngspice_transient():
    """2x3 array, columns on capacitors: ngspice's transient column voltages and the energy
    sum_i v_i |i(V_i)| integrated (trapezoid, 2000 steps) agree with the closed form to 1e-5."""
    need_ngspice()
    rng = np.random.default_rng(1)
    G = rng.uniform(5e-6, 50e-6, (2, 3))
    v = np.array([0.25, -0.1])
    C, t = 1e-12, 60e-9
    lines = ["* integrating readout"]
    lines += [f"vr{i} r{i} 0 {float(v[i])!r}" for i in range(2)]
    lines += [f"rc{i}_{j} r{i} c{j} {float(1 / G[i, j])!r}" for i in range(2) for j in range(3)]
    lines += [f"cc{j} c{j} 0 {C!r}" for j in range(3)]
    lines += [".options reltol=1e-10 abstol=1e-20 vntol=1e-15",
              f".tran {t / 2000!r} {t!r} 0 {t / 2000!r} uic", ".end", ""]
    res = run_ngspice("\n".join(lines))
    ts = res["time"].real
    p = sum(-v[i] * res[f"i(vr{i})"].real for i in range(2))
    e_spice = float(np.sum((p[1:] + p[:-1]) / 2 * np.diff(ts)))
    r = integrating_readout(G, v, C, t)
    assert [res[f"v(c{j})"].real[-1] for j in range(3)] == pytest.approx(
        r.column_voltage[0], rel=1e-5)
    assert e_spice == pytest.approx(r.energy[0], rel=1e-5)


@pytest.mark.parametrize("kw, word", [
    (dict(G=-np.ones((2, 2))), "G must"), (dict(c_column=0.0), "c_column"),
    (dict(t=-1.0), "t must"), (dict(v=np.ones(3)), "v has shape"),
    (dict(v=np.array([0.1, np.nan])), "v must be finite")])
def test_bad_input(kw, word):
    """A negative conductance, zero capacitance, negative time or misshaped input: one-line
    ConfigError naming the value."""
    args = dict(G=np.ones((2, 2)) * 1e-6, v=np.ones(2), c_column=1e-12, t=1e-9) | kw
    with pytest.raises(ConfigError, match=word):
        integrating_readout(**args)
