"""Remaining seats, portions and quantities: counted from the deals on the author's node,
published to other communities as a signed ``Update`` carrying FEP-0837
``availableQuantity``, and read back from the last signed version everywhere else.

:func:`republish` runs inside the transaction that changed a listing's deals (the store
serialises writers), so the published figure always matches the deals that were committed
with it; peers receive it through the durable outbox like any edit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.protocol import capacity as proto
from meshnode.protocol.capacity import Remaining
from meshnode.protocol.deals import Capacity
from meshnode.protocol.translatable import Text, number
from meshnode.services.context import NodeContext
from meshnode.services.publishing import dumps, publish_listing_change
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as deal_q
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store.listings import ListingColumns, ListingRow


class FullError(ConflictError):
    """The listing's last published figure leaves less than what is asked (a 409)."""

    code = "not_available"


def listing_capacity(row: ListingRow) -> Capacity | None:
    """The capacity of a listing that counts down, or None (requests, loans, services)."""
    return proto.stored_capacity(row.category, row.kind, row.details)


async def remaining_for(ctx: NodeContext, rows: Sequence[ListingRow],
                        taken: Mapping[str, Mapping[str, int]] | None = None
                        ) -> dict[str, Remaining]:
    """What is left of each listing that has a capacity (by listing id): counted from the
    deals for ours, as last published by the author's node for the others (everything,
    when that node published no figure). ``taken``: what the deals of all the local rows
    use, when already read with them (``SearchPage.taken``)."""
    capacities = {row.id: (row, cap) for row in rows
                  if (cap := listing_capacity(row)) is not None}
    if taken is None:
        local = [row_id for row_id, (row, _cap) in capacities.items() if row.is_local]
        taken = await deal_q.taken_by_listing(ctx.store.reader, local)
    found: dict[str, Remaining] = {}
    for row_id, (row, cap) in capacities.items():
        if row.is_local:
            states = proto.counting_states(row.category)
            used = sum(units for state, units in taken.get(row_id, {}).items()
                       if state in states)
            found[row_id] = proto.remaining_from_taken(cap, used)
        else:
            left = proto.published_left(cap, row.available_quantity)
            found[row_id] = Remaining(cap, cap.total if left is None else left)
    return found


async def remaining_of(ctx: NodeContext, row: ListingRow) -> Remaining | None:
    """What is left of one listing (None: it has no capacity that counts down)."""
    return (await remaining_for(ctx, [row])).get(row.id)


def check_published_room(row: ListingRow, remaining: Remaining | None, wanted: int) -> None:
    """Refuse at once a booking of another community's listing that its author's node says
    is full (that node decides in the end; this only spares a request bound to fail)."""
    if row.is_local or remaining is None or wanted <= remaining.left:
        return
    if remaining.full:
        raise FullError("this listing is full")
    raise FullError(Text("only %(left)s left", left=number(remaining.text(remaining.left))),
                    {"quantity": "more than available"})


async def taken_in(tx: aiosqlite.Connection, row: ListingRow) -> int:
    """What the listing's deals use up now, read on the caller's transaction."""
    return await deal_q.taken(tx, row.id, proto.counting_states(row.category))


def _columns(row: ListingRow, status: str) -> ListingColumns:
    values = {f.name: getattr(row, f.name) for f in fields(ListingColumns)}
    return ListingColumns(**{**values, "status": status})


async def republish(ctx: NodeContext, tx: aiosqlite.Connection, listing_id: str, *,
                    status: str | None = None) -> bool:
    """On the author's node, in the transaction that changed the listing's deals: when what
    is left (or ``status``) differs from the last signed version, store the next version,
    signed by the author, and queue its ``Update`` to the followers. False: nothing to do."""
    row = await listing_q.get_listing(tx, listing_id)
    if row is None or not row.is_local or row.author_id is None or row.status == "withdrawn":
        return False
    cap = listing_capacity(row)
    document = json.loads(row.signed_object)
    if cap is None or document.get("type") != "Proposal":
        return False
    remaining = proto.remaining_from_taken(cap, await taken_in(tx, row))
    new_status = status or row.status
    published = proto.published_left(cap, proto.published_in(document))
    if published == remaining.left and new_status == row.status:
        return False
    author = await member_q.get_member(tx, row.author_id)
    if author is None:
        return False
    now = ctx.clock()
    unsigned = proto.with_available(document, remaining, proto.next_updated(row.updated_at, now))
    unsigned["status"] = new_status
    signed = dumps(sign_as_member(ctx, author, unsigned, now))
    version = row.version + 1
    if not await listing_q.update_listing(tx, listing_id=row.id, columns=_columns(row, new_status),
                                          updated_at=str(unsigned["updated"]), version=version,
                                          signed_object=signed, edited=False):
        raise ConflictError("the listing changed meanwhile")
    await publish_listing_change(ctx, tx, activity_type="Update", signed_object=signed,
                                 author_username=author.username, version=version)
    return True


async def available_now(ctx: NodeContext, row: ListingRow, cap: Capacity | None
                        ) -> Remaining | None:
    """What is left of one of our listings, for the next version an edit signs."""
    if cap is None:
        return None
    return proto.remaining_from_taken(cap, await taken_in(ctx.store.reader, row))



# Categories whose listings count down (rides, meals, things, produce, group buys).
COUNTED = ("ride", "meal", "sell", "give", "swap", "produce", "group-buy")


async def publish_missing(ctx: NodeContext) -> int:
    """Publish what is left of our offers signed before capacity was published (run at
    start-up: peers then show the same figure as this node). Returns how many."""
    done = 0
    for listing_id in await listing_q.local_without_figure(ctx.store.reader, COUNTED):
        async with ctx.store.transaction() as tx:
            done += await republish(ctx, tx, listing_id)
    return done
