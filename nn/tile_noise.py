"""Training noise scaled as the chip scales weights: per tile through the ``WeightMapping``.

A weight-noise model gives ``Δw`` relative to a reference magnitude, the weight that maps
to the full conductance range (:class:`~xbarlab.nn.noise.NoiseModel`). Two choices of that
magnitude (:class:`NoiseScaling`):

LAYER
    ``max|w|`` of the whole tensor, weight and bias separately (the poster's Algorithm 1).
TILE
    what the chip uses: the layer's bias-augmented matrix ``W_aug`` (inputs then the bias
    rows, outputs; :meth:`~xbarlab.devices.mapping.WeightMapping.bias_rows` with the
    mapping's ``x_fs``) is split into the tiles of
    :func:`~xbarlab.crossbar.tiling.tile_blocks` (``TileConfig.inputs_per_tile`` rows,
    ``TileConfig.logical_outputs(mapping)`` columns: pairs and the reference column
    included), and each tile's magnitude is its own ``max|W_aug|`` (``Scaling.TILE``) or
    each of its columns' (``Scaling.COLUMN``), exactly the ``w_max`` that
    :func:`~xbarlab.crossbar.tiling.map_tiles` maps to ``g_max`` (``alpha = (g_max -
    g_min) / w_max``). A weight's noise is the noise model's draw at that magnitude; a
    bias ``b`` sits on ``n_b`` rows of value ``b / (n_b s)`` driven at ``s``, so its noise
    is ``s`` times the sum of its rows' draws (one standard normal per row).

:func:`tile_scales` computes the magnitudes (torch, on the weights' device); a weight's
noise is ``noise.perturbation(w, z, peak=scales.weight)``, a bias's
:func:`bias_perturbation`. :class:`~xbarlab.nn.hasgd.HASGD` draws them (``scaling=``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["NoiseScaling", "TileScales", "tile_scales", "bias_perturbation",
           "check_peak_support"]


class NoiseScaling(enum.StrEnum):
    """Reference magnitude of training noise (see the module docstring)."""

    LAYER = "layer"
    TILE = "tile"


@dataclass(frozen=True, eq=False)
class TileScales:
    """The magnitudes of one layer under TILE scaling (see the module docstring)."""

    weight: Tensor
    """Per weight, the weight magnitude its tile (or column) maps to ``g_max``; the weight's
    shape [1]."""
    bias_rows: Tensor | None
    """(n_b, n_out): the same for each bias row, or None for a layer without bias [1]."""
    n_bias_rows: int
    """n_b: bias rows on the chip [1] (0 without bias)."""
    bias_drive: float
    """s: input driving the bias rows [1] (0 without bias)."""


def tile_scales(weight: Tensor, bias: Tensor | None, mapping, tile) -> TileScales:
    """Per-tile weight magnitudes of a layer as the chip maps it.

    Parameters
    ----------
    weight : torch.Tensor
        (n_out, ...) weight of a Linear/Conv layer [1]; flattened to (n_out, n_in).
    bias : torch.Tensor or None
        (n_out,) bias [1].
    mapping : WeightMapping
        The evaluation's mapping (:mod:`xbarlab.devices.mapping`): scaling per tile or
        column, pairs / reference column (tile width), ``x_fs`` (bias rows).
    tile : TileConfig
        Tile size (:class:`~xbarlab.crossbar.tiling.TileConfig`).

    Returns
    -------
    TileScales
        Magnitudes > 0 (a tile or column of zeros gets 1, as the mapping does).
    """
    from ..crossbar.tiling import tile_blocks
    from ..devices.mapping import Scaling

    w = weight.detach()
    if not bool(torch.isfinite(w).all()) or (
            bias is not None and not bool(torch.isfinite(bias.detach()).all())):
        raise ConfigError("weight and bias must be finite to scale training noise per tile")
    n_out = w.shape[0]
    W = w.reshape(n_out, -1).T  # (n_in, n_out), rows = inputs as on the tile
    n_in = W.shape[0]
    n_b, s = 0, 0.0
    rows = W
    if bias is not None:
        b = bias.detach()
        n_b, s = mapping.bias_rows(float(W.abs().max()) if W.numel() else 0.0,
                                   float(b.abs().max()) if b.numel() else 0.0)
        rows = torch.cat([W, (b / (n_b * s)).expand(n_b, n_out)], dim=0)
    a = rows.abs()
    scale = torch.empty_like(a)
    per_column = mapping.scaling is Scaling.COLUMN
    for r0, r1, c0, c1 in tile_blocks(a.shape[0], n_out, tile.inputs_per_tile,
                                      tile.logical_outputs(mapping)):
        blk = a[r0:r1, c0:c1]
        m = blk.amax(dim=0, keepdim=True) if per_column else blk.amax()
        scale[r0:r1, c0:c1] = torch.where(m > 0, m, torch.ones_like(m))
    return TileScales(weight=scale[:n_in].T.reshape(w.shape),
                      bias_rows=None if bias is None else scale[n_in:],
                      n_bias_rows=n_b, bias_drive=float(s))


def check_peak_support(noise) -> None:
    """Raise ConfigError unless ``noise.perturbation`` takes the ``peak`` keyword (TILE
    scaling passes each weight's magnitude through it)."""
    import inspect

    try:
        params = inspect.signature(noise.perturbation).parameters
    except (TypeError, ValueError):
        params = {}
    if "peak" not in params:
        raise ConfigError(f"{type(noise).__name__}.perturbation takes no 'peak' keyword, so it "
                          "cannot be scaled per tile; use scaling=NoiseScaling.LAYER")


def bias_perturbation(noise, bias: Tensor, scales: TileScales, z: Tensor) -> Tensor:
    """``Δbias`` of a layer at its bias rows' tile magnitudes: ``s · Σ_rows
    noise.perturbation(b / (n_b s), z, peak=row magnitude)``.

    Parameters
    ----------
    noise : NoiseModel
        A model whose ``perturbation`` takes ``peak`` (:func:`check_peak_support`).
    bias : torch.Tensor
        (n_out,) bias [1].
    scales : TileScales
        The layer's :func:`tile_scales`.
    z : torch.Tensor
        Standard normals of shape ``(n, n_b, n_out)``: one per bias row.

    Returns
    -------
    torch.Tensor
        ``(n, n_out)`` perturbations [1], ``bias``'s dtype.
    """
    s, n_b = scales.bias_drive, scales.n_bias_rows
    v = (bias.detach() / (n_b * s)).expand(n_b, -1)
    rows = noise.perturbation(v, z, peak=scales.bias_rows)
    return (s * rows.sum(dim=-2)).to(bias.dtype)
