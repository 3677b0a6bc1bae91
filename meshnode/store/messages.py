"""Queries on member-to-member messages about listings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosqlite

from meshnode.store.db import query

Row = TypeVar("Row")


async def latest_with_unread(db: aiosqlite.Connection, sql: str, params: Mapping[str, Any],
                             make: Callable[..., Row]) -> list[tuple[Row, int]]:
    """Run a conversation-list query whose rows carry an ``unread`` count beside the last
    message's columns; returns (message, unread) pairs."""
    async with query(db, sql, params) as cursor:
        rows = await cursor.fetchall()
    result = []
    for row in rows:
        data = dict(row)
        unread = int(data.pop("unread") or 0)
        result.append((make(**data), unread))
    return result


@dataclass(frozen=True)
class MessageRow:
    """One message, with the names needed to display it."""

    id: int
    listing_id: str
    listing_title: str
    sender_id: int
    sender_username: str
    recipient_id: int
    recipient_username: str
    body: str
    created_at: str
    read_at: str | None


_SELECT = (
    "SELECT g.id, g.listing_id, l.title AS listing_title, g.sender_id,"
    " s.username AS sender_username, g.recipient_id, r.username AS recipient_username,"
    " g.body, g.created_at, g.read_at FROM messages g"
    " JOIN listings l ON l.id = g.listing_id JOIN members s ON s.id = g.sender_id"
    " JOIN members r ON r.id = g.recipient_id"
)


async def insert_message(
    db: aiosqlite.Connection, *, listing_id: str, sender_id: int, recipient_id: int, body: str,
    created_at: str,
) -> int:
    """Store a message; returns its id."""
    cursor = await db.execute(
        "INSERT INTO messages (listing_id, sender_id, recipient_id, body, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (listing_id, sender_id, recipient_id, body, created_at),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def unread_count(db: aiosqlite.Connection, member_id: int) -> int:
    """Messages addressed to the member and not yet read."""
    async with query(db,
        "SELECT count(*) FROM messages WHERE recipient_id = ? AND read_at IS NULL", (member_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def latest_per_conversation(
    db: aiosqlite.Connection, member_id: int, limit: int = 50
) -> list[tuple[MessageRow, int]]:
    """The newest message of each (listing, other member) conversation, with its unread count."""
    sql = (
        "WITH convo AS (SELECT listing_id,"
        " CASE WHEN sender_id = :me THEN recipient_id ELSE sender_id END AS other,"
        " max(id) AS last_id, sum(recipient_id = :me AND read_at IS NULL) AS unread"
        " FROM messages WHERE sender_id = :me OR recipient_id = :me GROUP BY 1, 2)"
        " SELECT c.unread, g.id, g.listing_id, l.title AS listing_title, g.sender_id,"
        " s.username AS sender_username, g.recipient_id, r.username AS recipient_username,"
        " g.body, g.created_at, g.read_at FROM convo c JOIN messages g ON g.id = c.last_id"
        " JOIN listings l ON l.id = g.listing_id JOIN members s ON s.id = g.sender_id"
        " JOIN members r ON r.id = g.recipient_id ORDER BY g.id DESC LIMIT :limit"
    )
    return await latest_with_unread(db, sql, {"me": member_id, "limit": limit}, MessageRow)


async def conversation(
    db: aiosqlite.Connection, listing_id: str, member_id: int, other_id: int, limit: int = 200
) -> list[MessageRow]:
    """Messages between two members about one listing, oldest first."""
    async with query(db,
        f"{_SELECT} WHERE g.listing_id = ? AND ((g.sender_id = ? AND g.recipient_id = ?)"
        " OR (g.sender_id = ? AND g.recipient_id = ?)) ORDER BY g.id LIMIT ?",
        (listing_id, member_id, other_id, other_id, member_id, limit),
    ) as cursor:
        return [MessageRow(**dict(row)) for row in await cursor.fetchall()]


async def mark_read(
    db: aiosqlite.Connection, listing_id: str, recipient_id: int, sender_id: int, now: str
) -> int:
    """Mark a conversation's messages to ``recipient_id`` as read."""
    cursor = await db.execute(
        "UPDATE messages SET read_at = ? WHERE listing_id = ? AND recipient_id = ?"
        " AND sender_id = ? AND read_at IS NULL",
        (now, listing_id, recipient_id, sender_id),
    )
    return cursor.rowcount


async def between(
    db: aiosqlite.Connection, member_id: int, other_id: int, limit: int = 200
) -> list[MessageRow]:
    """The newest ``limit`` messages between two members, about any listing, oldest first."""
    async with query(db,
        f"{_SELECT} WHERE (g.sender_id = ? AND g.recipient_id = ?)"
        " OR (g.sender_id = ? AND g.recipient_id = ?) ORDER BY g.id DESC LIMIT ?",
        (member_id, other_id, other_id, member_id, limit),
    ) as cursor:
        newest_first = [MessageRow(**dict(row)) for row in await cursor.fetchall()]
    return newest_first[::-1]


async def mark_read_from(db: aiosqlite.Connection, recipient_id: int, sender_id: int,
                         now: str) -> int:
    """Mark every message ``sender_id`` sent ``recipient_id`` as read, whatever the listing."""
    cursor = await db.execute(
        "UPDATE messages SET read_at = ? WHERE recipient_id = ? AND sender_id = ?"
        " AND read_at IS NULL", (now, recipient_id, sender_id))
    return cursor.rowcount


async def get_message(db: aiosqlite.Connection, message_id: int) -> MessageRow | None:
    """One message by id."""
    async with query(db, f"{_SELECT} WHERE g.id = ?", (message_id,)) as cursor:
        row = await cursor.fetchone()
    return MessageRow(**dict(row)) if row else None
