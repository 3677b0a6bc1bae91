"""``store.group.GroupCommit``: concurrent callers share one transaction, each answered once
its own rows are committed; a failing item fails alone; a caller with a commit hook (an
idempotent request) keeps a transaction of its own. Real SQLite file (the ``ctx`` node)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence

import aiosqlite
import pytest

from meshnode.services.context import NodeContext
from meshnode.store.db import COMMIT_HOOK, query
from meshnode.store.group import GroupCommit


class Recorder:
    """A batch write into ``community_settings`` that remembers each batch's items."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def __call__(self, tx: aiosqlite.Connection, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        for item in items:
            if item == "bad":
                raise LookupError("refused")
            await tx.execute("INSERT INTO community_settings (key, value) VALUES (?, 'x')",
                             (f"gc-{item}",))
        return [f"stored {item}" for item in items]


async def _keys(ctx: NodeContext) -> list[str]:
    sql = "SELECT key FROM community_settings WHERE key LIKE 'gc-%' ORDER BY key"
    async with query(ctx.store.reader, sql) as rows:
        return [row[0] for row in await rows.fetchall()]


async def test_group_commit__concurrent_callers_share_one_transaction(ctx: NodeContext) -> None:
    # Given five callers submitting at once
    group: GroupCommit[str, str] = GroupCommit()
    write = Recorder()
    # When they all wait for their rows
    results = await asyncio.gather(*(group.submit(ctx.store, write, str(n)) for n in range(5)))
    # Then one transaction wrote them all, and each caller got its own result
    assert write.batches == [["0", "1", "2", "3", "4"]]
    assert group.batches == 1
    assert results == [f"stored {n}" for n in range(5)]
    assert await _keys(ctx) == [f"gc-{n}" for n in range(5)]


async def test_group_commit__a_failing_item_fails_alone(ctx: NodeContext) -> None:
    # Given a batch in which one item cannot be written
    group: GroupCommit[str, str] = GroupCommit()
    write = Recorder()
    # When the callers wait for their rows
    results = await asyncio.gather(*(group.submit(ctx.store, write, item)
                                     for item in ("a", "bad", "c")), return_exceptions=True)
    # Then the shared transaction was rolled back, each item tried alone, and only the bad
    # one's caller got the error; the others' rows are committed
    assert write.batches == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]
    assert results[0] == "stored a"
    assert isinstance(results[1], LookupError)
    assert results[2] == "stored c"
    assert await _keys(ctx) == ["gc-a", "gc-c"]


async def test_group_commit__batches_are_capped(ctx: NodeContext) -> None:
    # Given a group commit of at most 2 items a transaction, and 5 callers at once
    group: GroupCommit[str, str] = GroupCommit(max_batch=2)
    write = Recorder()
    await asyncio.gather(*(group.submit(ctx.store, write, str(n)) for n in range(5)))
    # Then no transaction wrote more than 2 items, and all were written
    assert write.batches == [["0", "1"], ["2", "3"], ["4"]]
    assert await _keys(ctx) == [f"gc-{n}" for n in range(5)]


class Hook:
    """A commit hook that counts how often it ran inside a transaction."""

    def __init__(self) -> None:
        self.before = 0
        self.after = 0

    async def before_commit(self, db: aiosqlite.Connection) -> None:
        self.before += 1

    def after_commit(self) -> None:
        self.after += 1


async def test_group_commit__a_caller_with_a_commit_hook_gets_its_own_transaction(
        ctx: NodeContext) -> None:
    # Given an idempotent caller (a commit hook in its context) and two plain callers
    group: GroupCommit[str, str] = GroupCommit()
    write = Recorder()
    hook = Hook()

    async def hooked() -> str:
        token = COMMIT_HOOK.set(hook)
        try:
            return await group.submit(ctx.store, write, "hooked")
        finally:
            COMMIT_HOOK.reset(token)

    # When all three submit at once
    await asyncio.gather(hooked(), group.submit(ctx.store, write, "p1"),
                         group.submit(ctx.store, write, "p2"))
    # Then the hooked item was written alone, its hook ran once, and the others shared a
    # transaction without it
    assert ["hooked"] in write.batches
    assert ["p1", "p2"] in write.batches
    assert (hook.before, hook.after) == (1, 1)


async def test_group_commit__a_caller_gone_before_its_turn_writes_nothing(
        ctx: NodeContext) -> None:
    # Given a batch being written while a second caller waits for the next one
    group: GroupCommit[str, str] = GroupCommit()
    write = Recorder()
    first = asyncio.create_task(group.submit(ctx.store, write, "first"))
    await asyncio.sleep(0)  # the first batch starts
    gone = asyncio.create_task(group.submit(ctx.store, write, "gone"))
    await asyncio.sleep(0)
    # When the second caller is cancelled before its batch starts
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await first == "stored first"
    await group.wait_idle()  # the flusher has looked at what was left
    # Then only the first item was written
    assert await _keys(ctx) == ["gc-first"]
    assert write.batches == [["first"]]


async def test_group_commit__its_finished_flusher_is_not_kept(ctx: NodeContext) -> None:
    # Given a group that wrote two batches, one after the other
    group: GroupCommit[str, str] = GroupCommit()
    write = Recorder()
    await asyncio.gather(*(group.submit(ctx.store, write, str(n)) for n in range(3)))
    assert await group.submit(ctx.store, write, "later") == "stored later"
    # When its flusher has nothing left to write
    await group.wait_idle()
    await asyncio.sleep(0)
    # Then its task (coroutine, copied context: made during a load) is not kept
    gc.collect()
    assert not [task for task in gc.get_objects() if isinstance(task, asyncio.Task)
                and task.get_coro().__qualname__ == "GroupCommit._flush"]
    # And the next item is written by a new flusher
    assert await group.submit(ctx.store, write, "next") == "stored next"
    assert write.batches[-2:] == [["later"], ["next"]]
