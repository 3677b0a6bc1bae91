"""Queries on members and API tokens."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class MemberRow:
    """A member as stored (private keys stay sealed)."""

    id: int
    username: str
    display_name: str
    bio: str
    password_hash: str | None
    is_admin: bool
    locale: str | None
    disabled_at: str | None
    ed25519_public: bytes
    ed25519_sealed: bytes
    rsa_public_pem: str
    rsa_sealed: bytes
    created_at: str

    @property
    def is_active(self) -> bool:
        """False once an admin disabled the member."""
        return self.disabled_at is None


def _member(row: aiosqlite.Row) -> MemberRow:
    return MemberRow(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        bio=row["bio"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
        locale=row["locale"],
        disabled_at=row["disabled_at"],
        ed25519_public=row["ed25519_public"],
        ed25519_sealed=row["ed25519_sealed"],
        rsa_public_pem=row["rsa_public_pem"],
        rsa_sealed=row["rsa_sealed"],
        created_at=row["created_at"],
    )


async def insert_member(
    db: aiosqlite.Connection,
    *,
    username: str,
    display_name: str,
    password_hash: str | None,
    is_admin: bool,
    ed25519_public: bytes,
    ed25519_sealed: bytes,
    rsa_public_pem: str,
    rsa_sealed: bytes,
    created_at: str,
) -> int:
    """Insert a member; the UNIQUE constraint on username raises IntegrityError on duplicates."""
    cursor = await db.execute(
        "INSERT INTO members (username, display_name, password_hash, is_admin, ed25519_public,"
        " ed25519_sealed, rsa_public_pem, rsa_sealed, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (username, display_name, password_hash, int(is_admin), ed25519_public, ed25519_sealed,
         rsa_public_pem, rsa_sealed, created_at),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def get_member_by_username(db: aiosqlite.Connection, username: str) -> MemberRow | None:
    """The member with this username, or None."""
    async with query(db, "SELECT * FROM members WHERE username = ?", (username,)) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


async def get_member(db: aiosqlite.Connection, member_id: int) -> MemberRow | None:
    """The member with this id, or None."""
    async with query(db, "SELECT * FROM members WHERE id = ?", (member_id,)) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


async def list_members(db: aiosqlite.Connection) -> list[MemberRow]:
    """All members, oldest first."""
    async with query(db, "SELECT * FROM members ORDER BY id") as cursor:
        return [_member(row) for row in await cursor.fetchall()]


async def set_disabled(db: aiosqlite.Connection, member_id: int, disabled_at: str | None) -> None:
    """Disable (timestamp) or re-enable (None) a member."""
    await db.execute("UPDATE members SET disabled_at = ? WHERE id = ?", (disabled_at, member_id))


async def insert_token(
    db: aiosqlite.Connection,
    *,
    token_id: str,
    member_id: int,
    token_hash: bytes,
    label: str,
    created_at: str,
) -> None:
    """Store a new API token by its SHA-256 hash (the token itself is never stored)."""
    await db.execute(
        "INSERT INTO api_tokens (id, member_id, token_hash, label, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (token_id, member_id, token_hash, label, created_at),
    )


async def member_for_token_hash(db: aiosqlite.Connection, token_hash: bytes) -> MemberRow | None:
    """The member owning an unrevoked token with this hash, or None."""
    async with query(db,
        "SELECT m.* FROM api_tokens t JOIN members m ON m.id = t.member_id"
        " WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        (token_hash,),
    ) as cursor:
        row = await cursor.fetchone()
    return _member(row) if row else None


async def revoke_tokens(
    db: aiosqlite.Connection, *, revoked_at: str, token_id: str | None, member_id: int | None
) -> int:
    """Revoke one token by id, or all tokens of a member; return how many were revoked."""
    if token_id is not None:
        cursor = await db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (revoked_at, token_id),
        )
    else:
        cursor = await db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE member_id = ? AND revoked_at IS NULL",
            (revoked_at, member_id),
        )
    return cursor.rowcount


async def list_tokens(db: aiosqlite.Connection, member_id: int) -> list[aiosqlite.Row]:
    """Token metadata (id, label, created, revoked) of a member."""
    async with query(db,
        "SELECT id, label, created_at, revoked_at FROM api_tokens WHERE member_id = ?"
        " ORDER BY created_at",
        (member_id,),
    ) as cursor:
        return list(await cursor.fetchall())


def member_from_row(row: aiosqlite.Row) -> MemberRow:
    """A MemberRow from a row that carries the members columns (e.g. a join)."""
    return _member(row)


async def update_profile(
    db: aiosqlite.Connection, member_id: int, *, display_name: str, bio: str, locale: str | None
) -> None:
    """Change what a member says about themselves, and their preferred language."""
    await db.execute(
        "UPDATE members SET display_name = ?, bio = ?, locale = ? WHERE id = ?",
        (display_name, bio, locale, member_id),
    )


async def set_password_hash(db: aiosqlite.Connection, member_id: int, password_hash: str) -> None:
    """Replace a member's password hash."""
    await db.execute(
        "UPDATE members SET password_hash = ? WHERE id = ?", (password_hash, member_id)
    )


async def set_admin(db: aiosqlite.Connection, member_id: int, is_admin: bool) -> None:
    """Promote a member to administrator, or demote them."""
    await db.execute("UPDATE members SET is_admin = ? WHERE id = ?", (int(is_admin), member_id))


async def count_admins(db: aiosqlite.Connection) -> int:
    """Active administrators (the last one cannot be demoted or disabled)."""
    async with query(db,
        "SELECT count(*) FROM members WHERE is_admin = 1 AND disabled_at IS NULL"
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
