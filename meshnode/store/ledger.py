"""Queries on the mutual-credit ledger: accounts, the append-only journal, requests, holds.

:func:`append_entry` is the only way money moves: it chains the new entry to the recorded
head, inserts it, moves both balances and the head, all on the caller's transaction, so the
cached balances can never drift from the journal.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

import aiosqlite

from meshnode.protocol.canonical import canonicalize
from meshnode.protocol.ledger import (
    GENESIS_HASH,
    ChainHead,
    EntryFields,
    JournalEntry,
    Movement,
    PreparedEntry,
)
from meshnode.store.db import in_connection_thread, query

FUND_ACCOUNT = "sys:fund"


@dataclass(frozen=True)
class AccountRow:
    """A ledger account; limits are None when the default (members) or no limit applies."""

    id: int
    name: str
    kind: str
    member_id: int | None
    balance: int
    min_balance: int | None
    max_balance: int | None
    created_at: str


@dataclass(frozen=True)
class HeldAccount:
    """An account plus the units its unexpired holds reserve on each side."""

    account: AccountRow
    held_debit: int
    held_credit: int


@dataclass(frozen=True)
class RequestRow:
    """A payment request (bill) and its state."""

    id: str
    payer_account: str
    payee_account: str
    amount: int
    memo: str
    listing_id: str | None
    status: str
    document: str
    decision: str | None
    created_at: str
    expires_at: str
    decided_at: str | None


@dataclass(frozen=True)
class LedgerTotals:
    """Aggregates for the admin summary."""

    accounts: int
    transactions: int
    balance_sum: int
    volume: int


def _account(row: aiosqlite.Row) -> AccountRow:
    return AccountRow(
        id=row["id"], name=row["name"], kind=row["kind"], member_id=row["member_id"],
        balance=row["balance"], min_balance=row["min_balance"], max_balance=row["max_balance"],
        created_at=row["created_at"],
    )


def _request(row: aiosqlite.Row) -> RequestRow:
    return RequestRow(**{key: row[key] for key in RequestRow.__dataclass_fields__})


class StoredDocument(Mapping[str, Any]):
    """A journal entry's signed document, parsed from its stored JSON on first use.

    The wallet page reads 60 entries for its history and chart and shows none of their
    documents; parsing each (about 30 µs) was most of that page's time (issue 17).
    """

    __slots__ = ("_parsed", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._parsed: dict[str, Any] | None = None

    def _document(self) -> dict[str, Any]:
        if self._parsed is None:
            parsed = json.loads(self._text)
            if not isinstance(parsed, dict):
                raise TypeError("a journal document is a JSON object")
            self._parsed = parsed
        return self._parsed

    def __getitem__(self, key: str) -> Any:
        return self._document()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._document())

    def __len__(self) -> int:
        return len(self._document())

    def __repr__(self) -> str:
        return f"StoredDocument({self._document()!r})"


_ENTRY_COLUMNS = ("id", "kind", "payer_account", "payee_account", "amount", "memo",
                  "listing_id", "reverses", "request_id", "signer", "created_at", "seq",
                  "document", "prev_hash", "hash")


def _entries(rows: Sequence[aiosqlite.Row]) -> list[JournalEntry]:
    """The journal entries of one statement's full rows: they share their columns, so each
    column's position is looked up once, not a row's names listed and zipped per row (the
    wallet's twenty-one history entries: 42.6 -> 22.5 us, issue 17). The frozen dataclasses'
    __init__ set each field with object.__setattr__ (5 us an entry): both are filled whole,
    their __dict__ at once, as store/listings._listing does; frozen still refuses
    assignments afterwards. Every field is named here, so a column renamed away fails
    (KeyError) as before."""
    if not rows:
        return []
    where = {name: index for index, name in enumerate(rows[0].keys())}
    (i_id, i_kind, i_payer, i_payee, i_amount, i_memo, i_listing, i_reverses, i_request,
     i_signer, i_created, i_seq, i_document, i_prev, i_hash) = (
        where[name] for name in _ENTRY_COLUMNS)
    new = object.__new__
    built = []
    for row in rows:
        fields = new(EntryFields)
        fields.__dict__.update(
            id=row[i_id], kind=row[i_kind], payer=row[i_payer], payee=row[i_payee],
            amount=row[i_amount], memo=row[i_memo], listing_id=row[i_listing],
            reverses=row[i_reverses], request_id=row[i_request], signer=row[i_signer],
            created_at=row[i_created])
        entry = new(JournalEntry)
        entry.__dict__.update(seq=row[i_seq], fields=fields,
                              document=StoredDocument(row[i_document]),
                              prev_hash=row[i_prev], hash=row[i_hash])
        built.append(entry)
    return built


def _entry(row: aiosqlite.Row) -> JournalEntry:
    """The journal entry of one full row (``_entries`` of that row alone)."""
    return _entries([row])[0]


# The fields _entries fills, checked against the classes when this module is imported (a
# field added to either class must be filled there too).
if {f.name for f in dataclass_fields(EntryFields)} != {
        "id", "kind", "payer", "payee", "amount", "memo", "listing_id", "reverses",
        "request_id", "signer", "created_at"} or {
        f.name for f in dataclass_fields(JournalEntry)} != {
        "seq", "fields", "document", "prev_hash", "hash"}:
    raise TypeError("store.ledger._entry no longer fills every journal entry field")


# --- accounts -------------------------------------------------------------------------------


async def get_account(db: aiosqlite.Connection, name: str) -> AccountRow | None:
    """The account with this name (a member's username, or ``sys:…``), or None."""
    rows = await db.execute_fetchall("SELECT * FROM ledger_accounts WHERE name = ?", (name,))
    return next((_account(row) for row in rows), None)


async def list_accounts(db: aiosqlite.Connection) -> list[AccountRow]:
    """Every account, in creation order."""
    async with query(db, "SELECT * FROM ledger_accounts ORDER BY id") as cursor:
        return [_account(row) for row in await cursor.fetchall()]


async def set_limits(
    db: aiosqlite.Connection, name: str, min_balance: int | None, max_balance: int | None
) -> None:
    """Override an account's limits (None restores the default)."""
    await db.execute(
        "UPDATE ledger_accounts SET min_balance = ?, max_balance = ? WHERE name = ?",
        (min_balance, max_balance, name),
    )


async def insert_limit_change(
    db: aiosqlite.Connection, *, account: str, min_balance: int | None,
    max_balance: int | None, changed_by: str, changed_at: str,
) -> None:
    """Record an admin limit change in the audit trail."""
    await db.execute(
        "INSERT INTO ledger_limit_changes (account, min_balance, max_balance, changed_by,"
        " changed_at) VALUES (?, ?, ?, ?, ?)",
        (account, min_balance, max_balance, changed_by, changed_at),
    )


async def insert_hold(
    db: aiosqlite.Connection, *, hold_id: str, account: str, direction: str, amount: int,
    reason: str, expires_at: str,
) -> None:
    """Reserve ``amount`` of an account's room on one side until ``expires_at``."""
    await db.execute(
        "INSERT INTO ledger_holds (id, account, direction, amount, reason, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (hold_id, account, direction, amount, reason, expires_at),
    )


async def release_holds(db: aiosqlite.Connection, reason: str) -> None:
    """Drop every hold placed for ``reason`` (a request id)."""
    await db.execute("DELETE FROM ledger_holds WHERE reason = ?", (reason,))


# --- journal --------------------------------------------------------------------------------


async def get_head(db: aiosqlite.Connection) -> ChainHead:
    """The recorded end of the chain (seq 0 and the genesis hash when empty)."""
    rows = await db.execute_fetchall("SELECT seq, hash FROM ledger_head WHERE singleton = 1")
    for row in rows:
        return ChainHead(seq=row[0], hash=row[1])
    return ChainHead(seq=0, hash=GENESIS_HASH)


async def transfer_snapshot(
    db: aiosqlite.Connection, names: tuple[str] | tuple[str, str], now: str
) -> tuple[dict[str, HeldAccount], ChainHead]:
    """The one or two named accounts with their unexpired holds, and the chain head, in ONE query.

    One round trip matters: this runs inside the write lock for every payment.
    """
    rows = list(await db.execute_fetchall(
        "SELECT a.*,"
        " (SELECT COALESCE(SUM(amount), 0) FROM ledger_holds h WHERE h.account = a.name"
        "  AND h.direction = 'debit' AND h.expires_at > ?) AS held_debit,"
        " (SELECT COALESCE(SUM(amount), 0) FROM ledger_holds h WHERE h.account = a.name"
        "  AND h.direction = 'credit' AND h.expires_at > ?) AS held_credit,"
        " (SELECT seq FROM ledger_head) AS head_seq, (SELECT hash FROM ledger_head) AS head_hash"
        " FROM ledger_accounts a WHERE a.name IN (?, ?)",
        (now, now, names[0], names[-1]),
    ))
    accounts = {
        row["name"]: HeldAccount(_account(row), row["held_debit"], row["held_credit"])
        for row in rows
    }
    head = ChainHead(seq=rows[0]["head_seq"], hash=rows[0]["head_hash"]) if rows else (
        await get_head(db))
    return accounts, head


async def append_entry(
    db: aiosqlite.Connection, entry: PreparedEntry, head: ChainHead | None = None
) -> JournalEntry:
    """Chain and insert one entry after ``head`` (read here when not given).

    The ``ledger_journal_apply`` trigger moves both balances and the head in the same
    statement, and ``ledger_journal_extends_head`` refuses a stale head, so the chain can
    neither fork nor drift from the balances.
    """
    head = head if head is not None else await get_head(db)
    digest = entry.hash_after(head.hash)
    seq = head.seq + 1
    fields = entry.fields
    await db.execute(
        "INSERT INTO ledger_journal (seq, id, kind, payer_account, payee_account, amount, memo,"
        " listing_id, reverses, request_id, signer, created_at, document, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, fields.id, fields.kind, fields.payer, fields.payee, fields.amount, fields.memo,
         fields.listing_id, fields.reverses, fields.request_id, fields.signer, fields.created_at,
         entry.document_jcs.decode("utf-8"), head.hash, digest),
    )
    return JournalEntry(seq=seq, fields=fields, document=entry.document, prev_hash=head.hash,
                        hash=digest)


async def get_entry(db: aiosqlite.Connection, entry_id: str) -> JournalEntry | None:
    """The journal entry with this transaction id, or None."""
    async with query(db, "SELECT * FROM ledger_journal WHERE id = ?", (entry_id,)) as cursor:
        row = await cursor.fetchone()
    return _entry(row) if row else None


async def reversal_of(db: aiosqlite.Connection, entry_id: str) -> str | None:
    """The id of the entry reversing ``entry_id``, if any."""
    async with query(db,
        "SELECT id FROM ledger_journal WHERE reverses = ?", (entry_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return str(row[0]) if row else None


async def iter_entries(db: aiosqlite.Connection) -> AsyncIterator[JournalEntry]:
    """Every journal entry in seq order (streamed)."""
    async with query(db, "SELECT * FROM ledger_journal ORDER BY seq") as cursor:
        async for row in cursor:
            yield _entry(row)


async def account_entries(
    db: aiosqlite.Connection, account: str, *, before_seq: int | None, limit: int
) -> list[JournalEntry]:
    """An account's entries, newest first, older than ``before_seq`` when given."""
    bound = before_seq if before_seq is not None else 2**62
    async with query(db,
        "SELECT * FROM ledger_journal WHERE seq < ? AND payer_account = ?"
        " UNION ALL SELECT * FROM ledger_journal WHERE seq < ? AND payee_account = ?"
        " ORDER BY seq DESC LIMIT ?",
        (bound, account, bound, account, limit),
    ) as cursor:
        return _entries(await cursor.fetchall())


async def account_movements(db: aiosqlite.Connection, account: str, *, limit: int
                            ) -> list[Movement]:
    """An account's newest ``limit`` movements, newest first: its entries without their
    signed documents, fields or hashes (the wallet's chart reads 60: building 60 whole
    entries was a third of the wallet page's reads, issue 17)."""

    def work(conn: sqlite3.Connection) -> list[Movement]:
        cursor = conn.cursor()
        cursor.row_factory = _movement
        return cursor.execute(
            "SELECT seq, payer_account, payee_account, amount, created_at FROM ledger_journal"
            " WHERE payer_account = ? UNION ALL SELECT seq, payer_account, payee_account,"
            " amount, created_at FROM ledger_journal WHERE payee_account = ?"
            " ORDER BY seq DESC LIMIT ?", (account, account, limit)).fetchall()

    return await in_connection_thread(db, work)


def _movement(_cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Movement:
    return Movement._make(row)


async def totals(db: aiosqlite.Connection) -> LedgerTotals:
    """Number of accounts and transactions, sum of balances, total volume moved."""
    async with query(db,
        "SELECT (SELECT COUNT(*) FROM ledger_accounts), (SELECT COUNT(*) FROM ledger_journal),"
        " (SELECT COALESCE(SUM(balance), 0) FROM ledger_accounts),"
        " (SELECT COALESCE(SUM(amount), 0) FROM ledger_journal)"
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return LedgerTotals(accounts=row[0], transactions=row[1], balance_sum=row[2], volume=row[3])


async def active_traders(db: aiosqlite.Connection, since: str) -> int:
    """Distinct member accounts that paid or were paid since ``since``."""
    async with query(db,
        "SELECT COUNT(*) FROM (SELECT payer_account AS a FROM ledger_journal WHERE created_at >= ?"
        " UNION SELECT payee_account FROM ledger_journal WHERE created_at >= ?)"
        " WHERE a NOT LIKE 'sys:%'",
        (since, since),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


# --- payment requests -----------------------------------------------------------------------


async def insert_request(
    db: aiosqlite.Connection, *, request_id: str, payer: str, payee: str, amount: int,
    memo: str, listing_id: str | None, document: dict[str, Any], created_at: str,
    expires_at: str,
) -> None:
    """Store a new pending payment request with its payee-signed document."""
    await db.execute(
        "INSERT INTO ledger_requests (id, payer_account, payee_account, amount, memo, listing_id,"
        " status, document, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (request_id, payer, payee, amount, memo, listing_id,
         canonicalize(document).decode("utf-8"), created_at, expires_at),
    )


async def get_request(db: aiosqlite.Connection, request_id: str) -> RequestRow | None:
    """The payment request with this id, or None."""
    async with query(db, "SELECT * FROM ledger_requests WHERE id = ?", (request_id,)) as cursor:
        row = await cursor.fetchone()
    return _request(row) if row else None


async def decide_request(
    db: aiosqlite.Connection, request_id: str, *, status: str, decision: dict[str, Any] | None,
    decided_at: str,
) -> bool:
    """Move a *pending* request to ``status``; False if it was no longer pending."""
    cursor = await db.execute(
        "UPDATE ledger_requests SET status = ?, decision = ?, decided_at = ?"
        " WHERE id = ? AND status = 'pending'",
        (status, canonicalize(decision).decode("utf-8") if decision else None, decided_at,
         request_id),
    )
    return cursor.rowcount == 1


async def expire_requests(db: aiosqlite.Connection, now: str) -> list[str]:
    """Mark pending requests past their expiry as expired, release their holds; return ids."""
    async with query(db,
        "SELECT id FROM ledger_requests WHERE status = 'pending' AND expires_at <= ?", (now,)
    ) as cursor:
        ids = [str(row[0]) for row in await cursor.fetchall()]
    for request_id in ids:
        await decide_request(db, request_id, status="expired", decision=None, decided_at=now)
        await release_holds(db, request_id)
    return ids


async def list_requests(
    db: aiosqlite.Connection, account: str, *, status: str | None, limit: int
) -> list[RequestRow]:
    """Requests where ``account`` pays or is paid, newest first."""
    async with query(db,
        "SELECT * FROM ledger_requests WHERE (payer_account = ? OR payee_account = ?)"
        " AND (? IS NULL OR status = ?) ORDER BY created_at DESC, id LIMIT ?",
        (account, account, status, status, limit),
    ) as cursor:
        return [_request(row) for row in await cursor.fetchall()]


@dataclass(frozen=True)
class HoldRow:
    """One unexpired hold on an account, with what it is for (``kind``: request, deal,
    deposit, transfer, other) and the title or memo that names it."""

    id: str
    direction: str
    amount: int
    reason: str
    expires_at: str
    kind: str
    ref: str
    label: str


async def list_holds(db: aiosqlite.Connection, account: str, now: str) -> list[HoldRow]:
    """The account's unexpired holds, soonest expiry first, each named by what placed it."""
    sql = (
        "SELECT h.id, h.direction, h.amount, h.reason, h.expires_at,"
        " CASE WHEN r.id IS NOT NULL THEN 'request' WHEN d.id IS NOT NULL AND"
        " h.reason NOT LIKE '%:deposit' THEN 'deal' WHEN d.id IS NOT NULL THEN 'deposit'"
        " WHEN t.id IS NOT NULL THEN 'transfer' ELSE 'other' END AS kind,"
        " COALESCE(r.id, d.id, t.id, '') AS ref,"
        " COALESCE(r.memo, l.title, t.memo, '') AS label"
        " FROM ledger_holds h LEFT JOIN ledger_requests r ON r.id = h.reason"
        # the deal id sits between 'deal:' and an optional ':deposit' (deal_settlement.py)
        " LEFT JOIN deals d ON d.id = CASE WHEN h.reason LIKE 'deal:%' THEN substr(h.reason,"
        " 6, length(h.reason) - CASE WHEN h.reason LIKE '%:deposit' THEN 13 ELSE 5 END) END"
        " LEFT JOIN listings l ON l.id = d.listing_id"
        " LEFT JOIN iou_transfers t ON t.id = h.reason"
        " WHERE h.account = ? AND h.expires_at > ? ORDER BY h.expires_at, h.id"
    )
    async with query(db, sql, (account, now)) as cursor:
        return [HoldRow(**dict(row)) for row in await cursor.fetchall()]
