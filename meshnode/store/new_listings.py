"""Writing a batch of new local listings in one hop to the writer's thread.

Publishing through the API cost about sixteen round trips through aiosqlite's thread per
listing (insert, version, check, followers, outbox, deliveries, ...: ~60 µs of CPU each,
a third of a publish; issue 17). ``write_new_listings`` runs every statement of a whole
batch of publishes in the connection's own thread (``db.in_connection_thread``), inside the
caller's transaction: the same rows as ``services.publishing.publish_listing_change`` and
``store.listings.insert_listing`` write for one listing, and the rows back as stored. The
batch's listings go in multi-row INSERTs (``store.listings.insert_statements``, as the inbox
worker's).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode.protocol.activities import origin_of
from meshnode.protocol.trust import SignatureCheck
from meshnode.store import federation as fq
from meshnode.store.db import in_connection_thread
from meshnode.store.listings import (
    ListingColumns,
    ListingRow,
    get_listings_here,
    insert_statements,
    listing_values,
)

_INSERT_VERSION = (
    "INSERT INTO listing_versions (listing_id, version, signed_object, created_at,"
    " verified, key_id, key_fingerprint, rule, checked_at, check_error)"
    " VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_ACTIVITY = (
    "INSERT OR IGNORE INTO outbox_activities (activity_id, actor, type, object_id, public,"
    " body, created_at) VALUES (?,?,?,?,?,?,?)")
_INSERT_DELIVERY = (
    "INSERT OR IGNORE INTO deliveries (outbox_seq, host, inbox, state, next_attempt_at,"
    " created_at) VALUES (?,?,?,'pending',?,?)")


@dataclass(frozen=True)
class Outgoing:
    """An activity to log in the outbox and deliver to the followers of ``followed``
    (accepted, reading ``reader`` documents, not on a blocked origin)."""

    activity: Mapping[str, Any]
    body: str  # the activity as sent (compact JSON)
    public: bool
    followed: tuple[str, ...]
    reader: str


@dataclass(frozen=True)
class NewLocalListing:
    """A listing a member just published: its row at version 1, the check kept with that
    version, the Create for the followers reading Proposals, and, built only when the
    community has followers reading Notes, the Group's Create of the Note."""

    listing_id: str
    object_id: str
    author_id: int
    author_uri: str
    origin: str
    columns: ListingColumns
    published_at: str
    signed_object: str
    check: SignatureCheck
    create: Outgoing
    note_followed: tuple[str, ...]  # the community Group
    note: Callable[[], Outgoing]


async def write_new_listings(tx: aiosqlite.Connection,
                             listings: Sequence[NewLocalListing]) -> list[ListingRow]:
    """Insert ``listings`` (full-text index by trigger) with their checked first version and
    queue their deliveries, in the caller's transaction and one hop; the rows as stored."""
    return await in_connection_thread(tx, lambda conn: _write(conn, listings))


def _write(conn: sqlite3.Connection, listings: Sequence[NewLocalListing]) -> list[ListingRow]:
    inboxes: dict[tuple[tuple[str, ...], str], list[str]] = {}  # same transaction: same answer
    for sql, params in insert_statements([listing_values(
            listing_id=new.listing_id, object_id=new.object_id, author_id=new.author_id,
            author_uri=new.author_uri, origin=new.origin, is_local=True, columns=new.columns,
            published_at=new.published_at, updated_at=new.published_at,
            signed_object=new.signed_object) for new in listings]):
        conn.execute(sql, params)  # the batch's listings first, in multi-row INSERTs
    for new in listings:
        check = new.check
        conn.execute(_INSERT_VERSION, (
            new.listing_id, new.signed_object, new.published_at, int(check.verified),
            check.key_id, check.fingerprint, check.rule, check.checked_at, check.error))
        _queue(conn, new.create, inboxes, new.published_at)
        if _inboxes(conn, inboxes, new.note_followed, "note"):
            _queue(conn, new.note(), inboxes, new.published_at)
    rows = {row.id: row for row in get_listings_here(conn, [n.listing_id for n in listings])}
    return [rows[new.listing_id] for new in listings]


def _inboxes(conn: sqlite3.Connection, known: dict[tuple[tuple[str, ...], str], list[str]],
             followed: tuple[str, ...], reader: str) -> list[str]:
    key = (followed, reader)
    if key not in known:
        sql, params = fq.delivery_inboxes_query(followed, reader)
        known[key] = list(dict.fromkeys(str(row[0]) for row in conn.execute(sql, params)))
    return known[key]


def _queue(conn: sqlite3.Connection, out: Outgoing,
           known: dict[tuple[tuple[str, ...], str], list[str]], now: str) -> None:
    """``services.publishing.queue_activity`` for one activity, in the thread."""
    obj = out.activity.get("object")
    object_id = obj.get("id") if isinstance(obj, Mapping) else obj
    cursor = conn.execute(_INSERT_ACTIVITY, (
        str(out.activity["id"]), str(out.activity["actor"]), str(out.activity["type"]),
        object_id if isinstance(object_id, str) else None, int(out.public), out.body, now))
    if cursor.rowcount != 1:
        return  # logged before: its deliveries were queued then
    seq = cursor.lastrowid
    for inbox in _inboxes(conn, known, out.followed, out.reader):
        conn.execute(_INSERT_DELIVERY, (seq, origin_of(inbox), inbox, now, now))
