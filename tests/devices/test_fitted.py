"""Fitted blocks (devices/fitted.py, devices/relaxation_table.py) inside the one model class:
files, the numpy sampling path, ranges, composition, and what cannot be combined."""

from __future__ import annotations

import numpy as np
import pytest
from xbarlab.devices import load
from xbarlab.devices.blocks import ProgrammingError
from xbarlab.devices.composite import CompositeDevice, compose
from xbarlab.devices.curves import FittedCurve, constant
from xbarlab.devices.fitted import (
    FittedPowerLaw,
    FittedProgramming,
    WhiteReadNoise,
)
from xbarlab.devices.relaxation_table import RelaxationTable
from xbarlab.errors import ConfigError, DataFormatError

GRID = np.array([1e-6, 10e-6, 30e-6])
T = np.array([0.0, 60.0, 3600.0, 86400.0])


def _curve(values, units, boot=True):
    v = np.asarray(values, dtype=np.float64)
    b = np.vstack([v * 0.9, v * 1.1]) if boot else np.zeros((0, 0))
    return FittedCurve(GRID, v, units, b)


def _power_law_model():
    return CompositeDevice(
        programming=FittedProgramming(_curve([0.0, 0.1e-6, 0.2e-6], "S"),
                                      _curve([0.2e-6, 0.5e-6, 1e-6], "S"), family="student-t",
                                      df=5.0),
        drift_law=FittedPowerLaw(_curve([0.06, 0.05, 0.04], "1"), _curve([0.02, 0.015, 0.01], "1"),
                                 t0=20.0, q_read=_curve([0.02, 0.01, 0.005], "1")),
        read_noise=WhiteReadNoise(_curve([0.01e-6, 0.02e-6, 0.03e-6], "S", boot=False), 1.1),
        g_range=(0.0, np.inf), range_policy="edge", g_fit=(1e-6, 30e-6))


def _relaxation_model():
    p = np.linspace(0, 1, 5)
    t = np.array([0.0, 10.0, 1e4])
    q = np.zeros((GRID.size, t.size, p.size))
    q[:, 1, :] = np.linspace(-1e-6, 0.5e-6, 5)
    q[:, 2, :] = np.linspace(-2e-6, 1e-6, 5)
    table = RelaxationTable(GRID, t, p, q, tau=1.0, t_fit_max=1e4)
    return CompositeDevice(drift_law=table, programming=None, conditioning="initial read",
                           g_range=(0.0, np.inf), range_policy="edge", g_fit=(1e-6, 30e-6))


@pytest.mark.parametrize("make", [_power_law_model, _relaxation_model])
def test_fitted_model_file_round_trip_and_fused_contract(make, tmp_path):
    """A model of fitted blocks survives to_file -> load (kind "composite", layout version 2):
    equal trees, bootstrap replicates kept, bit-identical samples; sample(g, t, rng) equals
    read(program(g, rng), t, rng) bit for bit; drift() is read() without noise for a
    noiseless relaxation table; reads are >= 0 S."""
    from xbarlab.formats import read_model_file

    m = make()
    path = m.to_file(tmp_path / "m.h5")
    kind, tree, _ = read_model_file(path)
    assert kind == "composite" and tree["model_format_version"] == 2
    back = load(path)
    assert back == m and back.g_fit == m.g_fit
    g = np.linspace(0.5e-6, 40e-6, 301)
    a = m.sample(g, T, np.random.default_rng(3))
    np.testing.assert_array_equal(a, back.sample(g, T, np.random.default_rng(3)))
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(a, m.read(m.program(g, rng), T, rng))
    assert np.all(a >= 0)
    if isinstance(m.drift_law, FittedPowerLaw):
        np.testing.assert_array_equal(back.drift_law.mu_nu.boot, m.drift_law.mu_nu.boot)
    else:
        st = m.program(g, np.random.default_rng(1))
        np.testing.assert_array_equal(m.drift(st, T), m.read(st, T, np.random.default_rng(2)))


def test_compose_fitted_models():
    """compose(relaxation table | first read, fitted programming | target): target-conditioned,
    programs like the programming model (same bits at t = 0 s, where the table is 0) and
    takes the union of the fitted ranges."""
    relax = _relaxation_model()
    prog = CompositeDevice(programming=_power_law_model().programming, g_range=(0.0, np.inf),
                           range_policy="edge", g_fit=(2e-6, 40e-6))
    both = compose(relax, prog)
    assert both.conditioning == "target" and both.g_fit == (1e-6, 40e-6)
    g = np.linspace(1e-6, 30e-6, 200)
    np.testing.assert_array_equal(both.sample(g, 0.0, np.random.default_rng(4)),
                                  prog.sample(g, 0.0, np.random.default_rng(4)))


def test_mixed_blocks_and_bad_layouts_refused(tmp_path):
    """Fitted and parametric blocks cannot share a model (ConfigError naming both kinds);
    a fitted model with out_lo != 0 S is refused; a tree of a newer layout version and an
    unknown file kind raise DataFormatError; an rng that is not a Generator: ConfigError."""
    from xbarlab.devices.registry import model_from_tree

    fp = _power_law_model().programming
    with pytest.raises(ConfigError, match="cannot be combined"):
        CompositeDevice(programming=ProgrammingError(spread=constant(1e-6)),
                        read_noise=WhiteReadNoise(_curve([1e-8] * 3, "S")), g_range=(0, 1e-4))
    with pytest.raises(ConfigError, match="out_lo"):
        CompositeDevice(programming=fp, out_lo=-1.0, g_range=(0.0, 1e-4))
    tree = _relaxation_model().to_tree()
    tree["model_format_version"] = 3
    with pytest.raises(DataFormatError, match="layout version"):
        CompositeDevice.from_tree(tree)
    with pytest.raises(DataFormatError, match="known kinds"):
        model_from_tree("quantum", {})
    with pytest.raises(ConfigError, match="Generator"):
        _power_law_model().sample([1e-6], 1.0, 42)


@pytest.mark.parametrize("structure", ["random-walk", "independent", "both"])
def test_fitted_power_law_read_noise_structures(structure):
    """FittedPowerLaw with each read-noise structure (no drift spread: mu = sigma = 0):
    ln(read / g_prog) at 1 d and 1 y has variance Q^2 u (random walk, independent) or
    (Q^2 + Q_i^2) u (both) and covariance Q^2 u_1 (random walk, both) or 0 (independent),
    to 3 standard errors at 40000 cells; the model tree keeps the structure; a tree
    without the key loads as a random walk."""
    from xbarlab.devices.blocks import ReadNoiseStructure

    q, qi = 0.02, 0.01
    both = structure == "both"
    law = FittedPowerLaw(_curve([0.0] * 3, "1"), _curve([0.0] * 3, "1"), t0=20.0,
                         q_read=_curve([q] * 3, "1"), read_noise=structure,
                         q_independent=_curve([qi] * 3, "1") if both else None)
    m = CompositeDevice(drift_law=law, programming=None, g_range=(0.0, np.inf),
                        range_policy="edge", g_fit=(1e-6, 30e-6))
    times = np.array([86400.0, 365.25 * 86400.0])
    e = np.log(m.sample(np.full(40000, 10e-6), times, np.random.default_rng(2)) / 10e-6)
    u = law.u(times)
    var = (q * q + (qi * qi if both else 0.0)) * u
    np.testing.assert_allclose(e.var(axis=1), var, rtol=0.04)
    cov = 0.0 if structure == "independent" else q * q * u[0]
    assert abs(np.cov(e)[0, 1] - cov) < 3 * np.sqrt(var[0] * var[1] / 40000)
    back = CompositeDevice.from_tree(m.to_tree()).drift_law
    assert back.read_noise is ReadNoiseStructure(structure)
    assert (back.q_independent is not None) == both
    tree = law.to_dict()
    tree.pop("read_noise")
    tree.pop("q_independent", None)
    assert FittedPowerLaw.from_dict(tree).read_noise is ReadNoiseStructure.RANDOM_WALK
    with pytest.raises(ConfigError, match="q_independent"):
        FittedPowerLaw(law.mu_nu, law.sigma_nu, 20.0, law.q_read, read_noise="both")
