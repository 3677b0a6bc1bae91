"""Queries on saved searches, their inverted word index, and the matches already told."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query

_COLUMNS = ("id, member_id, listing_id, q, kind, category, near, near_lat, near_lon,"
            " radius_km, max_price, need, created_at")


@dataclass(frozen=True)
class AlertRow:
    """A saved search (``listing_id`` None) or what a stored listing wants."""

    id: int
    member_id: int | None
    listing_id: str | None
    q: str
    kind: str
    category: str | None
    near: str | None
    near_lat: float | None
    near_lon: float | None
    radius_km: float | None
    max_price: int | None
    need: int
    created_at: str


@dataclass(frozen=True)
class NewAlert:
    """What :func:`insert_alert` writes."""

    member_id: int | None
    listing_id: str | None
    q: str
    kind: str
    category: str | None
    near: tuple[float, float] | None
    radius_km: float | None
    max_price: int | None
    terms: tuple[str, ...]


@dataclass(frozen=True)
class Arrival:
    """The facts of a listing that alerts are matched against."""

    listing_id: str
    author_id: int | None
    kind: str
    category: str
    price_units: int  # 0 for free and swap
    lat: float | None
    lon: float | None
    prefixes: frozenset[str]
    now: str


async def insert_alert(db: aiosqlite.Connection, alert: NewAlert, created_at: str) -> int:
    """Store an alert and its words; returns its id."""
    lat, lon = alert.near if alert.near is not None else (None, None)
    near = None if alert.near is None else f"{lat:.5f},{lon:.5f}"
    cursor = await db.execute(
        "INSERT INTO alerts (member_id, listing_id, q, kind, category, near, near_lat,"
        " near_lon, radius_km, max_price, need, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (alert.member_id, alert.listing_id, alert.q, alert.kind, alert.category, near, lat,
         lon, alert.radius_km, alert.max_price, len(alert.terms), created_at))
    alert_id = cursor.lastrowid
    if alert_id is None:
        raise RuntimeError("SQLite gave no id for the new alert")
    await db.executemany("INSERT OR IGNORE INTO alert_terms (term, alert_id) VALUES (?, ?)",
                         [(term, alert_id) for term in alert.terms])
    return alert_id


async def saved_by(db: aiosqlite.Connection, member_id: int) -> list[AlertRow]:
    """A member's saved searches, oldest first."""
    async with query(db, f"SELECT {_COLUMNS} FROM alerts WHERE member_id = ?"  # noqa: S608
                     " AND listing_id IS NULL ORDER BY id", (member_id,)) as cursor:
        return [AlertRow(**dict(row)) for row in await cursor.fetchall()]


async def count_saved_by(db: aiosqlite.Connection, member_id: int) -> int:
    """How many saved searches a member keeps."""
    async with query(db, "SELECT count(*) FROM alerts WHERE member_id = ?"
                     " AND listing_id IS NULL", (member_id,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def delete_saved(db: aiosqlite.Connection, member_id: int, alert_id: int) -> bool:
    """Delete one of the member's saved searches (False: none of theirs has this id)."""
    cursor = await db.execute("DELETE FROM alerts WHERE id = ? AND member_id = ?"
                              " AND listing_id IS NULL", (alert_id, member_id))
    return cursor.rowcount == 1


async def replace_wants(db: aiosqlite.Connection, listing_id: str,
                        wants: Iterable[NewAlert], created_at: str) -> list[int]:
    """Replace what a listing wants by ``wants`` (none: it wants nothing any more)."""
    await db.execute("DELETE FROM alerts WHERE listing_id = ?", (listing_id,))
    return [await insert_alert(db, want, created_at) for want in wants]


async def wants_of(db: aiosqlite.Connection, listing_ids: Sequence[str]) -> list[AlertRow]:
    """What these listings want."""
    async with query(db, f"SELECT {_COLUMNS} FROM alerts WHERE listing_id IN"  # noqa: S608
                     " (SELECT value FROM json_each(?)) ORDER BY id",
                     (json.dumps(list(listing_ids)),)) as cursor:
        return [AlertRow(**dict(row)) for row in await cursor.fetchall()]


# The filters an alert puts on a listing besides its words. Listing wants count only while
# their listing is live (active, visible, not expired).
_FILTERS = (
    " a.kind = :kind AND (a.category IS NULL OR a.category = :category)"
    " AND (a.max_price IS NULL OR a.max_price >= :price)"
    " AND (a.near_lat IS NULL OR (:lat IS NOT NULL AND"
    " haversine_km(a.near_lat, a.near_lon, :lat, :lon) <= a.radius_km))"
    " AND (a.member_id IS NULL OR :author IS NULL OR a.member_id != :author)"
    " AND (a.listing_id IS NULL OR (a.listing_id != :listing AND EXISTS (SELECT 1 FROM"
    " listings w WHERE w.id = a.listing_id AND w.status = 'active' AND w.hidden = 0"
    " AND (w.expires_at IS NULL OR w.expires_at > :now))))"
)
# Words first: the listing's word prefixes are looked up in the (term, alert) primary key,
# so the cost follows the listing's length and the alerts sharing its words, never the
# number of alerts. Alerts without words come from their own (kind, category) index.
# Built once at import from the constants above; every value is a bound parameter.
_A_COLUMNS = ", ".join("a." + c.strip() for c in _COLUMNS.split(","))
_MATCHING = (
    f"SELECT {_A_COLUMNS} FROM"  # noqa: S608
    " (SELECT t.alert_id AS id, count(*) AS hits FROM alert_terms t"
    "  WHERE t.term IN (SELECT value FROM json_each(:terms)) GROUP BY t.alert_id) f"
    f" JOIN alerts a ON a.id = f.id AND f.hits >= a.need WHERE {_FILTERS}"
    f" UNION ALL SELECT {_A_COLUMNS}"
    " FROM alerts a WHERE a.need = 0 AND a.kind = :kind AND a.category = :category"
    f" AND {_FILTERS}"
)


async def matching(db: aiosqlite.Connection, arrival: Arrival) -> list[AlertRow]:
    """Every alert (saved search or listing want) the arriving listing satisfies."""
    params = {
        "terms": json.dumps(sorted(arrival.prefixes)), "kind": arrival.kind,
        "category": arrival.category, "price": arrival.price_units, "lat": arrival.lat,
        "lon": arrival.lon, "author": arrival.author_id, "listing": arrival.listing_id,
        "now": arrival.now,
    }
    async with query(db, _MATCHING, params) as cursor:
        return [AlertRow(**dict(row)) for row in await cursor.fetchall()]


async def record_match(db: aiosqlite.Connection, alert_id: int, listing_id: str,
                       member_id: int | None, now: str) -> bool:
    """Remember that ``alert_id`` matched ``listing_id``; False if it had already."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO alert_matches (alert_id, listing_id, member_id, created_at)"
        " VALUES (?, ?, ?, ?)", (alert_id, listing_id, member_id, now))
    return cursor.rowcount == 1


async def member_told(db: aiosqlite.Connection, member_id: int, listing_id: str) -> bool:
    """Whether the member was already told of this listing by one of their alerts."""
    async with query(db, "SELECT 1 FROM alert_matches WHERE member_id = ? AND listing_id = ?"
                     " LIMIT 1", (member_id, listing_id)) as cursor:
        return await cursor.fetchone() is not None


async def terms_of(db: aiosqlite.Connection, alert_id: int) -> frozenset[str]:
    """The folded words of one alert."""
    async with query(db, "SELECT term FROM alert_terms WHERE alert_id = ?",
                     (alert_id,)) as cursor:
        return frozenset(str(row[0]) for row in await cursor.fetchall())


async def members_told(db: aiosqlite.Connection, listing_id: str) -> set[int]:
    """The members already told of a listing by one of their alerts."""
    async with query(db, "SELECT DISTINCT member_id FROM alert_matches WHERE listing_id = ?"
                     " AND member_id IS NOT NULL", (listing_id,)) as cursor:
        return {int(row[0]) for row in await cursor.fetchall()}


async def any_alerts(db: aiosqlite.Connection) -> bool:
    """Whether any saved search or listing want exists on this node."""
    async with query(db, "SELECT EXISTS (SELECT 1 FROM alerts)", ()) as cursor:
        row = await cursor.fetchone()
    return bool(row and row[0])
