"""The one parsing layer for numbers, dates and cursors coming from outside.

Every route parameter, form field and JSON body field that is a number, a date or a
cursor goes through these functions. They accept ASCII digits only (``str.isdigit`` and
``int`` accept ``²`` or ``١٢``), check the length *before* converting (CPython refuses
integers over 4,300 digits with a ValueError), check ranges (SQLite INTEGER is 64-bit;
``datetime`` stops at year 9999), and accept finite decimals only. Every refusal is a
:class:`ValidationError` naming the field, which the web layer answers with 422 (JSON for
the API, a translated page for browsers); no ``ValueError`` or ``OverflowError`` escapes.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import Text

__all__ = [
    "MAX_SQL_INT",
    "parse_cursor",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "parse_int",
    "parse_optional_int",
    "reject_lone_surrogates",
]

# SQLite stores INTEGER in 8 bytes (https://sqlite.org/datatype3.html): a larger Python int
# raises OverflowError when bound as a parameter.
MAX_SQL_INT = 2**63 - 1

_INT_RE = re.compile(r"-?[0-9]+", re.ASCII)
_DATE_RE = re.compile(r"([0-9]{4})-[0-9]{2}-[0-9]{2}", re.ASCII)
# RFC 3339 §5.6 date-time, also with a space instead of T and without seconds (forms send
# ``datetime-local`` values as ``2026-12-05T09:30``).
_DATETIME_RE = re.compile(
    r"([0-9]{4})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)


def _refuse(message: Text, field: str, hint: str | Text) -> ValidationError:
    return ValidationError(message, {field: hint})


def parse_int(value: object, field: str, *, low: int, high: int) -> int:
    """An integer in ``[low, high]`` from a JSON int or a string of ASCII digits.

    Booleans and floats are refused (``true`` is not 1, ``2.0`` is not a count).
    """
    hint = Text("whole number, %(low)s-%(high)s", low=low, high=high)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _refuse(Text("%(field)s must be a whole number", field=field), field, hint)
    if isinstance(value, str):
        text = value.strip()
        longest = max(len(str(low)), len(str(high)))
        if len(text) > longest or _INT_RE.fullmatch(text) is None:
            raise _refuse(Text("%(field)s must be a whole number", field=field), field, hint)
        value = int(text)
    if not low <= value <= high:
        raise _refuse(Text("%(field)s is out of range", field=field), field, hint)
    return value


def parse_optional_int(value: object, field: str, *, low: int, high: int,
                       default: int) -> int:
    """:func:`parse_int`, with ``default`` for a missing or empty value."""
    if value is None or value == "":
        return default
    return parse_int(value, field, low=low, high=high)


def parse_decimal(value: object, field: str, *, max_digits: int = 12, places: int = 3,
                  low: Decimal | None = None, high: Decimal | None = None,
                  comma: bool = False) -> Decimal:
    """A finite decimal with at most ``max_digits`` integer digits and ``places`` decimals.

    Accepts a JSON number or a string of ASCII digits with an optional ``.`` (or ``,``
    when ``comma`` is set, as French forms write it); no exponent, NaN or Infinity.
    """
    hint = Text("a number such as 2.5, at most %(places)s decimal places", places=places)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(Text("%(field)s must be a number", field=field), field, hint)
    text = repr(value) if isinstance(value, float) else str(value).strip()
    if comma:
        text = text.replace(",", ".", 1)
    pattern = rf"-?[0-9]{{1,{max_digits}}}(?:\.[0-9]{{1,{places}}})?" if places else \
        rf"-?[0-9]{{1,{max_digits}}}"
    # A float such as 4.0 reads "4.0": allow its trailing zeros beyond ``places``.
    if isinstance(value, float) and value.is_integer() and abs(value) < 10**max_digits:
        text = str(int(value))
    if len(text) > max_digits + places + 2 or not re.fullmatch(pattern, text, re.ASCII):
        raise _refuse(Text("%(field)s must be a number", field=field), field, hint)
    number = Decimal(text)
    if (low is not None and number < low) or (high is not None and number > high):
        raise _refuse(Text("%(field)s is out of range", field=field), field, hint)
    return number


def _year_in(year: str, field: str, earliest: int, latest: int, hint: Text) -> None:
    if not earliest <= int(year) <= latest:
        raise _refuse(Text("%(field)s must be between the years %(earliest)s and %(latest)s",
                           field=field, earliest=earliest, latest=latest), field, hint)


def parse_date(value: object, field: str, *, earliest: date, latest: date) -> date:
    """A calendar date ``YYYY-MM-DD`` between ``earliest`` and ``latest`` (inclusive)."""
    hint = Text("a date such as %(example)s", example=earliest.isoformat())
    match = _DATE_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _refuse(Text("%(field)s must be a date (YYYY-MM-DD)", field=field), field, hint)
    _year_in(match.group(1), field, earliest.year, latest.year, hint)
    try:
        parsed = date.fromisoformat(match.group(0))
    except ValueError as exc:  # 2026-02-30: the shape is right, the day does not exist
        raise _refuse(Text("%(field)s is not a valid date", field=field), field, hint) from exc
    if not earliest <= parsed <= latest:
        raise _refuse(Text("%(field)s is out of range", field=field), field, hint)
    return parsed


def parse_datetime(value: object, field: str, *, earliest: datetime, latest: datetime,
                   naive_tz: object = None) -> datetime:
    """An RFC 3339 date-time between ``earliest`` and ``latest`` (aware, UTC bounds).

    Without an offset the value is refused, unless ``naive_tz`` (a ``tzinfo``) says which
    zone a form's local time is in. The year is checked before any conversion, so years
    0001 and 9999 with an offset never overflow.
    """
    hint = Text("use e.g. 2026-12-05T09:30:00+01:00")
    match = _DATETIME_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise _refuse(Text("%(field)s must be an ISO 8601 date-time", field=field), field,
                      hint)
    _year_in(match.group(1), field, earliest.year, latest.year, hint)
    try:
        parsed = datetime.fromisoformat(match.group(0).upper().replace(" ", "T"))
    except ValueError as exc:
        raise _refuse(Text("%(field)s is not a valid date-time", field=field), field,
                      hint) from exc
    if parsed.tzinfo is None:
        if naive_tz is None:
            raise _refuse(Text("%(field)s needs a timezone", field=field), field,
                          Text("include a timezone, e.g. +01:00 or Z"))
        parsed = parsed.replace(tzinfo=naive_tz)  # type: ignore[arg-type]
    if not earliest <= parsed <= latest:
        raise _refuse(Text("%(field)s is out of range", field=field), field, hint)
    return parsed.astimezone(UTC)


def parse_cursor(value: object, field: str = "cursor") -> int:
    """A paging cursor: the decimal position a previous page handed out (``next_cursor``)."""
    if not isinstance(value, str) or len(value) > 19 or not value.isascii() \
            or not value.isdigit():
        raise _refuse(Text("invalid %(field)s", field=field), field,
                      Text("use next_cursor as given"))
    number = int(value)
    if number > MAX_SQL_INT:
        raise _refuse(Text("invalid %(field)s", field=field), field,
                      Text("use next_cursor as given"))
    return number


def reject_lone_surrogates(document: object) -> None:
    """Refuse (422 on the field) a JSON document holding a string with a lone surrogate.

    ``json.loads`` turns ``"\\ud800"`` into a ``str`` that cannot be encoded as UTF-8
    (RFC 8259 §8.2: such strings are not interoperable); left in, it fails later, far from
    the input, when the document is signed or stored.
    """
    stack: list[tuple[str, object]] = [("", document)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                raise _refuse(Text("%(field)s is not valid Unicode", field=path or "body"),
                              path or "body", Text("text without lone surrogates"))
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{path}.{key}" if path else str(key)
                if not _encodable(str(key)):
                    raise _refuse(Text("a field name is not valid Unicode"), path or "body",
                                  Text("text without lone surrogates"))
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
