"""Admin JSON API for peering: ``/api/v1/peers`` (admin token required)."""

from __future__ import annotations

from aiohttp import web

from meshnode.federation import peering
from meshnode.protocol.errors import ValidationError
from meshnode.services import publishing
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin
from meshnode.web.bodies import read_json

ACTIONS = {"approve": peering.approve_peer, "remove": peering.remove_peer,
           "block": peering.block_peer}


async def _admin(request: web.Request) -> MemberRow:
    return await api_admin(request, "peering is for administrators")


async def _peer_field(request: web.Request, name: str) -> str:
    body = await read_json(request, 4096)
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValidationError(f"give {name!r}", {name: "a node URL or handle@host[:port]"})
    return value


async def list_peers(request: web.Request) -> web.Response:
    """``GET /api/v1/peers``: peers and per-host delivery status."""
    await _admin(request)
    ctx = request.app[CONTEXT]
    peers = [peer.as_json() for peer in await peering.list_peers(ctx)]
    deliveries = await publishing.delivery_summary(ctx)
    return web.json_response({"peers": peers, "deliveries": deliveries})


async def add_peer(request: web.Request) -> web.Response:
    """``POST /api/v1/peers {"target": URL or handle}``: 202, the node follows it shortly."""
    await _admin(request)
    origin = await peering.add_peer(request.app[CONTEXT], await _peer_field(request, "target"))
    return web.json_response({"peer": origin, "status": "pending"}, status=202)


async def peer_action(request: web.Request) -> web.Response:
    """``POST /api/v1/peers/{approve|remove|block} {"peer": …}``."""
    await _admin(request)
    action = ACTIONS.get(request.match_info["action"])
    if action is None:
        raise web.HTTPNotFound()
    origin = await action(request.app[CONTEXT], await _peer_field(request, "peer"))
    return web.json_response({"peer": origin, "done": request.match_info["action"]})


def setup_peer_routes(app: web.Application) -> None:
    """Register the peering API."""
    app.router.add_get("/api/v1/peers", list_peers)
    app.router.add_post("/api/v1/peers", add_peer)
    app.router.add_post("/api/v1/peers/{action}", peer_action)
