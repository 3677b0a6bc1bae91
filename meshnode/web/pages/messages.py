"""Member-to-member messages about a listing: "I'm interested", inbox, conversations."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import NotFoundError
from meshnode.protocol.errors import ValidationError
from meshnode.services import listings as listing_service
from meshnode.services import messages as message_service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_member


async def interested(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/interested``: send the author a message about the listing."""
    member = await require_member(request)
    form = await read_form(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    if view.row.author_username is None:
        raise NotFoundError("the author of this listing is on another node")
    await message_service.send_message(
        ctx, member, listing_id=view.row.id, recipient_username=view.row.author_username,
        body=field(form, "body", 4000),
    )
    raise redirect(f"/messages/{view.row.id}/{view.row.author_username}")


async def inbox(request: web.Request) -> web.Response:
    """``GET /messages``: conversations, newest first, unread ones marked."""
    member = await require_member(request)
    conversations = await message_service.inbox(request.app[CONTEXT], member)
    return await render(request, "messages.html", {"conversations": conversations})


async def conversation(request: web.Request) -> web.Response:
    """``GET /messages/{listing}/{username}``: one conversation, marked read."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    other, found = await message_service.open_conversation(
        ctx, member, view.row.id, request.match_info["username"]
    )
    return await render(request, "conversation.html", {
        "listing": view.row, "other": other, "messages": found, "error": None,
    })


async def reply(request: web.Request) -> web.StreamResponse:
    """``POST /messages/{listing}/{username}``."""
    member = await require_member(request)
    form = await read_form(request)
    listing_id, username = request.match_info["listing_id"], request.match_info["username"]
    try:
        await message_service.send_message(
            request.app[CONTEXT], member, listing_id=listing_id, recipient_username=username,
            body=field(form, "body", 4000),
        )
    except ValidationError:
        raise redirect(f"/messages/{listing_id}/{username}?error=body") from None
    raise redirect(f"/messages/{listing_id}/{username}")


def setup_message_pages(app: web.Application) -> None:
    """Register the message pages."""
    app.router.add_post("/listings/{listing_id}/interested", interested)
    app.router.add_get("/messages", inbox)
    app.router.add_get("/messages/{listing_id}/{username}", conversation)
    app.router.add_post("/messages/{listing_id}/{username}", reply)
