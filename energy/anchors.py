"""The shipped chip descriptions against their papers' published figures.

Each :class:`Anchor` names a shipped chip (:func:`~xbarlab.energy.chip.shipped_chips`), the
changes of its description that the figure was measured at (e.g. a four-phase read, other
input and output bits), the figure and the key of its published value in the chip file's
``[published]`` table. :func:`anchor_rows` computes our figure with
:func:`~xbarlab.energy.cost.product_cost` at the nominal workload (uniform input codes,
devices at mid-range) and :func:`~xbarlab.energy.cost.chip_figures`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ConfigError
from .adc import AdcAreaModel, AdcSurvey
from .chip import ChipDescription, format_value, shipped_chips
from .cost import chip_figures, product_cost

__all__ = ["Anchor", "ANCHORS", "TOLERANCE", "anchor_rows", "anchor_table", "with_node_values",
           "node_value_table", "breakdown_table"]

#: Agreement sought with a published figure: within this factor either way.
TOLERANCE = 1.5


@dataclass(frozen=True)
class Anchor:
    """One published figure of a shipped chip."""

    chip: str
    """Stem of the shipped chip file."""
    label: str
    """What was measured (for the table)."""
    figure: str
    """Key of :func:`~xbarlab.energy.cost.chip_figures`: ``tops_per_w``, ``tops_per_mm2``,
    ``tops``."""
    published_key: str
    """Key of the published value in the chip file's ``[published]`` table."""
    changes: Mapping[str, object] = field(default_factory=dict)
    """Fields of the description changed for this figure (``dataclasses.replace``)."""


def _neurram(o: int, i: int, key: str) -> Anchor:
    return Anchor("neurram", f"(out, in) = ({o}, {i}) bits", "tops_per_w", key,
                  {"output_bits": o, "input_bits": i})


#: The figures compared.
ANCHORS = (
    Anchor("hermes-core", "one core, 8-bit in/out", "tops_per_w", "tops_per_w"),
    Anchor("hermes-core", "one core, 8-bit in/out", "tops_per_mm2", "tops_per_mm2"),
    Anchor("hermes-chip", "64 cores, one-phase read", "tops_per_w", "tops_per_w"),
    Anchor("hermes-chip", "64 cores, one-phase read", "tops", "tops"),
    Anchor("hermes-chip", "64 cores, four-phase read", "tops_per_w", "tops_per_w_four_phase",
           {"phases": 4}),
    Anchor("hermes-chip", "64 cores, four-phase read", "tops", "tops_four_phase",
           {"phases": 4}),
    _neurram(3, 1, "tops_per_w_o3_i1"),
    _neurram(5, 3, "tops_per_w_o5_i3"),
    _neurram(6, 4, "tops_per_w"),
    _neurram(8, 6, "tops_per_w_o8_i6"),
    _neurram(10, 8, "tops_per_w_o10_i8"),
    Anchor("aon-cim", "KWS, 8-bit activations", "tops_per_w", "tops_per_w"),
    Anchor("aon-cim", "KWS, 6-bit activations", "tops_per_w", "tops_per_w_6bit",
           {"input_bits": 6, "output_bits": 6}),
    Anchor("aon-cim", "KWS, 4-bit activations", "tops_per_w", "tops_per_w_4bit",
           {"input_bits": 4, "output_bits": 4}),
    # the same macro on the visual-wake-words network: the model has one figure per
    # product, so these differ from the KWS rows by the published figures alone
    Anchor("aon-cim", "VWW, 8-bit activations", "tops_per_w", "vww_tops_per_w"),
    Anchor("aon-cim", "VWW, 6-bit activations", "tops_per_w", "vww_tops_per_w_6bit",
           {"input_bits": 6, "output_bits": 6}),
    Anchor("aon-cim", "VWW, 4-bit activations", "tops_per_w", "vww_tops_per_w_4bit",
           {"input_bits": 4, "output_bits": 4}),
)


def with_node_values(chip: ChipDescription,
                     node_values: Mapping[tuple[str, str], object]) -> ChipDescription:
    """``chip`` with the node chip fields it takes from its node
    (:attr:`~xbarlab.energy.chip.ChipDescription.from_node`) replaced where ``node_values``
    maps ``(node name, field)`` to another value (e.g. ``{("14nm", "v_read"): 0.2}``, in the
    field's SI unit); fields its paper gives are kept.

    Raises
    ------
    ConfigError
        If a ``(node, field)`` names no node chip field of that node's file.
    """
    for (node, name), _ in node_values.items():
        if node == chip.node.name and name not in chip.node.chip:
            raise ConfigError(f"node {node!r} gives no chip field {name!r}; it gives "
                              f"{sorted(chip.node.chip)}")
    meta = {f.name: f.metadata for f in dataclasses.fields(ChipDescription)}
    change = {}
    for (node, name), v in node_values.items():
        if node != chip.node.name or name not in chip.from_node:
            continue
        md = meta[name]
        if md.get("unit") is None:
            raise ConfigError(f"node value {node}:{name}: only number fields can be changed "
                              f"here, got {v!r}")
        low = "> 0" if md["positive"] else ">= 0"
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) \
                or (md["integer"] and v != int(v)) or v < 0 or (md["positive"] and v == 0):
            raise ConfigError(f"node value {node}:{name} = {v!r}: expected a finite number "
                              f"{low} [{md['unit']}]" + (", an integer" if md["integer"]
                                                        else ""))
        change[name] = int(v) if md["integer"] else float(v)
    return dataclasses.replace(chip, **change) if change else chip


def anchor_rows(survey: AdcSurvey, area_model: AdcAreaModel, *,
                node_values: Mapping[tuple[str, str], object] | None = None) -> list[dict]:
    """One dict per :data:`ANCHORS` entry: ``chip`` (name), ``label``, ``figure``, ``ours``,
    ``published``, ``ratio`` (ours / published), ``held`` (within :data:`TOLERANCE`) and
    ``cost`` (the :class:`~xbarlab.energy.cost.ProductCost` of one array's product behind
    the figure: energy by component [J], latency [s], area [m^2]).

    ``node_values`` changes node chip fields for every chip that takes them from its node
    (:func:`with_node_values`): how much an agreement rests on a node's stand-in."""
    chips = shipped_chips()
    if node_values:
        chips = {k: with_node_values(c, node_values) for k, c in chips.items()}
    rows = []
    for a in ANCHORS:
        chip = dataclasses.replace(chips[a.chip], **a.changes)
        cost = product_cost(chip, survey, area_model=area_model)
        ours = chip_figures(chip, cost)[a.figure]
        pub = float(chip.published[a.published_key])
        ratio = ours / pub
        rows.append({"chip": chip.name, "label": a.label, "figure": a.figure, "ours": ours,
                     "published": pub, "ratio": ratio,
                     "held": 1 / TOLERANCE <= ratio <= TOLERANCE, "cost": cost})
    return rows


def anchor_table(rows: list[dict]) -> str:
    """Markdown table of :func:`anchor_rows`."""
    out = ["| chip | measured at | figure | ours | published | ours / published | "
           f"within {TOLERANCE}x |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['chip']} | {r['label']} | {r['figure'].replace('_per_', '/')} | "
                   f"{r['ours']:.3g} | {r['published']:.3g} | {r['ratio']:.2f} | "
                   f"{'yes' if r['held'] else 'no'} |")
    return "\n".join(out)


def breakdown_table(rows: list[dict]) -> str:
    """Markdown table: for each chip and operating point of :func:`anchor_rows` (once, the
    first figure of it), one array product's energy by component [nJ], its total [nJ] and
    latency [ns]."""
    seen, out = set(), []
    for r in rows:
        key = (r["chip"], r["label"])
        if key in seen:
            continue
        seen.add(key)
        e = r["cost"].energy
        if not out:
            out = [f"| chip | measured at | {' | '.join(e)} | total [nJ] | latency [ns] |",
                   "|---|---|" + "---|" * (len(e) + 2)]
        out.append(f"| {r['chip']} | {r['label']} | "
                   + " | ".join(f"{v * 1e9:.3g}" for v in e.values())
                   + f" | {r['cost'].total_energy * 1e9:.3g} | {r['cost'].latency * 1e9:.4g} |")
    return "\n".join(out)


def node_value_table() -> str:
    """Markdown table: for each shipped chip, the fields its paper does not give and the
    node value it takes (:attr:`~xbarlab.energy.chip.ChipDescription.from_node`; SI units)."""
    out = ["| chip | node | from the node file (what the paper does not give) |",
           "|---|---|---|"]
    for chip in shipped_chips().values():
        vals = ", ".join(f"{f} = {format_value(getattr(chip, f))}" for f in chip.from_node)
        out.append(f"| {chip.name} | {chip.node.name} | {vals or '-'} |")
    return "\n".join(out)

