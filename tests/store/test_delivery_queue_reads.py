"""The delivery scheduler's two reads (``due_hosts``, ``next_due_time``) cost the same
whatever the backlog (issue 17): a hub whose peers asked it to wait kept 38,000 deliveries
pending, and each of the scheduler's wake-ups read every one of their index entries (~1 MB of
SQLite's page cache, 6-7 ms), idle or not. Real SQLite, the store's own queries; the work is
counted in SQLite's virtual-machine steps (its progress handler), never timed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite

from meshnode.store import Store
from meshnode.store import outbox as oq

HOSTS = ("http://a.example", "http://b.example", "http://c.example")
NOW = "2026-12-04T12:00:00Z"
LATER = "2026-12-04T13:00:00Z"


async def _queue(store: Store, host: str, count: int, *, at: str, state: str = "pending",
                 tag: str = "") -> None:
    """``count`` deliveries to ``host`` of one outbox activity, next attempt ``at``."""
    async with store.transaction() as tx:
        seq = await oq.insert_activity(
            tx, activity_id=f"http://hub.example/activities/{host}{tag}{at}{state}",
            actor="http://hub.example/group", activity_type="Create", object_id=None,
            public=True, body="{}", created_at=NOW)
        assert seq is not None
        await tx.executemany(
            "INSERT INTO deliveries (outbox_seq, host, inbox, state, next_attempt_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(seq, host, f"{host}/inbox/{n}", state, at, NOW) for n in range(count)])


async def _steps(store: Store, read: Callable[[aiosqlite.Connection], Awaitable[object]]
                 ) -> tuple[int, object]:
    """What ``read`` returns on the store's reader, and SQLite's VM steps it took."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    await store.reader.set_progress_handler(count, 1)
    try:
        found = await read(store.reader)
    finally:
        await store.reader.set_progress_handler(None, 1)  # type: ignore[arg-type]
    return steps, found


async def test_delivery_queue_reads__find_the_due_hosts_and_the_next_attempt(
        tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        # Given an empty queue, then none is due and there is no next attempt
        assert await oq.due_hosts(store.reader, NOW) == []
        assert await oq.next_due_time(store.reader) is None
        # Given a host with one due and two later, one with later ones only, and one whose
        # deliveries are all finished (done, failed, left to the peer's catch-up)
        await _queue(store, HOSTS[0], 1, at="2026-12-04T11:59:59Z")
        await _queue(store, HOSTS[0], 2, at=LATER)
        await _queue(store, HOSTS[1], 3, at="2026-12-04T12:30:00Z")
        for state in ("done", "failed", "left"):
            await _queue(store, HOSTS[2], 2, at="2026-12-04T10:00:00Z", state=state)
        # Then only the first host is due, and the next attempt is its due one
        assert await oq.due_hosts(store.reader, NOW) == [HOSTS[0]]
        assert await oq.next_due_time(store.reader) == "2026-12-04T11:59:59Z"
        # And an hour on, both hosts with pending deliveries are due (never the finished one)
        assert await oq.due_hosts(store.reader, LATER) == [HOSTS[0], HOSTS[1]]
    finally:
        await store.close()


async def test_delivery_queue_reads__cost_the_same_for_a_backlog_ten_times_larger(
        tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        # Given three hosts with 300 deliveries each put off an hour (a 429's Retry-After)
        for host in HOSTS:
            await _queue(store, host, 300, at=LATER)

        async def due(db: aiosqlite.Connection) -> object:
            return await oq.due_hosts(db, NOW)

        small = [await _steps(store, due), await _steps(store, oq.next_due_time)]
        assert [found for _, found in small] == [[], LATER]
        # When each backlog grows tenfold
        for host in HOSTS:
            await _queue(store, host, 2700, at=LATER, tag="more")
        large = [await _steps(store, due), await _steps(store, oq.next_due_time)]
        # Then both reads answer the same, in as many SQLite steps as before (reading each
        # pending row's index entry took ~10 times as many)
        assert [found for _, found in large] == [[], LATER]
        for (steps_small, _), (steps_large, _) in zip(small, large, strict=True):
            assert 0 < steps_large <= steps_small + 10, (steps_small, steps_large)
    finally:
        await store.close()
