"""The SQLite store: one writer connection (serialised by a lock) and one reader connection.

WAL lets the reader see committed data while a write is in progress. ``synchronous=FULL``
(the default) fsyncs the WAL at every commit, so a committed listing or ledger entry survives
``kill -9`` *and* a power cut; ``normal`` survives ``kill -9`` but a power cut may lose the
last commits (see README, "Storage and power cuts").
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import aiosqlite

from meshnode.protocol.geo import haversine_km
from meshnode.protocol.translatable import Text
from meshnode.store.cursors import BufferedRows, ReadingConnection, fetch_all
from meshnode.store.statements import forget_held

BUSY_TIMEOUT_MS = 10_000
# Page cache per connection, in KiB (https://www.sqlite.org/pragma.html#pragma_cache_size):
# SQLite's default is 2 MiB for each of our two connections, and a warm node kept all of it
# (issue 17: 4 MB of a Pi's budget). A community's database is tens of MB and the kernel's
# page cache, shared and reclaimable, holds it anyway: search medians did not move at 1 MiB
# (README, Benchmarks). Memory-mapped I/O stays off (SQLite's default): mapped pages would
# count in the node's RSS.
CACHE_KIB = 1024
# Each shutdown step (optimize, close reader, close writer) gets this long; a stuck step is
# logged and skipped so SIGTERM always ends the process (issue 12: a failing ``PRAGMA
# optimize`` on a full disk used to leave the connection threads running for ever).
CLOSE_STEP_SECONDS = 5.0
# SQLite primary result codes (https://www.sqlite.org/rescode.html): extended codes keep
# the primary one in their low byte.
SQLITE_IOERR = 10
SQLITE_FULL = 13
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
STORAGE_RETRY_AFTER = 120
# Tables whose in-memory caches reload when this process changed them rather than after its
# every commit (``Store.table_generation``): the inbox door's blocked-origins set and sender
# facts read ``peers`` only, and reloading them after each group commit of the inbox's own
# rows cost 5-8 % of a listing's CPU during an ingest burst (issue 17).
WATCHED_TABLES = ("peers",)

log = logging.getLogger(__name__)
T = TypeVar("T")


class CommitHook(Protocol):
    """Work that must commit atomically with whatever the current request writes."""

    async def before_commit(self, db: aiosqlite.Connection) -> None:
        """Called inside each write transaction of the context, just before COMMIT."""

    def after_commit(self) -> None:
        """Called after a successful COMMIT."""


# Per request (a ContextVar holds no state of its own: each task sees its own value). Set
# by web/idempotency.py so a creating request marks its Idempotency-Key in the transaction
# that creates the thing.
COMMIT_HOOK: contextvars.ContextVar[CommitHook | None] = contextvars.ContextVar(
    "meshnode_commit_hook", default=None)


class StoreError(Exception):
    """The database could not be opened or migrated."""


class StorageFullError(StoreError, sqlite3.OperationalError):
    """A write failed because the disk (or the database's I/O) is out of space.

    Nothing was stored: the transaction was rolled back. The same request succeeds once
    space returns, so callers answer "retry later" (507 + ``Retry-After``), not a 500.
    Still a ``sqlite3.OperationalError``, so every handler written for SQLite errors (the
    workers' loops, the inbox writer) keeps catching it.
    """

    code = "insufficient_storage"

    def __init__(self, detail: str, retry_after: int = STORAGE_RETRY_AFTER) -> None:
        super().__init__(Text("The node is out of disk space: this was not saved. Please try"
                              " again later."))
        self.detail = detail
        self.retry_after = retry_after
        self.fields: dict[str, str] = {}


def is_storage_full(error: BaseException) -> bool:
    """True for SQLite's "database or disk is full" and disk I/O errors, and ENOSPC/EDQUOT.

    An I/O error counts too: on a full disk SQLite often reports a failed write or fsync
    (``SQLITE_IOERR_WRITE``) rather than ``SQLITE_FULL``.
    """
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in (SQLITE_FULL, SQLITE_IOERR)
    return isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS


class StorageHealth:
    """Whether the last write failed for lack of space (the admin pages show a banner).

    Set by a failed commit, cleared by the next successful one; also throttles the log to
    one line per ``log_every`` seconds while the disk stays full. Owned by one ``Store``.
    """

    def __init__(self, log_every: float = 60.0) -> None:
        self.failing = False
        self.detail = ""
        self.failures = 0
        self._log_every = log_every
        self._last_logged: float | None = None
        self._unlogged = 0

    def record_failure(self, detail: str) -> None:
        """A write failed for lack of space."""
        self.failing = True
        self.detail = detail
        self.failures += 1
        self._unlogged += 1

    def record_success(self) -> None:
        """A write committed: space is back."""
        if self.failing:
            log.warning("storage: writes succeed again after %d refused", self.failures)
        self.failing = False
        self.failures = 0

    def log_due(self, now: float) -> bool:
        """Whether to write a log line now (at most one per ``log_every``; ``now`` monotonic)."""
        if self._last_logged is not None and now - self._last_logged < self._log_every:
            return False
        self._last_logged = now
        return True

    def take_unlogged(self) -> int:
        """Failures recorded since the last log line (and reset the count)."""
        count, self._unlogged = self._unlogged, 0
        return count


def migration_scripts() -> list[tuple[str, str]]:
    """All forward-only migrations as (name, sql), in name order (``NNNN_topic.sql``)."""
    # A plain path: ``importlib.resources.files`` imports zipfile (issue 17: idle memory).
    folder = Path(__file__).resolve().parent / "migrations"
    found = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded in ``schema_migrations``; return their names.

    Migrations are tracked by name rather than by a single version number, so features
    developed in parallel can add theirs without renumbering. ``user_version`` counts them.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT"
        " NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))) STRICT"
    )
    applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    known = {name for name, _ in migration_scripts()}
    unknown = applied - known
    if unknown:
        raise StoreError(
            f"database has migrations this meshnode does not know ({', '.join(sorted(unknown))});"
            " upgrade meshnode"
        )
    done: list[str] = []
    for name, sql in migration_scripts():
        if name in applied:
            continue
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (name) VALUES (?)", (name,))
            conn.execute(f"PRAGMA user_version = {len(applied) + len(done) + 1}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreError(f"migration {name} failed: {exc}") from exc
        done.append(name)
    return done


def _split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers contain semicolons)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


def _pragmas(synchronous: str) -> list[str]:
    mode = {"full": "FULL", "normal": "NORMAL"}[synchronous]
    return [
        f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
        "PRAGMA journal_mode = WAL",
        f"PRAGMA synchronous = {mode}",
        "PRAGMA foreign_keys = ON",
        f"PRAGMA cache_size = -{CACHE_KIB}",
    ]


def _configure(conn: sqlite3.Connection, synchronous: str) -> None:
    for pragma in _pragmas(synchronous):
        conn.execute(pragma)


def initialise_database(path: Path, synchronous: str = "full") -> list[str]:
    """Create or migrate the database file; return the migrations applied now."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        _configure(conn, synchronous)
        return apply_migrations(conn)
    finally:
        conn.close()


@asynccontextmanager
async def query(
    db: aiosqlite.Connection, sql: str, params: Sequence[object] | Mapping[str, object] = ()
) -> AsyncIterator[BufferedRows]:
    """Run a SELECT to completion in one step and hand back its rows.

    A statement left open across an ``await`` keeps its connection's read snapshot open, and
    every statement other coroutines start on that connection meanwhile shares the old
    snapshot: under load the reader would stop seeing new commits. Fetching everything in
    one call (``fetch_all``, on the connection's kept cursor) ends each read transaction
    before the next one starts.
    """
    yield BufferedRows(await in_connection_thread(db, lambda conn: fetch_all(conn, sql, params)))


def _shrink(conn: sqlite3.Connection) -> None:
    fetch_all(conn, "PRAGMA shrink_memory")


async def in_connection_thread(db: aiosqlite.Connection,
                               work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` with ``db``'s own ``sqlite3`` connection, in that connection's thread:
    several statements for one thread hop instead of one hop each (issue 17: a page's hops
    were a good part of its CPU). ``work`` must fetch everything it starts (no statement
    left open: see ``query``) and must not touch the event loop.
    """
    # aiosqlite has no public call for this; its private queue keeps statements in order.
    result: T = await db._execute(work, db._conn)  # type: ignore[no-untyped-call]
    return result


class _InThread:
    """Stands for an aiosqlite connection inside that connection's own thread: each
    statement runs at once on the ``sqlite3`` connection, so a store read (a coroutine
    that only awaits its statements) completes without ever suspending."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute_fetchall(self, sql: str, parameters: Sequence[object] |
                               Mapping[str, object] | None = None) -> list[sqlite3.Row]:
        """As ``aiosqlite.Connection.execute_fetchall``, run now."""
        return fetch_all(self._conn, sql, parameters or ())

    async def _execute(self, fn: Callable[..., T], *args: object) -> T:
        return fn(*args)  # in_connection_thread nested in a read: already in the thread


def _run_now(read: Awaitable[T]) -> T:
    """Drive a read that never suspends to its result, outside any event loop."""
    steps = read.__await__()
    try:
        next(steps)
    except StopIteration as done:
        result: T = done.value
        return result
    steps.close()
    raise RuntimeError("a read run in the connection's thread waited for something else")


async def reads_together(db: aiosqlite.Connection,
                         *reads: Callable[[aiosqlite.Connection], Awaitable[Any]]) -> list[Any]:
    """Run several store reads (``lambda db: store.query(db, ...)``) one after the other in
    ``db``'s thread, for ONE thread hop instead of one per statement (issue 17: each hop is
    a future, a wake-up of the thread, a wake-up of the loop and, under load, a turn of the
    whole event loop). Each read gets a stand-in connection whose statements run at once;
    the store functions themselves are unchanged. A read that awaits anything but its own
    statements is a programming error (RuntimeError)."""

    def work(conn: sqlite3.Connection) -> list[Any]:
        here = cast(aiosqlite.Connection, _InThread(conn))
        return [_run_now(read(here)) for read in reads]

    return await in_connection_thread(db, work)


@asynccontextmanager
async def savepoint(tx: aiosqlite.Connection, name: str) -> AsyncIterator[None]:
    """Run the block in a SQLite savepoint inside ``tx``: an exception raised by the block
    undoes only the block's writes (``ROLLBACK TO``) and propagates; the transaction goes on.

    https://sqlite.org/lang_savepoint.html
    """
    if not name.isidentifier():
        raise ValueError(f"savepoint name {name!r} is not an identifier")
    await tx.execute(f"SAVEPOINT {name}")
    try:
        yield
    except Exception:
        await tx.execute(f"ROLLBACK TO {name}")
        await tx.execute(f"RELEASE {name}")
        raise
    await tx.execute(f"RELEASE {name}")


class Store:
    """Async access to the node's database.

    Use ``async with store.transaction() as tx`` for writes (one at a time, ``BEGIN
    IMMEDIATE``) and ``store.reader`` for reads outside a transaction.
    """

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection,
                 watch: sqlite3.Connection | None = None) -> None:
        self._writer = writer
        self.reader = reader
        # Never used for reads of its own: ``PRAGMA data_version`` on it changes whenever any
        # other connection commits (ours or another process's), so caches can ask cheaply.
        self._watch = watch
        self._versions = 0
        # ``data_version`` as read during this turn of the event loop: (that loop, the
        # ``generation`` it was read at, the value), or None once the turn is over.
        self._version_now: tuple[asyncio.AbstractEventLoop, int, int] | None = None
        self._write_lock = asyncio.Lock()
        self.health = StorageHealth()
        # Bumped after every commit by this process: in-memory caches of table contents
        # compare it to know when to reload (writes by other processes need their own TTL).
        self.generation = 0
        # Filled by TEMP triggers on the writer (``_watch_tables``, in the writer's thread)
        # during a transaction: the watched tables it wrote; moved to ``_table_generations``
        # at its commit, dropped at a rollback.
        self._touched: set[str] = set()
        self._table_generations: dict[str, int] = {}
        self._watching = False

    @classmethod
    async def open(cls, path: Path, *, synchronous: str = "full") -> Store:
        """Open (creating and migrating if needed) the database at ``path``."""
        await asyncio.to_thread(initialise_database, path, synchronous)
        writer = await _connect(path, synchronous)
        try:
            reader = await _connect(path, synchronous)
        except BaseException:
            await writer.close()
            raise
        try:
            # Opening a local file: a short, one-off block of the loop at start-up.
            watch = sqlite3.connect(path, isolation_level=None)
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        store = cls(writer, reader, watch)
        try:
            await store._watch_tables()
        except BaseException:
            await store.close()
            raise
        return store

    async def _watch_tables(self) -> None:
        """TEMP triggers on the writer connection (so on this process's writes only, and
        nothing in the file for other processes to miss) note each watched table a statement
        changes (https://sqlite.org/lang_createtrigger.html: a TEMP trigger may watch a table
        of the main schema)."""
        await self._writer.create_function("meshnode_table_changed", 1, self._touched.add)
        for table in WATCHED_TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                await self._writer.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS meshnode_{table}_{event.lower()}"
                    f" AFTER {event} ON main.{table}"
                    f" BEGIN SELECT meshnode_table_changed('{table}'); END")
        self._watching = True

    def table_generation(self, table: str) -> int:
        """``generation`` as of this process's last commit that changed ``table`` (one of
        ``WATCHED_TABLES``): a cache of that table alone reloads when it moves, not after
        every commit. Without the triggers (a store not made by ``open``), ``generation``."""
        if not self._watching:
            return self.generation
        return self._table_generations.get(table, 0)

    def data_version(self) -> int:
        """A number that changes whenever anyone has committed to the database since the
        last turn of the event loop that called it (this process's writer, a CLI command, a
        restored backup); after this process's own commits, at once.

        ``PRAGMA data_version`` on a connection that never writes
        (https://sqlite.org/pragma.html#pragma_data_version): it reads the WAL index in
        shared memory, a few microseconds, so it runs on the event loop without a thread hop.
        Caches of table contents store it with what they read and reload when it differs.
        A failed check (or no watch connection) returns a new number: the caller reloads.

        Read once per turn of the event loop: a member's page asked it 8-10 times (each
        ``NodeContext.cached``), 5-10 % of the page's time on the loop (issue 17). Within a
        turn the loop runs nothing else, so the number is as if read at the turn's first
        call; this process's own commits (``generation``) are seen at once, and a page
        requested after another process committed is handled in a later turn.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a command's synchronous code): nothing to keep
            loop = None
        kept = self._version_now
        if kept is not None and kept[0] is loop and kept[1] == self.generation:
            return kept[2]
        value = self._read_data_version()
        if loop is not None:
            self._version_now = (loop, self.generation, value)
            loop.call_soon(self._end_of_turn)
        return value

    def _end_of_turn(self) -> None:
        self._version_now = None

    def _read_data_version(self) -> int:
        if self._watch is not None:
            try:
                row = self._watch.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error as exc:
                log.debug("store: data_version failed (%s); caches reload", exc)
            else:
                return int(row[0]) * 2  # even: cannot collide with the odd fallbacks below
        self._versions += 1
        return self._versions * 2 + 1

    async def shrink_memory(self) -> bool:
        """Have both connections free what SQLite can of their page caches (issue 17: an
        idle node gave back its Python caches but SQLite kept 3.6 MB; the next reads come
        from the kernel's page cache). https://sqlite.org/pragma.html#pragma_shrink_memory
        The writer's between two transactions. Whether it worked: a failure is logged and
        changes nothing else (the idle sweep that asks goes on)."""
        try:  # on each connection's kept cursor: an idle node makes no cursor (soak21)
            await in_connection_thread(self.reader, _shrink)
            async with self._write_lock:
                await in_connection_thread(self._writer, _shrink)
        except sqlite3.Error as exc:
            log.warning("store: shrink_memory failed (%s); the page caches stay", exc)
            return False
        return True

    async def forget_statements(self) -> int:
        """Have both connections finalize their cached prepared statements and drop their
        dead cursor references (``store/statements.py: forget_held``); how many statements.
        For the idle sweep: the next requests prepare what they run again. The writer's
        between two transactions."""
        forgotten = await in_connection_thread(self.reader, forget_held)
        async with self._write_lock:
            forgotten += await in_connection_thread(self._writer, forget_held)
        return forgotten

    async def close(self, step_seconds: float = CLOSE_STEP_SECONDS) -> None:
        """Optimize and close both connections, each step bounded by ``step_seconds``.

        Waits (within the bound) for a write in progress. A step that fails (``PRAGMA
        optimize`` on a full disk) or hangs is logged and skipped, and a connection that did
        not close is told to stop its thread: the process can exit whatever SQLite says.
        """
        locked = await _bounded("waiting for the last write", self._write_lock.acquire(),
                                step_seconds)
        try:
            await _bounded("PRAGMA optimize", self._writer.execute("PRAGMA optimize"),
                           step_seconds)
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            for name, conn in (("reader", self.reader), ("writer", self._writer)):
                if not await _bounded(f"closing the {name}", conn.close(), step_seconds):
                    conn.stop()  # the thread ends after its current statement
        finally:
            if locked:
                self._write_lock.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the block in one write transaction: committed on success, rolled back on error."""
        async with self._write_lock:
            if self._writer.in_transaction:
                # A task cancelled while awaiting BEGIN, COMMIT or ROLLBACK (client gone,
                # shutdown) lets the worker thread finish the statement after the lock is
                # released; without this every later write would fail with "cannot start a
                # transaction within a transaction". That task already saw an error.
                await self._writer.rollback()
            self._touched.clear()
            await self._begin()
            hook = COMMIT_HOOK.get()
            try:
                yield self._writer
                if hook is not None:
                    await hook.before_commit(self._writer)
                await self._writer.commit()
            except BaseException as exc:
                await self._rollback_after(exc)
                if isinstance(exc, Exception) and is_storage_full(exc):
                    self.health.record_failure(str(exc))
                    raise StorageFullError(str(exc)) from exc
                raise
            self.generation += 1
            for table in self._touched:
                self._table_generations[table] = self.generation
            self._touched.clear()
            self.health.record_success()
            if hook is not None:
                hook.after_commit()

    async def _rollback_after(self, error: BaseException) -> None:
        """Roll back after ``error``; a failing rollback is logged, ``error`` stays the one
        raised (SQLite has usually rolled back already when a write hit a full disk)."""
        try:
            await self._writer.rollback()
        except sqlite3.Error as exc:
            log.warning("store: rollback after %r failed: %s", error, exc)

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE. If this task is cancelled meanwhile, the statement still runs in
        the connection's thread; a ROLLBACK queued behind it (the thread runs them in order)
        undoes it before the lock is released, else the next writer's BEGIN would fail with
        "cannot start a transaction within a transaction"."""
        try:
            await self._writer.execute("BEGIN IMMEDIATE")
        except asyncio.CancelledError:
            await self._writer.rollback()
            raise

    async def backup_to(self, target: Path) -> None:
        """Write a consistent copy of the live database to ``target`` (SQLite backup API)."""
        dest = sqlite3.connect(target, check_same_thread=False)
        try:
            async with self._write_lock:
                await self._writer.backup(dest)
        finally:
            dest.close()


async def _bounded(step: str, action: Awaitable[object], seconds: float) -> bool:
    """Run one shutdown step; True if it finished, else log why and skip it."""
    try:
        async with asyncio.timeout(seconds):
            await action
    except TimeoutError:
        log.warning("store: %s took over %.0fs; skipped", step, seconds)
    except (sqlite3.Error, ValueError) as exc:  # ValueError: aiosqlite, already closed
        log.warning("store: %s failed (%s); skipped", step, exc)
    else:
        return True
    return False


async def _connect(path: Path, synchronous: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, factory=ReadingConnection)
    conn.row_factory = aiosqlite.Row
    for pragma in _pragmas(synchronous):
        await conn.execute(pragma)
    await conn.create_function("haversine_km", 4, haversine_km, deterministic=True)
    return conn
