"""Queries on members' e-mail addresses and the mail outbox."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class EmailRow:
    """A member's address and mail choices."""

    member_id: int
    address: str
    verified_at: str | None
    token_hash: str | None
    token_expires_at: str | None
    enabled: bool
    digest: bool
    last_digest_on: str
    last_digest_item: int
    created_at: str


@dataclass(frozen=True)
class MailRow:
    """One mail waiting in (or gone from) the outbox, with its member's language."""

    id: int
    member_id: int
    kind: str
    address: str
    payload: str
    state: str
    attempts: int
    next_attempt_at: str
    last_error: str
    created_at: str
    sent_at: str | None
    locale: str | None = None


def _email(row: aiosqlite.Row) -> EmailRow:
    data = dict(row)
    data["enabled"], data["digest"] = bool(data["enabled"]), bool(data["digest"])
    return EmailRow(**data)


async def get_email(db: aiosqlite.Connection, member_id: int) -> EmailRow | None:
    """The member's address row, if any."""
    async with query(db, "SELECT * FROM member_emails WHERE member_id = ?",
                     (member_id,)) as cursor:
        row = await cursor.fetchone()
    return _email(row) if row else None


async def set_address(db: aiosqlite.Connection, *, member_id: int, address: str,
                      token_hash: str, token_expires_at: str, now: str) -> None:
    """Record a new (unverified) address and its verification token; keeps the choices."""
    await db.execute(
        "INSERT INTO member_emails (member_id, address, token_hash, token_expires_at,"
        " created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id) DO UPDATE SET"
        " address = excluded.address, verified_at = NULL, token_hash = excluded.token_hash,"
        " token_expires_at = excluded.token_expires_at",
        (member_id, address, token_hash, token_expires_at, now))


async def verify(db: aiosqlite.Connection, token_hash: str, now: str) -> int | None:
    """Mark the address holding this unexpired token verified; returns its member id."""
    cursor = await db.execute(
        "UPDATE member_emails SET verified_at = ?, token_hash = NULL, token_expires_at = NULL"
        " WHERE token_hash = ? AND token_expires_at > ? RETURNING member_id",
        (now, token_hash, now))
    row = await cursor.fetchone()
    return int(row[0]) if row else None


async def set_choices(db: aiosqlite.Connection, member_id: int, *, enabled: bool,
                      digest: bool) -> None:
    """E-mail on/off and digest on/off."""
    await db.execute("UPDATE member_emails SET enabled = ?, digest = ? WHERE member_id = ?",
                     (int(enabled), int(digest), member_id))


async def remove_address(db: aiosqlite.Connection, member_id: int) -> None:
    """Forget the member's address (pending mails to it are dropped too)."""
    await db.execute("DELETE FROM email_outbox WHERE member_id = ? AND state = 'pending'",
                     (member_id,))
    await db.execute("DELETE FROM member_emails WHERE member_id = ?", (member_id,))


async def queue_mail(db: aiosqlite.Connection, *, member_id: int, kind: str, address: str,
                     payload: str, now: str) -> int:
    """Put one mail in the outbox, due now."""
    cursor = await db.execute(
        "INSERT INTO email_outbox (member_id, kind, address, payload, next_attempt_at,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?)", (member_id, kind, address, payload, now, now))
    return int(cursor.lastrowid or 0)


async def queue_if_immediate(db: aiosqlite.Connection, *, member_id: int, item_id: int,
                             now: str) -> None:
    """Queue a notification mail when the member (still active) has a verified address, mail
    on, no digest."""
    await db.execute(
        "INSERT INTO email_outbox (member_id, kind, address, payload, next_attempt_at,"
        " created_at) SELECT e.member_id, 'notification', e.address, json_array(?), ?, ?"
        " FROM member_emails e JOIN members m ON m.id = e.member_id WHERE e.member_id = ?"
        " AND e.verified_at IS NOT NULL AND e.enabled = 1 AND e.digest = 0"
        " AND m.disabled_at IS NULL", (item_id, now, now, member_id))


async def due_mails(db: aiosqlite.Connection, now: str, limit: int = 20) -> list[MailRow]:
    """Pending mails whose time has come, oldest first."""
    async with query(db,
        "SELECT o.*, m.locale FROM email_outbox o JOIN members m ON m.id = o.member_id"
        " WHERE o.state = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at,"
        " o.id LIMIT ?", (now, limit)) as cursor:
        return [MailRow(**dict(row)) for row in await cursor.fetchall()]


async def mark_sent(db: aiosqlite.Connection, mail_id: int, now: str) -> None:
    """The server accepted the mail; a verification link is not kept once sent."""
    await db.execute(
        "UPDATE email_outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1,"
        " payload = CASE WHEN kind = 'verify' THEN '' ELSE payload END, last_error = ''"
        " WHERE id = ?", (now, mail_id))


async def mark_failed(db: aiosqlite.Connection, mail_id: int, *, error: str,
                      retry_at: str | None) -> None:
    """A failed attempt: try again at ``retry_at``, or give up (None)."""
    await db.execute(
        "UPDATE email_outbox SET attempts = attempts + 1, last_error = ?,"
        " state = CASE WHEN ? IS NULL THEN 'failed' ELSE 'pending' END,"
        " next_attempt_at = COALESCE(?, next_attempt_at) WHERE id = ?",
        (error[:300], retry_at, retry_at, mail_id))


async def digest_members(db: aiosqlite.Connection, today: str) -> list[EmailRow]:
    """Verified digest subscribers not yet served ``today`` (local date)."""
    async with query(db,
        "SELECT e.* FROM member_emails e JOIN members m ON m.id = e.member_id"
        " WHERE e.verified_at IS NOT NULL AND e.enabled = 1 AND e.digest = 1"
        " AND e.last_digest_on < ? AND m.disabled_at IS NULL ORDER BY e.member_id",
        (today,)) as cursor:
        return [_email(row) for row in await cursor.fetchall()]


async def unread_since(db: aiosqlite.Connection, member_id: int, after: int) -> list[int]:
    """Ids of the member's unread notifications newer than ``after``, oldest first."""
    async with query(db,
        "SELECT id FROM notifications WHERE member_id = ? AND id > ? AND read_at IS NULL"
        " ORDER BY id LIMIT 200", (member_id, after)) as cursor:
        return [int(row[0]) for row in await cursor.fetchall()]


async def mark_digest(db: aiosqlite.Connection, member_id: int, *, today: str,
                      last_item: int) -> None:
    """Remember the day served and the newest item included."""
    await db.execute(
        "UPDATE member_emails SET last_digest_on = ?,"
        " last_digest_item = max(last_digest_item, ?) WHERE member_id = ?",
        (today, last_item, member_id))


async def outbox_counts(db: aiosqlite.Connection) -> dict[str, int]:
    """Mails per state (admin view, tests)."""
    async with query(db, "SELECT state, count(*) FROM email_outbox GROUP BY state") as cursor:
        return {str(row[0]): int(row[1]) for row in await cursor.fetchall()}
