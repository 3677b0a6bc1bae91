"""The community's known places: what search offers instead of asking for coordinates.

Issue 16: "Près de (latitude,longitude)" asked members for numbers. The search form now lists
the places this node's own listings name (their coordinates averaged), plus "near me" from the
browser's geolocation when it has one (progressive enhancement, ``web/static/app.js``).
"""

from __future__ import annotations

from dataclasses import dataclass

from meshnode.services.context import NodeContext
from meshnode.store import listings as q

MAX_PLACES = 40


@dataclass(frozen=True)
class Place:
    """A choice for "near": its name and the ``lat,lon`` value search understands."""

    name: str
    near: str


async def known_places(ctx: NodeContext, limit: int = MAX_PLACES) -> list[Place]:
    """The places named in this community's listings, most used first, then by name."""
    rows = await q.known_places(ctx.store.reader, limit)
    return [Place(row.name, f"{row.lat:.4f},{row.lon:.4f}") for row in rows]
