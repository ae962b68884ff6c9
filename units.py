"""Units and the small parsers every command shares.

Inside xbarlab every quantity is SI: conductance in S, resistance in Ohm, time in
s, voltage in V, temperature in K. Other units appear only at the edges (reading
a user's table, printing a report); this module converts them.

- :func:`to_si` converts an array from a named unit to SI for one quantity kind.
  A resistance unit given for a conductance converts to conductance (G = 1/R).
- :func:`parse_duration` is the one duration parser (``"1y"``, ``"3600"``, ``"1h"``,
  ``"10 ms"``); a year is 365.25 d.
- :func:`parse_list` / :func:`parse_durations` / :func:`parse_mapping` read the
  comma-separated lists that every command accepts (``--times 0,1h,1y``,
  ``--columns g=3,time=1``).
"""

from __future__ import annotations

import enum
import math
import re

import numpy as np

from .errors import ConfigError

__all__ = [
    "QuantityKind",
    "CONDUCTANCE_UNITS",
    "RESISTANCE_UNITS",
    "TIME_UNITS",
    "VOLTAGE_UNITS",
    "TEMPERATURE_UNITS",
    "SECONDS_PER_YEAR",
    "units_for",
    "check_unit",
    "to_si",
    "unit_in_name",
    "parse_duration",
    "parse_durations",
    "parse_conductance",
    "parse_list",
    "parse_mapping",
    "format_duration",
]


class QuantityKind(enum.StrEnum):
    """The kinds of physical quantity a column can hold (closed choice)."""

    CONDUCTANCE = "conductance"
    TIME = "time"
    VOLTAGE = "voltage"
    TEMPERATURE = "temperature"
    DIMENSIONLESS = "dimensionless"


#: Conductance units -> factor to S.
CONDUCTANCE_UNITS: dict[str, float] = {
    "S": 1.0, "mS": 1e-3, "uS": 1e-6, "µS": 1e-6, "μS": 1e-6, "nS": 1e-9, "pS": 1e-12,
}
#: Resistance units -> factor to Ohm (a column in these units converts to conductance).
RESISTANCE_UNITS: dict[str, float] = {
    "Ohm": 1.0, "ohm": 1.0, "Ω": 1.0,
    "kOhm": 1e3, "kohm": 1e3, "kΩ": 1e3,
    "MOhm": 1e6, "Mohm": 1e6, "MΩ": 1e6,
    "GOhm": 1e9, "Gohm": 1e9, "GΩ": 1e9,
}
#: Seconds in a year: 365.25 days (Julian year).
SECONDS_PER_YEAR = 365.25 * 86400.0
#: Time units -> factor to s.
TIME_UNITS: dict[str, float] = {
    "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9,
    "min": 60.0, "h": 3600.0, "d": 86400.0, "y": SECONDS_PER_YEAR,
}
#: Voltage units -> factor to V.
VOLTAGE_UNITS: dict[str, float] = {"V": 1.0, "mV": 1e-3}
#: Temperature units (K is kept, C is shifted by 273.15 K).
TEMPERATURE_UNITS: tuple[str, ...] = ("K", "C", "°C")
_DIMENSIONLESS_UNITS: tuple[str, ...] = ("1", "")

_ZERO_CELSIUS_K = 273.15


def units_for(quantity: QuantityKind | str) -> list[str]:
    """Unit names accepted for ``quantity`` (canonical spellings first)."""
    q = QuantityKind(quantity)
    if q is QuantityKind.CONDUCTANCE:
        return list(CONDUCTANCE_UNITS) + list(RESISTANCE_UNITS)
    if q is QuantityKind.TIME:
        return list(TIME_UNITS)
    if q is QuantityKind.VOLTAGE:
        return list(VOLTAGE_UNITS)
    if q is QuantityKind.TEMPERATURE:
        return list(TEMPERATURE_UNITS)
    return ["1"]


def check_unit(unit: str, quantity: QuantityKind | str, *, what: str = "value") -> str:
    """Return ``unit`` if valid for ``quantity``, else raise ConfigError listing valid ones."""
    q = QuantityKind(quantity)
    if q is QuantityKind.DIMENSIONLESS:
        if unit in _DIMENSIONLESS_UNITS:
            return "1"
    elif unit in units_for(q):
        return unit
    raise ConfigError(
        f"unknown unit {unit!r} for {what} ({q.value}); valid units: "
        f"{', '.join(_canonical(q))}"
    )


def _canonical(q: QuantityKind) -> list[str]:
    return {
        QuantityKind.CONDUCTANCE: ["S", "mS", "uS", "nS", "pS", "Ohm", "kOhm", "MOhm", "GOhm"],
        QuantityKind.TIME: ["s", "ms", "us", "ns", "min", "h", "d", "y"],
        QuantityKind.VOLTAGE: ["V", "mV"],
        QuantityKind.TEMPERATURE: ["K", "C"],
        QuantityKind.DIMENSIONLESS: ["1"],
    }[q]


def is_resistance_unit(unit: str) -> bool:
    """True for Ohm, kOhm, MOhm, GOhm (and their spellings)."""
    return unit in RESISTANCE_UNITS


def to_si(values, unit: str, quantity: QuantityKind | str, *, what: str = "value",
          copy: bool = True) -> np.ndarray:
    """Convert ``values`` in ``unit`` to SI for ``quantity``; return a float64 array.

    Conductance: S/mS/uS/nS/pS scale to S; Ohm/kOhm/MOhm/GOhm give G = 1/R in S
    (a zero or negative resistance raises ConfigError). Time: to s (y = 365.25 d).
    Temperature: K kept, C + 273.15. Voltage: to V. With ``copy=False``
    a float64 array is converted in place (readers do this to save memory on
    large tables); the default leaves ``values`` untouched.
    """
    q = QuantityKind(quantity)
    unit = check_unit(unit, q, what=what)
    arr = np.array(values, dtype=np.float64, copy=True) if copy else np.asarray(
        values, dtype=np.float64)
    if not arr.flags.writeable:
        arr = arr.copy()
    if q is QuantityKind.CONDUCTANCE:
        if unit in RESISTANCE_UNITS:
            with np.errstate(invalid="ignore"):
                bad = ~(arr > 0)
            if np.any(bad & ~np.isnan(arr)):
                i = int(np.flatnonzero(bad & ~np.isnan(arr))[0])
                raise ConfigError(
                    f"{what}: resistance must be > 0 {unit} to convert to conductance, "
                    f"found {arr.flat[i]!r} {unit} at index {i}"
                )
            _scale(arr, RESISTANCE_UNITS[unit])
            np.reciprocal(arr, out=arr)
        else:
            _scale(arr, CONDUCTANCE_UNITS[unit])
    elif q is QuantityKind.TIME:
        _scale(arr, TIME_UNITS[unit])
    elif q is QuantityKind.VOLTAGE:
        _scale(arr, VOLTAGE_UNITS[unit])
    elif q is QuantityKind.TEMPERATURE:
        if unit in ("C", "°C"):
            arr += _ZERO_CELSIUS_K
    return arr


def _scale(arr: np.ndarray, factor: float) -> None:
    """``arr *= factor`` in place; sub-units divide by the exact power of ten instead, so
    that 100 uS becomes exactly the float 1e-4 (100 * 1e-6 would not)."""
    if factor == 1.0:
        return
    inverse = round(1.0 / factor)
    if factor < 1.0 and inverse * factor == 1.0:
        arr /= float(inverse)
    else:
        arr *= factor


# A unit written at the end of a column name: "g_uS", "Time (s)", "G [uS]", "Target_100uS".
_NAME_UNIT_RE = re.compile(r"(?:[\s_(\[]|(?<=\d))([A-Za-zµμΩ°]+)[)\]]?\s*$")


def unit_in_name(name: str, quantity: QuantityKind | str) -> str | None:
    """The unit a column name ends with, if it is a unit of ``quantity`` (else None).

    ``unit_in_name("Measured_Conductance_uS", "conductance") == "uS"``;
    ``unit_in_name("Target_100uS", "conductance") == "uS"``; a name with no such
    suffix gives None. Used to catch a forgotten ``--units``.
    """
    m = _NAME_UNIT_RE.search(name)
    if not m:
        return None
    token = m.group(1)
    q = QuantityKind(quantity)
    if q is QuantityKind.DIMENSIONLESS:
        return None
    return token if token in units_for(q) else None


# --------------------------------------------------------------------------- parsers

_DURATION_RE = re.compile(
    r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµμ]*)\s*$"
)


def parse_duration(text: str | float | int, *, what: str = "duration") -> float:
    """Seconds in a duration such as ``"1y"``, ``"3600"``, ``"1h"``, ``"10 ms"``, ``"1e5s"``.

    A bare number is seconds; units are those of :data:`TIME_UNITS` (y = 365.25 d).
    Negative, NaN or infinite durations raise ConfigError.
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a duration like '1h', got {text!r}")
    if isinstance(text, (int, float, np.integer, np.floating)):
        value, unit = float(text), "s"
    else:
        m = _DURATION_RE.match(str(text))
        if not m:
            raise ConfigError(
                f"{what} {text!r} is not a duration; expected a number with an optional unit "
                f"({', '.join(_canonical(QuantityKind.TIME))}), e.g. '3600', '1h', '1y'"
            )
        value, unit = float(m.group(1)), m.group(2) or "s"
        if unit not in TIME_UNITS:
            raise ConfigError(
                f"{what} {text!r} has an unknown time unit {unit!r}; valid units: "
                f"{', '.join(_canonical(QuantityKind.TIME))}"
            )
    seconds = value * TIME_UNITS[unit]
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"{what} must be a finite duration >= 0 s, got {text!r}")
    return seconds


def parse_conductance(text: str | float | int, *, what: str = "conductance") -> float:
    """Siemens in a conductance such as ``"5uS"``, ``"25 µS"``, ``"2.5e-5"`` (a bare number,
    or a number given as such, is in S); resistance units convert (G = 1/R).

    The value is not range-checked here (see :func:`xbarlab.checks.check_number`).
    """
    if isinstance(text, bool):
        raise ConfigError(f"{what} must be a conductance such as '25uS', got {text!r}")
    if isinstance(text, (int, float, np.integer, np.floating)):
        return float(text)
    m = re.fullmatch(r"\s*([-+0-9.eE]+|[-+]?(?:inf|nan))\s*([A-Za-zµμΩ]*)\s*", str(text))
    if not m:
        raise ConfigError(f"{what} must be a conductance such as '25uS' or 2.5e-5 (S), "
                          f"got {text!r}")
    try:
        value = float(m.group(1))
    except ValueError:
        raise ConfigError(f"{what}: {m.group(1)!r} is not a number") from None
    unit = check_unit(m.group(2) or "S", QuantityKind.CONDUCTANCE, what=what)
    return float(to_si(np.array([value]), unit, QuantityKind.CONDUCTANCE, what=what)[0])


def parse_list(text: str | list | tuple, *, what: str = "list") -> list[str]:
    """Split a comma-separated list (``"a, b,c"`` -> ``["a", "b", "c"]``); empty items are errors.

    A list or tuple is returned as a list of stripped strings (so an API caller
    may pass Python lists where the CLI passes text).
    """
    if isinstance(text, (list, tuple)):
        items = [str(x).strip() for x in text]
    else:
        if not isinstance(text, str):
            raise ConfigError(f"{what} must be a comma-separated string, got {text!r}")
        if not text.strip():
            raise ConfigError(f"{what} is empty; expected comma-separated items")
        items = [s.strip() for s in text.split(",")]
    for i, s in enumerate(items):
        if not s:
            raise ConfigError(f"{what} {text!r} has an empty item at position {i + 1}")
    return items


def parse_durations(text: str | list | tuple, *, what: str = "times") -> list[float]:
    """A comma-separated list of durations in s (``"0,1h,1y"`` -> ``[0, 3600, 31557600]``)."""
    return [parse_duration(s, what=what) for s in parse_list(text, what=what)]


def parse_mapping(text, *, what: str = "mapping", allowed_keys=None) -> dict[str, str]:
    """Parse ``"KEY=VALUE,KEY=VALUE"`` into a dict (a Mapping passes through as a dict).

    Keys must be unique and, if ``allowed_keys`` is given, among them (else
    ConfigError listing the valid keys). Values are stripped strings; the same
    value may appear under several keys.
    """
    if text is None:
        return {}
    if hasattr(text, "items"):
        pairs = [(str(k).strip(), v) for k, v in text.items()]
    else:
        pairs = []
        for item in parse_list(text, what=what):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise ConfigError(f"{what}: {item!r} is not KEY=VALUE (in {text!r})")
            pairs.append((key.strip(), value.strip()))
    out: dict[str, str] = {}
    for key, value in pairs:
        if allowed_keys is not None and key not in allowed_keys:
            raise ConfigError(
                f"{what}: unknown key {key!r}; valid keys: {', '.join(allowed_keys)}"
            )
        if key in out:
            raise ConfigError(f"{what}: key {key!r} is given twice")
        out[key] = value
    return out


def format_duration(seconds: float) -> str:
    """A short human reading of a duration in s: ``"10 ms"``, ``"4 s"``, ``"1.16 d"``, ``"1 y"``."""
    s = float(seconds)
    if s == 0:
        return "0 s"
    for unit, factor in (("y", SECONDS_PER_YEAR), ("d", 86400.0), ("h", 3600.0),
                         ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(s) >= factor:
            return f"{s / factor:.3g} {unit}"
    return f"{s:.3g} s"
