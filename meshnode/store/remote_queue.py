"""Queries on our members' places in other communities' waiting lists, as the lender's node
last told them (callers hold the transaction when they write)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query

LIVE = ("joining", "waiting", "notified")
_LIVE = "state IN ('joining', 'waiting', 'notified')"


@dataclass(frozen=True)
class RemotePlaceRow:
    """One member's place in a remote listing's queue (``listing_id``: our copy's id)."""

    id: int
    listing_id: str
    member_id: int
    join_id: str
    state: str
    position: int | None
    confirm_by: str | None
    reason: str
    created_at: str
    updated_at: str
    listing_title: str = ""
    listing_status: str = ""


_SELECT = ("SELECT p.*, l.title AS listing_title, l.status AS listing_status"
           " FROM remote_queue_places p"
           " JOIN listings l ON l.id = p.listing_id")


async def live_place(db: aiosqlite.Connection, listing_id: str, member_id: int
                     ) -> RemotePlaceRow | None:
    """The member's live place in the remote listing's queue, if any."""
    async with query(db, f"{_SELECT} WHERE p.listing_id = ? AND p.member_id = ?"
                     f" AND p.{_LIVE}", (listing_id, member_id)) as rows:
        row = await rows.fetchone()
    return RemotePlaceRow(**dict(row)) if row else None


async def latest_place(db: aiosqlite.Connection, listing_id: str, member_id: int
                       ) -> RemotePlaceRow | None:
    """The member's newest place in the remote listing's queue, live or not."""
    async with query(db, f"{_SELECT} WHERE p.listing_id = ? AND p.member_id = ?"
                     " ORDER BY p.id DESC LIMIT 1", (listing_id, member_id)) as rows:
        row = await rows.fetchone()
    return RemotePlaceRow(**dict(row)) if row else None


async def place_by_join(db: aiosqlite.Connection, join_id: str) -> RemotePlaceRow | None:
    """The place our Join ``join_id`` asked for."""
    async with query(db, f"{_SELECT} WHERE p.join_id = ?", (join_id,)) as rows:
        row = await rows.fetchone()
    return RemotePlaceRow(**dict(row)) if row else None


async def member_places(db: aiosqlite.Connection, member_id: int, limit: int = 50
                        ) -> list[RemotePlaceRow]:
    """The member's newest places in other communities' queues (live ones first)."""
    async with query(db, f"{_SELECT} WHERE p.member_id = ?"
                     f" ORDER BY p.{_LIVE} DESC, p.id DESC LIMIT ?",
                     (member_id, limit)) as rows:
        return [RemotePlaceRow(**dict(r)) for r in await rows.fetchall()]


async def insert_place(db: aiosqlite.Connection, *, listing_id: str, member_id: int,
                       join_id: str, now: str) -> int:
    """Record a Join on its way (state ``joining``)."""
    cursor = await db.execute(
        "INSERT INTO remote_queue_places (listing_id, member_id, join_id, state, created_at,"
        " updated_at) VALUES (?, ?, ?, 'joining', ?, ?)",
        (listing_id, member_id, join_id, now, now))
    if cursor.lastrowid is None:
        raise RuntimeError("no row id for the new place")
    return cursor.lastrowid


async def set_place(db: aiosqlite.Connection, place_id: int, *, state: str,
                    position: int | None, confirm_by: str | None, reason: str,
                    now: str) -> bool:
    """Record what the lender's node told (or our member did); False if already terminal."""
    cursor = await db.execute(
        "UPDATE remote_queue_places SET state = ?, position = ?, confirm_by = ?,"  # noqa: S608
        f" reason = ?, updated_at = ? WHERE id = ? AND {_LIVE}",
        (state, position, confirm_by, reason, now, place_id))
    return cursor.rowcount == 1
