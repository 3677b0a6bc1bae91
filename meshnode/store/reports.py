"""Queries on reports: members' reports of listings, Flags sent to and received from other
nodes (``direction`` local / out / in)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class ReportRow:
    """A report about a listing (or, for one received from another node, about objects this
    node may not know: ``listing_id`` None and ``unknown_object`` True)."""

    id: int
    listing_id: str | None
    listing_title: str | None
    listing_hidden: bool
    reporter_username: str | None
    reason: str
    created_at: str
    resolved_at: str | None
    resolution: str | None
    category: str = "other"
    anonymous: bool = False
    direction: str = "local"
    flag_id: str | None = None
    remote_community: str | None = None
    remote_actor: str | None = None
    reply_inbox: str | None = None
    objects: str = "[]"
    unknown_object: bool = False
    listing_origin: str | None = None


@dataclass(frozen=True)
class NewReport:
    """The columns of a report to insert."""

    listing_id: str | None
    reporter_id: int | None
    reason: str
    created_at: str
    category: str = "other"
    anonymous: bool = False
    direction: str = "local"
    flag_id: str | None = None
    remote_community: str | None = None
    remote_actor: str | None = None
    reply_inbox: str | None = None
    objects: str = "[]"
    unknown_object: bool = False


_SELECT = (
    "SELECT r.id, r.listing_id, l.title AS listing_title, l.hidden AS listing_hidden,"
    " l.origin AS listing_origin, m.username AS reporter_username, r.reason, r.created_at,"
    " r.resolved_at, r.resolution, r.category, r.anonymous, r.direction, r.flag_id,"
    " r.remote_community, r.remote_actor, r.reply_inbox, r.objects, r.unknown_object"
    " FROM reports r LEFT JOIN listings l ON l.id = r.listing_id"
    " LEFT JOIN members m ON m.id = r.reporter_id"
)


def _row(row: aiosqlite.Row) -> ReportRow:
    data = dict(row)
    for name in ("listing_hidden", "anonymous", "unknown_object"):
        data[name] = bool(data[name])
    return ReportRow(**data)


async def insert_report(db: aiosqlite.Connection, new: NewReport) -> int | None:
    """Store a report; returns its id, or None when its Flag id was stored before."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO reports (listing_id, reporter_id, reason, created_at, category,"
        " anonymous, direction, flag_id, remote_community, remote_actor, reply_inbox, objects,"
        " unknown_object) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (new.listing_id, new.reporter_id, new.reason, new.created_at, new.category,
         int(new.anonymous), new.direction, new.flag_id, new.remote_community, new.remote_actor,
         new.reply_inbox, new.objects, int(new.unknown_object)),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


async def list_reports(
    db: aiosqlite.Connection, *, open_only: bool, limit: int = 100
) -> list[ReportRow]:
    """Reports, newest first (only unresolved ones if ``open_only``)."""
    async with query(db, _SELECT + " WHERE (? = 0 OR r.resolved_at IS NULL)"
                     " ORDER BY r.id DESC LIMIT ?", (int(open_only), limit)) as cursor:
        return [_row(row) for row in await cursor.fetchall()]


async def get_report(db: aiosqlite.Connection, report_id: int) -> ReportRow | None:
    """One report by id."""
    async with query(db, _SELECT + " WHERE r.id = ?", (report_id,)) as cursor:
        row = await cursor.fetchone()
    return _row(row) if row else None


async def get_by_flag(db: aiosqlite.Connection, flag_id: str) -> ReportRow | None:
    """The report a Flag id belongs to (sent or received)."""
    async with query(db, _SELECT + " WHERE r.flag_id = ?", (flag_id,)) as cursor:
        row = await cursor.fetchone()
    return _row(row) if row else None


async def reported_since(db: aiosqlite.Connection, reporter_id: int, listing_id: str,
                         since: str) -> bool:
    """True when this member reported this listing at or after ``since``."""
    async with query(db, "SELECT 1 FROM reports WHERE reporter_id = ? AND listing_id = ?"
                         " AND created_at >= ? LIMIT 1", (reporter_id, listing_id, since)) as cur:
        return await cur.fetchone() is not None


async def open_received_for_listing(db: aiosqlite.Connection,
                                    listing_id: str) -> list[ReportRow]:
    """Open reports received from other nodes about one listing."""
    async with query(db, _SELECT + " WHERE r.listing_id = ? AND r.direction = 'in'"
                     " AND r.resolved_at IS NULL", (listing_id,)) as cursor:
        return [_row(row) for row in await cursor.fetchall()]


async def resolve(db: aiosqlite.Connection, report_id: int, resolution: str, now: str) -> bool:
    """Close one open report; False when it was already closed."""
    cursor = await db.execute(
        "UPDATE reports SET resolved_at = ?, resolution = ? WHERE id = ? AND resolved_at IS NULL",
        (now, resolution, report_id))
    return cursor.rowcount == 1


async def resolve_for_listing(
    db: aiosqlite.Connection, listing_id: str, resolution: str, now: str
) -> int:
    """Close every open report on a listing with ``resolution`` (hidden, restored)."""
    cursor = await db.execute(
        "UPDATE reports SET resolved_at = ?, resolution = ? WHERE listing_id = ?"
        " AND resolved_at IS NULL AND direction != 'out'",
        (now, resolution, listing_id),
    )
    return cursor.rowcount

