r"""Chip and macro descriptions as data: a technology-node file and a chip file, both TOML.

Every number in either file is an inline table ``{ value = ..., unit = "..." }`` whose unit
must be the SI unit the field expects (``"1"`` for counts and ratios); the loader refuses a
missing or unknown key, a wrong unit, a wrong type or a value out of range with a one-line
:class:`~xbarlab.errors.ConfigError` naming the file, the key and the value.

A **node file** (``data/chips/nodes/<name>.toml``) holds what a chip paper usually does not
give, one value per technology node shared by every chip of that node
(:class:`NodeParams`). A **chip file** (``data/chips/<name>.toml``) holds what its paper gives
(:class:`ChipDescription`): ``name``, ``citation``, ``node`` (the node file's name),
``technology``, and the tables ``[array]``, ``[read]``, ``[adc]`` and optionally
``[digital]`` (the chip's digital energy per output value, below), ``[neuron]`` (an
integrate-and-fire neuron's input protocol, below) and
``[published]`` (the paper's measured figures, for comparison only). A chip file that sets a
node field is refused: node values cannot be overridden per chip.

A node file's optional ``[chip.array]``, ``[chip.read]``, ``[chip.adc]`` and
``[chip.digital]`` tables (keys as in a chip file) give the chip fields that a paper of that
node may leave out, one value for every chip of the node (:attr:`NodeParams.chip`). A chip
file gives only what its paper gives; a field it leaves out takes the node's value and is
listed in :attr:`ChipDescription.from_node`. The shipped chip files cite, on each line that gives a
field the node also gives, where the paper gives it.

An ADC whose paper characterises it per output bit (``adc.energy_per_bit``: a converter
taking one step per output bit, such as a charge-decrement neuron) costs ``b_out`` times that
a conversion. A counting converter given by its time per LSB (``adc.lsb_time``, e.g. a
current-controlled oscillator of 300 ps/LSB) converts ``b_out`` bits in ``2^b_out`` times
that, its rate the inverse. An ADC whose energy the paper does not give (neither key) takes the
:data:`ADC_SURVEY_PERCENTILE` percentile of the ADC survey at its resolution and sampling rate
(:func:`xbarlab.energy.adc.adc_energy`); one without ``adc.area`` takes the survey's area
regression (:func:`xbarlab.energy.adc.fit_adc_area`) at the node.

The ``[digital]`` table's one key, ``energy_per_output`` [J], is what the figure counts of the
chip's digital work per output value of a product beyond the array, converters,
shift-and-add, buffers and interconnect (post-processing, control, on-chip routing of
results), independent of the value's width: 0 for a figure of a bare core or macro.

A ``[neuron]`` table describes a voltage-mode neuron that integrates signed inputs of
``n = max(1, b_in - 1)`` magnitude bits by binary weighting (input bit ``k`` integrated
``2^k`` times: ``2^p - 1`` integrations for ``p`` bits) in one phase up to
``phase_bits`` magnitude bits and in two phases of ``ceil(n/2)`` and ``floor(n/2)`` bits
above, converting after each phase (:func:`neuron_phases`). Its keys: ``integration_energy``
(one integration of one neuron), ``sample_energy`` (one sampling of one neuron, once per
magnitude input bit), ``wordline_capacitance`` (the neuron's control line, toggled once per
magnitude input bit at the supply) and ``phase_bits``; all four are required together.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks import check_number
from ..enums import coerce_enum
from ..errors import ConfigError
from .periphery import InputScheme

__all__ = ["ADC_SURVEY_PERCENTILE", "Readout", "Accumulation", "NodeParams", "ChipDescription",
           "load_node", "load_chip", "shipped_chips", "CHIP_DIR", "neuron_phases",
           "neuron_conversion_steps", "format_value"]

#: Survey percentile [%] of the energy per conversion of every ADC a paper does not
#: characterise (25: the lower quartile of the converters of that resolution and speed).
ADC_SURVEY_PERCENTILE = 25.0

#: Folder of the shipped chip files; node files are in its ``nodes/`` subfolder.
CHIP_DIR = Path(__file__).resolve().parent.parent / "data" / "chips"


class Readout(enum.StrEnum):
    """Column readout: held at virtual ground (current) or floating on a capacitor (voltage)."""

    CURRENT = "current"
    VOLTAGE = "voltage"


class Accumulation(enum.StrEnum):
    """Where the bit-serial partial sums are combined: after a conversion per input cycle
    (``digital``, shift-and-add) or on the column capacitor with one conversion per product
    (``analog``)."""

    DIGITAL = "digital"
    ANALOG = "analog"


def _q(unit: str, doc: str = "", *, default=dataclasses.MISSING, integer: bool = False,
       positive: bool = False):
    return dataclasses.field(default=default, metadata={"unit": unit, "integer": integer,
                                                        "positive": positive, "doc": doc})


@dataclass(frozen=True, kw_only=True)
class NodeParams:
    """Values of one technology node used where a chip paper gives none (SI units)."""

    name: str = dataclasses.field(metadata={"unit": None})
    """Node name, e.g. ``"14nm"`` (the file's stem)."""
    source: str = dataclasses.field(metadata={"unit": None})
    """Where the values come from (citations)."""
    feature_size: float = _q("m", positive=True)
    """F [m]: the node's feature size (the ADC area regression's node)."""
    c_wire: float = _q("F/m")
    """c_wire [F/m]: array wire capacitance per length."""
    c_junction: float = _q("F")
    """c_junction [F]: capacitance of one cell between its row and column."""
    cell_pitch: float = _q("m", positive=True)
    """p [m]: pitch of one device along a line (device area p^2)."""
    c_driver: float = _q("F")
    """C_drv [F]: switched capacitance of one row driver per input toggle (at the supply)."""
    c_integrator: float = _q("F", positive=True)
    """C_int [F]: sampling capacitor of a voltage-mode column, besides the line."""
    e_add_bit: float = _q("J")
    """E_add [J]: one full-adder bit of the shift-and-add accumulator."""
    e_buffer_bit: float = _q("J")
    """E_buf [J]: one bit written to or read from the tile's SRAM input/output buffers."""
    e_wire_bit_mm: float = _q("J/m")
    """E_wire [J per bit per m]: moving one bit over on-chip interconnect."""
    p_leak_density: float = _q("W/m^2")
    """P_leak / A [W/m^2]: static power per area of the tile's periphery."""
    a_row: float = _q("m^2")
    """A_row [m^2]: area of one row driver (DAC, level shifter)."""
    a_col: float = _q("m^2")
    """A_col [m^2]: area of one column's sense circuit and multiplexer."""
    a_add_bit: float = _q("m^2")
    """A_add [m^2]: area of one accumulator bit."""
    chip: Mapping[str, Any] = dataclasses.field(default_factory=dict, metadata={"unit": None})
    """Chip fields (:class:`ChipDescription` names, SI units) that a chip file of this node
    takes when its paper does not give them: one value for every chip of the node (the
    node file's ``[chip.array]``, ``[chip.read]``, ``[chip.adc]`` and ``[chip.digital]``
    tables, keys as in a chip file)."""

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (SI units)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class ChipDescription:
    """A macro or chip described from its paper; anything the paper does not give is in
    :attr:`node`. Numbers in SI units."""

    name: str
    """Chip name."""
    citation: str
    """The paper the values come from."""
    node: NodeParams
    """The shared values of its technology node."""
    technology: str
    """Memory technology (``"pcm"``, ``"rram"``, ...), descriptive."""
    rows: int = _q("1", integer=True, positive=True)
    """M: inputs (weight rows) of one array [1]."""
    cols: int = _q("1", integer=True, positive=True)
    """N: outputs (weight columns) of one array [1]."""
    cores: int = _q("1", integer=True, positive=True)
    """Arrays on the chip [1]."""
    devices_per_weight: int = _q("1", integer=True, positive=True)
    """Devices storing one weight [1] (2 for a differential pair)."""
    g_min: float = _q("S")
    """g_min [S]: lowest device conductance used."""
    g_max: float = _q("S", positive=True)
    """g_max [S]: highest device conductance used."""
    supply: float = _q("V", positive=True)
    """V_dd [V]: periphery supply."""
    v_read: float = _q("V", positive=True)
    """V_read [V]: read voltage across a cell at full-scale input."""
    input_scheme: InputScheme = dataclasses.field(default=InputScheme.BIT_SERIAL,
                                                  metadata={"unit": None})
    """Input encoding (:class:`~xbarlab.energy.periphery.InputScheme`)."""
    input_bits: int = _q("1", integer=True, positive=True)
    """b_in: input resolution [bits]."""
    output_bits: int = _q("1", integer=True, positive=True)
    """b_out: ADC resolution [bits]."""
    t_pulse: float = _q("s", positive=True)
    """t [s]: read pulse of one input cycle; for pulse-width inputs the unit width (one LSB)."""
    input_signed: bool = dataclasses.field(default=False, metadata={"unit": None})
    """Inputs in sign and magnitude: the sign selects the line's polarity (a voltage of
    either sign, the same energy), the ``b_in - 1`` other bits the magnitude, so a
    pulse-width input lasts at most ``(2^(b_in - 1) - 1) t``. False: unsigned ``b_in``-bit
    codes. (Chips with a ``[neuron]`` table take signed inputs through their phases.)"""
    readout: Readout = dataclasses.field(default=Readout.CURRENT, metadata={"unit": None})
    """Current-mode or voltage-mode readout."""
    accumulation: Accumulation = dataclasses.field(default=Accumulation.DIGITAL,
                                                   metadata={"unit": None})
    """Where bit-serial partial sums are combined."""
    phases: int = _q("1", integer=True, positive=True)
    """Array reads per product (e.g. 4 for a four-phase read of signed inputs and weights)."""
    columns_per_adc: int = _q("1", integer=True, positive=True)
    """Columns multiplexed onto one ADC [1]."""
    adc_rate: float | None = _q("Hz", default=None, positive=True)
    """f_s [Hz]: conversions per second of one ADC; None for a converter given by
    :attr:`adc_step_time` or :attr:`adc_lsb_time`."""
    adc_step_time: float | None = _q("s", default=None, positive=True)
    """t_step [s]: one step of a converter characterised per output bit
    (:attr:`adc_energy_per_bit`): a conversion of ``s`` steps lasts ``s t_step``. None: a
    conversion lasts ``1 / f_s``. Exactly one of :attr:`adc_rate`, this and
    :attr:`adc_lsb_time` is given."""
    adc_lsb_time: float | None = _q("s", default=None, positive=True)
    """t_LSB [s]: a counting converter (an oscillator whose cycles a counter counts) that
    takes this long per LSB: a ``b_out``-bit conversion lasts ``2^b_out t_LSB`` and its rate
    (:attr:`conversion_rate`, for the survey) is the inverse. None: :attr:`adc_rate` or
    :attr:`adc_step_time`."""
    adc_kind: str = dataclasses.field(default="", metadata={"unit": None})
    """The ADC's architecture as the paper names it (descriptive)."""
    adc_energy: float | None = _q("J", default=None, positive=True)
    """E_adc [J per conversion] where the paper gives it; None: :attr:`adc_energy_per_bit`
    or the survey."""
    adc_energy_per_bit: float | None = _q("J", default=None, positive=True)
    """E_step [J per output bit and conversion] where the paper (or its published model)
    characterises a converter that takes one step per output bit (e.g. a charge-decrement
    neuron): a conversion costs ``b_out E_step``. None: :attr:`adc_energy` or the survey.
    At most one of the two is given."""
    adc_area: float | None = _q("m^2", default=None, positive=True)
    """A_adc [m^2] of one ADC where the paper gives it; None: the survey regression."""
    adc_extrapolate: bool = dataclasses.field(default=False, metadata={"unit": None})
    """Allow the survey look-up outside its SNDR span (see :func:`~.adc.adc_energy`)."""
    adc_integrating: bool = dataclasses.field(default=False, metadata={"unit": None})
    """The ADC converts while the column current flows (an oscillator whose counts
    integrate the current over the read), so an input cycle lasts
    ``max(t_read, c t_conv)`` rather than ``t_read + c t_conv``."""
    digital_energy_per_output: float = _q("J")
    """E_dig [J]: the chip's digital energy per output value of a product that its figure
    counts beyond the array, converters, shift-and-add, buffers and interconnect
    (post-processing, control, routing of results), whatever the value's width; 0 for the
    figure of a bare core (``[digital] energy_per_output``)."""
    neuron_integration_energy: float | None = _q("J", default=None, positive=True)
    """E_int [J]: one integration of one integrate-and-fire neuron (``[neuron]`` table);
    None: no such neuron modelled."""
    neuron_sample_energy: float | None = _q("J", default=None, positive=True)
    """E_smp [J]: one sampling of one neuron, once per magnitude input bit."""
    wordline_capacitance: float | None = _q("F", default=None, positive=True)
    """C_wl [F]: one neuron's control line, toggled once per magnitude input bit."""
    neuron_phase_bits: int | None = _q("1", default=None, integer=True, positive=True)
    """Most magnitude input bits integrated in one phase; above, two phases [1]."""
    published: Mapping[str, float] = dataclasses.field(default_factory=dict,
                                                       metadata={"unit": None})
    """The paper's figures for comparison (``tops_per_w``, ``tops_per_mm2``, ...)."""
    from_node: tuple[str, ...] = dataclasses.field(default=(), metadata={"unit": None})
    """Fields whose value the chip file did not give and :attr:`NodeParams.chip` supplied
    (what the paper does not give), in field order."""

    def __post_init__(self):
        given = [v is not None for v in (self.adc_rate, self.adc_step_time,
                                         self.adc_lsb_time)]
        if sum(given) != 1:
            raise ConfigError(f"chip {self.name!r}: give exactly one of adc_rate "
                              f"({self.adc_rate!r} Hz), adc_step_time ({self.adc_step_time!r} "
                              f"s) and adc_lsb_time ({self.adc_lsb_time!r} s)")
        if self.adc_step_time is not None and self.adc_energy_per_bit is None:
            raise ConfigError(f"chip {self.name!r}: adc_step_time = {self.adc_step_time!r} s "
                              "is for a converter characterised per output bit; expected "
                              "adc_energy_per_bit too")
        if self.adc_energy is not None and self.adc_energy_per_bit is not None:
            raise ConfigError(f"chip {self.name!r} gives both adc_energy and "
                              "adc_energy_per_bit; expected at most one")
        neuron = {k: getattr(self, k) for k in ("neuron_integration_energy",
                                                "neuron_sample_energy",
                                                "wordline_capacitance", "neuron_phase_bits")}
        given = [k for k, v in neuron.items() if v is not None]
        if given and len(given) != len(neuron):
            raise ConfigError(f"chip {self.name!r}: a [neuron] table needs all of "
                              f"{sorted(neuron)}; got only {given}")
        if given and Accumulation(self.accumulation) is not Accumulation.ANALOG:
            raise ConfigError(f"chip {self.name!r}: a [neuron] table (charge integrated over "
                              f"the input bits) needs accumulation = 'analog', got "
                              f"{self.accumulation!r}")

    @property
    def conversion_rate(self) -> float | None:
        """Conversions per second of one ADC [Hz]: :attr:`adc_rate`, or ``1 / (2^b_out
        t_LSB)`` for a counting converter (:attr:`adc_lsb_time`); None for a converter
        characterised per output bit (:attr:`adc_step_time`)."""
        if self.adc_lsb_time is not None:
            return 1.0 / (2.0 ** self.output_bits * self.adc_lsb_time)
        return self.adc_rate

    @property
    def ops_per_product(self) -> int:
        """Operations of one matrix-vector product of one array: 2 per multiply-accumulate."""
        return 2 * self.rows * self.cols

    @property
    def magnitude_bits(self) -> int:
        """Bits of an input code's magnitude [1]: ``b_in - 1`` for signed inputs (at least
        1), else ``b_in``; input codes lie in ``[0, 2^magnitude_bits - 1]``."""
        return max(1, self.input_bits - 1) if self.input_signed else self.input_bits

    @property
    def integrate_and_fire(self) -> bool:
        """Whether the chip gives a ``[neuron]`` table (binary-weighted integration)."""
        return self.neuron_integration_energy is not None


def neuron_phases(input_bits: int, phase_bits: int) -> tuple[int, ...]:
    """Magnitude input bits an integrate-and-fire neuron integrates in each phase.

    Inputs are signed, so ``n = max(1, b_in - 1)`` bits carry the magnitude; they are
    integrated in one phase if ``n <= phase_bits``, else in two of ``ceil(n/2)`` and
    ``floor(n/2)`` bits.

    Parameters
    ----------
    input_bits : int
        Input bits b_in, sign included [1], >= 1.
    phase_bits : int
        Most magnitude bits one phase integrates [1], >= 1.

    Returns
    -------
    tuple of int
        Magnitude bits of each phase [1].
    """
    check_number(input_bits, what="input_bits", integer=True, lo=1)
    check_number(phase_bits, what="phase_bits", integer=True, lo=1)
    n = max(1, int(input_bits) - 1)
    return (n,) if n <= phase_bits else (math.ceil(n / 2), n // 2)


def neuron_conversion_steps(output_bits: int, phases) -> int:
    """Charge-decrement steps of one neuron over all phases.

    Phase ``i`` converts ``max(b_out - sum_{j<i} p_j, 0)`` bits (the bits already
    integrated lie below its LSB).

    Parameters
    ----------
    output_bits : int
        Output bits b_out [1], >= 1.
    phases : sequence of int
        Magnitude bits of each phase [1] (:func:`neuron_phases`), at least one phase, each
        >= 1.

    Returns
    -------
    int
        Conversion steps [1].

    Raises
    ------
    ConfigError
        If ``output_bits`` or a phase's bits are not integers >= 1, or ``phases`` is not a
        non-empty sequence.
    """
    check_number(output_bits, what="output_bits", integer=True, lo=1)
    try:
        bits = () if isinstance(phases, str | bytes) else tuple(phases)
    except TypeError:
        bits = ()
    if not bits:
        raise ConfigError(f"phases must be a non-empty sequence of phase bits, got {phases!r}")
    steps, done = 0, 0
    for p in bits:
        check_number(p, what="bits of a phase", integer=True, lo=1)
        steps += max(int(output_bits) - done, 0)
        done += p
    return steps


# -- loading --------------------------------------------------------------------------------

_CHIP_TABLES = {
    "array": ("rows", "cols", "cores", "devices_per_weight", "g_min", "g_max"),
    "read": ("supply", "v_read", "input_scheme", "input_bits", "output_bits", "t_pulse",
             "input_signed", "readout", "accumulation", "phases"),
    "adc": ("adc_kind", "columns_per_adc", "adc_rate", "adc_step_time", "adc_lsb_time",
            "adc_energy",
            "adc_energy_per_bit", "adc_area", "adc_extrapolate", "adc_integrating"),
    "digital": ("digital_energy_per_output",),
    "neuron": ("neuron_integration_energy", "neuron_sample_energy", "wordline_capacitance",
               "neuron_phase_bits"),
}
_OPTIONAL_TABLES = ("digital", "neuron")
_ADC_KEYS = {"kind": "adc_kind", "columns_per_adc": "columns_per_adc", "rate": "adc_rate",
             "step_time": "adc_step_time", "lsb_time": "adc_lsb_time",
             "energy": "adc_energy", "energy_per_bit": "adc_energy_per_bit", "area": "adc_area",
             "extrapolate": "adc_extrapolate", "integrating": "adc_integrating"}
_NEURON_KEYS = {"integration_energy": "neuron_integration_energy",
                "sample_energy": "neuron_sample_energy",
                "wordline_capacitance": "wordline_capacitance", "phase_bits": "neuron_phase_bits"}
_DIGITAL_KEYS = {"energy_per_output": "digital_energy_per_output"}
_RENAMED = {"adc": _ADC_KEYS, "digital": _DIGITAL_KEYS, "neuron": _NEURON_KEYS}
_ENUMS = {"input_scheme": InputScheme, "readout": Readout, "accumulation": Accumulation}
_STRINGS = ("name", "citation", "node", "technology")
_FLAGS = ("input_signed", "adc_extrapolate", "adc_integrating")
_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(NodeParams) if f.name != "chip")
#: Chip tables a node file may default (``[chip.<table>]``).
_NODE_CHIP_TABLES = ("array", "read", "adc", "digital")


def _read_toml(path) -> dict:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None


def _quantity(where: str, cls, name: str, raw) -> float | int:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    unit, md = f.metadata["unit"], f.metadata
    if not isinstance(raw, dict) or set(raw) != {"value", "unit"}:
        raise ConfigError(f"{where}: {name} must be {{ value = ..., unit = \"{unit}\" }}, "
                          f"got {raw!r}")
    if raw["unit"] != unit:
        raise ConfigError(f"{where}: {name} has unit {raw['unit']!r}; expected {unit!r}")
    v = raw["value"]
    ok_type = isinstance(v, int) if md["integer"] else isinstance(v, int | float)
    if isinstance(v, bool) or not ok_type or v != v or v in (float("inf"), float("-inf")):
        kind = "an integer" if md["integer"] else "a finite number"
        raise ConfigError(f"{where}: {name} = {v!r} must be {kind} [{unit}]")
    if v < 0 or (md["positive"] and v == 0):
        raise ConfigError(f"{where}: {name} = {v!r} must be {'> 0' if md['positive'] else '>= 0'}"
                          f" [{unit}]")
    return int(v) if md["integer"] else float(v)


def load_node(name: str, folder=None) -> NodeParams:
    """The :class:`NodeParams` of node file ``<folder>/<name>.toml`` (default
    ``data/chips/nodes``). Every number field is required, the ``[chip.*]`` tables optional;
    unknown keys are refused."""
    folder = Path(folder) if folder is not None else CHIP_DIR / "nodes"
    path = folder / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.toml"))
        raise ConfigError(f"node {name!r}: no file {path}; known nodes: {known}")
    d = _read_toml(path)
    chip_tables = d.pop("chip", {})
    unknown = set(d) - set(_NODE_FIELDS)
    missing = set(_NODE_FIELDS) - set(d)
    if unknown or missing:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}, missing {sorted(missing)}")
    if d["name"] != name or not isinstance(d["source"], str):
        raise ConfigError(f"{path}: name must be {name!r} and source a string, got "
                          f"{d['name']!r}, {d['source']!r}")
    vals = {k: _quantity(str(path), NodeParams, k, d[k]) for k in _NODE_FIELDS[2:]}
    if not isinstance(chip_tables, dict) or set(chip_tables) - set(_NODE_CHIP_TABLES):
        raise ConfigError(f"{path}: [chip] may hold only the tables "
                          f"{list(_NODE_CHIP_TABLES)}, got {chip_tables!r}")
    chip: dict[str, Any] = {}
    for table, t in chip_tables.items():
        chip.update(_table_fields(f"{path}: [chip.{table}]", table, t))
    return NodeParams(name=name, source=d["source"], chip=chip, **vals)


def _table_fields(where: str, table: str, t) -> dict[str, Any]:
    """The :class:`ChipDescription` fields of one chip table ``t`` (``[array]``, ...)."""
    if not isinstance(t, dict):
        raise ConfigError(f"{where} must be a table, got {t!r}")
    names = _CHIP_TABLES[table]
    ren = _RENAMED.get(table)
    keys = {(ren.get(k, "?" + k) if ren else k): k for k in t}
    bad = sorted(raw for f, raw in keys.items() if f not in names)
    if bad:
        node_hit = set(bad) & set(_NODE_FIELDS)
        hint = " (node values cannot be overridden per chip)" if node_hit else ""
        valid = sorted(ren) if ren else sorted(names)
        raise ConfigError(f"{where} unknown key(s) {bad}{hint}; valid: {valid}")
    out: dict[str, Any] = {}
    for f, raw_key in keys.items():
        v = t[raw_key]
        if f in _ENUMS:
            out[f] = coerce_enum(_ENUMS[f], v, f"{where} {raw_key}")
        elif f == "adc_kind":
            out[f] = str(v)
        elif f in _FLAGS:
            if not isinstance(v, bool):
                raise ConfigError(f"{where} {raw_key} must be true or false, got {v!r}")
            out[f] = v
        else:
            out[f] = _quantity(where, ChipDescription, f, v)
    if ren is _NEURON_KEYS and set(keys) != set(names):
        raise ConfigError(f"{where} must give all of {sorted(_NEURON_KEYS)}, "
                          f"got {sorted(t)}")
    return out


def _chip_fields(path: Path, d: dict) -> dict[str, Any]:
    where = str(path)
    tables = {"array", "read", "adc", "digital", "neuron", "published"}
    unknown = set(d) - set(_STRINGS) - tables
    if unknown:
        hint = " (node values cannot be overridden per chip)" if unknown & set(_NODE_FIELDS) \
            else ""
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}{hint}; valid: "
                          f"{sorted(set(_STRINGS) | tables)}")
    out: dict[str, Any] = {}
    for k in _STRINGS:
        if not isinstance(d.get(k), str) or not d[k]:
            raise ConfigError(f"{where}: {k} must be a non-empty string, got {d.get(k)!r}")
        out[k] = d[k]
    for table in _CHIP_TABLES:
        t = d.get(table)
        if t is None and table in _OPTIONAL_TABLES:
            continue
        if t is None:
            raise ConfigError(f"{where}: missing table [{table}]")
        out.update(_table_fields(f"{where}: [{table}]", table, t))
    pub = d.get("published", {})
    if not isinstance(pub, dict) or not all(
            isinstance(v, int | float | str) and not isinstance(v, bool) for v in pub.values()):
        raise ConfigError(f"{where}: [published] must map names to numbers or strings")
    out["published"] = dict(pub)
    return out


def load_chip(path, *, node_folder=None) -> ChipDescription:
    """The :class:`ChipDescription` of a chip file, its node taken from the node file.

    A field the chip file does not give takes its node's value (:attr:`NodeParams.chip`)
    where the node has one, and is listed in :attr:`ChipDescription.from_node`.

    Parameters
    ----------
    path : str or Path
        The chip's TOML file (module docstring), or the stem of a shipped one in
        :data:`CHIP_DIR`.
    node_folder : str or Path, optional
        Where the node files are (default ``data/chips/nodes``).
    """
    p = Path(path)
    if not p.suffix and not p.exists():
        p = CHIP_DIR / f"{path}.toml"
    if not p.is_file():
        raise ConfigError(f"chip file {str(path)!r} not found; shipped chips: "
                          f"{[c.stem for c in sorted(CHIP_DIR.glob('*.toml'))]}")
    f = _chip_fields(p, _read_toml(p))
    node = load_node(f.pop("node"), node_folder)
    order = [x.name for x in dataclasses.fields(ChipDescription)]
    taken = [k for k in order if k in node.chip and k not in f]
    timing = ("adc_rate", "adc_step_time", "adc_lsb_time")
    if any(k in f for k in timing):  # the paper's converter timing replaces the node's
        taken = [k for k in taken if k not in timing]
    f.update({k: node.chip[k] for k in taken})
    missing = [x.name for x in dataclasses.fields(ChipDescription)
               if x.default is dataclasses.MISSING and x.default_factory is dataclasses.MISSING
               and x.name not in f and x.name != "node"]
    if not any(k in f for k in timing):
        missing.append("adc_rate")
    if missing:
        raise ConfigError(f"{p}: missing value(s) {missing} (neither the chip file nor node "
                          f"{node.name!r} gives them)")
    if "adc_energy" in f and "adc_energy_per_bit" in f:
        raise ConfigError(f"{p}: [adc] gives both energy and energy_per_bit; expected at most "
                          "one")
    if f["g_min"] >= f["g_max"]:
        raise ConfigError(f"{p}: [array] g_min = {f['g_min']!r} S must be below g_max = "
                          f"{f['g_max']!r} S")
    return ChipDescription(node=node, from_node=tuple(taken), **f)


def shipped_chips() -> dict[str, ChipDescription]:
    """Every chip file shipped in :data:`CHIP_DIR`, by file stem."""
    return {p.stem: load_chip(p) for p in sorted(CHIP_DIR.glob("*.toml"))}


def format_value(v) -> str:
    """A chip or node field's value as the reports print it: booleans in lower case,
    floats in ``%g`` (SI units), enums by their value, anything else by ``str``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(getattr(v, "value", v))


def chip_to_dict(chip: ChipDescription) -> Mapping[str, Any]:
    """Field name -> value, the node as its name (for reports)."""
    d = {f.name: getattr(chip, f.name) for f in dataclasses.fields(chip)}
    d["node"] = chip.node.name
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in d.items()}
