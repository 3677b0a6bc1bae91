"""Shared block lists over HTTP: ``GET /blocklist`` (public, signed) and the admin API
``/api/v1/blocklists`` (subscribe to a peer's list, review its proposals)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.federation import blocklists
from meshnode.federation.state import FEDERATION
from meshnode.protocol.translatable import Text
from meshnode.protocol.vocab import ACTIVITY_JSON
from meshnode.store.blocklists import ProposalRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin
from meshnode.web.bodies import path_id
from meshnode.web.moderation_api import body_of, peer_of


def proposal_json(row: ProposalRow) -> dict[str, Any]:
    """A proposed block as the API shows it."""
    return {"id": row.id, "source": row.source, "target": row.target, "state": row.state,
            "seen_at": row.seen_at, "decided_at": row.decided_at}


async def get_published(request: web.Request) -> web.Response:
    """``GET /blocklist``: the origins this node blocks, signed by the node."""
    document = await blocklists.published(request.app[CONTEXT])
    return web.json_response(document, content_type=ACTIVITY_JSON)


async def get_lists(request: web.Request) -> web.Response:
    """``GET /api/v1/blocklists``: subscriptions and proposals (``state=`` to filter)."""
    admin = await api_admin(request)
    subs, proposals = await blocklists.overview(request.app[CONTEXT], admin,
                                                state=request.query.get("state"))
    return web.json_response({"subscriptions": [dict(s.__dict__) for s in subs],
                              "proposals": [proposal_json(p) for p in proposals]})


async def post_subscribe(request: web.Request) -> web.Response:
    """``POST /api/v1/blocklists {peer, auto_apply}``: follow a peer's list, fetch it now."""
    admin = await api_admin(request)
    body = await body_of(request)
    new = await blocklists.subscribe(request.app[FEDERATION], admin, peer_of(body),
                                     auto_apply=body.get("auto_apply", False))
    return web.json_response({"new_proposals": new}, status=201)


async def post_unsubscribe(request: web.Request) -> web.Response:
    """``POST /api/v1/blocklists/unsubscribe {peer}``."""
    admin = await api_admin(request)
    await blocklists.unsubscribe(request.app[CONTEXT], admin, peer_of(await body_of(request)))
    return web.json_response({"done": "unsubscribed"})


async def post_decision(request: web.Request) -> web.Response:
    """``POST /api/v1/blocklists/proposals/{id} {decision: apply | ignore}``."""
    admin = await api_admin(request)
    body = await body_of(request)
    proposal_id = path_id(request, "proposal_id", Text("no such proposal"))
    row = await blocklists.decide(request.app[CONTEXT], admin, proposal_id,
                                  str(body.get("decision")))
    request.app[FEDERATION].wake_delivery()
    return web.json_response(proposal_json(row))


def setup_blocklist_routes(app: web.Application) -> None:
    """Register the block-list routes."""
    app.router.add_get(blocklists.PATH, get_published)
    app.router.add_get("/api/v1/blocklists", get_lists)
    app.router.add_post("/api/v1/blocklists", post_subscribe)
    app.router.add_post("/api/v1/blocklists/unsubscribe", post_unsubscribe)
    app.router.add_post("/api/v1/blocklists/proposals/{proposal_id}", post_decision)
