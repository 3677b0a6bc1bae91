"""The delivery worker: persisted deliveries, one queue per host, retries with backoff.

* Every delivery row exists before its first attempt (written with the change it announces).
* Hosts are served concurrently and each has its own queue, so a dead peer (10 s timeout)
  never delays live ones.
* Signatures: RFC 9421 ``ed25519`` to meshnode peers; to others draft-cavage ``rsa-sha256``
  first, RFC 9421 ``rsa-v1_5-sha256`` on 401 ("double-knocking"); what worked is remembered
  per host (REFERENCE §2). Retry policy: ``protocol.retry``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Callable
from datetime import timedelta

import aiosqlite

from meshnode import urls
from meshnode.errors import ServiceError
from meshnode.federation.http import FetchError
from meshnode.federation.state import Federation
from meshnode.federation.tasks import cancel_and_wait, wait_event
from meshnode.keys import Identity
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.retry import classify_status, next_delay, parse_retry_after
from meshnode.protocol.signing import Scheme, signed_post_headers
from meshnode.protocol.timefmt import format_utc
from meshnode.services import members
from meshnode.store import federation as fq
from meshnode.store import outbox as oq

log = logging.getLogger(__name__)
FALLBACK: dict[Scheme, Scheme] = {
    "rfc9421-ed25519": "cavage-rsa",
    "cavage-rsa": "rfc9421-rsa",
    "rfc9421-rsa": "cavage-rsa",
}
LOOP_ERRORS = (ProtocolError, ServiceError, FetchError, sqlite3.Error, OSError)


class DeliveryWorker:
    """Sends due deliveries; ``step()`` runs one round over every host with work."""

    def __init__(self, federation: Federation, *, batch: int = 50,
                 jitter: Callable[[], float] = random.random) -> None:
        self.federation = federation
        self.batch = batch
        self.jitter = jitter
        self._identities: dict[str, Identity] = {}

    async def step(self) -> int:
        """One round: every host with due deliveries, concurrently; returns attempts made."""
        ctx = self.federation.ctx
        hosts = await oq.due_hosts(ctx.store.reader, format_utc(ctx.clock()))
        counts = await asyncio.gather(*(self.run_host(host) for host in hosts))
        return sum(counts)

    async def run_host(self, host: str) -> int:
        """Attempt one batch of a host's due deliveries, oldest first."""
        ctx = self.federation.ctx
        rows = await oq.due_for_host(ctx.store.reader, host, format_utc(ctx.clock()), self.batch)
        for row in rows:
            await self.attempt(host, row)
        return len(rows)

    async def drain(self, host: str) -> None:
        """Keep sending to one host until nothing is due (the per-host background task)."""
        while await self.run_host(host):
            pass

    async def _identity(self, actor: str) -> Identity:
        if actor not in self._identities:
            ctx = self.federation.ctx
            if actor == self.federation.community:
                self._identities[actor] = ctx.identity
            else:
                username = actor.rsplit("/", 1)[-1]
                member = await members.get_member(ctx, username)
                self._identities[actor] = members.member_identity(ctx, member)
        return self._identities[actor]

    async def _first_scheme(self, host: str) -> Scheme:
        reader = self.federation.ctx.store.reader
        remembered = await oq.host_scheme(reader, host)
        if remembered in FALLBACK:
            return remembered
        return "rfc9421-ed25519" if await fq.origin_is_meshnode(reader, host) else "cavage-rsa"

    async def _send(self, scheme: Scheme, inbox: str, body: bytes, actor: str,
                    identity: Identity) -> tuple[int, str | None, str | None]:
        now = int(self.federation.ctx.clock().timestamp())
        if scheme == "rfc9421-ed25519":
            headers = signed_post_headers(scheme, inbox, body, key=identity.signing_key,
                                          key_id=urls.ed25519_key_id(actor), now=now)
        else:
            headers = signed_post_headers(scheme, inbox, body, key=identity.rsa_private_key,
                                          key_id=urls.rsa_key_id(actor), now=now)
        result = await self.federation.client.post(inbox, body, headers)
        return result.status, result.retry_after, result.problem

    async def _knock(self, host: str, inbox: str, body: bytes, actor: str
                     ) -> tuple[int | None, str | None, str | None, Scheme]:
        identity = await self._identity(actor)
        scheme = await self._first_scheme(host)
        status: int | None = None
        retry_after: str | None = None
        problem: str | None = None
        for candidate in (scheme, FALLBACK[scheme]):
            scheme = candidate
            try:
                status, retry_after, problem = await self._send(candidate, inbox, body, actor,
                                                                identity)
            except FetchError as exc:
                return None, None, str(exc)[:300], scheme
            if status != 401:
                break
        if status and status < 400:
            return status, retry_after, None, scheme
        return status, retry_after, f"HTTP {status}" + (f" {problem}" if problem else ""), scheme

    async def attempt(self, host: str, row: aiosqlite.Row) -> None:
        """One attempt of one delivery, its outcome written at once."""
        ctx = self.federation.ctx
        status, retry_after, error, scheme = await self._knock(
            host, row["inbox"], row["body"].encode("utf-8"), row["actor"])
        now = ctx.clock()
        attempts = row["attempts"] + 1
        verdict = classify_status(status)
        next_at, state = now, "failed"
        if verdict == "done":
            state = "done"
        elif verdict == "retry":
            wait = parse_retry_after(retry_after, now=int(now.timestamp()))
            delay = next_delay(attempts, status=status, retry_after=wait, jitter=self.jitter())
            if delay is not None:
                state, next_at = "pending", now + timedelta(seconds=delay)
        stamp = format_utc(now)
        if error:  # the raw text goes to the log; pages show a sentence (protocol.reachability)
            log.warning("delivery to %s failed (attempt %d, %s): %s", host, attempts, state, error)
        async with ctx.store.transaction() as tx:
            await oq.record_attempt(tx, row["id"], state=state, attempts=attempts,
                                    next_attempt_at=format_utc(next_at), status=status,
                                    error=error, now=stamp)
            if state == "done":
                await oq.set_host_scheme(tx, host, scheme, stamp)
                await fq.mark_delivered(tx, host, stamp)

    async def run_forever(self, poll: float = 0.1) -> None:
        """Background loop: one task per host with due work; woken by events or a poll."""
        tasks: dict[str, asyncio.Task[None]] = {}
        event = self.federation.delivery_event
        try:
            await self._schedule(tasks, event, poll)
        finally:
            await cancel_and_wait(tasks.values(), what="delivery")

    async def _schedule(self, tasks: dict[str, asyncio.Task[None]], event: asyncio.Event,
                        poll: float) -> None:
        ctx = self.federation.ctx
        while True:
            event.clear()
            try:
                hosts = await oq.due_hosts(ctx.store.reader, format_utc(ctx.clock()))
            except LOOP_ERRORS:
                log.exception("delivery scheduler")
                hosts = []
            for host in hosts:
                if host not in tasks or tasks[host].done():
                    tasks[host] = asyncio.create_task(self._guarded_drain(host))
            await wait_event(event, poll)  # not wait_for: it can lose a cancel (tasks.py)

    async def _guarded_drain(self, host: str) -> None:
        try:
            await self.drain(host)
        except LOOP_ERRORS:
            log.exception("delivery to %s", host)
