"""Training noise per tile (xbarlab.nn.tile_noise, HASGD(scaling=TILE)) against hand-made truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from xbarlab.crossbar.tiling import TileConfig, map_tiles
from xbarlab.devices.mapping import Scaling, WeightMapping
from xbarlab.errors import ConfigError
from xbarlab.nn import NoiseScaling
from xbarlab.nn.hasgd import HASGD
from xbarlab.nn.noise import GaussianNoise
from xbarlab.nn.tile_noise import tile_scales

G_MIN, G_MAX = 1e-6, 21e-6
# a tile of 4 rows x 4 columns of differential pairs: 4 inputs x 2 outputs per tile
TILE = TileConfig(rows=4, cols=4)
# W (3 outputs, 5 inputs): the 6 rows of W_aug (5 inputs + 1 bias row) fall into row tiles
# [0, 4) and [4, 6), the 3 outputs into column tiles [0, 2) and [2, 3)
W = torch.tensor([[0.1, -0.2, 0.3, 0.05, 0.5],
                  [-0.4, 0.1, 0.0, 0.2, -0.1],
                  [0.8, 0.1, -0.1, 0.0, 0.2]], dtype=torch.float64)
B = torch.tensor([0.2, -0.3, 0.1], dtype=torch.float64)


def _hand_scales(per_column: bool):
    """The magnitudes by hand: s = max|b| / max|W| = 0.3 / 0.8 (<= x_fs = 1, one bias row of
    b / s); tiles of W_aug = [W.T; b / s]."""
    s = 0.3 / 0.8
    aug = np.vstack([W.numpy().T, B.numpy() / s])  # (6, 3)
    M = np.empty_like(aug)
    for r0, r1 in ((0, 4), (4, 6)):
        for c0, c1 in ((0, 2), (2, 3)):
            blk = np.abs(aug[r0:r1, c0:c1])
            M[r0:r1, c0:c1] = blk.max(axis=0) if per_column else blk.max()
    return M, s


@pytest.mark.parametrize("scaling", [Scaling.TILE, Scaling.COLUMN])
def test_tile_scales_equal_the_hand_computed_tile_maxima_and_the_evaluations_w_max(scaling):
    """Each weight's magnitude is its tile's (or tile column's) max |W_aug|, computed by hand,
    and equals the w_max that crossbar.tiling.map_tiles maps to g_max."""
    mapping = WeightMapping(g_max=G_MAX, g_min=G_MIN, scaling=scaling)
    sc = tile_scales(W, B, mapping, TILE)
    M, s = _hand_scales(scaling is Scaling.COLUMN)
    assert sc.n_bias_rows == 1 and sc.bias_drive == pytest.approx(s, rel=1e-15)
    np.testing.assert_allclose(sc.weight.numpy(), M[:5].T, rtol=1e-15)
    np.testing.assert_allclose(sc.bias_rows.numpy(), M[5:], rtol=1e-15)
    aug = np.vstack([W.numpy().T, B.numpy() / s])
    for (r0, r1, c0, c1), mw in map_tiles(aug, mapping, 4, 2):
        np.testing.assert_allclose(M[r0:r1, c0:c1], np.broadcast_to(mw.w_max, (r1 - r0, c1 - c0)),
                                   rtol=1e-15)


def _draws(model, noise, mapping, tile, L, seed=1):
    trainer = HASGD(model, torch.optim.SGD(model.parameters(), lr=0.1), noise, samples=L,
                    generator=torch.Generator().manual_seed(seed), scaling=NoiseScaling.TILE,
                    mapping=mapping, tile=tile)
    return trainer.draw_perturbations()


def test_per_tile_noise_std_is_the_device_sigma_over_the_tiles_alpha():
    """A device with conductance noise σ_g on each device of a pair: a weight's noise std is
    sqrt(2) σ_g / α_tile, α_tile = (g_max - g_min) / (tile's max |W_aug|) (by hand), i.e.
    GaussianNoise(σ = sqrt(2) σ_g / (g_max - g_min)) per tile; the bias (one row driven at s)
    s times its row's std. 20,000 draws: each element's std within 4 %."""
    sigma_g = 0.5e-6
    lin = nn.Linear(5, 3).double()
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(B)
    mapping = WeightMapping(g_max=G_MAX, g_min=G_MIN)
    d = _draws(lin, GaussianNoise(math.sqrt(2) * sigma_g / (G_MAX - G_MIN)), mapping, TILE,
               20_000)
    M, s = _hand_scales(False)
    alpha = (G_MAX - G_MIN) / M
    want = math.sqrt(2) * sigma_g / alpha
    np.testing.assert_allclose(d["weight"].std(0).numpy(), want[:5].T, rtol=0.04)
    np.testing.assert_allclose(d["bias"].std(0).numpy(), s * want[5], rtol=0.04)
    assert abs(float(d["weight"].mean())) < 0.01 * float(want.max())


def test_bias_on_several_rows_sums_their_draws():
    """max|b| / max|W| = 2.5 > x_fs = 1: the bias sits on n_b = 3 rows of b / 3 driven at 1
    (by hand), all in the second row tile with W's last input; its noise std is
    sqrt(3) · σ · (that tile's max |W_aug| per column tile), by hand."""
    lin = nn.Linear(5, 3).double()
    b = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(W)
        lin.bias.copy_(b)
    mapping = WeightMapping(g_max=G_MAX, g_min=G_MIN)
    sc = tile_scales(lin.weight, lin.bias, mapping, TILE)
    assert (sc.n_bias_rows, sc.bias_drive) == (3, 1.0)
    # W_aug rows 4..7: W's input 4 (0.5, -0.1, 0.2) and three rows of b / 3 (wider than a
    # tile: rows [4, 8) hold input 4 and the 3 bias rows); column tiles [0, 2), [2, 3)
    m01 = max(0.5, 0.1, 2.0 / 3, 1.0 / 3)
    m2 = max(0.2, 0.5 / 3)
    sigma = 0.05
    d = _draws(lin, GaussianNoise(sigma), mapping, TILE, 20_000)
    want = math.sqrt(3) * sigma * np.array([m01, m01, m2])
    np.testing.assert_allclose(d["bias"].std(0).numpy(), want, rtol=0.04)


def test_one_tile_without_bias_draws_what_layer_scaling_draws():
    """A layer that fills one tile and has no bias: TILE scaling gives the LAYER draws, bit
    for bit (the same normals, the same magnitude max|W|)."""
    lin = nn.Linear(5, 3, bias=False).double()
    mapping = WeightMapping(g_max=G_MAX, g_min=G_MIN)
    tile = TileConfig(rows=8, cols=8)
    tiled = _draws(lin, GaussianNoise(0.1), mapping, tile, 4)
    layer = HASGD(lin, torch.optim.SGD(lin.parameters(), lr=0.1), GaussianNoise(0.1), samples=4,
                  generator=torch.Generator().manual_seed(1)).draw_perturbations()
    assert torch.equal(tiled["weight"], layer["weight"])


def test_tile_scaling_refuses_missing_mapping_and_layer_scaling_a_mapping():
    lin = nn.Linear(3, 2)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="needs mapping"):
        HASGD(lin, opt, GaussianNoise(0.1), samples=2, generator=g, scaling="tile")
    with pytest.raises(ConfigError, match="LAYER"):
        HASGD(lin, opt, GaussianNoise(0.1), samples=2, generator=g,
              mapping=WeightMapping(g_max=1e-5))
    with pytest.raises(ConfigError, match="scaling"):
        HASGD(lin, opt, GaussianNoise(0.1), samples=2, generator=g, scaling="chip")

    class NoPeak:
        def perturbation(self, w, z):
            return z

        def to_dict(self):
            return {}

    with pytest.raises(ConfigError, match="peak"):
        HASGD(lin, opt, NoPeak(), samples=2, generator=g, scaling="tile",
              mapping=WeightMapping(g_max=1e-5))


def test_train_takes_the_noise_files_mapping_and_refuses_another():
    """train(noise_scaling="tile") with a QuantileNoise that records its mapping (as a noise
    file's does) uses it; another mapping is refused, as is TILE with neither, before any
    training."""
    from xbarlab.nn.noise import QuantileNoise
    from xbarlab.nn.train import resolve_noise_scaling

    mapping = WeightMapping(g_max=G_MAX, g_min=G_MIN)
    q = QuantileNoise([-1.0, 1.0], [0.25, 0.75], [[-0.1, 0.1], [-0.1, 0.1]], mapping=mapping)
    got = resolve_noise_scaling(q, "tile", None, None)
    assert got["mapping"] is mapping and got["tile"] == TileConfig()
    assert q.scaled(0.5).mapping is mapping
    with pytest.raises(ConfigError, match="differs from the mapping"):
        resolve_noise_scaling(q, "tile", WeightMapping(g_max=G_MAX), None)
    with pytest.raises(ConfigError, match="needs noise_mapping"):
        resolve_noise_scaling(GaussianNoise(0.1), "tile", None, None)
    with pytest.raises(ConfigError, match="apply to noise_scaling='tile'"):
        resolve_noise_scaling(q, "layer", mapping, None)


def test_quantile_noise_at_a_peak_scales_its_table_by_it():
    """A table of Δw / w_max = ±a (levels 0.25 / 0.75, the same at every u): a draw far in
    the upper tail gives +a times the element's peak, whatever the tensor's max|w|."""
    from xbarlab.nn.noise import QuantileNoise

    a = 0.05
    q = QuantileNoise([-1.0, 1.0], [0.25, 0.75], [[-a, a], [-a, a]])
    w = torch.tensor([0.1, -0.2, 0.4], dtype=torch.float64)
    peak = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    d = q.perturbation(w, torch.full((2, 3), 10.0, dtype=torch.float64), peak=peak)
    torch.testing.assert_close(d, (a * peak).expand(2, 3), rtol=1e-12, atol=0)
    d = q.perturbation(w, torch.full((3,), 10.0, dtype=torch.float64))
    torch.testing.assert_close(d, torch.full((3,), a * 0.4, dtype=torch.float64), rtol=1e-12,
                               atol=0)


def test_non_finite_weights_are_refused():
    """A NaN weight (a diverged layer) is refused instead of giving every weight a scale."""
    from xbarlab.nn.tile_noise import tile_scales

    w = torch.ones(3, 4)
    w[1, 2] = float("nan")
    with pytest.raises(ConfigError, match="finite"):
        tile_scales(w, None, WeightMapping(g_max=1e-5), TileConfig())
