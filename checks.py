"""Checks of option and config values: type, finiteness, integer-ness and range.

One rule set for the command line and the run config: :func:`check_number` checks a
value already parsed (a config field, a converted option), :func:`parse_number` reads
one from text first, and :func:`number_type` wraps it as an ``argparse`` ``type=`` so a
bad option value is refused by the parser (exit status 2, one line). Each refusal is a
:class:`~xbarlab.errors.ConfigError` naming the value's owner (``what``) and the range.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from .errors import ConfigError

__all__ = ["check_number", "parse_number", "number_type", "range_text"]


def range_text(lo: float | None, hi: float | None, *, lo_open: bool = False) -> str:
    """The allowed range in words, e.g. ``">= 0"``, ``"> 0"``, ``"in [2, 4096]"``."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f"<= {hi:g}"
    return "finite"


def check_number(value, *, what: str, integer: bool = False, lo: float | None = None,
                 hi: float | None = None, lo_open: bool = False) -> int | float:
    """``value`` if it is a finite number (an integer with ``integer``) within the bounds.

    Parameters
    ----------
    value : int or float
        The value to check (bool is refused: it is not a number).
    what : str
        Who owns the value, for the message (an option such as ``--seed`` or a config
        field such as ``[noise] grid``).
    integer : bool
        Require an integer (``int``; a float is refused).
    lo, hi : float, optional
        Inclusive bounds (``lo`` exclusive with ``lo_open``).

    Raises
    ------
    ConfigError
        Naming ``what``, the value and the allowed range.
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            integer and not isinstance(value, numbers.Integral)):
        raise ConfigError(f"{what} must be {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{what} must be finite, got {value!r}")
    if (lo is not None and (value <= lo if lo_open else value < lo)) or (
            hi is not None and value > hi):
        raise ConfigError(f"{what} must be {range_text(lo, hi, lo_open=lo_open)}, "
                          f"got {value!r}")
    return int(value) if integer else float(value)


def parse_number(text: str, *, what: str, integer: bool = False, lo: float | None = None,
                 hi: float | None = None, lo_open: bool = False) -> int | float:
    """Read a number from ``text`` and :func:`check_number` it.

    With ``integer``, a whole number written in float notation (``1e6``) is accepted;
    ``1.5``, ``inf`` and ``nan`` are refused.
    """
    s = str(text).strip()
    if integer:
        try:
            value: int | float = int(s)
        except ValueError:
            try:
                f = float(s)
            except ValueError:
                raise ConfigError(f"{what} must be an integer, got {text!r}") from None
            if not (math.isfinite(f) and f.is_integer()):
                raise ConfigError(f"{what} must be a finite integer, got {text!r}") from None
            value = int(f)
    else:
        try:
            value = float(s)
        except ValueError:
            raise ConfigError(f"{what} must be a number, got {text!r}") from None
    return check_number(value, what=what, integer=integer, lo=lo, hi=hi, lo_open=lo_open)


def number_type(*, integer: bool = False, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False) -> Callable[[str], int | float]:
    """An ``argparse`` ``type=`` that reads one number with :func:`parse_number`.

    A refusal becomes ``argparse.ArgumentTypeError``, which the parser prints as one
    line naming the option (exit status 2).
    """

    def convert(text: str) -> int | float:
        try:
            return parse_number(text, what="value", integer=integer, lo=lo, hi=hi,
                                lo_open=lo_open)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value ")) from None

    convert.__name__ = "integer" if integer else "number"
    return convert
