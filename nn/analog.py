"""A torch-native analog model: :func:`convert` a network, ``program`` it once, ``read`` it
at any time, run it like the original.

Every ``nn.Linear`` and ``nn.Conv2d`` of a copy of the network becomes an
:class:`AnalogLayer`:

1. at conversion (CPU, float64): the weight matrix ``W`` (n_out, n_in) (a convolution's
   kernel flattened as ``F.unfold`` orders its inputs) gets the mapping's bias rows
   (:meth:`~xbarlab.devices.mapping.WeightMapping.bias_rows`, DAC full scale ``x_max``,
   the drive raised to the next DAC level as in :class:`~xbarlab.crossbar.TiledMatrix`),
   is split into tiles of :class:`~xbarlab.crossbar.TileConfig` (logical inputs x
   outputs) and each tile is mapped by
   :meth:`~xbarlab.devices.mapping.WeightMapping.to_conductances` (per-tile or per-column
   scale alpha [S per unit weight]); the target conductances G+ and G- [S] are buffers;
2. ``program(generator)``: every cell's programming error, drift exponent and trajectory
   deviates are drawn in torch on the model's device and dtype
   (:func:`xbarlab.devices.torch_sampling.program_cells`: the device model's own blocks);
3. ``read(t)``: conductances at ``t`` seconds after programming
   (:func:`~xbarlab.devices.torch_sampling.read_cells`), turned once into effective
   weights ``(G+ - G-) / alpha`` per tile and cached, with what the forward takes from
   them: the weights with the DAC step and each row tile's 1 / ADC full scale folded in,
   and the bias rows' partial sums (their input is the constant drive, so a tile of bias
   rows alone is converted here, once);
4. ``forward``: inputs through the DAC (``quantize_codes`` of the crossbar's converters,
   signed, full scale ``x_max``), one batched matrix product over the full row tiles of
   inputs (a partly filled last one on its own, plus its bias rows' sum), the signed ADC
   of each tile's partial sums (full scale fixed, or the tile's largest possible column
   current of its target conductances), the digital sum over row tiles; temporaries are
   overwritten in place unless autograd records the forward.

Not supported yet (ConfigError): the reference scheme and several pairs per weight, grouped
or non-zero-padded convolutions, the fitted device blocks (see
:mod:`xbarlab.devices.torch_sampling`), ADC gain/offset/INL errors and conversion noise,
calibrated ADC ranges, drift compensation, the exact circuit (wire resistance).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..devices.mapping import Scheme, WeightMapping, check_mapping, mapping_for
from ..devices.torch_sampling import (
    STATE_FIELDS,
    check_supported,
    needs_read_generator,
    program_cells,
    read_cells,
)
from ..errors import ConfigError

__all__ = ["convert", "AnalogModel", "AnalogLayer"]

_SIDES = ("pos", "neg")
# buffers whose shapes follow the data (the number of bias rows): resized on loading
_DATA_SHAPED = ("g_target_pos", "g_target_neg", "inv_alpha", "adc_full_scale", "w_read",
                *(f"{s}_{f}" for s in _SIDES for f in STATE_FIELDS))


def _bits(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 24:
        raise ConfigError(f"{name} must be an integer in 2..24 (signed codes) or None, got "
                          f"{value!r}")
    return value


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _map_tiles(W_aug: np.ndarray, mapping: WeightMapping, kin: int, kout: int, x_max: float,
               adc_range: float | None):
    """Targets G+ and G- (K, N) [S], 1 / alpha and the ADC full scale in output units (row
    tiles, N) of the bias-augmented matrix ``W_aug`` (K, N), with the crossbar's tiles
    (:func:`~xbarlab.crossbar.tiling.map_tiles`)."""
    from ..crossbar.converters import max_possible_current
    from ..crossbar.tiling import map_tiles

    K, N = W_aug.shape
    R = -(-K // kin)
    gp, gn = np.zeros((K, N)), np.zeros((K, N))
    inv_alpha, fs = np.zeros((R, N)), np.zeros((R, N))
    for (r0, r1, c0, c1), mw in map_tiles(W_aug, mapping, kin, kout):
        r = r0 // kin
        gp[r0:r1, c0:c1], gn[r0:r1, c0:c1] = mw.g_pos[0], mw.g_neg[0]
        inv_alpha[r, c0:c1] = 1.0 / mw.alpha
        if adc_range is not None:
            fs[r, c0:c1] = adc_range
        else:  # the tile's largest possible column current (inputs at x_max) over alpha
            i_max = max_possible_current((mw.g_pos[0], mw.g_neg[0]), 1.0)
            fs[r, c0:c1] = x_max * i_max * inv_alpha[r, c0:c1]
    return gp, gn, inv_alpha, fs


class AnalogLayer(nn.Module):
    """One ``nn.Linear`` or ``nn.Conv2d`` on crossbar tiles; see the module docstring.

    Built by :func:`convert` (arguments as there). Buffers: targets ``g_target_pos``,
    ``g_target_neg`` (rows of the bias-augmented matrix, n_out) [S]; ``inv_alpha`` (row
    tiles, n_out) [unit weight per S]; ``adc_full_scale`` (row tiles, n_out) in output
    units; the per-cell state ``pos_*``/``neg_*`` of
    :data:`~xbarlab.devices.torch_sampling.STATE_FIELDS`; ``w_read``, the effective
    weights of the last read; ``t_read`` [s] (NaN: not read); ``programmed``.
    """

    def __init__(self, layer: nn.Module, device_model, *, mapping: WeightMapping, tile,
                 dac_bits: int | None, adc_bits: int | None, x_max: float,
                 adc_range: float | None):
        super().__init__()
        from ..crossbar.converters import DAC
        from ..crossbar.tiling import bias_drive_level

        self.conv = None
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding,
                                                                                 str):
                raise ConfigError("Conv2d layers with groups > 1, a padding mode other than "
                                  "'zeros' or string padding are not supported yet")
            self.conv = {"kernel_size": layer.kernel_size, "stride": layer.stride,
                         "padding": layer.padding, "dilation": layer.dilation}
        elif not isinstance(layer, nn.Linear):
            raise ConfigError(f"analog layers are nn.Linear or nn.Conv2d, got "
                              f"{type(layer).__name__}")
        ref = layer.weight
        W = layer.weight.detach().to("cpu", torch.float64).reshape(layer.weight.shape[0], -1)
        W = W.numpy()
        b = None if layer.bias is None else layer.bias.detach().to("cpu", torch.float64).numpy()
        self.out_features, self.in_features = W.shape
        self.device_model = device_model
        self.mapping = mapping
        self.dac_bits, self.adc_bits, self.x_max = dac_bits, adc_bits, x_max
        self.rows_per_tile = tile.inputs_per_tile
        kout = tile.logical_outputs(mapping)
        n_b, s = 0, 0.0
        W_aug = W.T
        if b is not None:
            n_b, s = mapping.bias_rows(float(np.max(np.abs(W))), float(np.max(np.abs(b))),
                                       x_fs=x_max)
            s = bias_drive_level(s, x_max, DAC(bits=dac_bits))
            W_aug = np.vstack([W.T, np.broadcast_to(b / (n_b * s), (n_b, b.size))])
        gp, gn, inv_alpha, fs = _map_tiles(W_aug, mapping, self.rows_per_tile, kout, x_max,
                                           adc_range)
        K, N = gp.shape
        kw = {"dtype": ref.dtype, "device": ref.device}
        self.register_buffer("g_target_pos", torch.as_tensor(gp, **kw))
        self.register_buffer("g_target_neg", torch.as_tensor(gn, **kw))
        self.register_buffer("inv_alpha", torch.as_tensor(inv_alpha, **kw))
        self.register_buffer("adc_full_scale", torch.as_tensor(fs, **kw))
        self.register_buffer("bias_drive", torch.tensor(float(s), **kw))
        self.register_buffer("n_bias_rows", torch.tensor(n_b, device=ref.device))
        for side in _SIDES:
            for f in STATE_FIELDS:
                self.register_buffer(f"{side}_{f}", torch.zeros((K, N), **kw))
        self.register_buffer("w_read", torch.zeros((K, N), **kw))
        self.register_buffer("t_read", torch.tensor(math.nan, **kw))
        self.register_buffer("programmed", torch.tensor(False, device=ref.device))
        # Python copies of two buffers, so that the forward never waits for the GPU, and what
        # the forward takes from the last read (built by _prepared)
        self._n_b, self._is_read, self._fwd = n_b, False, None

    def extra_repr(self) -> str:
        kind = "conv2d" if self.conv else "linear"
        return (f"{kind}, in={self.in_features}, out={self.out_features}, "
                f"bias_rows={int(self.n_bias_rows)}, rows_per_tile={self.rows_per_tile}, "
                f"dac_bits={self.dac_bits}, adc_bits={self.adc_bits}, x_max={self.x_max}")

    # ------------------------------------------------------------------ program / read

    def program(self, generator: torch.Generator) -> AnalogLayer:
        """Program every cell (G+ then G-) with draws from ``generator``; forgets the read."""
        for side in _SIDES:
            st = program_cells(self.device_model, getattr(self, f"g_target_{side}"), generator)
            for f in STATE_FIELDS:
                getattr(self, f"{side}_{f}").copy_(st[f])
        self.programmed.fill_(True)
        self.t_read.fill_(math.nan)
        self._fwd, self._is_read = None, False
        return self

    def read(self, t: float, generator: torch.Generator | None = None) -> AnalogLayer:
        """Read every cell at ``t`` [s] after programming and cache the effective weights
        and what the forward takes from them (converter steps folded in, bias partial
        sums)."""
        if not bool(self.programmed):
            raise ConfigError("program(generator) the analog layer before read(t)")
        g = []
        for side in _SIDES:
            st = {f: getattr(self, f"{side}_{f}") for f in STATE_FIELDS}
            g.append(read_cells(self.device_model, st, t, generator))
        rows = torch.arange(g[0].shape[0], device=g[0].device) // self.rows_per_tile
        self.w_read.copy_((g[0] - g[1]) * self.inv_alpha[rows])
        self.t_read.fill_(float(t))
        self._fwd, self._is_read = None, True
        self._prepared()
        return self

    def effective(self) -> tuple[Tensor, Tensor | None]:
        """``(W_eff (n_out, n_in), b_eff (n_out,) or None)`` [1] of the last read: the
        mapping's inverse per tile, bias = drive times the bias rows' sum (before the
        converters)."""
        K = self.in_features
        b = None
        if int(self.n_bias_rows):
            b = self.bias_drive * self.w_read[K:].sum(dim=0)
        return self.w_read[:K].T, b

    # ------------------------------------------------------------------ forward

    def _prepared(self) -> dict:
        """What the forward takes from the last read, built once per read (again after
        loading or moving the layer): the effective weights of the input rows with the DAC
        step and, with an ADC, each row tile's 1 / full scale folded in (a tile's product is
        then in units of its ADC full scale), the ADC steps, and the bias rows' partial sums
        (their inputs are the constant drive): per row tile for the ADC, in all without."""
        if getattr(self, "_fwd", None) is not None:
            return self._fwd
        K, kin, n_b = self.in_features, self.rows_per_tile, self._n_b
        w, drive = self.w_read, self.bias_drive
        if self.dac_bits is not None:
            kd = 2 ** (self.dac_bits - 1) - 1
            w = w * (self.x_max / kd)
            drive = drive * (kd / self.x_max)
        if self.adc_bits is not None:
            rows = torch.arange(w.shape[0], device=w.device) // kin
            w = w / self.adc_full_scale[rows]
        w = w.contiguous()
        N = w.shape[1]
        n_full = K // kin  # row tiles of inputs only
        p = {"n_full": n_full, "w_in": w[:K], "w_full": w[:n_full * kin].view(n_full, kin, N),
             "w_part": w[n_full * kin:K]}
        if self.adc_bits is None:
            p["bias"] = drive.expand(1, n_b) @ w[K:] if n_b else None
            self._fwd = p
            return p
        step = self.adc_full_scale * (1.0 / (2 ** (self.adc_bits - 1) - 1))
        p["step_full"] = step[:n_full, None].contiguous()
        sums = {}  # bias rows' partial sum (1, N) per row tile that has bias rows
        K_aug = w.shape[0]
        for r in range(n_full, -(-K_aug // kin)):
            b0, b1 = max(r * kin, K), min((r + 1) * kin, K_aug)
            if b1 > b0:
                sums[r] = drive.expand(1, b1 - b0) @ w[b0:b1]
        # the partly filled input tile (if any) converts per input; bias-only tiles once here
        p["part"] = (step[n_full], sums.pop(n_full, None)) if K % kin else None
        const = None
        for r, u in sums.items():
            v = self._adc(u, step[r], True)
            const = v if const is None else const + v
        p["const"] = const
        self._fwd = p
        return p

    def _adc(self, u: Tensor, step: Tensor, inplace: bool) -> Tensor:
        """The signed ADC's output (codes times ``step``) of partial sums ``u`` in units of
        full scale; ``inplace`` overwrites ``u``."""
        from ..crossbar.converters import quantize_codes

        q = quantize_codes(u, bits=self.adc_bits, signed=True, inplace=inplace)
        return q.mul_(step) if inplace else q * step

    def _mvm(self, x: Tensor) -> Tensor:
        from ..crossbar.converters import quantize_codes

        p = self._prepared()
        # temporaries are overwritten unless autograd records the forward
        inplace = not (torch.is_grad_enabled() and x.requires_grad)
        if self.dac_bits is not None:
            scaled = self.x_max != 1.0  # x / 1 is x: no division, and x is left alone
            x = quantize_codes(x / self.x_max if scaled else x, bits=self.dac_bits,
                               signed=True, inplace=inplace and scaled)
        if self.adc_bits is None:
            return x @ p["w_in"] if p["bias"] is None else torch.addmm(p["bias"], x, p["w_in"])
        B, kin, n_full = x.shape[0], self.rows_per_tile, p["n_full"]
        x_part = x[:, n_full * kin:]
        # per row tile: the partial sums in units of the tile's ADC full scale, converted,
        # then summed digitally
        y = None
        if n_full:
            u = torch.matmul(x[:, :n_full * kin].reshape(B, n_full, kin).transpose(0, 1),
                             p["w_full"])
            q = self._adc(u, p["step_full"], inplace)
            y = q[0] if n_full == 1 else q[0] + q[1]  # as q.sum(0), without its zero fill
            for r in range(2, n_full):
                y = y.add_(q[r]) if inplace else y + q[r]
        if p["part"] is not None:
            step, bias = p["part"]
            u = x_part @ p["w_part"] if bias is None else torch.addmm(bias, x_part, p["w_part"])
            v = self._adc(u, step, inplace)
            y = v if y is None else (y.add_(v) if inplace else y + v)
        if p["const"] is not None:
            y = y.add_(p["const"]) if inplace else y + p["const"]
        return y

    def forward(self, x: Tensor) -> Tensor:
        """The layer's outputs through DAC, read conductances and ADC (see the module
        docstring); needs ``program`` and ``read`` first."""
        if not self._is_read:
            raise ConfigError("the analog layer has not been read: call program(generator) "
                              "and read(t) first")
        if self.conv is None:
            y = self._mvm(x.reshape(-1, self.in_features))
            return y.reshape(*x.shape[:-1], self.out_features)
        c = self.conv
        cols = F.unfold(x, c["kernel_size"], dilation=c["dilation"], padding=c["padding"],
                        stride=c["stride"])
        B, _, L = cols.shape
        y = self._mvm(cols.transpose(1, 2).reshape(B * L, self.in_features))
        ho, wo = (
            (x.shape[-2 + i] + 2 * c["padding"][i] - c["dilation"][i] * (c["kernel_size"][i] - 1)
             - 1) // c["stride"][i] + 1 for i in range(2))
        return y.reshape(B, L, self.out_features).transpose(1, 2).reshape(
            B, self.out_features, ho, wo)

    # ------------------------------------------------------------------ state_dict

    def _apply(self, fn, recurse=True):
        self._fwd = None  # .to(), .cuda(), .double(): rebuilt from the moved buffers
        return super()._apply(fn, recurse)

    def __getstate__(self):
        state = super().__getstate__()
        return {**state, "_fwd": None}  # torch.save(model): rebuilt from the buffers

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # a clean conversion of another network may have another number of bias rows
        for name in _DATA_SHAPED:
            src = state_dict.get(prefix + name)
            buf = self._buffers.get(name)
            if src is not None and buf is not None and src.shape != buf.shape:
                self._buffers[name] = torch.empty(src.shape, dtype=buf.dtype, device=buf.device)
        self._fwd = None
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._n_b = int(self.n_bias_rows)
        self._is_read = not math.isnan(float(self.t_read))


class AnalogModel(nn.Module):
    """A converted network (``network``: the copy whose analog layers are
    :class:`AnalogLayer`); runs like the original once programmed and read."""

    def __init__(self, network: nn.Module, device_model):
        super().__init__()
        self.network = network
        self.device_model = device_model

    def forward(self, *args, **kwargs):
        return self.network(*args, **kwargs)

    def analog_layers(self) -> dict[str, AnalogLayer]:
        """The analog layers by their names in ``network``."""
        return {n: m for n, m in self.network.named_modules() if isinstance(m, AnalogLayer)}

    def program(self, generator: torch.Generator) -> AnalogModel:
        """Program every analog layer (in module order) with draws from ``generator``, a
        :class:`torch.Generator` on the model's device; same seed, same bits."""
        if not isinstance(generator, torch.Generator):
            raise ConfigError(f"generator must be a torch.Generator, got "
                              f"{type(generator).__name__}")
        for layer in self.analog_layers().values():
            dev = layer.g_target_pos.device
            if torch.device(generator.device).type != dev.type:
                raise ConfigError(f"generator is on {generator.device}, the model on {dev}: "
                                  f"pass torch.Generator(device={str(dev)!r})")
            layer.program(generator)
        return self

    def read(self, t: float, generator: torch.Generator | None = None) -> AnalogModel:
        """Read every analog layer at ``t`` [s] after programming (drift and read noise of
        the device model) and cache its effective weights. ``generator`` draws short-term
        read noise, needed only when the device model has it."""
        if needs_read_generator(self.device_model) and not isinstance(generator,
                                                                      torch.Generator):
            raise ConfigError("the device model has short-term read noise: read(t, generator) "
                              "needs a torch.Generator")
        for layer in self.analog_layers().values():
            layer.read(t, generator)
        return self

    def cuda_graph(self, x: Tensor, *, warmup: int = 3):
        """Capture the forward at ``x``'s shape in a CUDA graph, for inference on a GPU.

        At small sizes a GPU forward is bound by launching its kernels (about ten per
        analog layer against one for ``nn.Linear``); a replay launches them as one graph.
        The graph runs the same kernels on the same conductances as the eager forward, so
        its outputs equal the eager outputs bit for bit.

        Parameters
        ----------
        x : torch.Tensor
            An input of the shape, dtype and CUDA device later inputs will have; the model
            must be programmed and read.
        warmup : int
            Eager forwards on a side stream before capture (>= 1) [1].

        Returns
        -------
        callable
            ``f(x) -> Tensor`` without autograd. The returned tensor is the graph's output
            buffer, overwritten by the next call (clone it to keep it). The graph holds the
            conductances of the last ``read``: after another ``read``, ``program``, ``.to()``
            or ``load_state_dict``, capture again (the old callable raises ConfigError).
        """
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
            raise ConfigError(f"warmup must be an integer >= 1, got {warmup!r}")
        layers = list(self.analog_layers().values())
        for layer in layers:
            if not layer._is_read:
                raise ConfigError("the analog layer has not been read: call "
                                  "program(generator) and read(t) before cuda_graph")
        if not isinstance(x, Tensor) or x.device.type != "cuda":
            raise ConfigError("cuda_graph needs an input tensor on a CUDA device, got "
                              + (f"one on {x.device}" if isinstance(x, Tensor)
                                 else type(x).__name__))
        static_x = x.detach().clone()
        with torch.no_grad():
            prepared = [layer._prepared() for layer in layers]
            side = torch.cuda.Stream(device=x.device)
            side.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    self(static_x)
            torch.cuda.current_stream(x.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_y = self(static_x)

        def replay(inp: Tensor) -> Tensor:
            if any(layer._fwd is not p for layer, p in zip(layers, prepared, strict=True)):
                raise ConfigError("the model was read, programmed, moved or loaded after "
                                  "cuda_graph captured it: capture again")
            if (not isinstance(inp, Tensor) or inp.shape != static_x.shape
                    or inp.dtype != static_x.dtype or inp.device != static_x.device):
                raise ConfigError(
                    f"the graph was captured for a {tuple(static_x.shape)} "
                    f"{static_x.dtype} tensor on {static_x.device}, got "
                    + (f"a {tuple(inp.shape)} {inp.dtype} tensor on {inp.device}"
                       if isinstance(inp, Tensor) else type(inp).__name__))
            static_x.copy_(inp)
            graph.replay()
            return static_y

        return replay


def convert(model: nn.Module, device_model, *, mapping: WeightMapping | None = None,
            tile=None, dac_bits: int | None = 8, adc_bits: int | None = 8,
            x_max: float = 1.0, adc_range: float | None = None, dtype: torch.dtype | None = None,
            layers=None, allow_extrapolation: bool = False) -> AnalogModel:
    """A copy of ``model`` whose ``nn.Linear``/``nn.Conv2d`` layers run on analog tiles.

    Parameters
    ----------
    model : torch.nn.Module
        The trained network (left unchanged).
    device_model
        The device model the cells follow (an ``IdealDevice`` or a ``CompositeDevice`` of
        parametric blocks, see :mod:`xbarlab.devices.torch_sampling`).
    mapping : WeightMapping, optional
        Weights to conductances (default :func:`~xbarlab.devices.mapping.mapping_for`
        ``(device_model)``: one differential pair over the model's range, one alpha per
        tile); its ``g_min..g_max`` [S] must lie in the device's range unless
        ``allow_extrapolation``.
    tile : TileConfig, optional
        Tile size (default ``crossbar.TileConfig()``: 256 x 256 physical, 256 inputs x 128
        outputs of differential pairs).
    dac_bits, adc_bits : int or None
        Signed converter resolution, sign included, 2..24 [1]; None: ideal.
    x_max : float
        Input mapped to the DAC's full scale [1] (inputs beyond it clip).
    adc_range : float, optional
        ADC full scale of every tile's partial sums, in output units [1]; default: the
        tile's largest possible column current (all inputs at ``x_max``, the target
        conductances) in output units.
    dtype : torch.dtype, optional
        float32 or float64 (default: the model's floating dtype); the copy, its state and
        its sampling use it.
    layers : iterable of str, optional
        Names of the layers to convert (default: every Linear and Conv2d).
    allow_extrapolation : bool
        Accept a mapping range outside the device model's range.

    Returns
    -------
    AnalogModel
        Call ``program(generator)`` once, then ``read(t)`` before running it.
    """
    from ..crossbar.tiling import TileConfig

    if not isinstance(model, nn.Module):
        raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_supported(device_model)
    mapping = (mapping_for(device_model) if mapping is None else
               check_mapping(device_model, mapping, allow_extrapolation=allow_extrapolation))
    if mapping.scheme is not Scheme.DIFFERENTIAL or mapping.n_pairs != 1:
        raise ConfigError("the converted model supports one differential pair per weight; "
                          f"got scheme {mapping.scheme.value!r}, n_pairs {mapping.n_pairs} "
                          "(not supported yet)")
    tile = TileConfig() if tile is None else tile
    if not isinstance(tile, TileConfig):
        raise ConfigError(f"tile must be a crossbar.TileConfig, got {type(tile).__name__}")
    opts = {"dac_bits": _bits(dac_bits, "dac_bits"), "adc_bits": _bits(adc_bits, "adc_bits"),
            "x_max": _positive(x_max, "x_max"),
            "adc_range": None if adc_range is None else _positive(adc_range, "adc_range")}
    if dtype is None:
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()),
                     torch.float32)
    if dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    net = copy.deepcopy(model).to(dtype)
    mods = dict(net.named_modules())
    kinds = (nn.Linear, nn.Conv2d)
    names = [n for n, m in mods.items() if isinstance(m, kinds)] if layers is None else list(
        layers)
    for n in names:
        if n not in mods or not isinstance(mods[n], kinds):
            raise ConfigError(f"layer {n!r} is not an nn.Linear or nn.Conv2d of the model")
    if not names:
        raise ConfigError("the model has no nn.Linear or nn.Conv2d layer to convert")
    for n in names:
        parent, _, leaf = n.rpartition(".")
        setattr(mods[parent] if parent else net, leaf,
                AnalogLayer(mods[n], device_model, mapping=mapping, tile=tile, **opts))
    return AnalogModel(net, device_model)
