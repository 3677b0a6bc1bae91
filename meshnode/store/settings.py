"""Community settings edited from the admin pages (key/value)."""

from __future__ import annotations

import aiosqlite

from meshnode.store.db import query


async def get_all(db: aiosqlite.Connection) -> dict[str, str]:
    """Every stored setting."""
    async with query(db, "SELECT key, value FROM community_settings") as cursor:
        return {row[0]: row[1] for row in await cursor.fetchall()}


async def put(db: aiosqlite.Connection, key: str, value: str) -> None:
    """Insert or replace one setting."""
    await db.execute(
        "INSERT INTO community_settings (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
