"""The shipped chips against their published figures: which agree within 1.5x."""

from __future__ import annotations

import pytest
from _shared import shared_path
from xbarlab.energy import fit_adc_area, load_adc_survey
from xbarlab.energy.anchors import ANCHORS, anchor_rows, anchor_table

#: (chip, label, figure) of the anchors the model meets within 1.5x: all but the AON-CiM-like
#: macro at 6 and 4-bit activations on KWS, whose description is the 14 nm node's (1.7x),
#: and on VWW at every width (2.4-3.8x: the model has one figure per product, the paper's
#: VWW efficiency is about half its KWS one).
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
            assert r["ours"] > 1.1 * b["ours"]
    # the array's energy is sum V^2 G t over the cells: halving the read voltage quarters it
    from xbarlab.energy.cost import product_cost

    core = chips["hermes-core"]
    half = with_node_values(core, {("14nm", "v_read"): core.v_read / 2})
    e = [product_cost(c, s, area_model=fit_adc_area(s)).energy["array"] for c in (core, half)]
    assert e[1] == pytest.approx(e[0] / 4, rel=1e-12)


def test_width_scaling_of_the_aon_cim_like_macro(rows):
    """The three published AON-CiM efficiencies at 8, 6 and 4-bit activations (journal
    version: 8.55, 26.55, 56.67 TOPS/W) follow E(b) = F + A 2^b (pulse width and
    integrating converter time both 2^b) with F, the part that does not shrink with the
    width, 9.4 % of E(8): fitted on 8 and 4 bits, it predicts E(6) / E(4) within 1 %.
    Ours has F / E(8) below 5 % (the node's digital energy per output, 0.25 pJ, is 0.064 nJ
    of the 12.4 nJ). A width-independent energy of 2 pJ per output instead (8x the node's)
    holds all three AON-CiM KWS anchors and every other but the VWW ones, which no energy
    per product can hold beside the KWS ones (their published efficiency is 0.45-0.51 of
    KWS's at each width)."""
    pub = {8: 8.55, 6: 26.55, 4: 56.67}
    e_pub = {b: 1 / v for b, v in pub.items()}

    def bits(r):
        return int(r["label"].split("-bit")[0].split()[-1])

    kws = [r for r in rows if r["chip"] == "AON-CiM-like macro" and r["label"][:3] == "KWS"]
    ours = {bits(r): r["cost"].total_energy for r in kws}
    assert set(ours) == {8, 6, 4}

    def form(e):
        a = (e[8] - e[4]) / (2**8 - 2**4)
        f = e[4] - 2**4 * a
        return f / e[8], (f + 2**6 * a) / e[4], e[6] / e[4]

    f_pub, pred, seen = form(e_pub)
    assert f_pub == pytest.approx(0.094, abs=0.002) and pred == pytest.approx(seen, rel=0.01)
    assert form(ours)[0] < 0.05
    dig = [r["cost"].energy["digital"] for r in kws]
    assert dig == pytest.approx([256 * 0.25e-12] * 3, rel=1e-12)
    s = load_adc_survey(shared_path("data", "adc_survey"))
    what_if = anchor_rows(s, fit_adc_area(s),
                          node_values={("14nm", "digital_energy_per_output"): 2e-12})
    assert all(r["held"] for r in what_if if r["label"][:3] != "VWW")
    vww = [r for r in what_if if r["label"][:3] == "VWW"]
    assert len(vww) == 3 and not any(r["held"] for r in vww)
    pub_ratio = {bits(r): r["published"] for r in vww}
    for r in kws:
        assert pub_ratio[bits(r)] / r["published"] == pytest.approx(0.48, abs=0.035)
