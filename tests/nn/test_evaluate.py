"""Analog evaluation over time: structure, mapping, bootstrap models, settings, streams."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from _toy import Y
from torch import nn
from xbarlab import devices
from xbarlab.errors import ConfigError


def test_evaluate_structure_and_drift(pcm):
    """Statistical evaluation of a digital-perfect toy task: N = 3 programmings at 1 s and
    1 y, both compensations: entries carry mean = mean of the listed accuracies, std their
    population std, the 95 % interval mean ± t_{0.975, 2} s / sqrt(3) (t = 4.3026527 from
    the closed form of the 2-dof quantile, s the sample std), n_programmings = 3; global
    drift factors at 1 y exceed 1.3 (PCM drift ~ 0.6 conductance retained) and at 1 s lie
    within 0.1 of 1."""
    from xbarlab.devices.mapping import mapping_for
    from xbarlab.nn.evaluate import SCHEMA, EvaluationSettings, evaluate

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    ev = evaluate(net, x, y, pcm, EvaluationSettings(times=(1.0, Y), programmings=3),
                  np.random.default_rng(0))
    assert ev["schema"] == SCHEMA and ev["clean_accuracy"] == 1.0
    assert ev["settings"]["mapping"] == mapping_for(pcm).to_dict()  # the preset's range
    assert len(ev["results"]) == 4
    for e in ev["results"]:
        a = np.asarray(e["accuracies"])
        assert e["n_programmings"] == 3 and a.size == 3
        assert e["accuracy_mean"] == pytest.approx(a.mean()) and e["accuracy_std"] == \
            pytest.approx(a.std())
        # t_{0.975} with 2 dof in closed form: (2p - 1) sqrt(2 / (4 p (1 - p))), p = 0.975
        half = 0.95 * math.sqrt(2 / 0.0975) * a.std(ddof=1) / math.sqrt(3)
        assert e["accuracy_ci95"] == pytest.approx([a.mean() - half, a.mean() + half],
                                                   abs=1e-12)
        if e["compensation"] == "global":
            f = np.array(list(e["drift_factors"].values()))
            assert np.all(f > 1.3) if e["time_s"] == Y else np.all(abs(f - 1) < 0.1)


def test_first_read_reference_and_column_compensation(pcm):
    """The toy task of the previous test, 2 programmings read at 1 s and 1 y, all three
    compensations against the first read: settings record compensation_reference
    'first-read'; at 1 s (the first read) both global and column factors are exactly 1, so
    their accuracies equal the uncompensated ones; at 1 y the mean column factor exceeds
    1.3 like the global one."""
    from xbarlab.devices.mapping import Compensation
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    st = EvaluationSettings(times=(1.0, Y), programmings=2, compensations=tuple(Compensation),
                            compensation_reference="first-read")
    ev = evaluate(net, x, y, pcm, st, np.random.default_rng(0))
    assert ev["settings"]["compensation_reference"] == "first-read"
    r = {(e["compensation"], e["time_s"]): e for e in ev["results"]}
    assert sorted({c for c, _ in r}) == ["column", "global", "none"]
    for c in ("global", "column"):
        assert set(r[c, 1.0]["drift_factors"].values()) == {1.0}
        assert r[c, 1.0]["accuracies"] == r["none", 1.0]["accuracies"]
        assert all(v > 1.3 for v in r[c, Y]["drift_factors"].values())


def test_evaluate_with_reference_mapping_records_it(pcm):
    """evaluate(settings with mapping=WeightMapping(scheme='reference', ...)) on the toy task of
    the previous test (2 programmings, 1 s, no compensation): settings['mapping'] reads back
    to the same WeightMapping (to_dict/from_dict); one entry of 2 accuracies in [0, 1]."""
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    m = WeightMapping(g_max=25e-6, g_min=1e-6, scheme="reference")
    st = EvaluationSettings(times=(1.0,), programmings=2, compensations=("none",), mapping=m)
    ev = evaluate(net, x, y, pcm, st, np.random.default_rng(0))
    assert WeightMapping.from_dict(ev["settings"]["mapping"]) == m
    (e,) = ev["results"]
    assert e["n_programmings"] == 2 and all(0 <= a <= 1 for a in e["accuracies"])


def test_bootstrap_models_replace_curves_by_replicates():
    """A model tree whose curve has bootstrap replicates [[1, 2], [3, 4]]: replicate i of
    bootstrap_models has value = row i; asking for more replicates than stored fails."""
    from xbarlab.formats import Quantity
    from xbarlab.nn.evaluate import bootstrap_models

    class Toy:
        conditioning = "target"

        def __init__(self, tree):
            self.tree = tree

        def to_tree(self):
            return self.tree

        @classmethod
        def from_tree(cls, tree):
            return cls(tree)

    toy = Toy({"prog": {"spread": {"value": Quantity(np.array([0.0, 0.0]), "S"),
                                   "bootstrap": Quantity(np.array([[1.0, 2], [3, 4]]), "S")}}})
    ms = bootstrap_models(toy, 2)
    assert [list(m.tree["prog"]["spread"]["value"].value) for m in ms] == [[1, 2], [3, 4]]
    with pytest.raises(ConfigError, match="bootstrap replicates"):
        bootstrap_models(toy, 3)
    # a relaxation table: quantiles [-1, 0, 1] at p = [0, 0.5, 1] (mean 0, sd sqrt(0.5));
    # replicate with mean 2 and sd 2 sqrt(0.5) -> quantiles [0, 2, 4]
    rel = Toy({"drift": {"quantiles": Quantity(np.array([[[-1.0, 0, 1]]]), "S"),
                         "p": Quantity(np.array([0, 0.5, 1]), "1"),
                         "bootstrap_mean": Quantity(np.array([[[2.0]]]), "S"),
                         "bootstrap_std": Quantity(np.array([[[2 * np.sqrt(0.5)]]]), "S")}})
    (m,) = bootstrap_models(rel, 1)
    assert np.allclose(m.tree["drift"]["quantiles"].value, [[[0, 2, 4]]])


def test_time_outside_the_model_validity_is_refused():
    """A read time beyond NeuRRAM's 2-day validity raises ConfigError naming the range."""
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    neu = devices.load("rram-neurram-2022")
    with pytest.raises(ConfigError, match="valid range"):
        evaluate(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2),
                 torch.zeros(1, dtype=torch.long), neu, EvaluationSettings(times=(Y,)),
                 np.random.default_rng(0))


@pytest.mark.parametrize("kw, needle", [
    ({"times": ()}, "times"),
    ({"times": (-1.0,)}, "times"),
    ({"times": (1.0,), "programmings": 0}, "programmings"),
    ({"times": (1.0,), "modes": ("fast",)}, "modes"),
    ({"times": (1.0,), "compensations": ("local",)}, "compensations"),
    ({"times": (1.0,), "compensation_reference": "t0"}, "compensation_reference"),
    ({"times": (1.0,), "modes": ("circuit",), "circuit_programmings": 0}, "circuit"),
    ({"times": (1.0,), "bootstrap": -1}, "bootstrap"),
    ({"times": (1.0,), "mapping": "differential"}, "mapping"),
])
def test_bad_settings_name_the_parameter(kw, needle):
    """EvaluationSettings refuses empty or negative times, zero programmings, unknown modes or
    compensations, circuit mode without circuit chips, a negative bootstrap and a mapping that
    is not a WeightMapping, naming the parameter (not a command-line flag)."""
    from xbarlab.nn.evaluate import EvaluationSettings

    with pytest.raises(ConfigError, match=needle) as e:
        EvaluationSettings(**kw)
    assert "--" not in str(e.value)


def test_chip_streams_depend_on_the_programming_index(pcm):
    """The fitted model's programming n uses the rng's child n: with the same seed, 2
    programmings reproduce the first 2 of 3 exactly (so runs with more chips extend runs with
    fewer)."""
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    acc = [evaluate(net, x, y, pcm, EvaluationSettings(times=(Y,), programmings=n,
                                                       compensations=("none",)),
                    np.random.default_rng(5))["results"][0]["accuracies"] for n in (2, 3)]
    assert acc[1][:2] == acc[0]


def test_t_interval_matches_the_student_t_formula():
    """t_interval(x) = mean ± t_{0.975, n-1} s / sqrt(n), s the sample std: for x = 1..5
    (mean 3, s = sqrt(2.5)) with t_{0.975, 4} = 2.776445105 (tables) the interval is
    3 ± 1.963243; 90 % uses t_{0.95, 4} = 2.131846786; one value has no interval;
    empty input and a level outside (0, 1) are refused naming the parameter."""
    from xbarlab.nn.evaluate import t_interval

    m, lo, hi = t_interval([1, 2, 3, 4, 5])
    half = 2.776445105 * math.sqrt(2.5) / math.sqrt(5)
    assert m == 3.0 and lo == pytest.approx(3 - half, rel=1e-9)
    assert hi == pytest.approx(3 + half, rel=1e-9)
    _, lo90, _ = t_interval([1, 2, 3, 4, 5], level=0.9)
    assert lo90 == pytest.approx(3 - 2.131846786 * math.sqrt(0.5), rel=1e-9)
    m1, lo1, hi1 = t_interval([0.7])
    assert m1 == 0.7 and math.isnan(lo1) and math.isnan(hi1)
    with pytest.raises(ConfigError, match="values"):
        t_interval([])
    with pytest.raises(ConfigError, match="level"):
        t_interval([1, 2], level=1.5)


def test_workers_give_the_numbers_of_this_process(pcm):
    """Chips programmed and read on 2 worker processes (statistical and circuit mode, a
    6-bit ADC per tile and a 3-bit variant, as ``xbarlab ppa --workers`` evaluates): the
    same accuracies and drift factors, bit for bit, as every chip in this process (about
    5 s, most of it starting the local cluster)."""
    from xbarlab.crossbar.converters import ADC
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(100, 8, generator=g)
    y = net(x).argmax(1).detach()
    st = EvaluationSettings(times=(1.0, Y), programmings=4, modes=("statistical", "circuit"),
                            circuit_programmings=2, tile=TileConfig(rows=8, cols=8,
                                                                    r_row=1.0, r_col=1.0),
                            adc=ADC(bits=6, range_mode="max-possible"))
    variants = {"3": ADC(bits=3, range_mode="max-possible")}
    here, there = (evaluate(net, x, y, pcm, st, np.random.default_rng(3), workers=w,
                            adc_variants=variants) for w in (None, 2))
    assert any(e.get("adc_variant") == "3" for e in here["results"])
    assert [e["accuracies"] for e in here["results"]] == \
        [e["accuracies"] for e in there["results"]]
    assert [e.get("drift_factors") for e in here["results"]] == \
        [e.get("drift_factors") for e in there["results"]]


def test_variants_are_scored_on_the_same_chips_with_their_hooks(pcm):
    """An ADC variant (attach_adc, 2 bits, on a copy) of a toy network: on an ideal device
    its statistical accuracy is the accuracy of the ADC'd network run directly (its forward
    hooks survive the analog copy), below the model's 1.0; on PCM its accuracies equal those
    of evaluating the ADC'd network alone with the same seed (the same chips), and the
    model's own results are those of an evaluation without variants (bias-free layers: the
    chips then do not depend on the DAC full scales, which come from the model)."""
    import copy

    from xbarlab.devices import IdealDevice
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate
    from xbarlab.nn.quant import attach_adc, calibrate_adc_ranges

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    adc = attach_adc(copy.deepcopy(net), bits=2, ranges=calibrate_adc_ranges(net, [x]))
    direct = float((adc(x).argmax(1) == y).double().mean())
    assert direct < 1.0
    st = EvaluationSettings(times=(1.0,), programmings=1, compensations=("none",),
                            mapping=WeightMapping(g_max=1e-5))
    ev = evaluate(net, x, y, IdealDevice(), st, np.random.default_rng(0),
                  variants={"adc2": adc})
    (base,), (var,) = ([e for e in ev["results"] if e.get("variant") == k]
                       for k in (None, "adc2"))
    assert base["accuracies"] == [1.0] and var["accuracies"] == [direct]
    assert ev["variant_clean_accuracy"] == {"adc2": direct}
    st = EvaluationSettings(times=(Y,), programmings=2, compensations=("global",))
    both = evaluate(net, x, y, pcm, st, np.random.default_rng(3), variants={"adc2": adc})
    alone = [evaluate(m, x, y, pcm, st, np.random.default_rng(3))["results"]
             for m in (adc, net)]
    assert [e["accuracies"] for e in both["results"] if e.get("variant")] == \
        [e["accuracies"] for e in alone[0]]
    assert [e["accuracies"] for e in both["results"] if not e.get("variant")] == \
        [e["accuracies"] for e in alone[1]]
    with pytest.raises(ConfigError, match="variant 'x'"):
        evaluate(net, x, y, pcm, st, np.random.default_rng(3), variants={"x": nn.Linear(8, 3)})


@pytest.mark.slow
def test_adc_variants_equal_evaluations_with_that_adc(pcm):
    """Circuit mode on 8 x 8 tiles with 1 Ohm wires, ADCs of 3 and 6 bits as variants of a
    4-bit one, 2 programmings read at 1 s and 1 y, no, global and column compensation: each
    variant's accuracies and drift factors equal, bit for bit, those of an evaluation with
    that ADC as settings.adc (same seed), the 4-bit results those of an evaluation without
    variants; a noisy variant, or variants without circuit mode, are refused."""
    from xbarlab.crossbar.converters import ADC
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.rand(60, 8, generator=g)
    y = net(x).argmax(1).detach()
    adcs = {k: ADC(bits=k, range_mode="max-possible") for k in (3, 4, 6)}
    st = EvaluationSettings(times=(1.0, Y), programmings=2, modes=("circuit",),
                            compensations=("none", "global", "column"),
                            circuit_programmings=2, adc=adcs[4],
                            tile=TileConfig(rows=8, cols=8, r_row=1.0, r_col=1.0))

    def circuit(ev, name=None):
        return [(e["accuracies"], e.get("drift_factors")) for e in ev["results"]
                if e["mode"] == "circuit" and e.get("adc_variant") == name]

    both = evaluate(net, x, y, pcm, st, np.random.default_rng(3),
                    adc_variants={"3": adcs[3], "6": adcs[6]})
    assert both["adc_variants"]["6"] == adcs[6].to_dict()
    for k in (3, 4, 6):
        alone = evaluate(net, x, y, pcm, dataclasses.replace(st, adc=adcs[k]),
                         np.random.default_rng(3))
        assert circuit(both, None if k == 4 else str(k)) == circuit(alone)
    assert circuit(both, "3") != circuit(both, "6")
    with pytest.raises(ConfigError, match="draw nothing"):
        evaluate(net, x, y, pcm, st, np.random.default_rng(3),
                 adc_variants={"n": ADC(bits=4, noise_std=1e-9)})
    with pytest.raises(ConfigError, match="circuit mode"):
        evaluate(net, x, y, pcm, dataclasses.replace(st, modes=("statistical",)),
                 np.random.default_rng(3), adc_variants={"3": adcs[3]})


def test_adc_variants_ideal_matches_no_adc_and_two_bits_do_not(pcm):
    """Circuit mode on 8 x 8 tiles with 1 Ohm wires (exact grid solves), 2 programmings read
    at 1 s and 1 y, no and global compensation, settings.adc ideal (None): an ideal ADC
    variant must not change anything, so its accuracies and drift factors equal the model's
    bit for bit on the same chips and reads; a 2-bit ADC (the coarsest signed one: codes -1,
    0 and 1 of each column's partial sum over the whole possible range) loses most of the
    accuracy. Every variant's result rows carry ``adc_variant``, the model's do not."""
    from xbarlab.crossbar.converters import ADC
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.evaluate import EvaluationSettings, evaluate

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.rand(60, 8, generator=g)
    y = net(x).argmax(1).detach()
    st = EvaluationSettings(times=(1.0, Y), programmings=2, modes=("circuit",),
                            compensations=("none", "global"), circuit_programmings=2,
                            tile=TileConfig(rows=8, cols=8, r_row=1.0, r_col=1.0))
    variants = {"ideal": ADC(bits=None), "2": ADC(bits=2, range_mode="max-possible")}
    ev = evaluate(net, x, y, pcm, st, np.random.default_rng(5), adc_variants=variants)
    rows = {(e.get("adc_variant"), e["compensation"], e["time_s"]): e
            for e in ev["results"] if e["mode"] == "circuit"}
    assert len(rows) == len(ev["results"]) == 3 * 2 * 2
    assert {k[0] for k in rows} == {None, "ideal", "2"}
    assert all(("adc_variant" in e) == (k[0] is not None) for k, e in rows.items())
    assert ev["adc_variants"] == {k: a.to_dict() for k, a in variants.items()}
    for (name, comp, t), e in rows.items():
        base = rows[None, comp, t]
        if name == "ideal":
            assert e["accuracies"] == base["accuracies"]
            assert e.get("drift_factors") == base.get("drift_factors")
        if name == "2":
            assert e["accuracy_mean"] < base["accuracy_mean"] - 0.2
    assert min(e["accuracy_mean"] for k, e in rows.items() if k[0] is None) > 0.8
