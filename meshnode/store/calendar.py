"""Queries of private calendar feeds: their secret's hash, and a member's timed deals."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class CalendarDeal:
    """A deal as a calendar shows it: when, what, where, its state and how often it moved."""

    id: str
    agreement_id: str
    listing_id: str
    category: str
    state: str
    title: str
    place: str
    starts: str
    ends: str | None
    updated_at: str
    created_at: str
    moves: int  # transitions after the request: the event's SEQUENCE


async def set_token(db: aiosqlite.Connection, member_id: int, token_hash: str,
                    now: str) -> None:
    """Give the member a new feed secret (the previous one stops working)."""
    await db.execute(
        "INSERT INTO calendar_tokens (member_id, token_hash, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (member_id) DO UPDATE SET token_hash = excluded.token_hash,"
        " created_at = excluded.created_at", (member_id, token_hash, now))


async def delete_token(db: aiosqlite.Connection, member_id: int) -> bool:
    """Turn the member's feed off; False if there was none."""
    cursor = await db.execute("DELETE FROM calendar_tokens WHERE member_id = ?", (member_id,))
    return cursor.rowcount == 1


async def member_of_token(db: aiosqlite.Connection, token_hash: str) -> int | None:
    """The active member whose feed secret hashes to ``token_hash``."""
    async with query(db, "SELECT t.member_id FROM calendar_tokens t JOIN members m"
                     " ON m.id = t.member_id WHERE t.token_hash = ? AND m.disabled_at IS NULL",
                     (token_hash,)) as rows:
        row = await rows.fetchone()
    return int(row[0]) if row else None


async def token_created(db: aiosqlite.Connection, member_id: int) -> str | None:
    """When the member's current feed secret was made (None: no feed)."""
    async with query(db, "SELECT created_at FROM calendar_tokens WHERE member_id = ?",
                     (member_id,)) as rows:
        row = await rows.fetchone()
    return str(row[0]) if row else None


_DEALS = (
    "SELECT d.id, d.agreement_id, d.listing_id, d.category, d.state, l.title,"
    " l.location_name AS place, COALESCE(d.slot_start, d.agreed_at) AS starts,"
    " d.slot_end AS ends, d.updated_at, d.created_at,"
    " (SELECT MAX(COUNT(*) - 1, 0) FROM deal_events e WHERE e.deal_id = d.id) AS moves"
    " FROM deals d JOIN listings l ON l.id = d.listing_id"
    " WHERE {who} AND COALESCE(d.slot_start, d.agreed_at) IS NOT NULL"
    " AND COALESCE(d.slot_end, d.agreed_at) >= ?")


async def timed_deals(db: aiosqlite.Connection, member_id: int, since: str,
                      limit: int = 500) -> list[CalendarDeal]:
    """The member's deals (booker or author) with an agreed time ending after ``since``,
    soonest first."""
    found: dict[str, CalendarDeal] = {}
    for who in ("d.booker_id = ?", "d.author_id = ?"):  # each side uses its own index
        async with query(db, _DEALS.format(who=who) + " ORDER BY starts LIMIT ?",
                         (member_id, since, limit)) as rows:
            for row in await rows.fetchall():
                found[str(row["id"])] = CalendarDeal(**dict(row))
    return sorted(found.values(), key=lambda d: (d.starts, d.id))[:limit]


async def timed_deal(db: aiosqlite.Connection, deal_id: str) -> CalendarDeal | None:
    """One deal as a calendar event (None: no such deal, or it has no agreed time)."""
    async with query(db, _DEALS.format(who="d.id = ?"), (deal_id, "")) as rows:
        row = await rows.fetchone()
    return CalendarDeal(**dict(row)) if row else None
