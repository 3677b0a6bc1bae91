"""Emptying a connection's cache of prepared statements and its dead references to closed
cursors (issue 17: an idle node's memory).

Python's ``sqlite3`` keeps up to ``cached_statements`` (128) prepared statements per
connection and, in 3.11 to 3.13, offers no call to empty them: after a soak the node's two
connections held 2.4-2.8 MB of them for ever (``sqlite3_db_status``'s
``SQLITE_DBSTATUS_STMT_USED``, https://sqlite.org/c3ref/c_dbstatus_options.html).
"""

from __future__ import annotations

import functools
import gc
import sqlite3
import weakref


def forget_statements(conn: sqlite3.Connection) -> int:
    """Empty ``conn``'s statement cache (each statement no cursor uses is finalized); how
    many it held. Run in ``conn``'s thread (``store.db.in_connection_thread``).

    CPython keeps the cache as a ``functools.lru_cache`` the connection holds and shows only
    to the garbage collector (``Modules/_sqlite/connection.c``: ``statement_cache``, visited
    by the connection's traverse function, 3.11 to 3.13); ``cached_statements`` only sizes
    it at ``connect``. Elsewhere nothing is found and nothing happens: 0."""
    for held in gc.get_referents(conn):
        if isinstance(held, functools._lru_cache_wrapper) and hasattr(held, "cache_clear"):
            count: int = held.cache_info().currsize
            held.cache_clear()
            return count
    return 0


# CPython 3.11 ``sqlite3`` prunes a connection's list of weak references to its cursors only
# every 200 cursors made (``Modules/_sqlite/cursor.c``: ``register_cursor``,
# ``_pysqlite_drop_unused_cursor_references``): up to 199 dead ones stay, made one per
# query during the load, each keeping a few of Python's 1 MiB object arenas in use (the
# soak: +266 weak references after it, named by ``scripts/bench_memory.py --trace``).


def drop_dead_cursor_references(conn: sqlite3.Connection) -> int:
    """Drop the weak references ``conn`` keeps to cursors (and blobs) already gone; how
    many. Run in ``conn``'s thread. A live cursor's reference stays: the connection still
    finds it (to reset its statement at rollback, to close its blobs)."""
    dropped = 0
    for held in gc.get_referents(conn):
        if isinstance(held, list) and held and all(
                type(ref) is weakref.ReferenceType for ref in held):
            alive = [ref for ref in held if ref() is not None]
            dropped += len(held) - len(alive)
            held[:] = alive
    return dropped


def forget_held(conn: sqlite3.Connection) -> int:
    """What an idle connection can give back: its cached statements
    (``forget_statements``) and its dead cursor references
    (``drop_dead_cursor_references``); how many statements it held. Run in ``conn``'s
    thread."""
    drop_dead_cursor_references(conn)
    return forget_statements(conn)
