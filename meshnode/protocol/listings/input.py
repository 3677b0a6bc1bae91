"""Listing input: a member's form or API fields in, a ``ListingDraft`` or per-field
``ValidationError`` out; and back (a draft as editable input, a merge patch)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings.details import _parse_details
from meshnode.protocol.listings.model import (
    CATEGORIES,
    DEFAULT_LIFETIME,
    DESCRIPTION_MAX,
    EDITABLE_STATUSES,
    KINDS,
    MAX_LIFETIME,
    PRICE_MODES,
    PRICE_PERIODS,
    TEXT_FIELD_MAX,
    TITLE_MAX,
    TOP_LEVEL_FIELDS,
    ListingDraft,
    Location,
    Price,
    UnknownCategoryError,
)
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc, parse_utc

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
    # A tuple, not ``int | float``: that union is built anew at each call (0.66 -> 0.07 µs).
    if isinstance(value, bool) or not isinstance(value, (int, float)):
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
