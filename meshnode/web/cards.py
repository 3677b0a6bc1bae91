"""Listing cards (home, search, profiles, my listings), rendered once per version and language.

A card depends only on the listing's stored version and on the reader's language, so its HTML
is kept in a bounded LRU: rendering twenty cards was most of a search page's cost.
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from meshnode.web.i18n import Translator

if TYPE_CHECKING:
    import jinja2  # the environment is passed in (web/templating.py imports it lazily)

CARD_CACHE_SIZE = 4000
# Memory, not only the count, is capped (issue 17: a Pi's budget): 2 MiB holds a couple of
# thousand cards, far more than the pages in use at once show.
CARD_CACHE_MAX_BYTES = 2 * 1024 * 1024

CardKey = tuple[str, int, int, str, str, bool, tuple[str, str] | None, int | None]


class CardCache:
    """Rendered card HTML keyed by (language, listing seq, version, updated, status, hidden)."""

    def __init__(self, labels: dict[str, Any], size: int = CARD_CACHE_SIZE,
                 max_bytes: int = CARD_CACHE_MAX_BYTES) -> None:
        self._labels = labels
        self._size = size
        self.max_bytes = max_bytes
        self.bytes = 0  # sys.getsizeof of the kept cards' HTML
        self._cards: OrderedDict[CardKey, Markup] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cards)

    def clear(self) -> None:
        """Forget every card (an idle node gives the memory back: web/idle.py)."""
        self._cards.clear()
        self.bytes = 0

    def render_all(self, env: jinja2.Environment, tr: Translator,
                   items: list[dict[str, Any]], end: str = "") -> Markup:
        """The cards of ``items``, each followed by ``end``, as one piece of HTML: a template
        looping over twenty ``cached_card`` calls paid Jinja's call and escape for each, a
        tenth of a search page's rendering (issue 17)."""
        render = self.render
        return Markup("".join([render(env, tr, item) + end for item in items]))  # noqa: S704 - cards are Markup, ``end`` is the template's own text

    def render(self, env: jinja2.Environment, tr: Translator, item: dict[str, Any]) -> Markup:
        """The card of ``item`` (``{"row": ListingRow, ...}``: ``web/pages/listings.py``'s
        ``card_context``) in ``tr``'s language."""
        row = item["row"]
        byline = (item["author"].label, item["community"].label) if "author" in item else None
        left = item.get("remaining")  # what is left changes without a new version here
        key = (tr.lang, row.seq, row.version, row.updated_at, row.status, row.hidden, byline,
               None if left is None else left.left)
        card = self._cards.get(key)
        if card is not None:
            self._cards.move_to_end(key)
            return card
        # The details (a ride's route) are parsed for a card not kept yet, not for every card.
        shown = {**item, "details": json.loads(row.details)}
        card = Markup(env.get_template("_card.html").render({  # noqa: S704 - autoescaped
            "_": tr.gettext, "ngettext": tr.ngettext, "fmt": tr, "item": shown, **self._labels,
        }))
        self._cards[key] = card
        self.bytes += sys.getsizeof(card)
        while len(self._cards) > self._size or self.bytes > self.max_bytes:
            self.bytes -= sys.getsizeof(self._cards.popitem(last=False)[1])
        return card
