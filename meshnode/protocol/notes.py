"""What a listing becomes for microblog followers (Mastodon and the like): a public ``Note``.

Mastodon ignores FEP-0837 ``Proposal``s, so the community ``Group`` sends each listing to
followers that are not meshnode nodes as a ``Note`` following Mastodon's conventions
(https://docs.joinmastodon.org/spec/activitypub/#Hashtag, ``#as`` namespace extensions):
``tag`` holds ``Hashtag`` objects whose ``name`` starts with ``#`` and whose links also appear
in ``content`` with ``rel="tag"``; ``sensitive`` is false; ``contentMap`` carries the listing's
language. Pure: built from the already signed ``Proposal`` document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any, Literal

from meshnode.protocol.text import html_to_text
from meshnode.protocol.vocab import AS_CONTEXT, PUBLIC

Reader = Literal["proposal", "note"]
READERS: tuple[Reader, ...] = ("proposal", "note")
SHORT_TEXT_MAX = 280
NOTE_CONTEXT: list[Any] = [
    AS_CONTEXT,
    {"sensitive": "as:sensitive", "Hashtag": "as:Hashtag"},
]
# Marks in an actor's @context that its software reads FEP-0837 / ValueFlows documents.
FEP0837_MARKS = ("w3id.org/valueflows", "w3id.org/fep/0837", "fep-0837")
# NodeInfo software names known to read FEP-0837 Proposals (Mitra implements FEP-0837).
PROPOSAL_SOFTWARE = frozenset({"meshnode", "mitra"})

_LABELS: dict[str, dict[str, str]] = {
    "fr": {"price": "Prix", "free": "gratuit", "swap": "échange", "place": "Lieu",
           "per": "par", "hour": "heure", "day": "jour", "week": "semaine", "month": "mois",
           "offer": "Offre", "request": "Demande", "colon": "\u202f: "},
    "en": {"price": "Price", "free": "free", "swap": "swap", "place": "Place",
           "per": "per", "hour": "hour", "day": "day", "week": "week", "month": "month",
           "offer": "Offer", "request": "Request", "colon": ": "},
}


@dataclass(frozen=True)
class NoteSettings:
    """What the Note needs beyond the Proposal: who sends it and how the node spells things."""

    note_id: str
    group_id: str
    currency_code: str
    language: str
    tag_url: str  # the category's listing page, with ``{category}`` in it


def note_id_for(object_id: str) -> str:
    """The id of the Note that mirrors the listing ``object_id`` (same origin)."""
    return f"{object_id}/note"


def reader_for(*, marker: bool, context_reads_fep0837: bool, software: str | None) -> Reader:
    """Which document a follower gets (``software`` is NodeInfo's name, None if unreadable).

    ``proposal``: meshnode nodes (our marker), actors declaring the FEP-0837 vocabulary,
    software known to read Proposals, and servers whose NodeInfo cannot be read (nothing is
    known of them, so they keep the historic behaviour; Mastodon and its kin always publish
    NodeInfo). ``note``: every other software NodeInfo names (Mastodon, Akkoma, GoToSocial…).
    A lying NodeInfo can only choose which of our two public documents it receives.
    """
    if marker or context_reads_fep0837 or software is None:
        return "proposal"
    if software.strip().lower() in PROPOSAL_SOFTWARE:
        return "proposal"
    return "note"


def context_reads_fep0837(document: Mapping[str, Any]) -> bool:
    """True if an actor document's ``@context`` names the FEP-0837 / ValueFlows vocabulary."""
    text = json.dumps(document.get("@context", ""), ensure_ascii=True)[:65536].lower()
    return any(mark in text for mark in FEP0837_MARKS)


def nodeinfo_software(document: object) -> str | None:
    """``software.name`` of a NodeInfo document, or None when missing or malformed."""
    software = document.get("software") if isinstance(document, Mapping) else None
    name = software.get("name") if isinstance(software, Mapping) else None
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        return None
    return name


def _labels(language: str) -> dict[str, str]:
    return _LABELS.get(language, _LABELS["en"])


def _short_text(proposal: Mapping[str, Any]) -> str:
    content = proposal.get("content")
    text = html_to_text(content) if isinstance(content, str) else ""
    text = " ".join(text.split())
    if len(text) <= SHORT_TEXT_MAX:
        return text
    return text[: SHORT_TEXT_MAX - 1].rstrip() + "…"


def price_text(proposal: Mapping[str, Any], currency_code: str, language: str) -> str:
    """The price as a reader sees it: an amount in the community currency, free or swap."""
    labels = _labels(language)
    mode = proposal.get("priceMode", "free")
    reciprocal = proposal.get("reciprocal")
    if mode == "amount" and isinstance(reciprocal, Mapping):
        quantity = reciprocal.get("resourceQuantity")
        value = quantity.get("hasNumericalValue") if isinstance(quantity, Mapping) else None
        text = f"{value} {currency_code}"
        period = proposal.get("pricePeriod")
        if isinstance(period, str) and period in labels:
            text += f" {labels['per']} {labels[period]}"
        return text
    return labels["swap"] if mode == "swap" else labels["free"]


def _place_name(proposal: Mapping[str, Any]) -> str:
    place = proposal.get("location")
    name = place.get("name") if isinstance(place, Mapping) else None
    return name if isinstance(name, str) else ""


def _hashtag(proposal: Mapping[str, Any], settings: NoteSettings) -> dict[str, str] | None:
    category = proposal.get("category")
    if not isinstance(category, str) or not category:
        return None
    tag = category.replace("-", "")  # Mastodon hashtags are word characters only
    return {"type": "Hashtag", "name": f"#{tag}",
            "href": settings.tag_url.format(category=category)}


def note_content(proposal: Mapping[str, Any], settings: NoteSettings) -> str:
    """The Note's HTML: title, short text, price, place, hashtag and the listing's link."""
    labels = _labels(settings.language)
    purpose = labels.get(str(proposal.get("purpose")), "")
    title = escape(str(proposal.get("name", "")))
    lines = [f"<p><strong>{escape(purpose)}{labels['colon']}{title}</strong></p>" if purpose
             else f"<p><strong>{title}</strong></p>"]
    short = _short_text(proposal)
    if short:
        lines.append(f"<p>{escape(short)}</p>")
    colon = labels["colon"]
    price = price_text(proposal, settings.currency_code, settings.language)
    facts = f"{labels['price']}{colon}{escape(price)}"
    place = _place_name(proposal)
    if place:
        facts += f"<br>{labels['place']}{colon}{escape(place)}"
    lines.append(f"<p>{facts}</p>")
    hashtag = _hashtag(proposal, settings)
    link = escape(str(proposal.get("url", proposal.get("id", ""))))
    footer = f'<a href="{link}">{link}</a>'
    if hashtag is not None:
        footer = (f'<a href="{escape(hashtag["href"])}" class="mention hashtag" rel="tag">'
                  f'#<span>{escape(hashtag["name"][1:])}</span></a> ' + footer)
    lines.append(f"<p>{footer}</p>")
    return "".join(lines)


def _attachment(proposal: Mapping[str, Any]) -> list[dict[str, Any]]:
    images = proposal.get("image")
    first = images[0] if isinstance(images, list) and images else None
    if not isinstance(first, Mapping) or not isinstance(first.get("url"), str):
        return []
    image: dict[str, Any] = {"type": "Image", "url": first["url"],
                             "mediaType": first.get("mediaType", "image/jpeg"),
                             "name": first.get("name", "")}
    for key in ("width", "height"):
        if isinstance(first.get(key), int):
            image[key] = first[key]
    return [image]


def build_note(proposal: Mapping[str, Any], settings: NoteSettings) -> dict[str, Any]:
    """The public ``Note`` a microblog follower gets for a (signed) listing ``Proposal``."""
    content = note_content(proposal, settings)
    hashtag = _hashtag(proposal, settings)
    note: dict[str, Any] = {
        "@context": NOTE_CONTEXT,
        "id": settings.note_id,
        "type": "Note",
        "attributedTo": settings.group_id,
        "summary": None,
        "sensitive": False,
        "content": content,
        "contentMap": {settings.language: content},
        "url": proposal.get("url", proposal.get("id")),
        "published": proposal.get("published"),
        "to": [PUBLIC],
        "cc": [f"{settings.group_id}/followers"],
        "tag": [hashtag] if hashtag is not None else [],
        "attachment": _attachment(proposal),
    }
    if isinstance(proposal.get("updated"), str):
        note["updated"] = proposal["updated"]
    return note


def note_tombstone(note_id: str) -> dict[str, Any]:
    """The object of the ``Delete`` sent when a listing is withdrawn (Mastodon's form)."""
    return {"id": note_id, "type": "Tombstone"}


def note_activity(
    activity_type: str, obj: Mapping[str, Any], *, group_id: str, version: int, published: str,
) -> dict[str, Any]:
    """Create / Update / Delete of a listing's Note, sent by the community Group."""
    body = {key: value for key, value in obj.items() if key != "@context"}
    suffix = activity_type.lower()
    return {
        "@context": NOTE_CONTEXT,
        "id": f"{body['id']}/activities/{suffix}-{version}",
        "type": activity_type,
        "actor": group_id,
        "published": published,
        "to": [PUBLIC],
        "cc": [f"{group_id}/followers"],
        "object": body,
    }
