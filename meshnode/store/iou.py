"""Queries on trust lines, cross-node transfers, line moves and reconciliations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from meshnode.store.db import query

LINE_COLUMNS = frozenset({
    "requested", "peer_actor", "peer_origin", "peer_inbox", "account", "state", "limit_out",
    "limit_in", "rate", "peer_decimals", "agreement", "intent", "pending_change", "attempts",
    "next_attempt_at", "last_error",
})
TRANSFER_COLUMNS = frozenset({"state", "reason", "decided_at", "release_sent",
                              "entry_document"})


@dataclass(frozen=True)
class LineRow:
    """A trust line as this node sees it (limits in our minor units)."""

    id: str
    requested: str
    peer_actor: str | None
    peer_origin: str | None
    peer_inbox: str | None
    account: str | None
    is_proposer: int
    state: str
    limit_out: int
    limit_in: int
    rate: str
    peer_decimals: int | None
    agreement: str | None
    intent: str | None
    pending_change: str | None
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class TransferRow:
    """One cross-node transfer as this node records it."""

    id: str
    role: str
    state: str
    in_line: str | None
    out_line: str | None
    payer: str
    payee: str
    debit_account: str | None
    credit_account: str | None
    amount: int
    in_amount: int | None
    out_amount: int | None
    memo: str
    listing_id: str | None
    route: str
    entry_document: str | None
    reason: str | None
    expires_at: str
    release_sent: int
    created_at: str
    decided_at: str | None
    payee_amount: int | None
    payee_decimals: int | None


def _line(row: aiosqlite.Row) -> LineRow:
    return LineRow(**{name: row[name] for name in LineRow.__dataclass_fields__})


def _transfer(row: aiosqlite.Row) -> TransferRow:
    return TransferRow(**{name: row[name] for name in TransferRow.__dataclass_fields__})


async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    async with query(db, sql, params) as cursor:
        return list(await cursor.fetchall())


# --- lines ----------------------------------------------------------------------------------


async def insert_line(db: aiosqlite.Connection, **values: Any) -> None:
    """Insert a trust line row (column names as in the table)."""
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    await db.execute(f"INSERT INTO iou_lines ({names}) VALUES ({marks})",  # noqa: S608
                     tuple(values.values()))


async def update_line(db: aiosqlite.Connection, line_id: str, now: str, **values: Any) -> None:
    """Set some columns of a line (names checked against ``LINE_COLUMNS``)."""
    unknown = set(values) - LINE_COLUMNS
    if unknown:
        raise ValueError(f"unknown line columns {sorted(unknown)}")
    sets = ", ".join(f"{name} = ?" for name in values)
    await db.execute(f"UPDATE iou_lines SET {sets}, updated_at = ? WHERE id = ?",  # noqa: S608
                     (*values.values(), now, line_id))


async def get_line(db: aiosqlite.Connection, line_id: str) -> LineRow | None:
    """A line by id, or None."""
    rows = await _all(db, "SELECT * FROM iou_lines WHERE id = ?", (line_id,))
    return _line(rows[0]) if rows else None


async def list_lines(db: aiosqlite.Connection) -> list[LineRow]:
    """Every line, oldest first."""
    return [_line(row) for row in await _all(db, "SELECT * FROM iou_lines ORDER BY created_at,"
                                                 " id")]


async def lines_with_peer(db: aiosqlite.Connection, peer_actor: str) -> list[LineRow]:
    """Lines (any state) with a peer's Group actor."""
    return [_line(row) for row in await _all(
        db, "SELECT * FROM iou_lines WHERE peer_actor = ? ORDER BY created_at", (peer_actor,))]


async def lines_with_intent(db: aiosqlite.Connection, now: str) -> list[LineRow]:
    """Lines with work due for the IOU worker."""
    return [_line(row) for row in await _all(
        db, "SELECT * FROM iou_lines WHERE intent IS NOT NULL AND (next_attempt_at IS NULL OR"
            " next_attempt_at <= ?) ORDER BY updated_at", (now,))]


async def create_node_account(
    db: aiosqlite.Connection, name: str, *, min_balance: int, max_balance: int, now: str
) -> None:
    """The peer community's system account on our ledger, with the line's limits."""
    await db.execute(
        "INSERT INTO ledger_accounts (name, kind, min_balance, max_balance, created_at)"
        " VALUES (?, 'system', ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
        " min_balance = excluded.min_balance, max_balance = excluded.max_balance",
        (name, min_balance, max_balance, now))


async def set_account_limits(
    db: aiosqlite.Connection, name: str, *, min_balance: int, max_balance: int
) -> None:
    """Move a node account's limits (the line's)."""
    await db.execute("UPDATE ledger_accounts SET min_balance = ?, max_balance = ? WHERE name = ?",
                     (min_balance, max_balance, name))


# --- transfers ------------------------------------------------------------------------------


async def insert_transfer(db: aiosqlite.Connection, **values: Any) -> bool:
    """Insert a transfer row; False when this transfer id is already known (duplicate)."""
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    cursor = await db.execute(
        f"INSERT OR IGNORE INTO iou_transfers ({names}) VALUES ({marks})",  # noqa: S608
        tuple(values.values()))
    return cursor.rowcount == 1


async def get_transfer(db: aiosqlite.Connection, transfer_id: str) -> TransferRow | None:
    """A transfer by id, or None."""
    rows = await _all(db, "SELECT * FROM iou_transfers WHERE id = ?", (transfer_id,))
    return _transfer(rows[0]) if rows else None


async def move_transfer(
    db: aiosqlite.Connection, transfer_id: str, *, from_state: str, **values: Any
) -> bool:
    """Update a transfer only if it is still in ``from_state`` (compare-and-set)."""
    unknown = set(values) - TRANSFER_COLUMNS
    if unknown:
        raise ValueError(f"unknown transfer columns {sorted(unknown)}")
    sets = ", ".join(f"{name} = ?" for name in values)
    cursor = await db.execute(
        f"UPDATE iou_transfers SET {sets} WHERE id = ? AND state = ?",  # noqa: S608
        (*values.values(), transfer_id, from_state))
    return cursor.rowcount == 1


async def list_transfers(
    db: aiosqlite.Connection, *, payer: str | None = None, limit: int = 100
) -> list[TransferRow]:
    """Transfers, newest first (a payer's own when ``payer`` is given)."""
    return [_transfer(row) for row in await _all(
        db, "SELECT * FROM iou_transfers WHERE (? IS NULL OR (role = 'origin' AND payer = ?))"
            " ORDER BY created_at DESC, id LIMIT ?", (payer, payer, limit))]


async def expired_unreleased(db: aiosqlite.Connection, now: str) -> list[TransferRow]:
    """Origin transfers still prepared past their expiry whose release was not yet asked."""
    return [_transfer(row) for row in await _all(
        db, "SELECT * FROM iou_transfers WHERE state = 'prepared' AND role = 'origin'"
            " AND release_sent = 0 AND expires_at <= ?", (now,))]


async def prepared_on_line(db: aiosqlite.Connection, line_id: str) -> int:
    """Transfers still prepared over a line."""
    rows = await _all(db, "SELECT count(*) FROM iou_transfers WHERE state = 'prepared'"
                          " AND (in_line = ? OR out_line = ?)", (line_id, line_id))
    return int(rows[0][0])


# --- moves and reconciliation ---------------------------------------------------------------


async def insert_move(db: aiosqlite.Connection, *, line_id: str, transfer_id: str,
                      local_delta: int, peer_delta: int, now: str) -> None:
    """Record what a committed transfer did to a line (both views)."""
    await db.execute(
        "INSERT INTO iou_line_moves (line_id, transfer_id, local_delta, peer_delta, created_at)"
        " VALUES (?, ?, ?, ?, ?)", (line_id, transfer_id, local_delta, peer_delta, now))


async def line_totals(db: aiosqlite.Connection, line_id: str) -> tuple[int, int, list[str]]:
    """(Σ our deltas, Σ peer deltas, the last 50 transfer ids) of a line."""
    sums = await _all(db, "SELECT coalesce(sum(local_delta), 0), coalesce(sum(peer_delta), 0)"
                          " FROM iou_line_moves WHERE line_id = ?", (line_id,))
    recent = await _all(db, "SELECT transfer_id FROM iou_line_moves WHERE line_id = ?"
                            " ORDER BY seq DESC LIMIT 50", (line_id,))
    return int(sums[0][0]), int(sums[0][1]), [row[0] for row in recent]


async def line_moves(db: aiosqlite.Connection, line_id: str, limit: int = 50) -> list[Any]:
    """The newest moves of a line (transfers that explain its balance)."""
    return await _all(db, "SELECT transfer_id, local_delta, peer_delta, created_at FROM"
                          " iou_line_moves WHERE line_id = ? ORDER BY seq DESC LIMIT ?",
                      (line_id, limit))


async def save_reconciliation(db: aiosqlite.Connection, *, line_id: str, status: str,
                              detail: str, only_ours: str, only_theirs: str, statement: str,
                              now: str, differing: str = "[]") -> None:
    """Record the latest reconciliation of a line."""
    await db.execute(
        "INSERT INTO iou_reconciliations (line_id, status, detail, only_ours, only_theirs,"
        " statement, checked_at, differing) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(line_id)"
        " DO UPDATE SET status = excluded.status, detail = excluded.detail,"
        " only_ours = excluded.only_ours, only_theirs = excluded.only_theirs,"
        " statement = excluded.statement, checked_at = excluded.checked_at,"
        " differing = excluded.differing",
        (line_id, status, detail, only_ours, only_theirs, statement, now, differing))


async def reconciliations(db: aiosqlite.Connection) -> list[Any]:
    """Every line's last reconciliation."""
    return await _all(db, "SELECT * FROM iou_reconciliations ORDER BY line_id")
