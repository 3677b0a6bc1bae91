"""Saved searches ("alerts"): the validated input, and what a listing itself wants.

Pure: no I/O, no clock. A saved search is the search page's filters kept by a member
(``q``, ``kind``, ``category``, ``near``, ``radius_km``) plus a price limit; every field is
checked here and one ValidationError names every wrong field at once (nothing is stored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings import CATEGORIES, KINDS
from meshnode.protocol.search_terms import query_terms, wanted_terms
from meshnode.protocol.translatable import Text

FIELDS = frozenset({"q", "kind", "category", "near", "radius_km", "max_price"})
MAX_Q = 200
MAX_RADIUS_KM = 200
DEFAULT_RADIUS_KM = 10.0
MAX_PRICE = Decimal(1_000_000)  # in the community currency: far above anything offered
WANT_RADIUS_KM = 30.0  # a request's own place: offers within this distance match it
MAX_WANTS = 4  # alternatives of a swap's "wanted" ("perceuse, scie ou ponceuse")
WANT_WORDS = 2  # significant words of one want that an offer must contain
_NEAR = re.compile(r"(-?[0-9]{1,3}(?:\.[0-9]{1,8})?),(-?[0-9]{1,3}(?:\.[0-9]{1,8})?)", re.ASCII)
_NUMBER = re.compile(r"[0-9]{1,7}(?:[.,][0-9]{1,6})?", re.ASCII)
_ALTERNATIVES = re.compile(r"[,;/+]|\bou\b|\bor\b", re.IGNORECASE)


@dataclass(frozen=True)
class AlertInput:
    """A validated saved search; ``terms`` are its folded words (search_terms)."""

    q: str
    kind: str
    category: str | None
    near: tuple[float, float] | None
    radius_km: float | None
    max_price: int | None  # minor units
    terms: tuple[str, ...]

    @property
    def near_text(self) -> str | None:
        """``lat,lon`` as search takes it."""
        return None if self.near is None else f"{self.near[0]:.5f},{self.near[1]:.5f}"


def _text(data: Mapping[str, object], errors: dict[str, str]) -> str:
    raw = data.get("q", "")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        errors["q"] = "must be text"
        return ""
    if len(raw) > MAX_Q:
        errors["q"] = "at most 200 characters"
    return " ".join(raw.split())[:MAX_Q]


def _choice(data: Mapping[str, object], name: str, allowed: tuple[str, ...],
            errors: dict[str, str], default: str | None) -> str | None:
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or raw not in allowed:
        errors[name] = Text("one of %(values)s", values=", ".join(allowed))
        return default
    return raw


def parse_near(raw: object, errors: dict[str, str]) -> tuple[float, float] | None:
    """``"lat,lon"`` (as the search page's "near" sends it), or None when empty."""
    if raw is None or raw == "":
        return None
    match = _NEAR.fullmatch(raw.replace(" ", "")) if isinstance(raw, str) else None
    if match is None:
        errors["near"] = "e.g. 45.76,4.83"
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        errors["near"] = "latitude/longitude out of range"
        return None
    return lat, lon


def _radius(raw: object, near: tuple[float, float] | None, errors: dict[str, str]
            ) -> float | None:
    if raw is None or raw == "":
        return DEFAULT_RADIUS_KM if near is not None else None
    text = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or _NUMBER.fullmatch(text.strip()) is None:
        errors["radius_km"] = "0-200"
        return None
    value = float(text.strip().replace(",", "."))
    if not 0 < value <= MAX_RADIUS_KM:
        errors["radius_km"] = "0-200"
        return None
    return value if near is not None else None


def _price(raw: object, decimals: int, errors: dict[str, str]) -> int | None:
    if raw is None or raw == "":
        return None
    text = str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else raw
    if not isinstance(text, str) or _NUMBER.fullmatch(text.strip()) is None:
        errors["max_price"] = "a positive amount, e.g. 12.50"
        return None
    value = Decimal(text.strip().replace(",", "."))
    if value > MAX_PRICE or value != value.quantize(Decimal(1).scaleb(-decimals)):
        errors["max_price"] = "a positive amount, e.g. 12.50"
        return None
    return int(value.scaleb(decimals))


def parse_alert(data: object, *, decimals: int) -> AlertInput:
    """Validate a saved search (API body or search form); ValidationError names each field."""
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object", {"": "expected an object"})
    errors: dict[str, str] = {name: "unknown field" for name in data if name not in FIELDS}
    q = _text(data, errors)
    kind = _choice(data, "kind", KINDS, errors, "offer") or "offer"
    category = _choice(data, "category", CATEGORIES, errors, None)
    near = parse_near(data.get("near"), errors)
    radius = _radius(data.get("radius_km"), near, errors)
    max_price = _price(data.get("max_price"), decimals, errors)
    terms = query_terms(q)
    if not errors and not terms and category is None:
        errors["q"] = "give some words or a category"
    if errors:
        raise ValidationError("invalid alert", errors)
    return AlertInput(q, kind, category, near, radius, max_price, terms)


@dataclass(frozen=True)
class Want:
    """What a listing itself looks for: a request's title, or one of a swap's "wanted"."""

    q: str
    terms: tuple[str, ...]


def listing_wants(kind: str, title: str, price_mode: str, wanted: object) -> list[Want]:
    """The wants of a listing: a request wants its title's significant words ("Cherche une
    échelle" → ``echelle``); a swap offer wants each alternative of its "wanted"."""
    if kind == "request":
        texts = [title]
    elif price_mode == "swap" and isinstance(wanted, str):
        texts = [part for part in _ALTERNATIVES.split(wanted) if part.strip()][:MAX_WANTS]
    else:
        return []
    wants = []
    for text in texts:
        terms = wanted_terms(text)[:WANT_WORDS]
        if terms:
            wants.append(Want(" ".join(text.split())[:MAX_Q], terms))
    return wants
