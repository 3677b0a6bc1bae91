"""A background worker that hits a full disk keeps running and logs one line, not a trace.

Given a worker loop whose step fails with ``StorageFullError`` (what the store raises when
SQLite reports a full disk), When it runs, Then the loop survives to its next round, logs one
short line a minute, and the error is still a ``sqlite3.Error`` for handlers written for those
(the inbox writer resolves its waiting requests with it instead of leaving them hanging).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from meshnode.federation.runtime import _loop
from meshnode.store import StorageFullError, StorageHealth


async def test_worker_loop__survives_a_full_disk_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health = StorageHealth()
    calls = 0
    recovered = asyncio.Event()

    async def step() -> int:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise StorageFullError("database or disk is full")
        recovered.set()
        return 0

    with caplog.at_level(logging.WARNING, logger="meshnode.federation.runtime"):
        task = asyncio.create_task(_loop("test", step, None, 0.0, health=health))
        try:
            await asyncio.wait_for(recovered.wait(), timeout=30)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert calls >= 4
    lines = [r for r in caplog.records if "storage full" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].exc_info is None


def test_storage_full_error__is_still_a_sqlite_error() -> None:
    error = StorageFullError("database or disk is full")
    assert isinstance(error, sqlite3.OperationalError)
    assert error.retry_after > 0
    assert "out of disk space" in str(error)
