"""Tiled analog layers: a weight matrix larger than one array, split over crossbar tiles.

Data flow of :class:`TiledMatrix` (numpy only; ``nn/`` wraps it as torch layers)::

    W (N, K) weights (n_out, n_in), b (N,) bias
      -> bias rows appended to W (WeightMapping.bias_rows, DAC full scale)  [devices.mapping]
      -> split into tiles of ``inputs_per_tile`` x ``outputs_per_tile``     [tiling]
      -> per tile: WeightMapping.to_conductances -> MappedWeights [S]       [devices.mapping]
      -> device model: program once (rng, per-cell state kept), read at t  [devices]
    x (B, K) inputs
      -> DAC: row voltages (amplitude / bit-serial / pulse-width)          [converters]
      -> exact circuit per tile (every device pair, reference column and
         wire/driver/sense/access resistance of the physical array)        [circuit]
      -> analog subtraction (G+ - G-, or G - G_ref), ADC per physical output
         column (partial sums, per-chip gain/offset/INL)                   [converters]
      -> digital: MappedWeights.outputs_from_difference (pair significance,
         1/alpha), summed over row tiles, times the drift-compensation
         factors (devices.mapping.compensation_factors) -> y (B, N)

The weight convention is torch's ``nn.Linear`` one, as in :mod:`xbarlab.devices.mapping`:
``W`` of shape (n_out, n_in) and ``y = x @ W.T + b``. On the array, inputs drive rows and
outputs are read from columns, so each tile's conductance matrix is (rows, columns) =
(inputs, outputs).

Mapping weights to conductances is :class:`xbarlab.devices.mapping.WeightMapping`'s, per tile:
differential pairs (``G+ - G- = alpha w``) or one device per weight against a shared
reference column at ``(g_min + g_max) / 2``; ``alpha`` per tile or per tile column; several
pairs of significance ``F^-k`` per weight. Pass ``mapping=WeightMapping(...)`` (e.g. from
:func:`xbarlab.devices.mapping.mapping_for`), or leave it None for ``mapping_for(device)``:
one differential pair over the device model's range. The bias takes ``n_b`` extra rows
(``WeightMapping.bias_rows`` with the DAC full scale ``x_max`` as ``x_fs``), driven at
``s <= x_max`` (raised to the next DAC level when the DAC quantizes) and carrying
``b / (n_b s)``, so weights and bias share the device range.

Physical arrays (``layout``): differential pairs in adjacent columns (``G+`` then ``G-`` of
pair 0 of output 0, then pair 1, ...; ``2 P`` columns per output) or in adjacent rows driven
at ``+v`` and ``-v`` (``P`` columns per output); the reference scheme needs
``differential-columns`` and holds ``cols - 1`` outputs plus one reference column.

With ideal devices, zero resistances and ideal converters, the output equals ``x @ W.T + b`` to
rounding (tested to 1e-12) for every mapping.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..checks import check_rng
from ..devices.mapping import (
    Compensation,
    CompensationReference,
    MappedWeights,
    Scaling,
    Scheme,
    WeightMapping,
    calibration_input,
    check_mapping,
    column_calibration_inputs,
    compensation_factors,
    global_drift_factor,
    mapping_for,
)
from ..enums import coerce_enum
from ..errors import ConfigError
from .circuit import Crossbar
from .converters import ADC, DAC, ADCChip, RangeMode, analog_mvm
from .currents import column_currents
from .grid import WireParams
from .topologies import Topology, differential_array

__all__ = [
    "PairLayout",
    "ScaleMode",
    "TileConfig",
    "TiledMatrix",
    "tiled_matmul",
    "tiled_conv2d",
    "im2col",
    "conv2d_reference",
    "bias_drive_level",
    "tile_blocks",
    "map_tiles",
]


class PairLayout(enum.StrEnum):
    """How a weight's device pair sits in the array (see :mod:`.topologies`)."""

    #: ``G_pos`` and ``G_neg`` in adjacent columns, subtracted at the sense amplifier (the
    #: reference scheme: ``G`` columns and one shared reference column).
    DIFFERENTIAL_COLUMNS = "differential-columns"
    #: ``G_pos`` and ``G_neg`` in adjacent rows driven at ``+v`` and ``-v``.
    DIFFERENTIAL_ROWS = "differential-rows"


#: Granularity of the weight-to-conductance scale (the mapping's :class:`Scaling`).
ScaleMode = Scaling

_WIRE_NAMES = ("r_row", "r_col", "r_driver", "r_sense", "r_access")


@dataclass(frozen=True)
class TileConfig:
    """One crossbar tile and its periphery (the weight mapping is a
    :class:`~xbarlab.devices.mapping.WeightMapping`, given to :class:`TiledMatrix`)."""

    #: physical rows of one array (inputs; ``differential-rows`` uses two per input). [1]
    rows: int = 256
    #: physical columns of one array (``differential-columns`` uses two per output and pair).
    #: [1]
    cols: int = 256
    #: device-pair layout (:class:`PairLayout`).
    layout: PairLayout = PairLayout.DIFFERENTIAL_COLUMNS
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
        object.__setattr__(self, "layout", coerce_enum(PairLayout, self.layout, "layout"))
        if self.layout is PairLayout.DIFFERENTIAL_COLUMNS and self.cols % 2:
            raise ConfigError(f"layout='differential-columns' needs an even cols, got {self.cols}")
        if self.layout is PairLayout.DIFFERENTIAL_ROWS and self.rows % 2:
            raise ConfigError(f"layout='differential-rows' needs an even rows, got {self.rows}")
        for name in _WIRE_NAMES:
            val = getattr(self, name)
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val >= 0):
                raise ConfigError(f"{name} must be a finite resistance >= 0 Ohm, got {val!r}")

    @property
    def inputs_per_tile(self) -> int:
        """Logical inputs (weight rows) per tile. [1]"""
        return self.rows // 2 if self.layout is PairLayout.DIFFERENTIAL_ROWS else self.rows

    @property
    def outputs_per_tile(self) -> int:
        """Logical outputs (weight columns) per tile with one differential pair per weight
        (see :func:`logical_outputs` for other mappings). [1]"""
        return self.cols // 2 if self.layout is PairLayout.DIFFERENTIAL_COLUMNS else self.cols

    def logical_outputs(self, mapping: WeightMapping) -> int:
        """Logical outputs per tile under ``mapping``: ``cols // (2 P)`` (differential
        columns), ``cols // P`` (differential rows), ``cols - 1`` (reference column). [1]"""
        if mapping.scheme is Scheme.REFERENCE:
            if self.layout is not PairLayout.DIFFERENTIAL_COLUMNS:
                raise ConfigError("mapping with scheme='reference' needs layout="
                                  f"'differential-columns' (one shared reference column), "
                                  f"got layout={self.layout.value!r}")
            n = self.cols - 1
        else:
            per = 2 * mapping.n_pairs if self.layout is PairLayout.DIFFERENTIAL_COLUMNS \
                else mapping.n_pairs
            n = self.cols // per
        if n < 1:
            raise ConfigError(f"mapping with n_pairs={mapping.n_pairs} ({mapping.scheme.value}) "
                              f"leaves no output in a tile of cols={self.cols}")
        return n

    @property
    def wires(self) -> dict[str, float]:
        return {n: float(getattr(self, n)) for n in _WIRE_NAMES}

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["layout"] = self.layout.value
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
    mapped: MappedWeights  # targets [S] and the inverse map of this tile
    state_pos: object = None  # device states of G+ (or G), G- and the reference column
    state_neg: object = None
    state_ref: object = None
    adc: ADCChip | None = None
    read_pos: np.ndarray | None = None  # read conductances (n_pairs, rows, cols) [S]
    read_neg: np.ndarray | None = None  # (n_pairs, rows, cols) [S] or None (reference)
    read_ref: np.ndarray | None = None  # (rows,) [S] reference column or None
    solver: Callable | None = field(default=None, repr=False)

    @property
    def g_pos(self) -> np.ndarray:
        """Target G+ (or G), shape (n_pairs, rows, cols) [S]."""
        return self.mapped.g_pos

    @property
    def g_neg(self) -> np.ndarray | None:
        """Target G-, shape (n_pairs, rows, cols) [S], or None (reference scheme)."""
        return self.mapped.g_neg

    @property
    def scale(self) -> np.ndarray:
        """alpha: conductance per unit weight per output, shape (cols,) [S]."""
        return self.mapped.alpha

    def physical_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """Read (G+, G-) as (rows, n_pairs * cols) [S], column ``j P + k`` = pair k of output j;
        the reference scheme: (G, G_ref broadcast over the columns)."""
        gp = self.read_pos
        P, R, C = gp.shape
        if self.read_neg is None:
            return gp[0], np.broadcast_to(self.read_ref[:, None], (R, C))
        return (gp.transpose(1, 2, 0).reshape(R, C * P),
                self.read_neg.transpose(1, 2, 0).reshape(R, C * P))

    def outputs(self, I: np.ndarray, v_read: float) -> np.ndarray:
        """Weight-domain partial sums (B, cols) from the digitized differences (B, P * cols)."""
        P, _, C = self.read_pos.shape
        d = I.reshape(I.shape[0], C, P).transpose(0, 2, 1)
        return self.mapped.outputs_from_difference(d, v_read=v_read)

    def effective(self) -> np.ndarray:
        """Weights (rows, cols) [1] the read conductances stand for (mapping's inverse)."""
        if self.read_neg is None:
            # G - G_ref(read) is what the circuit subtracts; shift onto the nominal g_ref
            g = self.read_pos - self.read_ref[None, :, None] + self.mapped.g_ref
            return self.mapped.to_weights(g)[0].T
        return self.mapped.to_weights(self.read_pos, self.read_neg)[0].T


def bias_drive_level(s: float, x_max: float, dac: DAC) -> float:
    """The bias rows' drive ``s`` [1] raised to the next level of ``dac`` whose full scale is
    the input ``x_max`` [1] (it stays <= x_max; an ideal DAC returns ``s``)."""
    if dac.bits is None:
        return s
    k = dac.max_code
    return x_max * min(k, math.ceil(s / x_max * k * (1 - 1e-12))) / k


def tile_blocks(n_rows: int, n_cols: int, rows_per_tile: int,
                cols_per_tile: int) -> list[tuple[int, int, int, int]]:
    """The tiles of an ``(n_rows, n_cols)`` matrix: ``(r0, r1, c0, c1)`` per tile, row tile
    by row tile, column tiles in order within one; the last tile of a row or column holds
    what is left (fewer than ``rows_per_tile`` rows or ``cols_per_tile`` columns).

    Parameters
    ----------
    n_rows, n_cols : int
        Matrix shape [1] (inputs incl. bias rows, outputs).
    rows_per_tile, cols_per_tile : int
        Logical inputs and outputs of one tile [1] (:attr:`TileConfig.inputs_per_tile`,
        :meth:`TileConfig.logical_outputs`).

    Returns
    -------
    list of tuple
        Half-open row and column ranges ``[r0, r1) x [c0, c1)`` [1].

    Raises
    ------
    ConfigError
        A shape below 0 or a tile size below 1 (named with its value).
    """
    for name, v, lo in (("n_rows", n_rows, 0), ("n_cols", n_cols, 0),
                        ("rows_per_tile", rows_per_tile, 1), ("cols_per_tile", cols_per_tile, 1)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise ConfigError(f"{name} must be an integer >= {lo}, got {v!r}")
    return [(r0, min(r0 + rows_per_tile, n_rows), c0, min(c0 + cols_per_tile, n_cols))
            for r0 in range(0, n_rows, rows_per_tile)
            for c0 in range(0, n_cols, cols_per_tile)]


def map_tiles(W_aug: np.ndarray, mapping: WeightMapping, rows_per_tile: int,
              cols_per_tile: int) -> list[tuple[tuple[int, int, int, int], MappedWeights]]:
    """Each tile of the bias-augmented matrix ``W_aug`` (inputs, outputs) [1] mapped to
    conductances on its own (its own alpha): ``(block, mapped)`` per tile of
    :func:`tile_blocks`, in its order; ``mapped`` is
    :meth:`WeightMapping.to_conductances` of the block's weights (outputs, inputs) [S]."""
    return [((r0, r1, c0, c1), mapping.to_conductances(W_aug[r0:r1, c0:c1].T))
            for r0, r1, c0, c1 in tile_blocks(*W_aug.shape, rows_per_tile, cols_per_tile)]


class TiledMatrix:
    """A weight matrix ``W`` (N, K) [1] with bias ``b`` (N,) [1] programmed onto crossbar tiles.

    ``W``: (n_out, n_in), the torch nn.Linear convention; the layer computes
    ``y = x @ W.T + b``.

    Parameters (keyword-only after ``W``):
    ``bias`` (N,) or None; ``tile``: :class:`TileConfig`; ``device``: a device model
    (:mod:`xbarlab.devices`, e.g. ``devices.load("pcm-ibm-2020")``; default an ideal device);
    ``rng``: ``numpy.random.Generator`` for programming, reads and the ADC's static errors
    (required unless everything is ideal); ``dac``: :class:`DAC` (default ideal:
    ``bits=None``); ``adc``: :class:`ADC` or None (ideal); a ``max-possible`` ADC range is
    resolved per tile from its conductances, a ``calibrated`` one by :meth:`calibrate`;
    ``x_max``: input mapped to the DAC's full scale [1]; ``cell``: nonlinear cell model of
    :mod:`.nonlinear` or None (linear); ``t``: time of the first read after programming [s];
    ``mapping``: :class:`~xbarlab.devices.mapping.WeightMapping` (None:
    :func:`~xbarlab.devices.mapping.mapping_for` ``(device)``), whose ``g_min..g_max`` [S] must
    lie inside :func:`~xbarlab.devices.mapping.device_range` ``(device)`` unless
    ``allow_extrapolation`` (its ``x_fs`` is not used: the bias rows' full scale is
    ``x_max``); ``compensation``: drift compensation of the outputs
    (:class:`~xbarlab.devices.mapping.Compensation`: "none", "global" or "column"), measured
    at every read with :func:`~xbarlab.devices.mapping.calibration_input` (all inputs at
    ``x_max``) through the whole path, against ``reference``
    (:class:`~xbarlab.devices.mapping.CompensationReference`: the ideal ``x_cal @ W.T + b``,
    the default, or the same input read through the array at the first read, right after
    programming), and applied digitally after the ADC.

    The devices are programmed once here; :meth:`read` reads them at time ``t`` [s] after
    programming (drift and read noise per the device model); :meth:`forward` runs inputs.
    """

    def __init__(self, W, *, bias=None, tile: TileConfig | None = None, device=None,
                 rng: np.random.Generator | None = None, dac: DAC | None = None,
                 adc: ADC | None = None, x_max: float = 1.0, cell=None, t: float = 0.0,
                 mapping: WeightMapping | None = None,
                 compensation: Compensation | str = Compensation.NONE,
                 reference: CompensationReference | str = CompensationReference.IDEAL,
                 allow_extrapolation: bool = False):
        W = np.asarray(W, dtype=np.float64)
        if W.ndim != 2 or 0 in W.shape:
            raise ConfigError(f"W must have shape (out_features, in_features), got {W.shape}")
        if not np.all(np.isfinite(W)):
            raise ConfigError("W must be finite")
        self.W = W
        W = np.ascontiguousarray(W.T)  # (in, out): rows and columns of the arrays
        if not (math.isfinite(x_max) and x_max > 0):
            raise ConfigError(f"x_max must be a finite input scale > 0, got {x_max!r}")
        self.in_features, self.out_features = W.shape
        b = None
        if bias is not None:
            b = np.asarray(bias, dtype=np.float64)
            if b.shape != (self.out_features,) or not np.all(np.isfinite(b)):
                raise ConfigError(f"bias must be finite with shape ({self.out_features},), got "
                                  f"{b.shape}")
        self.compensation = coerce_enum(Compensation, compensation, "compensation")
        self.reference = coerce_enum(CompensationReference, reference, "reference")
        self.tile = tile if tile is not None else TileConfig()
        if not isinstance(self.tile, TileConfig):
            raise ConfigError(f"tile must be a TileConfig, got {type(self.tile).__name__}")
        if device is None:
            from ..devices import IdealDevice

            device = IdealDevice()
        self.device = device
        self.dac = dac if dac is not None else DAC(bits=None)
        self.adc = adc
        self.x_max = float(x_max)
        self.cell = cell
        self.mapping = (mapping_for(device) if mapping is None
                        else check_mapping(device, mapping,
                                           allow_extrapolation=allow_extrapolation))
        self.g_min, self.g_max = self.mapping.g_min, self.mapping.g_max
        self.inputs_per_tile = self.tile.inputs_per_tile
        self.outputs_per_tile = self.tile.logical_outputs(self.mapping)
        self.n_bias_rows, self.bias_drive = 0, 0.0
        W_aug = W
        if b is not None:
            n_b, s = self.mapping.bias_rows(float(np.max(np.abs(W))), float(np.max(np.abs(b))),
                                            x_fs=self.x_max)
            s = bias_drive_level(s, self.x_max, self.dac)
            self.n_bias_rows, self.bias_drive = n_b, s
            W_aug = np.vstack([W, np.broadcast_to(b / (n_b * s), (n_b, b.size))])
        self._w_in_out, self.bias, self._W_aug = W, b, W_aug
        self.tiles: list[_Tile] = []
        needs_rng = not _is_ideal(device)
        if needs_rng and rng is None:
            raise ConfigError("a non-ideal device model needs rng (numpy.random.Generator)")
        for (r0, r1, c0, c1), mw in map_tiles(W_aug, self.mapping, self.inputs_per_tile,
                                              self.outputs_per_tile):
            tl = _Tile(r0, r1, c0, c1, mw)
            if needs_rng:
                # G+ (all pairs), then G- (or the reference column), one tile after another
                tl.state_pos = device.program(mw.g_pos, rng)
                if mw.g_neg is not None:
                    tl.state_neg = device.program(mw.g_neg, rng)
                else:
                    tl.state_ref = device.program(np.full(r1 - r0, mw.g_ref), rng)
            self.tiles.append(tl)
        self._adc_rng = rng
        self._t = None
        self._first_read = None  # per tile (read_pos, read_neg, read_ref, solver) of read 1
        self.factors = np.ones(self.out_features)
        self.read(t, rng)

    # -- devices -----------------------------------------------------------------------------

    def read(self, t: float, rng: np.random.Generator | None = None) -> TiledMatrix:
        """Read every device at time ``t`` [s] after programming (drift + read noise), keep the
        conductances for the following :meth:`forward` calls, (re)build the tile solvers, and
        measure the drift-compensation factors (``rng`` also draws their ADC noise)."""
        ideal = _is_ideal(self.device)
        if not ideal and rng is None:
            raise ConfigError("reading a non-ideal device model needs rng")
        for tl in self.tiles:
            mw = tl.mapped
            if ideal:
                tl.read_pos, tl.read_neg = mw.g_pos, mw.g_neg
                tl.read_ref = None if mw.g_neg is not None else np.full(tl.r1 - tl.r0, mw.g_ref)
            else:
                tl.read_pos = np.asarray(self.device.read(tl.state_pos, t, rng), dtype=np.float64)
                if mw.g_neg is not None:
                    tl.read_neg = np.asarray(self.device.read(tl.state_neg, t, rng),
                                             dtype=np.float64)
                else:
                    tl.read_ref = np.asarray(self.device.read(tl.state_ref, t, rng),
                                             dtype=np.float64)
            tl.solver = _tile_solver(tl, self.tile, self.cell)
        if self._first_read is None:
            self._first_read = [(tl.read_pos, tl.read_neg, tl.read_ref, tl.solver)
                                for tl in self.tiles]
        self._t = float(t)
        self._setup_adcs()
        self._measure_factors(rng)
        return self

    def _setup_adcs(self, calibration=None):
        if self.adc is None:
            for tl in self.tiles:
                tl.adc = None
            return
        for k, tl in enumerate(self.tiles):
            adc = self.adc
            if adc.range_mode is RangeMode.MAX_POSSIBLE:
                adc = adc.resolve(G=tl.physical_pair(), v_max=self.dac.v_max)
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
            tl.adc = adc.instance(tl.physical_pair()[0].shape[1],
                                  self._adc_rng if needs else None)

    def _measure_factors(self, rng):
        self.factors = np.ones(self.out_features)
        if self.compensation is Compensation.NONE or not self._adcs_ready():
            return
        self.factors = self.compensation_factors(self.compensation, circuit=True, rng=rng)

    def _adcs_ready(self) -> bool:
        return self.adc is None or all(tl.adc is not None for tl in self.tiles)

    def calibrate(self, x, *, rng: np.random.Generator | None = None) -> TiledMatrix:
        """Set a ``calibrated`` ADC range per tile from the ideal-ADC currents of inputs ``x``
        (then measure the drift-compensation factors; ``rng`` draws their ADC noise)."""
        if self.adc is None or self.adc.range_mode is not RangeMode.CALIBRATED:
            raise ConfigError("calibrate() needs adc with range_mode='calibrated'")
        x = self._check_x(x)
        currents = []
        for tl in self.tiles:
            xi = self._tile_inputs(x, tl)
            currents.append(analog_mvm(xi, tl.solver, dac=self.dac, adc=None, x_max=self.x_max))
        self._setup_adcs(calibration=currents)
        self._measure_factors(rng)
        return self

    def with_adc(self, adc: ADC | None, rng: np.random.Generator | None = None) -> TiledMatrix:
        """This chip at its current read with ``adc`` per tile column (None: ideal): a
        TiledMatrix sharing the programmed devices, the reads and each tile's circuit (its
        factorization and effective matrix are computed once for both), whose outputs equal
        bit for bit those of one programmed and read from the same generator with ``adc``
        when no ADC involved draws anything. ``adc`` must draw no static errors
        (``gain_error_std``, ``offset_std``, ``inl_max`` 0); ``rng`` (a numpy Generator or
        None) draws the ADC noise of the drift-compensation measurement, if any. A later
        :meth:`read` of either reads the shared devices."""
        check_rng(rng, optional=True)
        if adc is not None and not isinstance(adc, ADC):
            raise ConfigError(f"adc must be a crossbar.converters.ADC or None, got "
                              f"{type(adc).__name__}")
        if adc is not None and (adc.gain_error_std > 0 or adc.offset_std > 0
                                or adc.inl_max > 0):
            raise ConfigError("adc must draw no static errors to share a chip (gain_error_std,"
                              f" offset_std and inl_max 0), got {adc!r}")
        views: dict[int, Callable] = {}

        def view(f):  # one fresh solve per solve object (the first read may be the current)
            if id(f) not in views:
                views[id(f)] = f.view() if isinstance(f, _GridSolve) else f
            return views[id(f)]

        new = copy.copy(self)
        new.adc = adc
        new.tiles = [dataclasses.replace(tl, adc=None, solver=view(tl.solver))
                     for tl in self.tiles]
        if self._first_read is not None:
            new._first_read = [(*r[:3], view(r[3])) for r in self._first_read]
        new._setup_adcs()
        new._measure_factors(rng)
        return new

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
            cols.append(np.full((B, hi - max(lo, K)), self.bias_drive))
        return np.hstack(cols)

    def _forward_raw(self, xb, rng):
        if not self._adcs_ready():
            raise ConfigError("the ADC range is 'calibrated': call calibrate(x) first")
        y = np.zeros((xb.shape[0], self.out_features))
        v_max = self.dac.v_max
        for tl in self.tiles:
            xi = self._tile_inputs(xb, tl)
            I = analog_mvm(xi, tl.solver, dac=self.dac, adc=tl.adc, x_max=self.x_max, rng=rng)
            # I = (x / x_max) v_max alpha w  ->  w-domain partial sum
            y[:, tl.c0:tl.c1] += tl.outputs(I, v_max) * self.x_max
        return y

    def forward(self, x, rng: np.random.Generator | None = None) -> np.ndarray:
        """Outputs ``y`` (B, N) or (N,) [1] for inputs ``x`` (B, K) or (K,) [1], times the
        drift-compensation factors of the current read.

        ``rng`` draws the ADC's conversion noise (when ``noise_std > 0``).
        """
        single = np.ndim(x) == 1
        y = self._forward_raw(self._check_x(x), rng) * self.factors
        return y[0] if single else y

    __call__ = forward

    def effective(self) -> tuple[np.ndarray, np.ndarray | None]:
        """``(W_eff (N, K), b_eff (N,) or None)`` [1] that the read conductances stand for
        (the mapping's inverse per tile; bias = drive s times the bias rows' sum), before
        wires, converters and compensation factors. ``W_eff``: (n_out, n_in), the torch
        nn.Linear convention."""
        Wr = np.zeros_like(self._W_aug)
        for tl in self.tiles:
            Wr[tl.r0:tl.r1, tl.c0:tl.c1] = tl.effective()
        K = self.in_features
        b = None if self.bias is None else self.bias_drive * Wr[K:].sum(axis=0)
        return Wr[:K].T, b

    def effective_weights(self) -> np.ndarray:
        """The weights the read conductances stand for (N, K) [1] (bias rows excluded), before
        wires and converters: (n_out, n_in), the torch nn.Linear convention."""
        return self.effective()[0]

    def _read_outputs(self, x, *, circuit: bool, rng) -> np.ndarray:
        if circuit:
            return self._forward_raw(x, rng)
        We, be = self.effective()
        return x @ We.T + (0.0 if be is None else be)

    def calibration_outputs(self, *, circuit: bool = True,
                            rng: np.random.Generator | None = None,
                            reference: CompensationReference | str | None = None,
                            per_column: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(y_ref, y_t)`` (C, N) [1] for the calibration inputs: every input at ``x_max``
        (C = 1), or with ``per_column`` the sign patterns of
        :func:`~xbarlab.devices.mapping.column_calibration_inputs` at ``±x_max`` (C = 32).

        ``y_t``: the current read, through the whole path (``circuit``: wires and the current
        converters) or its effective weights. ``y_ref`` per ``reference`` (None: this
        matrix's ``reference``): IDEAL, the ideal ``x_cal @ W.T + b``; FIRST_READ, the
        conductances of the first read (the one taken when programmed) through the same
        path. Neither includes the compensation factors.
        """
        ref = (self.reference if reference is None
               else coerce_enum(CompensationReference, reference, "reference"))
        x = (column_calibration_inputs(self.in_features, value=self.x_max) if per_column
             else calibration_input(self.in_features, value=self.x_max)[None])
        y_t = self._read_outputs(x, circuit=circuit, rng=rng)
        if ref is CompensationReference.IDEAL:
            return x @ self._w_in_out + (0.0 if self.bias is None else self.bias), y_t
        now = self._set_reads(self._first_read)
        try:
            y_ref = self._read_outputs(x, circuit=circuit, rng=rng)
        finally:
            self._set_reads(now)
        return y_ref, y_t

    def _set_reads(self, reads) -> list[tuple]:
        """Put ``reads`` (per tile: read G+, G−, reference column, solver) on the tiles;
        return the ones they held."""
        held = []
        for tl, r in zip(self.tiles, reads, strict=True):
            held.append((tl.read_pos, tl.read_neg, tl.read_ref, tl.solver))
            tl.read_pos, tl.read_neg, tl.read_ref, tl.solver = r
        return held

    def drift_factor(self, *, circuit: bool = True,
                     rng: np.random.Generator | None = None,
                     reference: CompensationReference | str | None = None) -> float:
        """Global drift-compensation factor of the current read [1]
        (:func:`~xbarlab.devices.mapping.global_drift_factor` of :meth:`calibration_outputs`)."""
        return global_drift_factor(*self.calibration_outputs(circuit=circuit, rng=rng,
                                                             reference=reference))

    def compensation_factors(self, compensation: Compensation | str, *, circuit: bool = True,
                             rng: np.random.Generator | None = None,
                             reference: CompensationReference | str | None = None
                             ) -> np.ndarray:
        """Factors (N,) [1] that multiply the outputs of the current read:
        :func:`~xbarlab.devices.mapping.compensation_factors` of :meth:`calibration_outputs`
        (ones for NONE, one value repeated for GLOBAL from the constant input, one per output
        column for COLUMN from the sign patterns)."""
        c = coerce_enum(Compensation, compensation, "compensation")
        if c is Compensation.NONE:
            return np.ones(self.out_features)
        return compensation_factors(*self.calibration_outputs(
            circuit=circuit, rng=rng, reference=reference,
            per_column=c is Compensation.COLUMN), c)

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)


def _is_ideal(device) -> bool:
    from ..devices import IdealDevice

    return isinstance(device, IdealDevice)


def _physical(tl: _Tile, layout: PairLayout):
    """(G_phys (M', N') [S], inputs -> physical row voltages, currents -> outputs) of a tile:
    the reference scheme's G columns plus one reference column (a standard array), else the
    array of the differential topology (:func:`~.topologies.differential_array`)."""
    gp, gn = tl.physical_pair()
    if tl.read_neg is None:
        return (np.hstack([gp, tl.read_ref[:, None]]), lambda v: v,
                lambda I: I[..., :-1] - I[..., -1:])
    return differential_array(gp, gn, coerce_enum(Topology, layout, "layout"))


def _tile_solver(tl: _Tile, tile: TileConfig, cell):
    """``mvm(v (B, k)) -> I (B, n)`` [A] of one tile: exact circuit of the physical array,
    outputs already subtracted (G+ - G- per pair, or G - G_ref)."""
    wires = tile.wires
    if cell is not None:
        if tl.read_neg is None:
            G, _, combine = _physical(tl, tile.layout)
            return lambda v: combine(column_currents(G, v, topology="standard", cell=cell, **wires))
        pair = tl.physical_pair()
        return lambda v: column_currents(pair, v, topology=tile.layout.value, cell=cell, **wires)
    G, to_phys, combine = _physical(tl, tile.layout)
    if all(r == 0 for r in wires.values()):
        return lambda v: combine(to_phys(v) @ G)
    return _GridSolve(Crossbar(G, wires=WireParams(**wires)), to_phys, combine)


class _GridSolve:
    """The exact grid solve of one linear tile: a batch of 8 or more inputs computes the
    grid's effective matrix (once per ``Crossbar``), which this solve uses from then on for
    every batch; before that each input is a Kirchhoff-checked solve. :meth:`view` is a
    solve of the same grid that starts afresh (same bits as a new one, no new
    factorization)."""

    def __init__(self, xb: Crossbar, to_phys, combine):
        self.xb, self.to_phys, self.combine, self.uses_matrix = xb, to_phys, combine, False

    def __call__(self, v):
        v = np.atleast_2d(self.to_phys(v))
        if v.shape[0] >= 8:
            self.xb.effective_matrix()
            self.uses_matrix = True
        I = self.xb.mvm(v) if self.uses_matrix else self.xb.solve(v, voltages=False).currents
        return self.combine(I)

    def view(self) -> _GridSolve:
        return _GridSolve(self.xb, self.to_phys, self.combine)


def tiled_matmul(x, W, *, bias=None, rng=None, **options) -> np.ndarray:
    """One-shot ``x @ W.T + b`` through :class:`TiledMatrix` (programmed anew, read at ``t``).

    ``x``: (B, n_in) inputs [1]; ``W``: (n_out, n_in), the torch nn.Linear convention;
    ``bias``: (n_out,) [1]. Returns (B, n_out) [1].

    ``options``: the keyword arguments of :class:`TiledMatrix` (tile, device, dac, adc, x_max,
    cell, t, mapping, compensation, allow_extrapolation).
    """
    tm = TiledMatrix(W, bias=bias, rng=rng, **options)
    if tm.adc is not None and tm.adc.range_mode is RangeMode.CALIBRATED:
        tm.calibrate(x, rng=rng)
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
    ``W = weight.reshape(O, -1)`` (O, C*kh*kw): (n_out, n_in), the torch nn.Linear convention;
    patches (im2col) are its inputs. Pass a
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
        matrix = TiledMatrix(weight.reshape(O, -1), bias=bias, rng=rng, **options)
        if matrix.adc is not None and matrix.adc.range_mode is RangeMode.CALIBRATED:
            matrix.calibrate(cols, rng=rng)
    elif matrix.in_features != C * kh * kw or matrix.out_features != O:
        raise ConfigError(f"matrix is {matrix.in_features}x{matrix.out_features}, the kernel "
                          f"needs {C * kh * kw}x{O}")
    y = matrix.forward(cols, rng)
    return y.reshape(x.shape[0], Ho, Wo, O).transpose(0, 3, 1, 2)
