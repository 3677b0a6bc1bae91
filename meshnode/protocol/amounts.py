"""Exact amounts of the community currency: parsed from decimal strings, never floats.

Amounts travel as decimal strings (``"12.50"``) and are stored as integers of the smallest
unit (cents, or whole hours for a time bank with 0 decimals).
"""

from __future__ import annotations

import re
from decimal import Decimal

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import Text

# Digits, optional fraction; no sign, exponent, spaces, NaN or Infinity.
AMOUNT_RE = re.compile(r"^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,6}))?$")
MAX_AMOUNT_UNITS = 10**12


def parse_amount(text: object, *, decimals: int, field: str = "amount") -> int:
    """Parse a positive decimal string into integer minor units, or raise ValidationError."""
    if not isinstance(text, str):
        raise ValidationError(
            Text("%(field)s must be a decimal string such as \"12.50\"", field=field),
                {field: "must be a string"}
        )
    match = AMOUNT_RE.fullmatch(text)
    if match is None:
        raise ValidationError(
            Text("%(field)s %(text)s is not a plain decimal amount", field=field, text=repr(text)),
            {field: "use digits with an optional decimal point, e.g. 12.50"},
        )
    fraction = match.group(2) or ""
    if len(fraction) > decimals:
        raise ValidationError(
            Text("%(field)s has more than %(decimals)s decimal places", field=field,
                 decimals=decimals),
            {field: Text("at most %(decimals)s decimal places", decimals=decimals)},
        )
    whole = int(match.group(1))
    units: int = whole * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    if units <= 0:
        raise ValidationError(Text("%(field)s must be greater than zero", field=field),
            {field: "must be > 0"})
    if units > MAX_AMOUNT_UNITS:
        raise ValidationError(Text("%(field)s is too large", field=field),
            {field: "amount too large"})
    return units


def format_amount(units: int, *, decimals: int) -> str:
    """Render integer minor units as a decimal string with exactly ``decimals`` places."""
    value = Decimal(units).scaleb(-decimals)
    return f"{value:.{decimals}f}"
