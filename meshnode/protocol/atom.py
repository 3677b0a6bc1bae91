"""Atom feed (RFC 4287) of a community's listings, built from plain values.

Pure: takes the entries and ``now`` and returns bytes. ElementTree escapes ``<``, ``&`` and
quotes; characters XML 1.0 forbids (controls other than tab/newline/CR, lone surrogates,
U+FFFE/U+FFFF) are removed first, since no escape makes them legal
(https://www.w3.org/TR/xml/#charsets). https://www.rfc-editor.org/rfc/rfc4287
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from meshnode.protocol.timefmt import format_utc

if TYPE_CHECKING:  # ElementTree (with pyexpat) is imported by the first feed, not at start-up:
    from xml.etree import ElementTree as ET  # ~0.5 MB an idle node does not need

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml"
MAX_SUMMARY = 500
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class FeedEntry:
    """One listing as a feed reader sees it."""

    id: str  # the listing's ActivityPub object id (a stable IRI, RFC 4287 §4.2.6)
    title: str
    summary: str
    link: str
    author: str
    category: str
    published: str
    updated: str


@dataclass(frozen=True)
class FeedHead:
    """The feed itself: who publishes it and where it lives."""

    id: str
    title: str
    self_url: str
    site_url: str


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", value)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    from xml.etree.ElementTree import SubElement

    element = SubElement(parent, f"{{{ATOM_NS}}}{tag}", {k: xml_text(v) for k, v in
                                                            attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _entry(feed: ET.Element, entry: FeedEntry) -> None:
    node = _add(feed, "entry")
    _add(node, "id", entry.id)
    _add(node, "title", entry.title, type="text")
    _add(node, "link", rel="alternate", type="text/html", href=entry.link)
    _add(_add(node, "author"), "name", entry.author)
    _add(node, "category", term=entry.category)
    _add(node, "published", entry.published)
    _add(node, "updated", entry.updated)
    summary = entry.summary if len(entry.summary) <= MAX_SUMMARY else (
        entry.summary[:MAX_SUMMARY - 1] + "…")
    _add(node, "summary", summary, type="text")


def build_feed(head: FeedHead, entries: Sequence[FeedEntry], now: datetime) -> bytes:
    """The feed document, UTF-8, newest entries as given; ``updated`` is the newest entry's
    time (``now`` when there is none)."""
    from xml.etree import ElementTree as ET

    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _add(feed, "id", head.id)
    _add(feed, "title", head.title, type="text")
    _add(feed, "link", rel="self", type=ATOM_TYPE, href=head.self_url)
    _add(feed, "link", rel="alternate", type="text/html", href=head.site_url)
    _add(feed, "updated", max((e.updated for e in entries), default=format_utc(now)))
    _add(feed, "generator", "meshnode")
    for entry in entries:
        _entry(feed, entry)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
