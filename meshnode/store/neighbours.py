"""Queries on neighbours discovered over mDNS (migration ``0005_discovery.sql``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode.store.db import query

NEIGHBOUR_STATUSES = (
    "discovered", "verified", "peering_requested", "peered", "offline", "rejected",
)
UPDATABLE = frozenset({
    "fingerprint", "public_key", "community_name", "actor_path", "protocol_version",
    "addresses", "port", "status", "actor_url", "approved", "blocked", "attempts",
    "next_attempt_at", "last_seen", "verified_at", "last_error",
})


@dataclass(frozen=True)
class NeighbourRow:
    """A neighbour as stored; ``addresses`` best first."""

    id: int
    instance_name: str
    fingerprint: str
    public_key: bytes
    community_name: str
    actor_path: str
    protocol_version: int
    addresses: tuple[str, ...]
    port: int
    status: str
    actor_url: str | None
    approved: bool
    blocked: bool
    attempts: int
    next_attempt_at: str | None
    first_seen: str
    last_seen: str
    verified_at: str | None
    last_error: str | None


def _neighbour(row: aiosqlite.Row) -> NeighbourRow:
    return NeighbourRow(
        id=row["id"], instance_name=row["instance_name"], fingerprint=row["fingerprint"],
        public_key=row["public_key"], community_name=row["community_name"],
        actor_path=row["actor_path"], protocol_version=row["protocol_version"],
        addresses=tuple(json.loads(row["addresses"])), port=row["port"], status=row["status"],
        actor_url=row["actor_url"], approved=bool(row["approved"]),
        blocked=bool(row["blocked"]), attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"], first_seen=row["first_seen"],
        last_seen=row["last_seen"], verified_at=row["verified_at"], last_error=row["last_error"],
    )


async def get_neighbour(db: aiosqlite.Connection, neighbour_id: int) -> NeighbourRow | None:
    """One neighbour by id."""
    async with query(db, "SELECT * FROM neighbours WHERE id = ?", (neighbour_id,)) as cur:
        row = await cur.fetchone()
    return _neighbour(row) if row is not None else None


async def get_by_instance(db: aiosqlite.Connection, instance_name: str) -> NeighbourRow | None:
    """One neighbour by its DNS-SD instance name."""
    async with query(db,
        "SELECT * FROM neighbours WHERE instance_name = ?", (instance_name,)
    ) as cur:
        row = await cur.fetchone()
    return _neighbour(row) if row is not None else None


async def list_neighbours(db: aiosqlite.Connection) -> list[NeighbourRow]:
    """All neighbours, most recently seen first."""
    async with query(db, "SELECT * FROM neighbours ORDER BY last_seen DESC, id") as cur:
        return [_neighbour(row) for row in await cur.fetchall()]


async def count_neighbours(db: aiosqlite.Connection) -> int:
    """How many neighbour rows exist (capped by the discovery service)."""
    async with query(db, "SELECT count(*) FROM neighbours") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def key_is_blocked(db: aiosqlite.Connection, public_key: bytes) -> bool:
    """True when an admin blocked any neighbour that advertised ``public_key``."""
    async with query(db,
        "SELECT 1 FROM neighbours WHERE public_key = ? AND blocked = 1 LIMIT 1", (public_key,)
    ) as cur:
        return await cur.fetchone() is not None


async def due_for_verification(
    db: aiosqlite.Connection, now: str, limit: int
) -> list[NeighbourRow]:
    """Discovered, unblocked neighbours whose next attempt is due, oldest first."""
    async with query(db,
        "SELECT * FROM neighbours WHERE status = 'discovered' AND blocked = 0"
        " AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
        " ORDER BY coalesce(next_attempt_at, first_seen), id LIMIT ?",
        (now, limit),
    ) as cur:
        return [_neighbour(row) for row in await cur.fetchall()]


async def insert_neighbour(
    tx: aiosqlite.Connection, *, instance_name: str, fingerprint: str, public_key: bytes,
    community_name: str, actor_path: str, protocol_version: int, addresses: tuple[str, ...],
    port: int, status: str, blocked: bool, now: str,
) -> int:
    """Insert a newly seen neighbour; returns its id."""
    cursor = await tx.execute(
        "INSERT INTO neighbours (instance_name, fingerprint, public_key, community_name,"
        " actor_path, protocol_version, addresses, port, status, blocked, first_seen,"
        " last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (instance_name, fingerprint, public_key, community_name, actor_path, protocol_version,
         json.dumps(list(addresses)), port, status, int(blocked), now, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def update_neighbour(tx: aiosqlite.Connection, neighbour_id: int, **fields: Any) -> None:
    """Update named columns of one neighbour (names checked against a fixed list)."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    values = {
        name: json.dumps(list(value)) if name == "addresses" else value
        for name, value in fields.items()
    }
    assignments = ", ".join(f"{name} = ?" for name in values)
    await tx.execute(
        f"UPDATE neighbours SET {assignments} WHERE id = ?",  # noqa: S608 (names whitelisted)
        (*values.values(), neighbour_id),
    )


async def block_key(tx: aiosqlite.Connection, public_key: bytes, now: str) -> None:
    """Block every neighbour advertising ``public_key`` (renames cannot escape a block)."""
    await tx.execute(
        "UPDATE neighbours SET blocked = 1, approved = 0, status = 'rejected',"
        " last_error = 'blocked by an administrator', last_seen = max(last_seen, ?)"
        " WHERE public_key = ?",
        (now, public_key),
    )
