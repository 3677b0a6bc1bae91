"""Administration: the Neighbours page (nodes found on the LAN over mDNS, and their peering)."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.protocol.activities import origin_of
from meshnode.services import neighbours
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import read_form, redirect, render, require_admin
from meshnode.web.discovery_api import approve_and_peer, neighbour_id, neighbour_views
from meshnode.web.pages.peers_admin import reachability_by_origin

# Rows that can still be peered by hand: not yet peered, not rejected, not blocked.
PEERABLE = frozenset({"discovered", "verified", "offline"})


async def neighbours_page(request: web.Request) -> web.Response:
    """``GET /admin/neighbours``: every discovered node, its status, last sync and actions."""
    await require_admin(request)
    ctx = request.app[CONTEXT]
    reach = await reachability_by_origin(ctx)
    views = await neighbour_views(ctx)
    for view in views:  # "peered" alone would hide a node that stopped answering
        view["reach"] = reach.get(origin_of(view["actor"])) if view.get("actor") else None
    return await render(request, "admin/neighbours.html", {
        "neighbours": views, "policy": ctx.config.discovery_policy,
        "peerable": PEERABLE, "error": request.query.get("error"),
    })


async def neighbour_action(request: web.Request) -> web.StreamResponse:
    """``POST /admin/neighbours/{id}/approve`` (peer) or ``/block``."""
    await require_admin(request)
    await read_form(request)
    ctx = request.app[CONTEXT]
    target = neighbour_id(request)
    try:
        if request.match_info["action"] == "approve":
            await approve_and_peer(ctx, target)
        else:
            await neighbours.block_neighbour(ctx, target)
    except ConflictError:
        raise redirect("/admin/neighbours?error=blocked") from None
    raise redirect(f"/admin/neighbours#neighbour-{target}")


def setup_neighbour_pages(app: web.Application) -> None:
    """Register the Neighbours page."""
    app.router.add_get("/admin/neighbours", neighbours_page)
    app.router.add_post("/admin/neighbours/{neighbour_id}/{action:approve|block}",
                        neighbour_action)
