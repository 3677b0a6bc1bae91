"""The inbox: size cap → capped JSON parse → HTTP signature → key owner = actor → store → 202.

Processing happens later (``processing.InboxWorker``); storing is idempotent by activity id,
because peers may deliver the same activity twice (Fedify's double-knocking, retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from meshnode.errors import BusyError, PermissionDeniedError
from meshnode.federation.bodies import read_capped
from meshnode.federation.directory import ActorDirectory, ActorKey
from meshnode.federation.keycheck import verify_or_refetch
from meshnode.federation.state import FEDERATION
from meshnode.protocol.activities import check_url, id_of, origin_of, same_origin
from meshnode.protocol.errors import (
    ClockSkewError,
    DigestMismatchError,
    SignatureError,
    SignatureExpiredError,
    ValidationError,
)
from meshnode.protocol.httpsig import Headers, SignatureVerdict, parse_signature, verify_parsed
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.timefmt import format_utc

INBOX_MAX_BYTES = 256 * 1024
INBOX_MAX_DEPTH = 32
INBOX_RETRY_AFTER = 30  # seconds, sent with 503 when the backlog is full
# Failures a fresh copy of the key cannot fix: no refetch for these.
_FINAL_SIGNATURE_ERRORS = (ClockSkewError, DigestMismatchError, SignatureExpiredError)


@dataclass(frozen=True)
class ActivityHead:
    """The fields of an activity checked before it is stored."""

    id: str
    type: str
    actor: str


def activity_head(activity: object) -> ActivityHead:
    """Check an activity's shape: an object with an id, a type and an actor."""
    if not isinstance(activity, Mapping):
        raise ValidationError("an activity must be a JSON object")
    activity_type = activity.get("type")
    if not isinstance(activity_type, str) or not 0 < len(activity_type) <= 40:
        raise ValidationError("activity has no type")
    return ActivityHead(id=check_url(activity.get("id"), "id"), type=activity_type,
                        actor=id_of(activity.get("actor"), "actor"))


async def authenticate(
    directory: ActorDirectory, method: str, url: str, headers: Headers, body: bytes | None,
    now: datetime,
) -> tuple[ActorKey, SignatureVerdict]:
    """Verify a request's HTTP signature; the cached key is re-fetched once on failure."""
    parsed = parse_signature(method, url, headers)
    return await verify_or_refetch(
        await directory.key(parsed.key_id), lambda: directory.key(parsed.key_id, refresh=True),
        lambda key: verify_parsed(parsed, key.public_key, now=now, body=body),
        retry_on=SignatureError, final=_FINAL_SIGNATURE_ERRORS)


async def receive(request: web.Request) -> web.Response:
    """``POST /inbox`` and the per-actor inboxes."""
    federation = request.app[FEDERATION]
    ctx = federation.ctx
    if federation.writer.full():
        raise BusyError("this node's inbox is full; retry later", retry_after=INBOX_RETRY_AFTER)
    body = await read_capped(request, INBOX_MAX_BYTES)
    activity = loads_capped(body, max_depth=INBOX_MAX_DEPTH)
    head = activity_head(activity)
    if await federation.blocked.contains(origin_of(head.actor)):
        raise PermissionDeniedError("this node does not federate with yours")
    url = ctx.config.base_url + request.path_qs
    key, _ = await authenticate(federation.directory, request.method, url,
                                list(request.headers.items()), body, ctx.clock())
    if key.actor_id != head.actor:
        raise SignatureError(f"key {key.actor_id!r} is not the activity's actor {head.actor!r}")
    if not same_origin(head.id, head.actor):
        raise SignatureError("the activity id is not on its actor's origin")
    await federation.writer.store(activity_id=head.id, actor=head.actor,
                                  activity_type=head.type, body=body.decode("utf-8"),
                                  received_at=format_utc(ctx.clock()))
    federation.wake_inbox()
    return web.Response(status=202)
