"""Use cases on LAN neighbours: record adverts and goodbyes, verification outcomes, admin actions.

The zeroconf and HTTP work happens in ``meshnode/federation/discovery.py``; this module only
decides state transitions (see the diagram in ``0005_discovery.sql``) and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol.discovery import (
    MAX_VERIFY_ATTEMPTS,
    Advert,
    verification_backoff,
)
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.store import neighbours as nq
from meshnode.store.neighbours import NeighbourRow

# Statuses a re-announcement with a new address or key sends back to verification.
REVERIFY_FROM = frozenset({"verified", "peering_requested", "peered", "offline"})


@dataclass(frozen=True)
class SeenAdvert:
    """One resolved, parsed advert: the instance, its claims and where it says it is."""

    instance_name: str
    advert: Advert
    addresses: tuple[str, ...]
    port: int


def _now(ctx: NodeContext) -> str:
    return format_utc(ctx.clock())


async def get_neighbour(ctx: NodeContext, neighbour_id: int) -> NeighbourRow:
    """One neighbour (NotFoundError if unknown)."""
    row = await nq.get_neighbour(ctx.store.reader, neighbour_id)
    if row is None:
        raise NotFoundError(f"no neighbour {neighbour_id}")
    return row


def _advert_changes(row: NeighbourRow, seen: SeenAdvert) -> dict[str, object]:
    advert = seen.advert
    changes: dict[str, object] = {
        "community_name": advert.community_name, "actor_path": advert.actor_path,
        "protocol_version": advert.protocol_version,
    }
    moved = (row.addresses, row.port) != (seen.addresses, seen.port)
    rekeyed = row.public_key != advert.public_key
    if rekeyed:
        changes.update(public_key=advert.public_key, fingerprint=advert.fingerprint,
                       verified_at=None, actor_url=None)
    if moved:
        changes.update(addresses=seen.addresses, port=seen.port)
    if row.blocked:
        return changes
    # A node that moved, changed key or came back must prove itself again: an advert
    # claiming a new address for a verified node is exactly what a spoofer would send.
    if rekeyed or (moved and row.status in REVERIFY_FROM) or row.status == "offline":
        changes.update(status="discovered", attempts=0, next_attempt_at=None, last_error=None)
    elif moved:
        changes.update(attempts=0, next_attempt_at=None)
    return changes


async def record_advert(
    ctx: NodeContext, seen: SeenAdvert, *, max_neighbours: int
) -> NeighbourRow | None:
    """Insert or refresh the neighbour an advert describes; None when the table is full."""
    now = _now(ctx)
    async with ctx.store.transaction() as tx:
        row = await nq.get_by_instance(tx, seen.instance_name)
        if row is None:
            if await nq.count_neighbours(tx) >= max_neighbours:
                return None
            blocked = await nq.key_is_blocked(tx, seen.advert.public_key)
            neighbour_id = await nq.insert_neighbour(
                tx, instance_name=seen.instance_name, fingerprint=seen.advert.fingerprint,
                public_key=seen.advert.public_key, community_name=seen.advert.community_name,
                actor_path=seen.advert.actor_path,
                protocol_version=seen.advert.protocol_version, addresses=seen.addresses,
                port=seen.port, status="rejected" if blocked else "discovered",
                blocked=blocked, now=now,
            )
        else:
            neighbour_id = row.id
            await nq.update_neighbour(tx, row.id, last_seen=now, **_advert_changes(row, seen))
        return await nq.get_neighbour(tx, neighbour_id)


async def record_goodbye(ctx: NodeContext, instance_name: str) -> bool:
    """The node said goodbye (mDNS TTL 0): show it offline. False if unknown."""
    now = _now(ctx)
    async with ctx.store.transaction() as tx:
        row = await nq.get_by_instance(tx, instance_name)
        if row is None or row.status == "rejected":
            return False
        await nq.update_neighbour(tx, row.id, status="offline", last_seen=now)
        return True


async def due_for_verification(ctx: NodeContext, limit: int) -> list[NeighbourRow]:
    """Neighbours the verifier should try now."""
    return await nq.due_for_verification(ctx.store.reader, _now(ctx), limit)


async def record_verified(ctx: NodeContext, neighbour_id: int, actor_url: str) -> NeighbourRow:
    """The neighbour proved its key at ``actor_url``'s address."""
    now = _now(ctx)
    async with ctx.store.transaction() as tx:
        row = await nq.get_neighbour(tx, neighbour_id)
        if row is None or row.blocked or row.status != "discovered":
            raise ConflictError(Text("neighbour %(id)s is no longer awaiting verification",
                                     id=neighbour_id))
        await nq.update_neighbour(tx, neighbour_id, status="verified", actor_url=actor_url,
                                  verified_at=now, attempts=0, next_attempt_at=None,
                                  last_error=None)
    return await get_neighbour(ctx, neighbour_id)


async def record_failure(ctx: NodeContext, neighbour_id: int, error: str) -> NeighbourRow:
    """A verification attempt failed: back off, and reject after the last attempt."""
    moment = ctx.clock()
    async with ctx.store.transaction() as tx:
        row = await nq.get_neighbour(tx, neighbour_id)
        if row is None:
            raise NotFoundError(f"no neighbour {neighbour_id}")
        attempts = row.attempts + 1
        retry = moment + timedelta(seconds=verification_backoff(attempts))
        await nq.update_neighbour(
            tx, neighbour_id, attempts=attempts, last_error=error[:500],
            status="rejected" if attempts >= MAX_VERIFY_ATTEMPTS else row.status,
            next_attempt_at=format_utc(retry),
        )
    return await get_neighbour(ctx, neighbour_id)


async def record_peering_requested(ctx: NodeContext, actor_url: str) -> int:
    """Mark verified neighbours at ``actor_url`` as handed to peering; returns rows changed."""
    rows = [row for row in await nq.list_neighbours(ctx.store.reader)
            if row.actor_url == actor_url and row.status == "verified" and not row.blocked]
    async with ctx.store.transaction() as tx:
        for row in rows:
            await nq.update_neighbour(tx, row.id, status="peering_requested")
    return len(rows)


async def list_neighbours(ctx: NodeContext) -> list[NeighbourRow]:
    """Every neighbour, most recently seen first."""
    return await nq.list_neighbours(ctx.store.reader)


async def approve_neighbour(ctx: NodeContext, neighbour_id: int) -> NeighbourRow:
    """An admin agrees to peer with this neighbour (once it is verified)."""
    row = await get_neighbour(ctx, neighbour_id)
    if row.blocked:
        raise ConflictError("this neighbour is blocked")
    async with ctx.store.transaction() as tx:
        await nq.update_neighbour(tx, neighbour_id, approved=1)
    return await get_neighbour(ctx, neighbour_id)


async def block_neighbour(ctx: NodeContext, neighbour_id: int) -> NeighbourRow:
    """Block the neighbour's key: never verified nor peered again, whatever it is renamed to."""
    row = await get_neighbour(ctx, neighbour_id)
    async with ctx.store.transaction() as tx:
        await nq.block_key(tx, row.public_key, _now(ctx))
    return await get_neighbour(ctx, neighbour_id)
