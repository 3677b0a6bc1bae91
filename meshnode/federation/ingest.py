"""Applying a batch of prepared inbox effects inside one write transaction.

Most of what peers send is listings (Create, Update, Announce). Their proofs are verified
before the transaction (``processing.prepare``: CPU work on the event loop, never in the
database thread); here each run of consecutive listing effects for distinct objects is
stored with a handful of statements (``store.ingest``) instead of about ten round trips
through aiosqlite's thread per listing. Every other effect, a listing that is already
stored (an update), and any run that fails as a whole take the one-at-a-time path, each in
its own savepoint, exactly as before: one bad activity never costs the others their place.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode.errors import ServiceError
from meshnode.federation.http import FetchError
from meshnode.federation.remote import (
    VerifiedObject,
    announce_of,
    listings_arrived,
    published_at,
    relay,
    store_verified,
)
from meshnode.federation.state import Federation
from meshnode.protocol.activities import origin_of
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.listings import ListingDraft
from meshnode.protocol.records import quick_init
from meshnode.protocol.timefmt import format_utc
from meshnode.services.listings import listing_columns
from meshnode.services.publishing import around_object
from meshnode.store import federation as fq
from meshnode.store import ingest as ingest_store
from meshnode.store import listings as listing_store
from meshnode.store.db import savepoint
from meshnode.store.ingest import NewRemoteListing, QueuedAnnounce

Effect = Callable[[aiosqlite.Connection], Awaitable[str]]
EXPECTED = (ProtocolError, ServiceError, FetchError)
STORED, RELAYED, IGNORED = "stored", "stored and relayed", "ignored: duplicate or stale"


def spliced_dumps(document: Mapping[str, Any], key: str, encoded: str) -> str:
    """``dumps(document)`` when ``document[key]`` is the value ``encoded`` holds (compact
    JSON of it, as ``dumps`` writes it): the value's JSON is spliced in rather than encoded
    a second time (a relayed Announce embeds the signed listing just encoded to store it)."""
    head, tail = around_object(document, key)
    return head + encoded + tail


@quick_init
@dataclass(frozen=True)
class StoreListing:
    """The effect of a listing activity whose author's proof verified: store the object
    (new, or a newer version) and relay it within the hop limit. Callable as a plain
    ``Effect``; ``apply_effects`` stores runs of them together."""

    federation: Federation
    verified: VerifiedObject
    hops: int
    sender: str

    async def __call__(self, tx: aiosqlite.Connection) -> str:
        """Store and relay this one listing."""
        listing_id = await store_verified(self.federation, tx, self.verified)
        if listing_id is None:
            return IGNORED
        relayed = await relay(self.federation, tx, self.verified, hops=self.hops,
                              sender=self.sender, listing_id=listing_id)
        return RELAYED if relayed else STORED


async def run_effect(tx: aiosqlite.Connection, effect: Effect) -> str:
    """Run one effect in a savepoint so one bad row never rolls back its batch."""
    try:
        async with savepoint(tx, "effect"):
            return await effect(tx)
    except (sqlite3.IntegrityError, *EXPECTED) as exc:
        return f"failed: {exc}"


async def apply_effects(federation: Federation, tx: aiosqlite.Connection,
                        effects: Sequence[Effect]) -> list[str]:
    """Run ``effects`` in order inside ``tx``; their outcomes, in the same order.

    Consecutive ``StoreListing`` effects for distinct objects form a run stored together;
    the result is the same as running them one after another.
    """
    outcomes: list[str] = []
    start = 0
    while start < len(effects):
        run = _listing_run(effects, start)
        if len(run) > 1:
            outcomes += await _apply_run(federation, tx, run)
            start += len(run)
        else:
            outcomes.append(await run_effect(tx, effects[start]))
            start += 1
    return outcomes


def _listing_run(effects: Sequence[Effect], start: int) -> list[StoreListing]:
    """The longest run of listing effects from ``start`` that names each object once (a
    second activity for the same object must see the first one's result)."""
    run: list[StoreListing] = []
    seen: set[str] = set()
    for effect in effects[start:]:
        if not isinstance(effect, StoreListing) or effect.verified.object_id in seen:
            break
        seen.add(effect.verified.object_id)
        run.append(effect)
    return run


async def _apply_run(federation: Federation, tx: aiosqlite.Connection,
                     run: list[StoreListing]) -> list[str]:
    """Store a run together; if that fails, undo it and store each alone, so the one
    that fails gets its own ``failed: …`` outcome and the others are stored."""
    try:
        async with savepoint(tx, "listing_run"):
            return await _store_run(federation, tx, run)
    except (sqlite3.IntegrityError, *EXPECTED):
        # Not swallowed: the one-at-a-time path records each failure as its outcome.
        return [await run_effect(tx, effect) for effect in run]


async def _store_run(federation: Federation, tx: aiosqlite.Connection,
                     run: list[StoreListing]) -> list[str]:
    """New listings in two statements; stored ones (updates) one at a time."""
    ctx = federation.ctx
    existing = await listing_store.listings_by_object_ids(
        tx, [effect.verified.object_id for effect in run])
    blocked = await fq.blocked_origins(tx)
    here = origin_of(ctx.config.base_url)
    checked_at = format_utc(ctx.clock())
    outcomes: list[str] = []
    fresh: list[tuple[int, StoreListing, NewRemoteListing]] = []
    for index, effect in enumerate(run):
        verified = effect.verified
        origin = origin_of(verified.object_id)
        if verified.object_id in existing:
            outcomes.append(await effect(tx))
        elif origin == here or origin in blocked or verified.draft is None:
            outcomes.append(IGNORED)  # ours, blocked, or a Tombstone of nothing we hold
        else:
            try:
                row = _new_row(federation, verified, verified.draft, origin, checked_at)
            except EXPECTED as exc:
                outcomes.append(f"failed: {exc}")
                continue
            fresh.append((index, effect, row))
            outcomes.append(STORED)
    if fresh:
        stored = await ingest_store.insert_remote_listings(tx, [row for _, _, row in fresh])
        await listings_arrived(federation, tx, stored)
        relayed = await _relay_run(federation, tx, [(effect, row.listing_id)
                                                    for _, effect, row in fresh])
        for (index, _, _), done in zip(fresh, relayed, strict=True):
            outcomes[index] = RELAYED if done else STORED
    return outcomes


def _new_row(federation: Federation, verified: VerifiedObject, draft: ListingDraft,
             origin: str, checked_at: str) -> NewRemoteListing:
    """The rows of a listing stored for the first time (what ``store_verified`` writes)."""
    decimals = federation.ctx.config.currency.decimals
    return NewRemoteListing(
        listing_id=secrets.token_hex(8), object_id=verified.object_id,
        author_uri=verified.author, origin=origin,
        columns=listing_columns(draft, decimals),
        published_at=published_at(verified), updated_at=verified.timestamp,
        signed_object=verified.stored_text(), check=verified.check(checked_at))


async def _relay_run(federation: Federation, tx: aiosqlite.Connection,
                     run: list[tuple[StoreListing, str]]) -> list[bool]:
    """Announce each newly stored listing (``run``: its effect and its listing id) under the
    hop limit (what ``relay`` does for one): followers read once, outbox rows and deliveries
    written in three statements. Each Announce points at its listing's stored signed text
    instead of holding a copy (``QueuedAnnounce.object_of``)."""
    limit = federation.ctx.config.relay_hop_limit
    if all(effect.hops >= limit for effect, _ in run):
        return [False] * len(run)
    followers = await fq.delivery_inbox_origins(tx, [federation.community])
    now = format_utc(federation.ctx.clock())
    announces: dict[int, QueuedAnnounce] = {}
    for index, (effect, listing_id) in enumerate(run):
        if effect.hops >= limit:
            continue
        verified = effect.verified
        skip = {origin_of(verified.object_id), origin_of(effect.sender)}
        inboxes = tuple(dict.fromkeys((inbox, origin_of(inbox)) for inbox, origin in followers
                                      if origin not in skip))
        announce = announce_of(federation, verified, hops=effect.hops, now=now)
        head, tail = around_object(announce, "object")
        announces[index] = QueuedAnnounce(str(announce["id"]), str(announce["actor"]),
                                          verified.object_id, head, inboxes,
                                          object_of=listing_id, body_tail=tail)
    logged = await ingest_store.logged_activity_ids(
        tx, [announce.activity_id for announce in announces.values()])
    new = {index: a for index, a in announces.items() if a.activity_id not in logged}
    if new:
        await ingest_store.queue_announces(tx, list(new.values()), now)
    return [index in new for index in range(len(run))]
