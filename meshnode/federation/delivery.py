"""The delivery worker: persisted deliveries, one queue per host, retries with backoff.

* Every delivery row exists before its first attempt (written with the change it announces).
* Hosts are served concurrently and each has its own queue, so a dead peer (10 s timeout)
  never delays live ones.
* Per host, up to ``federation.delivery_concurrency`` requests are in flight on keep-alive
  connections (activities about one object stay in order), and a batch's outcomes are
  written in one transaction: issue 17 measured one request at a time and one commit per
  delivery at 5 deliveries/s while the node's API took 300 listings/s (each delivery
  commit waited behind the publishing ones for the write lock).
* Signatures: RFC 9421 ``ed25519`` to meshnode peers; to others draft-cavage ``rsa-sha256``
  first, RFC 9421 ``rsa-v1_5-sha256`` on 401 ("double-knocking"); what worked is remembered
  per host (REFERENCE §2). Retry policy: ``protocol.retry``.
* A meshnode peer that pulls our outbox and asks us (429 / 503) to wait longer than its
  catch-up takes gets our public activities from that catch-up: those deliveries are marked
  ``left`` (``CATCH_UP_HORIZON``, ``store.outbox.leave_to_catch_up``), not kept for the wait.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiosqlite

from meshnode import urls
from meshnode.errors import ServiceError
from meshnode.federation.http import FetchError
from meshnode.federation.state import Federation
from meshnode.federation.sync import SYNC_INTERVAL, SYNC_RETRY
from meshnode.federation.tasks import cancel_and_wait, wait_event
from meshnode.keys import Identity
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.retry import classify_status, next_delay, parse_retry_after
from meshnode.protocol.signing import Scheme, signed_post_headers
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services import members
from meshnode.store import federation as fq
from meshnode.store import outbox as oq
from meshnode.store.db import reads_together

log = logging.getLogger(__name__)
FALLBACK: dict[Scheme, Scheme] = {
    "rfc9421-ed25519": "cavage-rsa",
    "cavage-rsa": "rfc9421-rsa",
    "rfc9421-rsa": "cavage-rsa",
}
LOOP_ERRORS = (ProtocolError, ServiceError, FetchError, sqlite3.Error, OSError)
# With no drain running and no host due, the scheduler reads the queue again when woken,
# when this process commits a write, when the next retry is due, or after this long at most
# (a delivery queued by another process: the CLI). It read the queue every 0.1 s before,
# idle or not: ten reads a second on an idle Pi, and each read's cursor left small objects
# behind the soak's idle sweep (issue 17, docs/benchmarks.md).
IDLE_POLL = 2.0
# Activities about one object that may travel beside those about other objects.
PARALLEL_TYPES = frozenset({"Create", "Update", "Delete"})
# Raised while building or signing one delivery (not by the network): final for that row.
UNSENDABLE = (ProtocolError, ServiceError)
# Answers by which a peer tells us to wait (RFC 9110 §15.6.4, RFC 6585 §4), with a
# Retry-After or not (then the backoff applies).
WAIT_STATUSES = frozenset({429, 503})
# By this long from now a meshnode peer that pulls our outbox has pulled it: its catch-up
# period (at most ``SYNC_INTERVAL``) and, if that pull failed, its retry (``SYNC_RETRY``).
# A public activity the peer told us to hold past this is left to that catch-up
# (``oq.leave_to_catch_up``): the soak's hub kept each peer's whole backlog for the hour a
# 429's Retry-After asked, resent it, and met the peer's quota again (issue 17).
CATCH_UP_HORIZON = SYNC_INTERVAL + SYNC_RETRY


@dataclass(frozen=True)
class Outcome:
    """What one attempt of one delivery came to, before it is written."""

    delivery_id: int
    state: str
    attempts: int
    next_attempt_at: str
    status: int | None
    error: str | None
    scheme: Scheme


@dataclass
class HostBatch:
    """What the lanes of one host's batch share: the scheme to sign with first (updated
    when a fallback works) and the cap on requests in flight."""

    scheme: Scheme
    gate: asyncio.Semaphore


def lanes(rows: Sequence[aiosqlite.Row]) -> list[list[aiosqlite.Row]]:
    """Split a batch into lanes, each in queue order; lanes run concurrently, the rows of
    one lane one after another.

    Create / Update / Delete get a lane per object (a listing's versions never overtake each
    other); every other activity (Follow, Undo, Accept, IOU and deal messages, relays) shares
    one lane, so protocol exchanges keep the order they were queued in, as before.
    """
    grouped: dict[str | None, list[aiosqlite.Row]] = {}
    for row in rows:
        key = row["object_id"] if row["type"] in PARALLEL_TYPES else None
        grouped.setdefault(key, []).append(row)
    return list(grouped.values())


class DeliveryWorker:
    """Sends due deliveries; ``step()`` runs one round over every host with work.

    Per host: a batch of due rows (oldest first) is sent with up to ``per_host`` requests in
    flight on the pooled keep-alive session (one at a time until the host has answered a
    whole batch without a retry), then every outcome of the batch is written in one
    transaction. A crash before that write re-sends the batch after restart: receivers
    drop an activity id they already stored (at least once, never lost).
    """

    def __init__(self, federation: Federation, *, batch: int = 128, per_host: int = 8,
                 jitter: Callable[[], float] = random.random) -> None:
        self.federation = federation
        self.batch = batch
        self.per_host = per_host
        self.jitter = jitter
        self._identities: dict[str, Identity] = {}
        # Hosts whose last batch was answered without a retry: they get ``per_host`` requests
        # in flight; others (new to this process, or timing out, 5xx, 429) get one, so a
        # dozen hosts that never answer cannot hold the whole connection pool.
        self._open: set[str] = set()

    async def step(self) -> int:
        """One round: every host with due deliveries, concurrently; returns attempts made."""
        ctx = self.federation.ctx
        hosts = await oq.due_hosts(ctx.store.reader, format_utc(ctx.clock()))
        counts = await asyncio.gather(*(self.run_host(host) for host in hosts))
        return sum(counts)

    async def run_host(self, host: str) -> int:
        """Attempt one batch of a host's due deliveries and record the outcomes at once."""
        ctx = self.federation.ctx
        rows = await oq.due_for_host(ctx.store.reader, host, format_utc(ctx.clock()), self.batch)
        if not rows:
            return 0
        width = self.per_host if host in self._open else 1
        batch = HostBatch(await self._first_scheme(host), asyncio.Semaphore(width))
        done = await asyncio.gather(*(self._run_lane(host, lane, batch)
                                      for lane in lanes(rows)))
        outcomes = [outcome for lane in done for outcome in lane]
        await self._record(host, outcomes)
        if any(outcome.state == "pending" for outcome in outcomes):
            self._open.discard(host)
        else:
            self._open.add(host)
        return len(rows)

    async def _run_lane(self, host: str, lane: list[aiosqlite.Row],
                        batch: HostBatch) -> list[Outcome]:
        outcomes = []
        for row in lane:
            async with batch.gate:
                try:
                    outcome = await self.attempt(host, row, batch.scheme)
                except UNSENDABLE as exc:
                    outcome = self._unsendable(host, row, batch.scheme, exc)
            if outcome.state == "done":
                batch.scheme = outcome.scheme  # the rest of the batch knocks once
            outcomes.append(outcome)
        return outcomes

    def _unsendable(self, host: str, row: aiosqlite.Row, scheme: Scheme,
                    exc: Exception) -> Outcome:
        """A delivery that cannot be signed or built (its member was deleted, say) fails for
        good, alone: the rest of its batch is still recorded, and it is never re-sent."""
        log.warning("delivery %d to %s cannot be sent: %s", row["id"], host, exc)
        return Outcome(row["id"], "failed", row["attempts"] + 1,
                       format_utc(self.federation.ctx.clock()), None,
                       f"cannot send: {exc}"[:300], scheme)

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

    async def _knock(self, scheme: Scheme, inbox: str, body: bytes, actor: str
                     ) -> tuple[int | None, str | None, str | None, Scheme]:
        identity = await self._identity(actor)
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

    async def attempt(self, host: str, row: aiosqlite.Row, scheme: Scheme) -> Outcome:
        """One attempt of one delivery, first signed with ``scheme``; the outcome to write."""
        status, retry_after, error, scheme = await self._knock(
            scheme, row["inbox"], row["body"].encode("utf-8"), row["actor"])
        now = self.federation.ctx.clock()
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
        if error:  # the raw text goes to the log; pages show a sentence (protocol.reachability)
            log.warning("delivery to %s failed (attempt %d, %s): %s", host, attempts, state, error)
        return Outcome(row["id"], state, attempts, format_utc(next_at), status, error, scheme)

    async def _record(self, host: str, outcomes: list[Outcome]) -> None:
        """Write a batch's outcomes in one transaction (one commit, not one per delivery).

        When the host told us to wait (``WAIT_STATUSES``), its pending deliveries put off
        past ``CATCH_UP_HORIZON`` that its catch-up pulls from our outbox are marked left to
        that catch-up in the same transaction (``oq.leave_to_catch_up``; one log line)."""
        now = self.federation.ctx.clock()
        stamp = format_utc(now)
        delivered = [outcome for outcome in outcomes if outcome.state == "done"]
        told_to_wait = any(outcome.status in WAIT_STATUSES for outcome in outcomes)
        async with self.federation.ctx.store.transaction() as tx:
            await oq.record_attempts(tx, [
                oq.Attempt(o.delivery_id, o.state, o.attempts, o.next_attempt_at, o.status,
                           o.error) for o in outcomes], now=stamp)
            if delivered:
                await oq.set_host_scheme(tx, host, delivered[-1].scheme, stamp)
                await fq.mark_delivered(tx, host, stamp)
            left = await oq.leave_to_catch_up(
                tx, host, self.federation.community,
                beyond=format_utc(now + CATCH_UP_HORIZON), now=stamp) if told_to_wait else 0
        if left:
            log.info("%d deliveries to %s left to its catch-up of our outbox (it asked us to"
                     " wait past %s)", left, host, format_utc(now + CATCH_UP_HORIZON))

    async def run_forever(self, poll: float = 0.1, idle_poll: float = IDLE_POLL) -> None:
        """Background loop: one task per host with due work; woken by events or a poll
        (every ``poll`` seconds while a drain runs; when none runs and no host is due, at
        the next retry's time, at most ``idle_poll`` seconds later)."""
        tasks: dict[str, asyncio.Task[None]] = {}
        event = self.federation.delivery_event
        try:
            await self._schedule(tasks, event, poll, idle_poll)
        finally:
            await cancel_and_wait(tasks.values(), what="delivery")

    def _idle_wait(self, due: str | None, poll: float, idle_poll: float) -> float:
        """Seconds to sleep with no drain running, given the earliest pending retry ``due``:
        until it is due, no less than ``poll``, no more than ``idle_poll``."""
        if due is None:
            return idle_poll
        seconds = (parse_utc(due, field="next_attempt_at")
                   - self.federation.ctx.clock()).total_seconds()
        return min(max(seconds, poll), idle_poll)

    async def _schedule(self, tasks: dict[str, asyncio.Task[None]], event: asyncio.Event,
                        poll: float, idle_poll: float) -> None:
        ctx = self.federation.ctx
        while True:
            event.clear()
            # A host's finished drain is let go (it kept its task, coroutine and context,
            # made during a load, alive until the host's next delivery: issue 17, the soak)
            for host in [host for host, task in tasks.items() if task.done()]:
                del tasks[host]
            now = format_utc(ctx.clock())

            async def due_hosts(db: aiosqlite.Connection, at: str = now) -> list[str]:
                return await oq.due_hosts(db, at)

            try:  # one trip: the idle sweep's statement check sees one read, as before
                hosts, due = await reads_together(ctx.store.reader, due_hosts, oq.next_due_time)
            except LOOP_ERRORS:
                log.exception("delivery scheduler")
                hosts, due = [], None
            for host in hosts:
                if host not in tasks:
                    tasks[host] = asyncio.create_task(self._guarded_drain(host))
            if tasks:
                await wait_event(event, poll)  # not wait_for: it can lose a cancel (tasks.py)
            else:
                await self._sleep_idle(event, due, poll, idle_poll)

    async def _sleep_idle(self, event: asyncio.Event, due: str | None, poll: float,
                          idle_poll: float) -> None:
        """With no drain running: until woken, until this process commits a write (a
        delivery queued without a wake-up is seen within ``poll``: no SQL, the store's
        commit counter), until the earliest retry is due, or ``idle_poll`` at most."""
        store = self.federation.ctx.store
        seen = store.generation
        try:
            seconds = self._idle_wait(due, poll, idle_poll)
        except LOOP_ERRORS:
            log.exception("delivery scheduler")
            seconds = poll
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and store.generation == seen:
            if await wait_event(event, min(poll, max(deadline - loop.time(), 0.0))):
                return

    async def _guarded_drain(self, host: str) -> None:
        try:
            await self.drain(host)
        except LOOP_ERRORS:
            log.exception("delivery to %s", host)
