"""The navigation's unread counts, read in one statement (every member page shows them)."""

from __future__ import annotations

import aiosqlite

from meshnode.store.db import query


async def navigation_counts(db: aiosqlite.Connection, member_id: int,
                            notification_cap: int) -> tuple[int, int]:
    """(unread messages, local and from other nodes; unread notifications, counted up to
    ``notification_cap``): the same counts as ``messages.unread_count``,
    ``direct_messages.unread_count`` and ``notifications.unread_count``, in one round trip
    to the reader thread instead of three (issue 17)."""
    async with query(db,
        "SELECT (SELECT count(*) FROM messages WHERE recipient_id = ? AND read_at IS NULL)"
        " + (SELECT count(*) FROM direct_messages WHERE member_id = ? AND direction = 'in'"
        " AND read_at IS NULL),"
        " (SELECT count(*) FROM (SELECT 1 FROM notifications WHERE member_id = ?"
        " AND read_at IS NULL LIMIT ?))",
        (member_id, member_id, member_id, notification_cap),
    ) as cursor:
        row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
