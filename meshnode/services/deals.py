"""Deals on listings: book, answer, cancel, mark done/returned, claim a deposit, pledge to a
group buy, feedback; with members of this node or of another (``services.deal_inbox``).

Every change is one transition (``deal_effects.apply``) inside ONE ``store.transaction()``:
the store serialises writers, so concurrent bookings for the last seat have one winner.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError, PermissionDeniedError
from meshnode.protocol import deals as proto
from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.text import clean_text
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.protocol.translatable import Text, number
from meshnode.services import capacity as capacity_service
from meshnode.services import deal_settlement, ledger, notifications, queue_guest, receipts
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from meshnode.services.deal_effects import (
    Plan,
    apply,
    capacity,
    check_room,
    deal_url,
    plan,
    queue_to,
)
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store.deals import DealRow, FeedbackRow
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow

BOOK_FIELDS = frozenset({"quantity", "from", "to", "message", "amount"})
ACTIONS = ("accept", "decline", "cancel", "start", "complete", "dispute")
MIRROR_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class Booking:
    """A validated booking request on one listing."""

    quantity: int
    slot: proto.Slot | None
    amount: int
    deposit: int
    message: str


@dataclass(frozen=True)
class Progress:
    """A group buy's pledges against its threshold and target (thousandths of a unit)."""

    pledged: int
    threshold: int
    target: int
    unit: str
    deadline: str
    state: str


@dataclass(frozen=True)
class DealRecord:
    """What a deal's page and API show besides its row: history, feedback and money."""

    events: list[aiosqlite.Row]
    feedback: list[FeedbackRow]
    money: deal_settlement.PaymentStatus


def _decimals(ctx: NodeContext) -> int:
    return ctx.config.currency.decimals


def me_uri(ctx: NodeContext, member: MemberRow) -> str:
    """The member's actor IRI."""
    return urls.member_actor(ctx.config.base_url, member.username)


def parse_booking(ctx: NodeContext, listing: ListingRow, data: object, now: datetime
                  ) -> Booking:
    """Validate what a booker asks of ``listing`` (quantity or slot, and the price)."""
    if not isinstance(data, Mapping):
        raise ValidationError("a booking must be an object", {"": "expected an object"})
    unknown = sorted(set(data) - BOOK_FIELDS)
    if unknown:
        raise ValidationError("unknown fields", dict.fromkeys(unknown, "unknown field"))
    if listing.kind != "offer" or listing.status != "active":
        raise ConflictError("only active offers can be booked")
    cap = capacity(listing)
    details = json.loads(listing.details)
    slot = proto.parse_slot(cap, data.get("from"), data.get("to"), now=now) if (
        cap.mode == "slot") else None
    quantity = proto.parse_quantity(cap, data.get("quantity"))
    if cap.mode != "slot":
        proto.check_quantity(cap, 0, quantity)
        when = proto.agreed_time(listing.category, details, None)
        if when is not None and when <= now:
            raise ConflictError("this listing's date has passed")
    decimals = _decimals(ctx)
    price = parse_amount(listing.price_amount, decimals=decimals) if (
        listing.price_mode == "amount" and listing.price_amount) else None
    amount = proto.deal_amount(price, listing.price_period, cap, quantity, slot)
    offered = data.get("amount")
    if offered not in (None, "") and parse_amount(offered, decimals=decimals) != amount:
        raise ValidationError(
            Text("the price of this booking is %(amount)s",
                 amount=number(format_amount(amount, decimals=decimals))),
            {"amount": Text("must be %(amount)s",
                            amount=number(format_amount(amount, decimals=decimals)))})
    deposit = details.get("deposit")
    message = data.get("message") or ""
    if not isinstance(message, str) or len(message) > proto.MESSAGE_MAX:
        raise ValidationError("message too long", {"message": "at most 1000 characters"})
    return Booking(quantity=quantity, slot=slot, amount=amount,
                   deposit=parse_amount(deposit, decimals=decimals) if deposit else 0,
                   message=clean_text(message))


def _terms(ctx: NodeContext, listing: ListingRow, booking: Booking, booker: str,
           agreement_id: str, now: datetime) -> proto.DealTerms:
    cap = capacity(listing)
    decimals = _decimals(ctx)
    return proto.DealTerms(
        agreement_id=agreement_id, offer_id=f"{agreement_id}/offer",
        listing_object=listing.object_id, booker=booker, author=listing.author_uri,
        category=listing.category, quantity=proto.format_quantity(cap, booking.quantity),
        unit=cap.unit, slot=booking.slot,
        amount=format_amount(booking.amount, decimals=decimals) if booking.amount else None,
        deposit=format_amount(booking.deposit, decimals=decimals) if booking.deposit else None,
        currency_uri=urls.currency_uri(ctx.config.base_url),
        currency_code=ctx.config.currency.symbol, message=booking.message, published=now)


async def book(ctx: NodeContext, booker: MemberRow, listing_id: str, data: object) -> DealRow:
    """Ask for part of a listing; accepted at once if the listing says so."""
    listing = await listing_q.get_listing(ctx.store.reader, listing_id)
    if listing is None or listing.hidden:
        raise NotFoundError(f"no listing {listing_id!r}")
    if listing.author_id == booker.id:
        raise PermissionDeniedError("you cannot book your own listing")
    now = ctx.clock()
    booking = parse_booking(ctx, listing, data, now)
    await queue_service.check_reputation(ctx, listing, me_uri(ctx, booker))
    remote = not listing.is_local
    held = 0
    if remote:
        capacity_service.check_published_room(
            listing, await capacity_service.remaining_of(ctx, listing), booking.quantity)
        await deal_settlement.check_payable(ctx, amount=booking.amount, deposit=booking.deposit)
        deposit_text = json.loads(listing.details).get("deposit") if booking.deposit else None
        held = await deal_settlement.deposit_hold(ctx, listing.author_uri, deposit_text)
    deal_id = secrets.token_hex(12)
    offer = sign_as_member(ctx, booker, proto.build_offer(_terms(
        ctx, listing, booking, me_uri(ctx, booker), deal_url(ctx, deal_id), now)), now)
    details = json.loads(listing.details)
    agreed = proto.agreed_time(listing.category, details, booking.slot)
    grace = MIRROR_GRACE if remote else timedelta()
    expires = proto.request_expiry(now, agreed) + grace
    if listing.category == "group-buy":
        expires = parse_utc(details["deadline"], field="deadline") + grace
    row = new_row(deal_id, listing, booking, offer, booker_uri=me_uri(ctx, booker),
                   booker_id=booker.id, author_id=listing.author_id, now=format_utc(now),
                   agreed=agreed, expires=expires)
    auto = bool(details.get("auto_accept")) and listing.category != "group-buy"
    accept_plan = None
    if auto and not remote:
        author = await author_of(ctx, listing)
        accept_plan = await plan(ctx, as_row(row, listing), "accept", author, now)
    async with ctx.store.transaction() as tx:
        await insert_checked(ctx, tx, listing, row)
        if remote:
            # the borrower's node keeps a cross-node loan's deposit (deal_settlement)
            await deal_settlement.hold_deposit(ctx, tx, deal_id, account=booker.username,
                                               amount=held, now=format_utc(now))
            await queue_to(ctx, tx, offer, listing.author_uri)
            await queue_guest.confirm_on_booking(ctx, tx, listing, booker)  # my turn there
        if accept_plan is not None:
            await apply(ctx, tx, deal_id, "accept", "system", listing.author_uri, accept_plan,
                        expect=as_row(row, listing))
    return await _get(ctx, deal_id)


def new_row(deal_id: str, listing: ListingRow, booking: Booking, offer: dict[str, object], *,
             booker_uri: str, booker_id: int | None, author_id: int | None, now: str,
             agreed: datetime | None, expires: datetime) -> dict[str, object]:
    agreement = offer["object"]
    if not isinstance(agreement, Mapping):
        raise ValidationError("an Offer of an Agreement was expected")
    return {
        "id": deal_id, "agreement_id": agreement["id"], "offer_id": offer["id"],
        "listing_id": listing.id, "category": listing.category, "booker_uri": booker_uri,
        "booker_id": booker_id, "author_uri": listing.author_uri, "author_id": author_id,
        "state": "requested", "quantity": booking.quantity,
        "slot_start": format_utc(booking.slot.start) if booking.slot else None,
        "slot_end": format_utc(booking.slot.end) if booking.slot else None,
        "amount": booking.amount, "deposit": booking.deposit, "message": booking.message,
        "offer": json.dumps(offer, ensure_ascii=False),
        "agreed_at": format_utc(agreed) if agreed else None, "expires_at": format_utc(expires),
        "created_at": now, "updated_at": now,
    }


def as_row(values: Mapping[str, object], listing: ListingRow) -> DealRow:
    return DealRow(**{**values, "reason": "", "answer": None,  # type: ignore[arg-type]
                      "listing_title": listing.title})


async def insert_checked(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
                          row: dict[str, object]) -> None:
    """Insert a request after checking it still fits (pledges count toward group buys)."""
    deal = as_row(row, listing)
    await check_room(tx, listing, deal)
    await queue_service.claim_turn(ctx, tx, listing, deal)  # the first in line goes first
    await q.insert_deal(tx, **row)
    if listing.category == "group-buy" and deal.amount and deal.booker_id is not None:
        await ledger.place_hold(ctx, tx, account=_username(deal.booker_uri), amount=deal.amount,
                                reason=f"deal:{deal.id}", now=deal.created_at,
                                expires_at=deal.expires_at or deal.created_at)
    await q.log_event(tx, deal_id=deal.id, action="request", from_state="",
                      to_state="requested", actor=deal.booker_uri, payments="",
                      at=deal.created_at)
    await notifications.deal_requested(ctx, tx, deal)
    await capacity_service.republish(ctx, tx, listing.id)  # a pledge counts at once


def _username(actor_uri: str) -> str:
    return actor_uri.rsplit("/", 1)[-1]


async def author_of(ctx: NodeContext, listing: ListingRow) -> MemberRow | None:
    return None if listing.author_id is None else await member_q.get_member(
        ctx.store.reader, listing.author_id)


# --- answering and moving a deal -------------------------------------------------------------


async def _get(ctx: NodeContext, deal_id: str) -> DealRow:
    deal = await q.get_deal(ctx.store.reader, deal_id)
    if deal is None:
        raise NotFoundError(f"no deal {deal_id!r}")
    return deal


def role_of(deal: DealRow, member: MemberRow) -> str | None:
    """``author``, ``booker`` or None (not a party)."""
    if deal.author_id == member.id:
        return "author"
    if deal.booker_id == member.id:
        return "booker"
    return None


async def get_deal(ctx: NodeContext, member: MemberRow, deal_id: str) -> DealRow:
    """A deal the member is a party of (admins see all); 404 otherwise."""
    deal = await q.get_deal(ctx.store.reader, deal_id)
    if deal is None or (role_of(deal, member) is None and not member.is_admin):
        raise NotFoundError(f"no deal {deal_id!r}")
    return deal


async def deal_record(ctx: NodeContext, deal: DealRow) -> DealRecord:
    """The deal's transitions (oldest first), the feedback left on it and its payment and
    deposit status; read after ``get_deal`` checked that the member may see it."""
    reader = ctx.store.reader
    events = await q.events(reader, deal.id)
    money = deal_settlement.payment_status(deal, await q.payments_of(reader, deal.id), events)
    return DealRecord(events, await q.feedback_for_deal(reader, deal.id), money)


def _check_policy(ctx: NodeContext, deal: DealRow, listing: ListingRow | None, action: str,
                  role: str, reason: str) -> None:
    details = json.loads(listing.details) if listing is not None else {}
    if action == "accept" and deal.category == "group-buy":
        raise ConflictError("group-buy pledges are committed together at the deadline")
    if action == "complete" and deal.category in proto.SLOT_CATEGORIES and role != "author":
        raise PermissionDeniedError("only the lender marks a loan returned")
    if action == "dispute" and not reason:
        raise ValidationError("say why", {"reason": "required"})
    if action == "cancel" and deal.state != "requested":
        notice = int(details.get("cancel_notice_hours", 0))
        agreed = parse_utc(deal.agreed_at, field="agreed_at") if deal.agreed_at else None
        if not proto.can_cancel_at(ctx.clock(), agreed, notice):
            raise ConflictError(Text(
                "too late to cancel: at most %(hours)s h before the agreed time", hours=notice))


async def act(ctx: NodeContext, member: MemberRow, deal_id: str, action: str,
              reason: object = None) -> DealRow:
    """The member takes ``action`` (accept, decline, cancel, start, complete, dispute)."""
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r}")
    deal = await get_deal(ctx, member, deal_id)
    role = role_of(deal, member)
    if role is None:
        raise PermissionDeniedError("only the parties of a deal can change it")
    text = clean_text(reason)[:200] if isinstance(reason, str) else ""
    proto.next_state(deal.state, action, role)  # fail early, before signing anything
    listing = await listing_q.get_listing(ctx.store.reader, deal.listing_id)
    _check_policy(ctx, deal, listing, action, role, text)
    prepared = await plan(ctx, deal, action, member, ctx.clock(), reason=text)
    async with ctx.store.transaction() as tx:
        return await apply(ctx, tx, deal.id, action, role, me_uri(ctx, member), prepared,
                           expect=deal, reason=text)


async def my_deals(ctx: NodeContext, member: MemberRow, role: str) -> list[DealRow]:
    """The member's deals as ``booker`` or ``author``, newest first (kept until anything is
    committed: "Mes réservations" reloads them often). Callers only read the list."""
    if role not in ("booker", "author"):
        raise ValidationError("role must be booker or author", {"role": "booker or author"})
    return await ctx.cached(("my_deals", member.id, role), lambda: q.list_for_member(
        ctx.store.reader, member.id, role), view=True)


async def pending_requests(ctx: NodeContext, listing_ids: list[str]) -> dict[str, int]:
    """Booking requests waiting for the author's answer, per listing (absent: none)."""
    return await q.requests_by_listing(ctx.store.reader, listing_ids)


async def progress(ctx: NodeContext, listing_id: str) -> Progress:
    """Pledges of a group buy against its threshold: the same figure on every node, counted
    here for ours, as the author's node last published it for another community's."""
    listing = await listing_q.get_listing(ctx.store.reader, listing_id)
    if listing is None or listing.category != "group-buy":
        raise NotFoundError(f"no group buy {listing_id!r}")
    details = json.loads(listing.details)
    remaining = await capacity_service.remaining_of(ctx, listing)
    pledged = remaining.taken if remaining is not None else 0
    committed = listing.status == "done" or await q.taken(
        ctx.store.reader, listing.id, (*proto.HOLDING, "completed")) > 0
    deadline = str(details["deadline"])
    state = "committed" if committed else (
        "open" if deadline > format_utc(ctx.clock()) else "closed")
    return Progress(pledged=pledged, threshold=proto.parse_quantity(capacity(listing),
                    details["threshold"]), target=capacity(listing).total,
                    unit=str(details["unit"]), deadline=deadline, state=state)


# --- feedback --------------------------------------------------------------------------------


async def leave_feedback(ctx: NodeContext, member: MemberRow, deal_id: str,
                         data: object) -> FeedbackRow:
    """Rate the other party of a completed deal (once); signed, sent if they are remote."""
    deal = await get_deal(ctx, member, deal_id)
    role = role_of(deal, member)
    if role is None:
        raise NotFoundError(f"no deal {deal_id!r}")
    if deal.state not in ("completed", "disputed"):
        raise ConflictError("feedback is possible once the deal is done")
    feedback = proto.parse_feedback(data)
    now = ctx.clock()
    mine = me_uri(ctx, member)
    subject = deal.booker_uri if role == "author" else deal.author_uri
    note_id = f"{deal_url(ctx, deal.id)}/feedback/{member.username}"
    note = sign_as_member(ctx, member, proto.build_feedback(
        feedback, note_id=note_id, author=mine, subject=subject,
        agreement_id=deal.agreement_id, when=now), now)
    row = FeedbackRow(id=note_id, deal_id=deal.id, author_uri=mine, subject_uri=subject,
                      rating=feedback.rating, comment=feedback.comment,
                      no_show=feedback.no_show, document=json.dumps(note, ensure_ascii=False),
                      created_at=format_utc(now))
    remote = (deal.author_id if role == "booker" else deal.booker_id) is None
    async with ctx.store.transaction() as tx:
        if not await q.insert_feedback(tx, row):
            raise ConflictError("you already left feedback on this deal")
        if remote:
            create = sign_as_member(ctx, member, proto.build_feedback_create(
                note, actor=mine, subject=subject, when=now), now)
            await queue_to(ctx, tx, create, subject)
        await receipts.issue_if_ready(ctx, tx, deal)  # both rated: the deal's receipt
    return row


async def feedback_about(ctx: NodeContext, username: str) -> list[FeedbackRow]:
    """Feedback a local member received (from this node and others)."""
    return await q.feedback_about(ctx.store.reader,
                                  urls.member_actor(ctx.config.base_url, username))


# --- expiries and group-buy deadlines --------------------------------------------------------


async def run_due(ctx: NodeContext) -> int:
    """Expire unanswered requests; settle group buys whose deadline passed. Returns moves."""
    now = format_utc(ctx.clock())
    due = await q.due_requests(ctx.store.reader, now)
    moved = 0
    settled: set[str] = set()
    for deal in due:
        if deal.category == "group-buy" and deal.author_id is not None:
            if deal.listing_id not in settled:
                settled.add(deal.listing_id)
                moved += await settle_group_buy(ctx, deal.listing_id)
            continue
        try:
            async with ctx.store.transaction() as tx:
                await apply(ctx, tx, deal.id, "expire", "system", "system", Plan(),
                            expect=deal)
            moved += 1
        except ConflictError:
            continue  # answered meanwhile
    return moved


async def settle_group_buy(ctx: NodeContext, listing_id: str) -> int:
    """At the deadline: commit every pledge at once if the threshold is met, else release all."""
    listing = await listing_q.get_listing(ctx.store.reader, listing_id)
    if listing is None:
        return 0
    details = json.loads(listing.details)
    pledges = await q.list_for_listing(ctx.store.reader, listing_id, ("requested",))
    threshold = proto.parse_quantity(capacity(listing), details["threshold"])
    reached = sum(p.quantity for p in pledges) >= threshold
    author = await author_of(ctx, listing)
    now = ctx.clock()
    action = "accept" if reached else "decline"
    plans = {p.id: await plan(ctx, p, action, author, now,
                              reason="" if reached else "threshold not reached")
             for p in pledges}
    async with ctx.store.transaction() as tx:
        for pledge in pledges:
            await apply(ctx, tx, pledge.id, action, "system", listing.author_uri,
                        plans[pledge.id], expect=pledge,
                        reason="" if reached else "threshold not reached")
        if pledges:
            await notifications.group_buy_settled(ctx, tx, listing, reached)
        if reached:  # closed on every node: the signed next version says done
            await capacity_service.republish(ctx, tx, listing_id, status="done")
    return len(pledges)
