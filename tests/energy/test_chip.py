"""Chip and node files: every shipped chip loads, takes its node's values unchanged, and bad
files fail with one-line errors naming the value."""

from __future__ import annotations

import tomllib

import pytest
from xbarlab.energy.chip import (
    CHIP_DIR,
    ChipDescription,
    NodeParams,
    load_chip,
    load_node,
    shipped_chips,
)
from xbarlab.errors import ConfigError

NODE_KEYS = {f for f in NodeParams.__dataclass_fields__}


def _keys(d, prefix=""):
    for k, v in d.items():
        yield k
        if isinstance(v, dict) and "value" not in v:
            yield from _keys(v, prefix + k + ".")


def test_shipped_chips_load_and_cite():
    """Four chip files, each with a citation, a node file of its own node, and the paper's
    published figures."""
    chips = shipped_chips()
    assert set(chips) == {"hermes-core", "hermes-chip", "neurram", "aon-cim"}
    for c in chips.values():
        assert isinstance(c, ChipDescription) and len(c.citation) > 40
        assert c.published["tops_per_w"] > 0
        assert c.node == load_node(c.node.name)


def test_no_chip_file_sets_a_node_value():
    """No key of any shipped chip file (at any depth) names a node value: node values are
    the same for every chip of a node."""
    for path in sorted(CHIP_DIR.glob("*.toml")):
        with open(path, "rb") as fh:
            keys = set(_keys(tomllib.load(fh)))
        assert not keys & (NODE_KEYS - {"name", "source"}), path.name


def _write(tmp_path, text: str):
    src = (CHIP_DIR / "hermes-core.toml").read_text()
    p = tmp_path / "chip.toml"
    p.write_text(text(src) if callable(text) else text)
    return p


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.replace("[array]", "c_driver = { value = 1e-15, unit = \"F\" }\n[array]"),
     r"c_driver.*node values cannot be overridden"),
    (lambda s: s.replace("[adc]", "[adc]\nc_wire = { value = 1e-10, unit = \"F/m\" }"),
     r"\[adc\] unknown key\(s\) \['c_wire'\].*node values"),
    (lambda s: s.replace("[read]", "[read]\nspeed = 3"),
     r"\[read\] unknown key\(s\) \['speed'\]"),
    (lambda s: s.replace('g_max = { value = 10e-6, unit = "S" }',
                         'g_max = { value = 10, unit = "uS" }'),
     r"g_max has unit 'uS'; expected 'S'"),
    (lambda s: s.replace('t_pulse = { value = 1e-9, unit = "s" }',
                         't_pulse = { value = -1e-9, unit = "s" }'),
     r"t_pulse = -1e-09 must be > 0"),
    (lambda s: s.replace('rows = { value = 256, unit = "1" }',
                         'rows = { value = 25.5, unit = "1" }'),
     r"rows = 25.5 must be an integer"),
    (lambda s: s.replace('node = "14nm"', 'node = "7nm"'), r"node '7nm'.*known nodes"),
    (lambda s: s.replace('readout = "current"', 'readout = "charge"'), r"readout"),
    (lambda s: s.replace('g_min = { value = 0.0, unit = "S" }',
                         'g_min = { value = 20e-6, unit = "S" }'),
     r"g_min = 2e-05 S must be below"),
    (lambda s: s.replace("[adc]", "[adc]\nenergy = { value = 1e-12, unit = \"J\" }\n"
                         "energy_per_bit = { value = 1e-13, unit = \"J\" }"),
     r"\[adc\] gives both energy and energy_per_bit"),
    (lambda s: s + "\n[neuron]\nphase_bits = { value = 3, unit = \"1\" }\n",
     r"\[neuron\] must give all of"),
    (lambda s: s + "\n[neuron]\nsteps = 3\n", r"\[neuron\] unknown key\(s\) \['steps'\]"),
    (lambda s: s.replace("input_signed = true", 'input_signed = "yes"'),
     r"\[read\] input_signed must be true or false, got 'yes'"),
    (lambda s: s.replace("integrating = true", "integrating = 1"),
     r"\[adc\] integrating must be true or false, got 1"),
])
def test_bad_chip_files(tmp_path, edit, match):
    """A node value set in a chip, an unknown key, a wrong unit, a negative or fractional
    value, an unknown node or enum, g_min >= g_max, an ADC energy given both per conversion
    and per output bit, a [neuron] table with a key missing or unknown, a flag that is not
    true or false: ConfigError naming the key and value."""
    with pytest.raises(ConfigError, match=match) as err:
        load_chip(_write(tmp_path, edit))
    assert "\n" not in str(err.value)


def test_bad_node_file(tmp_path):
    """A node file missing a value or with a wrong unit is refused."""
    src = (CHIP_DIR / "nodes" / "14nm.toml").read_text()
    (tmp_path / "14nm.toml").write_text(src.replace('unit = "F/m"', 'unit = "F/um"'))
    with pytest.raises(ConfigError, match=r"c_wire has unit 'F/um'; expected 'F/m'"):
        load_node("14nm", tmp_path)
    (tmp_path / "14nm.toml").write_text(src.replace("c_driver", "#"))
    with pytest.raises(ConfigError, match=r"missing \['c_driver'\]"):
        load_node("14nm", tmp_path)


def test_neurram_neuron_table_loads_as_written():
    """NeuRRAM's [neuron] table, read here straight from the file, reaches the loaded chip
    unchanged in SI units: 0.25 pJ an integration, 1.2 pJ a sample, a word line of
    (1.5 + 0.6) fF x 256 bitlines + 48 fF of driver = 585.6 fF, 3 bits a phase."""
    from pathlib import Path

    import xbarlab

    path = Path(xbarlab.__file__).resolve().parent / "data" / "chips" / "neurram.toml"
    with open(path, "rb") as fh:
        table = tomllib.load(fh)["neuron"]
    units = {"integration_energy": "J", "sample_energy": "J", "wordline_capacitance": "F",
             "phase_bits": "1"}
    assert {k: v["unit"] for k, v in table.items()} == units
    chip = load_chip("neurram")
    assert chip.integrate_and_fire
    assert chip.neuron_integration_energy == table["integration_energy"]["value"] == 0.25e-12
    assert chip.neuron_sample_energy == table["sample_energy"]["value"] == 1.2e-12
    assert chip.wordline_capacitance == table["wordline_capacitance"]["value"]
    assert chip.wordline_capacitance == pytest.approx((1.5 + 0.6) * 1e-15 * 256 + 48e-15,
                                                      rel=1e-12)
    assert chip.neuron_phase_bits == table["phase_bits"]["value"] == 3
    assert isinstance(chip.neuron_phase_bits, int)


def _chip_lines(path):
    """(table, key, line) of every ``key = ...`` line of a chip file's tables."""
    table = None
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.startswith("["):
            table = s.strip("[]")
        elif "=" in s and not s.startswith("#") and table is not None:
            yield table, s.split("=")[0].strip(), line


def test_chip_files_give_only_what_their_paper_gives():
    """No shipped chip file marks a value assumed, and every line that gives a field its node
    also gives names its source in a comment: what a paper leaves out is the node's, one
    value for every chip of the node."""
    from xbarlab.energy.chip import _RENAMED

    for path in sorted(CHIP_DIR.glob("*.toml")):
        assert "(assumed)" not in path.read_text(), path.name
        chip = load_chip(path)
        for table, key, line in _chip_lines(path):
            field = _RENAMED.get(table, {}).get(key, key)
            if field in chip.node.chip:
                assert "#" in line, f"{path.name}: [{table}] {key} gives no source"
            assert field not in chip.from_node, (path.name, field)


def test_fields_a_paper_leaves_out_come_from_the_node():
    """The AON-CiM-like macro's paper gives its node, bits and figures only: every other
    field is the 14 nm node's, equal to the node file's value, and listed in from_node; the
    HERMES files and NeuRRAM take only the read voltage from their nodes (their figures count
    no digital units)."""
    chips = shipped_chips()
    aon = chips["aon-cim"]
    assert set(aon.from_node) == set(aon.node.chip) - {"adc_step_time"}
    for f in aon.from_node:
        assert getattr(aon, f) == aon.node.chip[f], f
    assert aon.v_read == 0.3 and aon.rows == 256 and aon.adc_integrating
    for k in ("hermes-core", "hermes-chip", "neurram"):
        assert chips[k].from_node == ("v_read",), k
        assert chips[k].digital_energy_per_output == 0.0
    assert aon.digital_energy_per_output == 0.25e-12
    assert chips["neurram"].v_read == load_node("130nm").chip["v_read"] == 0.1


def test_a_node_default_reaches_a_chip_that_omits_it(tmp_path):
    """A chip file without ``rows`` takes the node's [chip.array] rows; one that gives rows
    keeps its own; a node without the field leaves the chip's value missing (refused)."""
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    src = (CHIP_DIR / "nodes" / "14nm.toml").read_text()
    (nodes / "14nm.toml").write_text(src.replace('rows = { value = 256, unit = "1" }',
                                                 'rows = { value = 64, unit = "1" }'))
    text = (CHIP_DIR / "hermes-core.toml").read_text()
    omit = "\n".join(x for x in text.splitlines() if not x.startswith("rows ="))
    (tmp_path / "a.toml").write_text(omit)
    (tmp_path / "b.toml").write_text(text)
    a = load_chip(tmp_path / "a.toml", node_folder=nodes)
    b = load_chip(tmp_path / "b.toml", node_folder=nodes)
    assert (a.rows, "rows" in a.from_node) == (64, True)
    assert (b.rows, "rows" in b.from_node) == (256, False)
    (nodes / "14nm.toml").write_text(src.replace('rows = { value = 256, unit = "1" }', ""))
    with pytest.raises(ConfigError, match=r"missing value\(s\) \['rows'\]"):
        load_chip(tmp_path / "a.toml", node_folder=nodes)


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.replace("[chip.read]", "[chip.read]\nspeed = 3"),
     r"\[chip.read\] unknown key\(s\) \['speed'\]"),
    (lambda s: s.replace("[chip.adc]", "[chip.neuron]"), r"\[chip\] may hold only the tables"),
    (lambda s: s.replace('v_read = { value = 0.3, unit = "V" }',
                         'v_read = { value = 300, unit = "mV" }'),
     r"v_read has unit 'mV'; expected 'V'"),
])
def test_bad_node_chip_tables(tmp_path, edit, match):
    """A node's [chip.*] tables are checked as a chip file's are."""
    src = (CHIP_DIR / "nodes" / "14nm.toml").read_text()
    (tmp_path / "14nm.toml").write_text(edit(src))
    with pytest.raises(ConfigError, match=match) as err:
        load_node("14nm", tmp_path)
    assert "\n" not in str(err.value)


def test_adc_rate_step_time_or_lsb_time():
    """Exactly one of the ADC's rate, step time and time per LSB (the HERMES core gives
    300 ps/LSB); a step time only for a converter characterised per output bit."""
    import dataclasses

    n = load_chip("neurram")
    assert n.adc_rate is None and n.adc_step_time == 0.3e-6
    with pytest.raises(ConfigError, match=r"exactly one of adc_rate"):
        dataclasses.replace(n, adc_rate=1e6)
    with pytest.raises(ConfigError, match=r"exactly one of adc_rate"):
        dataclasses.replace(n, adc_step_time=None)
    with pytest.raises(ConfigError, match=r"adc_step_time = 1e-06 s is for a converter"):
        dataclasses.replace(load_chip("hermes-core"), adc_lsb_time=None, adc_step_time=1e-6)
    core = load_chip("hermes-core")
    assert core.adc_rate is None and core.adc_lsb_time == 300e-12
    with pytest.raises(ConfigError, match=r"exactly one of adc_rate .* and adc_lsb_time"):
        dataclasses.replace(core, adc_rate=13e6)


@pytest.mark.parametrize("value, match", [
    ("-1e-12", r"\[digital\]: digital_energy_per_output = -1e-12 must be >= 0 \[J\]"),
    ('"a"', r"digital_energy_per_output = 'a' must be a finite number \[J\]"),
])
def test_bad_digital_table(tmp_path, value, match):
    """A [digital] table with a negative or non-numeric energy is refused in one line."""
    p = tmp_path / "chip.toml"
    p.write_text((CHIP_DIR / "hermes-chip.toml").read_text().replace(
        "energy_per_output = { value = 0.0,", f"energy_per_output = {{ value = {value},"))
    with pytest.raises(ConfigError, match=match) as err:
        load_chip(p)
    assert "\n" not in str(err.value)


def test_format_value_as_reports_print_it():
    """Booleans in lower case, floats in %g, enums by value, strings as they are."""
    from xbarlab.energy.chip import Readout, format_value

    assert [format_value(v) for v in (True, 3e-12, 0.3, Readout.CURRENT, "CCO", 256)] == \
        ["true", "3e-12", "0.3", "current", "CCO", "256"]
