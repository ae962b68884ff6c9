"""Coercion of user values to the package's enums, with one error message for every enum."""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from .errors import ConfigError

__all__ = ["coerce_enum"]

E = TypeVar("E", bound=enum.Enum)


def coerce_enum(cls: type[E], value: Any, name: str) -> E:
    """``value`` as a member of the enum ``cls``.

    Parameters
    ----------
    cls : enum class
        The enum to coerce to (a ``StrEnum`` takes its member values, e.g. ``"bottom"``).
    value : cls member or its value
        A member of ``cls`` (returned as is), a member of another enum with a valid value, or a
        valid value.
    name : str
        The parameter's name, used in the error message.

    Returns
    -------
    cls member

    Raises
    ------
    ConfigError
        When ``value`` is not one of the values of ``cls``; the message names the parameter,
        the bad value and the valid choices.
    """
    if isinstance(value, cls):
        return value
    raw = value.value if isinstance(value, enum.Enum) else value
    try:
        return cls(raw)
    except (ValueError, TypeError):
        valid = ", ".join(repr(m.value) for m in cls)
        raise ConfigError(f"{name}={value!r} is not one of {valid}") from None
