"""The community's known places: what search offers instead of asking for coordinates.

Issue 16: "Près de (latitude,longitude)" asked members for numbers. The search form now lists
the places this node's own listings name (their coordinates averaged), plus "near me" from the
browser's geolocation when it has one (progressive enhancement, ``web/static/app.js``).

Issue 17: every search page showed that list, and grouping every listing by place cost more
than the search itself, so the list is kept (``PlaceCache``) and read again only after this
process committed something.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from meshnode.services.context import NodeContext
from meshnode.store import listings as q

MAX_PLACES = 40
# A node under a stream of writes (federation ingest) reads the places at most this often.
PLACES_MIN_AGE = 1.0
# Writes by another process (``meshnode`` commands) show within this many seconds.
PLACES_MAX_AGE = 30.0


@dataclass(frozen=True)
class Place:
    """A choice for "near": its name and the ``lat,lon`` value search understands."""

    name: str
    near: str


async def known_places(ctx: NodeContext, limit: int = MAX_PLACES) -> list[Place]:
    """The places named in this community's listings, most used first, then by name."""
    rows = await q.known_places(ctx.store.reader, limit)
    return [Place(row.name, f"{row.lat:.4f},{row.lon:.4f}") for row in rows]


class PlaceCache:
    """``known_places`` kept between pages, one per app.

    Read again when this process has committed anything since the last read (the store's
    ``generation``: a new listing's place shows on the next search page), but at most every
    ``min_age`` seconds, and at least every ``max_age`` seconds (writes by other processes).
    Concurrent pages share one read.
    """

    def __init__(self, *, min_age: float = PLACES_MIN_AGE, max_age: float = PLACES_MAX_AGE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.min_age = min_age
        self.max_age = max_age
        self._monotonic = monotonic
        self._places: tuple[Place, ...] = ()
        self._generation = -1
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self.reads = 0  # how many times the store was asked (for tests and benchmarks)
        self.version = 0  # moves with each read: what is kept for a set of places names it

    def _stale(self, generation: int, now: float) -> bool:
        if self._generation < 0:
            return True
        age = now - self._loaded_at
        return age >= self.max_age or (generation != self._generation and age >= self.min_age)

    async def get(self, ctx: NodeContext) -> tuple[Place, ...]:
        """The known places, read from the store only when stale."""
        if not self._stale(ctx.store.generation, self._monotonic()):
            return self._places
        async with self._lock:  # pages waiting here take the read that was in flight
            generation, now = ctx.store.generation, self._monotonic()
            if self._stale(generation, now):
                self._places = tuple(await known_places(ctx))
                self._generation, self._loaded_at = generation, now
                self.reads += 1
                self.version += 1
        return self._places
