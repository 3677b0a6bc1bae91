"""Reading rows on the store's ``sqlite3`` connections, in their own thread: whole reads on
one kept cursor (``ReadingConnection``), and the rows handed back to coroutines
(``BufferedRows``, what ``store.db.query`` yields)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import aiosqlite

Params = Sequence[object] | Mapping[str, object]


class ReadingConnection(sqlite3.Connection):
    """The store's ``sqlite3`` connections (``factory=``): whole reads (``fetch_all``) run
    on one cursor the connection keeps instead of a new cursor each.

    CPython 3.11's ``sqlite3`` keeps a weak reference to every cursor a connection made and
    prunes the dead ones only every 200 cursors (``statements.drop_dead_cursor_references``),
    so each read left one behind for up to 200 reads. An idle node's workers read a few times
    a second, so after the idle sweep those references kept being made, and kept for a
    minute, in the partly used pools a load left: they were the largest group of residents
    of the Python arenas the soak added (issue 17: ``scripts/memory_probe.py``, session 13).
    Only ever used in the connection's own thread (aiosqlite's, or ``in_connection_thread``),
    one call at a time, and each call fetches every row, so nothing shares a half-read
    cursor."""

    _reads: sqlite3.Cursor | None = None

    def fetch_all(self, sql: str, params: Params = ()) -> list[Any]:
        """Every row of ``sql`` (the statement run to completion), on the kept cursor."""
        cursor = self._reads
        if cursor is None:  # made at the first read: the row factory is set by then
            cursor = self._reads = self.cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        except BaseException:
            self._reads = None  # a statement left half-read would hold its read snapshot
            cursor.close()
            raise


def fetch_all(conn: sqlite3.Connection, sql: str, params: Params = ()) -> list[Any]:
    """Every row of ``sql`` on ``conn``, in ``conn``'s thread: on its kept cursor when it is
    the store's (``ReadingConnection``), else on a new one."""
    if isinstance(conn, ReadingConnection):
        return conn.fetch_all(sql, params)
    return conn.execute(sql, params).fetchall()


class BufferedRows:
    """Rows already fetched by ``query``; offers the cursor methods our queries use."""

    def __init__(self, rows: Iterable[aiosqlite.Row]) -> None:
        self._rows = list(rows)

    async def fetchone(self) -> aiosqlite.Row | None:
        """The first row, or None."""
        return self._rows[0] if self._rows else None

    async def fetchall(self) -> list[aiosqlite.Row]:
        """Every row."""
        return self._rows

    async def __aiter__(self) -> AsyncIterator[aiosqlite.Row]:
        for row in self._rows:
            yield row
