"""Our members' places in other communities' waiting lists (the member's node's side).

The lender's node keeps the queue (``services/queue_host.py`` there). Here a member's
:func:`join` records a ``joining`` place and sends a signed ``Join``; :func:`leave` sends
``Leave``; :func:`receive_place` records what the lender's node answers and tells later
(position, the turn with its deadline, a lapse, the listing closed). The turn is told to the
member with the same ``queue_turn`` notification as a local turn; booking the item during
the turn (the ordinary cross-node deal ``Offer``) confirms it (:func:`confirm_on_booking`).
"""

from __future__ import annotations

import secrets

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol import queue_wire as wire
from meshnode.protocol.queue import OPEN_STATUSES
from meshnode.protocol.timefmt import format_utc
from meshnode.services import notifications, queue_notice
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from meshnode.store import members as member_store
from meshnode.store import remote_queue as remote_store
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.store.remote_queue import RemotePlaceRow

# A told state never goes back (a late retry of an earlier message changes nothing).
_RANK = {"joining": 0, "waiting": 1, "notified": 2}


async def place(ctx: NodeContext, member: MemberRow, listing: ListingRow
                ) -> RemotePlaceRow | None:
    """The member's newest place in the remote listing's queue."""
    return await remote_store.latest_place(ctx.store.reader, listing.id, member.id)


async def places(ctx: NodeContext, member: MemberRow) -> list[RemotePlaceRow]:
    """The member's places in other communities' queues worth showing: live ones, and the
    refusals (with the lender's reason), newest first; none for a withdrawn listing (its
    queue is closed, whether or not its node could still say so)."""
    rows = await remote_store.member_places(ctx.store.reader, member.id)
    return [r for r in rows if r.state in (*remote_store.LIVE, "refused")
            and r.listing_status in OPEN_STATUSES]


def _join_document(ctx: NodeContext, member: MemberRow, listing: ListingRow, join_id: str,
                   *, leave: bool = False) -> dict[str, object]:
    return wire.build_join(
        activity_id=f"{join_id}/leave" if leave else join_id,
        actor=urls.member_actor(ctx.config.base_url, member.username),
        author=listing.author_uri, listing_object=listing.object_id, when=ctx.clock(),
        leave=leave)


async def join(ctx: NodeContext, member: MemberRow, listing: ListingRow) -> RemotePlaceRow:
    """Ask the lender's node for a place (``joining`` until it answers)."""
    join_id = f"{ctx.config.base_url}/queue/joins/{secrets.token_hex(12)}"
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        if await remote_store.live_place(tx, listing.id, member.id) is not None:
            raise ConflictError("you are already in this waiting list")
        await remote_store.insert_place(tx, listing_id=listing.id, member_id=member.id,
                                        join_id=join_id, now=now)
        await queue_notice.send_signed(ctx, tx, member,
                                       _join_document(ctx, member, listing, join_id),
                                       listing.author_uri)
        found = await remote_store.place_by_join(tx, join_id)
    if found is None:
        raise RuntimeError("the new place vanished")
    return found


async def leave(ctx: NodeContext, member: MemberRow, listing: ListingRow) -> None:
    """Give up the place (or the turn) and tell the lender's node; 404 when not in line."""
    async with ctx.store.transaction() as tx:
        mine = await remote_store.live_place(tx, listing.id, member.id)
        if mine is None:
            raise NotFoundError("you are not in this waiting list")
        await remote_store.set_place(tx, mine.id, state="left", position=None,
                                     confirm_by=None, reason="", now=format_utc(ctx.clock()))
        await queue_notice.send_signed(
            ctx, tx, member, _join_document(ctx, member, listing, mine.join_id, leave=True),
            listing.author_uri)


async def confirm_on_booking(ctx: NodeContext, tx: aiosqlite.Connection,
                             listing: ListingRow, member: MemberRow) -> None:
    """On the booking's transaction: a booking made while holding the turn confirms it
    here (the lender's node confirms its own row when the Offer arrives)."""
    mine = await remote_store.live_place(tx, listing.id, member.id)
    if mine is not None and mine.state == "notified":
        await remote_store.set_place(tx, mine.id, state="confirmed", position=None,
                                     confirm_by=mine.confirm_by, reason="",
                                     now=format_utc(ctx.clock()))


async def receive_place(ctx: NodeContext, tx: aiosqlite.Connection, told: wire.QueuePlace,
                        actor: str) -> str:
    """The lender's node answered our Join or moved the place: record it; a turn notifies
    the member. Only the listing's author may speak of it, about our own Join."""
    mine = await remote_store.place_by_join(tx, told.join_id)
    if mine is None:
        return "ignored: not a Join of ours"
    listing = await listing_store.get_listing(tx, mine.listing_id)
    member = await member_store.get_member(tx, mine.member_id)
    if listing is None or member is None or listing.is_local:
        return "ignored: the listing or the member is gone"
    if actor != listing.author_uri or told.listing_object != listing.object_id:
        return "rejected: only the listing's author speaks of its waiting list"
    if told.member != urls.member_actor(ctx.config.base_url, member.username):
        return "rejected: the place is not our member's"
    if _RANK.get(told.state, 3) < _RANK.get(mine.state, 3):
        return "ignored: older news"
    if not await remote_store.set_place(
            tx, mine.id, state=told.state, position=told.position,
            confirm_by=format_utc(told.confirm_by) if told.confirm_by else None,
            reason=told.reason, now=format_utc(ctx.clock())):
        return "ignored: the place is over here"
    if told.state == "notified" and mine.state != "notified":
        await notifications.queue_turn(ctx, tx, member.id, listing)
    return f"place {told.state}"
