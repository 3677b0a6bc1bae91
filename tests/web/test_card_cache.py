"""The listing card cache is capped in bytes as well as in cards (issue 17: a Pi's memory)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import jinja2

from meshnode.web.cards import CardCache
from meshnode.web.i18n import I18n


@dataclass(frozen=True)
class Row:
    """The columns a card's cache key reads, and its details (parsed for a card rendered)."""

    seq: int
    title: str
    version: int = 1
    updated_at: str = "2026-12-02T10:00:00Z"
    status: str = "open"
    hidden: bool = False
    details: str = "{}"


def env() -> jinja2.Environment:
    templates = {"_card.html": "<p>{{ item.row.title }}</p>"}
    return jinja2.Environment(loader=jinja2.DictLoader(templates), autoescape=True)


def test_card_cache__long_cards_are_dropped_beyond_the_byte_cap() -> None:
    # Given a cache allowed 4,000 cards but only 50 KB, and a translator
    cache = CardCache({}, size=4000, max_bytes=50_000)
    tr = I18n.build(default="fr", timezone="Europe/Paris", symbol="G", decimals=2).translators["fr"]
    # When 300 listings with 1 KB titles are shown
    for seq in range(300):
        cache.render(env(), tr, {"row": Row(seq, "x" * 1000)})
    # Then the cache holds what fits in 50 KB, the newest cards
    assert cache.bytes <= 50_000
    assert 30 <= len(cache) < 300
    newest = cache.render(env(), tr, {"row": Row(299, "y")})  # same key: served from the cache
    assert "x" * 1000 in newest
    assert cache.bytes == sum(sys.getsizeof(card) for card in cache._cards.values())


def test_card_cache__small_cards_are_capped_by_count() -> None:
    # Given a cache of 10 cards and plenty of bytes
    cache = CardCache({}, size=10)
    tr = I18n.build(default="en", timezone="UTC", symbol="G", decimals=2).translators["en"]
    # When 25 listings are shown
    for seq in range(25):
        cache.render(env(), tr, {"row": Row(seq, f"Listing {seq}")})
    # Then only the 10 newest are kept
    assert len(cache) == 10


def test_card_cache__cards_rendered_together_are_each_card_then_the_separator() -> None:
    # Given a cache and three listings, one with a title to escape
    cache = CardCache({})
    tr = I18n.build(default="en", timezone="UTC", symbol="G", decimals=2).translators["en"]
    items = [{"row": Row(seq, title)} for seq, title in ((1, "Vélo"), (2, "<b>tarte</b>"),
                                                          (3, "Soupe"))]
    # When they are rendered in one call, as home and search do
    together = cache.render_all(env(), tr, items, "\n")
    # Then it is what rendering each card, then a line break, gives: escaped, in order
    assert together == "".join(cache.render(env(), tr, item) + "\n" for item in items)
    assert together == "<p>Vélo</p>\n<p>&lt;b&gt;tarte&lt;/b&gt;</p>\n<p>Soupe</p>\n"
    assert hasattr(together, "__html__")  # markup: the page does not escape it again
    assert cache.render_all(env(), tr, [], "\n") == ""
