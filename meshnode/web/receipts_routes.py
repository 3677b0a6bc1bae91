"""Deal receipts and portable reputation: the API (list, export, import) and the page listing
a member's receipts with the verdict of checking each one again."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from meshnode import urls
from meshnode.federation.receipts import import_bundle
from meshnode.federation.state import FEDERATION
from meshnode.services import members, names, reputation
from meshnode.services.reputation import CheckedReceipt
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.bodies import read_json
from meshnode.web.browser import render, require_member


def receipt_json(item: CheckedReceipt) -> dict[str, Any]:
    """A receipt as the API shows it: what it says about its holder, and the verdict."""
    row = item.row
    return {"deal": row.deal, "party": row.party_actor, "other": row.other_actor,
            "community": row.party_node, "other_community": row.other_node,
            "cross_community": row.cross_community, "completed_at": row.completed_at,
            "rating": row.rating, "no_show": row.no_show, "source": row.source,
            "verified": item.verified, "error": item.error, "checked_at": row.checked_at,
            "document": json.loads(row.document)}


async def list_receipts(request: web.Request) -> web.Response:
    """``GET /api/v1/members/{username}/receipts``: counts and receipts, each checked again."""
    await api_member(request)
    ctx = request.app[CONTEXT]
    counts, items = await reputation.receipts_of(ctx, request.match_info["username"])
    return web.json_response({"reputation": counts.to_json(),
                              "items": [receipt_json(item) for item in items]})


async def export_receipts(request: web.Request) -> web.Response:
    """``GET /api/v1/me/receipts/export?for=ACTOR``: a bundle signed by the member and this
    node, for the member's new account ``ACTOR`` on another node."""
    member = await api_member(request)
    bundle = await reputation.export_bundle(request.app[CONTEXT], member,
                                            request.query.get("for"))
    return web.json_response(bundle, headers={
        "Content-Disposition": f'attachment; filename="receipts-{member.username}.json"'})


async def import_receipts(request: web.Request) -> web.Response:
    """``POST /api/v1/me/receipts/import``: verify and keep a bundle exported elsewhere
    (201); 422/409 naming each refused receipt, nothing kept; 413 over 512 KiB."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    data = await read_json(request, reputation.MAX_BUNDLE_BYTES)
    count = await import_bundle(request.app[FEDERATION], member, data)
    counts = await reputation.count_for(ctx, urls.member_actor(ctx.config.base_url,
                                                               member.username))
    return web.json_response({"imported": count, "reputation": counts.to_json()}, status=201)


async def receipts_page(request: web.Request) -> web.Response:
    """``GET /users/{username}/receipts`` (members): the receipts behind a profile's counts,
    each with its verdict."""
    await require_member(request)
    ctx = request.app[CONTEXT]
    person = await members.get_member(ctx, request.match_info["username"])
    counts, items = await reputation.receipts_of(ctx, person.username)
    parties = await names.actor_parties(ctx, [i.row.other_actor for i in items])
    return await render(request, "receipts.html", {
        "person": person, "reputation": counts, "receipts": items, "parties": parties})


def setup_receipt_routes(app: web.Application) -> None:
    """Register the receipts API and page."""
    app.router.add_get("/api/v1/members/{username}/receipts", list_receipts)
    app.router.add_get("/api/v1/me/receipts/export", export_receipts)
    app.router.add_post("/api/v1/me/receipts/import", import_receipts)
    app.router.add_get("/users/{username}/receipts", receipts_page)
