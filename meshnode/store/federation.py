"""Queries on remote actors and keys, the inbox, followers and peers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from meshnode.protocol.activities import RemoteActor, origin_of
from meshnode.store.db import query


async def _one(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    async with query(db, sql, params) as cursor:
        return await cursor.fetchone()


async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    async with query(db, sql, params) as cursor:
        return list(await cursor.fetchall())


# --------------------------------------------------------------------------- remote actors


async def save_actor(
    db: aiosqlite.Connection, actor: RemoteActor, document: str, fetched_at: str
) -> None:
    """Insert or refresh a remote actor and replace its keys."""
    await db.execute(
        "INSERT INTO remote_actors (id, origin, type, username, inbox, shared_inbox, outbox,"
        " is_meshnode, document, fetched_at, name) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(id) DO UPDATE SET type=excluded.type, username=excluded.username,"
        " inbox=excluded.inbox, shared_inbox=excluded.shared_inbox, outbox=excluded.outbox,"
        " is_meshnode=excluded.is_meshnode, document=excluded.document,"
        " fetched_at=excluded.fetched_at, name=excluded.name,"
        " refresh_attempted_at=NULL, refresh_error=NULL",
        (actor.id, actor.origin, actor.type, actor.username, actor.inbox, actor.shared_inbox,
         actor.outbox, int(actor.is_meshnode), document, fetched_at, actor.name),
    )
    await db.execute("DELETE FROM remote_keys WHERE actor_id = ?", (actor.id,))
    rows = [(key_id, actor.id, "rsa", pem) for key_id, pem in actor.rsa_keys.items()]
    rows += [(key_id, actor.id, "ed25519", raw.hex())
             for key_id, raw in actor.ed25519_keys.items()]
    await db.executemany(
        "INSERT OR REPLACE INTO remote_keys (key_id, actor_id, kind, material) VALUES (?,?,?,?)",
        rows,
    )


async def get_actor_row(db: aiosqlite.Connection, actor_id: str) -> aiosqlite.Row | None:
    """A cached remote actor, or None."""
    row: aiosqlite.Row | None = await _one(db, "SELECT * FROM remote_actors WHERE id = ?",
                                           (actor_id,))
    return row


async def get_key(db: aiosqlite.Connection, key_id: str) -> aiosqlite.Row | None:
    """A cached remote key (key_id, actor_id, kind, material), or None."""
    row: aiosqlite.Row | None = await _one(db, "SELECT * FROM remote_keys WHERE key_id = ?",
                                           (key_id,))
    return row


# --------------------------------------------------------------------------- inbox


async def insert_inbox(
    db: aiosqlite.Connection, *, activity_id: str, actor: str, activity_type: str, body: str,
    received_at: str,
) -> bool:
    """Store an authenticated activity; False if this id was already stored (replay)."""
    row = {"activity_id": activity_id, "actor": actor, "activity_type": activity_type,
           "body": body, "received_at": received_at}
    return await insert_inbox_batch(db, [row]) == 1


# The inbox worker takes the oldest unprocessed activities and marks each batch whole, so
# the marked rows are a prefix of ``inbox_rows`` (migration 0020_ingest18_inbox_marks): the
# unprocessed ones are those above the last mark (``unprocessed``, ``count_unprocessed``).


async def unprocessed(db: aiosqlite.Connection, limit: int) -> list[aiosqlite.Row]:
    """Oldest activities not yet processed."""
    return await _all(db, "SELECT seq, activity_id, actor, type, body FROM inbox_rows"
                          " WHERE seq > (SELECT coalesce(max(seq), 0) FROM inbox_marks)"
                          " ORDER BY seq LIMIT ?", (limit,))


async def mark_processed_many(
    db: aiosqlite.Connection, outcomes: list[tuple[int, str]], processed_at: str
) -> None:
    """Record the outcomes ``(seq, outcome)`` of a processed batch in one statement: a small
    row each in ``inbox_marks`` (rewriting the activity's row to mark it cost a page of WAL
    per activity, issue 17)."""
    await db.executemany(
        "INSERT OR REPLACE INTO inbox_marks (seq, processed_at, outcome) VALUES (?, ?, ?)",
        [(seq, processed_at, outcome[:500]) for seq, outcome in outcomes],
    )


async def count_inbox(db: aiosqlite.Connection) -> int:
    """Number of stored inbox activities."""
    row = await _one(db, "SELECT count(*) FROM inbox_rows")
    return int(row[0])


# --------------------------------------------------------------------------- followers


async def upsert_follower(
    db: aiosqlite.Connection, *, local_actor: str, remote_actor: str, follow_id: str,
    state: str, now: str, reader: str | None = None,
) -> None:
    """Record (or update) a remote actor following a local one.

    ``reader`` ('proposal' or 'note') is kept from an earlier row when not given; when given
    it was just decided, so the row is stamped ``reader_checked_at``.
    """
    checked = now if reader is not None else None
    await db.execute(
        "INSERT INTO followers (local_actor, remote_actor, follow_id, state, created_at, reader,"
        " reader_checked_at) VALUES (?,?,?,?,?,coalesce(?, 'proposal'),?)"
        " ON CONFLICT(local_actor, remote_actor)"
        " DO UPDATE SET follow_id = excluded.follow_id, state = excluded.state,"
        " reader = coalesce(?, followers.reader),"
        " reader_checked_at = coalesce(?, followers.reader_checked_at)",
        (local_actor, remote_actor, follow_id, state, now, reader, checked, reader, checked),
    )


async def unclassified_followers(db: aiosqlite.Connection, local_actor: str,
                                 limit: int) -> list[str]:
    """Accepted followers of ``local_actor`` whose reader was never decided (recorded before
    migration 0015), oldest first."""
    rows = await _all(
        db, "SELECT remote_actor FROM followers WHERE local_actor = ? AND state = 'accepted'"
            " AND reader_checked_at IS NULL ORDER BY created_at, remote_actor LIMIT ?",
        (local_actor, limit))
    return [str(row[0]) for row in rows]


async def set_follower_reader(db: aiosqlite.Connection, local_actor: str, remote_actor: str,
                              *, reader: str, now: str) -> None:
    """Record the document a follower reads, decided at ``now``."""
    await db.execute(
        "UPDATE followers SET reader = ?, reader_checked_at = ?"
        " WHERE local_actor = ? AND remote_actor = ?",
        (reader, now, local_actor, remote_actor))


async def delete_follower(db: aiosqlite.Connection, local_actor: str, remote_actor: str) -> int:
    """Remove a follower; returns rows removed."""
    cursor = await db.execute(
        "DELETE FROM followers WHERE local_actor = ? AND remote_actor = ?",
        (local_actor, remote_actor))
    return cursor.rowcount


async def get_follower(
    db: aiosqlite.Connection, local_actor: str, remote_actor: str
) -> aiosqlite.Row | None:
    """One follower row, or None."""
    row: aiosqlite.Row | None = await _one(
        db, "SELECT * FROM followers WHERE local_actor = ? AND remote_actor = ?",
        (local_actor, remote_actor))
    return row


async def delivery_inboxes(
    db: aiosqlite.Connection, local_actors: Sequence[str], exclude_origins: Sequence[str] = (),
    *, reader: str | None = None,
) -> list[str]:
    """Distinct (shared) inboxes of accepted followers of any of ``local_actors``.

    Followers on blocked origins and on ``exclude_origins`` are left out; with ``reader``,
    only followers reading that document ('proposal' or 'note').
    """
    rows = await delivery_inbox_origins(db, local_actors, reader=reader)
    return [inbox for inbox, origin in rows if origin not in exclude_origins]


async def delivery_inbox_origins(
    db: aiosqlite.Connection, local_actors: Sequence[str], *, reader: str | None = None,
) -> list[tuple[str, str]]:
    """``delivery_inboxes`` with each follower's origin: (inbox, origin) pairs, for callers
    that leave out different origins for different activities (a batch of relays)."""
    rows = await _all(db, *delivery_inboxes_query(local_actors, reader))
    return [(str(row[0]), str(row[1])) for row in rows]


def delivery_inboxes_query(local_actors: Sequence[str],
                           reader: str | None) -> tuple[str, tuple[str | None, ...]]:
    """The SQL and parameters of ``delivery_inbox_origins`` (also run in the writer's
    thread by ``store.new_listings``)."""
    marks = ", ".join("?" for _ in local_actors)
    sql = ("SELECT DISTINCT coalesce(a.shared_inbox, a.inbox), a.origin FROM followers f"  # noqa: S608
           " JOIN remote_actors a ON a.id = f.remote_actor"
           f" WHERE f.local_actor IN ({marks}) AND f.state = 'accepted'"
           " AND (? IS NULL OR f.reader = ?)"
           " AND a.origin NOT IN (SELECT origin FROM peers WHERE blocked = 1)")
    return sql, (*local_actors, reader, reader)


async def list_followers(
    db: aiosqlite.Connection, local_actor: str, *, offset: int, limit: int
) -> list[str]:
    """Accepted followers of a local actor, oldest first."""
    rows = await _all(db, "SELECT remote_actor FROM followers WHERE local_actor = ?"
                          " AND state = 'accepted' ORDER BY created_at, remote_actor"
                          " LIMIT ? OFFSET ?", (local_actor, limit, offset))
    return [row[0] for row in rows]


async def count_followers(db: aiosqlite.Connection, local_actor: str) -> int:
    """How many accepted followers a local actor has."""
    row = await _one(db, "SELECT count(*) FROM followers WHERE local_actor = ?"
                         " AND state = 'accepted'", (local_actor,))
    return int(row[0])


# --------------------------------------------------------------------------- peers

PEER_COLUMNS = frozenset({
    "requested", "actor_id", "out_state", "out_follow_id", "attempts", "next_attempt_at",
    "blocked", "sync_cursor", "sync_due", "last_sync_at", "last_delivery_at", "last_error",
    "last_sync_attempt_at", "following_read_at", "following_etag",
})


async def insert_peer(
    db: aiosqlite.Connection, *, origin: str, requested: str, out_state: str, now: str
) -> bool:
    """Create a peer row; False if the origin is already known."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO peers (origin, requested, out_state, created_at, updated_at)"
        " VALUES (?,?,?,?,?)", (origin, requested, out_state, now, now))
    return cursor.rowcount == 1


async def update_peer(db: aiosqlite.Connection, origin: str, now: str, **values: Any) -> None:
    """Set some columns of a peer row (names checked against ``PEER_COLUMNS``)."""
    unknown = set(values) - PEER_COLUMNS
    if unknown:
        raise ValueError(f"unknown peer columns {sorted(unknown)}")
    sets = ", ".join(f"{name} = ?" for name in values)
    await db.execute(f"UPDATE peers SET {sets}, updated_at = ? WHERE origin = ?",  # noqa: S608
                     (*values.values(), now, origin))


async def delete_peer(db: aiosqlite.Connection, origin: str) -> int:
    """Forget a peer row (unpeer, or a request that resolved to another origin)."""
    cursor = await db.execute("DELETE FROM peers WHERE origin = ?", (origin,))
    return cursor.rowcount


async def mark_delivered(db: aiosqlite.Connection, origin: str, at: str) -> None:
    """Record that a delivery to ``origin`` succeeded at ``at`` (shown on the peers page)."""
    await db.execute("UPDATE peers SET last_delivery_at = ? WHERE origin = ?", (at, origin))


async def get_peer(db: aiosqlite.Connection, origin: str) -> aiosqlite.Row | None:
    """A peer by origin, or None."""
    row: aiosqlite.Row | None = await _one(db, "SELECT * FROM peers WHERE origin = ?", (origin,))
    return row


# A peer row's ``in_state``: the state of its Group's follow of us (None when it follows
# nothing of ours). Not a column of ``peers``: read with the row when asked for.
_IN_STATE = ("(SELECT f.state FROM followers f JOIN remote_actors a ON a.id = f.remote_actor"
             " WHERE a.origin = p.origin AND a.type = 'Group' LIMIT 1) AS in_state")


async def list_peers(db: aiosqlite.Connection) -> list[aiosqlite.Row]:
    """Every known peer with whether it follows us (``in_state``), oldest first."""
    return await _all(db, f"SELECT p.*, {_IN_STATE} FROM peers p"  # noqa: S608
                          " ORDER BY p.created_at, p.origin")


async def get_peer_both_ways(db: aiosqlite.Connection, origin: str) -> aiosqlite.Row | None:
    """A peer by origin with whether it follows us (``in_state``, as ``list_peers``)."""
    row: aiosqlite.Row | None = await _one(
        db, f"SELECT p.*, {_IN_STATE} FROM peers p WHERE p.origin = ?", (origin,))  # noqa: S608
    return row


async def peers_to_resolve(db: aiosqlite.Connection, now: str) -> list[aiosqlite.Row]:
    """Peers an admin asked for whose actor must still be resolved and followed."""
    return await _all(db, "SELECT * FROM peers WHERE out_state = 'resolving' AND blocked = 0"
                          " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)", (now,))


async def known_activity_ids(db: aiosqlite.Connection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` our inbox has received (pushed), for catch-up to skip them."""
    if not ids:
        return set()
    marks = ", ".join("?" for _ in ids)
    # One that was refused or failed is pulled again: catch-up also repairs those.
    rows = await _all(db, "SELECT r.activity_id FROM inbox_rows r"  # noqa: S608
                          " LEFT JOIN inbox_marks m ON m.seq = r.seq"
                          f" WHERE r.activity_id IN ({marks}) AND (m.outcome IS NULL OR"
                          " (m.outcome NOT LIKE 'rejected%' AND m.outcome NOT LIKE 'failed%'))",
                      list(ids))
    return {row[0] for row in rows}


async def peers_to_sync(db: aiosqlite.Connection, stale_before: str,
                        retry_before: str | None = None) -> list[aiosqlite.Row]:
    """Peered, unblocked peers whose outbox should be pulled now: asked for, or not pulled
    since ``stale_before`` and not tried since ``retry_before`` (default: the same). Each row
    also gives ``actor_outbox``, the outbox of the peer's cached actor (None if not cached)."""
    return await _all(
        db, "SELECT p.*, a.outbox AS actor_outbox FROM peers p LEFT JOIN remote_actors a"
            " ON a.id = p.actor_id WHERE p.out_state = 'peered' AND p.blocked = 0"
            " AND p.actor_id IS NOT NULL AND (p.sync_due = 1 OR ((p.last_sync_at IS NULL"
            " OR p.last_sync_at <= ?) AND (p.last_sync_attempt_at IS NULL"
            " OR p.last_sync_attempt_at <= ?)))",
        (stale_before, retry_before or stale_before))


# A node blocked by a member's handle before its node was known has the row
# ``acct:name@host`` (``peering.block_peer``): it blocks that host's node under either
# scheme, as a block by URL blocks its origin.
HANDLE_KEY = "acct:"


def origins_of_key(key: str) -> tuple[str, ...]:
    """The origins a ``peers`` key stands for: itself, or a handle's host's two origins."""
    if not key.startswith(HANDLE_KEY):
        return (key,)
    host = key.rpartition("@")[2]
    return (origin_of(f"http://{host}"), origin_of(f"https://{host}"))


async def is_blocked(db: aiosqlite.Connection, origin: str) -> bool:
    """True if an admin blocked this origin (by its URL, or by a handle on its host)."""
    rows = await _all(db, "SELECT origin FROM peers WHERE blocked = 1"
                          " AND (origin = ? OR origin LIKE 'acct:%')", (origin,))
    return any(origin in origins_of_key(row[0]) for row in rows)


async def blocked_origins(db: aiosqlite.Connection) -> frozenset[str]:
    """Every origin an admin blocked, by URL or by a handle on its host."""
    rows = await _all(db, "SELECT origin FROM peers WHERE blocked = 1")
    return frozenset(origin for row in rows for origin in origins_of_key(row[0]))


async def insert_inbox_batch(db: aiosqlite.Connection, rows: list[dict[str, Any]]) -> int:
    """Store many authenticated activities in one statement; return how many were new
    (ids already stored are ignored: replays). Each row records its actor's origin and
    its size in bytes, which the per-origin quota counts."""
    cursor = await db.executemany(
        "INSERT OR IGNORE INTO inbox_rows (activity_id, actor, type, body, received_at,"
        " origin, size) VALUES (:activity_id, :actor, :activity_type, :body, :received_at,"
        " :origin, :size)",
        [row if "size" in row and "origin" in row else
         {**row, "origin": origin_of(row["actor"]), "size": len(row["body"].encode())}
         for row in rows],
    )
    return max(cursor.rowcount, 0)


async def inbox_window(db: aiosqlite.Connection, origin: str,
                       since: str) -> list[tuple[str, int]]:
    """``(received_at, size)`` of what ``origin`` got stored since ``since``, oldest first
    (the quota window; a covering index makes this an index-only scan)."""
    rows = await _all(db, "SELECT received_at, size FROM inbox_rows"
                          " WHERE origin = ? AND received_at > ? ORDER BY received_at",
                      (origin, since))
    return [(row[0], int(row[1])) for row in rows]


async def prune_inbox(db: aiosqlite.Connection, processed_before: str, limit: int) -> int:
    """Delete up to ``limit`` activities processed before ``processed_before``."""
    # A row's mark goes with it (trigger ``inbox_rows_deleted``); what is left unmarked above
    # the last mark is still exactly what waits (``unprocessed``), whichever rows go.
    cursor = await db.execute(
        "DELETE FROM inbox_rows WHERE seq IN (SELECT seq FROM inbox_marks"
        " WHERE processed_at < ? ORDER BY processed_at LIMIT ?)",
        (processed_before, limit))
    return cursor.rowcount


async def count_unprocessed(db: aiosqlite.Connection) -> int:
    """How many stored activities wait for processing."""
    row = await _one(db, "SELECT count(*) FROM inbox_rows"
                         " WHERE seq > (SELECT coalesce(max(seq), 0) FROM inbox_marks)")
    return int(row[0]) if row else 0


async def request_sync_all(db: aiosqlite.Connection) -> None:
    """Mark every peer for a catch-up pull (node start)."""
    await db.execute("UPDATE peers SET sync_due = 1 WHERE out_state = 'peered'")


async def delete_follow(db: aiosqlite.Connection, remote_actor: str, follow_id: str) -> int:
    """Undo: remove the follow ``follow_id`` made by ``remote_actor`` (only the follower may)."""
    cursor = await db.execute("DELETE FROM followers WHERE remote_actor = ? AND follow_id = ?",
                              (remote_actor, follow_id))
    return cursor.rowcount


async def pending_followers_from(
    db: aiosqlite.Connection, local_actor: str, origin: str
) -> list[aiosqlite.Row]:
    """Follow requests awaiting approval from actors on ``origin``."""
    return await _all(
        db, "SELECT f.* FROM followers f JOIN remote_actors a ON a.id = f.remote_actor"
            " WHERE f.local_actor = ? AND a.origin = ? AND f.state = 'pending'",
        (local_actor, origin))


async def delete_followers_from(db: aiosqlite.Connection, origin: str) -> int:
    """Forget every follower on ``origin`` (block)."""
    cursor = await db.execute(
        "DELETE FROM followers WHERE remote_actor IN (SELECT id FROM remote_actors"
        " WHERE origin = ?)", (origin,))
    return cursor.rowcount


async def origin_is_meshnode(db: aiosqlite.Connection, origin: str) -> bool:
    """True if an actor we fetched from ``origin`` said it runs meshnode."""
    row = await _one(db, "SELECT max(is_meshnode) FROM remote_actors WHERE origin = ?", (origin,))
    return bool(row and row[0])
