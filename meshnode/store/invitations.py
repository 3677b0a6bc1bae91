"""Queries on invitation links."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class InvitationRow:
    """An invitation (the link secret itself is never stored)."""

    id: str
    created_by: int | None
    note: str
    created_at: str
    expires_at: str
    used_at: str | None
    used_by: int | None
    revoked_at: str | None
    created_by_username: str | None = None
    used_by_username: str | None = None


_SELECT = (
    "SELECT i.id, i.created_by, i.note, i.created_at, i.expires_at, i.used_at, i.used_by,"
    " i.revoked_at, c.username AS created_by_username, u.username AS used_by_username"
    " FROM invitations i LEFT JOIN members c ON c.id = i.created_by"
    " LEFT JOIN members u ON u.id = i.used_by"
)


async def insert_invitation(
    db: aiosqlite.Connection, *, invitation_id: str, token_hash: bytes, created_by: int,
    note: str, created_at: str, expires_at: str,
) -> None:
    """Record a new invitation."""
    await db.execute(
        "INSERT INTO invitations (id, token_hash, created_by, note, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (invitation_id, token_hash, created_by, note, created_at, expires_at),
    )


async def get_by_hash(db: aiosqlite.Connection, token_hash: bytes) -> InvitationRow | None:
    """The invitation whose secret hashes to ``token_hash``."""
    async with query(db, f"{_SELECT} WHERE i.token_hash = ?", (token_hash,)) as cursor:
        row = await cursor.fetchone()
    return InvitationRow(**dict(row)) if row else None


async def claim(db: aiosqlite.Connection, token_hash: bytes, now: str) -> str | None:
    """Mark a usable invitation used (atomically); its id, or None if not usable."""
    cursor = await db.execute(
        "UPDATE invitations SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"
        " AND revoked_at IS NULL AND expires_at > ? RETURNING id",
        (now, token_hash, now),
    )
    row = await cursor.fetchone()
    return str(row[0]) if row else None


async def set_used_by(db: aiosqlite.Connection, invitation_id: str, member_id: int) -> None:
    """Remember which member an invitation created."""
    await db.execute("UPDATE invitations SET used_by = ? WHERE id = ?", (member_id, invitation_id))


async def revoke(db: aiosqlite.Connection, invitation_id: str, now: str) -> int:
    """Revoke an unused invitation."""
    cursor = await db.execute(
        "UPDATE invitations SET revoked_at = ? WHERE id = ? AND used_at IS NULL"
        " AND revoked_at IS NULL",
        (now, invitation_id),
    )
    return cursor.rowcount


async def list_invitations(db: aiosqlite.Connection, limit: int = 50) -> list[InvitationRow]:
    """Newest invitations first."""
    async with query(db, f"{_SELECT} ORDER BY i.created_at DESC, i.rowid DESC LIMIT ?",
                          (limit,)) as cursor:
        return [InvitationRow(**dict(row)) for row in await cursor.fetchall()]
