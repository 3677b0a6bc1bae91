"""Catch-up sync: pull what peers published while we were away, from their outbox.

The cursor is the peer's outbox sequence number (``?after=N``), stable across restarts and
including updates and withdrawals, because the outbox is an append-only log. Runs on
peering (Accept sets ``sync_due``), at start-up and periodically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
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
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services import network_map
from meshnode.store import federation as fq
from meshnode.store import listings as listing_store

log = logging.getLogger(__name__)
SYNC_INTERVAL = timedelta(minutes=30)
# A failed pull is tried again after this long, not at every poll (2 s): the simulator saw a
# storm of them while a peer was cut off, and a heal must still converge within one period.
SYNC_RETRY = timedelta(minutes=5)
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


def _stamp(value: object) -> str | None:
    try:
        return format_utc(parse_utc(value, field="stamp"))
    except ValidationError:
        return None


async def _already_have(reader: aiosqlite.Connection, items: list[Any]) -> set[str]:
    """Ids of summary items we need not pull: received by push, or a listing version we
    already hold (a relay's Announce of it, never pushed to us since we had it first)."""
    known = await fq.known_activity_ids(reader, [str(item["id"]) for item in items])
    objects = {str(item["id"]): (item.get("object"), _stamp(item.get("stamp")))
               for item in items if isinstance(item.get("object"), str)}
    held = await listing_store.listings_by_object_ids(
        reader, sorted({str(obj) for obj, _ in objects.values()}))
    for activity_id, (obj, stamp) in objects.items():
        row = held.get(str(obj))
        if row is not None and stamp is not None and (
                row.status == "withdrawn" or stamp <= row.updated_at):
            known.add(activity_id)
    return known


class SyncWorker:
    """Pulls peers' outboxes; ``step()`` syncs every peer that is due."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    async def step(self) -> int:
        """Sync due peers; returns how many activities were applied."""
        ctx = self.federation.ctx
        stale = format_utc(ctx.clock() - SYNC_INTERVAL)
        retry = format_utc(ctx.clock() - SYNC_RETRY)
        total = 0
        for peer in await fq.peers_to_sync(ctx.store.reader, stale, retry):
            try:
                total += await self.sync_peer(peer)
            except (FetchError, ProtocolError, ServiceError) as exc:
                log.warning("sync from %s failed: %s", peer["origin"], exc)
                # A failed pull waits SYNC_RETRY (docs/scale.md); deliveries still retry on
                # their own backoff.
                stamp = format_utc(ctx.clock())
                async with ctx.store.transaction() as tx:
                    await fq.update_peer(tx, peer["origin"], stamp, sync_due=0,
                                         last_sync_attempt_at=stamp,
                                         last_error=f"sync: {exc}"[:300])
        return total

    async def _skip_pushed(self, origin: str, outbox: str, cursor: int) -> int:
        """Move the cursor past activities our inbox already received by push.

        Pulling whole pages after every period downloaded each pushed activity a second
        time (the simulator measured catch-up moving more bytes than the pushes,
        docs/scale.md); the summary pages carry only ids. A peer that ignores
        ``summary=1`` (full items, no ``seq``) ends the skipping: then pages are pulled whole.
        """
        ctx = self.federation.ctx
        for _ in range(MAX_PAGES):
            page = await self.federation.client.get_json(f"{outbox}?after={cursor}&summary=1")
            items = page.get("orderedItems") if isinstance(page, Mapping) else None
            if not isinstance(items, list) or not items:
                break
            pairs: list[tuple[str, int]] = [
                (item["id"], item["seq"]) for item in items[:MAX_ITEMS]
                if isinstance(item, Mapping) and isinstance(item.get("id"), str)
                and type(item.get("seq")) is int and item["seq"] > cursor]
            if len(pairs) != len(items):
                break
            known = await _already_have(ctx.store.reader, items[:MAX_ITEMS])
            skipped = cursor
            for activity_id, seq in pairs:
                if activity_id not in known:
                    break
                skipped = seq
            if skipped > cursor:
                async with ctx.store.transaction() as tx:
                    await fq.update_peer(tx, origin, format_utc(ctx.clock()),
                                         sync_cursor=skipped)
            if skipped == cursor or skipped != pairs[-1][1]:
                return skipped
            cursor = skipped
        return cursor

    async def sync_peer(self, peer: aiosqlite.Row) -> int:
        """Pull one peer's outbox from its cursor to the end."""
        federation = self.federation
        ctx = federation.ctx
        origin = peer["origin"]
        actor = await federation.directory.get_actor(peer["actor_id"])
        if actor.outbox is None:
            raise ValidationError("peer has no outbox")
        cursor = await self._skip_pushed(origin, actor.outbox, peer["sync_cursor"])
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
