"""The federation runtime shared by handlers and workers (one per app)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from meshnode import urls
from meshnode.federation.directory import ActorDirectory
from meshnode.federation.http import FederationClient
from meshnode.services.context import NodeContext


@dataclass
class Federation:
    """Context, pooled client and actor directory, plus wake-up events for the workers."""

    ctx: NodeContext
    client: FederationClient
    directory: ActorDirectory
    inbox_event: asyncio.Event = field(default_factory=asyncio.Event)
    delivery_event: asyncio.Event = field(default_factory=asyncio.Event)
    peering_event: asyncio.Event = field(default_factory=asyncio.Event)

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
