"""Direct messages across nodes: resolve a recipient for our member, verify what arrives.

A ``name@host[:port]`` is resolved through WebFinger only when one of our members asks to
write to it, never because a remote document names it, and always through the guarded
client (https://www.rfc-editor.org/rfc/rfc7033#section-4). An incoming Note is checked
(addressing, size, author) before its author's proof is verified with a key the author's
actor document lists; only then is it stored for its recipient.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiosqlite

from meshnode.errors import NotFoundError
from meshnode.federation.http import FetchError
from meshnode.federation.keycheck import verify_actor_proof
from meshnode.federation.state import Federation
from meshnode.protocol.activities import RemoteActor, check_url, jrd_self_link, parse_acct
from meshnode.protocol.direct_messages import member_handle, parse_direct_note
from meshnode.protocol.errors import ProtocolError, ValidationError
from meshnode.protocol.translatable import Text
from meshnode.services import direct_messages as service
from meshnode.services.direct_messages import RemoteMember

Effect = Callable[[aiosqlite.Connection], Awaitable[str]]


def handle_of(actor: RemoteActor) -> str:
    """``name@host[:port]`` of a remote actor."""
    return member_handle(actor.username, actor.id)


async def resolve_member(federation: Federation, handle: str) -> RemoteMember:
    """The member of another node behind ``name@host[:port]`` (WebFinger, then its actor)."""
    try:
        name, host = parse_acct(handle)
    except ProtocolError as exc:
        raise ValidationError(Text("expected name@host"), {"to": "name@host[:port]"}) from exc
    resource = quote(f"acct:{name}@{host}")
    schemes = ("http", "https") if host.startswith(("127.", "localhost", "[::1]")) else (
        "https", "http")
    last: Exception | None = None
    for scheme in schemes:
        try:
            jrd = await federation.client.get_json(
                f"{scheme}://{host}/.well-known/webfinger?resource={resource}",
                accept="application/jrd+json, application/json")
            actor = await federation.directory.fetch_actor(check_url(jrd_self_link(jrd), "actor"))
            break
        except (FetchError, ProtocolError) as exc:
            last = exc
    else:
        raise NotFoundError(Text("cannot find %(handle)s: %(reason)s", handle=handle,
                                 reason=str(last)[:200]))
    return _member_of(actor)


def _member_of(actor: RemoteActor) -> RemoteMember:
    if actor.type != "Person":
        raise ValidationError(Text("only a person can receive messages"), {"to": "a member"})
    return RemoteMember(actor=actor.id, handle=handle_of(actor), inbox=actor.inbox)


async def member_by_actor(federation: Federation, actor_id: str) -> RemoteMember:
    """A remote member from its actor id (cached document, else fetched)."""
    return _member_of(await federation.directory.get_actor(actor_id))


async def prepare_direct_note(federation: Federation, act: Mapping[str, Any]) -> Effect:
    """Check and verify an incoming direct Note; the effect stores it for its recipient."""
    note = parse_direct_note(act)
    ctx = federation.ctx
    if service.local_username(ctx, note.recipient) is None:
        raise ValidationError("the Note is not addressed to one of our members")
    await verify_actor_proof(federation.directory, act["object"], note.author)
    sender = await federation.directory.get_actor(note.author)
    if sender.type != "Person":
        raise ValidationError("direct messages come from a Person")
    handle = handle_of(sender)

    async def effect(tx: aiosqlite.Connection) -> str:
        return await service.receive_remote(ctx, tx, note, handle)

    return effect
