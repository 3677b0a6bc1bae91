"""JSON API of deals under ``/api/v1`` (quantities and amounts are decimal strings)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from meshnode.protocol.amounts import format_amount
from meshnode.protocol.deals import DECIMAL_SCALE, SLOT_CATEGORIES
from meshnode.protocol.errors import ValidationError
from meshnode.services import deal_payments, names
from meshnode.services import deals as deal_service
from meshnode.services.context import NodeContext
from meshnode.store.deals import DealRow, FeedbackRow
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.bodies import read_json

DECIMAL_CATEGORIES = ("produce", "group-buy")
ACTION_ROUTES = {"accept": "accept", "decline": "decline", "cancel": "cancel",
                 "start": "start", "returned": "complete", "done": "complete",
                 "claim": "dispute", "dispute": "dispute"}


def quantity_text(deal: DealRow) -> str:
    """The deal's quantity as text (thousandths shown as decimals)."""
    if deal.category in DECIMAL_CATEGORIES:
        return format_amount(deal.quantity, decimals=3).rstrip("0").rstrip(".")
    return str(deal.quantity)


def deal_json(deal: DealRow, decimals: int, viewer: MemberRow | None = None) -> dict[str, Any]:
    """A deal as the API shows it."""
    body: dict[str, Any] = {
        "id": deal.id, "agreement": deal.agreement_id, "listing": deal.listing_id,
        "listing_title": deal.listing_title, "category": deal.category, "state": deal.state,
        "booker": deal.booker_uri, "author": deal.author_uri,
        "quantity": quantity_text(deal),
        "slot": ({"from": deal.slot_start, "to": deal.slot_end}
                 if deal.category in SLOT_CATEGORIES else None),
        "amount": format_amount(deal.amount, decimals=decimals),
        "deposit": format_amount(deal.deposit, decimals=decimals),
        "message": deal.message, "reason": deal.reason, "agreed_at": deal.agreed_at,
        "expires_at": deal.expires_at, "created_at": deal.created_at,
        "updated_at": deal.updated_at, "local": deal.is_local,
        "offer": json.loads(deal.offer),
    }
    if viewer is not None:
        body["role"] = deal_service.role_of(deal, viewer)
    return body


async def named_deals(ctx: NodeContext, deals: list[DealRow], decimals: int,
                      viewer: MemberRow | None = None) -> list[dict[str, Any]]:
    """Deals as the API shows them, with ``people: {booker, author}`` as ``{name, handle,
    actor}`` next to the actor URIs."""
    parties = await names.actor_parties(
        ctx, [uri for deal in deals for uri in (deal.booker_uri, deal.author_uri)])
    bodies = []
    for deal in deals:
        body = deal_json(deal, decimals, viewer)
        body["people"] = {"booker": parties[deal.booker_uri].to_json(),
                          "author": parties[deal.author_uri].to_json()}
        bodies.append(body)
    return bodies


def feedback_json(row: FeedbackRow) -> dict[str, Any]:
    """Signed feedback as the API shows it."""
    return {"id": row.id, "deal": row.deal_id, "author": row.author_uri,
            "subject": row.subject_uri, "rating": row.rating, "comment": row.comment,
            "no_show": row.no_show, "created_at": row.created_at,
            "document": json.loads(row.document)}


async def _object(request: web.Request, ctx: NodeContext) -> Mapping[str, Any]:
    data = await read_json(request, ctx.config.max_body_bytes)
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object", {"": "expected an object"})
    return data


async def post_deal(request: web.Request) -> web.Response:
    """``POST /api/v1/listings/{id}/deals`` (and ``/pledges``): book; 201 with the deal."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    data = await _object(request, ctx)
    deal = await deal_service.book(ctx, member, request.match_info["listing_id"], data)
    [body] = await named_deals(ctx, [deal], ctx.config.currency.decimals, member)
    return web.json_response(body, status=201,
                             headers={"Location": f"/api/v1/deals/{deal.id}"})


async def list_deals(request: web.Request) -> web.Response:
    """``GET /api/v1/deals?role=booker|author``."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    rows = await deal_service.my_deals(ctx, member, request.query.get("role", "booker"))
    decimals = ctx.config.currency.decimals
    return web.json_response({"items": await named_deals(ctx, rows, decimals, member)})


async def get_deal(request: web.Request) -> web.Response:
    """``GET /api/v1/deals/{id}``."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    deal = await deal_service.get_deal(ctx, member, request.match_info["deal_id"])
    [body] = await named_deals(ctx, [deal], ctx.config.currency.decimals, member)
    body["payments"] = await deal_payments.payments_json(ctx, deal)  # cross-node only
    money = (await deal_service.deal_record(ctx, deal)).money
    body["payment_status"], body["deposit_status"] = money.payment, money.deposit
    return web.json_response(body)


async def post_action(request: web.Request) -> web.Response:
    """``POST /api/v1/deals/{id}/{accept|decline|cancel|start|returned|done|claim}``."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    action = ACTION_ROUTES.get(request.match_info["action"])
    if action is None:
        raise web.HTTPNotFound()
    data = await _object(request, ctx) if request.can_read_body else {}
    deal = await deal_service.act(ctx, member, request.match_info["deal_id"], action,
                                  data.get("reason"))
    [body] = await named_deals(ctx, [deal], ctx.config.currency.decimals, member)
    return web.json_response(body)


async def post_feedback(request: web.Request) -> web.Response:
    """``POST /api/v1/deals/{id}/feedback`` ``{rating, comment, no_show}``."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    row = await deal_service.leave_feedback(ctx, member, request.match_info["deal_id"],
                                            await _object(request, ctx))
    return web.json_response(feedback_json(row), status=201)


async def get_progress(request: web.Request) -> web.Response:
    """``GET /api/v1/listings/{id}/progress``: a group buy's pledges and threshold."""
    ctx = request.app[CONTEXT]
    found = await deal_service.progress(ctx, request.match_info["listing_id"])

    def text(units: int) -> str:
        return format_amount(units, decimals=3).rstrip("0").rstrip(".")

    return web.json_response({
        "pledged": text(found.pledged), "threshold": text(found.threshold),
        "target": text(found.target), "unit": found.unit, "deadline": found.deadline,
        "state": found.state,
        "percent": min(100, found.pledged * 100 // max(found.threshold, 1)),
        "scale": DECIMAL_SCALE,
    })


async def get_feedback(request: web.Request) -> web.Response:
    """``GET /api/v1/users/{username}/feedback``: feedback the member received."""
    ctx = request.app[CONTEXT]
    rows = await deal_service.feedback_about(ctx, request.match_info["username"])
    return web.json_response({"items": [feedback_json(r) for r in rows]})


def setup_deal_routes(app: web.Application) -> None:
    """Register the deal API."""
    app.router.add_post("/api/v1/listings/{listing_id}/deals", post_deal)
    app.router.add_post("/api/v1/listings/{listing_id}/pledges", post_deal)
    app.router.add_get("/api/v1/listings/{listing_id}/progress", get_progress)
    app.router.add_get("/api/v1/deals", list_deals)
    app.router.add_get("/api/v1/deals/{deal_id}", get_deal)
    app.router.add_post("/api/v1/deals/{deal_id}/feedback", post_feedback)
    app.router.add_post("/api/v1/deals/{deal_id}/{action}", post_action)
    app.router.add_get("/api/v1/users/{username}/feedback", get_feedback)
