"""Profile the members' pages in-process: where one page render spends its time (cProfile).

Usage: ``PYTHONPATH=. python scripts/profile_pages.py [--listings 2000] [--page search]
[--requests 200] [--top 30]``

Seeds a node like ``bench_web.py --members`` (signed listings, payments and bookings for
``member0``), builds the app with ``create_app`` (workers off), signs in through the login
form, then fetches one page ``--requests`` times under cProfile and prints the costliest
functions by their own time and by cumulative time. The client runs in the same process:
its frames (``aiohttp/client*``) are in the profile too; read the server's.

``--sql``: instead of the profile, every statement one page runs (in aiosqlite's thread, which
cProfile does not see), with its time per page and SQLite's ``EXPLAIN QUERY PLAN``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import aiosqlite
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT
from scripts import bench_web as bench


def _paths(page: str, ids: list[str], words: list[str], count: int) -> list[str]:
    rng = random.Random(7)
    if page == "search":
        return [f"/search?q={rng.choice(words)}" for _ in range(count)]
    if page == "listing":
        return [f"/listings/{rng.choice(ids)}" for _ in range(count)]
    return [{"home": "/", "wallet": "/wallet", "bookings": "/my/deals"}[page]] * count


async def _signed_in(client: TestClient[web.Request, web.Application]) -> None:
    page = await (await client.get("/login")).text()
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = await client.post("/login", allow_redirects=False, data={
        "csrf": token, "username": "member0", "password": "bench-password", "next": "/"})
    if response.status != 303:
        raise RuntimeError(f"login refused: {response.status}")


class _TimedCursor:
    """A ``sqlite3.Cursor`` whose statement and fetches are timed (``StatementLog``)."""

    def __init__(self, log: StatementLog, cursor: sqlite3.Cursor) -> None:
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "_sql", "")

    def execute(self, sql: str, parameters: Any = ()) -> _TimedCursor:
        """As ``sqlite3.Cursor.execute``, timed."""
        object.__setattr__(self, "_sql", sql)
        self._log.params[sql] = parameters
        self._timed(self._cursor.execute, sql, parameters, count=1)
        return self

    def executemany(self, sql: str, rows: Any) -> _TimedCursor:
        """As ``sqlite3.Cursor.executemany``, timed."""
        object.__setattr__(self, "_sql", sql)
        self._timed(self._cursor.executemany, sql, rows, count=1)
        return self

    def _timed(self, call: Any, *args: Any, count: int = 0) -> Any:
        began = time.perf_counter()
        try:
            return call(*args)
        finally:
            self._log.add(self._sql, time.perf_counter() - began, count)

    def fetchall(self) -> list[Any]:
        """As ``sqlite3.Cursor.fetchall``, timed."""
        return cast(list[Any], self._timed(self._cursor.fetchall))

    def fetchone(self) -> Any:
        """As ``sqlite3.Cursor.fetchone``, timed."""
        return self._timed(self._cursor.fetchone)

    def fetchmany(self, size: int = 1) -> list[Any]:
        """As ``sqlite3.Cursor.fetchmany``, timed."""
        return cast(list[Any], self._timed(self._cursor.fetchmany, size))

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cursor, name, value)  # row_factory


class _TimedConnection:
    """Stands for a ``sqlite3.Connection`` in its aiosqlite thread: every statement, whatever
    store path runs it (``query``, ``reads_together``, ``in_connection_thread`` work),
    is counted and timed, fetches included."""

    def __init__(self, log: StatementLog, conn: sqlite3.Connection) -> None:
        self._log, self._conn = log, conn

    def cursor(self) -> _TimedCursor:
        """As ``sqlite3.Connection.cursor``, timed."""
        return _TimedCursor(self._log, self._conn.cursor())

    def execute(self, sql: str, parameters: Any = ()) -> _TimedCursor:
        """As ``sqlite3.Connection.execute``, timed."""
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, rows: Any) -> _TimedCursor:
        """As ``sqlite3.Connection.executemany``, timed."""
        return self.cursor().executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class StatementLog:
    """Times every statement the store runs (a diagnostic, not for the node).

    The store reaches SQLite three ways (``store.db.query`` through aiosqlite,
    ``reads_together`` and ``in_connection_thread`` with the ``sqlite3`` connection in its
    thread): this wraps the ``sqlite3`` connection each aiosqlite connection holds, so all
    three are seen. Also counts the trips to the connections' threads (``_execute``)."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.params: dict[str, Any] = {}  # each statement's last parameters (aiosqlite: Any)
        self.trips = 0
        self.on = False

    def add(self, sql: str, seconds: float, count: int = 1) -> None:
        """Record ``seconds`` spent in ``sql`` (while on)."""
        if self.on:
            self.spent[sql] += seconds
            self.count[sql] += count

    def install(self, *connections: aiosqlite.Connection) -> None:
        """Wrap each connection's ``sqlite3`` connection, and count their thread trips."""
        for db in connections:
            db._connection = cast(sqlite3.Connection, _TimedConnection(self, db._conn))
        original = aiosqlite.Connection._execute
        profiler = self

        async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any
                          ) -> Any:
            if profiler.on:
                profiler.trips += 1
            return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

        aiosqlite.Connection._execute = counted  # type: ignore[method-assign]

    def report(self, database: Path, pages: int) -> None:
        """Statements by total time, per page, with their query plans."""
        db = sqlite3.connect(database)
        db.create_function("haversine_km", 4, lambda *_: 0.0)
        total = sum(self.spent.values()) / pages * 1000
        print(f"{sum(self.count.values()) / pages:.1f} statements per page, {total:.2f} ms, "
              f"{self.trips / pages:.1f} trips to a connection's thread per page")
        for sql, spent in sorted(self.spent.items(), key=lambda kv: -kv[1]):
            print(f"\n{spent / pages * 1000:7.3f} ms  {self.count[sql] / pages:4.1f}×  "
                  f"{' '.join(sql.split())[:400]}")
            try:
                plan = db.execute("EXPLAIN QUERY PLAN " + sql, self.params.get(sql, ())
                                  ).fetchall()
            except sqlite3.Error as exc:
                print(f"          (no plan: {exc})")
                continue
            for row in plan:
                print(f"          {row[3]}")
        db.close()


async def main_async(args: argparse.Namespace) -> None:
    statements = StatementLog()
    with tempfile.TemporaryDirectory(prefix="meshnode-profile-") as tmp:
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Banc d'essai",
                                  handle="bench", public_url="http://127.0.0.1:8080"))
        ids = await bench.seed(config, args.listings)
        await bench.seed_member_activity(config, ids)
        app = create_app(config, run_workers=False)
        async with TestClient(TestServer(app)) as client:
            await _signed_in(client)
            if args.sql:
                store = app[CONTEXT].store
                statements.install(store.reader, store._writer)
            headers = {"Accept": "text/html", "Accept-Language": "fr"}
            paths = _paths(args.page, ids, bench.WORDS, args.requests)
            for path in paths[:20]:  # templates compiled, caches warm
                await (await client.get(path, headers=headers)).read()
            profile = cProfile.Profile()
            began, cpu = time.perf_counter(), time.process_time()
            if args.sql:
                statements.on = True
            elif not args.plain:
                profile.enable()
            for path in paths:
                response = await client.get(path, headers=headers)
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status}")
            profile.disable()
            statements.on = False
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
        if args.sql:
            statements.report(config.database_path, len(paths))
            return
    if args.plain:
        print(f"{args.page}: {elapsed / len(paths) * 1000:.2f} ms per request, one at a time, "
              f"{cpu / len(paths) * 1000:.2f} ms of CPU (server, its database thread and the "
              "in-process client, not profiled)")
        return
    print(f"{args.page}: {len(paths)} requests, {elapsed / len(paths) * 1000:.2f} ms each "
          "(server and in-process client, profiled)")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
        print(out.getvalue())


def main() -> None:
    """Parse the flags and profile."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=2_000)
    parser.add_argument("--page", default="search",
                        choices=("home", "search", "listing", "wallet", "bookings"))
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--plain", action="store_true",
                        help="no profile: just the time per request, one at a time")
    parser.add_argument("--sql", action="store_true",
                        help="print each statement's time per page and its query plan")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
