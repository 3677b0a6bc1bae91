"""Queries on waiting lists of lent items and the reputation count that gates bookings
(callers hold the transaction when they write)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query

_LIVE = "state IN ('waiting', 'notified')"


@dataclass(frozen=True)
class QueueRow:
    """One member's place in one listing's queue, as stored."""

    id: int
    listing_id: str
    member_id: int | None  # None: a member of another community (``remote_actor``)
    state: str
    joined_at: str
    notified_at: str | None
    confirm_by: str | None
    deal_id: str | None
    updated_at: str
    remote_actor: str | None = None
    remote_origin: str | None = None
    join_id: str | None = None


async def live_entries(db: aiosqlite.Connection, listing_id: str) -> list[QueueRow]:
    """The listing's waiting and notified places, in joining order."""
    async with query(db, f"SELECT * FROM listing_queue WHERE listing_id = ? AND {_LIVE}"  # noqa: S608
                     " ORDER BY id", (listing_id,)) as rows:
        return [QueueRow(**dict(r)) for r in await rows.fetchall()]


async def live_entry(db: aiosqlite.Connection, listing_id: str, member_id: int
                     ) -> QueueRow | None:
    """The member's live place in the listing's queue, if any."""
    async with query(db, "SELECT * FROM listing_queue WHERE listing_id = ? AND member_id = ?"  # noqa: S608
                     f" AND {_LIVE}", (listing_id, member_id)) as rows:
        row = await rows.fetchone()
    return QueueRow(**dict(row)) if row else None


async def insert_entry(db: aiosqlite.Connection, *, listing_id: str, member_id: int,
                       now: str) -> int:
    """Add a waiting place at the end of the line; its id."""
    cursor = await db.execute(
        "INSERT INTO listing_queue (listing_id, member_id, state, joined_at, updated_at)"
        " VALUES (?, ?, 'waiting', ?, ?)", (listing_id, member_id, now, now))
    if cursor.lastrowid is None:
        raise RuntimeError("no row id for the new queue place")
    return cursor.lastrowid


async def insert_remote_entry(db: aiosqlite.Connection, *, listing_id: str, actor: str,
                              origin: str, join_id: str, now: str) -> int:
    """Add a member of another community at the end of the line (their signed Join)."""
    cursor = await db.execute(
        "INSERT INTO listing_queue (listing_id, remote_actor, remote_origin, join_id, state,"
        " joined_at, updated_at) VALUES (?, ?, ?, ?, 'waiting', ?, ?)",
        (listing_id, actor, origin, join_id, now, now))
    if cursor.lastrowid is None:
        raise RuntimeError("no row id for the new queue place")
    return cursor.lastrowid


async def live_remote_entry(db: aiosqlite.Connection, listing_id: str, actor: str
                            ) -> QueueRow | None:
    """A remote actor's live place in the listing's queue, if any."""
    async with query(db, "SELECT * FROM listing_queue WHERE listing_id = ?"  # noqa: S608
                     f" AND remote_actor = ? AND {_LIVE}", (listing_id, actor)) as rows:
        row = await rows.fetchone()
    return QueueRow(**dict(row)) if row else None


async def live_from_origin(db: aiosqlite.Connection, origin: str,
                           listing_id: str | None = None) -> int:
    """Live places held by members of ``origin`` (in one listing, or in all)."""
    sql = ("SELECT COUNT(*) FROM listing_queue WHERE remote_origin = ?"  # noqa: S608
           f" AND {_LIVE}")
    params: tuple[str, ...] = (origin,)
    if listing_id is not None:
        sql, params = sql + " AND listing_id = ?", (origin, listing_id)
    async with query(db, sql, params) as rows:
        row = await rows.fetchone()
    return int(row[0]) if row else 0


async def move_entry(db: aiosqlite.Connection, entry_id: int, *, expect: str, state: str,
                     now: str, confirm_by: str | None = None,
                     deal_id: str | None = None) -> bool:
    """Move a place from ``expect`` to ``state``; False if it moved meanwhile. A turn
    records when it was given and its deadline; a confirmation, the booking it made."""
    notified_at = now if state == "notified" else None
    cursor = await db.execute(
        "UPDATE listing_queue SET state = ?, updated_at = ?,"
        " notified_at = COALESCE(?, notified_at), confirm_by = COALESCE(?, confirm_by),"
        " deal_id = COALESCE(?, deal_id) WHERE id = ? AND state = ?",
        (state, now, notified_at, confirm_by, deal_id, entry_id, expect))
    return cursor.rowcount == 1


async def queued_listings(db: aiosqlite.Connection, limit: int = 200) -> list[str]:
    """Listings that have anyone waiting or holding a turn (the worker's round)."""
    async with query(db, f"SELECT DISTINCT listing_id FROM listing_queue WHERE {_LIVE}"  # noqa: S608
                     " LIMIT ?", (limit,)) as rows:
        return [str(r[0]) for r in await rows.fetchall()]


async def item_out(db: aiosqlite.Connection, listing_id: str, now: str) -> bool:
    """A loan of the listing is under way: handed over, or accepted with its slot begun
    (it stays out until the lender marks it returned or the deal ends)."""
    async with query(db, "SELECT 1 FROM deals WHERE listing_id = ? AND (state = 'in_progress'"
                     " OR (state = 'accepted' AND slot_start IS NOT NULL AND slot_start <= ?))"
                     " LIMIT 1", (listing_id, now)) as rows:
        return await rows.fetchone() is not None


async def turn_in_use(db: aiosqlite.Connection, listing_id: str) -> bool:
    """The last turn's booking is still under way (asked, accepted or out): the next in line
    waits until that loan is over, as if the item were out."""
    async with query(db, "SELECT 1 FROM listing_queue q JOIN deals d ON d.id = q.deal_id"
                     " WHERE q.listing_id = ? AND q.state = 'confirmed'"
                     " AND d.state IN ('requested', 'accepted', 'in_progress') LIMIT 1",
                     (listing_id,)) as rows:
        return await rows.fetchone() is not None


async def completed_without_no_show(db: aiosqlite.Connection, actor_uri: str) -> int:
    """Completed deals this node knows ``actor_uri`` took part in (either side), less those
    where the other party reported them absent (signed feedback with ``no_show``)."""
    async with query(db, "SELECT COUNT(*) FROM deals d WHERE d.state = 'completed'"
                     " AND (d.booker_uri = ?1 OR d.author_uri = ?1) AND NOT EXISTS ("
                     " SELECT 1 FROM deal_feedback f WHERE f.deal_id = d.id"
                     " AND f.subject_uri = ?1 AND f.no_show = 1)", (actor_uri,)) as rows:
        row = await rows.fetchone()
    return int(row[0]) if row else 0
