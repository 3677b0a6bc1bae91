"""``store.db.savepoint``: a failed block undoes only its own writes, inside one transaction."""

from __future__ import annotations

import aiosqlite
import pytest

from meshnode.services.context import NodeContext
from meshnode.store.db import query, savepoint


async def _keys(ctx: NodeContext) -> list[str]:
    sql = "SELECT key FROM community_settings WHERE key LIKE 'sp-%' ORDER BY key"
    async with query(ctx.store.reader, sql) as rows:
        return [row[0] for row in await rows.fetchall()]


async def _write_then_fail(tx: aiosqlite.Connection) -> None:
    async with savepoint(tx, "probe"):
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('sp-inside', 'x')")
        raise LookupError("refused")


async def test_savepoint__a_failed_block_is_undone_and_the_transaction_goes_on(
        ctx: NodeContext) -> None:
    # Given a transaction that writes, then runs a block that writes and fails
    async with ctx.store.transaction() as tx:
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('sp-before', 'x')")
        with pytest.raises(LookupError):
            await _write_then_fail(tx)
        # When the transaction writes again and commits
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('sp-after', 'x')")
    # Then the block's write is gone and the others are kept
    assert await _keys(ctx) == ["sp-after", "sp-before"]


async def test_savepoint__a_block_that_succeeds_is_kept(ctx: NodeContext) -> None:
    async with ctx.store.transaction() as tx, savepoint(tx, "probe"):
        await tx.execute("INSERT INTO community_settings (key, value) VALUES ('sp-ok', 'x')")
    assert await _keys(ctx) == ["sp-ok"]


async def test_savepoint__a_name_that_is_not_an_identifier_is_refused(ctx: NodeContext) -> None:
    # Given a name that would be spliced into SQL
    async with ctx.store.transaction() as tx:
        with pytest.raises(ValueError, match="not an identifier"):
            async with savepoint(tx, "x; DROP TABLE members"):
                pass  # pragma: no cover - never entered
    # Then nothing ran: the members table is still there
    async with query(ctx.store.reader, "SELECT count(*) FROM members") as rows:
        assert (await rows.fetchone()) is not None
