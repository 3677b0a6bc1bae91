"""Sending waiting-list messages across communities (``protocol/queue_wire.py``): signed by
the member they speak for, queued for durable delivery on the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.protocol import queue_wire as wire
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services.context import NodeContext
from meshnode.services.publishing import queue_activity
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as deal_store
from meshnode.store import members as member_store
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.store.queue import QueueRow


async def send_signed(ctx: NodeContext, tx: aiosqlite.Connection, member: MemberRow,
                      document: Mapping[str, Any], recipient: str) -> None:
    """Sign ``document`` as ``member`` and queue it to ``recipient``'s own inbox (known from
    the actor cache: the lender's when our member saw the listing, the member's when their
    Join's proof was checked); the delivery worker retries it until it arrives."""
    inbox = await deal_store.inbox_of(tx, recipient)
    if inbox is None:
        raise ConflictError("the other member's community is not known to this node yet")
    now = ctx.clock()
    await queue_activity(tx, sign_as_member(ctx, member, document, now), public=False,
                         inboxes=[inbox], now=format_utc(now))


def place_of(ctx: NodeContext, listing: ListingRow, row: QueueRow, state: str, *,
             position: int | None = None, reason: str = "") -> wire.QueuePlace:
    """What the lender's node tells of a remote member's place ``row`` (now ``state``)."""
    if row.remote_actor is None or row.join_id is None:
        raise ValueError("only a remote member's place is told across communities")
    confirm_by = row.confirm_by if state == "notified" else None
    return wire.QueuePlace(
        place_id=f"{ctx.config.base_url}/queue/places/{row.id}", join_id=row.join_id,
        member=row.remote_actor, listing_object=listing.object_id, state=state,
        position=position,
        confirm_by=parse_utc(confirm_by, field="confirm_by") if confirm_by else None,
        reason=reason)


async def tell(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
               place: wire.QueuePlace, *, answer: bool = False) -> None:
    """The lender tells the member's node of their place (an answer to the Join, or an
    Update); signed by the listing's author, as deal answers are."""
    author = (await member_store.get_member(tx, listing.author_id)
              if listing.author_id is not None else None)
    if author is None:
        raise ConflictError("this listing has no author here")
    if not author.ed25519_sealed:  # the account was deleted with its keys: nobody can sign;
        return  # the member's node closes the place when the listing's Tombstone arrives
    now = ctx.clock()
    activity_id = f"{place.place_id}/{place.state}/{now.strftime('%Y%m%dT%H%M%S%f')}"
    document = wire.build_place_message(activity_id=activity_id, actor=listing.author_uri,
                                        place=place, when=now, answer=answer)
    await send_signed(ctx, tx, author, document, place.member)
