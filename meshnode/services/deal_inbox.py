"""Deal messages from other nodes, applied on the inbox worker's transaction.

The federation layer has already checked the HTTP signature and the FEP-8b32 proof of the
actor; here each message must also fit the deal: only the listing's author answers an
Offer, only a party moves an Agreement, and retries of the same id change nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import aiosqlite

from meshnode.errors import ServiceError
from meshnode.protocol import deals as proto
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.services import deal_payments, deal_settlement, receipts
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from meshnode.services.deal_effects import Plan, apply, plan, queue_to
from meshnode.services.deals import as_row, author_of, insert_checked, new_row, parse_booking
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store import listings as listing_q
from meshnode.store.db import savepoint
from meshnode.store.listings import ListingRow

REFUSALS = (ServiceError, ValidationError)


async def receive_offer(ctx: NodeContext, tx: aiosqlite.Connection,
                        offer: Mapping[str, Any]) -> str:
    """A remote member books one of our listings: store the request, or answer Reject."""
    offered = proto.parse_offer(offer)
    if await q.deal_by(tx, "offer_id", offered.offer_id) or await q.deal_by(
            tx, "agreement_id", offered.agreement_id):
        return "ignored: duplicate offer"
    listing = await listing_q.get_listing_by_object_id(tx, offered.listing_object)
    if listing is None or not listing.is_local or listing.author_id is None:
        return "rejected: not one of our listings"
    now = ctx.clock()
    try:
        booking = parse_booking(ctx, listing, {
            "quantity": offered.quantity, "from": offered.slot_start, "to": offered.slot_end,
            "amount": offered.amount or "0" if listing.price_mode == "amount" else None,
            "message": offered.message}, now)
        await deal_settlement.check_payable(ctx, amount=booking.amount,
                                            deposit=booking.deposit)
        # what this node saw of the booker: a remote member below the minimum is declined
        await queue_service.check_reputation(ctx, listing, offered.booker)
        details = json.loads(listing.details)
        agreed = proto.agreed_time(listing.category, details, booking.slot)
        expires = proto.request_expiry(now, agreed)
        row = new_row(_local_id(offered.offer_id), listing, booking, dict(offer),
                       booker_uri=offered.booker, booker_id=None, author_id=listing.author_id,
                       now=format_utc(now), agreed=agreed, expires=expires)
        row["agreement_id"], row["offer_id"] = offered.agreement_id, offered.offer_id
        async with savepoint(tx, "offer"):  # a refused offer leaves no half-inserted row
            await insert_checked(ctx, tx, listing, row)
    except REFUSALS as exc:
        await _reject(ctx, tx, listing, offered, str(exc))
        return f"rejected: {exc}"
    if details.get("auto_accept") and listing.category != "group-buy":
        deal = as_row(row, listing)
        author = await author_of(ctx, listing)
        accepted = await plan(ctx, deal, "accept", author, now)
        await apply(ctx, tx, deal.id, "accept", "system", listing.author_uri, accepted,
                    expect=deal)
        return "accepted"
    return "requested"


def _local_id(offer_id: str) -> str:
    """A stable local id for a remote offer (retries map to the same row)."""
    return hashlib.sha256(offer_id.encode("utf-8")).hexdigest()[:24]


async def _reject(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
                  offered: proto.OfferedDeal, reason: str) -> None:
    author = await author_of(ctx, listing)
    if author is None:
        return
    now = ctx.clock()
    document = proto.build_answer(
        activity_id=f"{ctx.config.base_url}/deals/{_local_id(offered.offer_id)}/decline",
        actor=listing.author_uri, offer_id=offered.offer_id,
        agreement_id=offered.agreement_id, booker=offered.booker, accept=False, when=now,
        reason=reason)
    await queue_to(ctx, tx, sign_as_member(ctx, author, document, now), offered.booker)


async def receive_answer(ctx: NodeContext, tx: aiosqlite.Connection,
                         answer: Mapping[str, Any]) -> str:
    """The author of a remote listing accepted or declined our member's Offer."""
    offer = answer.get("object")
    offer_id = offer.get("id") if isinstance(offer, Mapping) else None
    deal = await q.deal_by(tx, "offer_id", offer_id) if isinstance(offer_id, str) else None
    if deal is None or deal.booker_id is None:
        return "ignored: not an offer of ours"
    if answer.get("actor") != deal.author_uri:
        return "rejected: only the listing's author can answer"
    action = "accept" if answer.get("type") == "Accept" else "decline"
    reason = answer.get("reason")
    try:
        await apply(ctx, tx, deal.id, action, "author", deal.author_uri,
                    Plan(answer=json.dumps(answer, ensure_ascii=False)), expect=deal,
                    reason=reason[:200] if isinstance(reason, str) else "")
    except REFUSALS as exc:
        return f"ignored: {exc}"
    return action + "ed"


async def receive_update(ctx: NodeContext, tx: aiosqlite.Connection,
                         update: Mapping[str, Any]) -> str:
    """The remote party moved a deal on (started, done, cancelled, disputed)."""
    agreement = update.get("object")
    if not isinstance(agreement, Mapping):
        return "rejected: an Update of an Agreement was expected"
    deal = await q.deal_by(tx, "agreement_id", str(agreement.get("id")))
    if deal is None:
        return "ignored: unknown agreement"
    actor = update.get("actor")
    if deal_payments.is_notice(dict(agreement)):
        return await deal_payments.receive_notice(ctx, tx, deal, str(actor), dict(agreement))
    if actor == deal.author_uri and deal.author_id is None:
        role = "author"
    elif actor == deal.booker_uri and deal.booker_id is None:
        role = "booker"
    else:
        return "rejected: not the remote party of this deal"
    action = proto.WIRE_STATES.get(str(agreement.get("dealState")))
    if action is None:
        return "rejected: unknown deal state"
    reason = agreement.get("reason")
    try:
        await apply(ctx, tx, deal.id, action, role, str(actor), Plan(), expect=deal,
                    reason=reason[:200] if isinstance(reason, str) else "")
    except REFUSALS as exc:
        return f"ignored: {exc}"
    return f"{action} applied"


async def receive_feedback(ctx: NodeContext, tx: aiosqlite.Connection,
                           note: Mapping[str, Any], actor: str) -> str:
    """Signed feedback from the remote party of a completed deal."""
    deal = await q.deal_by(tx, "agreement_id", str(note.get("feedbackFor")))
    if deal is None or deal.state not in ("completed", "disputed"):
        return "ignored: no completed deal"
    remote_party = deal.author_uri if deal.author_id is None else (
        deal.booker_uri if deal.booker_id is None else None)
    if actor != remote_party or note.get("attributedTo") != actor:
        return "rejected: not the remote party of this deal"
    subject = deal.booker_uri if actor == deal.author_uri else deal.author_uri
    feedback = proto.parse_feedback({"rating": note.get("rating"),
                                     "comment": note.get("content"),
                                     "no_show": note.get("noShow")})
    row = q.FeedbackRow(id=str(note["id"]), deal_id=deal.id, author_uri=actor,
                        subject_uri=subject, rating=feedback.rating, comment=feedback.comment,
                        no_show=feedback.no_show,
                        document=json.dumps(note, ensure_ascii=False),
                        created_at=format_utc(ctx.clock()))
    if not await q.insert_feedback(tx, row):
        return "ignored: duplicate"
    return f"stored; receipt: {await receipts.issue_if_ready(ctx, tx, deal)}"
