"""The store's write transaction survives a transaction left open by a cancelled task."""

from __future__ import annotations

from meshnode.services.context import NodeContext
from meshnode.store.db import query


async def test_transaction__recovers_from_a_transaction_left_open(ctx: NodeContext) -> None:
    store = ctx.store
    # Given a BEGIN that completed in the worker thread after its task was cancelled
    # (the lock released with the transaction still open, as a cancelled task leaves it)
    writer = store._writer
    async with store._write_lock:
        await writer.execute("BEGIN IMMEDIATE")
        await writer.execute("INSERT INTO community_settings (key, value) VALUES ('stale', 'x')")
    assert writer.in_transaction
    # When the next write starts, Then it works and the stale, unfinished write is gone
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('fresh', 'y')")
    sql = "SELECT key FROM community_settings WHERE key IN ('stale', 'fresh')"
    async with query(store.reader, sql) as rows:
        keys = [row[0] for row in await rows.fetchall()]
    assert keys == ["fresh"]
