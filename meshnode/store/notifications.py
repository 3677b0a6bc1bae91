"""Queries on the notification centre: items per member, unread counts, muted types."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class NotificationRow:
    """One thing a member was told about."""

    id: int
    member_id: int
    type: str
    ref: str
    target_url: str
    detail: str
    amount: int | None
    created_at: str
    read_at: str | None


async def insert_notification(
    db: aiosqlite.Connection, *, member_id: int, type_: str, ref: str, target_url: str,
    detail: str, created_at: str, amount: int | None = None,
) -> int | None:
    """Store one item unless the member muted its type; returns its id (None: muted)."""
    cursor = await db.execute(
        "INSERT INTO notifications (member_id, type, ref, target_url, detail, amount,"
        " created_at) SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM"
        " notification_muted WHERE member_id = ? AND type = ?)",
        (member_id, type_, ref, target_url, detail, amount, created_at, member_id, type_),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


async def list_for_member(
    db: aiosqlite.Connection, member_id: int, *, before: int | None, limit: int,
    unread_only: bool = False,
) -> list[NotificationRow]:
    """The member's items, newest first; ``before`` is an id cursor."""
    sql = ("SELECT id, member_id, type, ref, target_url, detail, amount, created_at, read_at"
           " FROM notifications WHERE member_id = ? AND (? IS NULL OR id < ?)"
           " AND (? = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT ?")
    params = (member_id, before, before, int(unread_only), limit)
    async with query(db, sql, params) as cursor:
        return [NotificationRow(**dict(row)) for row in await cursor.fetchall()]


async def unread_count(db: aiosqlite.Connection, member_id: int, cap: int = -1) -> int:
    """Items not yet read by the member, counting at most ``cap`` (-1: all)."""
    async with query(db, "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE"
                     " member_id = ? AND read_at IS NULL LIMIT ?)", (member_id, cap)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def mark_read(
    db: aiosqlite.Connection, member_id: int, ids: Sequence[int] | None, now: str
) -> int:
    """Mark the member's items read (all of them when ``ids`` is None); returns how many."""
    cursor = await db.execute(
        "UPDATE notifications SET read_at = ? WHERE member_id = ? AND read_at IS NULL"
        " AND (? IS NULL OR id IN (SELECT value FROM json_each(?)))",
        (now, member_id, None if ids is None else 1, json.dumps(list(ids or []))),
    )
    return cursor.rowcount


async def target_of(db: aiosqlite.Connection, member_id: int, item_id: int) -> str | None:
    """The page an item of this member points to (None: no such item of theirs)."""
    async with query(db, "SELECT target_url FROM notifications WHERE id = ? AND member_id = ?",
                     (item_id, member_id)) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def muted_types(db: aiosqlite.Connection, member_id: int) -> set[str]:
    """The types the member turned off."""
    async with query(db, "SELECT type FROM notification_muted WHERE member_id = ?",
                     (member_id,)) as cursor:
        return {str(row[0]) for row in await cursor.fetchall()}


async def set_muted(db: aiosqlite.Connection, member_id: int, types: Sequence[str]) -> None:
    """Replace the member's muted types."""
    await db.execute("DELETE FROM notification_muted WHERE member_id = ?", (member_id,))
    await db.executemany("INSERT INTO notification_muted (member_id, type) VALUES (?, ?)",
                         [(member_id, t) for t in types])


async def member_of_account(db: aiosqlite.Connection, account: str) -> int | None:
    """The member owning a ledger account (None for system and trust-line accounts)."""
    async with query(db, "SELECT member_id FROM ledger_accounts WHERE name = ?",
                     (account,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else None


async def active_admin_ids(db: aiosqlite.Connection) -> list[int]:
    """Every active administrator (they receive trust-line proposals and reports)."""
    async with query(db, "SELECT id FROM members WHERE is_admin = 1 AND disabled_at IS NULL"
                     " ORDER BY id") as cursor:
        return [int(row[0]) for row in await cursor.fetchall()]


async def expiring_unwarned(
    db: aiosqlite.Connection, *, now: str, until: str, window_seconds: int = 0,
    limit: int = 200,
) -> list[tuple[str, int, str]]:
    """Active local listings expiring in ``[now, until)`` whose author was not yet warned
    of this expiry (a renewed listing is warned again before its new date):
    (listing id, author id, title). Reads the ``listings_local_expiry`` index."""
    async with query(db,
        "SELECT l.id, l.author_id, l.title FROM listings l WHERE l.is_local = 1"
        " AND l.author_id IS NOT NULL AND l.status = 'active' AND l.hidden = 0"
        " AND l.expires_at >= ? AND l.expires_at < ? AND NOT EXISTS (SELECT 1 FROM"
        " notifications n WHERE n.member_id = l.author_id AND n.type = 'listing_expiring'"
        " AND n.ref = l.id AND n.created_at >= strftime('%Y-%m-%dT%H:%M:%SZ', l.expires_at, ?))"
        " AND NOT EXISTS (SELECT 1 FROM"
        " notification_muted m WHERE m.member_id = l.author_id AND m.type = 'listing_expiring')"
        " ORDER BY l.expires_at LIMIT ?", (now, until, f"-{window_seconds} seconds", limit),
    ) as cursor:
        return [(str(r[0]), int(r[1]), str(r[2])) for r in await cursor.fetchall()]


async def by_ids(db: aiosqlite.Connection, member_id: int,
                 ids: Sequence[int]) -> list[NotificationRow]:
    """The member's items among ``ids``, oldest first (others' ids are ignored)."""
    async with query(db,
        "SELECT id, member_id, type, ref, target_url, detail, amount, created_at, read_at"
        " FROM notifications WHERE member_id = ? AND id IN (SELECT value FROM json_each(?))"
        " ORDER BY id", (member_id, json.dumps(list(ids)))) as cursor:
        return [NotificationRow(**dict(row)) for row in await cursor.fetchall()]


async def prune(db: aiosqlite.Connection, *, read_before: str, keep: int) -> int:
    """Delete read items created before ``read_before``, then each member's items beyond
    their newest ``keep`` (read or not); returns how many went. The cap reads the
    ``notifications_member`` index, and only for members over it."""
    cursor = await db.execute(
        "DELETE FROM notifications WHERE read_at IS NOT NULL AND created_at < ?", (read_before,))
    gone = cursor.rowcount
    async with query(db, "SELECT member_id FROM notifications GROUP BY member_id"
                     " HAVING count(*) > ?", (keep,)) as found:
        over = [int(row[0]) for row in await found.fetchall()]
    for member_id in over:
        cursor = await db.execute(
            "DELETE FROM notifications WHERE member_id = ? AND id <= (SELECT id FROM"
            " notifications WHERE member_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (member_id, member_id, keep))
        gone += cursor.rowcount
    return gone
