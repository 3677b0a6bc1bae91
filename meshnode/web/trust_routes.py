"""Re-verifying a listing's signature on demand: from its page and through the API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import CommunityUnreachableError, NotFoundError
from meshnode.federation.names import reverify_listing
from meshnode.federation.state import FEDERATION
from meshnode.protocol.translatable import message_of
from meshnode.services import listings as listing_service
from meshnode.services import trust
from meshnode.store.listings import ListingRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.browser import read_form, redirect, require_member
from meshnode.web.pages.listings import listing_page


async def _visible(request: web.Request, *, admin: bool) -> ListingRow:
    view = await listing_service.get_listing(request.app[CONTEXT],
                                             request.match_info["listing_id"])
    if view.row.hidden and not admin:
        raise NotFoundError("this listing is not available")
    return view.row


async def verify_api(request: web.Request) -> web.Response:
    """``POST /api/v1/listings/{id}/verify``: check the stored version again, now.

    200 with ``{"signature": {...}}`` (the new verdict); 503 ``community_unreachable`` when the
    author's community cannot be reached (the earlier check is kept).
    """
    member = await api_member(request)
    row = await _visible(request, admin=member.is_admin)
    await reverify_listing(request.app[FEDERATION], row)
    verdict = await trust.signature_verdict(request.app[CONTEXT], row)
    body: dict[str, Any] = {"id": row.id, "signature": verdict.to_json()}
    return web.json_response(body)


async def verify_page(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/verify`` (form, CSRF): check again, then back to the listing."""
    member = await require_member(request)
    await read_form(request)
    row = await _visible(request, admin=member.is_admin)
    try:
        await reverify_listing(request.app[FEDERATION], row)
    except CommunityUnreachableError as exc:
        return await listing_page(request, notice=message_of(exc), status=503)
    raise redirect(f"/listings/{row.id}#signature")


def setup_trust_routes(app: web.Application) -> None:
    """Register the re-verification routes."""
    app.router.add_post("/api/v1/listings/{listing_id}/verify", verify_api)
    app.router.add_post("/listings/{listing_id}/verify", verify_page)
