"""Emptying a connection's cache of prepared statements (issue 17: an idle node's memory).

Python's ``sqlite3`` keeps up to ``cached_statements`` (128) prepared statements per
connection and, in 3.11 to 3.13, offers no call to empty them: after a soak the node's two
connections held 2.4-2.8 MB of them for ever (``sqlite3_db_status``'s
``SQLITE_DBSTATUS_STMT_USED``, https://sqlite.org/c3ref/c_dbstatus_options.html).
"""

from __future__ import annotations

import functools
import gc
import sqlite3

_LRU_WRAPPER = type(functools.lru_cache(maxsize=1)(len))


def forget_statements(conn: sqlite3.Connection) -> int:
    """Empty ``conn``'s statement cache (each statement no cursor uses is finalized); how
    many it held. Run in ``conn``'s thread (``store.db.in_connection_thread``).

    CPython keeps the cache as a ``functools.lru_cache`` the connection holds and shows only
    to the garbage collector (``Modules/_sqlite/connection.c``: ``statement_cache``, visited
    by the connection's traverse function, 3.11 to 3.13); ``cached_statements`` only sizes
    it at ``connect``. Elsewhere nothing is found and nothing happens: 0."""
    for held in gc.get_referents(conn):
        if isinstance(held, _LRU_WRAPPER) and hasattr(held, "cache_clear"):
            count: int = held.cache_info().currsize
            held.cache_clear()
            return count
    return 0
