"""The one way a deal changes: :func:`apply` runs a transition of ``protocol.deals`` and its
effects (capacity, ledger holds and payments, the message to a remote party) on the caller's
transaction, so all of them commit together or not at all.

Payments are signed *before* the write lock (:func:`plan`); a transition that lost a race
(the state moved meanwhile) raises ``ConflictError`` and its signed documents are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol import deals as proto
from meshnode.protocol.capacity import counting_states
from meshnode.protocol.ledger import PreparedEntry
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text
from meshnode.services import capacity as capacity_service
from meshnode.services import deal_settlement, ledger, notifications
from meshnode.services.context import NodeContext
from meshnode.services.publishing import queue_activity
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store.deals import DealRow
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow

HOLD_LIFETIME = timedelta(days=366)


@dataclass
class Plan:
    """What a transition will write, prepared outside the lock."""

    payments: list[PreparedEntry] = field(default_factory=list)
    outgoing: dict[str, Any] | None = None
    answer: str | None = None


def deal_url(ctx: NodeContext, deal_id: str) -> str:
    """This node's IRI for a deal (its Agreement when the booker is ours)."""
    return f"{ctx.config.base_url}/deals/{deal_id}"


def capacity(listing: ListingRow) -> proto.Capacity:
    """The listing's bookable capacity."""
    return proto.capacity_of(listing.category, json.loads(listing.details))


def is_slot(deal: DealRow) -> bool:
    """Loans and services book time slots; they are paid on completion."""
    return deal.category in proto.SLOT_CATEGORIES


async def check_room(tx: aiosqlite.Connection, listing: ListingRow, deal: DealRow) -> None:
    """Refuse the deal if it no longer fits next to the listing's other deals (those that
    use part of it: ``protocol.capacity.counting_states``, the figure pages show)."""
    cap = capacity(listing)
    if cap.mode == "slot":
        if deal.slot_start is None or deal.slot_end is None:
            raise ConflictError("this booking has no time slot")
        slot = proto.Slot(parse_utc(deal.slot_start, field="from"),
                          parse_utc(deal.slot_end, field="to"))
        booked = [proto.Slot(parse_utc(a, field="from"), parse_utc(b, field="to"))
                  for a, b in await q.booked_slots(tx, listing.id, exclude=deal.id)]
        proto.check_slot(slot, booked)
        return
    taken = await q.taken(tx, listing.id, counting_states(listing.category), exclude=deal.id)
    proto.check_quantity(cap, taken, deal.quantity)


async def _member(ctx: NodeContext, member_id: int | None) -> MemberRow | None:
    if member_id is None:
        return None
    return await member_q.get_member(ctx.store.reader, member_id)


def amount_due(deal: DealRow, action: str) -> int:
    """What ``action`` makes the booker pay: the price when the deal is confirmed (on
    acceptance, or on completion for loans), plus the deposit when it is claimed."""
    paid_on = ("complete", "dispute") if is_slot(deal) else ("accept",)
    due = deal.amount if action in paid_on else 0
    return due + (deal.deposit if action == "dispute" and is_slot(deal) else 0)


async def plan(ctx: NodeContext, deal: DealRow, action: str, actor: MemberRow | None,
               now: datetime, *, reason: str = "") -> Plan:
    """Sign the payments and the outgoing message a transition will need."""
    result = Plan()
    booker, author = await _member(ctx, deal.booker_id), await _member(ctx, deal.author_id)
    memo = f"deal {deal.id}: {deal.listing_title}"[:200]
    if booker is not None and author is not None:
        pay_now = amount_due(deal, action) - (deal.deposit if action == "dispute" else 0)
        if pay_now > 0:
            result.payments.append(ledger.prepare_transfer(
                ctx, booker, payee=author.username, amount=pay_now, memo=memo,
                listing_id=deal.listing_id, now=now))
        if action == "dispute" and is_slot(deal) and deal.deposit:
            result.payments.append(ledger.prepare_transfer(
                ctx, booker, payee=author.username, amount=deal.deposit,
                memo=f"deposit claimed: {reason}"[:200], listing_id=deal.listing_id, now=now))
        if action == "cancel" and deal.state == "accepted" and deal.amount and not is_slot(deal):
            result.payments.append(ledger.prepare_transfer(
                ctx, author, payee=booker.username, amount=deal.amount,
                memo=f"refund, {memo}"[:200], listing_id=deal.listing_id, now=now))
    elif actor is not None:
        result.outgoing = _message(ctx, deal, action, actor, now, reason)
    return result


def _message(ctx: NodeContext, deal: DealRow, action: str, actor: MemberRow, now: datetime,
             reason: str) -> dict[str, Any] | None:
    """The signed activity telling the remote party of this transition (None: nothing)."""
    me = urls.member_actor(ctx.config.base_url, actor.username)
    other = deal.author_uri if me == deal.booker_uri else deal.booker_uri
    activity_id = f"{deal_url(ctx, deal.id)}/{action}"
    if action in ("accept", "decline"):
        document = proto.build_answer(activity_id=activity_id, actor=me, offer_id=deal.offer_id,
                                      agreement_id=deal.agreement_id, booker=other,
                                      accept=action == "accept", when=now, reason=reason)
    elif action in ("start", "complete", "cancel", "dispute", "payment_failed"):
        state = proto.TRANSITIONS[deal.state][action].to
        document = proto.build_state_update(activity_id=activity_id, actor=me, to=other,
                                            agreement_id=deal.agreement_id, state=state,
                                            when=now, reason=reason)
    else:
        return None
    return sign_as_member(ctx, actor, document, now)


async def queue_to(ctx: NodeContext, tx: aiosqlite.Connection, activity: dict[str, Any],
                   recipient: str) -> None:
    """Queue a signed activity to a remote actor's own inbox (known from the cache)."""
    inbox = await q.inbox_of(tx, recipient)
    if inbox is None:
        raise ConflictError("the other member's community is not known to this node yet")
    await queue_activity(tx, activity, public=False, inboxes=[inbox],
                         now=format_utc(ctx.clock()))


async def apply(ctx: NodeContext, tx: aiosqlite.Connection, deal_id: str, action: str,
                role: str, actor: str, prepared: Plan, *, expect: DealRow,
                reason: str = "") -> DealRow:
    """Run one transition and its effects on ``tx``; ConflictError if the deal moved."""
    deal = await q.get_deal(tx, deal_id)
    if deal is None:
        raise NotFoundError(f"no deal {deal_id!r}")
    if deal.state != expect.state:
        raise ConflictError(Text("this deal is %(state)s now",
                                 state=Text(deal.state.replace("_", " "))))
    new_state = proto.next_state(deal.state, action, role)
    now = format_utc(ctx.clock())
    await _effects(ctx, tx, deal, action, role, now)
    entries = [await ledger.commit_transfer(ctx, tx, entry) for entry in prepared.payments]
    if not await q.set_state(tx, deal.id, expect=deal.state, state=new_state, now=now,
                             answer=prepared.answer, reason=reason or None):
        raise ConflictError("this deal changed meanwhile")
    await q.log_event(tx, deal_id=deal.id, action=action, from_state=deal.state,
                      to_state=new_state, actor=actor, at=now,
                      payments=",".join(e.fields.id for e in entries))
    if prepared.outgoing is not None:
        recipients = prepared.outgoing.get("to", [])
        await queue_to(ctx, tx, prepared.outgoing, str(recipients[0]))
    await capacity_service.republish(ctx, tx, deal.listing_id)  # what is left, to peers
    moved = await q.get_deal(tx, deal.id)
    if moved is None:
        raise NotFoundError(f"no deal {deal.id!r}")
    await notifications.deal_moved(ctx, tx, moved, action, role, reason)
    return moved


async def _effects(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, action: str,
                   role: str, now: str) -> None:
    """Capacity and holds of a transition (payments were prepared by :func:`plan`)."""
    if not deal.is_local:
        # both nodes record the payment a transition makes due; the booker's node pays it
        await deal_settlement.settle_remote(ctx, tx, deal, action=action,
                                            amount=amount_due(deal, action), role=role)
        if action == "accept" and deal.author_id is not None:
            await _check_listing_room(tx, deal)
        return
    reason = f"deal:{deal.id}"
    if action == "accept":
        await _check_listing_room(tx, deal)
        await ledger.release_holds(tx, reason)  # a group-buy pledge becomes a payment
        if is_slot(deal):
            expires = format_utc(ctx.clock() + HOLD_LIFETIME)
            booker = deal.booker_uri.rsplit("/", 1)[-1]
            if deal.amount:
                await ledger.place_hold(ctx, tx, account=booker, amount=deal.amount,
                                        reason=reason, now=now, expires_at=expires)
            if deal.deposit:
                await ledger.place_hold(ctx, tx, account=booker, amount=deal.deposit,
                                        reason=f"{reason}:deposit", now=now, expires_at=expires)
        return
    if action != "start":
        await ledger.release_holds(tx, reason)
        await ledger.release_holds(tx, f"{reason}:deposit")


async def _check_listing_room(tx: aiosqlite.Connection, deal: DealRow) -> None:
    listing = await listing_q.get_listing(tx, deal.listing_id)
    if listing is None:
        raise NotFoundError("the listing is gone")
    await check_room(tx, listing, deal)
