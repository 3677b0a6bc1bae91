"""The FEP-0837 ``Proposal`` a listing becomes on the wire, its ``Tombstone``, and reading a
peer's Proposal back into a draft
(https://codeberg.org/fediverse/fep/src/branch/main/fep/0837/fep-0837.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.listings.input import parse_listing_input
from meshnode.protocol.listings.model import (
    DESCRIPTION_MAX,
    PRICE_MODES,
    STATUSES,
    CurrencyRef,
    ImageRef,
    ListingDraft,
    Location,
)
from meshnode.protocol.text import html_to_text, render_markdown_subset
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.vocab import LISTING_CONTEXT, PUBLIC, category_uri

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
