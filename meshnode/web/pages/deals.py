"""Deal pages: book from a listing, my bookings (as booker and as author), one deal with its
actions (accept, decline, cancel, start, returned/done, claim) and feedback. CSRF on every POST.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from markupsafe import Markup

from meshnode.errors import NotFoundError
from meshnode.protocol import deals as proto
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.names import Party
from meshnode.services import deal_settlement, names, queue_guest
from meshnode.services import deals as deal_service
from meshnode.store.deals import DealRow, FeedbackRow
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT, FRAGMENTS, TEMPLATES
from meshnode.web.browser import (
    csrf_token,
    field,
    read_form,
    redirect,
    render,
    require_member,
    translator,
)
from meshnode.web.deals_api import quantity_text
from meshnode.web.i18n import N_
from meshnode.web.pages.forms import UNIT_LABELS
from meshnode.web.pages.queue_view import queue_context
from meshnode.web.pages.refill import REFUSALS, FormState, refused

STATE_LABELS = {
    "requested": N_("Requested"), "accepted": N_("Accepted"), "declined": N_("Declined"),
    "cancelled": N_("Cancelled"), "expired": N_("Expired"), "in_progress": N_("In progress"),
    "completed": N_("Completed"), "disputed": N_("Disputed"),
}
BOOKABLE = (*proto.SLOT_CATEGORIES, "ride", "meal", "sell", "give", "swap", "produce",
            "group-buy")
PAYMENT_LABELS = {
    "paid": N_("Payment made"), "pending": N_("Payment pending"), "failed": N_("Payment failed"),
    "awaiting": N_("Payment sent, awaiting the other community"),
    "refunded": N_("Refunded"), "refund_pending": N_("Refund pending"),
    "refund_failed": N_("Refund failed"),
}
DEPOSIT_LABELS = {
    "held": N_("Deposit held"), "released": N_("Deposit released"),
    "claimed": N_("Deposit claimed"),
}
ACTION_LABELS = {
    "accept": N_("Accept"), "decline": N_("Decline"), "cancel": N_("Cancel"),
    "start": N_("Handed over"), "complete": N_("Mark done"), "dispute": N_("Claim the deposit"),
}


def actions_for(deal: DealRow, role: str | None) -> list[str]:
    """The actions this party can take now (the page shows one button each)."""
    if role is None:
        return []
    found = [action for action, edge in proto.TRANSITIONS[deal.state].items()
             if role in edge.by and action in ACTION_LABELS]
    if deal.category == "group-buy":
        found = [a for a in found if a != "accept"]
    if deal.category not in proto.SLOT_CATEGORIES:
        found = [a for a in found if a not in ("start", "dispute")]
    elif role != "author":
        found = [a for a in found if a != "complete"]
    return found


def _card(deal: DealRow, role: str | None, decimals: int) -> dict[str, Any]:
    return {"deal": deal, "role": role, "quantity": quantity_text(deal),
            "unit": UNIT_LABELS.get(deal.listing_unit, deal.listing_unit),
            "actions": actions_for(deal, role),
            "amount": format_amount(deal.amount, decimals=decimals) if deal.amount else None,
            "deposit": format_amount(deal.deposit, decimals=decimals) if deal.deposit else None}


async def my_deals(request: web.Request) -> web.Response:
    """``GET /my/deals``: what I booked, and the bookings of my listings."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    booked = await deal_service.my_deals(ctx, member, "booker")
    received = await deal_service.my_deals(ctx, member, "author")
    parties = await names.actor_parties(
        ctx, [d.author_uri for d in booked] + [d.booker_uri for d in received])
    cards = await _card_renderer(request, member, parties)
    return await render(request, "my_deals.html", {
        "booked": [cards(d, "booker") for d in booked],
        "received": [cards(d, "author") for d in received],
        "queue_places": await queue_guest.places(ctx, member),
    })


async def _card_renderer(request: web.Request, member: MemberRow, parties: dict[str, Party]
                         ) -> Callable[[DealRow, str], Markup]:
    """Deal cards from the fragment cache, keyed by the deal row (all of it), the role, the
    other party's name, the language and the session's CSRF token (the cards hold forms)."""
    tr = translator(request, member)
    token = await csrf_token(request)
    env = request.app[TEMPLATES].env
    fragments = request.app[FRAGMENTS]
    decimals = request.app[CONTEXT].config.currency.decimals

    def card(deal: DealRow, role: str) -> Markup:
        other = deal.booker_uri if role == "author" else deal.author_uri
        party = parties.get(other)
        return fragments.render(env, "_deal_card.html", (tr.lang, deal, role, party, token),
                                lambda: {
            "_": tr.gettext, "ngettext": tr.ngettext, "fmt": tr, "csrf_token": token,
            "parties": {other: party} if party else {}, "item": _card(deal, role, decimals),
            "state_labels": STATE_LABELS, "action_labels": ACTION_LABELS,
        })

    return card


async def deal_page(request: web.Request, *, refusal: FormState | None = None
                    ) -> web.Response:
    """``GET /deals/{id}``: one deal, its history, actions and feedback; ``refusal`` shows a
    refused action's message by the action buttons, the reason typed kept."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    deal = await deal_service.get_deal(ctx, member, request.match_info["deal_id"])
    role = deal_service.role_of(deal, member)
    record = await deal_service.deal_record(ctx, deal)
    feedback, events, money = record.feedback, record.events, record.money
    mine = deal_service.me_uri(ctx, member)
    parties = await names.actor_parties(
        ctx, [deal.author_uri, deal.booker_uri, *(f.author_uri for f in feedback)])
    return await render(request, "deal.html", {
        "parties": parties,
        **_card(deal, role, ctx.config.currency.decimals),
        "events": events, "money": money, "payment_labels": PAYMENT_LABELS,
        "deposit_labels": DEPOSIT_LABELS,
        "feedback": feedback, "can_rate": role is not None and deal.state in (
            "completed", "disputed") and all(f.author_uri != mine for f in feedback),
        "state_labels": STATE_LABELS, "action_labels": ACTION_LABELS,
        "refusal": refusal or FormState(),
    }, status=refusal.status if refusal else 200)


async def deal_action(request: web.Request) -> web.StreamResponse:
    """``POST /deals/{id}/{action}``."""
    member = await require_member(request)
    form = await read_form(request)
    action = request.match_info["action"]
    if action not in ACTION_LABELS:
        raise NotFoundError("no such action")
    values = {"reason": field(form, "reason", 200)}
    try:
        deal = await deal_service.act(request.app[CONTEXT], member,
                                      request.match_info["deal_id"], action, values["reason"])
    except REFUSALS as exc:
        return await deal_page(request, refusal=refused(exc, values, ("reason",)))
    raise redirect(f"/deals/{deal.id}")


async def feedback(request: web.Request) -> web.StreamResponse:
    """``POST /deals/{id}/feedback``: rating, comment, no-show."""
    member = await require_member(request)
    form = await read_form(request)
    deal_id = request.match_info["deal_id"]
    values = {"rating": field(form, "rating", 2), "comment": field(form, "comment", 500)}
    try:
        await deal_service.leave_feedback(request.app[CONTEXT], member, deal_id, {
            **values, "no_show": field(form, "no_show", 5) == "on"})
    except REFUSALS as exc:
        return await deal_page(request, refusal=refused(exc, values, tuple(values)))
    raise redirect(f"/deals/{deal_id}")


async def booking_context(request: web.Request, row: ListingRow, *, is_author: bool
                          ) -> dict[str, Any]:
    """What the listing page needs for its book form, group-buy progress and, for its author,
    the requests waiting for an answer. A paid booking on another community's listing is
    refused while no trust line exists (``deal_settlement.check_payable``): the page says so
    instead of offering a form that cannot succeed."""
    ctx = request.app[CONTEXT]
    context: dict[str, Any] = {"bookable": row.category in BOOKABLE,
                               "slot_booking": row.category in proto.SLOT_CATEGORIES,
                               "progress": None, "no_trust_line": False, "pending": 0}
    if context["bookable"] and not row.is_local and _is_paid(row):
        deposit = bool(json.loads(row.details).get("deposit"))
        context["no_trust_line"] = not await deal_settlement.settles_across(
            ctx, author_uri=row.author_uri if deposit else None)
        context["bookable"] = not context["no_trust_line"]
    # Both at once: one trip to the reader thread (issue 17).
    pending, queue = await asyncio.gather(
        deal_service.pending_requests(ctx, [row.id]) if is_author else _no_requests(),
        queue_context(request, row, is_author=is_author))
    context["pending"] = pending.get(row.id, 0)
    context.update(queue)
    if row.category == "group-buy":
        found = await deal_service.progress(ctx, row.id)
        context["progress"] = {
            "found": found, "percent": min(100, found.pledged * 100 // max(found.threshold, 1)),
            "pledged": found.pledged / proto.DECIMAL_SCALE,
            "threshold": found.threshold / proto.DECIMAL_SCALE,
        }
    return context


async def _no_requests() -> dict[str, int]:
    return {}


def _is_paid(row: ListingRow) -> bool:
    """A booking of ``row`` moves money: a price, or a deposit held."""
    price = row.price_mode == "amount" and bool(row.price_amount)
    return price or bool(json.loads(row.details).get("deposit"))


def feedback_summary(rows: list[FeedbackRow]) -> dict[str, Any]:
    """Average rating and count, for profiles."""
    if not rows:
        return {"count": 0, "average": None}
    return {"count": len(rows), "average": round(sum(r.rating for r in rows) / len(rows), 1)}


def setup_deal_pages(app: web.Application) -> None:
    """Register the deal pages."""
    app.router.add_get("/my/deals", my_deals)
    app.router.add_get("/deals/{deal_id}", deal_page)
    app.router.add_post("/deals/{deal_id}/feedback", feedback)
    app.router.add_post("/deals/{deal_id}/{action}", deal_action)
