"""Coercion of user values to closed choices (enums), with errors that list the valid ones."""

from __future__ import annotations

import enum

from .errors import ConfigError


def coerce_enum(cls: type[enum.Enum], value, name: str):
    """``value`` as a member of ``cls``: a member, or a value of one.

    Raises :class:`~xbarlab.errors.ConfigError` naming ``name``, the value and the valid
    choices otherwise.
    """
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        valid = [m.value for m in cls]
        raise ConfigError(f"{name} must be one of {valid}, got {value!r}") from None
