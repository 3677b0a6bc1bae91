"""Readers for the fields of IOU activities: each refuses anything but the exact shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshnode.protocol.amounts import MAX_AMOUNT_UNITS
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.parsing import MAX_SQL_INT, parse_decimal, parse_int


def decimal_units(value: object, decimals: int, field: str) -> int:
    """A non-negative decimal string → minor units with ``decimals`` places."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a decimal string")
    amount = parse_decimal(value, field, max_digits=13, places=decimals)
    units = amount.scaleb(decimals)
    if units < 0 or units > MAX_AMOUNT_UNITS:
        raise ValidationError(f"{field} must be a non-negative amount with {decimals} decimals")
    return int(units)


def text_field(act: Mapping[str, Any], name: str, cap: int = 500, *, empty: bool = False) -> str:
    """A text field of at most ``cap`` characters (empty only if allowed)."""
    value = act.get(name)
    if not isinstance(value, str) or len(value) > cap or (not value and not empty):
        raise ValidationError(f"{name} must be text of at most {cap} characters")
    return value


def ident_field(act: Mapping[str, Any], name: str) -> str:
    """An alphanumeric identifier of at most 64 characters."""
    value = text_field(act, name, 64)
    if not value.isalnum():
        raise ValidationError(f"{name} must be an identifier")
    return value


def positive_units(act: Mapping[str, Any], name: str) -> int:
    """Whole positive minor units written as a digit string."""
    value = act.get(name)
    if not isinstance(value, str):  # minor units travel as strings of ASCII digits
        raise ValidationError(f"{name} must be whole minor units")
    return parse_int(value, name, low=1, high=MAX_AMOUNT_UNITS)


def signed_int(act: Mapping[str, Any], name: str) -> int:
    """An integer written as a string (may be negative)."""
    value = act.get(name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be an integer string")
    return parse_int(value, name, low=-MAX_SQL_INT, high=MAX_SQL_INT)
