"""What is left of a listing: seats, portions and quantities that count down, and the
FEP-0837 ``availableQuantity`` that carries the figure to other communities.

The author's node is the authority: it counts its deals and publishes the figure on the
listing's primary ``Intent`` (``publishes.availableQuantity``, FEP-0837,
https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md) in a new version
signed by the author; other nodes show what the last signed version says. Pure: documents,
counts and an explicit ``now`` in, values out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from meshnode.protocol.deals import DECIMAL_SCALE, HOLDING, Capacity, capacity_of, format_quantity
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.parsing import parse_decimal
from meshnode.protocol.timefmt import format_utc, parse_utc

# Deals that use up part of a listing: accepted or ongoing, and also done or disputed (a seat
# of a ride that took place is not free again). A group-buy pledge counts from the request on.
CONSUMING = (*sorted(HOLDING), "completed", "disputed")
PLEDGING = ("requested", *CONSUMING)


def counting_states(category: str) -> tuple[str, ...]:
    """The deal states whose quantities count against the listing's capacity."""
    return PLEDGING if category == "group-buy" else CONSUMING


@dataclass(frozen=True)
class Remaining:
    """How much of a listing is left, in capacity units (thousandths for decimal ones)."""

    capacity: Capacity
    left: int

    @property
    def total(self) -> int:
        """The listing's whole capacity."""
        return self.capacity.total

    @property
    def full(self) -> bool:
        """Nothing is left: the listing is "Complet"."""
        return self.left <= 0

    @property
    def taken(self) -> int:
        """What is booked or pledged."""
        return self.total - self.left

    def text(self, units: int) -> str:
        """A quantity as published and shown (``2``, ``1.5``)."""
        return format_quantity(self.capacity, units)

    def to_json(self) -> dict[str, Any]:
        """The API form: counts as integers, decimal quantities as text (like ``details``)."""
        def value(units: int) -> int | str:
            return units if self.capacity.mode == "count" else self.text(units)
        return {"remaining": value(self.left), "total": value(self.total),
                "unit": self.capacity.unit, "full": self.full}


def bookable_capacity(category: str, kind: str, details: Mapping[str, Any]) -> Capacity | None:
    """The capacity that counts down (seats, portions, quantities), or None: requests, loans
    and services (time slots) and categories that cannot be booked have none."""
    if kind != "offer":
        return None
    try:
        capacity = capacity_of(category, details)
    except (ValidationError, KeyError, ValueError, InvalidOperation):
        return None
    return None if capacity.mode == "slot" else capacity


# Pure; a search page asks it for each of its twenty listings, whose details repeat (most
# are ``{}``): parsing them and building each capacity was a tenth of the page (issue 17).
@lru_cache(maxsize=1024)
def stored_capacity(category: str, kind: str, details_json: str) -> Capacity | None:
    """``bookable_capacity`` of a stored listing, its ``details`` as their JSON text."""
    if kind != "offer":  # no capacity whatever the details say
        return None
    return bookable_capacity(category, kind, json.loads(details_json))


def remaining_from_taken(capacity: Capacity, taken: int) -> Remaining:
    """What is left when ``taken`` units are booked (never below zero)."""
    return Remaining(capacity, min(capacity.total, max(capacity.total - taken, 0)))


def published_left(capacity: Capacity, raw: object) -> int | None:
    """The figure a signed Proposal published (the JSON of its ``availableQuantity``), in
    capacity units, capped to the capacity; None when absent or not a quantity."""
    node: object = raw
    if isinstance(raw, str):
        try:
            node = json.loads(raw) if raw[:1] in "{[\"" else raw
        except ValueError:
            return None
    value = node.get("hasNumericalValue") if isinstance(node, Mapping) else node
    places = 0 if capacity.mode == "count" else 3
    try:  # the one parsing layer: ASCII digits, no exponent, bounded length
        number = parse_decimal(value, "availableQuantity", places=places, low=Decimal(0))
    except ValidationError:
        return None
    units = int(number) if capacity.mode == "count" else int(number * DECIMAL_SCALE)
    return min(units, capacity.total)


def with_available(document: Mapping[str, Any], remaining: Remaining,
                   updated: datetime) -> dict[str, Any]:
    """The unsigned next version of a Proposal: the same listing with ``availableQuantity``
    set on its primary Intent and ``updated`` moved on (sign it with the author's key)."""
    unsigned = {key: value for key, value in document.items() if key != "proof"}
    intent = dict(unsigned.get("publishes") or {})
    unsigned["publishes"] = set_available(intent, remaining)
    unsigned["updated"] = format_utc(updated)
    return unsigned


def set_available(intent: Mapping[str, Any], remaining: Remaining) -> dict[str, Any]:
    """The primary Intent with ``availableQuantity`` in the unit of its ``resourceQuantity``."""
    quantity = intent.get("resourceQuantity")
    unit = quantity.get("hasUnit") if isinstance(quantity, Mapping) else None
    return {**intent, "availableQuantity": {
        "hasUnit": unit if isinstance(unit, str) else remaining.capacity.unit,
        "hasNumericalValue": remaining.text(remaining.left)}}


def only_capacity_moved(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """True when version ``after`` of a Proposal differs from ``before`` only in what the
    author's node moves as bookings come and go (``publishes.availableQuantity``, the
    ``status`` when it fills up or frees, ``updated`` and the proof): not an edit by the
    author, so pages do not show it as one."""
    return _content(before) == _content(after)


def _content(document: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: value for key, value in document.items()
            if key not in ("proof", "updated", "status")}
    intent = kept.get("publishes")
    if isinstance(intent, Mapping):
        kept["publishes"] = {key: value for key, value in intent.items()
                             if key != "availableQuantity"}
    return kept


def published_in(document: Mapping[str, Any]) -> object:
    """The ``availableQuantity`` a Proposal carries (None when it carries none)."""
    intent = document.get("publishes")
    return intent.get("availableQuantity") if isinstance(intent, Mapping) else None


def next_updated(previous: str, now: datetime) -> datetime:
    """The ``updated`` time of a new version: ``now``, but always after the previous one.

    Peers keep a version only if its ``updated`` is later than the one they hold, at whole
    seconds; two bookings in the same second must still give two versions they accept.
    """
    after = parse_utc(previous, field="updated_at") + timedelta(seconds=1)
    return max(now.replace(microsecond=0), after)
