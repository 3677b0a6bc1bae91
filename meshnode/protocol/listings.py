"""Listings: input validation and the FEP-0837 ``Proposal`` they become on the wire.

Pure functions: input dicts and an explicit ``now`` in, a ``ListingDraft`` or a JSON-LD
document out, ``ValidationError`` (with per-field messages) on bad input.
FEP-0837: https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.parsing import parse_int
from meshnode.protocol.text import clean_text, html_to_text, render_markdown_subset
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text
from meshnode.protocol.vocab import LISTING_CONTEXT, PUBLIC, category_uri

KINDS = ("offer", "request")
CATEGORIES = ("lend", "give", "swap", "sell", "service", "ride", "meal", "produce", "group-buy")
STATUSES = ("active", "reserved", "done", "withdrawn")
EDITABLE_STATUSES = ("active", "reserved", "done")
PRICE_MODES = ("free", "amount", "swap")
PRICE_PERIODS = ("hour", "day", "week", "month")
UNITS = ("kg", "g", "l", "unit", "bunch", "box", "portion", "seat", "hour")
TITLE_MAX = 120
DESCRIPTION_MAX = 5000
TEXT_FIELD_MAX = 200
DEFAULT_LIFETIME = timedelta(days=60)
MAX_LIFETIME = timedelta(days=366)
TOP_LEVEL_FIELDS = frozenset(
    {"kind", "category", "title", "description", "price", "location", "details", "expires_at",
     "status"}
)


class UnknownCategoryError(ValidationError):
    """The listing names a category meshnode does not know (a 400, not a field error)."""

    code = "unknown_category"


@dataclass(frozen=True)
class Price:
    """What is asked in return: nothing, an amount of the community currency, or a swap."""

    mode: str = "free"
    amount_units: int | None = None
    period: str | None = None


@dataclass(frozen=True)
class Location:
    """Where the thing is: free text plus optional coordinates."""

    name: str = ""
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class ListingDraft:
    """A validated listing, independent of storage and of the wire format."""

    kind: str
    category: str
    title: str
    description: str
    price: Price
    location: Location
    details: dict[str, Any]
    expires_at: datetime
    status: str = "active"


@dataclass(frozen=True)
class ImageRef:
    """An image attached to a listing, as published in the object's ``image`` list."""

    url: str
    media_type: str
    width: int
    height: int
    alt: str = ""


@dataclass(frozen=True)
class CurrencyRef:
    """The community currency a price is expressed in."""

    uri: str
    code: str
    decimals: int


# --- per-category detail fields -------------------------------------------------------------

FieldParser = Callable[[object, str, datetime, int], Any]


def _text(value: object, name: str, _now: datetime, _decimals: int) -> str:
    if not isinstance(value, str) or not clean_text(value):
        raise ValidationError(Text("%(name)s must be text", name=name), {name: "required text"})
    text = clean_text(value)
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
    return format_utc(parse_utc(value, field=name))


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


# --- common fields --------------------------------------------------------------------------


def _parse_title(raw: object, errors: dict[str, str]) -> str:
    title = clean_text(raw) if isinstance(raw, str) else ""
    if not 3 <= len(title) <= TITLE_MAX:
        errors["title"] = f"between 3 and {TITLE_MAX} characters"
    return " ".join(title.split())


def _parse_description(raw: object, errors: dict[str, str]) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        errors["description"] = "must be text"
        return ""
    text = clean_text(raw)
    if len(text) > DESCRIPTION_MAX:
        errors["description"] = f"at most {DESCRIPTION_MAX} characters"
    return text


def _parse_price(raw: object, decimals: int, errors: dict[str, str]) -> Price:
    if raw is None:
        return Price()
    if not isinstance(raw, Mapping) or raw.get("mode") not in PRICE_MODES:
        errors["price"] = "an object with mode free, amount or swap"
        return Price()
    if raw["mode"] != "amount":
        return Price(mode=str(raw["mode"]))
    period = raw.get("period")
    if period is not None and period not in PRICE_PERIODS:
        errors["price.period"] = f"one of {', '.join(PRICE_PERIODS)}"
    try:
        units = parse_amount(raw.get("amount"), decimals=decimals, field="price.amount")
    except ValidationError as exc:
        errors.update(exc.fields)
        return Price()
    return Price(mode="amount", amount_units=units, period=period)


def _coordinate(value: object, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        return None
    return round(number, 6)


def _parse_location(raw: object, errors: dict[str, str]) -> Location:
    if raw is None:
        return Location()
    if not isinstance(raw, Mapping):
        errors["location"] = "an object with name and optional lat/lon"
        return Location()
    name = clean_text(raw["name"]) if isinstance(raw.get("name"), str) else ""
    if len(name) > TEXT_FIELD_MAX:
        errors["location.name"] = f"at most {TEXT_FIELD_MAX} characters"
    lat_raw, lon_raw = raw.get("lat"), raw.get("lon")
    if lat_raw is None and lon_raw is None:
        return Location(name=name)
    lat, lon = _coordinate(lat_raw, -90, 90), _coordinate(lon_raw, -180, 180)
    if lat is None:
        errors["location.lat"] = "latitude between -90 and 90"
    if lon is None:
        errors["location.lon"] = "longitude between -180 and 180"
    return Location(name=name, lat=lat, lon=lon)


def _parse_expiry(raw: object, now: datetime, errors: dict[str, str]) -> datetime:
    if raw is None:
        return now + DEFAULT_LIFETIME
    try:
        when = parse_utc(raw, field="expires_at")
    except ValidationError as exc:
        errors.update(exc.fields)
        return now + DEFAULT_LIFETIME
    if when <= now:
        errors["expires_at"] = "must be in the future"
    elif when - now > MAX_LIFETIME:
        errors["expires_at"] = "at most one year ahead"
    return when


def parse_listing_input(
    data: object, *, now: datetime, decimals: int, allow_status: bool = False
) -> ListingDraft:
    """Validate a listing as sent by the API or a form; every problem is reported per field."""
    if not isinstance(data, Mapping):
        raise ValidationError("the listing must be a JSON object", {"": "expected an object"})
    category = data.get("category")
    if category not in CATEGORIES:
        raise UnknownCategoryError(
            f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}",
            {"category": f"one of {', '.join(CATEGORIES)}"},
        )
    errors: dict[str, str] = {
        f"{name}": "unknown field" for name in data if name not in TOP_LEVEL_FIELDS
    }
    kind = data.get("kind")
    if kind not in KINDS:
        errors["kind"] = "offer or request"
    status = data.get("status", "active")
    if status != "active" and not (allow_status and status in EDITABLE_STATUSES):
        errors["status"] = "one of active, reserved, done" if allow_status else "must be active"
    draft = ListingDraft(
        kind=str(kind),
        category=str(category),
        title=_parse_title(data.get("title"), errors),
        description=_parse_description(data.get("description"), errors),
        price=_parse_price(data.get("price"), decimals, errors),
        location=_parse_location(data.get("location"), errors),
        details=_parse_details(str(category), data.get("details"), now, decimals, errors),
        expires_at=_parse_expiry(data.get("expires_at"), now, errors),
        status=str(status),
    )
    if errors:
        raise ValidationError("the listing has invalid fields", errors)
    return draft


def draft_to_input(draft: ListingDraft, *, decimals: int) -> dict[str, Any]:
    """The API/form representation of a draft (inverse of ``parse_listing_input``)."""
    price: dict[str, Any] = {"mode": draft.price.mode}
    if draft.price.amount_units is not None:
        price["amount"] = format_amount(draft.price.amount_units, decimals=decimals)
        price["period"] = draft.price.period
    location: dict[str, Any] = {"name": draft.location.name}
    if draft.location.lat is not None:
        location.update(lat=draft.location.lat, lon=draft.location.lon)
    return {
        "kind": draft.kind,
        "category": draft.category,
        "title": draft.title,
        "description": draft.description,
        "price": price,
        "location": location,
        "details": dict(draft.details),
        "expires_at": format_utc(draft.expires_at),
        "status": draft.status,
    }


def merge_patch(
    draft: ListingDraft, patch: object, *, now: datetime, decimals: int
) -> ListingDraft:
    """Apply a partial update (PATCH) and re-validate the whole listing."""
    if not isinstance(patch, Mapping):
        raise ValidationError("the update must be a JSON object", {"": "expected an object"})
    merged = draft_to_input(draft, decimals=decimals)
    for key, value in patch.items():
        if key == "details" and isinstance(value, Mapping) and patch.get("category") in (
            None,
            draft.category,
        ):
            merged["details"] = {**merged["details"], **value}
        else:
            merged[key] = value
    if "expires_at" not in patch and draft.expires_at <= now:
        merged["expires_at"] = None
    return parse_listing_input(merged, now=now, decimals=decimals, allow_status=True)


# --- FEP-0837 Proposal ----------------------------------------------------------------------

_PRIMARY_QUANTITY = {
    "ride": ("seats", "seat"),
    "meal": ("portions", "portion"),
    "sell": ("quantity", "unit"),
    "service": ("hours", "hour"),
}


def _primary_intent(draft: ListingDraft, object_id: str) -> dict[str, Any]:
    action = "deliverService" if draft.category in ("service", "ride") else "transfer"
    intent: dict[str, Any] = {
        "type": "Intent",
        "id": f"{object_id}#primary",
        "action": action,
        "resourceConformsTo": category_uri(draft.category),
    }
    quantity = _primary_quantity(draft)
    if quantity is not None:
        intent["resourceQuantity"] = quantity
    if draft.category == "group-buy":
        intent["minimumQuantity"] = {
            "hasUnit": draft.details["unit"],
            "hasNumericalValue": draft.details["threshold"],
        }
    return intent


def _primary_quantity(draft: ListingDraft) -> dict[str, str] | None:
    details = draft.details
    if draft.category in ("produce",):
        return {"hasUnit": details["unit"], "hasNumericalValue": details["quantity"]}
    if draft.category == "group-buy":
        return {"hasUnit": details["unit"], "hasNumericalValue": details["target_quantity"]}
    key_unit = _PRIMARY_QUANTITY.get(draft.category)
    if key_unit and key_unit[0] in details:
        return {"hasUnit": key_unit[1], "hasNumericalValue": str(details[key_unit[0]])}
    return {"hasUnit": "one", "hasNumericalValue": "1"}


def _reciprocal_intent(
    draft: ListingDraft, object_id: str, currency: CurrencyRef
) -> dict[str, Any] | None:
    if draft.price.mode != "amount" or draft.price.amount_units is None:
        return None
    return {
        "type": "Intent",
        "id": f"{object_id}#reciprocal",
        "action": "transfer",
        "resourceConformsTo": currency.uri,
        "resourceQuantity": {
            "hasUnit": currency.code,
            "hasNumericalValue": format_amount(
                draft.price.amount_units, decimals=currency.decimals
            ),
        },
    }


def _place(location: Location) -> dict[str, Any] | None:
    if not location.name and location.lat is None:
        return None
    place: dict[str, Any] = {"type": "Place", "name": location.name}
    if location.lat is not None:
        place.update(latitude=location.lat, longitude=location.lon)
    return place


def build_proposal(
    draft: ListingDraft,
    *,
    object_id: str,
    actor_id: str,
    published: datetime,
    updated: datetime | None,
    currency: CurrencyRef,
    images: Sequence[ImageRef] = (),
) -> dict[str, Any]:
    """The unsigned FEP-0837 ``Proposal`` for a listing (sign it with ``proofs.create_proof``)."""
    document: dict[str, Any] = {
        "@context": LISTING_CONTEXT,
        "id": object_id,
        "type": "Proposal",
        "attributedTo": actor_id,
        "name": draft.title,
        "content": render_markdown_subset(draft.description),
        "source": {"content": draft.description, "mediaType": "text/markdown"},
        "published": format_utc(published),
        "url": object_id,
        "purpose": draft.kind,
        "category": draft.category,
        "status": draft.status,
        "priceMode": draft.price.mode,
        "details": dict(draft.details),
        "endTime": format_utc(draft.expires_at),
        "publishes": _primary_intent(draft, object_id),
        "unitBased": draft.category in ("meal", "produce", "group-buy", "ride"),
        "to": [PUBLIC],
        "cc": [f"{actor_id}/followers"],
    }
    if updated is not None:
        document["updated"] = format_utc(updated)
    reciprocal = _reciprocal_intent(draft, object_id, currency)
    if reciprocal is not None:
        document["reciprocal"] = reciprocal
        if draft.price.period:
            document["pricePeriod"] = draft.price.period
    place = _place(draft.location)
    if place is not None:
        document["location"] = place
    if images:
        document["image"] = [
            {"type": "Image", "url": image.url, "mediaType": image.media_type,
             "width": image.width, "height": image.height, "name": image.alt}
            for image in images
        ]
    return document


def build_tombstone(object_id: str, *, deleted: datetime) -> dict[str, Any]:
    """The unsigned ``Tombstone`` that replaces a withdrawn listing."""
    return {
        "@context": LISTING_CONTEXT,
        "id": object_id,
        "type": "Tombstone",
        "formerType": "Proposal",
        "deleted": format_utc(deleted),
    }


def _wire_price(document: Mapping[str, Any], decimals: int) -> dict[str, Any]:
    mode = document.get("priceMode", "free")
    reciprocal = document.get("reciprocal")
    if mode != "amount" or not isinstance(reciprocal, Mapping):
        return {"mode": mode if mode in PRICE_MODES else "free"}
    quantity = reciprocal.get("resourceQuantity")
    amount = quantity.get("hasNumericalValue") if isinstance(quantity, Mapping) else None
    return {"mode": "amount", "amount": amount, "period": document.get("pricePeriod")}


def _wire_location(document: Mapping[str, Any]) -> dict[str, Any] | None:
    place = document.get("location")
    if not isinstance(place, Mapping):
        return None
    location: dict[str, Any] = {"name": place.get("name", "")}
    if place.get("latitude") is not None:
        location.update(lat=place.get("latitude"), lon=place.get("longitude"))
    return location


def parse_proposal(document: object, *, decimals: int) -> ListingDraft:
    """Read a (remote or stored) ``Proposal`` back into a validated draft.

    Time-dependent checks are relaxed (a relayed listing may describe a departure that has
    passed by the time it arrives): ``now`` is taken as the document's ``published`` time.
    """
    if not isinstance(document, Mapping) or document.get("type") != "Proposal":
        raise ValidationError("not a Proposal", {"type": "expected Proposal"})
    source = document.get("source")
    description = source.get("content") if isinstance(source, Mapping) else None
    if not isinstance(description, str) and isinstance(document.get("content"), str):
        # A server without our ``source`` (Mitra, Mastodon) only sends HTML: keep its text.
        description = html_to_text(document["content"])[:DESCRIPTION_MAX]
    published = parse_utc(document.get("published"), field="published")
    status = document.get("status", "active")
    data = {
        "kind": document.get("purpose"),
        "category": document.get("category"),
        "title": document.get("name"),
        "description": description if isinstance(description, str) else "",
        "price": _wire_price(document, decimals),
        "location": _wire_location(document),
        "details": document.get("details"),
        "expires_at": document.get("endTime"),
    }
    draft = parse_listing_input(data, now=published - timedelta(seconds=1), decimals=decimals)
    if status not in STATUSES:
        raise ValidationError("unknown status", {"status": "unknown"})
    return ListingDraft(**{**draft.__dict__, "status": str(status)})
