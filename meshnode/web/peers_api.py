"""Admin JSON API for peering: ``/api/v1/peers`` (admin token required).

``block`` is the same preview-then-confirm block as ``/api/v1/blocks``
(``federation/blocking``): it needs ``"confirm": true``, and hides the node's listings
rather than deleting them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.federation import blocking, peering
from meshnode.federation.state import FEDERATION
from meshnode.protocol.errors import ValidationError
from meshnode.services import publishing
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin
from meshnode.web.bodies import read_json

ACTIONS = {"approve": peering.approve_peer, "remove": peering.remove_peer}


async def _admin(request: web.Request) -> MemberRow:
    return await api_admin(request, "peering is for administrators")


async def _peer_body(request: web.Request, name: str) -> tuple[str, dict[str, Any]]:
    body = await read_json(request, 4096)
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise ValidationError(f"give {name!r}", {name: "a node URL or handle@host[:port]"})
    return value, body


async def _peer_field(request: web.Request, name: str) -> str:
    return (await _peer_body(request, name))[0]


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


async def block_peer(request: web.Request, admin: MemberRow) -> web.Response:
    """``POST /api/v1/peers/block {"peer": URL or handle, "confirm": true}``: as
    ``POST /api/v1/blocks`` (422 without ``confirm``; ``/api/v1/blocks/preview`` first)."""
    peer, body = await _peer_body(request, "peer")
    done = await blocking.block_node(request.app[CONTEXT], admin, peer,
                                     confirm=body.get("confirm"))
    request.app[FEDERATION].wake_delivery()
    return web.json_response({"peer": done.origin, "done": "block", **done.to_json()})


async def peer_action(request: web.Request) -> web.Response:
    """``POST /api/v1/peers/{approve|remove|block} {"peer": …}``."""
    admin = await _admin(request)
    if request.match_info["action"] == "block":
        return await block_peer(request, admin)
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
