"""Tiled analog layers: a weight matrix larger than one array, split over crossbar tiles.

Data flow of :class:`TiledMatrix` (numpy only; ``nn/`` wraps it as torch layers)::

    W (K, N) weights, b (N,) bias
      -> bias rows appended to W (driven at the full-scale input)          [mapping]
      -> split into tiles of ``rows`` inputs x ``cols`` outputs            [tiling]
      -> per tile: weights -> (G_pos, G_neg) targets [S], scale s [S]      [mapping]
      -> device model: program once (rng), read at time t [S]              [devices]
    x (B, K) inputs
      -> DAC: row voltages (amplitude / bit-serial / pulse-width)          [converters]
      -> exact circuit per tile: differential column pairs or interleaved
         differential rows, wire/driver/sense/access resistances            [circuit]
      -> ADC per tile column (partial sums, per-chip gain/offset/INL)      [converters]
      -> digital: partial sums divided by the tile scale, added over tiles -> y (B, N)

The weight convention is the crossbar's: ``y = x @ W + b`` with ``W`` of shape
(in_features, out_features) = (rows, columns). (torch's ``Linear`` stores the transpose.)

Mapping weights to conductances (one device pair per weight, ``G_pos - G_neg`` proportional to
the weight): ``G_pos = g_min + s * max(W, 0)``, ``G_neg = g_min + s * max(-W, 0)`` with the scale
``s = (g_max - g_min) / max|W|`` [S] per tile (or per tile column, ``scale="column"``); the
weight is recovered as ``(G_pos - G_neg) / s``. The bias uses ``n_b`` extra rows, driven at the
DAC's full scale, each carrying ``b / (n_b * x_max)`` as a weight, with ``n_b`` the smallest
count that keeps those weights within ``max|W|``, so weights and bias share the device range.
When :mod:`xbarlab.devices.mapping` provides the mapping, that module is the reference; this
module keeps to the same convention.

With ideal devices, zero resistances and ideal converters, the output equals ``x @ W + b`` to
rounding (tested to 1e-12).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .converters import ADC, DAC, ADCChip, RangeMode, analog_mvm

__all__ = [
    "Layout",
    "ScaleMode",
    "TileConfig",
    "TiledMatrix",
    "tiled_matmul",
    "tiled_conv2d",
    "im2col",
    "conv2d_reference",
]


class Layout(enum.StrEnum):
    """How a weight's device pair sits in the array (see :mod:`.topologies`)."""

    #: ``G_pos`` and ``G_neg`` in adjacent columns, subtracted at the sense amplifier.
    DIFFERENTIAL_COLUMNS = "differential-columns"
    #: ``G_pos`` and ``G_neg`` in adjacent rows driven at ``+v`` and ``-v``.
    DIFFERENTIAL_ROWS = "differential-rows"


class ScaleMode(enum.StrEnum):
    """Granularity of the weight-to-conductance scale ``s``."""

    TILE = "tile"
    COLUMN = "column"


_WIRE_NAMES = ("r_row", "r_col", "r_driver", "r_sense", "r_access")


@dataclass(frozen=True)
class TileConfig:
    """One crossbar tile and its periphery."""

    #: physical rows of one array (inputs; ``differential-rows`` uses two per input). [1]
    rows: int = 256
    #: physical columns of one array (``differential-columns`` uses two per output). [1]
    cols: int = 256
    #: device-pair layout (:class:`Layout`).
    layout: Layout = Layout.DIFFERENTIAL_COLUMNS
    #: ``g_min``: conductance of a device holding weight 0 (None: the device model's lower
    #: bound). [S]
    g_min: float | None = None
    #: ``g_max``: conductance of a device holding the largest weight magnitude (None: the
    #: device model's upper bound, which must then be finite). [S]
    g_max: float | None = None
    #: per-tile or per-column weight scale (:class:`ScaleMode`).
    scale: ScaleMode = ScaleMode.TILE
    #: ``r_row``: row-wire resistance per cell pitch (scalar). [Ohm]
    r_row: float = 0.0
    #: ``r_col``: column-wire resistance per cell pitch (scalar). [Ohm]
    r_col: float = 0.0
    #: ``r_driver``: row-driver output resistance. [Ohm]
    r_driver: float = 0.0
    #: ``r_sense``: sense-amplifier input resistance. [Ohm]
    r_sense: float = 0.0
    #: ``r_access``: series resistance of each cell's access device. [Ohm]
    r_access: float = 0.0

    def __post_init__(self):
        for name in ("rows", "cols"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ConfigError(f"tile {name} must be a positive integer, got {val!r}")
        try:
            object.__setattr__(self, "layout", Layout(self.layout))
        except ValueError:
            raise ConfigError(f"unknown layout {self.layout!r}; valid: "
                              f"{[m.value for m in Layout]}") from None
        try:
            object.__setattr__(self, "scale", ScaleMode(self.scale))
        except ValueError:
            raise ConfigError(f"unknown scale {self.scale!r}; valid: "
                              f"{[m.value for m in ScaleMode]}") from None
        if self.layout is Layout.DIFFERENTIAL_COLUMNS and self.cols % 2:
            raise ConfigError(f"layout='differential-columns' needs an even cols, got {self.cols}")
        if self.layout is Layout.DIFFERENTIAL_ROWS and self.rows % 2:
            raise ConfigError(f"layout='differential-rows' needs an even rows, got {self.rows}")
        for name in _WIRE_NAMES:
            val = getattr(self, name)
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
                raise ConfigError(f"{name} must be a finite resistance >= 0 Ohm, got {val!r}")
        for name in ("g_min", "g_max"):
            val = getattr(self, name)
            if val is not None and not (math.isfinite(val) and val >= 0):
                raise ConfigError(f"{name} must be a finite conductance >= 0 S, got {val!r}")
        if self.g_min is not None and self.g_max is not None and not self.g_max > self.g_min:
            raise ConfigError(f"g_max ({self.g_max} S) must exceed g_min ({self.g_min} S)")

    @property
    def inputs_per_tile(self) -> int:
        """Logical inputs (weight rows) per tile. [1]"""
        return self.rows // 2 if self.layout is Layout.DIFFERENTIAL_ROWS else self.rows

    @property
    def outputs_per_tile(self) -> int:
        """Logical outputs (weight columns) per tile. [1]"""
        return self.cols // 2 if self.layout is Layout.DIFFERENTIAL_COLUMNS else self.cols

    @property
    def wires(self) -> dict[str, float]:
        return {n: float(getattr(self, n)) for n in _WIRE_NAMES}

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["layout"] = self.layout.value
        d["scale"] = self.scale.value
        return d

    @classmethod
    def from_dict(cls, d) -> TileConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown TileConfig fields {sorted(unknown)}")
        return cls(**d)


@dataclass(eq=False)
class _Tile:
    r0: int  # first logical input row (of the bias-augmented matrix)
    r1: int
    c0: int  # first logical output
    c1: int
    scale: np.ndarray  # (n_out,) [S] per output (equal entries for ScaleMode.TILE)
    g_pos: np.ndarray  # targets [S]
    g_neg: np.ndarray
    state_pos: object = None
    state_neg: object = None
    adc: ADCChip | None = None
    read_pos: np.ndarray | None = None
    read_neg: np.ndarray | None = None
    solver: Callable | None = field(default=None, repr=False)


def _bias_rows(W: np.ndarray, b: np.ndarray | None, x_max: float):
    """(n_b, W_aug) with the bias as n_b rows of weight b / (n_b x_max)."""
    if b is None:
        return 0, W
    wmax = float(np.max(np.abs(W), initial=0.0))
    bmax = float(np.max(np.abs(b), initial=0.0))
    if bmax == 0:
        return 0, W
    n_b = 1 if wmax == 0 else max(1, math.ceil(bmax / (x_max * wmax) * (1 - 1e-12)))
    rows = np.broadcast_to(b / (n_b * x_max), (n_b, b.size))
    return n_b, np.vstack([W, rows])


class TiledMatrix:
    """A weight matrix ``W`` (K, N) [1] with bias ``b`` (N,) [1] programmed onto crossbar tiles.

    Parameters (keyword-only after ``W``):
    ``bias`` (N,) or None; ``tile``: :class:`TileConfig`; ``device``: a device model
    (:mod:`xbarlab.devices`, e.g. ``devices.load("pcm-ibm-2020")``; default an ideal device);
    ``rng``: ``numpy.random.Generator`` for programming and the ADC's static errors (required
    unless everything is ideal); ``dac``: :class:`DAC` (default ideal: ``bits=None``); ``adc``:
    :class:`ADC` or None (ideal); a ``max-possible`` ADC range is resolved per tile from its
    conductances, a ``calibrated`` one by :meth:`calibrate`; ``x_max``: input mapped to the
    DAC's full scale [1]; ``cell``: nonlinear cell model of :mod:`.nonlinear` or None (linear);
    ``t``: time of the first read after programming [s].

    The device pairs are programmed once here; :meth:`read` reads them at time ``t`` [s] after
    programming (drift and read noise per the device model); :meth:`forward` runs inputs.
    """

    def __init__(self, W, *, bias=None, tile: TileConfig | None = None, device=None,
                 rng: np.random.Generator | None = None, dac: DAC | None = None,
                 adc: ADC | None = None, x_max: float = 1.0, cell=None, t: float = 0.0):
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2 or 0 in W.shape:
            raise ConfigError(f"W must have shape (in_features, out_features), got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ConfigError("W must be finite")
        if not (math.isfinite(x_max) and x_max > 0):
            raise ConfigError(f"x_max must be a finite input scale > 0, got {x_max!r}")
        self.in_features, self.out_features = W.shape
        b = None
        if bias is not None:
            b = np.asarray(bias, dtype=np.float64)
            if b.shape != (self.out_features,) or not np.all(np.isfinite(b)):
                raise ConfigError(f"bias must be finite with shape ({self.out_features},), got "
                                  f"{b.shape}")
        self.tile = tile if tile is not None else TileConfig()
        if device is None:
            from ..devices import IdealDevice

            device = IdealDevice()
        self.device = device
        self.dac = dac if dac is not None else DAC(bits=None)
        self.adc = adc
        self.x_max = float(x_max)
        self.cell = cell
        lo, hi = (float(x) for x in getattr(device, "g_range", (0.0, np.inf)))
        g_min = self.tile.g_min if self.tile.g_min is not None else lo
        g_max = self.tile.g_max if self.tile.g_max is not None else hi
        if not math.isfinite(g_max):
            raise ConfigError("TileConfig.g_max is needed: the device model's range has no "
                              "finite upper bound")
        if g_min < lo or g_max > hi or not g_max > g_min:
            raise ConfigError(f"g_min..g_max = {g_min}..{g_max} S must lie inside the device "
                              f"range {lo}..{hi} S with g_max > g_min")
        self.g_min, self.g_max = g_min, g_max
        self.n_bias_rows, W_aug = _bias_rows(W, b, self.x_max)
        self.W = W
        self.bias = b
        self._W_aug = W_aug
        self.tiles: list[_Tile] = []
        kin, kout = self.tile.inputs_per_tile, self.tile.outputs_per_tile
        Kaug = W_aug.shape[0]
        needs_rng = not _is_ideal(device)
        if needs_rng and rng is None:
            raise ConfigError("a non-ideal device model needs rng (numpy.random.Generator)")
        for r0 in range(0, Kaug, kin):
            for c0 in range(0, self.out_features, kout):
                r1, c1 = min(r0 + kin, Kaug), min(c0 + kout, self.out_features)
                Wt = W_aug[r0:r1, c0:c1]
                if self.tile.scale is ScaleMode.TILE:
                    wmax = np.full(c1 - c0, np.max(np.abs(Wt), initial=0.0))
                else:
                    wmax = np.max(np.abs(Wt), axis=0, initial=0.0)
                wmax = np.where(wmax > 0, wmax, 1.0)
                s = (g_max - g_min) / wmax
                gp = g_min + s * np.maximum(Wt, 0.0)
                gn = g_min + s * np.maximum(-Wt, 0.0)
                # rounding may step a hair beyond g_max; the device model checks its range
                gp, gn = np.minimum(gp, g_max), np.minimum(gn, g_max)
                tl = _Tile(r0, r1, c0, c1, s, gp, gn)
                if needs_rng:
                    tl.state_pos = device.program(gp, rng)
                    tl.state_neg = device.program(gn, rng)
                self.tiles.append(tl)
        self._adc_rng = rng
        self._t = None
        self.read(t, rng)

    # -- devices -----------------------------------------------------------------------------

    def read(self, t: float, rng: np.random.Generator | None = None) -> TiledMatrix:
        """Read every device at time ``t`` [s] after programming (drift + read noise), keep the
        conductances for the following :meth:`forward` calls, and (re)build the tile solvers."""
        ideal = _is_ideal(self.device)
        if not ideal and rng is None:
            raise ConfigError("reading a non-ideal device model needs rng")
        for tl in self.tiles:
            if ideal:
                tl.read_pos, tl.read_neg = tl.g_pos, tl.g_neg
            else:
                tl.read_pos = np.asarray(self.device.read(tl.state_pos, t, rng), dtype=np.float64)
                tl.read_neg = np.asarray(self.device.read(tl.state_neg, t, rng), dtype=np.float64)
            tl.solver = _tile_solver(tl.read_pos, tl.read_neg, self.tile, self.cell)
        self._t = float(t)
        self._setup_adcs()
        return self

    def _setup_adcs(self, calibration=None):
        if self.adc is None:
            for tl in self.tiles:
                tl.adc = None
            return
        for k, tl in enumerate(self.tiles):
            adc = self.adc
            if adc.range_mode is RangeMode.MAX_POSSIBLE:
                adc = adc.resolve(G=(tl.read_pos, tl.read_neg), v_max=self.dac.v_max)
            elif adc.range_mode is RangeMode.CALIBRATED:
                if calibration is None:
                    tl.adc = None  # resolved by calibrate()
                    continue
                adc = adc.resolve(currents=calibration[k])
            if tl.adc is not None:
                # same chip, new range: keep its static errors (drawn once per chip)
                tl.adc = ADCChip(adc=adc, n_columns=tl.adc.n_columns,
                                 gain_error=tl.adc.gain_error, offset=tl.adc.offset,
                                 inl_coef=tl.adc.inl_coef)
                continue
            needs = adc.gain_error_std > 0 or adc.offset_std > 0 or adc.inl_max > 0
            tl.adc = adc.instance(tl.c1 - tl.c0, self._adc_rng if needs else None)

    def calibrate(self, x) -> TiledMatrix:
        """Set a ``calibrated`` ADC range per tile from the ideal-ADC currents of inputs ``x``."""
        if self.adc is None or self.adc.range_mode is not RangeMode.CALIBRATED:
            raise ConfigError("calibrate() needs adc with range_mode='calibrated'")
        x = self._check_x(x)
        currents = []
        for tl in self.tiles:
            xi = self._tile_inputs(x, tl)
            currents.append(analog_mvm(xi, tl.solver, dac=self.dac, adc=None, x_max=self.x_max))
        self._setup_adcs(calibration=currents)
        return self

    # -- inference ---------------------------------------------------------------------------

    def _check_x(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim not in (1, 2) or x.shape[-1] != self.in_features:
            raise ConfigError(f"x must have shape ({self.in_features},) or (B, "
                              f"{self.in_features}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ConfigError("x must be finite")
        return np.atleast_2d(x)

    def _tile_inputs(self, x, tl):
        B = x.shape[0]
        K = self.in_features
        cols = []
        lo, hi = tl.r0, tl.r1
        if lo < K:
            cols.append(x[:, lo:min(hi, K)])
        if hi > K:
            cols.append(np.full((B, hi - max(lo, K)), self.x_max))
        return np.hstack(cols)

    def forward(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        """Outputs ``y`` (B, N) or (N,) [1] for inputs ``x`` (B, K) or (K,) [1].

        ``rng`` draws the ADC's conversion noise (when ``noise_std > 0``).
        """
        single = np.ndim(x) == 1
        xb = self._check_x(x)
        if any(tl.adc is None for tl in self.tiles) and self.adc is not None:
            raise ConfigError("the ADC range is 'calibrated': call calibrate(x) first")
        y = np.zeros((xb.shape[0], self.out_features))
        v_max = self.dac.v_max
        for tl in self.tiles:
            xi = self._tile_inputs(xb, tl)
            I = analog_mvm(xi, tl.solver, dac=self.dac, adc=tl.adc, x_max=self.x_max, rng=rng)
            # I = (x / x_max) v_max s w  ->  w-domain partial sum
            y[:, tl.c0:tl.c1] += I * (self.x_max / (v_max * tl.scale))
        return y[0] if single else y

    __call__ = forward

    def effective_weights(self) -> np.ndarray:
        """The weights the read conductances stand for, ``(G_pos - G_neg) / s`` (K, N) [1]
        (bias rows excluded), before wires and converters."""
        Wr = np.zeros_like(self._W_aug)
        for tl in self.tiles:
            Wr[tl.r0:tl.r1, tl.c0:tl.c1] = (tl.read_pos - tl.read_neg) / tl.scale
        return Wr[: self.in_features]

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)


def _is_ideal(device) -> bool:
    from ..devices import IdealDevice

    return isinstance(device, IdealDevice)


def _tile_solver(gp, gn, tile: TileConfig, cell):
    """``mvm(v (B, k)) -> I (B, n)`` [A] of one tile: exact circuit, differential outputs."""
    from .topologies import physical_layout

    wires = tile.wires
    topology = tile.layout.value
    Gphys, _, combine = physical_layout((gp, gn), np.zeros(gp.shape[0]), topology)
    rows_phys = Gphys.shape[0]

    def to_phys(v):
        if tile.layout is Layout.DIFFERENTIAL_ROWS:
            vp = np.empty(v.shape[:-1] + (rows_phys,))
            vp[..., 0::2], vp[..., 1::2] = v, -v
            return vp
        return v

    if cell is not None:
        from .topologies import column_currents as cc_topo

        def mvm(v):
            return cc_topo((gp, gn), v, topology=topology, cell=cell, **wires)

        return mvm
    if all(r == 0 for r in wires.values()):
        def mvm(v):
            return combine(to_phys(v) @ Gphys)

        return mvm
    xb = _crossbar(Gphys, wires)

    def mvm(v):
        return combine(xb(to_phys(v)))

    return mvm


def _crossbar(G, wires):
    """Part 1's exact solver (effective matrix for batches) when present, else topologies'."""
    try:
        from .circuit import Crossbar, WireParams
    except ImportError:  # pragma: no cover - part 1 absent
        from .topologies import column_currents as cc_topo

        return lambda v: cc_topo(G, v, **wires)
    xb = Crossbar(G, wires=WireParams(**wires))

    def mvm(v):
        v = np.atleast_2d(v)
        if v.shape[0] >= 8:
            xb.effective_matrix()
        return xb.mvm(v)

    return mvm


def tiled_matmul(x, W, *, bias=None, rng=None, **options) -> np.ndarray:
    """One-shot ``x @ W + b`` through :class:`TiledMatrix` (programmed anew, read at ``t``).

    ``options``: the keyword arguments of :class:`TiledMatrix` (tile, device, dac, adc, x_max,
    cell, t).
    """
    tm = TiledMatrix(W, bias=bias, rng=rng, **options)
    if tm.adc is not None and tm.adc.range_mode is RangeMode.CALIBRATED:
        tm.calibrate(x)
    return tm.forward(x, rng)


# --------------------------------------------------------------------------------- conv2d


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        v = (int(v), int(v))
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or any(isinstance(e, bool) or not isinstance(e, (int, np.integer)) for e in v)):
        raise ConfigError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


def im2col(x, kernel_size, *, stride=1, padding=0) -> tuple[np.ndarray, tuple[int, int]]:
    """Patches of ``x`` (B, C, H, W) as rows (B * H_out * W_out, C * kh * kw), and
    (H_out, W_out). Patch entries are ordered (c, i, j) like torch's ``Conv2d`` weight."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ConfigError(f"x must have shape (B, C, H, W), got {x.shape}")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ConfigError("kernel_size and stride must be >= 1, padding >= 0")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    B, C, H, Wd = xp.shape
    if H < kh or Wd < kw:
        raise ConfigError(f"kernel {kh}x{kw} larger than the padded input {H}x{Wd}")
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    Ho, Wo = win.shape[2], win.shape[3]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(B * Ho * Wo, C * kh * kw)
    return np.ascontiguousarray(cols), (Ho, Wo)


def conv2d_reference(x, weight, bias=None, *, stride=1, padding=0) -> np.ndarray:
    """Direct (loop over kernel offsets) 2-D cross-correlation, float64: the reference."""
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    O, C, kh, kw = weight.shape
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    B, _, H, Wd = xp.shape
    Ho, Wo = (H - kh) // sh + 1, (Wd - kw) // sw + 1
    out = np.zeros((B, O, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
            out += np.einsum("bchw,oc->bohw", patch, weight[:, :, i, j])
    if bias is not None:
        out += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out


def tiled_conv2d(x, weight, bias=None, *, stride=1, padding=0, matrix: TiledMatrix | None = None,
                 rng=None, **options) -> np.ndarray:
    """2-D convolution (torch's ``Conv2d`` semantics, cross-correlation) on crossbar tiles.

    ``x`` (B, C, H, W), ``weight`` (O, C, kh, kw), ``bias`` (O,). The kernel becomes the matrix
    ``W = weight.reshape(O, -1).T`` (C*kh*kw, O); patches (im2col) are its inputs. Pass a
    programmed ``matrix`` (a :class:`TiledMatrix` of that ``W``) to reuse devices across calls;
    otherwise ``options`` build one (see :func:`tiled_matmul`). Returns (B, O, H_out, W_out).
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4:
        raise ConfigError(f"weight must have shape (O, C, kh, kw), got {weight.shape}")
    O, C, kh, kw = weight.shape
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] != C:
        raise ConfigError(f"x must have shape (B, {C}, H, W), got {x.shape}")
    cols, (Ho, Wo) = im2col(x, (kh, kw), stride=stride, padding=padding)
    if matrix is None:
        matrix = TiledMatrix(weight.reshape(O, -1).T, bias=bias, rng=rng, **options)
        if matrix.adc is not None and matrix.adc.range_mode is RangeMode.CALIBRATED:
            matrix.calibrate(cols)
    elif matrix.in_features != C * kh * kw or matrix.out_features != O:
        raise ConfigError(f"matrix is {matrix.in_features}x{matrix.out_features}, the kernel "
                          f"needs {C * kh * kw}x{O}")
    y = matrix.forward(cols, rng)
    return y.reshape(x.shape[0], Ho, Wo, O).transpose(0, 3, 1, 2)
