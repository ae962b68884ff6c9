r"""From one product to a network inference: cost per tile, per layer and per inference.

A layer is a weight matrix ``W`` (n_out, n_in) with an optional bias, applied to
``vectors`` input vectors per inference (1 for a dense layer, the output positions of a
convolution). It is tiled as :class:`xbarlab.crossbar.TiledMatrix` tiles it: the bias takes
the rows of :meth:`~xbarlab.devices.mapping.WeightMapping.bias_rows`, the bias-augmented
matrix is split by :func:`~xbarlab.crossbar.tiling.tile_blocks` into blocks of the chip's
``rows`` x ``cols`` and each block is mapped on its own by
:func:`~xbarlab.crossbar.tiling.map_tiles`; the conductance a row sees at a column is the
sum of the weight's devices (``G+ + G-`` over its pairs). Each tile's product then costs
:func:`~xbarlab.energy.cost.product_cost` with those conductances (the nominal uniform input
codes unless codes are given). Without weights (``W=None``) every tile takes the nominal
conductances (devices at mid-range).

Per layer: energy = vectors x the sum over its tiles plus the digital addition of the
partial sums of the row tiles (``(row tiles - 1) n_out`` additions of ``b_in + b_out`` bits a
vector, in ``shift_add``); the tiles of a layer work in parallel, so its latency is vectors x
the slowest tile's; area = the sum of its tiles'. Per inference: layers one after another
(latency summed; :attr:`NetworkCost.interval` is the slowest layer's, the time between
inferences when layers are pipelined, each on its own tiles). Operations: 2 per
multiply-accumulate of the weights, ``2 n_out n_in`` a vector (bias rows not counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..crossbar.tiling import map_tiles, tile_blocks
from ..devices.mapping import WeightMapping
from ..errors import ConfigError
from .adc import AdcAreaModel, AdcSurvey
from .chip import ChipDescription
from .cost import AREA_PARTS, ENERGY_PARTS, ProductCost, input_activity, product_cost

__all__ = ["Layer", "TileCost", "LayerCost", "NetworkCost", "layer_cost", "network_cost",
           "cost_rows", "cost_table", "plot_cost"]

@dataclass(frozen=True, eq=False)
class Layer:
    """One layer of a network as the arrays see it."""

    name: str
    """Layer name (for tables)."""
    n_out: int
    """Outputs (weight rows of torch's (out, in) convention) [1]."""
    n_in: int
    """Inputs per output (for a convolution: in_channels x kernel area) [1]."""
    vectors: int = 1
    """Products per inference [1] (output positions of a convolution)."""
    W: np.ndarray | None = None
    """Weights (n_out, n_in) [1]; None: nominal conductances."""
    bias: np.ndarray | None = None
    """Bias (n_out,) [1], or None."""

    def __post_init__(self):
        for name in ("n_out", "n_in", "vectors"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ConfigError(f"Layer {self.name!r}: {name} must be an integer >= 1, "
                                  f"got {v!r}")
        if self.W is not None and np.shape(self.W) != (self.n_out, self.n_in):
            raise ConfigError(f"Layer {self.name!r}: W has shape {np.shape(self.W)}; expected "
                              f"({self.n_out}, {self.n_in})")
        if self.bias is not None and np.shape(self.bias) != (self.n_out,):
            raise ConfigError(f"Layer {self.name!r}: bias has shape {np.shape(self.bias)}; "
                              f"expected ({self.n_out},)")


@dataclass(frozen=True)
class TileCost:
    """One tile of a layer: its block of the bias-augmented matrix and its product's cost."""

    block: tuple[int, int, int, int]
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the (inputs, outputs) matrix [1]."""
    cost: ProductCost
    """Cost of one product on this tile."""


@dataclass(frozen=True)
class LayerCost:
    """Cost of one layer per inference (module docstring)."""

    name: str
    """Layer name."""
    tiles: tuple[TileCost, ...]
    """Its tiles."""
    energy: dict[str, float]
    """Energy per inference by component (:data:`~xbarlab.energy.cost.ENERGY_PARTS`) [J]."""
    latency: float
    """Latency per inference [s]."""
    area: dict[str, float]
    """Area of its tiles by component [m^2]."""
    ops: int
    """Operations per inference, 2 per multiply-accumulate [1]."""


@dataclass(frozen=True)
class NetworkCost:
    """Cost of one network inference, layer by layer."""

    chip: str
    """The chip's name."""
    layers: tuple[LayerCost, ...]
    """Per layer."""

    @property
    def energy(self) -> float:
        """Energy per inference [J]."""
        return float(sum(sum(c.energy.values()) for c in self.layers))

    @property
    def latency(self) -> float:
        """Latency of one inference, layers one after another [s]."""
        return float(sum(c.latency for c in self.layers))

    @property
    def interval(self) -> float:
        """Time between inferences with the layers pipelined (the slowest layer's) [s]."""
        return float(max(c.latency for c in self.layers))

    @property
    def area(self) -> float:
        """Area of all tiles [m^2]."""
        return float(sum(sum(c.area.values()) for c in self.layers))

    @property
    def ops(self) -> int:
        """Operations per inference (2 per multiply-accumulate) [1]."""
        return int(sum(c.ops for c in self.layers))

    @property
    def n_tiles(self) -> int:
        """Tiles of the whole network [1]."""
        return sum(len(c.tiles) for c in self.layers)

    @property
    def tops_per_w(self) -> float:
        """Operations per joule / 1e12 [TOPS/W]."""
        return self.ops / self.energy / 1e12

    @property
    def tops(self) -> float:
        """Operations per inference over the latency / 1e12 [TOPS] (no pipelining)."""
        return self.ops / self.latency / 1e12

    @property
    def tops_per_mm2(self) -> float:
        """:attr:`tops` per mm^2 of tile area [TOPS/mm^2]."""
        return self.tops / (self.area * 1e6)


def _conductance_blocks(layer: Layer, chip: ChipDescription, mapping: WeightMapping | None):
    """(block, G seen by rows (inputs, outputs) [S]) for each tile of the layer."""
    if layer.W is None:
        n_rows = layer.n_in + (1 if layer.bias is not None else 0)
        g = chip.devices_per_weight * 0.5 * (chip.g_min + chip.g_max)
        return [((r0, r1, c0, c1), np.full((r1 - r0, c1 - c0), g))
                for r0, r1, c0, c1 in tile_blocks(n_rows, layer.n_out, chip.rows, chip.cols)]
    mp = mapping if mapping is not None else WeightMapping(g_max=chip.g_max, g_min=chip.g_min)
    W = np.ascontiguousarray(np.asarray(layer.W, dtype=np.float64).T)  # (in, out)
    if layer.bias is not None:
        b = np.asarray(layer.bias, dtype=np.float64)
        n_b, s = mp.bias_rows(float(np.max(np.abs(W))), float(np.max(np.abs(b))))
        W = np.vstack([W, np.broadcast_to(b / (n_b * s), (n_b, b.size))])
    out = []
    for block, mw in map_tiles(W, mp, chip.rows, chip.cols):
        g = mw.g_pos.sum(axis=0) + (mw.g_neg.sum(axis=0) if mw.g_neg is not None
                                    else mw.g_ref)
        out.append((block, g))
    return out


def layer_cost(layer: Layer, chip: ChipDescription, survey: AdcSurvey | None = None, *,
               mapping: WeightMapping | None = None, area_model: AdcAreaModel | None = None
               ) -> LayerCost:
    """Cost of ``layer`` per inference on tiles of ``chip`` (module docstring).

    Parameters
    ----------
    layer : Layer
        Shape, products per inference, weights (or None for nominal conductances).
    chip : ChipDescription
        The chip whose arrays hold the tiles.
    survey : AdcSurvey, optional
        Needed when the chip gives no ADC energy.
    mapping : WeightMapping, optional
        Weight-to-conductance mapping; default one differential pair over the chip's
        ``[g_min, g_max]``.
    area_model : AdcAreaModel, optional
        Needed when the chip gives no ADC area.
    """
    if not isinstance(layer, Layer):
        raise ConfigError(f"layer must be a Layer, got {type(layer).__name__}")
    act = input_activity(chip)
    tiles = []
    for block, g in _conductance_blocks(layer, chip, mapping):
        pc = product_cost(chip, survey, G=g, activity=act, area_model=area_model)
        tiles.append(TileCost(block=block, cost=pc))
    n_row_tiles = len({t.block[0] for t in tiles})
    acc_bits = chip.input_bits + chip.output_bits
    energy = {k: layer.vectors * sum(t.cost.energy[k] for t in tiles) for k in ENERGY_PARTS}
    energy["shift_add"] += (layer.vectors * (n_row_tiles - 1) * layer.n_out * acc_bits
                            * chip.node.e_add_bit)
    area = {k: sum(t.cost.area[k] for t in tiles) for k in AREA_PARTS}
    latency = layer.vectors * max(t.cost.latency for t in tiles)
    return LayerCost(name=layer.name, tiles=tuple(tiles), energy=energy, latency=latency,
                     area=area, ops=2 * layer.n_out * layer.n_in * layer.vectors)


def network_cost(layers: Sequence[Layer], chip: ChipDescription,
                 survey: AdcSurvey | None = None, *, mapping: WeightMapping | None = None,
                 area_model: AdcAreaModel | None = None) -> NetworkCost:
    """:func:`layer_cost` of every layer, in order, as a :class:`NetworkCost`."""
    if not layers:
        raise ConfigError("layers is empty; expected at least one Layer")
    return NetworkCost(chip=chip.name, layers=tuple(
        layer_cost(la, chip, survey, mapping=mapping, area_model=area_model) for la in layers))


def cost_rows(net: NetworkCost) -> tuple[list[str], list[list[str]], str]:
    """Table of the cost: column titles, one row per layer and a total row (tiles, energy by
    component [nJ], energy [nJ], latency [us], area [mm^2], TOPS/W), and a closing sentence
    with the operations, TOPS, TOPS/W and TOPS/mm^2 of the inference."""
    head = (["layer", "tiles"] + [f"{k} [nJ]" for k in ENERGY_PARTS]
            + ["energy [nJ]", "latency [us]", "area [mm^2]", "TOPS/W"])
    rows = []
    for c in net.layers:
        e = sum(c.energy.values())
        rows.append([c.name, str(len(c.tiles))] + [f"{c.energy[k] * 1e9:.4g}" for k in ENERGY_PARTS]
                    + [f"{e * 1e9:.4g}", f"{c.latency * 1e6:.4g}",
                       f"{sum(c.area.values()) * 1e6:.4g}", f"{c.ops / e / 1e12:.3g}"])
    tot = {k: sum(c.energy[k] for c in net.layers) for k in ENERGY_PARTS}
    rows.append(["**total**", str(net.n_tiles)] + [f"{tot[k] * 1e9:.4g}" for k in ENERGY_PARTS]
                + [f"{net.energy * 1e9:.4g}", f"{net.latency * 1e6:.4g}",
                   f"{net.area * 1e6:.4g}", f"{net.tops_per_w:.3g}"])
    note = (f"{net.chip}: {net.ops:,} operations per inference (2 per multiply-accumulate); "
            f"{net.tops:.3g} TOPS, {net.tops_per_w:.3g} TOPS/W, "
            f"{net.tops_per_mm2:.3g} TOPS/mm^2 (layers one after another).")
    return head, rows, note


def cost_table(net: NetworkCost) -> str:
    """:func:`cost_rows` as a Markdown table followed by its closing sentence."""
    head, rows, note = cost_rows(net)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines + ["", note])


def plot_cost(net: NetworkCost, path) -> Path:
    """Stacked bars of the energy per inference of each layer by component [nJ], as PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 1.2 * len(net.layers) + 2), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    names = [c.name for c in net.layers]
    bottom = np.zeros(len(names))
    for k in ENERGY_PARTS:
        vals = np.array([c.energy[k] * 1e9 for c in net.layers])
        if np.any(vals > 0):
            ax.bar(names, vals, bottom=bottom, label=k)
            bottom += vals
    ax.set_ylabel("energy per inference [nJ]")
    ax.set_title(f"{net.chip}: {net.energy * 1e9:.3g} nJ, {net.tops_per_w:.3g} TOPS/W")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    return p
