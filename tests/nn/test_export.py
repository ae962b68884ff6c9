"""Device-derived noise files: export, sampling against the device model's own Monte Carlo,
file layout and compensation.

Truths used: the device model's own Monte Carlo of the same mapping (devices sampling of the
WeightMapping's targets, read back with the mapping's closed form; KS distance) and the tiled
layer's drift-compensation factor."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _toy import D, H, Y, _torch_draws
from scipy.stats import ks_2samp
from xbarlab import devices
from xbarlab.errors import ConfigError


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


def test_range_and_time_errors(pcm):
    """g_max beyond the preset's 25 µS range and a time beyond NeuRRAM's 2-day validity raise
    ConfigError naming the bound."""
    from xbarlab.devices.mapping import WeightMapping
    from xbarlab.nn.export import export_noise

    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="does not cover the mapping"):
        export_noise(pcm, [H], rng, mapping=WeightMapping(g_max=30e-6), n_samples=1000)
    neu = devices.load("rram-neurram-2022")
    with pytest.raises(ConfigError, match="valid range"):
        export_noise(neu, [H, Y], rng, n_samples=1000)
