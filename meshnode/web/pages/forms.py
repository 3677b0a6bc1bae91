"""The listing form: which fields each category shows, and form <-> listing input conversion.

Field names are the dotted paths ``protocol.listings.parse_listing_input`` reports errors on
(``title``, ``price.amount``, ``details.departure``...), so every error lands next to its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from multidict import MultiDictProxy

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import CATEGORIES, PRICE_PERIODS, UNITS
from meshnode.protocol.parsing import parse_decimal, parse_int
from meshnode.protocol.timefmt import parse_utc
from meshnode.web.i18n import N_


@dataclass(frozen=True)
class FormField:
    """One category-specific input: its name under ``details``, input kind and label."""

    name: str
    kind: str  # text, int, decimal, amount, datetime, unit
    label: str
    required: bool = False


CATEGORY_LABELS = {
    "lend": N_("Lend"), "give": N_("Give away"), "swap": N_("Swap"), "sell": N_("Sell"),
    "service": N_("Service"), "ride": N_("Ride"), "meal": N_("Meal"), "produce": N_("Produce"),
    "group-buy": N_("Group buy"),
}
KIND_LABELS = {"offer": N_("Offer"), "request": N_("Request")}
STATUS_LABELS = {"active": N_("Active"), "reserved": N_("Reserved"), "done": N_("Done"),
                 "withdrawn": N_("Withdrawn")}
PRICE_LABELS = {"free": N_("Free"), "amount": N_("Price"), "swap": N_("Swap")}
PERIOD_LABELS = {"hour": N_("per hour"), "day": N_("per day"), "week": N_("per week"),
                 "month": N_("per month")}
UNIT_LABELS = {"kg": N_("kg"), "g": N_("g"), "l": N_("litres"), "unit": N_("units"),
               "bunch": N_("bunches"), "box": N_("boxes"), "portion": N_("portions"),
               "seat": N_("seats"), "hour": N_("hours")}

DETAIL_FIELDS: dict[str, tuple[FormField, ...]] = {
    "lend": (FormField("deposit", "amount", N_("Deposit")),
             FormField("available_from", "datetime", N_("Available from")),
             FormField("available_until", "datetime", N_("Available until")),
             FormField("min_reputation", "int",
                       N_("Completed exchanges required to borrow it"))),
    "give": (),
    "swap": (FormField("wanted", "text", N_("Wanted in exchange")),),
    "sell": (FormField("quantity", "int", N_("Quantity")),),
    "service": (FormField("skill", "text", N_("Skill")),
                FormField("hours", "decimal", N_("Hours"))),
    "ride": (FormField("from", "text", N_("From"), True),
             FormField("to", "text", N_("To"), True),
             FormField("departure", "datetime", N_("Departure"), True),
             FormField("seats", "int", N_("Seats"), True)),
    "meal": (FormField("portions", "int", N_("Portions"), True),
             FormField("pickup_time", "datetime", N_("Pick-up time"), True),
             FormField("allergens", "text", N_("Allergens"))),
    "produce": (FormField("quantity", "decimal", N_("Quantity"), True),
                FormField("unit", "unit", N_("Unit"), True)),
    "group-buy": (FormField("target_quantity", "decimal", N_("Target quantity"), True),
                  FormField("threshold", "decimal", N_("Minimum to go ahead"), True),
                  FormField("unit", "unit", N_("Unit"), True),
                  FormField("deadline", "datetime", N_("Deadline"), True)),
}
assert set(DETAIL_FIELDS) == set(CATEGORIES)

COMMON_FIELDS = ("kind", "title", "description", "price.mode", "price.amount", "price.period",
                 "location.name", "location.lat", "location.lon", "expires_at")
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"


def _local_datetime(text: str, tz: ZoneInfo) -> str:
    """``2026-12-05T09:00`` typed in the community's timezone -> ISO 8601 with offset."""
    try:
        naive = datetime.strptime(text, LOCAL_MINUTE)
    except ValueError:
        return text  # left as typed: the validator reports it next to the field
    return naive.replace(tzinfo=tz).isoformat()


def _convert(kind: str, text: str, tz: ZoneInfo) -> Any:
    if kind == "int":
        return _whole_number(text)
    if kind in ("decimal", "amount"):
        return text.replace(",", ".").replace(" ", "")
    if kind == "datetime":
        return _local_datetime(text, tz)
    return text


def _whole_number(text: str) -> int | str:
    """A count typed in a form; text that is not one is left for the validator to name."""
    try:
        return parse_int(text, "count", low=0, high=999_999)
    except ValidationError:
        return text


def _coordinate(text: str) -> float | str:
    try:
        return float(parse_decimal(text, "coordinate", max_digits=3, places=8, comma=True))
    except ValidationError:
        return text


def values_from_form(form: MultiDictProxy[Any], category: str) -> dict[str, str]:
    """The raw text of every field of the form (what is shown back when input is invalid)."""
    names = list(COMMON_FIELDS) + [f"details.{f.name}" for f in DETAIL_FIELDS[category]]
    values = {}
    for name in names:
        raw = form.get(name, "")
        values[name] = raw.strip()[:6000] if isinstance(raw, str) else ""
    return values


def input_from_values(values: dict[str, str], category: str, tz: ZoneInfo) -> dict[str, Any]:
    """Turn form text into the listing input ``parse_listing_input`` validates."""
    data: dict[str, Any] = {
        "kind": values["kind"], "category": category, "title": values["title"],
        "description": values["description"],
    }
    mode = values["price.mode"] or "free"
    price: dict[str, Any] = {"mode": mode}
    if mode == "amount":
        price["amount"] = _convert("amount", values["price.amount"], tz)
        if values["price.period"]:
            price["period"] = values["price.period"]
    data["price"] = price
    location: dict[str, Any] = {"name": values["location.name"]}
    if values["location.lat"] or values["location.lon"]:
        location["lat"] = _coordinate(values["location.lat"])
        location["lon"] = _coordinate(values["location.lon"])
    data["location"] = location
    details = {}
    for spec in DETAIL_FIELDS[category]:
        text = values[f"details.{spec.name}"]
        if text:
            details[spec.name] = _convert(spec.kind, text, tz)
    data["details"] = details
    if values["expires_at"]:
        try:
            day = datetime.strptime(values["expires_at"], "%Y-%m-%d").date()
            data["expires_at"] = datetime.combine(day, time(23, 59), tz).isoformat()
        except ValueError:
            data["expires_at"] = values["expires_at"]
    return data


def _to_local(iso: str, tz: ZoneInfo, fmt: str) -> str:
    return parse_utc(iso, field="time").astimezone(tz).strftime(fmt)


def values_from_input(data: dict[str, Any], tz: ZoneInfo) -> dict[str, str]:
    """Form text for an existing listing (``draft_to_input`` output), to prefill the edit form."""
    price, location = data["price"], data["location"]
    values = {
        "kind": data["kind"], "title": data["title"], "description": data["description"],
        "price.mode": price["mode"], "price.amount": price.get("amount") or "",
        "price.period": price.get("period") or "", "location.name": location.get("name", ""),
        "location.lat": str(location.get("lat") or ""),
        "location.lon": str(location.get("lon") or ""),
        "expires_at": _to_local(data["expires_at"], tz, "%Y-%m-%d"),
    }
    for spec in DETAIL_FIELDS[data["category"]]:
        value = data["details"].get(spec.name)
        if value is None:
            text = ""
        elif spec.kind == "datetime":
            text = _to_local(str(value), tz, LOCAL_MINUTE)
        else:
            text = str(value)
        values[f"details.{spec.name}"] = text
    return values


def empty_values(category: str) -> dict[str, str]:
    """A blank form for a new listing of ``category``."""
    values = dict.fromkeys(COMMON_FIELDS, "")
    values.update({"kind": "offer", "price.mode": "free"})
    values.update({f"details.{f.name}": "" for f in DETAIL_FIELDS[category]})
    return values


def form_choices() -> dict[str, Any]:
    """Option lists the form templates need."""
    return {
        "categories": CATEGORIES, "category_labels": CATEGORY_LABELS,
        "kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS,
        "price_labels": PRICE_LABELS, "periods": PRICE_PERIODS, "period_labels": PERIOD_LABELS,
        "units": UNITS, "unit_labels": UNIT_LABELS, "detail_fields": DETAIL_FIELDS,
    }
