"""The inbox: type and size caps → capped JSON parse → who may post what (``inbox_policy``)
→ signature shape → per-origin quota → HTTP signature (key fetch) → key owner = actor →
store → 202. Nothing the policy refuses ever makes the node fetch a key.

Processing happens later (``processing.InboxWorker``); storing is idempotent by activity id,
because peers may deliver the same activity twice (Fedify's double-knocking, retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite
from aiohttp import web

from meshnode.errors import (
    BusyError,
    PermissionDeniedError,
    RateLimitedError,
    UnsupportedMediaError,
)
from meshnode.federation.bodies import read_capped
from meshnode.federation.directory import ActorDirectory, ActorKey, FetchBudget
from meshnode.federation.keycheck import verify_or_refetch
from meshnode.federation.state import FEDERATION, Federation
from meshnode.protocol.activities import id_and_origin, origin_of, url_and_origin
from meshnode.protocol.errors import (
    ClockSkewError,
    DigestMismatchError,
    SignatureError,
    SignatureExpiredError,
    ValidationError,
)
from meshnode.protocol.httpsig import (
    ParsedSignature,
    SignatureVerdict,
    check_replay_window,
    parse_signature,
    verify_parsed,
)
from meshnode.protocol.inbox_policy import (
    Quota,
    Sender,
    decide,
    is_listing_content,
)
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.ldread import Reading, UnknownContextError, read_document
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.store import federation as fq

INBOX_MAX_BYTES = 256 * 1024
INBOX_MAX_DEPTH = 32
INBOX_RETRY_AFTER = 30  # seconds, sent with 503 when the backlog is full
ACTIVITY_TYPES = ("application/activity+json", "application/ld+json")
# Our side of a peering that makes an origin a peer: we follow it or are about to.
PEER_STATES = ("resolving", "following", "peered")
# Failures a fresh copy of the key cannot fix: no refetch for these.
_FINAL_SIGNATURE_ERRORS = (ClockSkewError, DigestMismatchError, SignatureExpiredError)


@dataclass(frozen=True)
class ActivityHead:
    """The fields of an activity checked before it is stored, and the origins of its id and
    of its actor (each URL's origin read once: the door compares them several times)."""

    id: str
    type: str
    actor: str
    origin: str  # the actor's: whose quota, block and peering apply
    id_origin: str


def activity_head(activity: object) -> ActivityHead:
    """Check an activity's shape: an object with an id, a type and an actor."""
    if not isinstance(activity, Mapping):
        raise ValidationError("an activity must be a JSON object")
    activity_type = activity.get("type")
    if not isinstance(activity_type, str) or not 0 < len(activity_type) <= 40:
        raise ValidationError("activity has no type")
    activity_id, id_origin = url_and_origin(activity.get("id"), "id")
    actor, origin = id_and_origin(activity.get("actor"), "actor")
    return ActivityHead(id=activity_id, type=activity_type, actor=actor, origin=origin,
                        id_origin=id_origin)


async def authenticate(
    directory: ActorDirectory, parsed: ParsedSignature, body: bytes | None,
    now: datetime, budget: FetchBudget | None = None,
) -> tuple[ActorKey, SignatureVerdict]:
    """Verify a parsed HTTP signature; the cached key is re-fetched once on failure (at most
    once a minute per key: ``ActorDirectory.key``)."""
    return await verify_or_refetch(
        await directory.key(parsed.key_id, budget=budget),
        lambda: directory.key(parsed.key_id, refresh=True, budget=budget),
        lambda key: verify_parsed(parsed, key.public_key, now=now, body=body),
        retry_on=SignatureError, final=_FINAL_SIGNATURE_ERRORS)


def check_content_type(request: web.Request) -> None:
    """Only ActivityPub / JSON-LD bodies (REFERENCE §1: peers POST ``activity+json``)."""
    if request.content_type not in ACTIVITY_TYPES:
        raise UnsupportedMediaError(Text(
            "the inbox accepts %(types)s, not %(got)s", types=" or ".join(ACTIVITY_TYPES),
            got=request.content_type[:80] or "no Content-Type"))


async def sender_facts(federation: Federation, origin: str) -> Sender:
    """What the policy needs to know about the sending origin (one indexed read)."""
    return await read_sender(federation.ctx.store.reader, origin)


async def read_sender(reader: aiosqlite.Connection, origin: str) -> Sender:
    """``sender_facts`` from a database connection (``SenderFacts`` keeps them a while)."""
    row = await fq.get_peer(reader, origin)
    if row is None or row["blocked"]:
        return Sender(is_peer=False)
    return Sender(is_peer=row["out_state"] in PEER_STATES, our_follow_id=row["out_follow_id"])


def admit(federation: Federation, activity: Mapping[str, Any], sender: Sender) -> None:
    """Refuse (403) what the inbox policy refuses, before any key is fetched."""
    verdict = decide(activity, here=federation.here, sender=sender)
    if not verdict.admit:
        raise PermissionDeniedError(verdict.message)


def read_activity(activity: object) -> Reading:
    """The activity in our compact names (``protocol.ldread``); 422 for a hostile context,
    and for a listing that names a context URL we do not know (its meaning would depend on
    terms we cannot see: we never fetch contexts)."""
    if not isinstance(activity, Mapping):
        raise ValidationError("an activity must be a JSON object")
    reading = read_document(activity)
    if reading.unknown_contexts and is_listing_content(reading.document):
        raise UnknownContextError(reading.unknown_contexts[0])
    return reading


async def check_quota(federation: Federation, origin: str, size: int, *, is_peer: bool,
                      now: datetime, take: bool = False) -> None:
    """429 with Retry-After once ``origin`` used its hourly rows or bytes; with ``take``,
    the activity is counted in the same step when it fits (``InboxQuota.take``)."""
    limits = federation.ctx.config.inbox
    quota = (Quota(limits.peer_rows_per_hour, limits.peer_bytes_per_hour) if is_peer
             else Quota(limits.stranger_rows_per_hour, limits.stranger_bytes_per_hour))
    step = federation.quota.take if take else federation.quota.retry_after
    retry_after = await step(origin, now, size, quota)
    if retry_after is not None:
        raise RateLimitedError("your origin has used its inbox quota for this hour",
                               retry_after=retry_after)


def signature_of(request: web.Request, url: str, head: ActivityHead) -> ParsedSignature:
    """Parse the request's signature and check what needs no key: the activity id on its
    actor's origin, a replay window, and a key on the actor's own origin (so the node
    never fetches a key from elsewhere)."""
    if head.id_origin != head.origin:
        raise SignatureError("the activity id is not on its actor's origin")
    parsed = parse_signature(request.method, url, list(request.headers.items()))
    check_replay_window(parsed)
    try:
        on_origin = origin_of(parsed.key_id) == head.origin
    except ValidationError:
        on_origin = False
    if not on_origin:
        raise SignatureError("the signing key is not on the activity's actor's origin")
    return parsed


async def receive(request: web.Request) -> web.Response:
    """``POST /inbox`` and the per-actor inboxes."""
    federation = request.app[FEDERATION]
    ctx = federation.ctx
    check_content_type(request)
    if federation.writer.full():
        raise BusyError("this node's inbox is full; retry later", retry_after=INBOX_RETRY_AFTER)
    body = await read_capped(request, INBOX_MAX_BYTES)
    activity = read_activity(loads_capped(body, max_depth=INBOX_MAX_DEPTH)).document
    head = activity_head(activity)
    origin = head.origin
    if await federation.blocked.contains(origin):
        raise PermissionDeniedError("this node does not federate with yours")
    sender = await federation.senders.get(origin)
    admit(federation, activity, sender)
    url = ctx.config.base_url + request.path_qs
    parsed = signature_of(request, url, head)
    now = ctx.clock()
    await check_quota(federation, origin, len(body), is_peer=sender.is_peer, now=now)
    budget = federation.budget if sender.is_peer else federation.stranger_budget
    key, _ = await authenticate(federation.directory, parsed, body, now, budget)
    if key.actor_id != head.actor:
        raise SignatureError(f"key {key.actor_id!r} is not the activity's actor {head.actor!r}")
    # Checked again and counted at once: other requests from the origin passed the first
    # check while this one waited for its key.
    await check_quota(federation, origin, len(body), is_peer=sender.is_peer, now=now, take=True)
    await federation.writer.store(activity, activity_id=head.id, actor=head.actor,
                                  activity_type=head.type, body=body.decode("utf-8"),
                                  received_at=format_utc(now), origin=origin, size=len(body))
    federation.wake_inbox()
    return web.Response(status=202)
