"""How many listings a text search matched, kept for the search's plan choice (issue 17).

``store.listings._walk_newest_first`` picks the index a text search reads its matches
through from the number of matches: counting them in the full-text index was about a tenth
of a search page's CPU, for a number that only changes when listings do. A count is kept
with the newest listing's ``seq`` it was read at and used while that is still the newest
(a new listing may match: counted again). An edit that changes a listing's words leaves the
old count until then: the count only chooses the plan, the rows found are the same either
way. Bounded (least recently used dropped first); the reader's thread uses it, the lock
lets the writer's use it too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

MATCH_COUNTS_KEPT = 512  # full-text queries (a word or a few, at most 8 terms of ~20 chars)


class MatchCounts:
    """Full-text query -> (newest listing seq when counted, number of matches)."""

    def __init__(self, size: int = MATCH_COUNTS_KEPT) -> None:
        self._size = size
        self._counts: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.counted = 0  # how many were counted rather than found (tests, benchmarks)

    def __len__(self) -> int:
        return len(self._counts)

    def get(self, text: str, newest: int) -> int | None:
        """The matches of ``text`` counted while ``newest`` was the newest seq, or None."""
        with self._lock:
            found = self._counts.get(text)
            if found is None or found[0] != newest:
                return None
            self._counts.move_to_end(text)
            return found[1]

    def put(self, text: str, newest: int, matches: int) -> None:
        """Keep the count of ``text`` read while ``newest`` was the newest seq."""
        with self._lock:
            self.counted += 1
            self._counts[text] = (newest, matches)
            self._counts.move_to_end(text)
            while len(self._counts) > self._size:
                self._counts.popitem(last=False)

    def clear(self) -> None:
        """Forget every count (an idle node gives the memory back)."""
        with self._lock:
            self._counts.clear()
