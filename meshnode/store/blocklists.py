"""Queries on block-list subscriptions and the blocks they propose."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import query


@dataclass(frozen=True)
class SubscriptionRow:
    """A peer's block list this node follows."""

    origin: str
    actor: str
    auto_apply: bool
    created_at: str
    last_fetch_at: str | None
    last_error: str | None
    items: int


@dataclass(frozen=True)
class ProposalRow:
    """One block a subscribed list proposes: proposed, applied or ignored."""

    id: int
    source: str
    target: str
    state: str
    seen_at: str
    decided_at: str | None


async def upsert_subscription(db: aiosqlite.Connection, *, origin: str, actor: str,
                              auto_apply: bool, now: str) -> None:
    """Subscribe (or change whether its blocks apply automatically)."""
    await db.execute(
        "INSERT INTO blocklist_subscriptions (origin, actor, auto_apply, created_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET auto_apply = excluded.auto_apply,"
        " actor = excluded.actor", (origin, actor, int(auto_apply), now))


async def delete_subscription(db: aiosqlite.Connection, origin: str) -> bool:
    """Unsubscribe (its proposals go with it); False when there was none."""
    cursor = await db.execute("DELETE FROM blocklist_subscriptions WHERE origin = ?", (origin,))
    return cursor.rowcount == 1


async def subscriptions(db: aiosqlite.Connection) -> list[SubscriptionRow]:
    """Every subscription, by origin."""
    async with query(db, "SELECT * FROM blocklist_subscriptions ORDER BY origin") as cursor:
        return [SubscriptionRow(**{**dict(r), "auto_apply": bool(r["auto_apply"])})
                for r in await cursor.fetchall()]


async def record_fetch(db: aiosqlite.Connection, origin: str, now: str, *,
                       items: int | None = None, error: str | None = None) -> None:
    """Note a fetch: its item count, or its error."""
    await db.execute(
        "UPDATE blocklist_subscriptions SET last_fetch_at = ?, last_error = ?,"
        " items = coalesce(?, items) WHERE origin = ?", (now, error, items, origin))


async def add_proposals(db: aiosqlite.Connection, source: str, targets: list[str],
                        now: str) -> list[int]:
    """Record the targets not proposed before by this list; returns the new proposal ids."""
    new: list[int] = []
    for target in targets:
        cursor = await db.execute(
            "INSERT OR IGNORE INTO blocklist_proposals (source, target, state, seen_at)"
            " VALUES (?, ?, 'proposed', ?)", (source, target, now))
        if cursor.rowcount == 1 and cursor.lastrowid is not None:
            new.append(cursor.lastrowid)
    return new


async def proposals(db: aiosqlite.Connection, *, state: str | None = None,
                    limit: int = 500) -> list[ProposalRow]:
    """Proposals, newest first (of one state if given)."""
    async with query(db, "SELECT * FROM blocklist_proposals WHERE (? IS NULL OR state = ?)"
                         " ORDER BY id DESC LIMIT ?", (state, state, limit)) as cursor:
        return [ProposalRow(**dict(r)) for r in await cursor.fetchall()]


async def get_proposal(db: aiosqlite.Connection, proposal_id: int) -> ProposalRow | None:
    """One proposal."""
    async with query(db, "SELECT * FROM blocklist_proposals WHERE id = ?",
                     (proposal_id,)) as cursor:
        row = await cursor.fetchone()
    return ProposalRow(**dict(row)) if row else None


async def decide(db: aiosqlite.Connection, proposal_id: int, state: str, now: str) -> bool:
    """Move a proposal out of 'proposed'; False when it was already decided."""
    cursor = await db.execute(
        "UPDATE blocklist_proposals SET state = ?, decided_at = ? WHERE id = ?"
        " AND state = 'proposed'", (state, now, proposal_id))
    return cursor.rowcount == 1
