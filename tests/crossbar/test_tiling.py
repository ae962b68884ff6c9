"""Tiled analog matrix products and convolutions (xbarlab.crossbar.tiling).

The tests draw weights ``W`` as (inputs, outputs), so that the reference is ``x @ W``, and pass
``W.T``: tiling takes (n_out, n_in), the torch nn.Linear convention."""

import numpy as np
import pytest
from _shared import rel_err
from xbarlab.crossbar.converters import ADC, DAC, analog_mvm
from xbarlab.crossbar.tiling import (
    TileConfig,
    TiledMatrix,
    conv2d_reference,
    im2col,
    map_tiles,
    tile_blocks,
    tiled_conv2d,
    tiled_matmul,
)
from xbarlab.devices import DeviceModelBase, DeviceState
from xbarlab.devices.mapping import WeightMapping
from xbarlab.errors import ConfigError

G_MIN, G_MAX = 1e-6, 25e-6
#: one differential pair per weight on G_MIN..G_MAX, one scale per tile
MAP = WeightMapping(g_max=G_MAX, g_min=G_MIN)


class _TestDevice(DeviceModelBase):
    """Gaussian programming error sigma [S] and drift g(t) = g_prog * (1 + t)^-nu, no read noise
    (written here, independent of devices/)."""

    kind = "test-tiling"

    def __init__(self, sigma=0.0, nu=0.0):
        self.sigma, self.nu = sigma, nu
        self.g_range = (0.0, 1e-4)

    def program(self, g, rng):
        g = np.asarray(g, dtype=np.float64)
        gp = g + (rng.normal(0.0, self.sigma, g.shape) if self.sigma else 0.0)
        return DeviceState(g_input=g.copy(), g_prog=gp)

    def drift(self, state, t):
        return state.g_prog * (1.0 + t) ** (-self.nu)

    def read(self, state, t, rng):
        return self.drift(state, t)

    def to_tree(self):
        return {}

    @classmethod
    def from_tree(cls, tree):
        return cls()


def _data(seed, K=300, N=70, B=6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(K, N)), rng.normal(size=N) * 3, rng.uniform(-1, 1, (B, K))



@pytest.mark.parametrize("layout, scale", [("differential-columns", "tile"),
                                           ("differential-rows", "column")])
def test_ideal_tiled_matmul_equals_product(layout, scale):
    """300x70 weights + bias on 128x64 tiles (3x2 or 3x3 tiles with the bias rows), ideal
    devices, zero resistances, ideal converters: y = x @ W + b to 1e-12 relative."""
    W, b, x = _data(0)
    tile = TileConfig(rows=128, cols=64, layout=layout)
    y = tiled_matmul(x, W.T, bias=b, tile=tile,
                     mapping=WeightMapping(g_max=G_MAX, g_min=G_MIN, scaling=scale))
    assert rel_err(y, x @ W + b) <= 1e-12


def test_default_tile_is_256():
    """Default TileConfig: 256x256 physical, differential columns -> 256 inputs x 128 outputs;
    a 600x300 matrix uses ceil(600/256) * ceil(300/128) = 3 * 3 = 9 tiles."""
    W = np.ones((600, 300))
    tm = TiledMatrix(W.T, tile=TileConfig(), mapping=WeightMapping(g_max=G_MAX))
    assert (tm.tile.inputs_per_tile, tm.tile.outputs_per_tile, tm.n_tiles) == (256, 128, 9)


def test_tile_split():
    """A 5 x 7 matrix in tiles of 2 x 3: row ranges [0,2) [2,4) [4,5), column ranges [0,3)
    [3,6) [6,7), row tile by row tile; TiledMatrix's tiles and map_tiles follow this split,
    each block mapped with its own alpha (max|w| of the block -> g_max)."""
    assert tile_blocks(5, 7, 2, 3) == [(r0, r1, c0, c1) for r0, r1 in ((0, 2), (2, 4), (4, 5))
                                       for c0, c1 in ((0, 3), (3, 6), (6, 7))]
    rng = np.random.default_rng(3)
    W = rng.uniform(-1, 1, (7, 5))  # (n_out, n_in)
    tm = TiledMatrix(W, tile=TileConfig(rows=2, cols=6), mapping=MAP)
    assert [(t.r0, t.r1, t.c0, t.c1) for t in tm.tiles] == tile_blocks(5, 7, 2, 3)
    for (r0, r1, c0, c1), mw in map_tiles(W.T, MAP, 2, 3):
        block = W.T[r0:r1, c0:c1]
        np.testing.assert_allclose(mw.alpha, (G_MAX - G_MIN) / np.abs(block).max(), rtol=1e-12)


def test_bias_rows_share_device_range():
    """Bias 10x the largest weight with x_max = 2: n_b = ceil(10 / 2) = 5 bias rows, every
    target conductance inside [g_min, g_max], and the output still equals x @ W + b."""
    rng = np.random.default_rng(1)
    W = rng.uniform(-1, 1, (20, 6))
    W[0, 0] = 1.0
    b = np.array([10.0, -3, 0, 1, 2, -10])
    tm = TiledMatrix(W.T, bias=b, x_max=2.0, tile=TileConfig(rows=32, cols=16), mapping=MAP)
    assert tm.n_bias_rows == 5
    for tl in tm.tiles:
        for g in (tl.g_pos, tl.g_neg):
            assert g.min() >= G_MIN and g.max() <= G_MAX
    x = rng.uniform(-2, 2, (4, 20))
    assert rel_err(tm(x), x @ W + b) <= 1e-12


def test_ideal_tiled_conv_equals_direct_convolution():
    """Conv 3->5 channels, 3x3 kernel, stride 2, padding 1 on 2x3x9x8 inputs, on 16x4 tiles
    (27 inputs -> 2 row tiles, 5 outputs -> 3 column tiles): equals the direct convolution to
    1e-12; the direct reference equals torch.nn.functional.conv2d to 1e-12."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 9, 8))
    w = rng.normal(size=(5, 3, 3, 3))
    b = rng.normal(size=5)
    ref = conv2d_reference(x, w, b, stride=2, padding=1)
    y = tiled_conv2d(x, w, b, stride=2, padding=1, x_max=4.0,
                     tile=TileConfig(rows=16, cols=4), mapping=MAP)
    assert y.shape == (2, 5, 5, 4)
    assert rel_err(y, ref) <= 1e-12
    tref = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b),
                                      stride=2, padding=1).numpy()
    assert rel_err(ref, tref) <= 1e-12
    cols, (Ho, Wo) = im2col(x, 3, stride=2, padding=1)
    assert cols.shape == (2 * Ho * Wo, 27)


def test_wire_resistance_alone_shrinks_output_linearly():
    """Positive weights and inputs, r_row = r_col = r per segment on 64x64 tiles: IR drop
    lowers every output below the ideal, and for small r the relative error grows linearly:
    error(0.2 Ohm) / error(0.1 Ohm) = 2 within 5 %."""
    rng = np.random.default_rng(3)
    W = rng.uniform(0.1, 1, (100, 40))
    x = rng.uniform(0.2, 1, (3, 100))
    ideal = x @ W
    errs = []
    for r in (0.1, 0.2):
        tile = TileConfig(rows=64, cols=64, r_row=r, r_col=r)
        y = tiled_matmul(x, W.T, tile=tile, mapping=MAP)
        assert np.all(y < ideal)
        errs.append(np.max(np.abs(y - ideal) / ideal))
    assert errs[1] / errs[0] == pytest.approx(2.0, rel=0.05)


def test_dac_alone_quantizes_inputs():
    """6-bit signed DAC alone: y = Q(x) @ W + b exactly (1e-12), Q(x) = rint(x * 31) / 31, and
    |y - (x @ W + b)| <= sum_i |W_ij| / 62 (half an input LSB per row)."""
    W, b, x = _data(4, K=50, N=10)
    tile = TileConfig(rows=32, cols=16)
    y = tiled_matmul(x, W.T, bias=b, tile=tile, mapping=MAP, dac=DAC(bits=6))
    xq = np.rint(x * 31) / 31
    assert rel_err(y, xq @ W + b) <= 1e-12
    assert np.all(np.abs(y - (x @ W + b)) <= np.abs(W).sum(axis=0) / 62 + 1e-12)
    assert np.max(np.abs(y - (x @ W + b))) > 1e-3


def test_adc_alone_error_halves_per_bit():
    """ADC alone (fixed range above every partial sum): each tile's partial sum is rounded to the
    ADC LSB, so |y - ideal| <= n_row_tiles * LSB / 2 in weight units; the rms error of 8 bits is
    half that of 7 bits within 30 % (uniform rounding error, 4 tiles x 200 samples)."""
    rng = np.random.default_rng(5)
    W = rng.normal(size=(128, 32))
    x = rng.uniform(-1, 1, (200, 128))
    ideal = x @ W
    tile = TileConfig(rows=64, cols=32)
    rms = []
    for bits in (7, 8):
        adc = ADC(bits=bits).with_full_scale(64 * G_MAX * 0.2)
        y = tiled_matmul(x, W.T, tile=tile, mapping=MAP, dac=DAC(bits=None), adc=adc)
        s = (G_MAX - G_MIN) / np.abs(W[:64]).max(), (G_MAX - G_MIN) / np.abs(W[64:]).max()
        lsb_w = [adc.lsb / (0.2 * si) for si in s]  # weight units, x_max = 1, v_max = 0.2 V
        assert np.all(np.abs(y - ideal) <= sum(lsb_w) / 2 + 1e-12)
        rms.append(np.sqrt(np.mean((y - ideal) ** 2)))
    assert rms[0] / rms[1] == pytest.approx(2.0, rel=0.3)


def test_programming_noise_alone_matches_predicted_spread():
    """Gaussian programming error sigma = 0.5 uS per device, one tile of 64 inputs x 2000
    outputs, per-tile scale s: y - x @ W has standard deviation sqrt(2 sum_i x_i^2) sigma / s
    within 5 % over the 2000 outputs."""
    rng = np.random.default_rng(6)
    W = rng.uniform(-1, 1, (64, 2000))
    x = rng.uniform(-1, 1, 64)
    tile = TileConfig(rows=64, cols=4000)
    y = tiled_matmul(x, W.T, tile=tile, mapping=MAP, device=_TestDevice(sigma=0.5e-6), rng=rng)
    s = (G_MAX - G_MIN) / np.abs(W).max()
    pred = np.sqrt(2 * np.sum(x**2)) * 0.5e-6 / s
    assert np.std(y - x @ W) / pred == pytest.approx(1.0, abs=0.05)


def test_drift_alone_scales_output():
    """Drift g(t) = g (1 + t)^-0.05 of both devices, no noise, ideal wires and converters: the
    output at t = 1000 s is (1001)^-0.05 (x @ W + b) to 1e-12."""
    W, b, x = _data(7, K=40, N=12)
    tile = TileConfig(rows=32, cols=16)
    y = tiled_matmul(x, W.T, bias=b, tile=tile, mapping=WeightMapping(g_max=G_MAX, g_min=0.0),
                     device=_TestDevice(nu=0.05),
                     rng=np.random.default_rng(0), t=1000.0)
    assert rel_err(y, 1001.0 ** -0.05 * (x @ W + b)) <= 1e-12


def test_adc_gain_error_alone():
    """Per-column ADC gain error (sigma 2 %) on a single row tile: y_j = (1 + e_j) (x @ W)_j
    with e_j the chip's drawn errors, to 1e-12."""
    W, _, x = _data(8, K=30, N=8)
    tm = TiledMatrix(W.T, tile=TileConfig(rows=32, cols=16), mapping=MAP,
                     adc=ADC(bits=None, gain_error_std=0.02), rng=np.random.default_rng(1))
    e = tm.tiles[0].adc.gain_error
    assert rel_err(tm(x), (1 + e) * (x @ W)) <= 1e-12


def test_calibrated_adc_range_per_tile():
    """A calibrated 8-bit ADC range at the 90th percentile clips about 10 % of the partial sums
    of the calibration inputs (between 5 % and 15 % over 2 tiles x 300 x 16 outputs)."""
    rng = np.random.default_rng(9)
    W = rng.normal(size=(64, 16))
    x = rng.uniform(-1, 1, (300, 64))
    tm = TiledMatrix(W.T, tile=TileConfig(rows=32, cols=32), mapping=MAP,
                     adc=ADC(bits=8, range_mode="calibrated", percentile=90.0))
    with pytest.raises(ConfigError, match="calibrate"):
        tm(x)
    tm.calibrate(x)
    clipped = []
    for tl in tm.tiles:
        I = analog_mvm(x[:, tl.r0:tl.r1], tl.solver, dac=tm.dac)
        clipped.append(np.mean(np.abs(I) > tl.adc.adc.i_fs))
    assert 0.05 < np.mean(clipped) < 0.15


def test_bad_tiling_input():
    """Odd columns for differential columns, zero rows, negative r_row, a weight vector, a
    wrong-size input: ConfigError naming the argument."""
    with pytest.raises(ConfigError, match="cols"):
        TileConfig(cols=255)
    with pytest.raises(ConfigError, match="rows"):
        TileConfig(rows=0)
    with pytest.raises(ConfigError, match="r_row"):
        TileConfig(r_row=-1.0)
    with pytest.raises(ConfigError, match="layout='single' is not one of 'differential-columns'"):
        TileConfig(layout="single")
    with pytest.raises(ConfigError, match="scaling='row' is not one of 'tile', 'column'"):
        WeightMapping(g_max=G_MAX, scaling="row")  # the scale is the mapping's, not the tile's
    with pytest.raises(ConfigError, match="W"):
        TiledMatrix(np.ones(5), tile=TileConfig(), mapping=MAP)
    tm = TiledMatrix(np.ones((5, 3)), tile=TileConfig(), mapping=MAP)
    assert (tm.out_features, tm.in_features) == (5, 3)  # W: (n_out, n_in), like nn.Linear
    with pytest.raises(ConfigError, match="x"):
        tm(np.ones(4))


# ------------------------------------------------------------- mappings of devices/mapping.py

_MAPPINGS = [
    # (WeightMapping keywords, tile rows, cols, layout, logical outputs per tile)
    (dict(scheme="reference"), 32, 16, "differential-columns", 15),
    (dict(scheme="reference", scaling="column", g_min=2e-6), 32, 16, "differential-columns", 15),
    (dict(n_pairs=3, significance=4.0, levels=2), 32, 24, "differential-columns", 4),
    (dict(n_pairs=2, significance=8.0, levels=4, scaling="column"), 32, 12, "differential-rows",
     6),
]


@pytest.mark.parametrize("kw, rows, cols, layout, n_out", _MAPPINGS)
def test_mapping_options_ideal_equal_product(kw, rows, cols, layout, n_out):
    """devices.mapping options through TiledMatrix (reference column, per-column alpha,
    3 or 2 pairs of significance F^-k), 70x20 weights + bias on small tiles (several row and
    column tiles), ideal devices, zero resistances, ideal converters: y = x @ W + b to
    1e-12, the effective weights equal W to 1e-12, and a tile holds cols - 1 (reference),
    cols / (2 P) (differential columns) or cols / P (differential rows) outputs."""

    W, b, x = _data(10, K=70, N=20)
    tm = TiledMatrix(W.T, bias=b, tile=TileConfig(rows=rows, cols=cols, layout=layout),
                     mapping=WeightMapping(g_max=G_MAX, **kw))
    assert tm.outputs_per_tile == n_out and tm.n_tiles > 2
    assert rel_err(tm(x), x @ W + b) <= 1e-12
    We, be = tm.effective()
    assert We.shape == W.T.shape
    assert rel_err(We, W.T) <= 1e-12 and rel_err(be, b) <= 1e-12


@pytest.mark.parametrize("scheme", ["reference", "pairs"])
def test_physical_array_with_wires_matches_hand_built_array(scheme):
    """One 16x10-weight tile with r_row = r_col = 2 Ohm: the tile equals the grid solver on
    the physical array built here by hand and decoded by hand. Reference: columns G[:, j],
    then one column of g_ref = (g_min + g_max)/2, y_j = (I_j - I_ref) / (alpha_j v_max) with
    alpha = (g_max - g_min) / (2 max|W|). Two pairs (F = 4): columns G+_j0, G-_j0, G+_j1,
    G-_j1 per output, y_j = sum_k 4^-k (I+_jk - I-_jk) / (alpha v_max), alpha = (g_max -
    g_min) / max|W|. Agreement 1e-12; the wires move y away from x @ W by > 1e-4."""
    from xbarlab.crossbar.circuit import Crossbar, WireParams

    rng = np.random.default_rng(11)
    W = rng.uniform(-1, 1, (16, 10))
    x = rng.uniform(0, 1, (5, 16))
    if scheme == "reference":
        m = WeightMapping(g_max=G_MAX, g_min=G_MIN, scheme="reference")
        cols = 12
    else:
        m = WeightMapping(g_max=G_MAX, g_min=G_MIN, n_pairs=2, significance=4.0, levels=2)
        cols = 40
    tile = TileConfig(rows=16, cols=cols, r_row=2.0, r_col=2.0)
    tm = TiledMatrix(W.T, tile=tile, mapping=m)
    assert tm.n_tiles == 1
    tl = tm.tiles[0]
    v = x * tm.dac.v_max
    wire = WireParams(r_row=2.0, r_col=2.0)
    if scheme == "reference":
        G = np.hstack([tl.g_pos[0], np.full((16, 1), 0.5 * (G_MIN + G_MAX))])
        I = Crossbar(G, wires=wire).mvm(v)
        alpha = (G_MAX - G_MIN) / (2 * np.abs(W).max())
        y_hand = (I[:, :10] - I[:, 10:]) / (alpha * tm.dac.v_max)
    else:
        G = np.empty((16, 40))
        for k in range(2):
            G[:, 2 * k::4], G[:, 2 * k + 1::4] = tl.g_pos[k], tl.g_neg[k]
        I = Crossbar(G, wires=wire).mvm(v)
        alpha = (G_MAX - G_MIN) / np.abs(W).max()
        y_hand = sum(4.0 ** -k * (I[:, 2 * k::4] - I[:, 2 * k + 1::4]) for k in range(2))
        y_hand = y_hand / (alpha * tm.dac.v_max)
    y = tm(x)
    assert rel_err(y, y_hand) <= 1e-12
    assert np.max(np.abs(y - x @ W)) > 1e-4


@pytest.mark.parametrize("kw", [dict(scheme="reference"), dict(n_pairs=2, significance=4.0)])
def test_device_read_circuit_equals_effective_weights(kw):
    """pcm-ibm-2020 programmed and read at 1 day (reference column devices programmed and
    read like the others), zero wires, ideal converters: the circuit output equals the
    effective weights' product x @ W_eff + b_eff to 1e-9 (one mapping inverse for both), and
    the device moved the weights (relative change > 1 %)."""
    from xbarlab import devices

    W, b, x = _data(12, K=40, N=12)
    tm = TiledMatrix(W.T, bias=b, tile=TileConfig(rows=32, cols=32), device=devices.load(
        "pcm-ibm-2020"), mapping=WeightMapping(g_max=20e-6, g_min=1e-6, **kw),
        rng=np.random.default_rng(3), t=86400.0)
    We, be = tm.effective()
    assert rel_err(tm(x), x @ We.T + be) <= 1e-9
    assert rel_err(We.T, W) > 0.01


def test_global_drift_compensation_recovers_scale_of_drifting_pcm():
    """pcm-ibm-2020 read at 1 year, 100x40 weights U(-1, 1) + bias on 64x64 tiles, inputs
    U(0, 1): the least-squares gain of y against x @ W + b is about 0.50 without
    compensation (< 0.6), and with global compensation (calibration input all x_max, ideal
    reference, factor applied after the ADC) its mean over 4 programmings is 1 within 0.03
    (one programming's gain scatters by ~0.016, the calibration input's weighting shifts it
    by ~ -0.01)."""
    from xbarlab import devices

    pcm = devices.load("pcm-ibm-2020")
    gains = {"none": [], "global": []}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        W, b = rng.uniform(-1, 1, (100, 40)), rng.uniform(-1, 1, 40)
        x = rng.uniform(0, 1, (32, 100))
        ideal = x @ W + b
        for comp in gains:
            tm = TiledMatrix(W.T, bias=b, tile=TileConfig(rows=64, cols=64), device=pcm,
                             rng=np.random.default_rng(100 + seed), t=365.25 * 86400.0,
                             compensation=comp)
            y = tm(x)
            gains[comp].append(np.sum(y * ideal) / np.sum(ideal**2))
            if comp == "global":
                assert tm.factors[0] == pytest.approx(tm.drift_factor(), rel=1e-12)
    assert np.mean(gains["none"]) < 0.6
    assert abs(np.mean(gains["global"]) - 1) < 0.03


class _ColumnGainDevice(_TestDevice):
    """Per output column j: programmed g · a_j, read g · a_j · (1 + t)^-nu_j, no noise. The
    last axis of a tile's conductances is its output column (written here, independent of
    devices/)."""

    kind = "test-column-gain"

    def __init__(self, a, nu):
        super().__init__()
        self.a, self.nu_j = np.asarray(a, float), np.asarray(nu, float)

    def program(self, g, rng):
        g = np.asarray(g, dtype=np.float64)
        return DeviceState(g_input=g.copy(), g_prog=g * self.a)

    def drift(self, state, t):
        return state.g_prog * (1.0 + t) ** (-self.nu_j)


def _column_case(a, nu, **kw):
    """20x8 weights + bias on one 64x64 tile of the column-gain device, read first at 9 s
    (factor d_j(9) = 10^-nu_j), then at 999 s (d_j = 1000^-nu_j)."""
    rng = np.random.default_rng(21)
    W, b, x = rng.uniform(-1, 1, (20, 8)), rng.uniform(-1, 1, 8), rng.uniform(0, 1, (5, 20))
    tm = TiledMatrix(W.T, bias=b, tile=TileConfig(rows=64, cols=64),
                     device=_ColumnGainDevice(a, nu), rng=np.random.default_rng(0), t=9.0,
                     mapping=MAP, **kw)
    tm.read(999.0, np.random.default_rng(1))
    return tm, x, x @ W + b


@pytest.mark.parametrize("circuit", [False, True])
def test_column_compensation_undoes_a_per_column_drift_exactly(circuit):
    """Column j read as g · 1000^-nu_j with nu_j = 0.01 .. 0.15 (pure multiplicative per
    column, no programming error): the column factors are exactly 1000^nu_j (1e-12), and the
    compensated outputs equal x @ W + b to 1e-12 for the effective weights and the ideal
    circuit; one global factor cannot (it leaves > 5 % error), but undoes a uniform
    nu = 0.06 exactly."""
    nu = np.linspace(0.01, 0.15, 8)
    tm, x, ideal = _column_case(np.ones(8), nu)
    f = tm.compensation_factors("column", circuit=circuit)
    assert np.allclose(f, 1000.0 ** nu, rtol=1e-12, atol=0)
    assert rel_err(tm(x) * f, ideal) <= 1e-12
    assert rel_err(tm(x) * tm.compensation_factors("global", circuit=circuit), ideal) > 0.05
    tm, x, ideal = _column_case(np.ones(8), np.full(8, 0.06))
    g = tm.compensation_factors("global", circuit=circuit)
    assert np.allclose(g, 1000.0 ** 0.06, rtol=1e-12, atol=0)
    assert rel_err(tm(x) * g, ideal) <= 1e-12


@pytest.mark.parametrize("comp", ["global", "column"])
def test_first_read_reference_restores_the_first_read(comp):
    """Column j programmed with gain a_j (0.8 .. 1.2) and drifting as (1 + t)^-nu, nu = 0.05:
    against the ideal product the compensated outputs at 999 s are x @ W + b (the programming
    gain removed too); against the first read (9 s) they are the first read's outputs
    a_j 10^-nu (x @ W + b)_j, the factor being (1000/10)^nu, to 1e-12. The matrix's own
    compensation (``compensation``, ``reference``) applies the same factors in forward."""
    a = np.linspace(0.8, 1.2, 8)
    tm, x, ideal = _column_case(a, np.full(8, 0.05))
    first = ideal * a * 10.0 ** -0.05
    f_first = tm.compensation_factors(comp, reference="first-read")
    f_ideal = tm.compensation_factors(comp, reference="ideal")
    if comp == "column":
        assert rel_err(tm(x) * f_ideal, ideal) <= 1e-12
        assert rel_err(tm(x) * f_first, first) <= 1e-12
    assert np.allclose(f_first, 100.0 ** 0.05, rtol=1e-12, atol=0)
    own, _, _ = _column_case(a, np.full(8, 0.05), compensation=comp, reference="first-read")
    assert rel_err(own(x), tm(x) * f_first) <= 1e-12


def test_bias_drive_is_a_dac_level():
    """max|b| = 0.3 < max|W| = 1, 6-bit DAC (31 levels per polarity): the mapping's bias
    drive s = 0.3 is raised to the next DAC level 10/31, so the bias row carries b / s_q
    (<= max|W|) and y = Q(x) @ W + b to 1e-12."""
    rng = np.random.default_rng(13)
    W = rng.uniform(-1, 1, (20, 6))
    W[0, 0] = 1.0
    b = np.array([0.3, -0.1, 0.2, 0.0, -0.3, 0.05])
    x = rng.uniform(-1, 1, (4, 20))
    tm = TiledMatrix(W.T, bias=b, dac=DAC(bits=6), tile=TileConfig(rows=32, cols=16),
                     mapping=MAP)
    assert tm.n_bias_rows == 1 and tm.bias_drive == pytest.approx(10 / 31, rel=1e-15)
    assert rel_err(tm(x), (np.rint(x * 31) / 31) @ W + b) <= 1e-12


def test_bad_mapping_input():
    """A mapping beyond the device model's range (pcm-ibm-2020: 0..25 uS; accepted with
    allow_extrapolation), an unbounded ideal device without a mapping, a range or scale in
    TileConfig (the mapping alone carries them), the reference scheme on differential rows, a
    mapping given as a string, an unknown compensation: an error naming it."""
    from xbarlab import devices

    pcm = devices.load("pcm-ibm-2020")
    W = np.ones((4, 3))
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="does not cover the mapping"):
        TiledMatrix(W.T, device=pcm, rng=rng, mapping=WeightMapping(g_max=30e-6))
    wide = WeightMapping(g_max=30e-6)
    assert TiledMatrix(W.T, device=devices.IdealDevice(g_max=25e-6), mapping=wide,
                       allow_extrapolation=True).mapping is wide
    with pytest.raises(ConfigError, match="g_max"):
        TiledMatrix(W.T, tile=TileConfig())
    for field in ("g_min", "g_max", "scale"):
        with pytest.raises(TypeError, match=field):
            TileConfig(**{field: G_MAX})
    with pytest.raises(ConfigError, match="layout"):
        TiledMatrix(W.T, tile=TileConfig(layout="differential-rows"),
                    mapping=WeightMapping(g_max=G_MAX, scheme="reference"))
    with pytest.raises(ConfigError, match="mapping"):
        TiledMatrix(W.T, tile=TileConfig(), mapping="reference")
    with pytest.raises(ConfigError, match="compensation='local' is not one of 'none', 'global'"):
        TiledMatrix(W.T, tile=TileConfig(), mapping=MAP, compensation="local")


def test_tile_blocks_refuses_bad_sizes():
    """A tile size of 0 or a negative shape is a ConfigError naming the argument, not an
    empty or a range() error."""
    import pytest
    from xbarlab.crossbar.tiling import tile_blocks
    from xbarlab.errors import ConfigError

    for args, name in (((4, 4, 0, 2), "rows_per_tile"), ((4, 4, 2, -1), "cols_per_tile"),
                       ((-1, 3, 2, 2), "n_rows"), ((4, 2.5, 2, 2), "n_cols")):
        with pytest.raises(ConfigError, match=name):
            tile_blocks(*args)
    assert tile_blocks(5, 7, 2, 3)[-1] == (4, 5, 6, 7)


def test_with_adc_equals_a_chip_programmed_with_that_adc():
    """A chip (programming error and drift, 2 Ohm wires: exact grid solves, bias rows,
    global compensation) read once and given a 6-bit or an ideal ADC by with_adc outputs,
    bit for bit, what the same chip programmed and read from the same seed with it outputs: one
    input (a checked solve), 12 (the effective matrix), then one again; the 4-bit chip it
    came from keeps its outputs; an ADC with static errors is refused."""
    W, b, x = _data(0, K=20, N=6, B=12)
    kw = dict(bias=b, tile=TileConfig(rows=8, cols=8, r_row=2.0, r_col=2.0),
              device=_TestDevice(sigma=1e-7, nu=0.05), mapping=MAP, t=10.0,
              compensation="global")
    a4, a6 = (ADC(bits=k, range_mode="max-possible") for k in (4, 6))
    base = TiledMatrix(W.T, adc=a4, rng=np.random.default_rng(1), **kw)
    y4 = base.forward(x)
    for adc in (a6, None):  # None: the currents themselves, to the last bit
        view = base.with_adc(adc)
        fresh = TiledMatrix(W.T, adc=adc, rng=np.random.default_rng(1), **kw)
        got, want = ([m.factors, m.forward(x[0]), m.forward(x), m.forward(x[0])]
                     for m in (view, fresh))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        assert not np.array_equal(got[2], y4)
    np.testing.assert_array_equal(base.forward(x), y4)
    with pytest.raises(ConfigError, match="static errors"):
        base.with_adc(ADC(bits=6, gain_error_std=0.01))


@pytest.mark.parametrize("rng, kind", [(0, "int"), (np.random.RandomState(0), "RandomState"),
                                       ("seed", "str")])
def test_with_adc_refuses_an_rng_that_is_not_a_generator(rng, kind):
    """with_adc takes None or a numpy Generator as rng; a seed or a legacy RandomState is
    refused in one line naming its type, before any view is built."""
    W, b, _ = _data(0, K=6, N=3, B=1)
    base = TiledMatrix(W.T, bias=b, tile=TileConfig(rows=8, cols=8), adc=ADC(bits=6),
                       mapping=MAP)
    with pytest.raises(ConfigError, match=rf"^rng must be a numpy\.random\.Generator or None, "
                                          rf"got {kind}$"):
        base.with_adc(ADC(bits=4), rng=rng)
    for ok in (None, np.random.default_rng(0)):
        assert base.with_adc(ADC(bits=4), rng=ok).adc.bits == 4
