"""Waiting lists of lent items ("file d'attente") and the minimum-reputation gate.

While a loan is out, members join the listing's queue (:func:`join`). The deal worker calls
:func:`run_due`: once the lender marks the item returned, the first in line is told
(``queue_turn``) and has ``protocol.queue.CONFIRM_WINDOW`` to book it; meanwhile nobody
else can book the item (:func:`claim_turn`, on the booking's own transaction). A booking
by the member holding the turn confirms it; past the deadline the turn lapses and the next
one is told. The next turn waits until the booking made in the previous one is over (the
item returned, or the booking declined, cancelled or expired). Every move is a conditional
row update, applied with its notification in one
transaction, so a restart resumes from the rows.

Reputation (issue 18): :func:`count_completed_deals`, from what this node saw and from the
member's signed receipts (``services/reputation.py``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import datetime

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError, PermissionDeniedError
from meshnode.protocol import queue as proto
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text, When
from meshnode.services import notifications, queue_guest, queue_notice, reputation
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from meshnode.store import queue as queue_store
from meshnode.store import remote_queue as remote_store
from meshnode.store.deals import DealRow
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.store.queue import QueueRow
from meshnode.store.remote_queue import RemotePlaceRow

OPEN_STATUSES = proto.OPEN_STATUSES


@dataclass(frozen=True)
class QueueStatus:
    """What a member sees of one item's queue."""

    listing_id: str
    state: str | None  # waiting, notified, or None (not in line); for another community's
    position: int | None  # item also joining (Join on its way) and refused (``reason``)
    length: int
    confirm_by: str | None
    item_out: bool
    remote: bool = False  # the lender's node keeps the queue; we show what it last told
    reason: str = ""


def entries(rows: list[QueueRow]) -> list[proto.Entry]:
    """Stored places as the pure queue rules see them."""
    return [proto.Entry(r.id, r.member_id, r.state,
                        parse_utc(r.confirm_by, field="confirm_by") if r.confirm_by else None)
            for r in rows]


def _is_open(listing: ListingRow, now: datetime) -> bool:
    return (listing.status in OPEN_STATUSES and not listing.hidden
            and (listing.expires_at is None or listing.expires_at > format_utc(now)))


async def _listing(ctx: NodeContext, listing_id: str) -> ListingRow:
    listing = await listing_store.get_listing(ctx.store.reader, listing_id)
    if listing is None or listing.hidden:
        raise NotFoundError(f"no listing {listing_id!r}")
    return listing


# --- reputation ------------------------------------------------------------------------------


async def count_completed_deals(ctx: NodeContext, actor_uri: str) -> int:
    """Completed exchanges of ``actor_uri`` without a reported absence, the larger of two
    counts this node trusts: the deals it recorded itself (less those the other party's
    signed feedback says ``no_show``), and the member's signed receipts
    (``services/reputation.count_for``: deals less absences, imported ones included, each
    verified by this node), so a member who moved here keeps the credit they brought."""
    seen = await queue_store.completed_without_no_show(ctx.store.reader, actor_uri)
    portable = await reputation.count_for(ctx, actor_uri)
    return max(seen, portable.deals - portable.no_shows)


def min_reputation(listing: ListingRow) -> int:
    """The listing's ``details.min_reputation`` (0: anyone may book)."""
    value = json.loads(listing.details).get("min_reputation", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


async def check_reputation(ctx: NodeContext, listing: ListingRow, actor_uri: str) -> None:
    """Refuse (403) a booker below the listing's minimum; nothing is stored before."""
    needed = min_reputation(listing)
    if needed <= 0:
        return
    have = await count_completed_deals(ctx, actor_uri)
    if have < needed:
        raise PermissionDeniedError(Text(
            "the lender asks for at least %(needed)s completed exchanges without absence"
            " before lending this item; you have %(have)s", needed=needed, have=have),
            {"min_reputation": Text("at least %(needed)s", needed=needed)})


# --- joining, leaving, looking ---------------------------------------------------------------


async def status(ctx: NodeContext, member: MemberRow, listing_id: str) -> QueueStatus:
    """The member's place in the item's queue (``state`` None when not in line)."""
    return await status_of(ctx, member, await _listing(ctx, listing_id))


async def status_of(ctx: NodeContext, member: MemberRow, listing: ListingRow) -> QueueStatus:
    """``status`` for a listing already read (the listing page has it: one read fewer)."""
    if not listing.is_local:
        return _told(listing, await queue_guest.place(ctx, member, listing))
    return await _status(ctx.store.reader, listing, member, ctx.clock())


def _told(listing: ListingRow, place: RemotePlaceRow | None) -> QueueStatus:
    """A place in another community's queue, as its node last told it."""
    shown = place is not None and place.state in (*remote_store.LIVE, "refused")
    return QueueStatus(
        listing_id=listing.id, state=place.state if shown and place else None,
        position=place.position if place else None, length=0,
        confirm_by=place.confirm_by if place else None, item_out=False, remote=True,
        reason=place.reason if shown and place else "")


async def _status(db: aiosqlite.Connection, listing: ListingRow, member: MemberRow,
                  now: datetime) -> QueueStatus:
    # Both reads at once: one trip to the reader thread's queue, not two (issue 17).
    rows, item_out = await asyncio.gather(queue_store.live_entries(db, listing.id),
                                          queue_store.item_out(db, listing.id, format_utc(now)))
    mine = next((r for r in rows if r.member_id == member.id), None)
    return QueueStatus(
        listing_id=listing.id, state=mine.state if mine else None,
        position=proto.position_of(entries(rows), member.id), length=len(rows),
        confirm_by=mine.confirm_by if mine else None, item_out=item_out)


def check_queueable(listing: ListingRow, actor_uri: str) -> None:
    """Refuse (409/403) a place in a queue that cannot be: not a lent item, no longer
    offered, or the lender's own item."""
    if listing.category != "lend" or listing.kind != "offer":
        raise ConflictError("only lent items have a waiting list")
    if listing.status not in OPEN_STATUSES:
        raise ConflictError("this listing is no longer offered")
    if listing.author_uri == actor_uri:
        raise PermissionDeniedError("you cannot queue for your own listing")


async def check_room(tx: aiosqlite.Connection, listing: ListingRow, rows: list[QueueRow],
                     now: datetime) -> None:
    """Refuse (409) a new place when the item is available now or the queue is full."""
    if not rows and not await queue_store.item_out(tx, listing.id, format_utc(now)):
        raise ConflictError("this item is not lent out now: book it directly")
    if len(rows) >= proto.MAX_WAITING:
        raise ConflictError(Text("this waiting list is full (%(max)s members)",
                                 max=proto.MAX_WAITING))


async def join(ctx: NodeContext, member: MemberRow, listing_id: str) -> QueueStatus:
    """Take the last place in the item's queue (409 if it is available now: book it)."""
    listing = await _listing(ctx, listing_id)
    actor = urls.member_actor(ctx.config.base_url, member.username)
    check_queueable(listing, actor)
    await check_reputation(ctx, listing, actor)  # for another community's item: ours first
    if not listing.is_local:  # the lender's node keeps the queue: ask it
        return _told(listing, await queue_guest.join(ctx, member, listing))
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        rows = await queue_store.live_entries(tx, listing.id)
        if any(r.member_id == member.id for r in rows):
            raise ConflictError("you are already in this waiting list")
        await check_room(tx, listing, rows, now)
        await queue_store.insert_entry(tx, listing_id=listing.id, member_id=member.id,
                                       now=format_utc(now))
        return await _status(tx, listing, member, now)


async def leave(ctx: NodeContext, member: MemberRow, listing_id: str) -> None:
    """Give up one's place (or turn); 404 when not in line."""
    listing = await _listing(ctx, listing_id)
    if not listing.is_local:
        await queue_guest.leave(ctx, member, listing)
        return
    async with ctx.store.transaction() as tx:
        mine = await queue_store.live_entry(tx, listing.id, member.id)
        if mine is None:
            raise NotFoundError("you are not in this waiting list")
        await queue_store.move_entry(tx, mine.id, expect=mine.state, state="left",
                                     now=format_utc(ctx.clock()))


# --- the turn: given by the worker, taken by a booking ---------------------------------------


async def claim_turn(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
                     deal: DealRow) -> None:
    """On a booking's transaction: while a member holds the item's turn, only their booking
    is taken (and confirms the turn); anyone else's is refused (409)."""
    if listing.category != "lend":
        return
    now = format_utc(ctx.clock())
    holder = next((r for r in await queue_store.live_entries(tx, listing.id)
                   if r.state == "notified" and (r.confirm_by or "") > now), None)
    if holder is None:
        return
    mine = (holder.member_id == deal.booker_id if holder.member_id is not None
            else holder.remote_actor == deal.booker_uri)  # a member of another community
    if not mine:
        raise ConflictError(Text(
            "this item is kept for the next member of the waiting list until %(when)s",
            when=When(holder.confirm_by or now)))
    await queue_store.move_entry(tx, holder.id, expect="notified", state="confirmed",
                                 now=now, deal_id=deal.id)
    if holder.remote_actor is not None:
        await queue_notice.tell(ctx, tx, listing, queue_notice.place_of(
            ctx, listing, holder, "confirmed"))


async def run_due(ctx: NodeContext) -> int:
    """One step of every queue: close, lapse, give the turn. Returns the moves made."""
    moved = 0
    for listing_id in await queue_store.queued_listings(ctx.store.reader):
        async with ctx.store.transaction() as tx:
            moved += await _step_listing(ctx, tx, listing_id)
    return moved


async def _step_listing(ctx: NodeContext, tx: aiosqlite.Connection, listing_id: str) -> int:
    listing = await listing_store.get_listing(tx, listing_id)
    now = ctx.clock()
    rows = await queue_store.live_entries(tx, listing_id)
    busy = (await queue_store.item_out(tx, listing_id, format_utc(now))
            or await queue_store.turn_in_use(tx, listing_id))
    moves = proto.plan_moves(entries(rows), now=now, item_out=busy,
                             open_=listing is not None and _is_open(listing, now))
    states = {r.id: r.state for r in rows}
    for move in moves:
        confirm_by = format_utc(move.confirm_by) if move.confirm_by else None
        if not await queue_store.move_entry(tx, move.entry_id, expect=states[move.entry_id],
                                            state=move.to, now=format_utc(now),
                                            confirm_by=confirm_by):
            raise ConflictError("the waiting list changed meanwhile")
        if listing is None:
            continue
        if move.member_id is not None:
            if move.event == "turn":
                await notifications.queue_turn(ctx, tx, move.member_id, listing)
            continue
        row = next(r for r in rows if r.id == move.entry_id)  # another community's member
        await queue_notice.tell(ctx, tx, listing, queue_notice.place_of(
            ctx, listing, replace(row, confirm_by=confirm_by), move.to,
            position=1 if move.event == "turn" else None))
    return len(moves)
