"""Inbox flow control: burst detection, backlog accounting and the processing loop's yield."""

from __future__ import annotations

import asyncio
import time

import pytest

from meshnode.federation import runtime
from meshnode.federation.state import INTAKE_BUSY, InboxWriter
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq


def _row(n: int) -> dict[str, str]:
    return {"activity_id": f"http://a.example/activities/{n}", "actor": "http://a.example/u/a",
            "activity_type": "Create", "body": "{}", "received_at": "2026-11-26T10:00:00Z"}


async def test_inbox_writer__burst_since_last_asked_is_busy(ctx: NodeContext) -> None:
    writer = InboxWriter(ctx)
    assert not writer.intake_busy()
    await asyncio.gather(*(writer.store(**_row(n)) for n in range(INTAKE_BUSY - 1)))
    assert not writer.intake_busy()  # fewer than a burst
    await asyncio.gather(*(writer.store(**_row(n)) for n in range(INTAKE_BUSY)))
    assert writer.intake_busy()
    assert not writer.intake_busy()  # asking starts a new count


async def test_inbox_writer__backlog_counts_new_rows_only(ctx: NodeContext) -> None:
    writer = InboxWriter(ctx, backlog_max=5)
    await asyncio.gather(*(writer.store(**_row(n)) for n in range(4)))
    await writer.store(**_row(0))  # a replay: stored once
    assert writer.backlog == 4
    assert await fq.count_unprocessed(ctx.store.reader) == 4
    assert not writer.full()
    await writer.store(**_row(4))
    assert writer.full()
    writer.processed(3)
    assert (writer.backlog, writer.full()) == (2, False)


class _Worker:
    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.calls: list[float] = []
        self.done = asyncio.Event()

    async def step(self) -> int:
        self.calls.append(asyncio.get_running_loop().time())
        if self.batches == 0:
            self.done.set()
            await asyncio.sleep(3600)
        self.batches -= 1
        _burn_cpu(0.02)  # one batch of work (CPU: the pause is measured in CPU time)
        await asyncio.sleep(0.05)  # and a wait (an fsync) that must not lengthen the pause
        return 1


def _burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class _Writer:
    def __init__(self, busy: bool) -> None:
        self.busy = busy

    def intake_busy(self) -> bool:
        return self.busy


class _Federation:
    def __init__(self, busy: bool) -> None:
        self.writer = _Writer(busy)
        self.inbox_event = asyncio.Event()


@pytest.mark.parametrize(("busy", "min_gap"),
                         [(True, 0.07 + 0.02 * runtime.INTAKE_PRIORITY), (False, 0.07)])
async def test_inbox_loop__yields_to_a_busy_intake(busy: bool, min_gap: float) -> None:
    # The loop's only collaborators are a worker's step() and the writer's intake_busy():
    # stand-ins make its timing observable without a node.
    worker, federation = _Worker(batches=2), _Federation(busy)
    task = asyncio.create_task(runtime._inbox_loop(worker, federation))  # type: ignore[arg-type]
    await asyncio.wait_for(worker.done.wait(), 5)
    task.cancel()
    gap = worker.calls[1] - worker.calls[0]
    assert gap >= min_gap * 0.95
    if not busy:
        assert gap < 0.07 + 0.02 * runtime.INTAKE_PRIORITY * 0.9
    else:  # the 0.05 s wait is not paused for again: the pause follows CPU, not wall time
        assert gap < 0.07 + 0.07 * runtime.INTAKE_PRIORITY * 0.9
