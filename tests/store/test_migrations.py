"""Migrations from an empty database; FTS triggers; WAL and durability settings."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from meshnode.store import Store, StoreError
from meshnode.store.db import initialise_database, migration_scripts, query


def test_initialise_database__applies_every_migration_from_empty(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    applied = initialise_database(path)
    assert applied == [name for name, _ in migration_scripts()]
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"members", "listings", "listing_versions", "listings_fts", "api_tokens"} <= tables
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(applied)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_initialise_database__second_run_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    initialise_database(path)
    assert initialise_database(path) == []


def test_initialise_database__refuses_database_from_newer_meshnode(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    initialise_database(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations (name) VALUES ('9999_future.sql')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="upgrade meshnode"):
        initialise_database(path)


async def test_store__settings_are_wal_full_and_foreign_keys(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        async with store.reader.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone())[0] == 2  # FULL
        async with store.reader.execute("PRAGMA foreign_keys") as cursor:
            assert (await cursor.fetchone())[0] == 1
    finally:
        await store.close()


async def test_store__transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        async def failing_write() -> None:
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO node_meta (key, value) VALUES ('k', 'v')")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await failing_write()
        async with store.reader.execute("SELECT count(*) FROM node_meta") as cursor:
            assert (await cursor.fetchone())[0] == 0
    finally:
        await store.close()


async def test_store__reader_sees_commits_while_other_reads_overlap(tmp_path: Path) -> None:
    """Regression: statements left open on the shared reader connection kept one old
    snapshot alive under concurrent load, so a row committed by the writer stayed invisible.
    (With the busy readers written as ``async with store.reader.execute(...)`` this fails.)"""
    store = await Store.open(tmp_path / "db.sqlite3")
    stop = asyncio.Event()

    async def busy_reader() -> None:
        while not stop.is_set():
            async with query(store.reader, "SELECT count(*) FROM node_meta") as rows:
                await rows.fetchone()

    readers = [asyncio.create_task(busy_reader()) for _ in range(8)]
    try:
        for number in range(50):
            async with store.transaction() as tx:
                await tx.execute(
                    "INSERT INTO node_meta (key, value) VALUES (?, 'v')", (str(number),)
                )
            sql = "SELECT 1 FROM node_meta WHERE key = ?"
            async with query(store.reader, sql, (str(number),)) as rows:
                assert await rows.fetchone() is not None, number
    finally:
        stop.set()
        await asyncio.gather(*readers)
        await store.close()


def test_migration_0022__deliveries_keep_their_rows_and_may_be_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given deliveries written before migration 0022 (pending, done, failed)
    from meshnode.store import db as store_db
    path = tmp_path / "db.sqlite3"
    every = migration_scripts()
    left = "0022_relay21_left_to_catchup.sql"
    monkeypatch.setattr(store_db, "migration_scripts",
                        lambda: [(name, sql) for name, sql in every if name < left])
    initialise_database(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO outbox_activities (seq, activity_id, actor, type, public, body,"
                 " created_at) VALUES (7, 'http://a.example/a/1', 'http://a.example/g',"
                 " 'Create', 1, '{}', '2026-12-04T10:00:00Z')")
    rows = [(n, 7, "http://b.example", f"http://b.example/inbox{n}", state, n,
             "2026-12-04T11:00:00Z", 429 if state == "pending" else None, None,
             "2026-12-04T10:00:00Z", None)
            for n, state in ((3, "pending"), (5, "done"), (9, "failed"))]
    conn.executemany("INSERT INTO deliveries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.close()
    # When the migration runs
    monkeypatch.setattr(store_db, "migration_scripts", lambda: every)
    assert left in initialise_database(path)
    # Then every row is there as it was, with its id, and the due index with it
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall() == rows
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                        " AND tbl_name = 'deliveries' AND name = 'deliveries_due'").fetchone()
    # And a delivery may now be left to a peer's catch-up, but not in a made-up state
    conn.execute("UPDATE deliveries SET state = 'left' WHERE id = 3")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE deliveries SET state = 'lost' WHERE id = 3")
    conn.close()
