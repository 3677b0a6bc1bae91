"""What a listing is: kinds, categories, caps, and the draft every other part reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.records import quick_init

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


@quick_init
@dataclass(frozen=True)
class Price:
    """What is asked in return: nothing, an amount of the community currency, or a swap."""

    mode: str = "free"
    amount_units: int | None = None
    period: str | None = None


@quick_init
@dataclass(frozen=True)
class Location:
    """Where the thing is: free text plus optional coordinates."""

    name: str = ""
    lat: float | None = None
    lon: float | None = None


@quick_init
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
