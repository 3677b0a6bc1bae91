"""Group commit for requests that each write a few rows (publishing a listing).

Concurrent requests share one write transaction, so one ``BEGIN``, one ``COMMIT`` (one
fsync) and the batch's statements in a few hops serve them all; each request still waits
until its own rows are committed before it answers (the inbox door does the same for
activities: ``federation.state.InboxWriter``). A batch that fails is rolled back and each of
its items is then written in a transaction of its own, so one bad item fails only itself.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import aiosqlite

from meshnode.store.db import COMMIT_HOOK, Store

I = TypeVar("I")  # noqa: E741 - an item to write
R = TypeVar("R")

# Writes ``items`` in the given transaction; one result per item, in order.
BatchWrite = Callable[[aiosqlite.Connection, Sequence[I]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[I, R]):
    """Items submitted while a batch is being written form the next batch."""

    def __init__(self, max_batch: int = 64) -> None:
        self.max_batch = max_batch
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # transactions committed with more than one item (tests, benchmarks)

    async def submit(self, store: Store, write: BatchWrite[I, R], item: I) -> R:
        """Write ``item`` with ``write`` in a transaction shared with concurrent callers;
        its result once committed. A caller with a commit hook (an idempotent request,
        ``services.idempotency``) gets a transaction of its own: the hook is its own."""
        if COMMIT_HOOK.get() is not None:
            return (await _commit(store, write, [item]))[0]
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            context = contextvars.copy_context()
            context.run(COMMIT_HOOK.set, None)  # the flusher serves every caller alike
            self._flusher = asyncio.create_task(self._flush(store, write), context=context)
        return await future

    async def wait_idle(self) -> None:
        """Return once everything submitted so far has been handled (tests step it)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.wait([self._flusher])

    async def _flush(self, store: Store, write: BatchWrite[I, R]) -> None:
        try:
            while self._pending:
                batch = self._pending[:self.max_batch]
                del self._pending[:self.max_batch]
                live = [(item, future) for item, future in batch if not future.done()]
                try:
                    await self._write(store, write, live)
                except BaseException:
                    for _, future in [*live, *self._pending]:  # the flusher was cancelled
                        future.cancel()
                    self._pending.clear()
                    raise
        finally:
            # Not kept once done (its task, coroutine and copied context were made during a
            # load and stayed until the next write: issue 17, the soak); nothing can be
            # appended between the loop's last check and this line (no await between).
            if self._flusher is asyncio.current_task():
                self._flusher = None

    async def _write(self, store: Store, write: BatchWrite[I, R],
                     batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        if not batch:
            return  # every caller went away before its turn: nothing is written for them
        try:
            results = await _commit(store, write, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            for one in batch:  # one failing item must not fail the others
                await self._write(store, write, [one])
            return
        if len(batch) > 1:
            self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)


async def _commit(store: Store, write: BatchWrite[I, R], items: Sequence[I]) -> Sequence[R]:
    async with store.transaction() as tx:
        return await write(tx, items)


def _settle(future: asyncio.Future[R], *, result: R | None = None,
            error: Exception | None = None) -> None:
    """Hand the outcome to a caller still waiting (a cancelled caller's future is done)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
