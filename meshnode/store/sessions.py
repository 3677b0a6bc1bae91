"""Queries on browser sessions (``web_sessions``)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query
from meshnode.store.members import MemberRow, member_from_row


@dataclass(frozen=True)
class SessionRow:
    """A live session and its member."""

    id: str
    csrf_token: str
    expires_at: str
    member: MemberRow


async def insert_session(
    db: aiosqlite.Connection, *, session_id: str, member_id: int, csrf_token: str,
    created_at: str, expires_at: str,
) -> None:
    """Store a new session by the hash of its cookie secret."""
    await db.execute(
        "INSERT INTO web_sessions (id, member_id, csrf_token, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (session_id, member_id, csrf_token, created_at, expires_at),
    )


async def get_live_session(
    db: aiosqlite.Connection, session_id: str, now: str
) -> SessionRow | None:
    """The unrevoked, unexpired session with this id, joined with its member."""
    async with query(db,
        "SELECT s.id AS session_id, s.csrf_token, s.expires_at AS session_expires, m.*"
        " FROM web_sessions s JOIN members m ON m.id = s.member_id"
        " WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ?",
        (session_id, now),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return SessionRow(
        id=row["session_id"], csrf_token=row["csrf_token"], expires_at=row["session_expires"],
        member=member_from_row(row),
    )


async def revoke_session(db: aiosqlite.Connection, session_id: str, now: str) -> None:
    """Revoke one session (logout)."""
    await db.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (now, session_id),
    )


async def revoke_member_sessions(
    db: aiosqlite.Connection, member_id: int, now: str, *, keep: str | None = None
) -> int:
    """Revoke every session of a member except ``keep``; return how many."""
    cursor = await db.execute(
        "UPDATE web_sessions SET revoked_at = ? WHERE member_id = ? AND revoked_at IS NULL"
        " AND id IS NOT ?",
        (now, member_id, keep),
    )
    return cursor.rowcount


async def delete_expired(db: aiosqlite.Connection, now: str) -> int:
    """Forget sessions that expired or were revoked (housekeeping)."""
    cursor = await db.execute(
        "DELETE FROM web_sessions WHERE expires_at <= ? OR revoked_at IS NOT NULL", (now,)
    )
    return cursor.rowcount
