"""Queries for blocking a whole node: what it would touch, and hiding its listings
reversibly (``block_hidden_listings`` remembers which ones the block hid)."""

from __future__ import annotations

import aiosqlite

from meshnode.store.db import query


def _prefix(origin: str) -> str:
    # origins have no trailing slash; "/" stops http://a.test matching http://a.test.evil
    return origin.rstrip("/") + "/%"


async def _count(db: aiosqlite.Connection, sql: str, params: tuple[object, ...]) -> int:
    async with query(db, sql, params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def visible_listings(db: aiosqlite.Connection, origin: str) -> int:
    """Remote listings from ``origin`` members can see now."""
    return await _count(db, "SELECT count(*) FROM listings WHERE is_local = 0 AND origin = ?"
                            " AND hidden = 0", (origin,))


async def message_counts(db: aiosqlite.Connection, origin: str) -> tuple[int, int]:
    """(conversations, messages) our members have with members of ``origin``."""
    async with query(db, "SELECT count(DISTINCT member_id || ' ' || remote_actor), count(*)"
                         " FROM direct_messages WHERE remote_actor LIKE ?",
                     (_prefix(origin),)) as cursor:
        row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def open_deal_ids(db: aiosqlite.Connection, origin: str) -> list[str]:
    """Deals not finished whose other party is a member of ``origin``, oldest first."""
    like = _prefix(origin)
    async with query(db, "SELECT id FROM deals WHERE state IN ('requested', 'accepted',"
                         " 'in_progress') AND (booker_uri LIKE ? OR author_uri LIKE ?)"
                         " ORDER BY created_at", (like, like)) as cursor:
        return [str(row[0]) for row in await cursor.fetchall()]


async def held_for(db: aiosqlite.Connection, reason_prefix: str) -> int:
    """Sum of ledger holds whose reason starts with ``reason_prefix`` (a deal's holds)."""
    return await _count(db, "SELECT coalesce(sum(amount), 0) FROM ledger_holds"
                            " WHERE reason LIKE ?", (reason_prefix + "%",))


async def hide_listings(db: aiosqlite.Connection, origin: str, now: str) -> int:
    """Hide every visible listing of ``origin`` and remember it; returns how many."""
    await db.execute(
        "INSERT OR IGNORE INTO block_hidden_listings (listing_id, origin, hidden_at)"
        " SELECT id, origin, ? FROM listings WHERE is_local = 0 AND origin = ? AND hidden = 0",
        (now, origin))
    cursor = await db.execute(
        "UPDATE listings SET hidden = 1 WHERE id IN (SELECT listing_id FROM"
        " block_hidden_listings WHERE origin = ?) AND hidden = 0", (origin,))
    return cursor.rowcount


async def unhide_listings(db: aiosqlite.Connection, origin: str) -> int:
    """Show again the listings the block of ``origin`` hid; returns how many."""
    cursor = await db.execute(
        "UPDATE listings SET hidden = 0 WHERE id IN (SELECT listing_id FROM"
        " block_hidden_listings WHERE origin = ?)", (origin,))
    await db.execute("DELETE FROM block_hidden_listings WHERE origin = ?", (origin,))
    return cursor.rowcount


async def remember_frozen_line(db: aiosqlite.Connection, line_id: str, origin: str) -> None:
    """Record that blocking ``origin`` froze this line."""
    await db.execute("INSERT OR IGNORE INTO block_frozen_lines (line_id, origin) VALUES (?, ?)",
                     (line_id, origin))


async def take_frozen_lines(db: aiosqlite.Connection, origin: str) -> list[str]:
    """The lines blocking ``origin`` froze (forgotten as they are returned)."""
    async with query(db, "SELECT line_id FROM block_frozen_lines WHERE origin = ?",
                     (origin,)) as cursor:
        found = [str(row[0]) for row in await cursor.fetchall()]
    await db.execute("DELETE FROM block_frozen_lines WHERE origin = ?", (origin,))
    return found
