"""Member-to-member messages about a listing: "I'm interested", inbox, conversations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import ConflictError, NotFoundError, PermissionDeniedError
from meshnode.federation import messaging
from meshnode.federation.state import FEDERATION
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import Text, message_of
from meshnode.services import direct_messages as direct
from meshnode.services import listings as listing_service
from meshnode.services import messages as message_service
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_member

# Shown next to the form; a rate limit goes to the error page (429 with Retry-After).
PAGE_ERRORS = (ValidationError, NotFoundError, ConflictError, PermissionDeniedError)
LOCAL_BY_LISTING = Text("a member of this community: write to them from one of their listings")


async def interested(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/interested``: send the author a message about the listing."""
    member = await require_member(request)
    form = await read_form(request)
    ctx = request.app[CONTEXT]
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    if view.row.author_username is None:  # a listing of another community: a direct Note
        federation = request.app[FEDERATION]
        author = await messaging.member_by_actor(federation, view.row.author_uri)
        await direct.send_remote(ctx, member, to=author, body=field(form, "body", 4000),
                                 listing_id=view.row.id)
        federation.wake_delivery()
        raise redirect(f"/messages/with/{author.handle}")
    await message_service.send_message(
        ctx, member, listing_id=view.row.id, recipient_username=view.row.author_username,
        body=field(form, "body", 4000),
    )
    raise redirect(f"/messages/{view.row.id}/{view.row.author_username}")


async def _inbox_page(request: web.Request, member: MemberRow, *, values: dict[str, str],
                      errors: dict[str, Any], status: int = 200) -> web.Response:
    conversations = await direct.conversations(request.app[CONTEXT], member)
    return await render(request, "messages.html", {
        "conversations": conversations, "values": values, "errors": errors}, status=status)


async def inbox(request: web.Request) -> web.Response:
    """``GET /messages``: conversations, newest first, unread ones marked."""
    member = await require_member(request)
    return await _inbox_page(request, member, values={"to": "", "text": ""}, errors={})


async def write_remote(request: web.Request) -> web.StreamResponse:
    """``POST /messages``: write to a member of another community by ``name@host``."""
    member = await require_member(request)
    form = await read_form(request)
    values = {"to": field(form, "to", 300).strip(), "text": field(form, "text", 4000)}
    ctx, federation = request.app[CONTEXT], request.app[FEDERATION]
    try:
        name, host = direct.parse_address(ctx, values["to"])
        if host is None:
            raise ValidationError(LOCAL_BY_LISTING, {"to": LOCAL_BY_LISTING})
        direct.check_text(values["text"])  # before any lookup on the network
        to = await messaging.resolve_member(federation, f"{name}@{host}")
        await direct.send_remote(ctx, member, to=to, body=values["text"])
    except PAGE_ERRORS as exc:
        errors = exc.fields or {"to": message_of(exc)}
        return await _inbox_page(request, member, values=values, errors=errors, status=422)
    federation.wake_delivery()
    raise redirect(f"/messages/with/{to.handle}")


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


async def _remote_actor(request: web.Request) -> str:
    member = await require_member(request)
    actor = await direct.known_actor(request.app[CONTEXT], member, request.match_info["handle"])
    if actor is None:
        raise NotFoundError("no conversation with this member")
    return actor


async def remote_conversation(request: web.Request) -> web.Response:
    """``GET /messages/with/{name@host}``: a conversation with a member of another node."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    actor = await _remote_actor(request)
    found = await direct.conversation(ctx, member, actor)
    return await render(request, "remote_conversation.html", {
        "handle": request.match_info["handle"], "messages": found,
        "name": await direct.display_name(ctx, actor),
        "blocked": await direct.is_blocked(ctx, member, actor),
        "error": request.query.get("error"),
    })


async def remote_reply(request: web.Request) -> web.StreamResponse:
    """``POST /messages/with/{name@host}``: reply (a direct Note to their node)."""
    member = await require_member(request)
    form = await read_form(request)
    handle = request.match_info["handle"]
    federation = request.app[FEDERATION]
    author = await messaging.member_by_actor(federation, await _remote_actor(request))
    try:
        await direct.send_remote(request.app[CONTEXT], member, to=author,
                                 body=field(form, "body", 4000))
    except ValidationError:
        raise redirect(f"/messages/with/{handle}?error=body") from None
    federation.wake_delivery()
    raise redirect(f"/messages/with/{handle}")


async def remote_block(request: web.Request) -> web.StreamResponse:
    """``POST /messages/with/{name@host}/block`` (``unblock=1`` lifts it)."""
    member = await require_member(request)
    form = await read_form(request)
    actor = await _remote_actor(request)
    if field(form, "unblock", 4) == "1":
        await direct.unblock(request.app[CONTEXT], member, actor)
    else:
        await direct.block(request.app[CONTEXT], member, actor)
    raise redirect(f"/messages/with/{request.match_info['handle']}")


def setup_message_pages(app: web.Application) -> None:
    """Register the message pages."""
    app.router.add_post("/listings/{listing_id}/interested", interested)
    app.router.add_get("/messages", inbox)
    app.router.add_post("/messages", write_remote)
    app.router.add_get("/messages/with/{handle}", remote_conversation)
    app.router.add_post("/messages/with/{handle}", remote_reply)
    app.router.add_post("/messages/with/{handle}/block", remote_block)
    app.router.add_get("/messages/{listing_id}/{username}", conversation)
    app.router.add_post("/messages/{listing_id}/{username}", reply)
