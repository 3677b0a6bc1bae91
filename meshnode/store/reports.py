"""Queries on reports of inappropriate listings."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class ReportRow:
    """A member's report about a listing."""

    id: int
    listing_id: str
    listing_title: str
    listing_hidden: bool
    reporter_username: str | None
    reason: str
    created_at: str
    resolved_at: str | None
    resolution: str | None


async def insert_report(
    db: aiosqlite.Connection, *, listing_id: str, reporter_id: int, reason: str, created_at: str
) -> int:
    """Store a report; returns its id."""
    cursor = await db.execute(
        "INSERT INTO reports (listing_id, reporter_id, reason, created_at) VALUES (?, ?, ?, ?)",
        (listing_id, reporter_id, reason, created_at),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def list_reports(
    db: aiosqlite.Connection, *, open_only: bool, limit: int = 100
) -> list[ReportRow]:
    """Reports, newest first (only unresolved ones if ``open_only``)."""
    async with query(db,
        "SELECT r.id, r.listing_id, l.title AS listing_title, l.hidden AS listing_hidden,"
        " m.username AS reporter_username, r.reason, r.created_at, r.resolved_at, r.resolution"
        " FROM reports r JOIN listings l ON l.id = r.listing_id"
        " LEFT JOIN members m ON m.id = r.reporter_id"
        " WHERE (? = 0 OR r.resolved_at IS NULL) ORDER BY r.id DESC LIMIT ?",
        (int(open_only), limit),
    ) as cursor:
        rows = await cursor.fetchall()
    return [ReportRow(**{**dict(row), "listing_hidden": bool(row["listing_hidden"])})
            for row in rows]


async def resolve_for_listing(
    db: aiosqlite.Connection, listing_id: str, resolution: str, now: str
) -> int:
    """Close every open report on a listing with ``resolution`` (hidden, restored)."""
    cursor = await db.execute(
        "UPDATE reports SET resolved_at = ?, resolution = ? WHERE listing_id = ?"
        " AND resolved_at IS NULL",
        (now, resolution, listing_id),
    )
    return cursor.rowcount
