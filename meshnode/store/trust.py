"""Queries for signature checks kept per listing version, and remote actors' names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from meshnode.protocol.multikey import fingerprint
from meshnode.protocol.trust import SignatureCheck
from meshnode.store.db import query
from meshnode.store.listings import placeholders

# SQLite's default bound-parameter limit is far above this; pages ask for at most 100.
# Deals and transfers whose counterparts the names worker looks at: the newest this many.
RECENT = 500
CHUNK = 500  # ids per query; only "?" marks are formatted into these queries


async def record_check(db: aiosqlite.Connection, listing_id: str, version: int,
                       check: SignatureCheck) -> None:
    """Keep ``check`` with version ``version`` of the listing (replacing an older check)."""
    await db.execute(
        "UPDATE listing_versions SET verified = ?, key_id = ?, key_fingerprint = ?, rule = ?,"
        " checked_at = ?, check_error = ? WHERE listing_id = ? AND version = ?",
        (int(check.verified), check.key_id, check.fingerprint, check.rule, check.checked_at,
         check.error, listing_id, version),
    )


async def current_checks(db: aiosqlite.Connection,
                         listing_ids: Sequence[str]) -> dict[str, SignatureCheck]:
    """The check kept with each listing's current version (absent: never checked)."""
    found: dict[str, SignatureCheck] = {}
    for start in range(0, len(listing_ids), CHUNK):
        ids = list(listing_ids[start:start + CHUNK])
        sql = (
            "SELECT v.listing_id, v.verified, v.key_id, v.key_fingerprint, v.rule,"  # noqa: S608
            " v.checked_at, v.check_error FROM listings l JOIN listing_versions v"
            " ON v.listing_id = l.id AND v.version = l.version"
            f" WHERE l.id IN ({placeholders(ids)}) AND v.verified IS NOT NULL"
        )
        async with query(db, sql, ids) as cursor:
            for row in await cursor.fetchall():
                found[row[0]] = SignatureCheck(bool(row[1]), row[2], row[3], row[4], row[5],
                                               row[6])
    return found


async def ed25519_keys_of(db: aiosqlite.Connection,
                          actor_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """For each cached actor: its Ed25519 key ids and their fingerprints, as known now."""
    keys: dict[str, dict[str, str]] = {}
    for start in range(0, len(actor_ids), CHUNK):
        ids = list(actor_ids[start:start + CHUNK])
        sql = ("SELECT a.id, k.key_id, k.material FROM remote_actors a LEFT JOIN remote_keys k"  # noqa: S608
               " ON k.actor_id = a.id AND k.kind = 'ed25519'"
               f" WHERE a.id IN ({placeholders(ids)})")
        async with query(db, sql, ids) as cursor:
            for actor_id, key_id, material in await cursor.fetchall():
                entry = keys.setdefault(actor_id, {})
                if key_id is not None:
                    entry[key_id] = fingerprint(bytes.fromhex(material))
    return keys


@dataclass(frozen=True)
class ActorNameRow:
    """What pages need of a cached remote actor."""

    id: str
    type: str
    name: str
    username: str
    fetched_at: str


async def actor_names(db: aiosqlite.Connection,
                      actor_ids: Sequence[str]) -> dict[str, ActorNameRow]:
    """Cached names of these remote actors (absent when never fetched)."""
    found: dict[str, ActorNameRow] = {}
    unique = sorted(set(actor_ids))
    for start in range(0, len(unique), CHUNK):
        ids = unique[start:start + CHUNK]
        sql = ("SELECT id, type, name, username, fetched_at FROM remote_actors"  # noqa: S608
               f" WHERE id IN ({placeholders(ids)})")
        async with query(db, sql, ids) as cursor:
            for row in await cursor.fetchall():
                found[row[0]] = ActorNameRow(row[0], row[1], row[2], row[3], row[4])
    return found


async def peer_actors(db: aiosqlite.Connection) -> dict[str, str]:
    """Origin → its community (Group) actor id: a peer's actor, else a cached Group actor on
    that origin (a community whose listings reach us through a relay)."""
    sql = ("SELECT origin, min(id) FROM remote_actors WHERE type = 'Group' GROUP BY origin"
           " UNION ALL SELECT origin, actor_id FROM peers WHERE actor_id IS NOT NULL")
    async with query(db, sql) as cur:
        return {row[0]: row[1] for row in await cur.fetchall()}


async def actors_due_refresh(db: aiosqlite.Connection, before: str,
                             limit: int) -> list[str]:
    """Cached actors we show names of (listing authors, peers, parties to our latest deals)
    not fetched or tried since ``before``, oldest first. Only actors already accepted are
    ever refreshed; the partial index ``listings_remote_author`` keeps this cheap."""
    sql = (
        "WITH d AS (SELECT booker_uri, author_uri FROM deals ORDER BY rowid DESC LIMIT ?)"
        " SELECT a.id FROM remote_actors a"
        " WHERE coalesce(a.refresh_attempted_at, a.fetched_at) < ?"
        " AND a.origin NOT IN (SELECT origin FROM peers WHERE blocked = 1)"
        " AND (EXISTS (SELECT 1 FROM listings l WHERE l.author_uri = a.id AND l.is_local = 0)"
        "  OR a.id IN (SELECT actor_id FROM peers WHERE blocked = 0 AND actor_id IS NOT NULL)"
        "  OR a.id IN (SELECT booker_uri FROM d) OR a.id IN (SELECT author_uri FROM d))"
        " ORDER BY coalesce(a.refresh_attempted_at, a.fetched_at) LIMIT ?"
    )
    async with query(db, sql, (RECENT, before, limit)) as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def mark_refresh_failed(db: aiosqlite.Connection, actor_id: str, now: str,
                              error: str) -> None:
    """Remember a failed refresh so the actor waits for its next turn."""
    await db.execute(
        "UPDATE remote_actors SET refresh_attempted_at = ?, refresh_error = ? WHERE id = ?",
        (now, error[:200], actor_id))


async def actor_fetched_at(db: aiosqlite.Connection, actor_id: str) -> str | None:
    """When this actor's document was last fetched, or None if never."""
    async with query(db, "SELECT fetched_at FROM remote_actors WHERE id = ?",
                     (actor_id,)) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def member_display_names(db: aiosqlite.Connection,
                               usernames: Sequence[str]) -> dict[str, str]:
    """Local members' display names by username ('' when they set none)."""
    unique = sorted(set(usernames))
    found: dict[str, str] = {}
    for start in range(0, len(unique), CHUNK):
        names = unique[start:start + CHUNK]
        sql = ("SELECT username, display_name FROM members"  # noqa: S608
               f" WHERE username IN ({placeholders(names)})")
        async with query(db, sql, names) as cursor:
            found.update({row[0]: row[1] for row in await cursor.fetchall()})
    return found


async def ed25519_material(db: aiosqlite.Connection, key_id: str) -> tuple[str, bytes] | None:
    """(actor id, raw public key) of a cached remote Ed25519 key, or None."""
    async with query(db, "SELECT actor_id, material FROM remote_keys WHERE key_id = ?"
                         " AND kind = 'ed25519'", (key_id,)) as cursor:
        row = await cursor.fetchone()
    return (str(row[0]), bytes.fromhex(row[1])) if row else None


async def transfer_ends(db: aiosqlite.Connection,
                        transfer_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(payer, payee) as recorded for these cross-node transfers (actor URIs or usernames)."""
    ids = sorted(set(transfer_ids))
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        sql = f"SELECT id, payer, payee FROM iou_transfers WHERE id IN ({placeholders(chunk)})"  # noqa: S608
        async with query(db, sql, chunk) as cursor:
            found.update({row[0]: (row[1], row[2]) for row in await cursor.fetchall()})
    return found


async def unchecked_listings(db: aiosqlite.Connection, limit: int) -> list[str]:
    """Listings whose current version has no kept check but can be checked without the
    network: local ones, and remote ones whose proof's key is cached (stored before checks
    were kept, e.g. by an older meshnode)."""
    # CROSS JOIN keeps this order: from the few unchecked versions (a partial index,
    # migration 0016_pages17_startup_index) to their listings, not through every listing.
    sql = (
        "SELECT l.id FROM listing_versions v CROSS JOIN listings l"
        " ON l.id = v.listing_id AND l.version = v.version"
        " WHERE v.verified IS NULL AND (l.is_local = 1 OR EXISTS (SELECT 1 FROM remote_keys k"
        "  WHERE k.kind = 'ed25519' AND k.actor_id = l.author_uri"
        "  AND k.key_id = json_extract(l.signed_object, '$.proof.verificationMethod')))"
        " ORDER BY l.seq LIMIT ?"
    )
    async with query(db, sql, (limit,)) as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def unnamed_actors(db: aiosqlite.Connection, limit: int) -> list[str]:
    """Remote actors on the other side of our latest deals and cross-node transfers that
    were never fetched, on the origin of a peer we have not blocked (never a stranger's
    URL). Only the ``RECENT`` newest rows are read: older ones were named in their time."""
    sql = (
        "WITH t AS (SELECT payer, payee FROM iou_transfers ORDER BY rowid DESC LIMIT ?),"
        " d AS (SELECT booker_uri, author_uri FROM deals ORDER BY rowid DESC LIMIT ?)"
        " SELECT DISTINCT u.actor FROM (SELECT payer AS actor FROM t UNION ALL"
        "  SELECT payee FROM t UNION ALL SELECT booker_uri FROM d UNION ALL"
        "  SELECT author_uri FROM d) u"
        " WHERE u.actor NOT IN (SELECT id FROM remote_actors)"
        " AND EXISTS (SELECT 1 FROM peers p WHERE p.blocked = 0"
        "  AND substr(u.actor, 1, length(p.origin) + 1) = p.origin || '/')"
        " LIMIT ?"
    )
    async with query(db, sql, (RECENT, RECENT, limit)) as cursor:
        return [row[0] for row in await cursor.fetchall()]
