"""Queries behind the network map and starter trust lines (issue 19)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from meshnode.store.db import query

# mDNS neighbours that proved their key (``0005_discovery.sql``), whatever peering did since.
VERIFIED_NEIGHBOUR = ("verified", "peering_requested", "peered")


async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    async with query(db, sql, params) as cursor:
        return list(await cursor.fetchall())


async def line_balances(db: aiosqlite.Connection) -> dict[str, int]:
    """Each trust line's current balance (its node account on our ledger), by line id."""
    rows = await _all(db, "SELECT l.id, a.balance FROM iou_lines l JOIN ledger_accounts a"
                          " ON a.name = l.account")
    return {row[0]: int(row[1]) for row in rows}


async def line_volumes(db: aiosqlite.Connection, since: str) -> dict[str, tuple[int, int]]:
    """Per line: (sum of |our change|, number of transfers) committed since ``since``."""
    rows = await _all(db, "SELECT line_id, coalesce(sum(abs(local_delta)), 0), count(*)"
                          " FROM iou_line_moves WHERE created_at >= ? GROUP BY line_id",
                      (since,))
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


async def heard_origins(db: aiosqlite.Connection, limit: int) -> list[tuple[str, int]]:
    """Origins of other nodes' listings stored here (peers' and relayed ones), with how many
    are active, most first."""
    rows = await _all(db, "SELECT origin, sum(status = 'active') AS n FROM listings"
                          " WHERE is_local = 0 GROUP BY origin ORDER BY n DESC, origin LIMIT ?",
                      (limit,))
    return [(row[0], int(row[1] or 0)) for row in rows]


async def verified_neighbour_actors(db: aiosqlite.Connection) -> list[str]:
    """Community actors of mDNS neighbours that proved their key and are not blocked."""
    rows = await _all(db, "SELECT DISTINCT actor_url FROM neighbours WHERE blocked = 0 AND"
                          " actor_url IS NOT NULL AND status IN (?, ?, ?)"
                          " ORDER BY actor_url", VERIFIED_NEIGHBOUR)
    return [row[0] for row in rows]


async def peered_actors(db: aiosqlite.Connection) -> list[str]:
    """Community actors of peers we follow (peered) and have not blocked."""
    rows = await _all(db, "SELECT actor_id FROM peers WHERE out_state = 'peered' AND"
                          " blocked = 0 AND actor_id IS NOT NULL ORDER BY origin")
    return [row[0] for row in rows]


async def blocked_origins(db: aiosqlite.Connection) -> set[str]:
    """Origins of blocked peers."""
    return {row[0] for row in await _all(db, "SELECT origin FROM peers WHERE blocked = 1")}


async def starter_offered(db: aiosqlite.Connection) -> set[str]:
    """Origins already offered a starter line (whatever became of it)."""
    return {row[0] for row in await _all(db, "SELECT peer_origin FROM starter_offers")}


async def line_peers(db: aiosqlite.Connection) -> list[tuple[str | None, str]]:
    """(peer origin, requested text) of every trust line, any state."""
    return [(row[0], row[1]) for row in await _all(
        db, "SELECT peer_origin, requested FROM iou_lines")]


async def record_starter_offer(db: aiosqlite.Connection, *, origin: str, actor: str,
                               line_id: str, now: str) -> None:
    """Remember that ``origin`` was offered the starter line ``line_id``."""
    await db.execute("INSERT INTO starter_offers (peer_origin, peer_actor, line_id, offered_at)"
                     " VALUES (?, ?, ?, ?)", (origin, actor, line_id, now))


async def starter_line_ids(db: aiosqlite.Connection) -> set[str]:
    """Ids of the lines this node offered as starter lines."""
    return {row[0] for row in await _all(db, "SELECT line_id FROM starter_offers")}


async def replace_peer_links(db: aiosqlite.Connection, source: str, targets: Sequence[str],
                             now: str) -> None:
    """What ``source`` (a peer's origin) follows now, replacing what it followed before."""
    await db.execute("DELETE FROM peer_links WHERE source = ?", (source,))
    await db.executemany("INSERT OR IGNORE INTO peer_links (source, target, seen_at)"
                         " VALUES (?, ?, ?)", [(source, target, now) for target in targets])


async def peer_links(db: aiosqlite.Connection) -> list[tuple[str, str]]:
    """(peer origin, origin it follows) pairs, of peers we still follow and have not blocked."""
    rows = await _all(db, "SELECT l.source, l.target FROM peer_links l JOIN peers p"
                          " ON p.origin = l.source WHERE p.blocked = 0 AND p.out_state ="
                          " 'peered' ORDER BY l.source, l.target")
    return [(row[0], row[1]) for row in rows]
