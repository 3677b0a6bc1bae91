"""``Idempotency-Key`` on the JSON API's POSTs: a client that lost an answer can retry safely.

Follows draft-ietf-httpapi-idempotency-key-header
(https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/):

- same key, same request (method, path, body) → the first answer again, with
  ``Idempotent-Replayed: true``; nothing runs twice;
- same key, another request → 422 ``idempotency_key_reused``;
- same key while the first request still runs → 409 ``request_in_progress`` with
  ``Retry-After: 1`` (refused, not queued: a payment may wait on another node for seconds);
- keys belong to the bearer token (its hash), so two members never collide, and are kept
  ``KEEP`` (24 h), then pruned.

The key is marked in the same transaction as the request's first write (``store.db.
COMMIT_HOOK``), so a crash between the commit and the recorded answer cannot free the key:
a retry then gets 409 ``answer_lost`` instead of creating the thing a second time. A
request that fails before writing anything frees its key (a retry runs it again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from meshnode.errors import (
    IdempotencyKeyReusedError,
    OutcomeLostError,
    RequestInFlightError,
    UnsupportedMediaError,
)
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.services import idempotency as q
from meshnode.services.context import NodeContext
from meshnode.store import StorageFullError
from meshnode.web.appkeys import CONTEXT
from meshnode.web.bodies import read_capped, route_body_limit

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEEP = timedelta(hours=24)
PRUNE_EVERY = timedelta(hours=1)
# Visible ASCII only, capped: the key is stored and compared, never interpreted.
KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
REPLAYED_HEADERS = ("Content-Type", "Location")


@dataclass
class IdempotencyState:
    """Per-app: this process's boot id (tells a dead process's claims from live ones), the
    keys whose request is running now, and when keys were last pruned."""

    boot: str = field(default_factory=lambda: secrets.token_hex(8))
    running: set[tuple[str, str]] = field(default_factory=set)
    last_pruned: str = ""


IDEMPOTENCY = web.AppKey("idempotency", IdempotencyState)


def request_hash(method: str, path_qs: str, body: bytes) -> str:
    """SHA-256 over method, path and body: what "the same request" means."""
    digest = hashlib.sha256()
    for part in (method.encode(), path_qs.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def owner_of(request: web.Request) -> str | None:
    """Whose keys these are: the hash of the credentials (None: anonymous, not covered)."""
    credentials = request.headers.get("Authorization", "")
    return hashlib.sha256(credentials.encode()).hexdigest() if credentials else None


def _checked_key(request: web.Request) -> str | None:
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not KEY_RE.fullmatch(raw):
        raise ValidationError("invalid Idempotency-Key",
                              {HEADER: "1 to 255 visible ASCII characters"})
    if request.content_type.startswith("multipart/"):
        raise UnsupportedMediaError("Idempotency-Key is not supported on uploads",
                                    {HEADER: "not on multipart uploads"})
    return raw


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay, refuse or run (and record) a ``POST /api/v1/...`` carrying ``Idempotency-Key``."""
    if request.method != "POST" or not request.path.startswith("/api/v1/"):
        return await handler(request)
    key = _checked_key(request)
    owner = owner_of(request)
    if key is None or owner is None:
        return await handler(request)
    ctx = request.app[CONTEXT]
    state = request.app[IDEMPOTENCY]
    now = ctx.clock()
    body = await read_capped(request, route_body_limit(request, ctx.config.max_body_bytes))
    fingerprint = request_hash(request.method, request.path_qs, body)
    await _prune_now_and_then(ctx, state, now)
    found = await q.claim(ctx.store, owner=owner, key=key, request_hash=fingerprint,
                          boot=state.boot, now=format_utc(now),
                          expired_before=format_utc(now - KEEP))
    if found.row is not None:
        return _answer_from(found.row, fingerprint, running=(owner, key) in state.running)
    state.running.add((owner, key))
    try:
        return await _run_and_record(request, handler, owner, key)
    finally:
        state.running.discard((owner, key))


def _answer_from(row: q.KeyRow, fingerprint: str, *, running: bool) -> web.Response:
    """The stored answer, or the reason there is none to give."""
    if row.request_hash != fingerprint:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used for a different request",
            {HEADER: "already used with another method, path or body"})
    if row.state == "done" and row.status is not None:
        headers = dict(json.loads(row.headers or "{}"))
        headers[REPLAYED] = "true"
        return web.Response(status=row.status, body=row.body or b"", headers=headers)
    if running or row.state == "pending":
        raise RequestInFlightError("a request with this Idempotency-Key is still running")
    raise OutcomeLostError(
        "this request was carried out, but the node stopped before recording its answer:"
        " look the result up instead of retrying", {HEADER: "answer lost"})


async def _run_and_record(
    request: web.Request, handler: Handler, owner: str, key: str
) -> web.StreamResponse:
    """Run the handler with the commit mark set; store its answer, or free the key."""
    store = request.app[CONTEXT].store
    mark = q.CommitMark(owner, key)
    try:
        with q.marking_commits(mark):
            response = await handler(request)
    except BaseException:
        if not mark.committed:
            await q.release(store, owner=owner, key=key)
        raise  # a committed request keeps its key: a retry gets 409 answer_lost
    body = response.body if isinstance(response, web.Response) else None
    if isinstance(body, bytes) and (mark.committed or response.status < 300):
        headers = {name: response.headers[name] for name in REPLAYED_HEADERS
                   if name in response.headers}
        try:
            await q.record_answer(store, owner=owner, key=key, status=response.status,
                                  headers=json.dumps(headers), body=body)
        except StorageFullError:  # the thing exists: say so; a retry gets 409 answer_lost
            log.warning("Idempotency-Key answer not recorded: the disk is full")
    elif not mark.committed:
        await q.release(store, owner=owner, key=key)
    return response


async def _prune_now_and_then(ctx: NodeContext, state: IdempotencyState, now: datetime
                              ) -> None:
    """Delete expired keys, at most once per ``PRUNE_EVERY``."""
    if state.last_pruned and state.last_pruned > format_utc(now - PRUNE_EVERY):
        return
    state.last_pruned = format_utc(now)
    await q.prune(ctx.store, expired_before=format_utc(now - KEEP))
