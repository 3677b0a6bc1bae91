"""Queries on deals, their transition log and feedback (callers hold the transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode.store.db import in_connection_thread, query


@dataclass(frozen=True)
class DealRow:
    """A deal as stored."""

    id: str
    agreement_id: str
    offer_id: str
    listing_id: str
    category: str
    booker_uri: str
    booker_id: int | None
    author_uri: str
    author_id: int | None
    state: str
    quantity: int
    slot_start: str | None
    slot_end: str | None
    amount: int
    deposit: int
    message: str
    reason: str
    offer: str
    answer: str | None
    agreed_at: str | None
    expires_at: str | None
    created_at: str
    updated_at: str
    listing_title: str = ""
    listing_unit: str = ""

    @property
    def is_local(self) -> bool:
        """Both parties are members of this node."""
        return self.booker_id is not None and self.author_id is not None


@dataclass(frozen=True)
class FeedbackRow:
    """Signed feedback on a completed deal."""

    id: str
    deal_id: str
    author_uri: str
    subject_uri: str
    rating: int
    comment: str
    no_show: bool
    document: str
    created_at: str


# The listing's unit comes along so pages say "2,5 kg", not "2.5" (issue 16).
_SELECT = ("SELECT d.*, l.title AS listing_title,"
           " CASE WHEN json_valid(l.details) AND json_type(l.details, '$.unit') = 'text'"
           " THEN json_extract(l.details, '$.unit') ELSE '' END AS listing_unit FROM deals d"
           " JOIN listings l ON l.id = d.listing_id")


def _deal(row: aiosqlite.Row) -> DealRow:
    return DealRow(**dict(row))


async def insert_deal(db: aiosqlite.Connection, **values: Any) -> None:
    """Insert a new deal (``values`` are the column values)."""
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    await db.execute(f"INSERT INTO deals ({names}) VALUES ({marks})",  # noqa: S608
                     tuple(values.values()))


async def get_deal(db: aiosqlite.Connection, deal_id: str) -> DealRow | None:
    """A deal by local id."""
    async with query(db, f"{_SELECT} WHERE d.id = ?", (deal_id,)) as rows:
        row = await rows.fetchone()
    return _deal(row) if row else None


async def deal_by(db: aiosqlite.Connection, column: str, value: str) -> DealRow | None:
    """A deal by ``agreement_id`` or ``offer_id``."""
    if column not in ("agreement_id", "offer_id"):
        raise ValueError(column)
    async with query(db, f"{_SELECT} WHERE d.{column} = ?", (value,)) as rows:
        row = await rows.fetchone()
    return _deal(row) if row else None


async def set_state(db: aiosqlite.Connection, deal_id: str, *, expect: str, state: str,
                    now: str, answer: str | None = None, reason: str | None = None) -> bool:
    """Move a deal from ``expect`` to ``state``; False if someone moved it first."""
    cursor = await db.execute(
        "UPDATE deals SET state = ?, updated_at = ?, answer = COALESCE(?, answer),"
        " reason = COALESCE(?, reason) WHERE id = ? AND state = ?",
        (state, now, answer, reason, deal_id, expect))
    return cursor.rowcount == 1


async def log_event(db: aiosqlite.Connection, *, deal_id: str, action: str, from_state: str,
                    to_state: str, actor: str, payments: str, at: str) -> None:
    """Append one transition to the deal's audit trail."""
    await db.execute(
        "INSERT INTO deal_events (deal_id, action, from_state, to_state, actor, payments, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (deal_id, action, from_state, to_state, actor, payments, at))


async def taken(db: aiosqlite.Connection, listing_id: str, states: tuple[str, ...],
                exclude: str = "") -> int:
    """Sum of quantities of the listing's deals in ``states``."""
    marks = ", ".join("?" for _ in states)
    async with query(db, f"SELECT COALESCE(SUM(quantity), 0) FROM deals WHERE listing_id = ?"  # noqa: S608
                     f" AND state IN ({marks}) AND id <> ?",
                     (listing_id, *states, exclude)) as rows:
        row = await rows.fetchone()
    return int(row[0]) if row else 0


async def taken_by_listing(db: aiosqlite.Connection, listing_ids: list[str]
                           ) -> dict[str, dict[str, int]]:
    """Per listing, the sum of its deals' quantities in each state (one query for a page)."""
    if not listing_ids:
        return {}
    return await in_connection_thread(db, lambda conn: taken_here(conn, listing_ids))


def taken_here(conn: sqlite3.Connection, listing_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """``taken_by_listing`` for work already running in the connection's own thread
    (``store.listings.search_listings_and_taken``: a page's rows and their deals, one hop)."""
    if not listing_ids:
        return {}
    marks = ", ".join("?" for _ in listing_ids)
    found: dict[str, dict[str, int]] = {}
    for listing_id, state, total in conn.execute(
            "SELECT listing_id, state, SUM(quantity) FROM deals"  # noqa: S608
            f" WHERE listing_id IN ({marks}) GROUP BY listing_id, state",
            tuple(listing_ids)).fetchall():
        found.setdefault(str(listing_id), {})[str(state)] = int(total)
    return found


async def requests_by_listing(db: aiosqlite.Connection, listing_ids: list[str]
                              ) -> dict[str, int]:
    """Per listing, how many booking requests wait for the author's answer (group-buy
    pledges excepted: they are committed together at the deadline, not answered)."""
    if not listing_ids:
        return {}
    marks = ", ".join("?" for _ in listing_ids)
    async with query(db, "SELECT listing_id, COUNT(*) FROM deals"  # noqa: S608
                     f" WHERE listing_id IN ({marks}) AND state = 'requested'"
                     " AND category <> 'group-buy' GROUP BY listing_id",
                     tuple(listing_ids)) as rows:
        return {str(r[0]): int(r[1]) for r in await rows.fetchall()}


async def booked_slots(db: aiosqlite.Connection, listing_id: str, exclude: str = ""
                       ) -> list[tuple[str, str]]:
    """Slots of the listing's accepted or ongoing deals."""
    async with query(db, "SELECT slot_start, slot_end FROM deals WHERE listing_id = ?"
                     " AND state IN ('accepted', 'in_progress') AND slot_start IS NOT NULL"
                     " AND id <> ?", (listing_id, exclude)) as rows:
        return [(r[0], r[1]) for r in await rows.fetchall()]


async def list_for_listing(db: aiosqlite.Connection, listing_id: str,
                           states: tuple[str, ...]) -> list[DealRow]:
    """The listing's deals in ``states``, oldest first."""
    marks = ", ".join("?" for _ in states)
    async with query(db, f"{_SELECT} WHERE d.listing_id = ? AND d.state IN ({marks})"
                     " ORDER BY d.created_at, d.id", (listing_id, *states)) as rows:
        return [_deal(r) for r in await rows.fetchall()]


async def list_for_member(db: aiosqlite.Connection, member_id: int, role: str,
                          limit: int = 100) -> list[DealRow]:
    """A member's deals as booker or as author, newest first."""
    column = "booker_id" if role == "booker" else "author_id"
    async with query(db, f"{_SELECT} WHERE d.{column} = ? ORDER BY d.created_at DESC, d.id"
                     " LIMIT ?", (member_id, limit)) as rows:
        return [_deal(r) for r in await rows.fetchall()]


async def due_requests(db: aiosqlite.Connection, now: str, limit: int = 100) -> list[DealRow]:
    """Requested deals whose expiry has passed."""
    async with query(db, f"{_SELECT} WHERE d.state = 'requested' AND d.expires_at <= ?"
                     " ORDER BY d.expires_at LIMIT ?", (now, limit)) as rows:
        return [_deal(r) for r in await rows.fetchall()]


async def events(db: aiosqlite.Connection, deal_id: str) -> list[aiosqlite.Row]:
    """The deal's transitions, oldest first."""
    async with query(db, "SELECT * FROM deal_events WHERE deal_id = ? ORDER BY seq",
                     (deal_id,)) as rows:
        return list(await rows.fetchall())


async def insert_feedback(db: aiosqlite.Connection, row: FeedbackRow) -> bool:
    """Store feedback; False if this author already rated this deal."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO deal_feedback (id, deal_id, author_uri, subject_uri, rating,"
        " comment, no_show, document, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.id, row.deal_id, row.author_uri, row.subject_uri, row.rating, row.comment,
         int(row.no_show), row.document, row.created_at))
    return cursor.rowcount == 1


async def feedback_about(db: aiosqlite.Connection, subject_uri: str, limit: int = 50
                         ) -> list[FeedbackRow]:
    """Feedback received by an actor, newest first."""
    async with query(db, "SELECT * FROM deal_feedback WHERE subject_uri = ?"
                     " ORDER BY created_at DESC LIMIT ?", (subject_uri, limit)) as rows:
        return [FeedbackRow(**{**dict(r), "no_show": bool(r["no_show"])})
                for r in await rows.fetchall()]


async def feedback_for_deal(db: aiosqlite.Connection, deal_id: str) -> list[FeedbackRow]:
    """Feedback left on one deal."""
    async with query(db, "SELECT * FROM deal_feedback WHERE deal_id = ? ORDER BY created_at",
                     (deal_id,)) as rows:
        return [FeedbackRow(**{**dict(r), "no_show": bool(r["no_show"])})
                for r in await rows.fetchall()]


async def inbox_of(db: aiosqlite.Connection, actor_id: str) -> str | None:
    """A cached remote actor's personal inbox."""
    async with query(db, "SELECT inbox FROM remote_actors WHERE id = ?", (actor_id,)) as rows:
        row = await rows.fetchone()
    return str(row[0]) if row else None


# --- payments of cross-node deals (services/deal_settlement.py) ------------------------------


@dataclass(frozen=True)
class DealPaymentRow:
    """The payment one action of a cross-node deal owes (on the payer's or payee's node)."""

    deal_id: str
    action: str
    side: str
    amount: int
    state: str
    transfer_id: str | None
    reason: str
    created_at: str
    updated_at: str
    attempts: int = 0
    next_attempt_at: str | None = None


async def insert_payment(db: aiosqlite.Connection, *, deal_id: str, action: str, side: str,
                         amount: int, state: str, now: str) -> bool:
    """Record a payment a transition made due; False if it was already recorded."""
    cursor = await db.execute(
        "INSERT OR IGNORE INTO deal_payments (deal_id, action, side, amount, state,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (deal_id, action, side, amount, state, now, now))
    return cursor.rowcount == 1


async def move_payment(db: aiosqlite.Connection, deal_id: str, action: str, *, expect: str,
                       state: str, now: str, transfer_id: str | None = None,
                       reason: str | None = None, amount: int | None = None) -> bool:
    """Move a payment from ``expect`` to ``state``; False if it was not in ``expect``."""
    cursor = await db.execute(
        "UPDATE deal_payments SET state = ?, updated_at = ?,"
        " transfer_id = COALESCE(?, transfer_id), reason = COALESCE(?, reason),"
        " amount = COALESCE(?, amount) WHERE deal_id = ? AND action = ? AND state = ?",
        (state, now, transfer_id, reason, amount, deal_id, action, expect))
    return cursor.rowcount == 1


async def payments_of(db: aiosqlite.Connection, deal_id: str) -> list[DealPaymentRow]:
    """A deal's payments, oldest first."""
    async with query(db, "SELECT * FROM deal_payments WHERE deal_id = ? ORDER BY created_at,"
                     " action", (deal_id,)) as rows:
        return [DealPaymentRow(**dict(r)) for r in await rows.fetchall()]


async def payment_by_transfer(db: aiosqlite.Connection, transfer_id: str
                              ) -> DealPaymentRow | None:
    """The deal payment a cross-node transfer settles, if any."""
    async with query(db, "SELECT * FROM deal_payments WHERE transfer_id = ?",
                     (transfer_id,)) as rows:
        row = await rows.fetchone()
    return DealPaymentRow(**dict(row)) if row else None


async def open_payments(db: aiosqlite.Connection, side: str, now: str = "9999",
                        limit: int = 50) -> list[DealPaymentRow]:
    """Payments still due (and not waiting for a retry at ``now``) or pending on this
    node's ``side``, oldest first."""
    async with query(db, "SELECT * FROM deal_payments WHERE side = ? AND (state = 'pending'"
                     " OR (state = 'due' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)))"
                     " ORDER BY created_at LIMIT ?", (side, now, limit)) as rows:
        return [DealPaymentRow(**dict(r)) for r in await rows.fetchall()]


async def retry_payment(db: aiosqlite.Connection, deal_id: str, action: str, *, now: str,
                        next_attempt_at: str, reason: str) -> bool:
    """Keep a due payment due, to be tried again at ``next_attempt_at``."""
    cursor = await db.execute(
        "UPDATE deal_payments SET attempts = attempts + 1, next_attempt_at = ?, reason = ?,"
        " updated_at = ? WHERE deal_id = ? AND action = ? AND state = 'due'",
        (next_attempt_at, reason, now, deal_id, action))
    return cursor.rowcount == 1
