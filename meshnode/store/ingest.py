"""Batched writes for incoming listings: a whole inbox batch in a few statements.

Each ``await`` on aiosqlite is a hop to the connection's thread and back; storing listings one
by one cost about ten hops each. These queries read the batch's existing rows with one
``IN (...)`` and write it with ``executemany`` (one prepared statement, run for every row in
the connection's thread). The full-text index follows through its triggers in the same
transaction: FTS5 gathers the batch's new terms in memory and writes them as one new
segment when the transaction commits (https://sqlite.org/fts5.html#the_automerge_option).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from meshnode.protocol.records import quick_init
from meshnode.protocol.trust import SignatureCheck
from meshnode.store.db import query
from meshnode.store.listings import (
    RETURNED,
    ListingColumns,
    ListingRow,
    insert_statements,
    listing_rows,
    listing_values,
    placeholders,
)

CHUNK = 500  # values per IN (...): well under SQLite's default limit of 32,766 variables


@quick_init
@dataclass(frozen=True)
class NewRemoteListing:
    """A remote listing seen for the first time, with the check of its author's proof."""

    listing_id: str
    object_id: str
    author_uri: str
    origin: str
    columns: ListingColumns
    published_at: str
    updated_at: str
    signed_object: str
    check: SignatureCheck


@quick_init
@dataclass(frozen=True)
class QueuedAnnounce:
    """An Announce to log in the outbox and deliver to ``inboxes`` ((inbox, host) pairs).

    With ``object_of`` (a listing's id), ``body`` is the Announce's JSON before its object
    and ``body_tail`` the JSON after it: the object is that listing's stored signed text,
    not written a second time (migration ``0021_ingest21_announce_text``)."""

    activity_id: str
    actor: str
    object_id: str
    body: str
    inboxes: tuple[tuple[str, str], ...]
    object_of: str | None = None
    body_tail: str | None = None


# The rows back as ``store.listings`` reads them (RETURNING's order is unspecified: by id).
_RETURNING = f" RETURNING {RETURNED}"


def _listing_values(r: NewRemoteListing) -> tuple[object, ...]:
    return listing_values(
        listing_id=r.listing_id, object_id=r.object_id, author_id=None, author_uri=r.author_uri,
        origin=r.origin, is_local=False, columns=r.columns, published_at=r.published_at,
        updated_at=r.updated_at, signed_object=r.signed_object)


async def insert_remote_listings(db: aiosqlite.Connection,
                                 rows: Sequence[NewRemoteListing]) -> list[ListingRow]:
    """Insert new remote listings at version 1 with their signed version and its check:
    two statements for the whole batch. The version's text is the listing's own (stored
    once: ``''`` in ``listing_versions``, migration ``0019_worker17e_one_copy``). Returns
    the listings as stored, in the order of ``rows`` (``RETURNING``: not read again). The
    listings go in multi-row INSERTs (``store.listings.insert_statements``).
    """
    stored: dict[str, ListingRow] = {}
    for sql, params in insert_statements([_listing_values(row) for row in rows], _RETURNING):
        returned = await db.execute_fetchall(sql, params)
        stored.update((row.id, row) for row in listing_rows(list(returned)))
    await db.executemany(
        "INSERT INTO listing_versions (listing_id, version, signed_object, created_at,"
        " verified, key_id, key_fingerprint, rule, checked_at, check_error)"
        " VALUES (?, 1, '', ?, ?, ?, ?, ?, ?, ?)",
        [(r.listing_id, r.published_at, int(r.check.verified),
          r.check.key_id, r.check.fingerprint, r.check.rule, r.check.checked_at,
          r.check.error) for r in rows])
    return [stored[row.listing_id] for row in rows]


async def logged_activity_ids(db: aiosqlite.Connection,
                              activity_ids: Sequence[str]) -> set[str]:
    """Which of ``activity_ids`` the outbox log already holds."""
    found: set[str] = set()
    for start in range(0, len(activity_ids), CHUNK):
        ids = list(activity_ids[start:start + CHUNK])
        sql = ("SELECT activity_id FROM outbox_activities"  # noqa: S608 - marks only
               f" WHERE activity_id IN ({placeholders(ids)})")
        async with query(db, sql, ids) as cursor:
            found.update(str(row[0]) for row in await cursor.fetchall())
    return found


async def queue_announces(db: aiosqlite.Connection, announces: Sequence[QueuedAnnounce],
                          now: str) -> None:
    """Log public Announces in the outbox and queue their deliveries, due now (what
    ``services.publishing.queue_activity`` does for one). Ids must be new
    (``logged_activity_ids``)."""
    await db.executemany(
        "INSERT INTO outbox_activities (activity_id, actor, type, object_id, public, body,"
        " created_at, object_of, body_tail) VALUES (?, ?, 'Announce', ?, 1, ?, ?, ?, ?)",
        [(a.activity_id, a.actor, a.object_id, a.body, now, a.object_of, a.body_tail)
         for a in announces])
    deliveries = [(host, inbox, now, now, a.activity_id)
                  for a in announces for inbox, host in a.inboxes]
    if deliveries:
        await db.executemany(
            "INSERT OR IGNORE INTO deliveries (outbox_seq, host, inbox, state, next_attempt_at,"
            " created_at) SELECT seq, ?, ?, 'pending', ?, ? FROM outbox_activities"
            " WHERE activity_id = ?", deliveries)
