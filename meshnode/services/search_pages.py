"""Which listings a search found, kept for the second it was asked in (issue 17).

A text search's SQL (the full-text matches, often thousands, gathered and walked newest
first) was about 40 % of a search page's CPU at 10,000 listings, for an answer that changes
only when something is committed or when the clock's second turns (listings expire: the
filters carry the second they were asked at). So a search's outcome is kept as the ``seq``
numbers of the rows it found (20 or 21 small integers, never the rows), keyed by the whole
``SearchFilters`` (their second included), for one database ``data_version``: a commit of
this process or another empties it, like ``services/readcache.py``. A repeated search (the
same words and filters in the same second: the next page of cards, a category link from
home, many members at once) reads its rows again by those numbers, each a primary-key
lookup, with what their deals use: the rows and the remaining places shown are always
read afresh. Bounded (least recently used dropped first) and emptied when the node is idle.
"""

from __future__ import annotations

from collections import OrderedDict

from meshnode.store.listings import SearchFilters

MAX_SEARCHES = 256  # ~21 ints and a filters object each: ~100 KB when full


class SearchOutcomes:
    """``SearchFilters`` -> the ``seq`` of each row found, valid for one ``data_version``."""

    def __init__(self, *, max_entries: int = MAX_SEARCHES) -> None:
        self.max_entries = max_entries
        self._found: OrderedDict[SearchFilters, tuple[int, ...]] = OrderedDict()
        self._version = -1

    def __len__(self) -> int:
        return len(self._found)

    def get(self, version: int, filters: SearchFilters) -> tuple[int, ...] | None:
        """The rows found for ``filters`` at database ``version``, or None."""
        if version != self._version:
            self._found.clear()
            self._version = version
            return None
        found = self._found.get(filters)
        if found is not None:
            self._found.move_to_end(filters)
        return found

    def put(self, version: int, filters: SearchFilters, seqs: tuple[int, ...]) -> None:
        """Keep what a search read at ``version`` found (dropped if a commit came since)."""
        if version != self._version:
            return
        self._found[filters] = seqs
        self._found.move_to_end(filters)
        while len(self._found) > self.max_entries:
            self._found.popitem(last=False)

    def clear(self) -> None:
        """Forget every outcome (an idle node gives the memory back)."""
        self._found.clear()
