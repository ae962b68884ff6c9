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
from collections.abc import Mapping
from dataclasses import dataclass, field

from .adc import AdcAreaModel, AdcSurvey
from .chip import shipped_chips
from .cost import chip_figures, product_cost

__all__ = ["Anchor", "ANCHORS", "TOLERANCE", "anchor_rows", "anchor_table"]

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
    Anchor("aon-cim", "KWS, 4-bit activations", "tops_per_w", "tops_per_w_4bit",
           {"input_bits": 4, "output_bits": 4}),
)


def anchor_rows(survey: AdcSurvey, area_model: AdcAreaModel) -> list[dict]:
    """One dict per :data:`ANCHORS` entry: ``chip`` (name), ``label``, ``figure``, ``ours``,
    ``published``, ``ratio`` (ours / published) and ``held`` (within :data:`TOLERANCE`)."""
    chips = shipped_chips()
    rows = []
    for a in ANCHORS:
        chip = dataclasses.replace(chips[a.chip], **a.changes)
        ours = chip_figures(chip, product_cost(chip, survey, area_model=area_model))[a.figure]
        pub = float(chip.published[a.published_key])
        ratio = ours / pub
        rows.append({"chip": chip.name, "label": a.label, "figure": a.figure, "ours": ours,
                     "published": pub, "ratio": ratio,
                     "held": 1 / TOLERANCE <= ratio <= TOLERANCE})
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
