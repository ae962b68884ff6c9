"""nn part 2: device-derived noise files, analog evaluation (statistical vs circuit), bad input.

Truths used: the device model's own Monte Carlo of the same mapping (devices sampling of
the WeightMapping's targets, read back with the mapping's closed form; KS distance), the
effective-weight product of the same programmed conductances (ideal circuit), the tiled
layer's drift-compensation factor, and the crossbar IR-drop study (crossbar/study.py) for
the wire error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp
from torch import nn
from xbarlab import devices
from xbarlab.errors import ConfigError, DataFormatError

H, D, Y = 3600.0, 86400.0, 365.25 * 86400.0


@pytest.fixture(scope="module")
def pcm():
    return devices.load("pcm-ibm-2020")


@pytest.fixture(scope="module")
def pcm_file(pcm, tmp_path_factory):
    """PCM noise tables at 1 h and 1 d on a coarse grid, 2e5 pairs per (u, t)."""
    from xbarlab.nn.export import export_noise

    tab = export_noise(pcm, [H, D], np.random.default_rng(1),
                       w_grid=np.array([-1, -0.5, 0, 0.25, 0.5, 0.75, 1.0]), n_samples=200_000)
    path = tmp_path_factory.mktemp("noise") / "pcm.h5"
    tab.write(path)
    return path, tab


def _torch_draws(noise, u: float, n: int, seed: int) -> np.ndarray:
    """Δw/max|W| drawn on the torch side for weight u (the tensor's max|w| is 1)."""
    w = torch.full((n + 1,), u, dtype=torch.float64)
    w[0] = 1.0
    z = torch.randn(w.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return noise.perturbation(w, z)[1:].numpy()


def _mc_draws(device, u: float, t, n: int, seed: int, mapping=None) -> np.ndarray:
    """The same quantity from the device model directly, not through nn.export: targets of
    weight u from WeightMapping.to_conductances (max|W| = 1 alongside), each device sampled
    on its own (a fresh weight per draw), read back with the mapping's closed form
    (devices/mapping.py docstring): Σ_k F^-k (G+_k - G-_k) / (g_max - g_min), or
    (G - G_ref) / ((g_max - g_min) / 2) with a sampled reference device."""
    from xbarlab.devices.mapping import WeightMapping

    m = WeightMapping(g_max=25e-6) if mapping is None else mapping
    mw = m.to_conductances(np.array([[u, 1.0]]))
    rng = np.random.default_rng(seed)
    dg = m.g_max - m.g_min

    def read(g):
        return device.sample(np.full(n, g), t, rng)

    if m.scheme == "reference":
        return (read(mw.g_pos[0, 0, 0]) - read(0.5 * (m.g_min + m.g_max))) / (0.5 * dg) - u
    w = sum(m.significance ** -k * (read(mw.g_pos[k, 0, 0]) - read(mw.g_neg[k, 0, 0]))
            for k in range(m.n_pairs))
    return w / dg - u


@pytest.mark.parametrize("t", [H, D])
@pytest.mark.parametrize("u", [-0.5, 0.25, 0.75])
def test_export_load_sample_matches_device_monte_carlo(pcm, pcm_file, u, t):
    """Torch-side draws from the loaded file (1e5) vs a fresh devices/ Monte Carlo of the
    same differential pair (1e5), PCM at 1 h and 1 d, interior grid weights: KS <= 0.01."""
    from xbarlab.nn.noise_file import load_noise

    path, _ = pcm_file
    torch_side = _torch_draws(load_noise(path, time=t), u, 100_000, seed=int(t) + int(10 * u))
    mc = _mc_draws(pcm, u, t, 100_000, seed=7 + int(10 * u))
    assert ks_2samp(torch_side, mc).statistic <= 0.01


def test_mixture_of_times_matches_mixed_monte_carlo(pcm, pcm_file):
    """time=None on a 1 h + 1 d file draws from the equal mixture: KS <= 0.01 against
    5e4 Monte Carlo draws at 1 h pooled with 5e4 at 1 d (u = 0.5)."""
    from xbarlab.nn.noise_file import NoiseFile

    nf = NoiseFile.load(pcm_file[0])
    torch_side = _torch_draws(nf.noise(None), 0.5, 100_000, seed=3)
    mc = np.concatenate([_mc_draws(pcm, 0.5, H, 50_000, 11), _mc_draws(pcm, 0.5, D, 50_000, 12)])
    assert ks_2samp(torch_side, mc).statistic <= 0.01


_OTHER_MAPPINGS = {"reference": {"scheme": "reference", "g_min": 1e-6},
                   "two-pairs": {"n_pairs": 2, "significance": 4.0, "levels": 2}}


@pytest.fixture(scope="module", params=sorted(_OTHER_MAPPINGS))
def other_file(pcm, request, tmp_path_factory):
    """PCM tables at 1 h and 1 d for a non-default mapping (g_max = 25 µS), 2e5 draws."""
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.export import export_noise

    m = WeightMapping(g_max=25e-6, **_OTHER_MAPPINGS[request.param])
    tab = export_noise(pcm, [H, D], np.random.default_rng(3), mapping=m,
                       w_grid=np.array([-1, -0.5, 0, 0.25, 0.75, 1.0]), n_samples=200_000)
    path = tmp_path_factory.mktemp("noise") / f"{request.param}.h5"
    tab.write(path)
    return path, m


@pytest.mark.parametrize("t", [H, D])
def test_export_with_other_mapping_matches_its_monte_carlo(pcm, other_file, t):
    """Reference column (g_min = 1 µS, G_ref at 13 µS sampled too) and two pairs of
    significance 1/4 (levels 2): torch-side draws (1e5) of the exported file vs the devices/
    Monte Carlo of the same WeightMapping (1e5) at u = -0.5, 0.25, 0.75, 1 h and 1 d:
    KS <= 0.01; the file records the mapping (WeightMapping equal after reading)."""
    from xbarlab.nn.noise_file import NoiseFile

    path, m = other_file
    nf = NoiseFile.load(path)
    assert nf.tables.mapping == m and nf.describe()["mapping"] == m.to_dict()
    for j, u in enumerate((-0.5, 0.25, 0.75)):
        torch_side = _torch_draws(nf.noise(t), u, 100_000, seed=int(t) + j)
        mc = _mc_draws(pcm, u, t, 100_000, seed=20 + j, mapping=m)
        assert ks_2samp(torch_side, mc).statistic <= 0.01, (m.to_dict(), u, t)


def test_drift_factor_is_the_tiled_matrix_definition(pcm):
    """Global compensation at 1 y (21-point grid, 2e4 draws): the file's α = 1 / f equals
    1 / TiledMatrix.drift_factor (devices.mapping.global_drift_factor of the calibration
    outputs) of a one-input layer whose 10500 columns repeat the grid's weights on the same
    device and mapping, within 1 % (both estimate Σ|u| / E Σ|û|; sampling error ~0.2 %)."""
    from xbarlab.crossbar.tiling import TileConfig, TiledMatrix
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.export import export_noise

    m = WeightMapping(g_max=25e-6)
    grid = np.linspace(-1, 1, 21)
    tab = export_noise(pcm, [Y], np.random.default_rng(4), mapping=m, w_grid=grid,
                       n_samples=20_000, compensation="global")
    # 10 grid periods per tile, so every tile's max|W| is 1 as in the export
    tm = TiledMatrix(np.tile(grid, 500)[:, None], device=pcm, rng=np.random.default_rng(5),
                     mapping=m, tile=TileConfig(rows=2, cols=420), t=Y)
    f = tm.drift_factor(circuit=False)
    assert 1.3 < f and abs(tab.drift_factor[0] * f - 1) < 0.01, (tab.drift_factor, f)


def test_layout_1_file_reads_as_one_differential_pair(pcm_file, tmp_path):
    """A layout-1 file (no mapping attributes, layout_version 1) still loads: its mapping is
    the one-pair differential WeightMapping on the stored g_min..g_max with the stored
    scale, and the tables are unchanged."""
    import shutil

    import h5py
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.export import NoiseTables

    p = tmp_path / "v1.h5"
    shutil.copy(pcm_file[0], p)
    with h5py.File(p, "r+") as f:
        f.attrs["layout_version"] = 1
        for k in ("scheme", "scaling", "n_pairs", "levels"):
            del f["mapping"].attrs[k]
        del f["mapping/significance"], f["mapping/x_fs"]
    back = NoiseTables.read(p)
    assert back.mapping == WeightMapping(g_max=25e-6, g_min=0.0, scaling="tile")
    assert np.array_equal(back.quantiles, pcm_file[1].quantiles)


def test_file_round_trip_and_mean_shift(pcm_file):
    """The file reads back bit-identical tables; the stored mean shift at u = 1 equals the
    mean of the torch-side draws (1e5) within 4 standard errors, and is negative (drift
    lowers conductance: E[Δw] < 0 for w = max|W|)."""
    from xbarlab.nn.export import NoiseTables
    from xbarlab.nn.noise_file import load_noise

    path, tab = pcm_file
    back = NoiseTables.read(path)
    assert np.array_equal(back.quantiles, tab.quantiles) and np.array_equal(back.mean, tab.mean)
    assert back.weights_map_to == "targets" and back.conditioning == "target"
    i = int(np.argmax(tab.w_grid))
    for k, t in enumerate((H, D)):
        d = _torch_draws(load_noise(path, time=t), 1.0, 100_000, seed=5)
        se = tab.std[k, i] / np.sqrt(d.size)
        assert tab.mean[k, i] < 0
        assert abs(d.mean() - tab.mean[k, i]) < 4 * se + 1e-4


def test_global_compensation_restores_scale(pcm):
    """With global drift compensation the mean of Δw at u = ±1 after 1 y is within 0.03 of
    0 (uncompensated PCM drift shrinks it by > 0.4); α(1 y) < 0.65."""
    from xbarlab.nn.export import export_noise

    tab = export_noise(pcm, [Y], np.random.default_rng(2), w_grid=np.linspace(-1, 1, 5),
                       n_samples=20_000, compensation="global")
    raw = export_noise(pcm, [Y], np.random.default_rng(2), w_grid=np.linspace(-1, 1, 5),
                       n_samples=20_000)
    assert raw.mean[0, -1] < -0.4 and tab.drift_factor[0] < 0.65
    assert abs(tab.mean[0, -1]) < 0.03 and abs(tab.mean[0, 0]) < 0.03


# ----------------------------------------------------------------------- evaluation


def _small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 64, 40), nn.ReLU(), nn.Linear(40, 10)).double()


def _layer_inputs(net, x):
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, i[0]))
             for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    net(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("mapping", [None, {"scheme": "reference", "g_min": 1e-6},
                                     {"n_pairs": 2, "significance": 4.0, "scaling": "column"}])
def test_statistical_equals_ideal_circuit_in_every_layer(pcm, mapping):
    """Same programmed chip (seed, cell indexing), float64, zero wire resistance, ideal
    DAC/ADC: every layer's circuit output equals the statistical (effective-weight) output
    to 1e-9 relative, with and without drift compensation, on 24x24 tiles at 1 d; for the
    tile's default differential mapping, a reference-column mapping and two pairs of
    significance 1/4 (devices.mapping.WeightMapping, g_max = 25 uS)."""
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.devices.mapping import WeightMapping

    if mapping is not None:
        mapping = WeightMapping(g_max=25e-6, **mapping)
    from xbarlab.nn.analog_layers import (
        circuit_model,
        input_ranges,
        program_network,
        statistical_model,
    )

    torch.set_grad_enabled(False)
    try:
        _check_ideal(pcm, TileConfig, circuit_model, input_ranges, program_network,
                     statistical_model, mapping)
    finally:
        torch.set_grad_enabled(True)


def _check_ideal(pcm, TileConfig, circuit_model, input_ranges, program_network,
                 statistical_model, mapping):
    net = _small_net()
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    layers = program_network(net, pcm, np.random.default_rng(4), tile=TileConfig(rows=24, cols=24),
                             x_max=input_ranges(net, x), t=D, mapping=mapping)
    for comp in (False, True):
        fs = {pl.name: pl.drift_factor(circuit=False) for pl in layers} if comp else None
        fc = {pl.name: pl.drift_factor(circuit=True) for pl in layers} if comp else None
        if comp:
            assert all(abs(fs[k] / fc[k] - 1) < 1e-12 for k in fs)
        s = statistical_model(net, layers, factors=fs, dtype=torch.float64)
        c = circuit_model(net, layers, factors=fc)
        ins = _layer_inputs(s, x)
        smods, cmods = dict(s.named_modules()), dict(c.named_modules())
        for pl in layers:
            a = smods[pl.name](ins[pl.name]).detach()
            b = cmods[pl.name](ins[pl.name]).detach()
            assert float((a - b).abs().max() / a.abs().max()) < 1e-9, pl.name
        assert float((s(x) - c(x)).abs().max() / s(x).abs().max()) < 1e-9
    # the programmed chip is not the digital network
    assert float((s(x) - net(x)).abs().max()) > 1e-3


@pytest.mark.parametrize("r_wire", [1.0, 3.0])
def test_circuit_ir_drop_matches_crossbar_study(pcm, r_wire):
    """A 64-input, 32-output Linear layer (weights U(-1, 1), no bias) on one 64x64 tile,
    inputs U(0, 1): circuit-mode relative output error against the statistical output of the
    same read conductances equals the crossbar IR-drop study's ``ir_drop`` for n = 64 and
    the same wire resistance within 10 %."""
    from xbarlab.crossbar.study import StudyConfig, run_study
    from xbarlab.crossbar.tiling import TileConfig
    from xbarlab.nn.analog_layers import circuit_model, program_network, statistical_model

    g = torch.Generator().manual_seed(0)
    lin = nn.Linear(64, 32, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.rand(32, 64, generator=g, dtype=torch.float64) * 2 - 1)
    net = nn.Sequential(lin)
    x = torch.rand(32, 64, generator=g, dtype=torch.float64)
    layers = program_network(net, pcm, np.random.default_rng(5),
                             tile=TileConfig(rows=64, cols=64, r_row=r_wire, r_col=r_wire),
                             x_max={"0": 1.0}, t=H)
    ys = statistical_model(net, layers, dtype=torch.float64)(x).detach().numpy()
    yc = circuit_model(net, layers)(x).detach().numpy()
    ours = np.linalg.norm(yc - ys) / np.linalg.norm(ys)
    study = run_study(pcm, StudyConfig(sizes=(64,), r_wire=(r_wire,), vectors=32, t=H),
                      progress=False)[0]["ir_drop"]
    assert ours > 0
    assert abs(ours / study - 1) <= 0.10, (ours, study)


def test_evaluate_over_time_structure_and_drift(pcm):
    """Statistical evaluation of a digital-perfect toy task: N = 3 programmings at 1 s and
    1 y, both compensations: entries carry mean = mean of the listed accuracies, std their
    population std, n_programmings = 3; global drift factors at 1 y exceed 1.3 (PCM drift
    ~ 0.6 conductance retained) and at 1 s lie within 0.1 of 1."""
    from xbarlab.nn.evaluate import SCHEMA, evaluate_over_time

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    ev = evaluate_over_time(net, x, y, pcm, [1.0, Y], np.random.default_rng(0), programmings=3)
    assert ev["schema"] == SCHEMA and ev["clean_accuracy"] == 1.0
    assert ev["settings"]["mapping"] is None
    assert len(ev["results"]) == 4
    for e in ev["results"]:
        a = np.asarray(e["accuracies"])
        assert e["n_programmings"] == 3 and a.size == 3
        assert e["accuracy_mean"] == pytest.approx(a.mean()) and e["accuracy_std"] == \
            pytest.approx(a.std())
        if e["compensation"] == "global":
            f = np.array(list(e["drift_factors"].values()))
            assert np.all(f > 1.3) if e["time_s"] == Y else np.all(abs(f - 1) < 0.1)


def test_evaluate_with_reference_mapping_records_it(pcm):
    """evaluate_over_time(mapping=WeightMapping(scheme='reference', ...)) on the toy task of
    the previous test (2 programmings, 1 s, no compensation): settings['mapping'] reads back
    to the same WeightMapping (to_dict/from_dict); one entry of 2 accuracies in [0, 1]."""
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.evaluate import evaluate_over_time

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.rand(200, 8, generator=g)
    y = net(x).argmax(1).detach()
    m = WeightMapping(g_max=25e-6, g_min=1e-6, scheme="reference")
    ev = evaluate_over_time(net, x, y, pcm, [1.0], np.random.default_rng(0), programmings=2,
                            compensations=("none",), mapping=m)
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


# ----------------------------------------------------------------------- bad input


def test_newer_format_or_layout_version_is_refused(pcm_file, tmp_path):
    """A noise file whose format_version (or layout_version) is newer than this code reads
    raises DataFormatError naming the version."""
    import shutil

    import h5py
    from xbarlab.nn.noise_file import load_noise

    for attr in ("format_version", "layout_version"):
        p = tmp_path / f"{attr}.h5"
        shutil.copy(pcm_file[0], p)
        with h5py.File(p, "r+") as f:
            f.attrs[attr] = 99
        with pytest.raises(DataFormatError, match="99"):
            load_noise(p)


def test_range_and_time_errors(pcm):
    """g_max beyond the preset's 25 µS range, a time beyond NeuRRAM's 2-day validity, and a
    time not stored in a noise file raise ConfigError naming the bound."""
    from xbarlab.nn.evaluate import evaluate_over_time
    from xbarlab.nn.export import export_noise

    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="does not cover the mapping"):
        export_noise(pcm, [H], rng, g_max=30e-6, n_samples=1000)
    neu = devices.load("rram-neurram-2022")
    with pytest.raises(ConfigError, match="valid range"):
        export_noise(neu, [H, Y], rng, n_samples=1000)
    with pytest.raises(ConfigError, match="valid range"):
        evaluate_over_time(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2),
                           torch.zeros(1, dtype=torch.long), neu, [Y], rng)
    tab = export_noise(pcm, [H], rng, w_grid=np.linspace(-1, 1, 3), n_samples=1000)
    from xbarlab.nn.noise_file import NoiseFile

    with pytest.raises(ConfigError, match="not in the noise file"):
        NoiseFile(tab).noise("1d")


def test_cli_export_noise_and_evaluate(tmp_path):
    """`xbarlab export-noise` writes a file the torch side loads (2 times, 11-point grid);
    `xbarlab evaluate` on a saved digits MLP writes evaluation.json (schema, 2 times x 2
    compensations, accuracies in [0, 1]) and the PNG; a second run without --force fails."""
    from xbarlab.cli import main
    from xbarlab.nn.data import build_model, model_config
    from xbarlab.nn.noise_file import NoiseFile

    out = tmp_path / "n.h5"
    assert main(["export-noise", "pcm-ibm-2020", "--time", "1h", "--time", "1d", "--grid", "11",
                 "--samples", "2000", "-o", str(out)]) == 0
    nf = NoiseFile.load(out)
    assert list(nf.times) == [H, D] and nf.tables.w_grid.size == 11
    cfg = model_config("mlp", "digits", (1, 8, 8))
    torch.manual_seed(0)
    mdir = tmp_path / "m"
    mdir.mkdir()
    torch.save({"state_dict": build_model(cfg).state_dict(), "config": cfg}, mdir / "model.pt")
    ev_dir = tmp_path / "ev"
    args = ["evaluate", str(mdir), "--device-model", "pcm-ibm-2020", "--times", "1s,1d",
            "--programmings", "2", "-o", str(ev_dir)]
    assert main(args) == 0
    ev = json.loads((ev_dir / "evaluation.json").read_text())
    assert ev["schema"] == "xbarlab-evaluation/1" and len(ev["results"]) == 4
    assert all(0 <= e["accuracy_mean"] <= 1 for e in ev["results"])
    assert (ev_dir / "accuracy_vs_time.png").stat().st_size > 1000
    assert main(args) == 2


@pytest.mark.slow
def test_hasgd_against_exported_pcm_noise_beats_sgd_on_digits(tmp_path):
    """The README experiment (digits MLP, 15 epochs, seed 0; IBM PCM mapped to 0-2.5 µS,
    noise exported at 1 s, 1 h, 1 d, 1 y; HA-SGD L = 4 against their mixture): over 10
    programmings, HA-SGD's mean accuracy at 1 d and 1 y exceeds plain SGD's, with and
    without global drift compensation (statistical mode). Takes ~10 min on 2 cores."""
    from xbarlab.nn.experiments_part2 import run_pcm

    res = run_pcm(out=tmp_path, epochs=15, circuit_samples=0, progress=False)
    acc = {(m, e["compensation"], e["time_s"]): e["accuracy_mean"]
           for m, ev in res["evaluations"].items() for e in ev["results"]}
    for comp in ("none", "global"):
        for t in (D, Y):
            assert acc[("HA-SGD", comp, t)] > acc[("SGD", comp, t)], (comp, t)


def test_train_cli_with_noise_file_and_train_time(pcm_file, tmp_path):
    """`xbarlab train --train-noise NOISE.h5 --train-time 1d` (digits MLP, 1 epoch, L = 1)
    writes metrics naming the file as noise_source, with the quantile noise of the 1 d
    table; an unstored time fails with exit code 2, as does --train-time with a σ."""
    from xbarlab.cli import main

    path = str(pcm_file[0])
    base = ["train", "--dataset", "digits", "--model", "mlp", "--samples", "1", "--epochs", "1",
            "--seed", "0", "--eval-noise", "1", "--eval-draws", "1"]
    assert main(base + ["--train-noise", path, "--train-time", "1d",
                        "--out", str(tmp_path / "a")]) == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["noise_source"] == path and m["train_noise"]["kind"] == "quantile"
    assert "t=86400s" in m["train_noise"]["source"]
    assert main(base + ["--train-noise", path, "--train-time", "1y",
                        "--out", str(tmp_path / "b")]) == 2
    assert main(base + ["--train-noise", "0.1", "--train-time", "1d",
                        "--out", str(tmp_path / "c")]) == 2
