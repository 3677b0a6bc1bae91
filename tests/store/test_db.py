"""The store's write transaction survives a transaction left open by a cancelled task; its
``data_version`` changes after any commit."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from meshnode.services.context import NodeContext
from meshnode.store import federation as fq
from meshnode.store.db import Store, query, reads_together
from meshnode.store.statements import drop_dead_cursor_references, forget_statements


async def test_transaction__recovers_from_a_transaction_left_open(ctx: NodeContext) -> None:
    store = ctx.store
    # Given a BEGIN that completed in the worker thread after its task was cancelled
    # (the lock released with the transaction still open, as a cancelled task leaves it)
    writer = store._writer
    async with store._write_lock:
        await writer.execute("BEGIN IMMEDIATE")
        await writer.execute("INSERT INTO community_settings (key, value) VALUES ('stale', 'x')")
    assert writer.in_transaction
    # When the next write starts, Then it works and the stale, unfinished write is gone
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('fresh', 'y')")
    sql = "SELECT key FROM community_settings WHERE key IN ('stale', 'fresh')"
    async with query(store.reader, sql) as rows:
        keys = [row[0] for row in await rows.fetchall()]
    assert keys == ["fresh"]


async def test_transaction__writer_cancelled_during_begin_leaves_none_open(
        ctx: NodeContext) -> None:
    # Given writers cancelled at once while their BEGIN is on its way to the worker thread
    store = ctx.store

    async def write(key: str) -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO community_settings (key, value) VALUES (?, 'x')",
                             (key,))

    for attempt in range(20):
        task = asyncio.create_task(write(f"cancelled{attempt}"))
        for _ in range(attempt % 4):
            await asyncio.sleep(0)
        task.cancel()
        # When the next writer starts right away, Then it commits (no "transaction within a
        # transaction") and the cancelled write left nothing behind
        await write(f"next{attempt}")
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sql = "SELECT count(*) FROM community_settings WHERE key LIKE 'next%'"
    async with query(store.reader, sql) as rows:
        row = await rows.fetchone()
    assert row is not None
    assert row[0] == 20


async def test_store__data_version_changes_after_any_commit(tmp_path: Path) -> None:
    # Given a store, and a second connection to the same file (another process)
    store = await Store.open(tmp_path / "v.db")
    try:
        before = store.data_version()
        assert store.data_version() == before  # nothing committed: unchanged
        # When this store commits, then when the other connection commits
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO community_settings (key, value) VALUES ('a', '1')")
        after_ours = store.data_version()
        other = sqlite3.connect(tmp_path / "v.db", isolation_level=None)
        other.execute("INSERT INTO community_settings (key, value) VALUES ('b', '2')")
        other.close()
        await asyncio.sleep(0)  # the next turn of the event loop (a page requested after it)
        after_theirs = store.data_version()
        # Then each commit gave a new number
        assert len({before, after_ours, after_theirs}) == 3
    finally:
        await store.close()


async def test_store__data_version_is_read_once_per_turn_of_the_event_loop(
        tmp_path: Path) -> None:
    # Given a store whose number was read in this turn of the event loop
    store = await Store.open(tmp_path / "v.db")
    other = sqlite3.connect(tmp_path / "v.db", isolation_level=None)
    try:
        before = store.data_version()
        # When another process commits within the same turn
        other.execute("INSERT INTO community_settings (key, value) VALUES ('b', '2')")
        same_turn = store.data_version()
        # and then this process's own commit is counted (``transaction`` does so) in it
        store.generation += 1
        after_ours = store.data_version()
        # and another process commits again, seen in the next turn
        other.execute("INSERT INTO community_settings (key, value) VALUES ('c', '3')")
        await asyncio.sleep(0)
        next_turn = store.data_version()
        # Then the turn kept its first number until this process committed, which read it
        # again at once; the next turn read it afresh
        assert same_turn == before
        assert after_ours != before
        assert next_turn not in (before, after_ours)
    finally:
        other.close()
        await store.close()


async def test_store__table_generation_moves_only_with_a_commit_changing_that_table(
        tmp_path: Path) -> None:
    # Given a store that has committed once to a table nobody watches
    store = await Store.open(tmp_path / "t.db")
    try:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO community_settings (key, value) VALUES ('a', '1')")
        unchanged = store.table_generation("peers")
        assert unchanged < store.generation
        # When a transaction writing peers is rolled back
        with contextlib.suppress(RuntimeError):
            async with store.transaction() as tx:
                await fq.insert_peer(tx, origin="http://127.0.0.1:9", requested="x",
                                     out_state="resolving", now="2026-12-03T00:00:00Z")
                raise RuntimeError("rolled back")
        # Then the peers table's generation did not move
        assert store.table_generation("peers") == unchanged
        # When a commit adds a peer, then one changes it, then one deletes it
        for write in (
            lambda tx: fq.insert_peer(tx, origin="http://127.0.0.1:9", requested="x",
                                      out_state="resolving", now="2026-12-03T00:00:00Z"),
            lambda tx: fq.update_peer(tx, "http://127.0.0.1:9", "2026-12-03T00:00:01Z",
                                      blocked=1),
            lambda tx: fq.delete_peer(tx, "http://127.0.0.1:9"),
        ):
            async with store.transaction() as tx:
                await write(tx)
            # Then each moves it to the commit's generation
            assert store.table_generation("peers") == store.generation
        # And a later commit elsewhere leaves it
        moved = store.table_generation("peers")
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO community_settings (key, value) VALUES ('b', '2')")
        assert store.table_generation("peers") == moved < store.generation
    finally:
        await store.close()


async def test_store__shrink_memory_gives_back_both_page_caches(tmp_path: Path) -> None:
    # Given SQLite's own memory counter (the library Python's sqlite3 module runs on)
    try:
        sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    except (OSError, AttributeError):
        pytest.skip("no shared SQLite library to ask for its memory")
    # And a store whose writer and reader both filled their page caches (4 MB of rows)
    store = await Store.open(tmp_path / "shrink.sqlite3")
    try:
        async with store.transaction() as tx:
            await tx.execute("CREATE TABLE bulk (id INTEGER PRIMARY KEY, body TEXT)")
            await tx.executemany("INSERT INTO bulk (body) VALUES (?)",
                                 [("x" * 200,) for _ in range(20_000)])
        await store.reader.execute_fetchall("SELECT count(*), max(body) FROM bulk")
        warm = sqlite.sqlite3_memory_used()
        # When the idle sweep asks it to shrink
        assert await store.shrink_memory() is True
        # Then SQLite gave back at least the two 1 MiB page caches' worth, and still reads
        assert warm - sqlite.sqlite3_memory_used() > 1.5 * 2**20
        assert (await store.reader.execute_fetchall("SELECT count(*) FROM bulk"))[0][0] == 20_000
    finally:
        await store.close()


async def test_store__forget_statements_empties_both_statement_caches(tmp_path: Path) -> None:
    # Given a store whose reader and writer each prepared distinct statements
    store = await Store.open(tmp_path / "statements.sqlite3")
    try:
        async with store.transaction() as tx:
            for number in range(20):
                await tx.execute(f"SELECT {number} + 1")
        for number in range(30):
            await store.reader.execute_fetchall(f"SELECT {number} + 2")
        # When the idle sweep asks them to forget their statements
        forgotten = await store.forget_statements()
        # Then both caches were emptied (the writer's held the 20 and its own set-up ones)
        assert forgotten >= 50
        # And neither connection keeps references to its closed cursors
        for conn in (store.reader._conn, store._writer._conn):
            assert drop_dead_cursor_references(conn) == 0
        assert await store.forget_statements() == 0
        # And both connections still read and write
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO community_settings (key, value) VALUES ('f', '1')")
        rows = await store.reader.execute_fetchall(
            "SELECT value FROM community_settings WHERE key = 'f'")
        assert [tuple(row) for row in rows] == [("1",)]
    finally:
        await store.close()


def test_forget_statements__a_cursor_in_use_keeps_its_statement() -> None:
    # Given a connection with a statement half-way through its rows
    conn = sqlite3.connect(":memory:")
    try:
        cursor = conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                              " WHERE i < 5) SELECT i FROM n")
        assert cursor.fetchone() == (1,)
        # When its cache is emptied
        assert forget_statements(conn) >= 1
        # Then the cursor still reads the rest of its rows
        assert [row[0] for row in cursor.fetchall()] == [2, 3, 4, 5]
    finally:
        conn.close()


def test_drop_dead_cursor_references__closed_cursors_go_live_ones_stay() -> None:
    # Given a connection that ran 150 queries (a cursor each, all gone) and one still open
    conn = sqlite3.connect(":memory:")
    try:
        for number in range(150):
            conn.execute("SELECT ?", (number,)).fetchall()
        cursor = conn.execute("SELECT 1 UNION ALL SELECT 2")
        assert cursor.fetchone() == (1,)
        gc.collect()
        # When its dead cursor references are dropped, Then there were at least the 150
        assert drop_dead_cursor_references(conn) >= 150
        assert drop_dead_cursor_references(conn) == 0
        # And the open cursor still reads, and a rollback still resets it
        assert cursor.fetchone() == (2,)
        conn.execute("SELECT 3")
        conn.rollback()
        assert conn.execute("SELECT 4").fetchone() == (4,)
    finally:
        conn.close()


async def test_query__reads_leave_no_cursor_references_behind(tmp_path: Path) -> None:
    # Given a store whose connections kept no references to old cursors
    store = await Store.open(tmp_path / "cursors.sqlite3")
    try:
        async with query(store.reader, "SELECT 1"):
            pass
        drop_dead_cursor_references(store.reader._conn)
        # When 150 reads run (an idle node's workers: a few a second), one at a time and
        # several in one thread trip
        for n in range(100):
            async with query(store.reader, "SELECT ?", (n,)) as rows:
                assert [tuple(row) for row in await rows.fetchall()] == [(n,)]
        for n in range(10):
            got = await reads_together(
                store.reader, *[lambda db, m=m: _one(db, m) for m in range(n * 5, n * 5 + 5)])
            assert got == list(range(n * 5, n * 5 + 5))
        # Then they left no dead cursor references (a new cursor each left one, for up to 200
        # reads, made wherever the allocator put it: issue 17, the soak's arenas)
        assert drop_dead_cursor_references(store.reader._conn) == 0
    finally:
        await store.close()


async def _one(db: aiosqlite.Connection, n: int) -> int:
    async with query(db, "SELECT ?", (n,)) as rows:
        row = await rows.fetchone()
    assert row is not None
    return int(row[0])


async def test_query__a_failed_read_leaves_no_snapshot_open(tmp_path: Path) -> None:
    # Given a store with a table of 3 rows
    store = await Store.open(tmp_path / "failed.sqlite3")
    try:
        async with store.transaction() as tx:
            await tx.execute("CREATE TABLE t (n INTEGER)")
            await tx.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (-2**63,)])
        # When a read fails half-way through its rows (abs overflows on the third row)
        with pytest.raises(sqlite3.OperationalError, match="overflow"):
            async with query(store.reader, "SELECT abs(n) FROM t ORDER BY rowid"):
                pass
        # Then the reader holds no read transaction, so it sees a later commit
        assert not store.reader.in_transaction
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (4)")
        async with query(store.reader, "SELECT count(*) FROM t") as rows:
            assert [tuple(row) for row in await rows.fetchall()] == [(4,)]
    finally:
        await store.close()
