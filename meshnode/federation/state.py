"""The federation runtime shared by handlers and workers (one per app)."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from meshnode import urls
from meshnode.federation.directory import ActorDirectory
from meshnode.federation.http import FederationClient
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq


class InboxWriter:
    """Group commit: concurrent inbox requests share one transaction (one fsync).

    Each request still waits until its own row is committed before answering 202.
    """

    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def store(self, **row: Any) -> None:
        """Durably store one authenticated activity (duplicates are ignored)."""
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
                    for row, _ in batch:
                        await fq.insert_inbox(tx, **row)
            except sqlite3.Error as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for _, future in batch:
                future.set_result(None)


@dataclass
class Federation:
    """Context, pooled client and actor directory, plus wake-up events for the workers."""

    ctx: NodeContext
    client: FederationClient
    directory: ActorDirectory
    writer: InboxWriter
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


FEDERATION = web.AppKey("federation", Federation)
