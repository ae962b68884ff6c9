"""The torch-native analog model (nn/analog.py): exact on ideal devices, the crossbar's
tiles and converters, device statistics in float32 and float64, state_dict, seeds, flags."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn
from xbarlab.crossbar import TileConfig, TiledMatrix
from xbarlab.crossbar.converters import ADC, DAC
from xbarlab.devices import IdealDevice, load
from xbarlab.devices.blocks import ProgrammingError, ReadNoise
from xbarlab.devices.composite import CompositeDevice
from xbarlab.devices.curves import constant
from xbarlab.devices.fitted import WhiteReadNoise
from xbarlab.devices.mapping import WeightMapping
from xbarlab.errors import ConfigError
from xbarlab.nn import AnalogLayer, convert

IDEAL = IdealDevice(g_max=25e-6)
TILE = TileConfig(rows=16, cols=8)  # 16 inputs x 4 outputs per tile: several tiles per layer


def _net(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, stride=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 3 * 3, 10), nn.ReLU(), nn.Linear(10, 5)).to(dtype)


def _x(dtype=torch.float64):
    return torch.rand(7, 2, 6, 6, generator=torch.Generator().manual_seed(9), dtype=dtype)


def test_ideal_device_without_converters_is_the_network():
    """Ideal device, ideal DAC and ADC, tiles of 16 x 4: the converted network (conv with
    stride and padding, linear layers, bias rows) equals the original to 1e-12."""
    net = _net()
    m = convert(net, IDEAL, tile=TILE, dac_bits=None, adc_bits=None)
    m.program(torch.Generator().manual_seed(0)).read(1.0)
    with torch.no_grad():
        assert torch.allclose(m(_x()), net(_x()), rtol=0, atol=1e-12)
    W, b = m.analog_layers()["3"].effective()
    assert torch.allclose(W, net[3].weight, atol=1e-15) and torch.allclose(b, net[3].bias)


@pytest.mark.parametrize("scaling", ["tile", "column"])
@pytest.mark.parametrize("n_in", [40, 32, 31])
def test_converters_match_the_crossbar_tiled_matrix(scaling, n_in):
    """Ideal device, 6-bit DAC and 6-bit ADC with the max-possible range per tile: the torch
    layer gives the numpy crossbar.TiledMatrix's outputs (same tiles, mapping, bias rows and
    converter rule) to 1e-9 relative to the output scale. Tiles of 16 inputs and 2 bias rows
    (max|b| / max|W| in (1, 2]): 40 inputs end in a tile of 8 inputs and the bias rows, 32 in a
    tile of bias rows alone, 31 in a tile of 15 inputs and one bias row, then a tile of
    the other bias row."""
    g = np.random.default_rng(2)
    lin = nn.Linear(n_in, 9).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(g.uniform(-1, 1, (9, n_in))))
        lin.bias.copy_(torch.as_tensor(g.uniform(-2, 2, 9)))
    x = g.uniform(0, 1.2, (11, n_in))
    mapping = WeightMapping(g_max=25e-6, scaling=scaling)
    tm = TiledMatrix(lin.weight.detach().numpy(), bias=lin.bias.detach().numpy(), tile=TILE,
                     device=IDEAL, dac=DAC(bits=6), adc=ADC(bits=6, range_mode="max-possible"),
                     mapping=mapping)
    m = convert(nn.Sequential(lin), IDEAL, mapping=mapping, tile=TILE, dac_bits=6, adc_bits=6)
    m.program(torch.Generator()).read(0.0)
    with torch.no_grad():
        y = m(torch.as_tensor(x)).numpy()
    ref = tm(x)
    assert tm.n_bias_rows == 2
    assert np.max(np.abs(y - ref)) <= 1e-9 * np.max(np.abs(ref))


@pytest.mark.parametrize("x_max", [1.0, 2.0])
def test_forward_leaves_inputs_alone_and_autograd_sees_the_linear_map(x_max):
    """The forward overwrites only its own temporaries: the input tensor is unchanged after
    a converted run (x_max 1 and 2), and the outputs equal those of a run with gradients
    recorded. Without converters the layer is y = x W_eff^T + b_eff, so the gradient of
    sum(y) over x is the column sum of W_eff (to 1e-12)."""
    pcm = load("pcm-ibm-2020")
    torch.manual_seed(0)
    lin = nn.Linear(40, 9).double()
    x = torch.rand(5, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x0 = x.clone()
    m = convert(nn.Sequential(lin), pcm, tile=TILE, x_max=x_max)
    m.program(torch.Generator().manual_seed(0)).read(60.0)
    with torch.no_grad():
        y = m(x)
    assert torch.equal(x, x0)
    xg = x.clone().requires_grad_(True)
    assert torch.equal(m(xg), y) and torch.equal(xg.detach(), x0)
    ideal = convert(nn.Sequential(lin), pcm, tile=TILE, dac_bits=None, adc_bits=None)
    ideal.program(torch.Generator().manual_seed(0)).read(60.0)
    ideal(xg).sum().backward()
    W = ideal.analog_layers()["0"].effective()[0]
    assert torch.allclose(xg.grad, W.sum(0).expand(5, 40), rtol=0, atol=1e-12)


def test_moved_model_runs_on_its_moved_state():
    """A model read in float64 and moved with .float() gives the outputs of a clean float32
    conversion loaded with its (moved) state: what the forward takes from a read is rebuilt
    from the moved buffers, bit for bit."""
    pcm = load("pcm-ibm-2020")
    m = convert(_net(), pcm, tile=TILE)
    m.program(torch.Generator().manual_seed(4)).read(600.0)
    with torch.no_grad():
        m(_x())
    m = m.float()
    clean = convert(_net(0, torch.float32), pcm, tile=TILE)
    clean.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.equal(m(_x(torch.float32)), clean(_x(torch.float32)))


def _weight_errors(dtype, seed, t=86400.0, device="cpu"):
    torch.manual_seed(1)
    lin = nn.Linear(256, 256).to(dtype)
    m = convert(nn.Sequential(lin), load("pcm-ibm-2020")).to(device)
    m.program(torch.Generator(device=device).manual_seed(seed)).read(t)
    W = m.analog_layers()["0"].effective()[0]
    return (W.double().cpu() - lin.weight.detach().double()).numpy().ravel(), m


def test_float32_matches_float64_statistics():
    """PCM preset, a 256 x 256 layer read one day after programming: the weight errors
    W_eff - W of the float32 model and of the float64 model (different seeds) follow one
    law (two-sample KS <= 0.02 over 65,536 cells; equal laws stay below 0.011 with
    probability 0.999), with the same mean and std to 3 %."""
    e32, m32 = _weight_errors(torch.float32, 1)
    e64, m64 = _weight_errors(torch.float64, 2)
    assert m32.analog_layers()["0"].w_read.dtype == torch.float32
    assert m64.analog_layers()["0"].w_read.dtype == torch.float64
    assert stats.ks_2samp(e32, e64).statistic <= 0.02
    assert abs(e32.std() / e64.std() - 1) < 0.03
    assert abs(e32.mean() - e64.mean()) < 0.03 * e64.std()
    # the outputs (8-bit DAC and ADC included) of one input batch: one law too
    x = torch.rand(64, 256, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with torch.no_grad():
        y32 = m32(x.float()).double().numpy().ravel()
        y64 = m64(x).numpy().ravel()
    assert stats.ks_2samp(y32, y64).statistic <= 0.03


def test_state_dict_round_trips_into_a_clean_model():
    """A programmed and read model's state_dict loads into a clean conversion of a network
    with other weights (another number of bias rows): same outputs bit for bit, and later
    reads of the loaded model equal the original's; torch.save of the whole model loads
    back with the same outputs."""
    pcm = load("pcm-ibm-2020")
    net = _net(0, torch.float32)
    m = convert(net, pcm, tile=TILE)
    m.program(torch.Generator().manual_seed(3)).read(60.0)
    other = _net(5, torch.float32)
    with torch.no_grad():
        other[3].bias.mul_(40.0)  # max|b| / max|W| changes the bias rows
    clean = convert(other, pcm, tile=TILE)
    n_rows = clean.analog_layers()["3"].g_target_pos.shape[0]
    assert n_rows != m.analog_layers()["3"].g_target_pos.shape[0]
    clean.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.equal(clean(_x(torch.float32)), m(_x(torch.float32)))
        assert torch.equal(clean.read(3.15e7)(_x(torch.float32)),
                           m.read(3.15e7)(_x(torch.float32)))
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    with torch.no_grad():
        assert torch.equal(again(_x(torch.float32)), m(_x(torch.float32)))


def test_same_generator_seed_same_bits():
    """Two conversions programmed from generators seeded alike give identical outputs;
    another seed gives other outputs."""
    pcm = load("pcm-ibm-2020")
    outs = []
    for seed in (11, 11, 12):
        m = convert(_net(), pcm, tile=TILE)
        m.program(torch.Generator().manual_seed(seed)).read(3600.0)
        with torch.no_grad():
            outs.append(m(_x()))
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("preset", ["pcm-ibm-2020", "pcm-hermes-2023", "rram-cmo-hfox-2024",
                                    "rram-neurram-2022"])
def test_every_preset_converts_in_float32(preset):
    """Every preset maps onto its full range in float32 (the range's ends rounded to float32
    are accepted), programs, reads at 1 h and gives finite outputs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4))
    m = convert(net, load(preset)).program(torch.Generator().manual_seed(0)).read(3600.0)
    with torch.no_grad():
        assert torch.isfinite(m(torch.rand(8, 20))).all()


def test_torch_global_state_left_as_found():
    """Converting, programming, reading and running change neither torch's
    deterministic-algorithms flag, nor its thread count, default dtype or grad mode."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
              torch.get_default_dtype(), torch.is_grad_enabled())
    m = convert(_net(), load("pcm-ibm-2020"), tile=TILE)
    m.program(torch.Generator().manual_seed(0)).read(1.0)
    m(_x())
    after = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads(),
             torch.get_default_dtype(), torch.is_grad_enabled())
    assert before == after


def _expected_drift(g, mu, sd, lr):
    """E[exp(-|Z| lr)], Z ~ N(mu, sd^2), per cell (quadrature on a fine grid)."""
    z = np.linspace(-8, 8, 4001)
    w = stats.norm.pdf(z)
    nu = np.abs(mu[:, None] + sd[:, None] * z[None])
    return (np.exp(-nu * lr) * w).sum(axis=1) / w.sum()


def test_drift_follows_the_power_law():
    """PCM drift alone (exact programming, no read noise): sum |W_eff| at one year over
    sum |W_eff| at one second equals sum_i g_i E[r_i(1 y)] / sum_i g_i E[r_i(1 s)] with
    r = ((t + t0) / t0)^-nu, nu = |N(mu(g), sd(g))| from the preset's curves (quadrature),
    to 1 % (4,160 cells)."""
    pcm = load("pcm-ibm-2020")
    quiet = CompositeDevice(programming=ProgrammingError(identity=True),
                            drift_law=pcm.drift_law, g_range=pcm.g_range)
    torch.manual_seed(0)
    lin = nn.Linear(64, 64).double()
    m = convert(nn.Sequential(lin), quiet, dac_bits=None, adc_bits=None)
    m.program(torch.Generator().manual_seed(0))
    layer = m.analog_layers()["0"]
    a = float(m.read(1.0).analog_layers()["0"].w_read.abs().sum())
    b = float(m.read(3.15e7).analog_layers()["0"].w_read.abs().sum())
    g = (layer.g_target_pos + layer.g_target_neg).numpy().ravel()  # one side is g_min = 0
    d = pcm.drift_law
    mu, sd = d.nu_mean(g), d.nu_std(g)
    num = np.sum(g * _expected_drift(g, mu, sd, np.log((3.15e7 + d.t0) / d.t0)))
    den = np.sum(g * _expected_drift(g, mu, sd, np.log((1.0 + d.t0) / d.t0)))
    assert b / a == pytest.approx(num / den, rel=0.01)


def test_bad_input_is_refused():
    """Reference scheme, unknown layers, fitted blocks, bad bits, reads before programming,
    forward before reading and short-term reads without a generator raise ConfigError."""
    net = _net()
    with pytest.raises(ConfigError, match="one differential pair"):
        convert(net, IDEAL, mapping=WeightMapping(g_max=25e-6, scheme="reference"))
    with pytest.raises(ConfigError, match="not an nn.Linear"):
        convert(net, IDEAL, layers=["1"])
    with pytest.raises(ConfigError, match="adc_bits"):
        convert(net, IDEAL, adc_bits=1)
    fitted = CompositeDevice(read_noise=WhiteReadNoise(constant(1e-7)), g_range=(0.0, 1e-5))
    with pytest.raises(ConfigError, match="no torch sampler"):
        convert(net, fitted)
    m = convert(net, IDEAL)
    with pytest.raises(ConfigError, match="program"):
        m.read(1.0)
    with pytest.raises(ConfigError, match="read"):
        m(_x())
    with pytest.raises(ConfigError, match="torch.Generator"):
        m.program(np.random.default_rng(0))
    short = CompositeDevice(read_noise=ReadNoise(amplitude=None, short_term=constant(1e-8)),
                            g_range=(0.0, 1e-5))
    m = convert(net, short).program(torch.Generator())
    with pytest.raises(ConfigError, match="short-term"):
        m.read(1.0)
    m.read(1.0, torch.Generator())
    assert isinstance(m.analog_layers()["0"], AnalogLayer)


@pytest.mark.gpu
def test_cuda_model_samples_on_the_gpu_with_cpu_statistics():
    """On CUDA: state and reads live on the GPU; float32 and float64 weight errors follow
    one law, and the CUDA law is the CPU's (two-sample KS <= 0.02 each)."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    e32, m32 = _weight_errors(torch.float32, 1, device="cuda")
    e64, _ = _weight_errors(torch.float64, 2, device="cuda")
    cpu, _ = _weight_errors(torch.float32, 3)
    layer = m32.analog_layers()["0"]
    assert layer.w_read.is_cuda and layer.pos_g_prog.is_cuda
    assert stats.ks_2samp(e32, e64).statistic <= 0.02
    assert stats.ks_2samp(e32, cpu).statistic <= 0.02
    with torch.no_grad():
        y = m32(torch.rand(4, 256, device="cuda"))
    assert y.is_cuda and torch.isfinite(y).all()


def test_cuda_graph_refuses_a_cpu_input_and_an_unread_model():
    """cuda_graph needs a read model, a CUDA input and warmup >= 1; each refusal is a
    ConfigError."""
    m = convert(_net(), load("pcm-ibm-2020"))
    with pytest.raises(ConfigError, match="not been read"):
        m.cuda_graph(_x())
    m.program(torch.Generator().manual_seed(0)).read(1.0)
    with pytest.raises(ConfigError, match="CUDA device, got one on cpu"):
        m.cuda_graph(_x())
    with pytest.raises(ConfigError, match="warmup"):
        m.cuda_graph(_x(), warmup=0)


@pytest.mark.gpu
def test_cuda_graph_replays_the_eager_forward_bit_for_bit():
    """A captured converted model gives the eager outputs bit for bit on new inputs; after
    another read the old graph refuses to run, a new capture matches the new read."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    m = convert(_net(dtype=torch.float32), load("pcm-ibm-2020")).cuda()
    m.program(torch.Generator(device="cuda").manual_seed(0)).read(86400.0)
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.rand(64, 2, 6, 6, device="cuda", generator=g)
    f = m.cuda_graph(x)
    with torch.no_grad():
        for _ in range(3):
            x = torch.rand(64, 2, 6, 6, device="cuda", generator=g)
            assert torch.equal(f(x), m(x))
    m.read(3.15e7)
    with pytest.raises(ConfigError, match="capture again"):
        f(x)
    with torch.no_grad():
        assert torch.equal(m.cuda_graph(x)(x), m(x))
    with pytest.raises(ConfigError, match="captured for"):
        m.cuda_graph(x)(x[:2])
