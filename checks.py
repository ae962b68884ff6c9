"""Checks of option and config values: type, finiteness, integer-ness and range.

One rule set for the command line and the run config: :func:`check_number` checks a
value already parsed (a config field, a converted option), :func:`parse_number` reads
one from text first, and :func:`number_type` wraps it as an ``argparse`` ``type=`` so a
bad option value is refused by the parser (exit status 2, one line). Each refusal is a
:class:`~xbarlab.errors.ConfigError` naming the value's owner (``what``) and the range.
:func:`check_memory` refuses, before any work, a job whose memory estimate exceeds half the
available memory unless told to go on; :func:`check_rng` refuses a random generator that is
not a ``numpy.random.Generator``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np

from .errors import ConfigError

__all__ = ["check_number", "check_values", "check_matrix_shape", "check_rng", "parse_number",
           "number_type", "range_text", "available_memory", "check_memory", "format_bytes",
           "MAX_THREADS"]

#: The most compute threads a run may ask for (``--threads``, ``threads``); far more than
#: any machine's cores, and far below the counts that crash torch's thread pool.
MAX_THREADS = 1024


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


def check_values(values, *, what: str, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> np.ndarray:
    """``values`` as a float64 array if every entry is finite and within the bounds.

    Parameters
    ----------
    values : array_like
        The values to check (any shape), in the caller's units.
    what : str
        Who owns them, for the message (an argument such as ``g1`` [S]).
    lo, hi : float, optional
        Inclusive bounds (``lo`` exclusive with ``lo_open``).

    Raises
    ------
    ConfigError
        Naming ``what``, the first offending entry, its index and the allowed range.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be numbers, got {type(values).__name__}") from exc
    bad = ~np.isfinite(arr)
    if lo is not None:
        bad |= (arr <= lo) if lo_open else (arr < lo)
    if hi is not None:
        bad |= arr > hi
    if np.any(bad):
        i = np.unravel_index(int(np.argmax(bad)), arr.shape) if arr.ndim else ()
        bounds = ("" if lo is None and hi is None
                  else f" and {range_text(lo, hi, lo_open=lo_open)}")
        raise ConfigError(f"{what} must be finite{bounds}, got {float(arr[i])!r} at index "
                          f"{tuple(int(k) for k in i)}")
    return arr


def check_matrix_shape(shape, *, what: str = "shape") -> tuple[int, int]:
    """``shape`` as ``(n_out, n_in)``: two integers >= 1 [1].

    Parameters
    ----------
    shape : sequence of int
        The shape of a weight matrix, outputs (rows) first.
    what : str
        Who owns the value, for the message.

    Raises
    ------
    ConfigError
        Naming ``what`` and the value when it is not two integers >= 1.
    """
    import numbers

    try:
        items = tuple(shape)
    except TypeError:
        items = ()
    if len(items) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                  for s in items):
        raise ConfigError(f"{what} must be (n_out, n_in) integers, got {shape!r}")
    if min(items) < 1:
        raise ConfigError(f"{what} must be (n_out, n_in) with both >= 1, got {shape!r}")
    return int(items[0]), int(items[1])


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


def check_rng(rng, *, what: str = "rng", optional: bool = False):
    """``rng`` if it is a ``numpy.random.Generator`` (or None, with ``optional``).

    Parameters
    ----------
    rng : numpy.random.Generator or None
        The generator to check (a legacy ``RandomState`` or a seed is refused: randomness is
        passed in as a Generator).
    what : str
        Who owns the generator, for the message (an argument name such as ``rng``).
    optional : bool
        Accept None (no randomness drawn).

    Raises
    ------
    ConfigError
        Naming ``what``, the type given and what was expected.
    """
    import numpy as np

    if isinstance(rng, np.random.Generator) or (optional and rng is None):
        return rng
    raise ConfigError(f"{what} must be a numpy.random.Generator{' or None' if optional else ''}"
                      f", got {type(rng).__name__}")


def available_memory() -> int | None:
    """Bytes of memory available to a new job (``MemAvailable`` of /proc/meminfo, else the
    free physical pages), or None where neither is known."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``n`` bytes in words, e.g. ``"3.2 GB"`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def check_memory(estimate: float, *, what: str, go_on: str, fraction: float = 0.5,
                 available: int | None = None) -> None:
    """Refuse a job whose memory ``estimate`` [B] exceeds ``fraction`` of the available
    memory (:func:`available_memory` unless ``available`` is given; unknown: no check).

    Parameters
    ----------
    estimate : float
        Bytes the job is expected to hold at once.
    what : str
        The job and the values that size it, for the message.
    go_on : str
        How the caller says "go on anyway" (``--yes``), for the message.

    Raises
    ------
    ConfigError
        With the estimate and the limit.
    """
    avail = available_memory() if available is None else available
    if avail is None or estimate <= fraction * avail:
        return
    raise ConfigError(f"{what} needs about {format_bytes(estimate)} of memory, more than "
                      f"{fraction:.0%} of the {format_bytes(avail)} available; reduce it or "
                      f"pass {go_on} to go on")
