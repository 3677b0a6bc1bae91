"""Inbox flow control: burst detection, backlog accounting and the processing loop's yield."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

import pytest

from meshnode.federation import runtime, state
from meshnode.federation.inbox import INBOX_MAX_BYTES
from meshnode.federation.state import INTAKE_BUSY, InboxWriter, SenderFacts
from meshnode.protocol.inbox_policy import Sender
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


async def test_inbox_writer__a_replay_after_the_last_batch_keeps_no_reading_past_the_sweep(
        ctx: NodeContext) -> None:
    # Given a processed backlog, then a replay of a known id (stored once: nothing to process)
    writer = InboxWriter(ctx)
    await writer.store({"id": "0"}, **_row(0))
    writer.processed(1)
    await writer.store({"id": "0"}, **_row(0))
    assert writer.backlog == 0
    # Then its reading is kept until something drops it
    assert writer.take_reading(_row(0)["activity_id"], "{}") == {"id": "0"}
    await writer.store({"id": "0"}, **_row(0))
    # When the idle sweep forgets the readings
    writer.forget_readings()
    # Then none is left, and the stored row is still there for the worker to parse
    assert writer.take_reading(_row(0)["activity_id"], "{}") is None
    assert await fq.count_unprocessed(ctx.store.reader) == 1


class _Worker:
    def __init__(self, batches: int) -> None:
        self.batches = batches
        self.done = asyncio.Event()

    async def step(self) -> int:
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


@pytest.mark.parametrize("busy", [True, False])
async def test_inbox_loop__gives_way_after_each_batch_only_while_the_intake_is_busy(
    busy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop's only collaborators are a worker's step() and the writer's intake_busy():
    # stand-ins, and the pause recorded instead of taken (the pause itself: tests below).
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(runtime, "yield_to_intake", record)
    worker, federation = _Worker(batches=2), _Federation(busy)
    task = asyncio.create_task(runtime._inbox_loop(worker, federation))  # type: ignore[arg-type]
    await asyncio.wait_for(worker.done.wait(), 10)
    task.cancel()
    if not busy:
        assert pauses == []
        return
    # One pause per batch, INTAKE_PRIORITY times the batch's CPU (20 ms), not its wall time
    # (the 50 ms wait on "fsync" would make it 3.5 times longer)
    assert len(pauses) == 2
    for seconds in pauses:
        assert seconds >= 0.02 * runtime.INTAKE_PRIORITY * 0.95
        assert seconds < 0.045 * runtime.INTAKE_PRIORITY


async def test_yield_to_intake__lasts_its_whole_time_while_the_loop_is_busy() -> None:
    # Given a loop whose thread uses all the CPU it gets (the intake at work)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # When the worker gives way for 60 ms
    await runtime.yield_to_intake(0.06, loop_cpu=loop.time)
    # Then it waited all of it
    assert loop.time() - started >= 0.06 * 0.95


async def test_yield_to_intake__ends_early_when_the_loop_sits_idle() -> None:
    # Given a loop whose thread uses no CPU (the intake needs nothing)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # When the worker would give way for 5 s
    await runtime.yield_to_intake(5.0, loop_cpu=lambda: 0.0)
    # Then it resumes after the first idle slice, not 5 s later
    assert loop.time() - started < 2.5


async def test_inbox_writer__keeps_the_doors_reading_for_the_stored_body(ctx: NodeContext
                                                                          ) -> None:
    # Given an activity stored with the door's reading of it
    writer = InboxWriter(ctx)
    row, reading = _row(1), {"type": "Create"}
    await writer.store(reading, **row)
    # When the worker asks with another body under the same id (a replay), then with the body
    # stored, then again
    assert writer.take_reading(row["activity_id"], '{"other": 1}') is None
    await writer.store(reading, **row)
    assert writer.take_reading(row["activity_id"], row["body"]) is reading
    # Then each reading is handed over once, and only for the very body it was read from
    assert writer.take_reading(row["activity_id"], row["body"]) is None


async def test_inbox_writer__readings_capped(ctx: NodeContext,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cap of 3 kept readings
    monkeypatch.setattr(state, "READINGS_MAX", 3)
    writer = InboxWriter(ctx)
    # When 5 activities are stored
    await asyncio.gather(*(writer.store({"n": n}, **_row(n)) for n in range(5)))
    # Then only the first 3 readings were kept; the others are parsed from their rows
    kept = [writer.take_reading(f"http://a.example/activities/{n}", "{}") for n in range(5)]
    assert kept == [{"n": 0}, {"n": 1}, {"n": 2}, None, None]


async def test_inbox_writer__readings_dropped_once_everything_is_processed(
        ctx: NodeContext) -> None:
    # Given a reading kept for a replay the store ignored (its row was already there)
    writer = InboxWriter(ctx)
    await writer.store(None, **_row(1))
    await writer.store({"replay": True}, **_row(1))
    # When the worker has processed the whole backlog
    writer.processed(writer.backlog)
    # Then no reading is left over
    assert writer.take_reading("http://a.example/activities/1", "{}") is None


class _Store:
    def __init__(self, reader: object) -> None:
        self.reader, self.generation = reader, 0

    def table_generation(self, _table: str) -> int:
        return self.generation


class _Ctx:
    def __init__(self) -> None:
        self.store = _Store(object())


def _counting_loader(reads: list[str]) -> Callable[[object, str], Awaitable[Sender]]:
    async def load(_reader: object, origin: str) -> Sender:
        reads.append(origin)
        return Sender(is_peer=origin.endswith("peer"))

    return load


async def test_sender_facts__read_once_until_a_commit() -> None:
    # Given the door's sender facts over a counting loader
    reads: list[str] = []
    ctx = _Ctx()
    facts = SenderFacts(ctx, _counting_loader(reads))  # type: ignore[arg-type]
    # When an origin is asked twice, then again after this process committed something
    first = await facts.get("http://a.peer")
    second = await facts.get("http://a.peer")
    ctx.store.generation += 1
    await facts.get("http://a.peer")
    # Then the table was read once before the commit and once after it
    assert first == second == Sender(is_peer=True)
    assert reads == ["http://a.peer", "http://a.peer"]


async def test_sender_facts__re_read_after_max_age() -> None:
    reads: list[str] = []
    facts = SenderFacts(_Ctx(), _counting_loader(reads), max_age=0.0)  # type: ignore[arg-type]
    await facts.get("http://a.peer")
    await asyncio.sleep(0.001)
    await facts.get("http://a.peer")
    assert len(reads) == 2


async def test_sender_facts__capped() -> None:
    # Given a cap of 4 origins (strangers choose their origins)
    reads: list[str] = []
    facts = SenderFacts(_Ctx(), _counting_loader(reads), max_origins=4)  # type: ignore[arg-type]
    # When 10 distinct origins post
    for n in range(10):
        await facts.get(f"http://o{n}.example")
    # Then at most 4 are ever kept
    assert len(facts) <= 4


async def test_sender_facts__concurrent_requests_share_one_read() -> None:
    # Given 20 requests from one origin arriving together
    reads: list[str] = []
    facts = SenderFacts(_Ctx(), _counting_loader(reads))  # type: ignore[arg-type]
    # When they all ask for its facts before the first read is back
    got = await asyncio.gather(*(facts.get("http://a.peer") for _ in range(20)))
    # Then the peers table was read once
    assert reads == ["http://a.peer"]
    assert set(got) == {Sender(is_peer=True)}


async def test_sender_facts__a_failed_read_is_not_kept() -> None:
    calls: list[str] = []

    async def flaky(_reader: object, origin: str) -> Sender:
        calls.append(origin)
        if len(calls) == 1:
            raise OSError("disk")
        return Sender(is_peer=False)

    facts = SenderFacts(_Ctx(), flaky)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="disk"):
        await facts.get("http://a.example")
    assert await facts.get("http://a.example") == Sender(is_peer=False)
    assert len(calls) == 2


async def test_blocked_origins__the_inbox_commits_cost_no_read_and_a_block_applies_at_once(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the door's blocked-origins set over the real store, its reads counted
    reads: list[int] = []
    real = fq.blocked_origins

    async def counted(db: object) -> frozenset[str]:
        reads.append(1)
        return await real(db)  # type: ignore[arg-type]

    monkeypatch.setattr(state.fq, "blocked_origins", counted)
    blocked = state.BlockedOrigins(ctx, max_age=3600)
    origin = "http://127.0.0.1:9"
    assert not await blocked.contains(origin)
    # When the inbox's group commits store activities (rows no cache reads)
    writer = InboxWriter(ctx)
    for n in range(3):
        await writer.store(**{**_row(n), "origin": "http://a.example", "size": 2})
        # Then the set is not read again
        assert not await blocked.contains(origin)
    assert len(reads) == 1
    # When this process commits a block, Then the very next request sees it
    async with ctx.store.transaction() as tx:
        await fq.insert_peer(tx, origin=origin, requested=origin, out_state="resolving",
                             now="2026-12-03T00:00:00Z")
        await fq.update_peer(tx, origin, "2026-12-03T00:00:00Z", blocked=1)
    assert await blocked.contains(origin)
    assert len(reads) == 2


def _flush_tasks(qualname: str) -> list[asyncio.Task[object]]:
    """The flusher tasks still alive (finished or not) whose coroutine is ``qualname``."""
    gc.collect()
    return [task for task in gc.get_objects() if isinstance(task, asyncio.Task)
            and task.get_coro().__qualname__ == qualname]


async def test_inbox_writer__its_finished_flusher_is_not_kept(ctx: NodeContext) -> None:
    # Given a writer that stored two bursts of activities
    writer = InboxWriter(ctx)
    await asyncio.gather(*(writer.store(**_row(n)) for n in range(4)))
    await writer.store(**_row(9))
    # When its flusher has nothing left to write
    await asyncio.sleep(0)
    # Then its task (coroutine, context: made during a load) is not kept until the next one
    assert _flush_tasks("InboxWriter._flush") == []
    # And the next activity is stored by a new flusher
    await writer.store(**_row(10))
    assert await fq.count_unprocessed(ctx.store.reader) == 6


async def test_inbox_writer__readings_capped_in_characters_against_large_bodies(
        ctx: NodeContext) -> None:
    # Given a peer posting the largest bodies the inbox takes while the worker is behind
    writer = InboxWriter(ctx)
    size = INBOX_MAX_BYTES
    big = [{**_row(n), "body": "x" * size} for n in range(40)]
    # When 40 of them are stored with the door's readings
    await asyncio.gather(*(writer.store({"n": n}, **row) for n, row in enumerate(big)))
    # Then the readings kept hold at most READINGS_MAX_CHARS of bodies (not 40 x 256 KiB);
    # the rest are parsed from their rows
    kept = [writer.take_reading(row["activity_id"], row["body"]) for row in big]
    assert sum(reading is not None for reading in kept) == state.READINGS_MAX_CHARS // size
    assert kept[0] == {"n": 0}
    # And once taken, the room is free again for the next ones
    await writer.store({"again": True}, **big[0])
    assert writer.take_reading(big[0]["activity_id"], big[0]["body"]) == {"again": True}
