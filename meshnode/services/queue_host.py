"""Members of other communities in our waiting lists (the lender's node's side).

Their node sends a signed ``Join``/``Leave`` (``protocol/queue_wire.py``; the federation
layer checked the proof and that its actor is the one asking). A place is refused, with the
reason sent back in a ``Reject`` and nothing stored, when the listing is not one of our lent
items, is not out, the queue is full, the member's community already holds
``MAX_FROM_ORIGIN_PER_LISTING`` places in it or ``MAX_FROM_ORIGIN`` in all our queues, or
the member lacks the lender's minimum reputation as counted here (deals we saw, receipts we
verified). Otherwise the place is stored at the end of the line and ``Accept`` tells its
position. A Join repeated while in line stores nothing and tells the place again.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import aiosqlite

from meshnode.errors import ConflictError, ServiceError
from meshnode.protocol import queue as proto
from meshnode.protocol import queue_wire as wire
from meshnode.protocol.activities import origin_of
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services import queue as queue_service
from meshnode.services import queue_notice
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from meshnode.store import queue as queue_store
from meshnode.store.listings import ListingRow
from meshnode.store.queue import QueueRow

REFUSALS = (ServiceError, ValidationError)


async def _our_lent_item(tx: aiosqlite.Connection, request: wire.JoinRequest
                         ) -> ListingRow | None:
    listing = await listing_store.get_listing_by_object_id(tx, request.listing_object)
    if listing is None or not listing.is_local or listing.hidden:
        return None
    return listing


async def _position(tx: aiosqlite.Connection, listing_id: str, entry_id: int) -> int | None:
    rows = await queue_store.live_entries(tx, listing_id)
    return proto.position_of_entry(queue_service.entries(rows), entry_id)


async def _check_origin(tx: aiosqlite.Connection, listing: ListingRow, origin: str) -> None:
    if await queue_store.live_from_origin(tx, origin, listing.id) >= \
            wire.MAX_FROM_ORIGIN_PER_LISTING:
        raise ConflictError(Text(
            "this waiting list already holds %(max)s members of your community",
            max=wire.MAX_FROM_ORIGIN_PER_LISTING))
    if await queue_store.live_from_origin(tx, origin) >= wire.MAX_FROM_ORIGIN:
        raise ConflictError(Text(
            "members of your community already hold %(max)s places in our waiting lists",
            max=wire.MAX_FROM_ORIGIN))


async def _admit(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
                 request: wire.JoinRequest) -> None:
    queue_service.check_queueable(listing, request.actor)
    await queue_service.check_room(tx, listing, await queue_store.live_entries(tx, listing.id),
                                   ctx.clock())
    await _check_origin(tx, listing, origin_of(request.actor))
    await queue_service.check_reputation(ctx, listing, request.actor)


async def _tell_waiting(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
                        row: QueueRow, join_id: str) -> None:
    position = await _position(tx, listing.id, row.id)
    state = row.state if position is not None else "waiting"
    await queue_notice.tell(ctx, tx, listing, queue_notice.place_of(
        ctx, listing, replace(row, join_id=join_id), state,
        position=position), answer=True)


def _refusal_id(ctx: NodeContext, request: wire.JoinRequest) -> str:
    digest = hashlib.sha256(request.activity_id.encode("utf-8")).hexdigest()[:24]
    return f"{ctx.config.base_url}/queue/refusals/{digest}"


async def receive_join(ctx: NodeContext, tx: aiosqlite.Connection,
                       request: wire.JoinRequest) -> str:
    """A member of another community asks for a place: store it and Accept, or Reject."""
    listing = await _our_lent_item(tx, request)
    if listing is None:
        return "ignored: not one of our listings"
    existing = await queue_store.live_remote_entry(tx, listing.id, request.actor)
    if existing is not None:  # a replay, or the member's node asking again: same place
        await _tell_waiting(ctx, tx, listing, existing, request.activity_id)
        return "ignored: already in line"
    try:
        await _admit(ctx, tx, listing, request)
    except REFUSALS as exc:
        await queue_notice.tell(ctx, tx, listing, wire.QueuePlace(
            place_id=_refusal_id(ctx, request), join_id=request.activity_id,
            member=request.actor, listing_object=listing.object_id, state="refused",
            reason=str(exc)), answer=True)
        return f"rejected: {exc}"
    entry_id = await queue_store.insert_remote_entry(
        tx, listing_id=listing.id, actor=request.actor, origin=origin_of(request.actor),
        join_id=request.activity_id, now=format_utc(ctx.clock()))
    row = next(r for r in await queue_store.live_entries(tx, listing.id) if r.id == entry_id)
    await _tell_waiting(ctx, tx, listing, row, request.activity_id)
    return "joined"


async def receive_leave(ctx: NodeContext, tx: aiosqlite.Connection,
                        request: wire.JoinRequest) -> str:
    """The member gives up their place (or turn); only their own place moves."""
    listing = await _our_lent_item(tx, request)
    if listing is None:
        return "ignored: not one of our listings"
    mine = await queue_store.live_remote_entry(tx, listing.id, request.actor)
    if mine is None:
        return "ignored: not in line"
    if not await queue_store.move_entry(tx, mine.id, expect=mine.state, state="left",
                                        now=format_utc(ctx.clock())):
        raise ConflictError("the waiting list changed meanwhile")
    await queue_notice.tell(ctx, tx, listing,
                            queue_notice.place_of(ctx, listing, mine, "left"))
    return "left"
