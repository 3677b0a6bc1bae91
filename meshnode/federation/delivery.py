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
* A host that answers 429 / 503 ("wait") is paused: until the time it gave (its
  Retry-After, or the backoff; at most ``protocol.retry.MAX_HOST_PAUSE``), remembered in
  SQLite (``delivery_pauses``), none of its deliveries is sent, not even those queued after
  the answer: they are put off to the pause's end without counting an attempt (issue 17:
  the soak's hub POSTed every new delivery once to a peer that had said "wait an hour" and
  got hundreds of thousands of 429s). The first 2xx from the host (a request already in
  flight) ends the pause. At most ``MAX_PAUSED_HOSTS`` hosts are paused at once.
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
from meshnode.protocol.retry import (
    WAIT_STATUSES,
    classify_status,
    host_pause_seconds,
    next_delay,
    parse_retry_after,
)
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
# At most this many hosts are paused at once (``delivery_pauses``: a row of ~100 bytes each,
# nothing in memory). Hosts are those we deliver to, but followers can be many hosts of one
# hostile party: past this, a new host's 429 only puts off the delivery it answered, as
# before pauses existed.
MAX_PAUSED_HOSTS = 4096
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
    pause_until: str | None = None  # a 429 / 503: send the host nothing before this


@dataclass
class HostBatch:
    """What the lanes of one host's batch share: the scheme to sign with first (updated
    when a fallback works), the cap on requests in flight, and the host's pause as the
    answers come in: set by a 429 / 503 (the lanes then send nothing more), ended by a
    later 2xx (a request that was already in flight)."""

    scheme: Scheme
    gate: asyncio.Semaphore
    pause_until: str | None = None
    pause_status: int = 0
    answered_2xx: bool = False

    def note(self, outcome: Outcome) -> None:
        """Take one answer into account, in the order the answers arrive."""
        if outcome.pause_until is not None and outcome.status is not None:
            self.pause_until = outcome.pause_until
            self.pause_status = outcome.status
        elif outcome.state == "done":
            self.pause_until = None
            self.answered_2xx = True


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
        """Attempt one batch of a host's due deliveries and record the outcomes at once;
        a paused host's due deliveries are put off to its pause's end instead (none sent:
        returns 0)."""
        ctx = self.federation.ctx
        now = format_utc(ctx.clock())

        async def paused_or_due(db: aiosqlite.Connection
                                ) -> tuple[str | None, list[aiosqlite.Row]]:
            until = await oq.host_pause(db, host, now)
            return until, [] if until else await oq.due_for_host(db, host, now, self.batch)

        # one trip; a paused host's rows (and their bodies) are not read
        [(until, rows)] = await reads_together(ctx.store.reader, paused_or_due)
        if until is not None:
            await self._hold(host, until)
            return 0
        if not rows:
            return 0
        width = self.per_host if host in self._open else 1
        batch = HostBatch(await self._first_scheme(host), asyncio.Semaphore(width))
        done = await asyncio.gather(*(self._run_lane(host, lane, batch)
                                      for lane in lanes(rows)))
        outcomes = [outcome for lane in done for outcome in lane]
        await self._record(host, outcomes, batch)
        if any(outcome.state == "pending" for outcome in outcomes):
            self._open.discard(host)
        else:
            self._open.add(host)
        return len(outcomes)  # fewer than the rows read if the host said wait

    async def _run_lane(self, host: str, lane: list[aiosqlite.Row],
                        batch: HostBatch) -> list[Outcome]:
        outcomes = []
        for row in lane:
            async with batch.gate:
                if batch.pause_until is not None:  # the host said wait: the rest waits too
                    break
                try:
                    outcome = await self.attempt(host, row, batch.scheme)
                except UNSENDABLE as exc:
                    outcome = self._unsendable(host, row, batch.scheme, exc)
                batch.note(outcome)  # before another lane takes the gate
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
        next_at, state, pause_until = now, "failed", None
        if verdict == "done":
            state = "done"
        elif verdict == "retry":
            wait = parse_retry_after(retry_after, now=int(now.timestamp()))
            jitter = self.jitter()
            delay = next_delay(attempts, status=status, retry_after=wait, jitter=jitter)
            if delay is not None:
                state, next_at = "pending", now + timedelta(seconds=delay)
            pause = host_pause_seconds(attempts, status=status, retry_after=wait, jitter=jitter)
            if pause is not None:
                pause_until = format_utc(now + timedelta(seconds=pause))
        if error:  # the raw text goes to the log; pages show a sentence (protocol.reachability)
            log.warning("delivery to %s failed (attempt %d, %s): %s", host, attempts, state, error)
        return Outcome(row["id"], state, attempts, format_utc(next_at), status, error, scheme,
                       pause_until)

    async def _record(self, host: str, outcomes: list[Outcome], batch: HostBatch) -> None:
        """Write a batch's outcomes in one transaction (one commit, not one per delivery).

        When the host's last word in the batch was "wait" (``WAIT_STATUSES``), the host is
        paused (``oq.pause_host``) and its pending deliveries due before the pause's end,
        those the batch did not send included, are put off to it (``oq.hold_for_pause``);
        a 2xx after a "wait" ends the pause. Then its pending deliveries put off past
        ``CATCH_UP_HORIZON`` that its catch-up pulls from our outbox are marked left to
        that catch-up (``oq.leave_to_catch_up``; one log line). All in the same transaction."""
        now = self.federation.ctx.clock()
        stamp = format_utc(now)
        delivered = [outcome for outcome in outcomes if outcome.state == "done"]
        told_to_wait = any(outcome.status in WAIT_STATUSES for outcome in outcomes)
        held = 0
        async with self.federation.ctx.store.transaction() as tx:
            await oq.record_attempts(tx, [
                oq.Attempt(o.delivery_id, o.state, o.attempts, o.next_attempt_at, o.status,
                           o.error) for o in outcomes], now=stamp)
            if delivered:
                await oq.set_host_scheme(tx, host, delivered[-1].scheme, stamp)
                await fq.mark_delivered(tx, host, stamp)
            if batch.pause_until is not None and await oq.pause_host(
                    tx, host, until=batch.pause_until, status=batch.pause_status, now=stamp,
                    most=MAX_PAUSED_HOSTS):
                held = await oq.hold_for_pause(tx, host, batch.pause_until)
            elif told_to_wait and batch.answered_2xx:
                await oq.end_host_pause(tx, host, stamp)
            left = await oq.leave_to_catch_up(
                tx, host, self.federation.community,
                beyond=format_utc(now + CATCH_UP_HORIZON), now=stamp) if told_to_wait else 0
        if batch.pause_until is not None:
            log.info("%s answered %d: nothing is sent to it until %s (%d deliveries put off)",
                     host, batch.pause_status, batch.pause_until, held)
        if left:
            log.info("%d deliveries to %s left to its catch-up of our outbox (it asked us to"
                     " wait past %s)", left, host, format_utc(now + CATCH_UP_HORIZON))

    async def _hold(self, host: str, until: str) -> None:
        """Put a paused host's due deliveries off to the pause's end (``until``); those its
        catch-up pulls are left to it if the pause runs past ``CATCH_UP_HORIZON``. No
        attempt is counted (nothing was sent). One transaction."""
        now = self.federation.ctx.clock()
        stamp, beyond = format_utc(now), format_utc(now + CATCH_UP_HORIZON)
        async with self.federation.ctx.store.transaction() as tx:
            await oq.hold_for_pause(tx, host, until)
            left = await oq.leave_to_catch_up(
                tx, host, self.federation.community, beyond=beyond,
                now=stamp) if until > beyond else 0
        if left:
            log.info("%d deliveries to %s left to its catch-up of our outbox (paused until"
                     " %s)", left, host, until)

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
