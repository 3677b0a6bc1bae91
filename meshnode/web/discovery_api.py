"""Discovery endpoints: the node's self-description and challenge, and the admin neighbours API.

* ``GET /.well-known/meshnode``: name, handle, actor, Ed25519 Multikey, protocol version:
  what a neighbour checks against our mDNS TXT record. Minimal on purpose: the actor
  document (federation) is the full description.
* ``POST /.well-known/meshnode/challenge``: sign a neighbour's nonce + timestamp + target
  with the node's Ed25519 key (:mod:`meshnode.protocol.challenge`).
* ``GET /api/v1/neighbours``, ``POST /api/v1/neighbours/{id}/approve|block`` (admin token).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode import urls
from meshnode.errors import NotFoundError
from meshnode.federation import peering
from meshnode.federation.discovery import DISCOVERY, request_peering
from meshnode.federation.neighbour_verifier import CHALLENGE_PATH, WELL_KNOWN_PATH
from meshnode.federation.peering import PeerStatus
from meshnode.protocol.activities import origin_of
from meshnode.protocol.challenge import answer_challenge, parse_challenge
from meshnode.protocol.discovery import PROTOCOL_VERSION
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.multikey import fingerprint
from meshnode.protocol.parsing import MAX_SQL_INT, parse_int
from meshnode.services import neighbours
from meshnode.services.context import NodeContext
from meshnode.store.neighbours import NeighbourRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin
from meshnode.web.bodies import read_json

MAX_CHALLENGE_BYTES = 1024


async def node_description(request: web.Request) -> web.Response:
    """``GET /.well-known/meshnode``."""
    ctx = request.app[CONTEXT]
    config = ctx.config
    return web.json_response({
        "type": "meshnode",
        "protocol": PROTOCOL_VERSION,
        "name": config.name,
        "handle": config.handle,
        "actor": urls.community_actor(config.base_url, config.handle),
        "multikey": ctx.identity.multikey,
        "fingerprint": fingerprint(ctx.identity.ed25519_public),
    })


def _own_origins(app: web.Application) -> frozenset[str]:
    runtime = app.get(DISCOVERY)
    base = app[CONTEXT].config.base_url
    return runtime.discovery.own_origins if runtime is not None else frozenset({base})


async def challenge(request: web.Request) -> web.Response:
    """``POST /.well-known/meshnode/challenge``: 200 with the signed answer, 401 if refused."""
    ctx = request.app[CONTEXT]
    parsed = parse_challenge(await read_json(request, MAX_CHALLENGE_BYTES))
    answer = answer_challenge(
        parsed, ctx.identity.ed25519_seed, ctx.clock(), _own_origins(request.app)
    )
    return web.json_response(answer.as_json())


def neighbour_json(row: NeighbourRow, peer: PeerStatus | None = None) -> dict[str, Any]:
    """A neighbour as the admin API shows it, with its federation peering state if any."""
    status = row.status
    # A goodbye (offline) wins over the federation state: the node is gone for now.
    if peer is not None and peer.status in ("peered", "blocked") and status != "offline":
        status = peer.status
    return {
        "id": row.id, "instance": row.instance_name, "name": row.community_name,
        "fingerprint": row.fingerprint, "addresses": list(row.addresses), "port": row.port,
        "address": row.addresses[0] if row.addresses else None, "actor": row.actor_url,
        "status": status, "approved": row.approved, "blocked": row.blocked,
        "last_sync": peer.last_sync if peer else None,
        "first_seen": row.first_seen, "last_seen": row.last_seen,
        "verified_at": row.verified_at, "last_error": row.last_error,
    }


async def _admin(request: web.Request) -> None:
    await api_admin(request, "neighbours are for administrators")


def neighbour_id(request: web.Request) -> int:
    text = request.match_info["neighbour_id"]
    try:
        return parse_int(text, "neighbour_id", low=1, high=MAX_SQL_INT)
    except ValidationError as exc:  # "²" or 20 digits: no such neighbour, not a 500
        raise NotFoundError(f"no neighbour {text[:20]!r}") from exc


async def neighbour_views(ctx: NodeContext) -> list[dict[str, Any]]:
    """Every neighbour with its federation state merged in (the API and the admin page)."""
    rows = await neighbours.list_neighbours(ctx)
    peers = {peer.peer: peer for peer in await peering.list_peers(ctx)}
    return [
        neighbour_json(row, peers.get(origin_of(row.actor_url)) if row.actor_url else None)
        for row in rows
    ]


async def approve_and_peer(ctx: NodeContext, neighbour_id: int) -> NeighbourRow:
    """An admin approves a neighbour: peer now if it is verified, else once it is."""
    row = await neighbours.approve_neighbour(ctx, neighbour_id)
    if row.status == "verified" and row.actor_url is not None:
        await request_peering(ctx, row.actor_url)
        row = await neighbours.get_neighbour(ctx, row.id)
    return row


async def list_neighbours(request: web.Request) -> web.Response:
    """``GET /api/v1/neighbours``."""
    await _admin(request)
    ctx = request.app[CONTEXT]
    items = await neighbour_views(ctx)
    return web.json_response({"policy": ctx.config.discovery_policy, "neighbours": items})


async def approve(request: web.Request) -> web.Response:
    """``POST /api/v1/neighbours/{id}/approve``: peer once verified (now, if it is)."""
    await _admin(request)
    row = await approve_and_peer(request.app[CONTEXT], neighbour_id(request))
    return web.json_response(neighbour_json(row))


async def block(request: web.Request) -> web.Response:
    """``POST /api/v1/neighbours/{id}/block``: never verify or peer with this key."""
    await _admin(request)
    row = await neighbours.block_neighbour(request.app[CONTEXT], neighbour_id(request))
    return web.json_response(neighbour_json(row))


def setup_discovery_routes(app: web.Application) -> None:
    """Register the discovery routes."""
    app.router.add_get(WELL_KNOWN_PATH, node_description)
    app.router.add_post(CHALLENGE_PATH, challenge)
    app.router.add_get("/api/v1/neighbours", list_neighbours)
    app.router.add_post("/api/v1/neighbours/{neighbour_id}/approve", approve)
    app.router.add_post("/api/v1/neighbours/{neighbour_id}/block", block)
