"""JSON API of messages: ``POST /api/v1/messages`` and ``GET /api/v1/messages[?with=…]``.

``to`` is a local ``username`` or a member of another node as ``name@host[:port]``; the
latter is resolved (WebFinger) because our member asked, and the message travels as a
signed direct ``Note`` (see ``federation/messaging.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from meshnode.errors import NotFoundError
from meshnode.federation import messaging
from meshnode.federation.state import FEDERATION
from meshnode.protocol.errors import ValidationError
from meshnode.services import direct_messages as direct
from meshnode.services import messages as local
from meshnode.services.context import NodeContext
from meshnode.store.direct_messages import DirectMessageRow
from meshnode.store.members import MemberRow
from meshnode.store.messages import MessageRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_member
from meshnode.web.bodies import read_json


def local_json(row: MessageRow) -> dict[str, Any]:
    """A message between two members of this node."""
    return {"id": f"local-{row.id}", "from": row.sender_username, "to": row.recipient_username,
            "listing": row.listing_id, "text": row.body, "created_at": row.created_at,
            "read": row.read_at is not None, "remote": False}


def direct_json(row: DirectMessageRow) -> dict[str, Any]:
    """A message to or from a member of another node."""
    mine, theirs = row.member_username, row.remote_handle
    sender, recipient = (mine, theirs) if row.direction == "out" else (theirs, mine)
    return {"id": f"remote-{row.id}", "from": sender, "to": recipient,
            "listing": row.listing_id, "text": row.body, "created_at": row.created_at,
            "read": row.direction == "out" or row.read_at is not None, "remote": True,
            "object": row.object_id, "in_reply_to": row.in_reply_to,
            "delivery": row.delivery}


async def _payload(request: web.Request, ctx: NodeContext) -> Mapping[str, Any]:
    data = await read_json(request, ctx.config.max_body_bytes)
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object", {"": "expected an object"})
    for name in ("text", "listing"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{name} must be a string", {name: "expected a string"})
    return data


async def post_message(request: web.Request) -> web.Response:
    """``POST /api/v1/messages {to, listing?, text}``: 201 with the message."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    data = await _payload(request, ctx)
    name, host = direct.parse_address(ctx, data.get("to"))
    text, listing = str(data.get("text") or ""), data.get("listing")
    if host is None:
        if listing is None:
            raise ValidationError("listing: required for a member of this community",
                                  {"listing": "required"})
        message_id = await local.send_message(ctx, member, listing_id=listing,
                                              recipient_username=name, body=text)
        body = local_json(await local.sent_message(ctx, member, message_id))
    else:
        direct.check_text(text)  # before any lookup on the network
        recipient = await messaging.resolve_member(request.app[FEDERATION], f"{name}@{host}")
        row = await direct.send_remote(ctx, member, to=recipient, body=text,
                                       listing_id=listing)
        request.app[FEDERATION].wake_delivery()
        body = direct_json(row)
    return web.json_response(body, status=201)


async def _with(ctx: NodeContext, member: MemberRow, value: str) -> list[dict[str, Any]]:
    name, host = direct.parse_address(ctx, value, "with")
    if host is None:
        return [local_json(row) for row in await local.with_member(ctx, member, name)]
    actor = await direct.known_actor(ctx, member, f"{name}@{host}")
    if actor is None:
        raise NotFoundError("no conversation with this member")
    return [direct_json(row) for row in await direct.conversation(ctx, member, actor)]


async def get_messages(request: web.Request) -> web.Response:
    """``GET /api/v1/messages``: conversations; ``?with=username|name@host``: one of them."""
    member, ctx = await api_member(request), request.app[CONTEXT]
    other = request.query.get("with")
    if other is not None:
        return web.json_response({"with": other, "items": await _with(ctx, member, other)})
    items = [{"with": c.other.lstrip("@"), "name": c.name, "title": c.title, "last": c.body,
              "created_at": c.created_at, "unread": c.unread, "remote": c.remote}
             for c in await direct.conversations(ctx, member)]
    return web.json_response({"items": items})


async def _block(request: web.Request, *, blocked: bool) -> web.Response:
    member, ctx = await api_member(request), request.app[CONTEXT]
    data = await _payload(request, ctx)
    name, host = direct.parse_address(ctx, data.get("with"), "with")
    if host is None:
        raise ValidationError("with: a member of another community, as name@host",
                              {"with": "name@host[:port]"})
    handle = f"{name}@{host}"
    actor = await direct.known_actor(ctx, member, handle)
    if actor is None:  # our member asks: resolving is allowed
        actor = (await messaging.resolve_member(request.app[FEDERATION], handle)).actor
    if blocked:
        await direct.block(ctx, member, actor)
    else:
        await direct.unblock(ctx, member, actor)
    return web.json_response({"with": handle, "actor": actor, "blocked": blocked})


async def post_block(request: web.Request) -> web.Response:
    """``POST /api/v1/messages/block {with: name@host}``: no message goes either way."""
    return await _block(request, blocked=True)


async def post_unblock(request: web.Request) -> web.Response:
    """``POST /api/v1/messages/unblock {with: name@host}``: lift the block."""
    return await _block(request, blocked=False)


def setup_message_routes(app: web.Application) -> None:
    """Register the messages API."""
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get("/api/v1/messages", get_messages)
    app.router.add_post("/api/v1/messages/block", post_block)
    app.router.add_post("/api/v1/messages/unblock", post_unblock)
