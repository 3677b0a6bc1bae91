"""Parts of members' pages rendered once and kept: deal cards, wallet lines (issue 17).

A fragment is keyed by everything it shows (the stored row itself, frozen, the names and
the reader's language, the session's CSRF token when it holds a form), so a changed row or
name is simply another key: nothing has to be invalidated, and old keys age out of a
bounded LRU. Rendering 50 deal cards with Jinja macros was most of "Mes réservations".
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:
    import jinja2  # the environment is passed in (web/templating.py imports it lazily)

FRAGMENT_CACHE_SIZE = 4000
# Memory, not only the count, is capped (issue 17), as for the cards (web/cards.py).
FRAGMENT_CACHE_MAX_BYTES = 2 * 1024 * 1024


class FragmentCache:
    """Rendered HTML of small templates by (template, key), least recently used dropped."""

    def __init__(self, size: int = FRAGMENT_CACHE_SIZE,
                 max_bytes: int = FRAGMENT_CACHE_MAX_BYTES) -> None:
        self._size = size
        self.max_bytes = max_bytes
        self.bytes = 0  # sys.getsizeof of the kept fragments' HTML
        self._html: OrderedDict[tuple[str, Hashable], Markup] = OrderedDict()
        self.renders = 0  # how many were rendered rather than found (tests, benchmarks)

    def __len__(self) -> int:
        return len(self._html)

    def clear(self) -> None:
        """Forget every fragment (an idle node gives the memory back: web/idle.py)."""
        self._html.clear()
        self.bytes = 0

    def render(self, env: jinja2.Environment, template: str, key: Hashable,
               context: Callable[[], dict[str, Any]]) -> Markup:
        """``template`` rendered with ``context()``, or the copy kept for ``key``.

        ``key`` must hold every value the template reads; ``context`` is only called to
        render a key not seen yet."""
        full = (template, key)
        html = self._html.get(full)
        if html is not None:
            self._html.move_to_end(full)
            return html
        html = Markup(env.get_template(template).render(context()))  # noqa: S704 - autoescaped
        self.renders += 1
        self._html[full] = html
        self.bytes += sys.getsizeof(html)
        while len(self._html) > self._size or self.bytes > self.max_bytes:
            self.bytes -= sys.getsizeof(self._html.popitem(last=False)[1])
        return html
