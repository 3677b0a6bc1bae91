"""Catch-up sync: pull what peers published while we were away, from their outbox.

The cursor is the peer's outbox sequence number (``?after=N``), stable across restarts and
including updates and withdrawals, because the outbox is an append-only log. Runs on
peering (Accept sets ``sync_due``), at start-up and periodically.
"""

from __future__ import annotations

import hashlib
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
# When a pull is due, peers due within this long are pulled in the same pass: a node's
# pulls then stay together, one wake-up a period rather than one per peer (docs/scale.md).
SYNC_TOGETHER = timedelta(minutes=2)
# The network map's view of a peer's own peers changes rarely: its ``following`` is read at
# most this often (it was a third of every catch-up pass, docs/scale.md), conditionally.
FOLLOWING_INTERVAL = timedelta(hours=6)
# Nodes peered together would all pull in the same minute every period (the 30-minute soak's
# minute 28: 11 nodes at once, docs/benchmarks.md). Each node's period is shorter by up to
# this much, by a fraction fixed by its handle (no state, the same after a restart): the
# pulls of nodes peered in the same minute spread over several minutes.
SYNC_JITTER = timedelta(minutes=6)
MAX_PAGES = 1000
MAX_ITEMS = 500


def sync_interval(handle: str) -> timedelta:
    """This node's catch-up period: ``SYNC_INTERVAL`` less a part of ``SYNC_JITTER`` that
    depends on the community's ``handle`` only (not on its URL: a port picked at random
    would make the simulator's seeded runs differ)."""
    fraction = int.from_bytes(hashlib.sha256(handle.encode()).digest()[:4], "big") / 2**32
    return SYNC_INTERVAL - SYNC_JITTER * fraction


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
        """Sync due peers; returns how many activities were applied. What each pull ends
        with (cursor, time, error) is written for every peer in one transaction."""
        ctx = self.federation.ctx
        total = 0
        ends: list[tuple[str, dict[str, object]]] = []
        for peer in await self._due():
            try:
                applied, values = await self.sync_peer(peer)
            except (FetchError, ProtocolError, ServiceError) as exc:
                log.warning("sync from %s failed: %s", peer["origin"], exc)
                # A failed pull waits SYNC_RETRY (docs/scale.md); deliveries still retry on
                # their own backoff.
                applied, values = 0, {"sync_due": 0, "last_error": f"sync: {exc}"[:300],
                                      "last_sync_attempt_at": format_utc(ctx.clock())}
            total += applied
            ends.append((peer["origin"], values))
        if ends:
            async with ctx.store.transaction() as tx:
                for origin, values in ends:
                    await fq.update_peer(tx, origin, format_utc(ctx.clock()), **values)
        if total:
            self.federation.wake_delivery()  # relays the pulled activities queued
        return total

    async def _due(self) -> list[aiosqlite.Row]:
        """The peers to pull now (not pulled for ``sync_interval``): when one is due, those
        due within ``SYNC_TOGETHER`` come along (one pass, then one wake-up a period,
        instead of several seconds apart)."""
        ctx = self.federation.ctx
        interval = sync_interval(ctx.config.handle)
        stale = format_utc(ctx.clock() - interval)
        retry = format_utc(ctx.clock() - SYNC_RETRY)
        soon = await fq.peers_to_sync(ctx.store.reader,
                                      format_utc(ctx.clock() - interval + SYNC_TOGETHER),
                                      retry)
        if any(peer["sync_due"] or peer["last_sync_at"] is None or peer["last_sync_at"] <= stale
               for peer in soon):
            return soon
        return []

    async def _skip_pushed(self, outbox: str, cursor: int) -> tuple[int, bool]:
        """Move the cursor past activities our inbox already received by push; returns the
        new cursor and whether anything past it remains to be pulled whole.

        Pulling whole pages after every period downloaded each pushed activity a second
        time (the simulator measured catch-up moving more bytes than the pushes,
        docs/scale.md); the summary pages carry only ids. An empty summary page means the
        peer published nothing past the cursor, and a last one (no ``next``) whose items we
        all hold ends the walk too: no page is pulled (an unchanged peer costs this one small
        request). A peer that ignores ``summary=1`` (full items, no ``seq``)
        ends the skipping: then pages are pulled whole.
        """
        for _ in range(MAX_PAGES):
            page = await self.federation.client.get_json(f"{outbox}?after={cursor}&summary=1")
            items = page.get("orderedItems") if isinstance(page, Mapping) else None
            if isinstance(items, list) and not items:
                return cursor, False
            if not isinstance(items, list):
                return cursor, True
            pairs: list[tuple[str, int]] = [
                (item["id"], item["seq"]) for item in items[:MAX_ITEMS]
                if isinstance(item, Mapping) and isinstance(item.get("id"), str)
                and type(item.get("seq")) is int and item["seq"] > cursor]
            if len(pairs) != len(items):
                return cursor, True
            known = await _already_have(self.federation.ctx.store.reader, items[:MAX_ITEMS])
            skipped = cursor
            for activity_id, seq in pairs:
                if activity_id not in known:
                    break
                skipped = seq
            if skipped == cursor or skipped != pairs[-1][1]:
                return skipped, True
            if not page.get("next"):  # a last summary page, all held: nothing to pull
                return skipped, False
            cursor = skipped
        return cursor, True

    async def _pull_pages(self, origin: str, outbox: str, cursor: int) -> tuple[int, int]:
        """Pull whole pages from ``cursor`` to the end; (activities applied, new cursor)."""
        federation = self.federation
        ctx = federation.ctx
        applied = 0
        for _ in range(MAX_PAGES):
            page = await federation.client.get_json(f"{outbox}?after={cursor}")
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
        return applied, cursor

    async def sync_peer(self, peer: aiosqlite.Row) -> tuple[int, dict[str, object]]:
        """Pull one peer's outbox from its cursor to the end: one summary request when the
        peer published nothing new (``_skip_pushed``). Returns the activities applied and
        the peer columns to set once done (``step`` writes them)."""
        federation = self.federation
        origin = peer["origin"]
        outbox = peer["actor_outbox"]  # from the cached actor, as get_actor would read it
        if outbox is None:
            outbox = (await federation.directory.get_actor(peer["actor_id"])).outbox
        if outbox is None:
            raise ValidationError("peer has no outbox")
        cursor, more = await self._skip_pushed(outbox, peer["sync_cursor"])
        applied = 0
        if more:
            applied, cursor = await self._pull_pages(origin, outbox, cursor)
        values: dict[str, object] = {"sync_due": 0, "last_error": None,
                                     "last_sync_at": format_utc(federation.ctx.clock())}
        if cursor > peer["sync_cursor"]:
            values["sync_cursor"] = cursor
        return applied, values | await self._read_following(peer)

    async def _read_following(self, peer: aiosqlite.Row) -> dict[str, object]:
        """Who the peer peers with, for the network map (its public ``following``): read at
        an explicit catch-up (peering, start-up) and otherwise every ``FOLLOWING_INTERVAL``,
        with ``If-None-Match`` (an unchanged list is a bodiless 304 and no write). Returns
        the peer columns to set. A failure is logged and keeps what was read last time: the
        catch-up itself succeeded."""
        ctx = self.federation.ctx
        last = peer["following_read_at"]
        if not peer["sync_due"] and last is not None \
                and last > format_utc(ctx.clock() - FOLLOWING_INTERVAL):
            return {}
        try:
            fetched = await self.federation.client.get_json_if_changed(
                f"{peer['actor_id']}/following?page=1", peer["following_etag"])
        except FetchError as exc:
            log.info("following of %s not read: %s", peer["origin"], exc)
            return {}
        page = fetched.document
        items = page.get("orderedItems") if isinstance(page, Mapping) else None
        if fetched.modified and isinstance(items, list):
            await network_map.record_peer_links(ctx, peer["origin"], items)
        return {"following_read_at": format_utc(ctx.clock()), "following_etag": fetched.etag}
