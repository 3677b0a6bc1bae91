"""Queries on messages between a local member and a member of another node, and on blocks."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query
from meshnode.store.messages import latest_with_unread


@dataclass(frozen=True)
class DirectMessageRow:
    """One message to or from a remote member (``direction`` is ``in`` or ``out``)."""

    id: int
    member_id: int
    member_username: str
    remote_actor: str
    remote_handle: str
    direction: str
    listing_id: str | None
    listing_title: str | None
    object_id: str
    in_reply_to: str | None
    body: str
    created_at: str
    read_at: str | None
    delivery: str | None  # outgoing: pending, done or failed (the delivery worker's row)


# ``delivery``: the state of an outgoing message's delivery row; its Create is
# ``<note id>/create`` (found through the unique index on activity_id).
_SELECT = (
    "SELECT d.id, d.member_id, m.username AS member_username, d.remote_actor,"
    " d.remote_handle, d.direction, d.listing_id, l.title AS listing_title, d.object_id,"
    " d.in_reply_to, d.body, d.created_at, d.read_at,"
    " (SELECT v.state FROM outbox_activities o JOIN deliveries v ON v.outbox_seq = o.seq"
    " WHERE o.activity_id = d.object_id || '/create' AND d.direction = 'out' LIMIT 1)"
    " AS delivery FROM direct_messages d"
    " JOIN members m ON m.id = d.member_id LEFT JOIN listings l ON l.id = d.listing_id"
)


async def insert_direct_message(
    db: aiosqlite.Connection, *, member_id: int, remote_actor: str, remote_handle: str,
    direction: str, listing_id: str | None, object_id: str, in_reply_to: str | None,
    body: str, created_at: str,
) -> int | None:
    """Store a message; returns its id, or None when ``object_id`` was stored before."""
    cursor = await db.execute(
        "INSERT INTO direct_messages (member_id, remote_actor, remote_handle, direction,"
        " listing_id, object_id, in_reply_to, body, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (object_id) DO NOTHING",
        (member_id, remote_actor, remote_handle, direction, listing_id, object_id,
         in_reply_to, body, created_at),
    )
    return cursor.lastrowid if cursor.rowcount else None


async def get_direct_message(db: aiosqlite.Connection, message_id: int
                             ) -> DirectMessageRow | None:
    """One message by id."""
    async with query(db, f"{_SELECT} WHERE d.id = ?", (message_id,)) as cursor:
        row = await cursor.fetchone()
    return DirectMessageRow(**dict(row)) if row else None


async def conversation(
    db: aiosqlite.Connection, member_id: int, remote_actor: str, limit: int = 200
) -> list[DirectMessageRow]:
    """The newest ``limit`` messages between a member and a remote actor, oldest first."""
    async with query(db,
        f"{_SELECT} WHERE d.member_id = ? AND d.remote_actor = ? ORDER BY d.id DESC LIMIT ?",
        (member_id, remote_actor, limit),
    ) as cursor:
        newest_first = [DirectMessageRow(**dict(row)) for row in await cursor.fetchall()]
    return newest_first[::-1]


async def latest_per_conversation(
    db: aiosqlite.Connection, member_id: int, limit: int = 50
) -> list[tuple[DirectMessageRow, int]]:
    """The newest message with each remote actor, newest first, with its unread count."""
    sql = (
        "WITH convo AS (SELECT remote_actor, max(id) AS last_id,"
        " sum(direction = 'in' AND read_at IS NULL) AS unread FROM direct_messages"
        " WHERE member_id = :me GROUP BY remote_actor)"
        " SELECT c.unread, d.id, d.member_id, m.username AS member_username, d.remote_actor,"
        " d.remote_handle, d.direction, d.listing_id, l.title AS listing_title, d.object_id,"
        " d.in_reply_to, d.body, d.created_at, d.read_at, NULL AS delivery FROM convo c"
        " JOIN direct_messages d ON d.id = c.last_id JOIN members m ON m.id = d.member_id"
        " LEFT JOIN listings l ON l.id = d.listing_id ORDER BY d.id DESC LIMIT :limit"
    )
    return await latest_with_unread(db, sql, {"me": member_id, "limit": limit}, DirectMessageRow)


async def last_received(db: aiosqlite.Connection, member_id: int, remote_actor: str
                        ) -> str | None:
    """The object id of the newest message the member received from the actor (threads)."""
    async with query(db,
        "SELECT object_id FROM direct_messages WHERE member_id = ? AND remote_actor = ?"
        " AND direction = 'in' ORDER BY id DESC LIMIT 1", (member_id, remote_actor),
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def received_since(db: aiosqlite.Connection, member_id: int, remote_actor: str,
                         since: str) -> int:
    """How many messages the actor sent the member since ``since`` (the hourly cap)."""
    async with query(db,
        "SELECT count(*) FROM direct_messages WHERE member_id = ? AND remote_actor = ?"
        " AND direction = 'in' AND created_at >= ?", (member_id, remote_actor, since),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def unread_count(db: aiosqlite.Connection, member_id: int) -> int:
    """Messages from other nodes waiting for the member."""
    async with query(db,
        "SELECT count(*) FROM direct_messages WHERE member_id = ? AND direction = 'in'"
        " AND read_at IS NULL", (member_id,),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def mark_read(db: aiosqlite.Connection, member_id: int, remote_actor: str,
                    now: str) -> int:
    """Mark what the actor sent the member as read."""
    cursor = await db.execute(
        "UPDATE direct_messages SET read_at = ? WHERE member_id = ? AND remote_actor = ?"
        " AND direction = 'in' AND read_at IS NULL", (now, member_id, remote_actor))
    return cursor.rowcount


async def block(db: aiosqlite.Connection, member_id: int, actor: str, now: str) -> None:
    """The member no longer exchanges messages with ``actor``."""
    await db.execute(
        "INSERT INTO member_blocks (member_id, actor, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING", (member_id, actor, now))


async def unblock(db: aiosqlite.Connection, member_id: int, actor: str) -> int:
    """Lift a block; returns how many rows were removed."""
    cursor = await db.execute(
        "DELETE FROM member_blocks WHERE member_id = ? AND actor = ?", (member_id, actor))
    return cursor.rowcount


async def is_blocked(db: aiosqlite.Connection, member_id: int, actor: str) -> bool:
    """Whether the member blocked ``actor``."""
    async with query(db,
        "SELECT 1 FROM member_blocks WHERE member_id = ? AND actor = ?", (member_id, actor),
    ) as cursor:
        return await cursor.fetchone() is not None


async def actor_of_handle(db: aiosqlite.Connection, member_id: int, handle: str) -> str | None:
    """The remote actor behind ``handle`` in the member's newest conversation with it."""
    async with query(db,
        "SELECT remote_actor FROM direct_messages WHERE member_id = ? AND remote_handle = ?"
        " ORDER BY id DESC LIMIT 1", (member_id, handle),
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None
