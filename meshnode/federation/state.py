"""The federation runtime shared by handlers and workers (one per app)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meshnode import urls
from meshnode.federation.directory import ActorDirectory
from meshnode.federation.http import FederationClient
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq

# Activities stored but not yet processed, beyond which the inbox answers 503 + Retry-After
# (a flood of valid activities must not fill the SD card; senders retry later).
INBOX_BACKLOG_MAX = 20_000
# The intake counts as busy when this many activities arrived while the worker processed
# its last batch.
INTAKE_BUSY = 16


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

    async def store(self, **row: Any) -> None:
        """Durably store one authenticated activity (duplicates are ignored)."""
        self._arrivals += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
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


class BlockedOrigins:
    """The set of blocked origins, asked on every inbox request without a query each time.

    Reloaded when this process committed anything since the last load (so a block made here
    applies to the very next request) and at least every ``max_age`` seconds (a block made by
    ``meshnode peer block`` in another process applies within that). Processing re-checks
    inside its transaction, so nothing from a blocked node is ever stored either way.
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
        if store.generation != self._generation or now - self._loaded_at > self.max_age:
            generation = store.generation
            self._origins = await fq.blocked_origins(store.reader)
            self._generation, self._loaded_at = generation, now
        return origin in self._origins


@dataclass
class Federation:
    """Context, pooled client and actor directory, plus wake-up events for the workers."""

    ctx: NodeContext
    client: FederationClient
    directory: ActorDirectory
    writer: InboxWriter
    blocked: BlockedOrigins
    inbox_event: asyncio.Event = field(default_factory=asyncio.Event)
    delivery_event: asyncio.Event = field(default_factory=asyncio.Event)
    peering_event: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when a deal message may have made a cross-node payment due (the deal worker pays).
    deals_event: asyncio.Event = field(default_factory=asyncio.Event)
    deals_touched: bool = False  # set inside an inbox transaction, acted on after commit
    # Cross-node payments an API request is waiting on (transfer id → event).
    iou_waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    @property
    def community(self) -> str:
        """Our Group actor id."""
        return urls.community_actor(self.ctx.config.base_url, self.ctx.config.handle)

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
