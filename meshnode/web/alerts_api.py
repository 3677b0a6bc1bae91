"""JSON API of saved searches (``/api/v1/alerts``), a listing's matches and its renewal."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.protocol.translatable import Text
from meshnode.services import alerts as service
from meshnode.services import listings as listing_service
from meshnode.store.listings import ListingRow
from meshnode.web.api import listings_json, one_listing_json
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.bodies import path_id, read_json


def match_listing_json(row: ListingRow) -> dict[str, Any]:
    """The listing a ``match`` notification is about: ``{id, title, url, origin, kind}``."""
    return {"id": row.id, "title": row.title, "url": row.object_id, "origin": row.origin,
            "kind": row.kind, "category": row.category}


async def create_alert(request: web.Request) -> web.Response:
    """``POST /api/v1/alerts {q, kind, category, near, radius_km, max_price}`` → 201."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    data = await read_json(request, ctx.config.max_body_bytes)
    alert = await service.create_alert(ctx, member, data)
    return web.json_response(alert.to_json(ctx.config.currency.decimals), status=201,
                             headers={"Location": f"/api/v1/alerts/{alert.row.id}"})


async def list_alerts(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts``: the caller's saved searches, oldest first."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    alerts = await service.list_alerts(ctx, member)
    decimals = ctx.config.currency.decimals
    return web.json_response({"items": [alert.to_json(decimals) for alert in alerts],
                              "max": service.MAX_ALERTS})


async def delete_alert(request: web.Request) -> web.Response:
    """``DELETE /api/v1/alerts/{id}``: 204; 404 when it is not one of the caller's."""
    member = await api_member(request)
    alert_id = path_id(request, "alert_id", Text("no such alert"))
    await service.delete_alert(request.app[CONTEXT], member, alert_id)
    return web.Response(status=204)


async def listing_matches(request: web.Request) -> web.Response:
    """``GET /api/v1/listings/{id}/matches``: for an offer, the requests and swaps (here
    and from neighbours) that want it; for a request or a swap, the offers it wants."""
    await api_member(request)
    ctx = request.app[CONTEXT]
    rows = await service.matches_for(ctx, request.match_info["listing_id"])
    views = [listing_service.ListingView(row=row, images=[]) for row in rows]
    return web.json_response({"items": await listings_json(ctx, views)})


async def renew_listing(request: web.Request) -> web.Response:
    """``POST /api/v1/listings/{id}/renew``: expires the default lifetime from now (a new
    signed version, federated as an Update); also republishes an expired listing."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.renew_listing(ctx, member, request.match_info["listing_id"])
    return web.json_response(await one_listing_json(ctx, view))


def setup_alert_routes(app: web.Application) -> None:
    """Register the alerts' ``/api/v1`` routes."""
    app.router.add_post("/api/v1/alerts", create_alert)
    app.router.add_get("/api/v1/alerts", list_alerts)
    app.router.add_delete("/api/v1/alerts/{alert_id}", delete_alert)
    app.router.add_get("/api/v1/listings/{listing_id}/matches", listing_matches)
    app.router.add_post("/api/v1/listings/{listing_id}/renew", renew_listing)
