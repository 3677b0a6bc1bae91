"""Whole-file database operations for ``meshnode backup`` and ``restore`` (no app running
needed): an integrity check and copies through SQLite's online backup API.

https://sqlite.org/backup.html
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from meshnode.store.db import BUSY_TIMEOUT_MS, StoreError, migration_scripts


def check_database_file(path: Path) -> None:
    """Integrity-check a database file made by a compatible meshnode (``StoreError`` if not)."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            names = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a meshnode database: {exc}") from exc
    if result != "ok":
        raise StoreError(f"{path} failed its integrity check: {result}")
    unknown = names - {name for name, _ in migration_scripts()}
    if unknown:
        raise StoreError(f"{path} comes from a newer meshnode (migrations {sorted(unknown)})")


def copy_live_database(source: Path, target: Path) -> None:
    """Copy a database that a running node may be writing into ``target`` (an existing,
    empty file), consistent as of one moment; the copy is a standalone rollback-journal file."""
    conn = sqlite3.connect(source)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        dest = sqlite3.connect(target)
        try:
            conn.backup(dest)
            dest.execute("PRAGMA journal_mode = DELETE")
        finally:
            dest.close()
    finally:
        conn.close()


def overwrite_database(source: Path, target: Path) -> None:
    """Replace the contents of the database ``target`` by those of ``source`` (read-only)."""
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dest = sqlite3.connect(target)
        try:
            conn.backup(dest)
        finally:
            dest.close()
    finally:
        conn.close()
