"""Study files: every mistake is refused before any point runs, with the offending value."""

import pytest
from xbarlab.errors import ConfigError
from xbarlab.sweep.study import load_study, parse_study

BASE = {"study": {"kind": "draw", "seed": 1}}


def _doc(**tables):
    return {**BASE, **tables}


def test_grid_expands_every_combination_with_defaults():
    """2 x 3 axis values -> 6 points, each with the fixed and default settings; the axes
    are the varying settings, in the file's order."""
    s = parse_study(_doc(settings={"samples": 4}, grid={"index": [0, 1, 2]}))
    assert len(s.points) == 3 and s.axes == ("index",)
    assert all(p.settings["samples"] == 4 for p in s.points)
    s = parse_study({"study": {"kind": "crossbar", "programmings": 3},
                     "grid": {"adc_bits": [6, 8]}})
    assert len(s.points) == 6 and s.axes == ("adc_bits", "programming")
    assert {p.settings["r_wire"] for p in s.points} == {1.0}  # the kind's default


def test_explicit_points_add_to_the_grid():
    """[[points]] entries are points besides the grid's."""
    s = parse_study(_doc(grid={"index": [0, 1]}, points=[{"index": 5, "samples": 2}]))
    assert sorted(p.settings["index"] for p in s.points) == [0, 1, 5]


@pytest.mark.parametrize("doc, match", [
    (_doc(grid={"nope": [1]}), "unknown key 'nope'"),
    (_doc(settings={"nope": 1}), "unknown setting 'nope'.*valid settings: samples, index"),
    (_doc(grid={"index": []}), "axis 'index' is empty"),
    (_doc(grid={"index": 3}), "must be a list"),
    (_doc(grid={"samples": [0]}), "'samples' must be .*got 0"),
    (_doc(grid={"index": [1, 1]}), "appears twice"),
    (_doc(settings={"index": 1}, grid={"index": [2]}), "both in \\[settings\\] and \\[grid\\]"),
    ({"study": {"kind": "nope"}}, "unknown study kind 'nope'; valid kinds: crossbar, draw"),
    ({"study": {"seed": 1}}, "kind is missing"),
    ({"grid": {}}, "\\[study\\] table is missing"),
    (_doc(extra={}), "unknown key 'extra'"),
    ({"study": {"kind": "draw", "max_points": 2}, "grid": {"index": [0, 1, 2]}},
     "3 points, more than max_points 2"),
    ({"study": {"kind": "draw", "metrics": ["acc"]}}, "metrics must be .* mean, std"),
    ({"study": {"kind": "crossbar"}, "grid": {"n": [64, 63]}},
     "n=63.*cannot be built: n must be even"),
    ({"study": {"kind": "crossbar"}, "grid": {"time": ["1h", "soon"]}}, "'soon'"),
    ({"study": {"kind": "crossbar"}, "settings": {"device": "no-such-preset"}},
     "no-such-preset"),
    ({"study": {"kind": "crossbar"}, "settings": {"adc_range": "auto"}},
     "adc_range.*'calibrated', 'max-possible'.*'auto'"),
    ({"study": {"kind": "crossbar"}, "grid": {"g_max": ["1S"]}},
     "g_max=1.0.*cannot be built"),
])
def test_bad_study_refused_naming_the_value(doc, match):
    """Each mistake -> ConfigError whose one line names the value."""
    with pytest.raises(ConfigError, match=match) as info:
        parse_study(doc)
    assert "\n" not in str(info.value)


def test_max_points_lifted_by_yes():
    """yes=True runs a study beyond its max_points."""
    doc = {"study": {"kind": "draw", "max_points": 2}, "grid": {"index": [0, 1, 2]}}
    assert len(parse_study(doc, yes=True).points) == 3


def test_load_study_names_the_file(tmp_path):
    """A TOML syntax error and a bad value both name the file; the title defaults to its
    name and the text is kept."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nkind = 1\n")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        load_study(bad)
    good = tmp_path / "mine.toml"
    good.write_text('[study]\nkind = "draw"\n[grid]\nindex = [0, 1]\n')
    s = load_study(good)
    assert s.title == "mine" and len(s.points) == 2 and "index" in s.text
    with pytest.raises(ConfigError, match="missing.toml"):
        load_study(tmp_path / "missing.toml")


def test_device_file_relative_to_the_study(tmp_path):
    """A device-model path is read relative to the study file's folder (and refused when
    that file is missing, naming the point)."""
    f = tmp_path / "study.toml"
    f.write_text('[study]\nkind = "crossbar"\n[settings]\ndevice = "models/m.h5"\n')
    with pytest.raises(ConfigError, match="cannot be built.*models/m.h5"):
        load_study(f)
