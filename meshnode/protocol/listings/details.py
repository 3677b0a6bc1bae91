"""Per-category detail fields of a listing (seats of a ride, quantity of produce, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings.model import MAX_LIFETIME, TEXT_FIELD_MAX, UNITS
from meshnode.protocol.parsing import parse_int
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc, normalise_utc, parse_utc
from meshnode.protocol.translatable import Text

# --- per-category detail fields -------------------------------------------------------------

FieldParser = Callable[[object, str, datetime, int], Any]


def _text(value: object, name: str, _now: datetime, _decimals: int) -> str:
    text = clean_text(value) if isinstance(value, str) else ""
    if not text:
        raise ValidationError(Text("%(name)s must be text", name=name), {name: "required text"})
    if len(text) > TEXT_FIELD_MAX:
        raise ValidationError(Text("%(name)s too long", name=name), {
            name: Text("at most %(max)s characters", max=TEXT_FIELD_MAX)})
    return text


def _count(value: object, name: str, _now: datetime, _decimals: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValidationError(Text("%(name)s must be a whole number", name=name),
            {name: "whole number, 1-1000"})
    return value


def _seats(value: object, name: str, now: datetime, decimals: int) -> int:
    seats = _count(value, name, now, decimals)
    if seats > 8:
        raise ValidationError(Text("%(name)s must be 1-8", name=name),
            {name: "between 1 and 8 seats"})
    return seats


def _quantity(value: object, name: str, _now: datetime, _decimals: int) -> str:
    text = value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    if text is None:
        raise ValidationError(Text("%(name)s must be a number", name=name),
            {name: "a positive number, e.g. 2.5"})
    units = parse_amount(text, decimals=3, field=name)
    return format_amount(units, decimals=3).rstrip("0").rstrip(".")


def _price_amount(value: object, name: str, _now: datetime, decimals: int) -> str:
    return format_amount(parse_amount(value, decimals=decimals, field=name), decimals=decimals)


def _future_time(value: object, name: str, now: datetime, _decimals: int) -> str:
    when = parse_utc(value, field=name)
    if when <= now:
        raise ValidationError(Text("%(name)s is in the past", name=name),
            {name: "must be in the future"})
    if when - now > MAX_LIFETIME:
        raise ValidationError(Text("%(name)s is too far ahead", name=name),
            {name: "at most one year ahead"})
    return format_utc(when)


def _any_time(value: object, name: str, _now: datetime, _decimals: int) -> str:
    return normalise_utc(value, field=name)


def _flag(value: object, name: str, _now: datetime, _decimals: int) -> bool:
    if value in (True, "true", "on", "1", 1):
        return True
    if value in (False, "false", "off", "0", 0):
        return False
    raise ValidationError(Text("%(name)s must be true or false", name=name),
        {name: "true or false"})


def _notice_hours(value: object, name: str, _now: datetime, _decimals: int) -> int:
    try:
        return parse_int(value, name, low=0, high=720)
    except ValidationError as exc:
        raise ValidationError(Text("%(name)s must be 0-720 hours", name=name),
            {name: "whole hours, 0-720"}) from exc


def _min_reputation(value: object, name: str, _now: datetime, _decimals: int) -> int:
    return parse_int(value, name, low=0, high=1000)


def _unit(value: object, name: str, _now: datetime, _decimals: int) -> str:
    if value not in UNITS:
        raise ValidationError(Text("%(name)s unknown", name=name),
                              {name: Text("one of %(values)s", values=", ".join(UNITS))})
    return str(value)


@dataclass(frozen=True)
class DetailField:
    """One category-specific field: its parser and whether it is required."""

    parse: FieldParser
    required: bool = False


CATEGORY_FIELDS: dict[str, dict[str, DetailField]] = {
    "lend": {
        "deposit": DetailField(_price_amount),
        "available_from": DetailField(_any_time),
        "available_until": DetailField(_future_time),
        # completed exchanges without absence a borrower needs (issue 18; services/queue)
        "min_reputation": DetailField(_min_reputation),
    },
    "give": {},
    "swap": {"wanted": DetailField(_text)},
    "sell": {"quantity": DetailField(_count)},
    "service": {"skill": DetailField(_text), "hours": DetailField(_quantity)},
    "ride": {
        "from": DetailField(_text, required=True),
        "to": DetailField(_text, required=True),
        "departure": DetailField(_future_time, required=True),
        "seats": DetailField(_seats, required=True),
    },
    "meal": {
        "portions": DetailField(_count, required=True),
        "pickup_time": DetailField(_future_time, required=True),
        "allergens": DetailField(_text),
    },
    "produce": {
        "quantity": DetailField(_quantity, required=True),
        "unit": DetailField(_unit, required=True),
    },
    "group-buy": {
        "target_quantity": DetailField(_quantity, required=True),
        "threshold": DetailField(_quantity, required=True),
        "unit": DetailField(_unit, required=True),
        "deadline": DetailField(_future_time, required=True),
    },
}


# Deal policy, common to every category: accept bookings automatically, and how many hours
# before the agreed time a booking can still be cancelled.
for _spec in CATEGORY_FIELDS.values():
    _spec["auto_accept"] = DetailField(_flag)
    _spec["cancel_notice_hours"] = DetailField(_notice_hours)


def _parse_details(
    category: str, raw: object, now: datetime, decimals: int, errors: dict[str, str]
) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        errors["details"] = "must be an object"
        return {}
    spec = CATEGORY_FIELDS[category]
    details: dict[str, Any] = {}
    for name in raw:
        if name not in spec:
            errors[f"details.{name}"] = f"not a field of category {category!r}"
    for name, detail in spec.items():
        value = raw.get(name)
        if value is None or value == "":
            if detail.required:
                errors[f"details.{name}"] = "required"
            continue
        try:
            details[name] = detail.parse(value, name, now, decimals)
        except ValidationError as exc:
            errors[f"details.{name}"] = next(iter(exc.fields.values()), str(exc))
    _check_cross_fields(category, details, errors)
    return details


def _check_cross_fields(category: str, details: dict[str, Any], errors: dict[str, str]) -> None:
    keys = details.keys()
    if (
        category == "group-buy"
        and {"threshold", "target_quantity"} <= keys
        and Decimal(details["threshold"]) > Decimal(details["target_quantity"])
    ):
        errors["details.threshold"] = "cannot exceed the target quantity"
    if (
        category == "lend"
        and {"available_from", "available_until"} <= keys
        and details["available_from"] >= details["available_until"]
    ):
        errors["details.available_until"] = "must be after available_from"
