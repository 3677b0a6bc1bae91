"""The waiting list on a lent item's page: "Rejoindre la file d'attente", my place, leave.

A refused join (the item is available now, already in line, below the lender's minimum)
comes back as the listing page with the translated reason, nothing stored.
"""

from __future__ import annotations

from aiohttp import web

from meshnode.protocol.translatable import message_of
from meshnode.services import queue as queue_service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import read_form, redirect, require_member
from meshnode.web.errors import status_for
from meshnode.web.pages.listings import listing_page
from meshnode.web.pages.refill import REFUSALS


async def join(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/queue``: take the last place in line."""
    member = await require_member(request)
    await read_form(request)
    listing_id = request.match_info["listing_id"]
    try:
        await queue_service.join(request.app[CONTEXT], member, listing_id)
    except REFUSALS as exc:
        return await listing_page(request, notice=message_of(exc), status=status_for(exc))
    raise redirect(f"/listings/{listing_id}#queue")


async def leave(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/queue/leave``: give up my place or my turn."""
    member = await require_member(request)
    await read_form(request)
    listing_id = request.match_info["listing_id"]
    await queue_service.leave(request.app[CONTEXT], member, listing_id)
    raise redirect(f"/listings/{listing_id}#queue")


def setup_queue_pages(app: web.Application) -> None:
    """Register the waiting-list forms."""
    app.router.add_post("/listings/{listing_id}/queue", join)
    app.router.add_post("/listings/{listing_id}/queue/leave", leave)
