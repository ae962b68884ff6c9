"""Pulsed-device fits (calibration.pulsed) against ramps generated here from the published
soft-bounds and power-step equations (tests/_synthetic_pulses.py), and against the measured
LISTA ramps and the ENODe step table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _shared import shared_path
from _synthetic_pulses import synthetic_ramps
from xbarlab.calibration.pulsed import (
    StepForm,
    fit_pulsed_ramps,
    fit_step_table,
    split_step_noise,
    step_table_rule,
)
from xbarlab.calibration.pulsed_goodness import ramp_goodness, read_resolution, table_goodness
from xbarlab.devices.pulsed import PulsedDevice
from xbarlab.errors import ConfigError, DataFormatError
from xbarlab.formats.pulse_tables import read_pulse_ramps, read_step_table

US = 1e-6
TRUTH = {"a_up": 0.8 * US, "a_down": 0.5 * US, "g_min": 10 * US, "g_max": 50 * US,
         "c2c": 0.2, "sigma_read": 0.05 * US}
POW = {"gamma_up": 2.0, "gamma_down": 0.5}


def _ramps(law, seed=2, **kw):
    return synthetic_ramps(law=law, seed=seed, **TRUTH | kw)


def _value(fit, name):
    return fit.params[name] if name in fit.params else fit.values[name]


def test_soft_bounds_point_estimates():
    """Soft-bounds ramps (a_up 0.8 uS, a_down 0.5 uS, G 10-50 uS, c2c 0.2, read error
    0.05 uS; 30 ramps each way of 120 pulses): the soft-bounds fit recovers every parameter
    within 5 % (c2c within 10 %), and the symmetric point is G_min + a_up/(a_up + a_down)
    of the range."""
    fit = fit_pulsed_ramps(_ramps("soft bounds"), form="soft bounds", n_boot=0,
                           rng=np.random.default_rng(0))
    for name, true in TRUTH.items():
        tol = 0.1 if name == "c2c" else 0.05
        assert _value(fit, name) == pytest.approx(true, rel=tol), name
    x = 0.8 / 1.3
    assert fit.values["symmetric_point"] == pytest.approx(10 * US + x * 40 * US, rel=0.01)


def test_held_out_choice_prefers_the_generating_law():
    """Held-out likelihood over whole ramps: power-step ramps (gamma 2 up, 0.5 down) choose
    the power step; on soft-bounds ramps soft bounds beat the constant step by far."""
    fit = fit_pulsed_ramps(_ramps("power step", **POW), n_boot=0, rng=np.random.default_rng(0),
                           forms=[StepForm.CONSTANT, StepForm.SOFT_BOUNDS, StepForm.POWER])
    assert fit.form is StepForm.POWER
    assert fit.held_out["power step"] > fit.held_out["soft bounds"] > fit.held_out["constant"]


@pytest.mark.slow
def test_parameters_inside_bootstrap_bands():
    """Coverage of the fit's 95 % bootstrap bands (100 ramp resamples): over six data sets
    (seeds 0-5) of each law, soft bounds and power step, the bands hold at least 86 % of
    the 84 generating parameters (72; 79.8 expected at nominal coverage, the binomial
    standard deviation 2.0). Ramps resampled within a direction are not independent (each
    starts where the previous ended), so coverage a little under nominal is expected; 78
    of 84 when written."""
    inside, total, missed = 0, 0, []
    for law, extra in (("soft bounds", {}), ("power step", POW)):
        for seed in range(6):
            fit = fit_pulsed_ramps(_ramps(law, seed=seed, **extra), form=law, n_boot=100,
                                   rng=np.random.default_rng(seed))
            for name, true in (TRUTH | extra).items():
                lo, hi = fit.bands[name]
                total += 1
                if lo <= true <= hi:
                    inside += 1
                else:
                    missed.append((law, seed, name, lo, true, hi))
    assert total == 84
    assert inside >= 72, (inside, missed)


def test_noise_split_closed_form():
    """Residuals eps_n + e_{n+1} - e_n with eps ~ N(0, (c A)^2 + w^2), e ~ N(0, s^2):
    the lag-1 covariance gives s, the rest c and w (200,000 steps, 3 % tolerance)."""
    rng = np.random.default_rng(5)
    n = 200_000
    a = rng.uniform(0.2, 1.0, n)
    c, w, s = 0.3, 0.1, 0.15
    e = s * rng.standard_normal(n + 1)
    r = np.sqrt((c * a) ** 2 + w**2) * rng.standard_normal(n) + e[1:] - e[:-1]
    c2c, wn, sig = split_step_noise(r, np.arange(n - 1), a)
    assert sig == pytest.approx(s, rel=0.03)
    assert c2c == pytest.approx(c, rel=0.03)
    assert wn == pytest.approx(w, rel=0.1)


def test_bad_arguments():
    ramps = _ramps("soft bounds", n_ramps=6, n_pulses=20)
    with pytest.raises(ConfigError, match="'cubic'"):
        fit_pulsed_ramps(ramps, form="cubic", rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="n_boot"):
        fit_pulsed_ramps(ramps, n_boot=-1, rng=np.random.default_rng(0))
    with pytest.raises(DataFormatError, match="n_folds = 10"):
        fit_pulsed_ramps(ramps, n_folds=10, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="rng"):
        fit_pulsed_ramps(ramps, rng=0)


# ------------------------------------------------------------------ measured data


@pytest.fixture(scope="module")
def lista():
    d = shared_path("data", "measured", "sandia_lista_ecram")
    return read_pulse_ramps([d / "set.csv", d / "reset.csv"])


@pytest.fixture(scope="module")
def enode():
    d = shared_path("data", "measured", "sandia_enode_ecram")
    return read_step_table([d / "dG_increasing.txt", d / "dG_decreasing.txt"])


def test_lista_step_vs_state(lista):
    """LISTA lookup table: up steps grow with G (about 0.2 uS near 165 uS to 0.7 uS near
    240 uS), down steps 0.5-0.6 uS; the symmetric point lies in the upper half
    (220-235 uS, mid-range is 205 uS); 150-190 states; read error 20-35 nS; relative
    step spread 3-12 %."""
    fit = fit_pulsed_ramps(lista, form=StepForm.TABLE, n_boot=0, rng=np.random.default_rng(0))
    dev = fit.device
    assert dev.mean_magnitude(165 * US, 1) < 0.35 * US < 0.6 * US < dev.mean_magnitude(
        240 * US, 1)
    assert 0.45 * US < dev.mean_magnitude(200 * US, -1) < 0.65 * US
    assert 220 * US < fit.values["symmetric_point"] < 235 * US
    assert 150 < fit.values["n_states"] < 190
    assert 0.02 * US < fit.sigma_read < 0.035 * US
    assert 0.03 < fit.values["c2c_spread"] < 0.12


@pytest.mark.slow
def test_lista_full_fit_and_ks(lista):
    """LISTA: the held-out choice is the lookup table (the SET step grows with G, which no
    parametric rule with decaying steps follows); simulated ramps match the measured ones
    (median KS of the steps per conductance bin <= 0.1); the symmetric point's bootstrap
    band is narrower than 5 uS."""
    fit = fit_pulsed_ramps(lista, n_boot=50, rng=np.random.default_rng(0))
    assert fit.form is StepForm.TABLE
    lo, hi = fit.bands["symmetric_point"]
    assert lo <= fit.values["symmetric_point"] <= hi and hi - lo < 5 * US
    ks = ramp_goodness(fit.device, fit.sigma_read, lista, rng=np.random.default_rng(1))
    assert ks.median <= 0.1
    assert ks.median < min(np.median(v) for v in ks.baselines.values())


def test_lista_ks_quick(lista):
    """The LISTA table device's simulated steps per (direction, bin): median KS <= 0.1
    (4 bins per direction, 2 copies, 2 floor replicates)."""
    fit = fit_pulsed_ramps(lista, form=StepForm.TABLE, n_boot=0, rng=np.random.default_rng(0))
    ks = ramp_goodness(fit.device, fit.sigma_read, lista, rng=np.random.default_rng(1),
                       n_bins=4, n_copies=2, n_replicates=2)
    assert ks.median <= 0.1
    assert np.median(ks.baselines["state-blind"]) > 0.2


def test_enode_fit_and_ks(enode):
    """ENODe step table: up steps fall from about 7.7 uS to 0.8 uS across 298-978 uS, down
    steps grow from 0.7 uS to 1.9-2.6 uS above 900 uS; the symmetric point lies high in the
    range (700-880 uS); 150-250 states; steps per bin match (median KS <= 0.1); the report
    notes that cycle-to-cycle and device-to-device spread are not identifiable."""
    fit = fit_step_table(enode, n_boot=0, rng=np.random.default_rng(0))
    dev = fit.device
    assert dev.mean_magnitude(300 * US, 1) > 6 * US > 1.5 * US > dev.mean_magnitude(970 * US, 1)
    assert dev.mean_magnitude(300 * US, -1) < 1 * US < 1.5 * US < dev.mean_magnitude(920 * US, -1)
    assert 700 * US < fit.values["symmetric_point"] < 880 * US
    assert 150 < fit.values["n_states"] < 250
    assert any("not identifiable" in n for n in fit.notes)
    measured = PulsedDevice(rule=step_table_rule(enode), g_min=dev.g_min, g_max=dev.g_max)
    ks = table_goodness(dev, enode, measured, rng=np.random.default_rng(1), n_samples=300,
                        n_replicates=1)
    assert ks.median <= 0.1


def test_enode_parametric_fit(enode):
    """ENODe, power step forced: steps decline up and down (0 < gamma), up amplitude
    6-10 uS, down amplitude 2-5 uS; the held-out score is lower than the table's."""
    fit = fit_step_table(enode, n_boot=0, rng=np.random.default_rng(0))
    pw = fit_step_table(enode, form="power step", n_boot=5, rng=np.random.default_rng(0))
    assert 6 * US < pw.params["a_up"] < 10 * US and 2 * US < pw.params["a_down"] < 5 * US
    assert fit.held_out["lookup table"] >= fit.held_out["power step"]
    assert pw.n_boot == (5, 5) and all(math.isfinite(v) for v in pw.bands["a_up"])


def test_read_resolution():
    """Values on a 1 uS grid -> 1e-6 S; on a 10 nS grid -> 1e-8 S; continuous -> 0."""
    assert read_resolution(np.arange(1, 50) * 1e-6) == 1e-6
    assert read_resolution(np.arange(1, 50) * 1e-8) == pytest.approx(1e-8)
    assert read_resolution(np.random.default_rng(0).random(100) * 1e-6) == 0.0


def test_device_to_device_spread():
    """16 soft-bounds devices whose amplitudes carry a gain 1 + 0.2 z (z ~ N(0, 1), drawn
    here): the fitted device-to-device spread is the std of the drawn gains over their mean
    within 0.05, and the up/down imbalance (none generated) stays below 0.05."""
    from xbarlab.formats.pulse_tables import PulseRamps

    gains = 1 + 0.2 * np.random.default_rng(11).standard_normal(16)
    parts = [synthetic_ramps(law="soft bounds", seed=20 + k, n_ramps=4, n_pulses=60,
                             **TRUTH | {"a_up": 0.8 * US * gk, "a_down": 0.5 * US * gk})
             for k, gk in enumerate(gains)]
    off = np.cumsum([0] + [p.n_ramps for p in parts[:-1]])
    ramps = PulseRamps(g=np.concatenate([p.g for p in parts]),
                       pulse=np.concatenate([p.pulse for p in parts]),
                       ramp=np.concatenate([p.ramp + o for p, o in zip(parts, off, strict=True)]),
                       direction=np.concatenate([p.direction for p in parts]),
                       device=np.repeat(np.arange(16), [p.n_ramps for p in parts]))
    fit = fit_pulsed_ramps(ramps, form="soft bounds", n_boot=0, rng=np.random.default_rng(0))
    assert fit.values["d2d"] == pytest.approx(np.std(gains, ddof=1) / gains.mean(), abs=0.05)
    assert fit.values["d2d_asymmetry"] < 0.05


def test_shipped_pulse_example_is_reproducible_and_fits_its_device(tmp_path):
    """data/examples/make_pulse_example.py regenerates pulse_ramps.csv byte for byte, and the
    fit of the shipped file picks soft bounds and recovers the generating amplitudes inside
    their bootstrap bands and the symmetric point x* = a_up / (a_up + a_down) of the range
    within 1 %."""
    import importlib.util
    from pathlib import Path

    from xbarlab.formats import read_pulse_ramps

    here = Path(__file__).resolve().parents[2] / "data" / "examples"
    spec = importlib.util.spec_from_file_location("make_pulse_example",
                                                  here / "make_pulse_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.make(np.random.default_rng(mod.SEED))
    assert text.encode() == (here / "pulse_ramps.csv").read_bytes()
    fit = fit_pulsed_ramps(read_pulse_ramps(here / "pulse_ramps.csv"), n_boot=30,
                           rng=np.random.default_rng(0))
    assert fit.form is StepForm.SOFT_BOUNDS
    for name, true in (("a_up", mod.A_UP), ("a_down", mod.A_DOWN)):
        lo, hi = fit.bands[name]
        assert lo <= true <= hi, (name, lo, true, hi)
    x = mod.A_UP / (mod.A_UP + mod.A_DOWN)
    sym = mod.G_MIN + x * (mod.G_MAX - mod.G_MIN)
    assert fit.values["symmetric_point"] == pytest.approx(sym, rel=0.01)
