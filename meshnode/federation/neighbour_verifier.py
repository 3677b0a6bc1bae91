"""Verifying a discovered neighbour: does the node at the advertised address hold the key?

One verification, for each advertised address until one succeeds:

1. ``GET http://ADDR:PORT/.well-known/meshnode``: the node's self-description; its Multikey
   must equal the TXT key.
2. ``GET`` the actor URL built from address + port + TXT path (``Accept:
   application/activity+json``): its ``id`` must be that URL and its ``assertionMethod``
   must list the TXT key.
3. ``POST …/.well-known/meshnode/challenge`` with a fresh nonce, our clock reading and the
   origin we contacted; the answer must be signed by the TXT key, echo our challenge and
   fall in the time window (:mod:`meshnode.protocol.challenge`).

Only then is the neighbour ``verified`` and, by policy, handed to ``request_peering``.
A persisted state machine: each :meth:`NeighbourVerifier.step` reads due rows, does the
I/O, writes the outcome (failures back off and end in ``rejected``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import aiosqlite

from meshnode.errors import ConflictError, ServiceError
from meshnode.federation.http import FetchError, UrlGuard
from meshnode.federation.tasks import wait_event
from meshnode.protocol.activities import origin_of
from meshnode.protocol.challenge import (
    new_challenge,
    parse_challenge_response,
    verify_challenge_response,
)
from meshnode.protocol.discovery import AdvertError, actor_url
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.jsonparse import loads_capped
from meshnode.protocol.multikey import ed25519_public_to_multikey
from meshnode.protocol.vocab import ACTIVITY_JSON
from meshnode.services import neighbours
from meshnode.services.context import NodeContext
from meshnode.store.neighbours import NeighbourRow

log = logging.getLogger(__name__)

WELL_KNOWN_PATH = "/.well-known/meshnode"
CHALLENGE_PATH = "/.well-known/meshnode/challenge"
MAX_RESPONSE_BYTES = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=3, connect=2)
BATCH = 4  # neighbours verified concurrently per step
POLL_SECONDS = 1.0
USER_AGENT = "meshnode/0.1 (discovery)"

LOOP_ERRORS = (OSError, aiosqlite.Error, ServiceError, ProtocolError)
RequestPeering = Callable[[NodeContext, str], Awaitable[None]]


class VerificationFailed(Exception):
    """One verification attempt failed; the message is stored as ``last_error``."""


class VerifierHttp:
    """Capped JSON GET/POST over one pooled session (no redirects, short timeouts)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def _read(self, response: aiohttp.ClientResponse) -> Any:
        data = await response.content.read(MAX_RESPONSE_BYTES + 1)
        if len(data) > MAX_RESPONSE_BYTES:
            raise VerificationFailed(f"{response.url} answered more than {MAX_RESPONSE_BYTES} B")
        try:
            return loads_capped(data, max_depth=16)
        except ProtocolError as exc:
            raise VerificationFailed(f"{response.url} answered invalid JSON: {exc}") from exc

    async def get_json(self, url: str, accept: str) -> tuple[int, Any]:
        """GET ``url``; returns (status, parsed body or None when not 200)."""
        try:
            async with self.session.get(
                url, headers={"Accept": accept, "User-Agent": USER_AGENT}, allow_redirects=False
            ) as response:
                if response.status != 200:
                    return response.status, None
                return 200, await self._read(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VerificationFailed(f"GET {url} failed: {exc!r}") from exc

    async def post_json(self, url: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body; anything but 200 is a failure."""
        try:
            async with self.session.post(
                url, data=json.dumps(body), allow_redirects=False,
                headers={"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": USER_AGENT},
            ) as response:
                if response.status != 200:
                    raise VerificationFailed(f"POST {url} answered {response.status}")
                return await self._read(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VerificationFailed(f"POST {url} failed: {exc!r}") from exc


class VerifierSession(contextlib.AbstractAsyncContextManager[VerifierHttp]):
    """One pooled session for the verifier, closed with the app.

    A class, not an ``@asynccontextmanager`` generator, on purpose: an app that is not
    cleaned up before its loop closes has every live async generator closed by
    ``loop.shutdown_asyncgens()`` in no particular order; a generator closed before the
    discovery context that wraps it made that context's exit fail with "generator didn't
    stop after athrow()" (3.11's ``athrow`` on a closed generator returns None).
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> VerifierHttp:
        connector = aiohttp.TCPConnector(limit=BATCH * 2)
        self._session = aiohttp.ClientSession(connector=connector, timeout=TIMEOUT)
        return VerifierHttp(self._session)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()


def open_verifier_http() -> VerifierSession:
    """``async with open_verifier_http() as http``: the verifier's pooled session."""
    return VerifierSession()


def _lists_key(actor: Any, multikey: str) -> bool:
    methods = actor.get("assertionMethod") if isinstance(actor, dict) else None
    if isinstance(methods, dict):
        methods = [methods]
    if not isinstance(methods, list):
        return False
    return any(isinstance(m, dict) and m.get("publicKeyMultibase") == multikey
               for m in methods[:16])


class NeighbourVerifier:
    """Steps discovered neighbours through verification (tests call :meth:`step`)."""

    def __init__(
        self,
        ctx: NodeContext,
        http: VerifierHttp,
        *,
        request_peering: RequestPeering,
        nonce: Callable[[], bytes] = lambda: secrets.token_bytes(32),
    ) -> None:
        self.ctx = ctx
        self.http = http
        self.request_peering = request_peering
        self._nonce = nonce
        self.verified = 0
        self.failed = 0

    async def step(self) -> int:
        """Try every due neighbour once (at most :data:`BATCH`); returns how many."""
        rows = await neighbours.due_for_verification(self.ctx, BATCH)
        await asyncio.gather(*(self.verify_row(row) for row in rows))
        return len(rows)

    async def run_forever(self, wake: asyncio.Event) -> None:
        """Loop :meth:`step`, sleeping until woken by a new advert or the poll interval."""
        while True:
            wake.clear()
            try:
                busy = await self.step()
            except LOOP_ERRORS:  # a database hiccup must not end discovery for good
                log.exception("neighbour verifier step failed")
                busy = 0
            if busy:
                continue
            # Not ``wait_for``: on 3.11 it loses a cancel that races a wake (see tasks.py).
            await wait_event(wake, POLL_SECONDS)

    async def verify_row(self, row: NeighbourRow) -> None:
        """One attempt for ``row``: every address in order until one proves the key."""
        errors: list[str] = []
        for address in row.addresses:
            try:
                url = await self.verify_at(row, address)
            except (VerificationFailed, ProtocolError) as exc:
                errors.append(f"{address}: {exc}")
                continue
            await self._succeeded(row, url)
            return
        self.failed += 1
        await neighbours.record_failure(self.ctx, row.id, "; ".join(errors) or "no address")

    async def _succeeded(self, row: NeighbourRow, url: str) -> None:
        try:
            verified = await neighbours.record_verified(self.ctx, row.id, url)
        except ConflictError:  # blocked or re-announced meanwhile: the next step decides
            return
        self.verified += 1
        if self.ctx.config.discovery_policy == "auto" or verified.approved:
            await self.request_peering(self.ctx, url)

    async def verify_at(self, row: NeighbourRow, address: str) -> str:
        """Verify ``row`` at one address; returns the actor URL, raises on any failure."""
        try:
            url = actor_url(address, row.port, row.actor_path)
        except AdvertError as exc:
            raise VerificationFailed(str(exc)) from exc
        try:  # an advert must not point the node at link-local metadata services
            await UrlGuard(allow_private=True).check(url)
        except FetchError as exc:
            raise VerificationFailed(str(exc)) from exc
        origin = origin_of(url)
        multikey = ed25519_public_to_multikey(row.public_key)
        status, info = await self.http.get_json(origin + WELL_KNOWN_PATH, "application/json")
        if status != 200 or not isinstance(info, dict):
            raise VerificationFailed(f"{WELL_KNOWN_PATH} answered {status}")
        if info.get("multikey") != multikey:
            raise VerificationFailed("the node's key differs from the advertised key")
        status, actor = await self.http.get_json(url, ACTIVITY_JSON)
        if status != 200:
            raise VerificationFailed(f"actor document answered {status}")
        if not isinstance(actor, dict) or actor.get("id") != url:
            raise VerificationFailed("actor document id differs from its advertised URL")
        if not _lists_key(actor, multikey):
            raise VerificationFailed("actor document does not list the advertised key")
        challenge = new_challenge(self._nonce(), self.ctx.clock(), origin)
        answer = await self.http.post_json(origin + CHALLENGE_PATH, challenge.as_json())
        response = parse_challenge_response(answer)
        verify_challenge_response(challenge, response, row.public_key, self.ctx.clock())
        return url
