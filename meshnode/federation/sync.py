"""Catch-up sync: pull what peers published while we were away, from their outbox.

The cursor is the peer's outbox sequence number (``?after=N``), stable across restarts and
including updates and withdrawals, because the outbox is an append-only log. Runs on
peering (Accept sets ``sync_due``), at start-up and periodically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import aiosqlite

from meshnode.errors import ServiceError
from meshnode.federation.http import FetchError
from meshnode.federation.ingest import apply_effects
from meshnode.federation.processing import EXPECTED, outcome, prepare
from meshnode.federation.state import Federation
from meshnode.protocol.activities import origin_of
from meshnode.protocol.errors import ProtocolError, ValidationError
from meshnode.protocol.parsing import parse_cursor
from meshnode.protocol.timefmt import format_utc
from meshnode.services import network_map
from meshnode.store import federation as fq

log = logging.getLogger(__name__)
SYNC_INTERVAL = timedelta(minutes=30)
MAX_PAGES = 1000
MAX_ITEMS = 500


def _next_cursor(page: Mapping[str, object], origin: str) -> int | None:
    link = page.get("next")
    if not isinstance(link, str) or origin_of(link) != origin:
        return None
    values = parse_qs(urlsplit(link).query).get("after")
    if not values:
        return None
    try:
        return parse_cursor(values[0], "after")
    except ValidationError:  # a peer's malformed link ends the walk, like a missing one
        return None


class SyncWorker:
    """Pulls peers' outboxes; ``step()`` syncs every peer that is due."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    async def step(self) -> int:
        """Sync due peers; returns how many activities were applied."""
        ctx = self.federation.ctx
        stale = format_utc(ctx.clock() - SYNC_INTERVAL)
        total = 0
        for peer in await fq.peers_to_sync(ctx.store.reader, stale):
            try:
                total += await self.sync_peer(peer)
            except (FetchError, ProtocolError, ServiceError) as exc:
                log.warning("sync from %s failed: %s", peer["origin"], exc)
                async with ctx.store.transaction() as tx:
                    await fq.update_peer(tx, peer["origin"], format_utc(ctx.clock()),
                                         last_error=f"sync: {exc}"[:300])
        return total

    async def sync_peer(self, peer: aiosqlite.Row) -> int:
        """Pull one peer's outbox from its cursor to the end."""
        federation = self.federation
        ctx = federation.ctx
        origin = peer["origin"]
        actor = await federation.directory.get_actor(peer["actor_id"])
        if actor.outbox is None:
            raise ValidationError("peer has no outbox")
        cursor = peer["sync_cursor"]
        applied = 0
        for _ in range(MAX_PAGES):
            page = await federation.client.get_json(f"{actor.outbox}?after={cursor}")
            items = page.get("orderedItems") if isinstance(page, Mapping) else None
            if not isinstance(items, list) or not items:
                break
            effects = []
            for item in items[:MAX_ITEMS]:
                if not isinstance(item, Mapping) or not isinstance(item.get("actor"), str) \
                        or origin_of(str(item["actor"])) != origin:
                    effects.append(outcome("ignored: not from this peer"))
                    continue
                try:
                    effects.append(await prepare(federation, item))
                except EXPECTED as exc:
                    effects.append(outcome(f"rejected: {exc}"))
            next_cursor = _next_cursor(page, origin)
            async with ctx.store.transaction() as tx:
                await apply_effects(federation, tx, effects)  # a page's listings together
                if next_cursor is not None and next_cursor > cursor:
                    await fq.update_peer(tx, origin, format_utc(ctx.clock()),
                                         sync_cursor=next_cursor)
            applied += len(effects)
            if next_cursor is None or next_cursor <= cursor:
                break
            cursor = next_cursor
        async with ctx.store.transaction() as tx:
            await fq.update_peer(tx, origin, format_utc(ctx.clock()), sync_due=0,
                                 last_sync_at=format_utc(ctx.clock()), last_error=None)
        federation.wake_delivery()
        await self._read_following(origin, peer["actor_id"])
        return applied

    async def _read_following(self, origin: str, actor_id: str) -> None:
        """Who the peer peers with, for the network map (its public ``following``). A
        failure is logged and keeps what was read last time: the catch-up itself succeeded."""
        try:
            page = await self.federation.client.get_json(f"{actor_id}/following?page=1")
        except FetchError as exc:
            log.info("following of %s not read: %s", origin, exc)
            return
        items = page.get("orderedItems") if isinstance(page, Mapping) else None
        if isinstance(items, list):
            await network_map.record_peer_links(self.federation.ctx, origin, items)
