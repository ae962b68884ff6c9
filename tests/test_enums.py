"""xbarlab.enums.coerce_enum: members, values and the error message."""

import enum

import pytest
from xbarlab.enums import coerce_enum
from xbarlab.errors import ConfigError


class _Side(enum.StrEnum):
    TOP = "top"
    BOTTOM = "bottom"


class _Other(enum.Enum):
    TOP = "top"


def test_coerce_enum_members_and_values():
    """A member is returned as is; its value, or a member of another enum with a valid value,
    gives the member."""
    assert coerce_enum(_Side, _Side.TOP, "side") is _Side.TOP
    assert coerce_enum(_Side, "bottom", "side") is _Side.BOTTOM
    assert coerce_enum(_Side, _Other.TOP, "side") is _Side.TOP


def test_coerce_enum_error_names_parameter_value_and_choices():
    """A bad value raises ConfigError naming the parameter, the value and every valid choice."""
    with pytest.raises(ConfigError, match=r"side='middle' is not one of 'top', 'bottom'"):
        coerce_enum(_Side, "middle", "side")
    with pytest.raises(ConfigError, match="side"):
        coerce_enum(_Side, ["top"], "side")
