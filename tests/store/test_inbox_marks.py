"""Inbox marks in their own table (migration 0020_ingest18_inbox_marks): what is unprocessed,
what ``inbox_activities`` shows, pruning, and the migration of an existing inbox."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from meshnode.store import Store
from meshnode.store import db as store_db
from meshnode.store import federation as fq

MARKS = "0020_ingest18_inbox_marks.sql"


def _row(n: int) -> dict[str, str]:
    return {"activity_id": f"http://a.example/activities/{n}", "actor": "http://a.example/u/a",
            "activity_type": "Create", "body": f'{{"n":{n}}}',
            "received_at": "2026-11-26T10:00:00Z"}


async def _outcomes(store: Store) -> list[tuple[int, str | None, str | None]]:
    async with store.reader.execute("SELECT seq, processed_at, outcome FROM inbox_activities"
                                    " ORDER BY seq") as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def test_inbox_marks__marked_rows_leave_the_queue_and_show_in_inbox_activities(
        tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        # Given three stored activities, the first two processed
        async with store.transaction() as tx:
            assert await fq.insert_inbox_batch(tx, [_row(n) for n in range(3)]) == 3
        first = await fq.unprocessed(store.reader, 2)
        async with store.transaction() as tx:
            await fq.mark_processed_many(tx, [(row["seq"], "stored") for row in first],
                                         "2026-11-26T10:00:05Z")
        # Then only the third waits, and the view shows each one's outcome
        assert [row["activity_id"] for row in await fq.unprocessed(store.reader, 10)] == [
            "http://a.example/activities/2"]
        assert await fq.count_unprocessed(store.reader) == 1
        assert [outcome for _, _, outcome in await _outcomes(store)] == [
            "stored", "stored", None]
    finally:
        await store.close()


async def test_inbox_marks__prune_takes_marks_with_rows_and_new_rows_wait(
        tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        # Given two activities processed long ago
        async with store.transaction() as tx:
            await fq.insert_inbox_batch(tx, [_row(n) for n in range(2)])
        rows = await fq.unprocessed(store.reader, 10)
        async with store.transaction() as tx:
            await fq.mark_processed_many(tx, [(row["seq"], "stored") for row in rows],
                                         "2026-01-01T00:00:00Z")
        # When both are pruned
        async with store.transaction() as tx:
            assert await fq.prune_inbox(tx, "2026-02-01T00:00:00Z", 10) == 2
        async with store.reader.execute("SELECT count(*) FROM inbox_marks") as cursor:
            assert (await cursor.fetchone())[0] == 0
        # Then an activity stored afterwards (its seq may be one used before) waits
        async with store.transaction() as tx:
            await fq.insert_inbox_batch(tx, [_row(9)])
        assert [row["activity_id"] for row in await fq.unprocessed(store.reader, 10)] == [
            "http://a.example/activities/9"]
    finally:
        await store.close()


def test_inbox_marks__migration_keeps_the_processed_prefix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an inbox before the migration: seq 1-2 processed, 3 waiting, 4 processed above it
    path = tmp_path / "db.sqlite3"
    every = store_db.migration_scripts()
    monkeypatch.setattr(store_db, "migration_scripts",
                        lambda: [(name, sql) for name, sql in every if name < MARKS])
    store_db.initialise_database(path)
    conn = sqlite3.connect(path, isolation_level=None)
    for seq, processed_at, outcome in ((1, "2026-11-26T10:00:01Z", "stored"),
                                       (2, "2026-11-26T10:00:01Z", None),
                                       (3, None, None),
                                       (4, "2026-11-26T10:00:02Z", "ignored")):
        conn.execute("INSERT INTO inbox_activities (seq, activity_id, actor, type, body,"
                     " received_at, processed_at, outcome, origin, size)"
                     " VALUES (?, ?, 'http://a.example/u/a', 'Create', '{}',"
                     " '2026-11-26T10:00:00Z', ?, ?, 'http://a.example', 2)",
                     (seq, f"http://a.example/activities/{seq}", processed_at, outcome))
    conn.close()
    # When the migration runs
    monkeypatch.setattr(store_db, "migration_scripts", lambda: every)
    assert store_db.initialise_database(path)[:1] == [MARKS]  # and any later ones
    # Then the processed prefix keeps its marks; the rows from the first unprocessed one on
    # wait (processing one again has no further effect)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT seq, processed_at, outcome FROM inbox_activities"
                        " ORDER BY seq").fetchall() == [
        (1, "2026-11-26T10:00:01Z", "stored"), (2, "2026-11-26T10:00:01Z", ""),
        (3, None, None), (4, None, None)]
    assert [row[0] for row in conn.execute(
        "SELECT seq FROM inbox_rows WHERE seq > (SELECT coalesce(max(seq), 0)"
        " FROM inbox_marks) ORDER BY seq")] == [3, 4]
    conn.close()
