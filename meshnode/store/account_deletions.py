"""Queries of account deletion (RGPD): the ``account_deletions`` state rows and what each
step reads and removes (services/account_deletion.py steps them)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class DeletionRow:
    """One account deletion under way (or done)."""

    member_id: int
    pseudonym: str
    state: str
    requested_at: str
    updated_at: str
    finished_at: str | None


@dataclass(frozen=True)
class SentNote:
    """A message the member sent to another node: its id and where to send its Delete."""

    id: int
    object_id: str
    remote_actor: str
    inbox: str | None


_SELECT = ("SELECT member_id, pseudonym, state, requested_at, updated_at, finished_at"
           " FROM account_deletions")


async def insert_deletion(db: aiosqlite.Connection, *, member_id: int, pseudonym: str,
                          state: str, now: str) -> bool:
    """Record the request (False if one exists already: asking twice changes nothing)."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO account_deletions (member_id, pseudonym, state, requested_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?)", (member_id, pseudonym, state, now, now))
    return cursor.rowcount == 1


async def get_deletion(db: aiosqlite.Connection, member_id: int) -> DeletionRow | None:
    """The deletion of this member, if one was asked."""
    async with query(db, f"{_SELECT} WHERE member_id = ?", (member_id,)) as cursor:
        row = await cursor.fetchone()
    return DeletionRow(**dict(row)) if row else None


async def open_deletions(db: aiosqlite.Connection, limit: int) -> list[DeletionRow]:
    """Deletions not finished yet, oldest first."""
    async with query(db, f"{_SELECT} WHERE state <> 'done' ORDER BY requested_at LIMIT ?",
                     (limit,)) as cursor:
        return [DeletionRow(**dict(row)) for row in await cursor.fetchall()]


async def set_state(db: aiosqlite.Connection, member_id: int, *, expected: str, state: str,
                    now: str) -> bool:
    """Move one deletion on (only from ``expected``: two workers never both take a step)."""
    cursor = await db.execute(
        "UPDATE account_deletions SET state = ?, updated_at = ?,"
        " finished_at = CASE WHEN ? = 'done' THEN ? ELSE finished_at END"
        " WHERE member_id = ? AND state = ?", (state, now, state, now, member_id, expected))
    return cursor.rowcount == 1


async def live_listing_ids(db: aiosqlite.Connection, member_id: int, limit: int) -> list[str]:
    """The member's own listings not yet withdrawn."""
    async with query(db, "SELECT id FROM listings WHERE author_id = ? AND is_local = 1"
                     " AND status <> 'withdrawn' ORDER BY seq LIMIT ?",
                     (member_id, limit)) as cursor:
        return [str(row["id"]) for row in await cursor.fetchall()]


async def sent_notes(db: aiosqlite.Connection, member_id: int, limit: int) -> list[SentNote]:
    """Messages the member sent to other nodes, with the recipient's inbox when known."""
    async with query(db, "SELECT d.id, d.object_id, d.remote_actor, a.inbox FROM direct_messages d"
                     " LEFT JOIN remote_actors a ON a.id = d.remote_actor"
                     " WHERE d.member_id = ? AND d.direction = 'out' ORDER BY d.id LIMIT ?",
                     (member_id, limit)) as cursor:
        return [SentNote(**dict(row)) for row in await cursor.fetchall()]


async def delete_direct_messages(db: aiosqlite.Connection, ids: list[int]) -> int:
    """Remove these messages with other nodes (after their Deletes were queued)."""
    marks = ",".join("?" * len(ids))
    cursor = await db.execute(f"DELETE FROM direct_messages WHERE id IN ({marks})",  # noqa: S608
                              ids)
    return cursor.rowcount


async def delete_messages(db: aiosqlite.Connection, member_id: int) -> int:
    """Remove every message the member exchanged on this node, both ways, and those with
    other nodes they received."""
    local = await db.execute("DELETE FROM messages WHERE sender_id = ? OR recipient_id = ?",
                             (member_id, member_id))
    remote = await db.execute("DELETE FROM direct_messages WHERE member_id = ?", (member_id,))
    return local.rowcount + remote.rowcount


async def open_deals(db: aiosqlite.Connection, member_id: int) -> list[tuple[str, str, str]]:
    """(deal id, state, the member's role) of every deal still requested or accepted."""
    async with query(db, "SELECT id, state, CASE WHEN booker_id = ? THEN 'booker'"
                     " ELSE 'author' END AS role FROM deals"
                     " WHERE (booker_id = ? OR author_id = ?) AND state IN ('requested',"
                     " 'accepted') ORDER BY created_at", (member_id, member_id, member_id)
                     ) as cursor:
        return [(row["id"], row["state"], row["role"]) for row in await cursor.fetchall()]


async def pending_deliveries(db: aiosqlite.Connection, actor: str) -> int:
    """Deliveries sent as ``actor`` still waiting for an answer (their retries go on)."""
    async with query(db, "SELECT count(*) FROM deliveries d JOIN outbox_activities o"
                     " ON o.seq = d.outbox_seq WHERE o.actor = ? AND d.state = 'pending'",
                     (actor,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def drop_pending_deliveries(db: aiosqlite.Connection, actor: str, now: str) -> int:
    """Give up what is still pending as ``actor`` (the key that signs it is about to go)."""
    cursor = await db.execute(
        "UPDATE deliveries SET state = 'failed', last_error = 'account deleted', done_at = ?"
        " WHERE state = 'pending' AND outbox_seq IN (SELECT seq FROM outbox_activities"
        " WHERE actor = ?)", (now, actor))
    return cursor.rowcount


_ERASE = (
    "DELETE FROM notifications WHERE member_id = :m",
    "DELETE FROM notification_muted WHERE member_id = :m",
    "DELETE FROM alerts WHERE member_id = :m AND listing_id IS NULL",  # saved searches
    "DELETE FROM calendar_tokens WHERE member_id = :m",
    "UPDATE listing_queue SET state = 'left', updated_at = :now WHERE member_id = :m"
    " AND state IN ('waiting', 'notified')",
    # places in other communities' queues: the lender's node lapses a turn nobody takes
    "DELETE FROM remote_queue_places WHERE member_id = :m",
    "DELETE FROM email_outbox WHERE member_id = :m",
    "DELETE FROM member_emails WHERE member_id = :m",
    "DELETE FROM member_blocks WHERE member_id = :m",
    "DELETE FROM web_sessions WHERE member_id = :m",
    "DELETE FROM api_tokens WHERE member_id = :m",
    # every earlier signed version goes; the last one (the signed Tombstone) stays
    "DELETE FROM listing_versions WHERE listing_id IN (SELECT id FROM listings"
    " WHERE author_id = :m AND is_local = 1) AND version < (SELECT version FROM listings"
    " WHERE listings.id = listing_versions.listing_id)",
    "DELETE FROM listing_images WHERE listing_id IN (SELECT id FROM listings"
    " WHERE author_id = :m)",
    "UPDATE listings SET title = '', description = '', location_name = '', lat = NULL,"
    " lon = NULL, details = '{}' WHERE author_id = :m",
    # the public keys stay: old signatures (ledger entries, receipts, tombstones) verify
    "UPDATE members SET display_name = :p, bio = '', password_hash = NULL, locale = NULL,"
    " disabled_at = COALESCE(disabled_at, :now), is_admin = 0, ed25519_sealed = x'',"
    " rsa_sealed = x'' WHERE id = :m",
)


async def erase_member(db: aiosqlite.Connection, member_id: int, *, pseudonym: str,
                       now: str) -> None:
    """Empty the profile, destroy the sealed private keys, forget notifications, e-mail,
    sessions, tokens, images and the text of every listing version but the last."""
    params = {"m": member_id, "p": pseudonym, "now": now}
    for statement in _ERASE:
        await db.execute(statement, params)


async def listing_media_ids(db: aiosqlite.Connection, member_id: int) -> list[str]:
    """Listings of the member that may still have image files on disk."""
    async with query(db, "SELECT DISTINCT listing_id FROM listing_images WHERE listing_id IN"
                     " (SELECT id FROM listings WHERE author_id = ?)", (member_id,)) as cursor:
        return [str(row["listing_id"]) for row in await cursor.fetchall()]


async def delete_received_note(db: aiosqlite.Connection, object_id: str, author: str) -> int:
    """Remove a message received from another node, on its author's ``Delete``."""
    cursor = await db.execute("DELETE FROM direct_messages WHERE object_id = ? AND"
                              " remote_actor = ? AND direction = 'in'", (object_id, author))
    return cursor.rowcount
