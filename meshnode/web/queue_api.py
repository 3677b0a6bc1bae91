"""JSON API of waiting lists: ``/api/v1/listings/{id}/queue`` (join, look, leave, confirm)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.services import deals as deal_service
from meshnode.services import queue as queue_service
from meshnode.services.queue import QueueStatus
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.bodies import read_json
from meshnode.web.deals_api import named_deals


def queue_json(found: QueueStatus) -> dict[str, Any]:
    """A member's place in an item's queue as the API shows it."""
    return {"listing": found.listing_id, "state": found.state, "position": found.position,
            "length": found.length, "confirm_by": found.confirm_by,
            "item_out": found.item_out, "remote": found.remote, "reason": found.reason}


async def get_queue(request: web.Request) -> web.Response:
    """``GET``: my place (``state``/``position`` null when I am not in line)."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    found = await queue_service.status(ctx, member, request.match_info["listing_id"])
    return web.json_response(queue_json(found))


async def join_queue(request: web.Request) -> web.Response:
    """``POST``: take the last place; 201 with it (409 when the item is available now)."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    found = await queue_service.join(ctx, member, request.match_info["listing_id"])
    return web.json_response(queue_json(found), status=201)


async def leave_queue(request: web.Request) -> web.Response:
    """``DELETE``: give up my place or my turn (404 when not in line)."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    listing_id = request.match_info["listing_id"]
    await queue_service.leave(ctx, member, listing_id)
    return web.json_response(queue_json(await queue_service.status(ctx, member, listing_id)))


async def confirm_turn(request: web.Request) -> web.Response:
    """``POST …/queue/confirm`` ``{from, to, message}``: book the item during my turn (201
    with the booking request); 409 when I do not hold the turn."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    listing_id = request.match_info["listing_id"]
    found = await queue_service.status(ctx, member, listing_id)
    if found.state != "notified":
        raise ConflictError("it is not your turn for this item yet")
    data = await read_json(request, ctx.config.max_body_bytes) if request.can_read_body else {}
    deal = await deal_service.book(ctx, member, listing_id, data)
    [body] = await named_deals(ctx, [deal], ctx.config.currency.decimals, member)
    return web.json_response(body, status=201, headers={"Location": f"/api/v1/deals/{deal.id}"})


def setup_queue_routes(app: web.Application) -> None:
    """Register the waiting-list API."""
    app.router.add_get("/api/v1/listings/{listing_id}/queue", get_queue)
    app.router.add_post("/api/v1/listings/{listing_id}/queue", join_queue)
    app.router.add_delete("/api/v1/listings/{listing_id}/queue", leave_queue)
    app.router.add_post("/api/v1/listings/{listing_id}/queue/confirm", confirm_turn)
