"""Queries on the outbox log and the delivery queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import aiosqlite

from meshnode.store.db import query


def _body(table: str = "") -> str:
    """``BODY`` for the outbox table under the alias ``table`` (with its dot), or none."""
    return (f"CASE WHEN {table}object_of IS NULL THEN {table}body ELSE {table}body ||"  # noqa: S608 - our aliases only
            f" (SELECT l.signed_object FROM listings l WHERE l.id = {table}object_of)"
            f" || {table}body_tail END")


# An outbox activity's body as sent: a relayed Announce's row holds only the JSON around its
# object, which is its listing's stored signed text (migration 0021_ingest21_announce_text);
# O_BODY is the same for the table under the alias ``o``.
BODY = _body()
O_BODY = _body("o.")
# Its length in characters, without building it (what a page's size bound reads).
BODY_LENGTH = ("CASE WHEN object_of IS NULL THEN length(body) ELSE length(body) +"
               " (SELECT length(l.signed_object) FROM listings l WHERE l.id = object_of)"
               " + length(body_tail) END")


async def insert_activity(
    db: aiosqlite.Connection, *, activity_id: str, actor: str, activity_type: str,
    object_id: str | None, public: bool, body: str, created_at: str,
    object_of: str | None = None, body_tail: str | None = None,
) -> int | None:
    """Append an activity to the outbox log; its sequence number, or None if already there.
    With ``object_of`` (a listing's id), ``body`` and ``body_tail`` are the activity's JSON
    before and after its object, that listing's signed text (``BODY``)."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO outbox_activities (activity_id, actor, type, object_id, public,"
        " body, created_at, object_of, body_tail) VALUES (?,?,?,?,?,?,?,?,?)",
        (activity_id, actor, activity_type, object_id, int(public), body, created_at,
         object_of, body_tail),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


async def insert_delivery(
    db: aiosqlite.Connection, *, outbox_seq: int, host: str, inbox: str, now: str
) -> None:
    """Queue one delivery, due now."""
    await db.execute(
        "INSERT OR IGNORE INTO deliveries (outbox_seq, host, inbox, state, next_attempt_at,"
        " created_at) VALUES (?,?,?,'pending',?,?)", (outbox_seq, host, inbox, now, now))


def _public_where(actors: list[str] | None) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its parameters) of public outbox activities (of some actors)."""
    if actors is None:
        return "public = 1", ()
    marks = ", ".join("?" for _ in actors)
    return f"public = 1 AND actor IN ({marks})", tuple(actors)


async def public_page(
    db: aiosqlite.Connection, actors: list[str] | None, after: int, limit: int,
    max_chars: int | None = None,
) -> list[aiosqlite.Row]:
    """Public outbox activities after sequence ``after`` (oldest first): at most ``limit``,
    and (with ``max_chars``) stopping before their bodies pass that many characters, the
    first one always included. Their lengths are read first, then only those bodies."""
    where, params = _public_where(actors)
    if max_chars is not None:
        sql = (f"SELECT seq, {BODY_LENGTH} FROM outbox_activities WHERE {where}"  # noqa: S608
               " AND seq > ? ORDER BY seq LIMIT ?")
        async with query(db, sql, (*params, after, limit)) as cursor:
            lengths = await cursor.fetchall()
        if not lengths:
            return []
        last, total = lengths[0][0], 0
        for seq, length in lengths:
            total += length
            if total > max_chars and seq != lengths[0][0]:
                break
            last = seq
        async with query(db, f"SELECT seq, {BODY} AS body FROM outbox_activities WHERE {where}"  # noqa: S608
                             " AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                         (*params, after, last, limit)) as cursor:
            return list(await cursor.fetchall())
    async with query(db, f"SELECT seq, {BODY} AS body FROM outbox_activities WHERE {where}"  # noqa: S608
                         " AND seq > ? ORDER BY seq LIMIT ?", (*params, after, limit)) as cursor:
        return list(await cursor.fetchall())


class SummaryRow(NamedTuple):
    """What catch-up's summary page says of one outbox activity: its id and sequence number,
    and the JSON array ``[object.id, object.updated, object.published, object.deleted]``
    (SQLite's ``json_extract``: the body is never parsed into Python objects)."""

    seq: int
    activity_id: str
    fields: str


async def public_summaries(
    db: aiosqlite.Connection, actors: list[str] | None, after: int, limit: int
) -> list[SummaryRow]:
    """``SummaryRow`` of public outbox activities after sequence ``after`` (oldest first)."""
    where, params = _public_where(actors)
    sql = (f"SELECT seq, activity_id, json_extract({BODY}, '$.object.id',"  # noqa: S608
           " '$.object.updated', '$.object.published', '$.object.deleted')"
           f" FROM outbox_activities WHERE {where}"
           " AND seq > ? ORDER BY seq LIMIT ?")
    async with query(db, sql, (*params, after, limit)) as cursor:
        return [SummaryRow(*row) for row in await cursor.fetchall()]


async def count_public(db: aiosqlite.Connection, actors: list[str] | None) -> int:
    """Number of public outbox activities (of some actors)."""
    if actors is None:
        sql, params = "SELECT count(*) FROM outbox_activities WHERE public = 1", ()
    else:
        marks = ", ".join("?" for _ in actors)
        sql = f"SELECT count(*) FROM outbox_activities WHERE public = 1 AND actor IN ({marks})"  # noqa: S608
        params = tuple(actors)  # type: ignore[assignment]
    async with query(db, sql, params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


# The hosts with a pending delivery, found by skipping through the ``deliveries_due`` index
# (host, next_attempt_at) one host at a time: one index search per host, whatever the backlog
# (https://sqlite.org/lang_with.html#recursive_common_table_expressions). Asked for the
# earliest attempt or the due hosts directly, SQLite reads every pending row's index entry,
# since next_attempt_at is the index's second column: a hub whose peers asked it to wait read
# 38,000 entries (6-7 ms each read, the reader's whole 1 MiB page cache) at each of its
# delivery scheduler's wake-ups, idle or not, refilling the cache the idle sweep had just
# emptied (issue 17); now 550-634 steps, 0.05-0.17 ms (scripts/bench_delivery_queue.py).
PENDING_HOSTS = (
    "WITH RECURSIVE hosts(host) AS ("
    " SELECT (SELECT min(host) FROM deliveries WHERE state = 'pending')"
    " UNION ALL SELECT (SELECT min(d.host) FROM deliveries d WHERE d.state = 'pending'"
    " AND d.host > hosts.host) FROM hosts WHERE hosts.host IS NOT NULL) ")
DUE_HOSTS = PENDING_HOSTS + (  # noqa: S608 (constant text)
    "SELECT host FROM hosts WHERE host IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries d"
    " WHERE d.state = 'pending' AND d.host = hosts.host AND d.next_attempt_at <= ?)")
NEXT_DUE_TIME = PENDING_HOSTS + (  # noqa: S608 (constant text)
    "SELECT min((SELECT min(d.next_attempt_at) FROM deliveries d WHERE d.state = 'pending'"
    " AND d.host = hosts.host)) FROM hosts WHERE host IS NOT NULL")


async def due_hosts(db: aiosqlite.Connection, now: str) -> list[str]:
    """Hosts with at least one delivery due (one index search per host with pending ones)."""
    async with query(db, DUE_HOSTS, (now,)) as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def next_due_time(db: aiosqlite.Connection) -> str | None:
    """Earliest next attempt over all pending deliveries (the earliest of each host's)."""
    async with query(db, NEXT_DUE_TIME) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None


async def due_for_host(
    db: aiosqlite.Connection, host: str, now: str, limit: int
) -> list[aiosqlite.Row]:
    """Due deliveries of one host, oldest first, with their activity."""
    async with query(db,
        f"SELECT d.id, d.inbox, d.attempts, d.outbox_seq, o.actor, o.type, o.object_id,"  # noqa: S608
        f" {O_BODY} AS body"
        " FROM deliveries d"
        " JOIN outbox_activities o ON o.seq = d.outbox_seq WHERE d.host = ?"
        " AND d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY d.id LIMIT ?",
        (host, now, limit),
    ) as cursor:
        return list(await cursor.fetchall())


class Attempt(NamedTuple):
    """The outcome of one delivery attempt, as written."""

    delivery_id: int
    state: str
    attempts: int
    next_attempt_at: str
    status: int | None
    error: str | None


async def record_attempts(db: aiosqlite.Connection, attempts: Sequence[Attempt], *,
                          now: str) -> None:
    """Write the outcomes of delivery attempts (one statement, many rows)."""
    await db.executemany(
        "UPDATE deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?,"
        " last_error = ?, done_at = CASE WHEN ? != 'pending' THEN ? END WHERE id = ?",
        [(a.state, a.attempts, a.next_attempt_at, a.status, a.error, a.state, now,
          a.delivery_id) for a in attempts],
    )


# Outbox activities a peer's catch-up pulls from our public outbox (``public_page``): a
# listing's Create / Update / Delete and the Group's relaying Announce. Notes, direct
# messages, IOUs, deals, Follow / Accept / Undo and blocks are never public (public = 0).
CATCH_UP_TYPES = ("Create", "Update", "Delete", "Announce")


async def leave_to_catch_up(db: aiosqlite.Connection, host: str, community: str, *,
                            beyond: str, now: str) -> int:
    """Mark ``left`` the pending deliveries to ``host`` put off past ``beyond`` (the time by
    which the peer's catch-up will have pulled our outbox) whose activity that catch-up
    fetches: public outbox activities of ``CATCH_UP_TYPES``, and only if ``host``'s Group,
    a meshnode, follows ``community`` (accepted) and is not blocked. Returns how many.

    One statement: each row is pending or left, never neither (nothing lost on a kill).
    """
    marks = ", ".join("?" for _ in CATCH_UP_TYPES)
    cursor = await db.execute(
        "UPDATE deliveries SET state = 'left', done_at = ? WHERE host = ?"  # noqa: S608
        " AND state = 'pending' AND next_attempt_at > ?"
        " AND EXISTS (SELECT 1 FROM outbox_activities o WHERE o.seq = deliveries.outbox_seq"
        f" AND o.public = 1 AND o.type IN ({marks}))"
        " AND EXISTS (SELECT 1 FROM followers f JOIN remote_actors a ON a.id = f.remote_actor"
        " WHERE f.local_actor = ? AND f.state = 'accepted' AND f.reader = 'proposal'"
        " AND a.origin = ? AND a.type = 'Group' AND a.is_meshnode = 1)"
        " AND NOT EXISTS (SELECT 1 FROM peers WHERE origin = ? AND blocked = 1)",
        (now, host, beyond, *CATCH_UP_TYPES, community, host, host))
    return cursor.rowcount


async def host_pause(db: aiosqlite.Connection, host: str, now: str) -> str | None:
    """Until when ``host`` is paused (it told us to wait), or None if it is not (now)."""
    async with query(db, "SELECT paused_until FROM delivery_pauses WHERE host = ?"
                         " AND paused_until > ?", (host, now)) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None


async def pause_host(db: aiosqlite.Connection, host: str, *, until: str, status: int,
                     now: str, most: int) -> bool:
    """Pause ``host`` until ``until`` (its latest answer's time replaces an earlier one).
    Pauses past their time are deleted first; a new host is not paused when ``most`` hosts
    already are (False: its deliveries keep only their own wait, as without pauses)."""
    await db.execute("DELETE FROM delivery_pauses WHERE paused_until <= ?", (now,))
    cursor = await db.execute(
        "INSERT INTO delivery_pauses (host, paused_until, status, since) SELECT ?, ?, ?, ?"
        " WHERE EXISTS (SELECT 1 FROM delivery_pauses WHERE host = ?)"
        " OR (SELECT count(*) FROM delivery_pauses) < ?"
        " ON CONFLICT(host) DO UPDATE SET paused_until = excluded.paused_until,"
        " status = excluded.status, since = excluded.since",
        (host, until, status, now, host, most))
    return cursor.rowcount == 1


async def hold_for_pause(db: aiosqlite.Connection, host: str, until: str) -> int:
    """Put the pending deliveries to ``host`` due before ``until`` off to ``until`` (a
    paused host's; nothing was sent, so no attempt is counted). Returns how many."""
    cursor = await db.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending'"
        " AND next_attempt_at < ?", (until, host, until))
    return cursor.rowcount


async def end_host_pause(db: aiosqlite.Connection, host: str, now: str) -> int:
    """End ``host``'s pause (it answered 2xx): the deliveries it held (due at its end) are
    due now. Returns how many."""
    cursor = await db.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE host = ? AND state = 'pending'"
        " AND next_attempt_at = (SELECT paused_until FROM delivery_pauses WHERE host = ?)",
        (now, host, host))
    await db.execute("DELETE FROM delivery_pauses WHERE host = ?", (host,))
    return cursor.rowcount


async def delivery_summary(db: aiosqlite.Connection, now: str | None = None
                           ) -> list[aiosqlite.Row]:
    """Per host: pending / done / failed counts, those left to the peer's catch-up
    (``leave_to_catch_up``), the last error, and reachability: the last success, how many
    deliveries fail (retrying or given up after an error), since when (the oldest of them
    was queued) and the next retry (for admins); ``paused_until``: until when the host
    asked us to wait (``pause_host``), if that is after ``now`` (any stored pause without
    ``now``)."""
    async with query(db,
        "SELECT host, sum(state = 'pending') AS pending, sum(state = 'done') AS done,"
        " sum(state = 'failed') AS failed, sum(state = 'left') AS left_to_catch_up,"
        " max(CASE WHEN state = 'done' THEN done_at END) AS last_done,"
        " sum(state IN ('pending', 'failed') AND last_error IS NOT NULL) AS failing,"
        " min(CASE WHEN state IN ('pending', 'failed') AND last_error IS NOT NULL"
        " THEN created_at END) AS failing_since,"
        " min(CASE WHEN state = 'pending' AND attempts > 0 THEN next_attempt_at END)"
        " AS next_retry,"
        " (SELECT last_error FROM deliveries e WHERE e.host = d.host AND e.last_error IS NOT"
        " NULL ORDER BY e.id DESC LIMIT 1) AS last_error,"
        " (SELECT p.paused_until FROM delivery_pauses p WHERE p.host = d.host"
        " AND p.paused_until > ?) AS paused_until FROM deliveries d GROUP BY host"
        " ORDER BY host", (now or "",)) as cursor:
        return list(await cursor.fetchall())


async def host_scheme(db: aiosqlite.Connection, host: str) -> str | None:
    """The signature scheme that last worked with ``host``."""
    async with query(db, "SELECT scheme FROM delivery_hosts WHERE host = ?", (host,)) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None


async def set_host_scheme(db: aiosqlite.Connection, host: str, scheme: str, now: str) -> None:
    """Remember which signature scheme ``host`` accepted."""
    await db.execute(
        "INSERT INTO delivery_hosts (host, scheme, updated_at) VALUES (?,?,?)"
        " ON CONFLICT(host) DO UPDATE SET scheme = excluded.scheme,"
        " updated_at = excluded.updated_at", (host, scheme, now))


async def drop_pending_for_host(db: aiosqlite.Connection, host: str, now: str) -> int:
    """Give up every pending delivery to a blocked host."""
    cursor = await db.execute(
        "UPDATE deliveries SET state = 'failed', last_error = 'blocked', done_at = ?"
        " WHERE host = ? AND state = 'pending'", (now, host))
    return cursor.rowcount
