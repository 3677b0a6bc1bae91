"""The delivery scheduler's two reads against a backlog (issue 17): what each wake-up costs.

Run: ``PYTHONPATH=. python scripts/bench_delivery_queue.py [--quick]``. A real store (SQLite
file, the node's migrations) with deliveries pending to a few hosts, all put off (as after a
429's Retry-After); for each backlog size it prints, per read, the milliseconds (median of
repeated reads on the store's reader) and SQLite's virtual-machine steps, for the node's
queries (``store.outbox.due_hosts`` and ``next_due_time``) and, as the same run's baseline,
the plain queries they replaced (which read every pending row's index entry). A hub after the
30-minute soak kept ~38,000 pending; a peer offline for days can leave more.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite

from meshnode.store import Store
from meshnode.store import outbox as oq
from meshnode.store.db import query

NOW = "2026-12-04T12:00:00Z"
LATER = "2026-12-04T13:00:00Z"
REPEATS = 30

Read = Callable[[aiosqlite.Connection], Awaitable[object]]


async def plain_due_hosts(db: aiosqlite.Connection) -> object:
    """The baseline: the due hosts asked directly."""
    async with query(db, "SELECT DISTINCT host FROM deliveries WHERE state = 'pending'"
                         " AND next_attempt_at <= ?", (NOW,)) as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def plain_next_due(db: aiosqlite.Connection) -> object:
    """The baseline: the earliest next attempt asked directly."""
    async with query(db, "SELECT min(next_attempt_at) FROM deliveries"
                         " WHERE state = 'pending'") as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None


async def fill(store: Store, hosts: int, per_host: int) -> None:
    """``per_host`` more pending deliveries to each of ``hosts`` hosts, due in an hour."""
    async with store.transaction() as tx:
        for number in range(hosts):
            host = f"http://127.0.0.1:{50000 + number}"
            seq = await oq.insert_activity(
                tx, activity_id=f"http://hub.test/activities/{host}/{time.monotonic_ns()}",
                actor="http://hub.test/group", activity_type="Create", object_id=None,
                public=True, body="{}", created_at=NOW)
            await tx.executemany(
                "INSERT INTO deliveries (outbox_seq, host, inbox, state, next_attempt_at,"
                " created_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                [(seq, host, f"{host}/inbox/{n}", LATER, NOW) for n in range(per_host)])


async def measure(store: Store, read: Read) -> tuple[float, int]:
    """Median milliseconds of ``read`` on the reader, and its SQLite VM steps."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    await store.reader.set_progress_handler(count, 1)
    await read(store.reader)
    await store.reader.set_progress_handler(None, 1)  # type: ignore[arg-type]
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        await read(store.reader)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), steps


async def main(quick: bool) -> None:
    """Print the figures for growing backlogs."""
    sizes = (1_000, 10_000) if quick else (1_000, 10_000, 40_000, 100_000)
    hosts = 10
    reads: list[tuple[str, Read]] = [
        ("due hosts", lambda db: oq.due_hosts(db, NOW)), ("due hosts, plain", plain_due_hosts),
        ("next attempt", oq.next_due_time), ("next attempt, plain", plain_next_due)]
    print(f"delivery scheduler's reads, {hosts} hosts, every delivery put off an hour"
          f" (median of {REPEATS} reads on the store's reader)")
    with tempfile.TemporaryDirectory() as folder:
        store = await Store.open(Path(folder) / "db.sqlite3")
        try:
            filled = 0
            for size in sizes:
                await fill(store, hosts, (size - filled) // hosts)
                filled = size
                figures = [(name, *await measure(store, read)) for name, read in reads]
                print(f"  {size:>7,} pending: " + "; ".join(
                    f"{name} {ms:.3f} ms ({steps:,} steps)" for name, ms, steps in figures))
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="backlogs of 1,000 and 10,000")
    asyncio.run(main(parser.parse_args().quick))
