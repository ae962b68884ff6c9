"""The shipped chips against their published figures: which agree within 1.5x."""

from __future__ import annotations

import pytest
from _shared import shared_path
from xbarlab.energy import fit_adc_area, load_adc_survey
from xbarlab.energy.anchors import ANCHORS, anchor_rows, anchor_table

#: (chip, label, figure) of the anchors the model meets within 1.5x: all but the AON-CiM-like
#: macro at 4-bit activations, whose description is the 14 nm node's (1.8x).
HELD = {
    ("HERMES core", "one core, 8-bit in/out", "tops_per_w"),
    ("HERMES core", "one core, 8-bit in/out", "tops_per_mm2"),
    ("HERMES 64-core chip", "64 cores, one-phase read", "tops_per_w"),
    ("HERMES 64-core chip", "64 cores, one-phase read", "tops"),
    ("HERMES 64-core chip", "64 cores, four-phase read", "tops_per_w"),
    ("HERMES 64-core chip", "64 cores, four-phase read", "tops"),
    ("NeuRRAM", "(out, in) = (3, 1) bits", "tops_per_w"),
    ("NeuRRAM", "(out, in) = (5, 3) bits", "tops_per_w"),
    ("NeuRRAM", "(out, in) = (6, 4) bits", "tops_per_w"),
    ("NeuRRAM", "(out, in) = (8, 6) bits", "tops_per_w"),
    ("NeuRRAM", "(out, in) = (10, 8) bits", "tops_per_w"),
    ("AON-CiM-like macro", "KWS, 8-bit activations", "tops_per_w"),
}


@pytest.fixture(scope="module")
def rows():
    s = load_adc_survey(shared_path("data", "adc_survey"))
    return anchor_rows(s, fit_adc_area(s))


def test_anchors_that_hold(rows):
    """Exactly the anchors of HELD lie within a factor 1.5 of the published figure (a change
    of the model that moves any across the bound fails)."""
    assert len(rows) == len(ANCHORS)
    held = {(r["chip"], r["label"], r["figure"]) for r in rows if r["held"]}
    assert held == HELD
    for r in rows:
        assert r["ratio"] == pytest.approx(r["ours"] / r["published"])
    assert anchor_table(rows).count("\n") == len(rows) + 1


def test_node_values_move_only_the_chips_that_take_them():
    """A node's stand-in changed for the anchors reaches the chips that take it from the node
    and no other: 512 rows at 14 nm changes the AON-CiM-like macro (its paper gives no array)
    and leaves HERMES (its paper's 256) as it was; the read voltage, which no 14 nm paper
    gives, moves both; the array energy goes as V_read^2; a read voltage <= 0 or not
    finite is refused."""
    from xbarlab.energy.anchors import with_node_values
    from xbarlab.energy.chip import shipped_chips
    from xbarlab.errors import ConfigError

    chips = shipped_chips()
    aon = with_node_values(chips["aon-cim"], {("14nm", "rows"): 512})
    assert aon.rows == 512 and isinstance(aon.rows, int)
    assert with_node_values(chips["hermes-core"], {("14nm", "rows"): 512}).rows == 256
    assert with_node_values(chips["neurram"], {("14nm", "v_read"): 0.2}).v_read == 0.1
    for k in ("aon-cim", "hermes-core"):
        assert with_node_values(chips[k], {("14nm", "v_read"): 0.2}).v_read == 0.2
    with pytest.raises(ConfigError, match=r"node '14nm' gives no chip field 'vread'"):
        with_node_values(chips["aon-cim"], {("14nm", "vread"): 0.2})
    with pytest.raises(ConfigError, match=r"14nm:rows = 51.5: expected .*an integer"):
        with_node_values(chips["aon-cim"], {("14nm", "rows"): 51.5})
    with pytest.raises(ConfigError, match=r"only number fields"):
        with_node_values(chips["aon-cim"], {("14nm", "readout"): 1.0})
    for bad in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"14nm:v_read = .*finite number > 0 \[V\]"):
            with_node_values(chips["aon-cim"], {("14nm", "v_read"): bad})
    s = load_adc_survey(shared_path("data", "adc_survey"))
    base = {(r["chip"], r["label"], r["figure"]): r for r in anchor_rows(s, fit_adc_area(s))}
    low = anchor_rows(s, fit_adc_area(s), node_values={("14nm", "v_read"): 0.15})
    for r in low:
        b = base[(r["chip"], r["label"], r["figure"])]
        if r["chip"] == "NeuRRAM" or r["figure"] != "tops_per_w":
            assert r["ours"] == pytest.approx(b["ours"], rel=1e-12)
        else:
            assert r["ours"] > 1.2 * b["ours"]
    # the array's energy is sum V^2 G t over the cells: halving the read voltage quarters it
    from xbarlab.energy.cost import product_cost

    core = chips["hermes-core"]
    half = with_node_values(core, {("14nm", "v_read"): core.v_read / 2})
    e = [product_cost(c, s, area_model=fit_adc_area(s)).energy["array"] for c in (core, half)]
    assert e[1] == pytest.approx(e[0] / 4, rel=1e-12)
