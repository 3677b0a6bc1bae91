"""``store.db.reads_together``: several store reads in one trip to the reader's thread."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiosqlite
import pytest

from meshnode.services.context import NodeContext
from meshnode.store import members as member_q
from meshnode.store.db import query, reads_together
from meshnode.store.ledger import list_requests


async def _setting(db: aiosqlite.Connection, key: str) -> str | None:
    async with query(db, "SELECT value FROM community_settings WHERE key = ?", (key,)) as rows:
        row = await rows.fetchone()
    return None if row is None else str(row[0])


async def test_reads_together__runs_every_read_in_one_thread_hop(
        ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a stored setting and a reader whose trips to its thread are counted
    async with ctx.store.transaction() as tx:
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('k', 'v')")
    reader = ctx.store.reader
    trips = 0
    original = reader._execute
    this_test = asyncio.current_task()

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        # the node's background work may read meanwhile: only this test's trips count
        trips += asyncio.current_task() is this_test
        return await original(fn, *args, **kwargs)

    monkeypatch.setattr(reader, "_execute", counted)
    # When three unchanged store reads run together
    found = await reads_together(
        reader, lambda db: _setting(db, "k"), lambda db: _setting(db, "absent"),
        lambda db: list_requests(db, "nobody", status="pending", limit=10))
    # Then each has its own result, in order, for one trip
    assert found == ["v", None, []]
    assert trips == 1


async def test_reads_together__a_read_that_waits_for_something_else_is_refused(
        ctx: NodeContext) -> None:
    # Given a "read" that awaits the event loop (it cannot run in the database's thread)
    async def waits(db: aiosqlite.Connection) -> None:
        await asyncio.sleep(0)

    # When it runs with others, Then it is refused plainly, and the reader still works
    with pytest.raises(RuntimeError, match="waited for something else"):
        await reads_together(ctx.store.reader, lambda db: _setting(db, "k"), waits)
    assert await member_q.get_member(ctx.store.reader, 10**9) is None


async def test_reads_together__a_statement_error_reaches_the_caller(ctx: NodeContext) -> None:
    # Given a read whose statement SQLite refuses
    async def broken(db: aiosqlite.Connection) -> Any:
        return await db.execute_fetchall("SELECT * FROM no_such_table")

    # When it runs together with a good read, Then the caller gets SQLite's error
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        await reads_together(ctx.store.reader, lambda db: _setting(db, "k"), broken)
