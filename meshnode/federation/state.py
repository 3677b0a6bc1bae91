"""The federation runtime shared by handlers and workers (one per app)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import aiosqlite
from aiohttp import web

from meshnode import urls
from meshnode.errors import BusyError
from meshnode.federation.directory import ActorDirectory, FetchBudget, StrangerFetchBudget
from meshnode.federation.http import FederationClient
from meshnode.protocol.activities import origin_of
from meshnode.protocol.inbox_policy import (
    QUOTA_WINDOW_SECONDS,
    Here,
    Quota,
    Sender,
    quota_retry_after,
)
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq

# Activities stored but not yet processed, beyond which the inbox answers 503 + Retry-After
# (a flood of valid activities must not fill the SD card; senders retry later).
INBOX_BACKLOG_MAX = 20_000
# The intake counts as busy when this many activities arrived while the worker processed
# its last batch.
INTAKE_BUSY = 16
# Whole outbox pages built at once (every peer's catch-up in the same minute: the soak's
# minute 28, docs/benchmarks.md) and requests allowed to wait for a turn; beyond, 503 with
# Retry-After (the puller keeps its cursor and tries again after SYNC_RETRY).
OUTBOX_BUILDS = 2
OUTBOX_WAITING = 16
OUTBOX_RETRY_AFTER = 30
# Activities the door read (JSON parsed, our compact names) kept for the worker, so it does
# not parse them again; beyond this many, or this many characters of their bodies (a peer's
# large bodies: up to 256 KiB each, several times that once parsed), the worker parses the
# stored body itself. 4 Mi characters hold the 1,024 readings of ~3 KB listings.
READINGS_MAX = 1024
READINGS_MAX_CHARS = 4 * 1024 * 1024


class InboxWriter:
    """Group commit: concurrent inbox requests share one transaction (one fsync).

    Each request still waits until its own row is committed before answering 202.
    It also keeps the two figures the inbox's flow control needs: the backlog of stored,
    unprocessed activities, and whether activities are arriving in a burst right now.
    """

    def __init__(self, ctx: NodeContext, backlog_max: int = INBOX_BACKLOG_MAX) -> None:
        self.ctx = ctx
        self.backlog_max = backlog_max
        self.backlog = 0  # set from the database at start, then kept up to date
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._arrivals = 0
        # activity id -> (body as stored, the door's reading of it), for ``take_reading``
        self._readings: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._reading_chars = 0  # the kept bodies' lengths, against READINGS_MAX_CHARS

    def full(self) -> bool:
        """True when the backlog is at its cap: refuse new activities for now."""
        return self.backlog + len(self._pending) >= self.backlog_max

    def intake_busy(self) -> bool:
        """True if activities arrived in a burst since the last call (the processing loop
        asks after each batch, and then gives way to the intake)."""
        arrivals, self._arrivals = self._arrivals, 0
        return arrivals >= INTAKE_BUSY

    def processed(self, count: int) -> None:
        """The worker processed ``count`` activities."""
        self.backlog = max(0, self.backlog - count)
        if not self.backlog and not self._pending:
            self.forget_readings()  # what is left was never stored (a replay of a known id)

    def forget_readings(self) -> None:
        """Drop every reading kept for the worker (also the idle sweep's: a reading kept for
        a replay that came after the last batch would stay, a few parsed objects holding one
        of Python's 1 MiB arenas each; the worker parses the stored body it has none for)."""
        self._readings.clear()
        self._reading_chars = 0

    def take_reading(self, activity_id: str, body: str) -> Mapping[str, Any] | None:
        """The door's reading of a stored activity, if it kept one for this very body (a
        replay under the same id may carry another body: only the stored one counts)."""
        kept = self._drop_reading(activity_id)
        return kept[1] if kept is not None and kept[0] == body else None

    def _drop_reading(self, activity_id: str) -> tuple[str, Mapping[str, Any]] | None:
        kept = self._readings.pop(activity_id, None)
        if kept is not None:
            self._reading_chars -= len(kept[0])
        return kept

    async def store(self, reading: Mapping[str, Any] | None = None, **row: Any) -> None:
        """Durably store one authenticated activity (duplicates are ignored); ``row`` holds
        ``activity_id``, ``actor``, ``activity_type``, ``body``, ``received_at``, ``origin``
        (the actor's) and ``size`` (of the body, in bytes). ``reading``, the body as the door
        read it, is kept for the worker (``take_reading``) while fewer than ``READINGS_MAX``
        are, their bodies within ``READINGS_MAX_CHARS``."""
        self._arrivals += 1
        if (reading is not None and len(self._readings) < READINGS_MAX
                and self._reading_chars + len(row["body"]) <= READINGS_MAX_CHARS):
            self._drop_reading(row["activity_id"])  # a replay's reading replaces the first
            self._readings[row["activity_id"]] = (row["body"], reading)
            self._reading_chars += len(row["body"])
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        try:
            await future
        except BaseException:
            self._drop_reading(row["activity_id"])
            raise

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with self.ctx.store.transaction() as tx:
                        added = await fq.insert_inbox_batch(tx, [row for row, _ in batch])
                except sqlite3.Error as exc:
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                self.backlog += added
                for _, future in batch:
                    future.set_result(None)
        finally:
            if self._flusher is asyncio.current_task():  # not kept once done (the soak)
                self._flusher = None


class _Window:
    """One origin's admitted activities of the last hour, oldest first: the time each was
    received (unix seconds) and its size, in two flat arrays rather than a tuple, a float
    and an int per activity (issue 17: the soak). Those three small objects per activity
    lived for an hour, made one by one among a busy minute's garbage, and each kept a 1 MiB
    arena of Python's allocator from being given back after the load; here an activity
    costs 16 bytes in two buffers and no object."""

    def __init__(self, rows: list[tuple[float, int]]) -> None:
        self.times = array("d", (at for at, _ in rows))
        self.sizes = array("q", (size for _, size in rows))
        self.first = 0  # the entries before ``first`` have left the hour
        self.total = sum(self.sizes)

    def __len__(self) -> int:
        return len(self.times) - self.first

    def oldest(self) -> float:
        """When the oldest entry still in the window was received (call only if any)."""
        return self.times[self.first]

    def append(self, at: float, size: int) -> None:
        """Count an activity of ``size`` bytes received at ``at``."""
        self.times.append(at)
        self.sizes.append(size)
        self.total += size

    def drop_until(self, cutoff: float) -> None:
        """Forget the entries received at or before ``cutoff``."""
        times, first = self.times, self.first
        while first < len(times) and times[first] <= cutoff:
            self.total -= self.sizes[first]
            first += 1
        if first and first * 2 >= len(times):  # the arrays' dead half goes (amortised O(1))
            del times[:first]
            del self.sizes[:first]
            first = 0
        self.first = first


class InboxQuota:
    """What each origin got stored during the last hour, for the inbox quota.

    Read from the inbox table the first time an origin is seen (so a restart does not reset
    a quota), then kept in memory and updated as activities are admitted, so the door asks
    the database once per origin rather than once per request. Bounded: the least recently
    seen origins are forgotten (and re-read if they come back).
    """

    def __init__(self, ctx: NodeContext, origins: int = 1024) -> None:
        self.ctx = ctx
        self.origins = origins
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    async def _window(self, origin: str, now: datetime) -> _Window:
        window = self._windows.get(origin)
        if window is None:
            since = now - timedelta(seconds=QUOTA_WINDOW_SECONDS)
            rows = await fq.inbox_window(self.ctx.store.reader, origin, format_utc(since))
            window = self._windows.setdefault(origin, _Window(
                [(parse_utc(at, field="received_at").timestamp(), size) for at, size in rows]))
        self._windows.move_to_end(origin)
        while len(self._windows) > self.origins:
            self._windows.popitem(last=False)
        window.drop_until(now.timestamp() - QUOTA_WINDOW_SECONDS)
        return window

    async def usage(self, origin: str, now: datetime) -> tuple[int, int, float]:
        """Rows, bytes and the age in seconds of the oldest row ``origin`` got stored during
        the last hour (age 0 when none)."""
        return _usage(await self._window(origin, now), now)

    async def retry_after(self, origin: str, now: datetime, size: int, quota: Quota
                          ) -> int | None:
        """Seconds until ``origin`` may get ``size`` more bytes stored within its hourly
        ``quota``, or None when they fit now (nothing is counted: see ``take``)."""
        return _retry_after(await self._window(origin, now), now, size, quota)

    async def take(self, origin: str, now: datetime, size: int, quota: Quota) -> int | None:
        """Count an activity of ``size`` bytes from ``origin`` if its hourly ``quota`` has
        room; else the seconds until it has. Checked and counted with no wait in between, so
        requests in flight at once cannot all pass one check (a check, then an ``await`` for
        the signature's key, then the count let eight concurrent requests through a quota of
        four)."""
        window = await self._window(origin, now)
        wait = _retry_after(window, now, size, quota)
        if wait is None:
            window.append(now.timestamp(), size)
        return wait


def _usage(window: _Window, now: datetime) -> tuple[int, int, float]:
    return len(window), window.total, now.timestamp() - window.oldest() if len(window) else 0.0


def _retry_after(window: _Window, now: datetime, size: int, quota: Quota) -> int | None:
    rows, used, oldest = _usage(window, now)
    return quota_retry_after(used_rows=rows, used_bytes=used, new_bytes=size, quota=quota,
                             oldest_age=oldest)


class BlockedOrigins:
    """The set of blocked origins, asked on every inbox request without a query each time.

    Reloaded when this process changed the peers table since the last load
    (``Store.table_generation``: so a block made here applies to the very next request, and
    the inbox's own group commits do not each cost a read) and at least every ``max_age``
    seconds (a block made by ``meshnode peer block`` in another process applies within that).
    Processing re-checks inside its transaction, so nothing from a blocked node is ever
    stored either way.
    """

    def __init__(self, ctx: NodeContext, max_age: float = 1.0) -> None:
        self.ctx = ctx
        self.max_age = max_age
        self._origins: frozenset[str] = frozenset()
        self._generation = -1
        self._loaded_at = 0.0

    async def contains(self, origin: str) -> bool:
        """True if ``origin`` is blocked."""
        store = self.ctx.store
        now = time.monotonic()
        generation = store.table_generation("peers")
        if generation != self._generation or now - self._loaded_at > self.max_age:
            self._origins = await fq.blocked_origins(store.reader)
            self._generation, self._loaded_at = generation, now
        return origin in self._origins

    def forget(self) -> None:
        """Drop the set (the idle sweep's: read again at the next request)."""
        self._origins, self._generation = frozenset(), -1


class SenderFacts:
    """What the inbox policy knows of each sending origin (``Sender``), kept between requests
    the way ``BlockedOrigins`` keeps its set: dropped whenever this process changed the peers
    table (the only one read) and at least every ``max_age`` seconds. The door asked the
    peers table once per request (a round trip through the database thread, ~10 % of its
    CPU); processing re-reads the facts as they are then, so a peer removed by another
    process is never admitted later. At most ``max_origins`` origins are kept: strangers
    choose their origins."""

    def __init__(self, ctx: NodeContext,
                 load: Callable[[aiosqlite.Connection, str], Awaitable[Sender]],
                 max_age: float = 1.0, max_origins: int = 1024) -> None:
        self.ctx = ctx
        self.load = load
        self.max_age = max_age
        self.max_origins = max_origins
        self._facts: dict[str, asyncio.Future[Sender]] = {}  # read, or being read
        self._generation = -1
        self._loaded_at = 0.0

    async def get(self, origin: str) -> Sender:
        """The facts about ``origin``, read at most ``max_age`` seconds ago and since this
        process last changed the peers table."""
        store = self.ctx.store
        now = time.monotonic()
        generation = store.table_generation("peers")
        if (generation != self._generation or now - self._loaded_at > self.max_age
                or len(self._facts) >= self.max_origins):
            self._facts.clear()
            self._generation, self._loaded_at = generation, now
        facts = self._facts.get(origin)
        if facts is None:  # requests arriving while it is read wait for that one read
            facts = self._facts[origin] = asyncio.ensure_future(self.load(store.reader, origin))
        try:  # shielded: one waiter's cancellation (a peer hung up) is not the others'
            return await asyncio.shield(facts)
        except BaseException:
            if self._facts.get(origin) is facts:
                del self._facts[origin]
            raise

    def __len__(self) -> int:
        """How many origins are kept."""
        return len(self._facts)

    def forget(self) -> None:
        """Drop every origin's facts (the idle sweep's: the last ones read during a load
        would stay until the next activity, a few objects keeping Python's arenas)."""
        self._facts.clear()


class PageGate:
    """At most ``builds`` outbox pages built at once, at most ``waiting_max`` requests queued
    for a turn; another one is refused (``BusyError``: 503 with Retry-After)."""

    def __init__(self, builds: int = OUTBOX_BUILDS, waiting_max: int = OUTBOX_WAITING) -> None:
        self.waiting_max = waiting_max
        self.waiting = 0
        self._slots = asyncio.Semaphore(builds)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the build slots (waiting for it in the bounded queue)."""
        if self._slots.locked() and self.waiting >= self.waiting_max:
            raise BusyError("this node is serving many outbox pages; retry later",
                            retry_after=OUTBOX_RETRY_AFTER)
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


@dataclass
class Federation:
    """Context, pooled client and actor directory, plus wake-up events for the workers."""

    ctx: NodeContext
    client: FederationClient
    directory: ActorDirectory
    writer: InboxWriter
    blocked: BlockedOrigins
    senders: SenderFacts  # the door's view of each sending origin (processing re-reads)
    budget: FetchBudget  # key fetches the inbox may make per peer origin
    stranger_budget: StrangerFetchBudget  # ... per other origin, and for all of them
    quota: InboxQuota  # what each origin got stored during the last hour
    inbox_event: asyncio.Event = field(default_factory=asyncio.Event)
    delivery_event: asyncio.Event = field(default_factory=asyncio.Event)
    peering_event: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a deal message may have made a cross-node payment due (the deal worker pays).
    deals_event: asyncio.Event = field(default_factory=asyncio.Event)
    deals_touched: bool = False  # set inside an inbox transaction, acted on after commit
    # Cross-node payments an API request is waiting on (transfer id → event).
    iou_waiters: dict[str, asyncio.Event] = field(default_factory=dict)
    outbox_gate: PageGate = field(default_factory=PageGate)  # whole outbox pages at once

    @property
    def community(self) -> str:
        """Our Group actor id."""
        return urls.community_actor(self.ctx.config.base_url, self.ctx.config.handle)

    @cached_property
    def here(self) -> Here:
        """This node's origin, Group actor and member prefix, for the inbox policy (built
        once: the configuration does not change while the node runs)."""
        base = self.ctx.config.base_url
        return Here(origin=origin_of(base), community=self.community,
                    member_prefix=urls.member_actor(base, ""))

    def wake_inbox(self) -> None:
        """New activities were stored."""
        self.inbox_event.set()

    def wake_delivery(self) -> None:
        """New deliveries were queued."""
        self.delivery_event.set()


# The node's services (store, config, keys, clock). Defined here, below ``web/``, because the
# federation runtime and discovery read it too; ``web.appkeys`` re-exports it.
CONTEXT = web.AppKey("context", NodeContext)
FEDERATION = web.AppKey("federation", Federation)
