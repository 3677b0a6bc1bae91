"""Queries on ``idempotency_keys``: claim a key, record the answer, replay it, prune.

The web layer (``web/idempotency.py``) decides what to do with a claim; this module only
reads and writes rows. ``CommitMark`` marks a claimed key 'committed' inside the request's
first write transaction, so a crash can never leave a committed creation with a free key.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from meshnode.store.db import Store, query


@dataclass(frozen=True)
class KeyRow:
    """A stored key: what request it belongs to, and its answer once recorded."""

    request_hash: str
    state: str
    boot: str
    status: int | None
    headers: str | None
    body: bytes | None
    created_at: str


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim`: ``row`` is None when the key is now ours (new)."""

    row: KeyRow | None

    @property
    def is_new(self) -> bool:
        """The key was free (or expired, or left pending by a dead process): run the request."""
        return self.row is None


async def claim(
    store: Store, *, owner: str, key: str, request_hash: str, boot: str, now: str,
    expired_before: str,
) -> Claim:
    """Take the key for this request, or return the row already holding it.

    A row older than ``expired_before`` is dropped first. A 'pending' row of another ``boot``
    was left by a process that died before its request committed anything: it is taken over.
    """
    async with store.transaction() as db:
        await db.execute(
            "DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND (created_at < ?"
            " OR (state = 'pending' AND boot != ?))", (owner, key, expired_before, boot))
        existing = await _get(db, owner, key)
        if existing is not None:
            return Claim(existing)
        await db.execute(
            "INSERT INTO idempotency_keys (owner, key, request_hash, state, boot, created_at)"
            " VALUES (?, ?, ?, 'pending', ?, ?)", (owner, key, request_hash, boot, now))
    return Claim(None)


async def _get(db: aiosqlite.Connection, owner: str, key: str) -> KeyRow | None:
    async with query(db, "SELECT request_hash, state, boot, status, headers, body, created_at"
                         " FROM idempotency_keys WHERE owner = ? AND key = ?",
                     (owner, key)) as rows:
        row = await rows.fetchone()
    if row is None:
        return None
    return KeyRow(request_hash=row["request_hash"], state=row["state"], boot=row["boot"],
                  status=row["status"], headers=row["headers"], body=row["body"],
                  created_at=row["created_at"])


async def record_answer(
    store: Store, *, owner: str, key: str, status: int, headers: str, body: bytes
) -> None:
    """Store the answer to replay for this key."""
    async with store.transaction() as db:
        await db.execute(
            "UPDATE idempotency_keys SET state = 'done', status = ?, headers = ?, body = ?"
            " WHERE owner = ? AND key = ?", (status, headers, body, owner, key))


async def release(store: Store, *, owner: str, key: str) -> None:
    """Free a key whose request stored nothing (it failed before any commit)."""
    async with store.transaction() as db:
        await db.execute("DELETE FROM idempotency_keys WHERE owner = ? AND key = ?"
                         " AND state = 'pending'", (owner, key))


async def prune(store: Store, *, expired_before: str) -> int:
    """Delete keys created before ``expired_before``; how many."""
    async with store.transaction() as db:
        cursor = await db.execute("DELETE FROM idempotency_keys WHERE created_at < ?",
                                  (expired_before,))
        return cursor.rowcount


@dataclass
class CommitMark:
    """A ``Store`` commit hook: marks the claimed key 'committed' in the same transaction
    as the request's first write, and remembers that something was committed."""

    owner: str
    key: str
    committed: bool = False

    async def before_commit(self, db: aiosqlite.Connection) -> None:
        """Runs inside the transaction, just before COMMIT."""
        if not self.committed:
            await db.execute("UPDATE idempotency_keys SET state = 'committed'"
                             " WHERE owner = ? AND key = ? AND state = 'pending'",
                             (self.owner, self.key))

    def after_commit(self) -> None:
        """Runs once COMMIT succeeded."""
        self.committed = True
