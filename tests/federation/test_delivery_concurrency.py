"""Delivery with several requests in flight per host (issue 17, "Replication keeps up").

The sender is a real node on a 127.0.0.1 port; the receiver is a slow aiohttp inbox on
another port that counts the requests it is serving at once and records what it got.
Workers are stepped by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiohttp import web

from meshnode.federation import delivery as delivery_module
from meshnode.protocol.timefmt import format_utc
from meshnode.services import publishing
from tests.federation.conftest import Node, NodeFactory, serving_inbox


@dataclass
class SlowInbox:
    """An inbox that takes ``delay`` seconds per request and answers ``status_for(id)``."""

    delay: float
    failing: frozenset[str] = frozenset()
    active: int = 0
    peak: int = 0
    received: list[tuple[str, str, str]] = field(default_factory=list)  # (id, type, object)
    active_objects: set[str] = field(default_factory=set)
    overlaps: list[str] = field(default_factory=list)  # objects sent twice at once
    events: list[tuple[str, str]] = field(default_factory=list)  # ("start"/"end", type)
    rfc9421_only: bool = False  # answer 401 to draft-cavage signatures (Mastodon 4.5 style)
    refused: int = 0
    failing_status: int = 503  # what ``failing`` ids are answered

    async def handle(self, request: web.Request) -> web.Response:
        activity = json.loads(await request.read())
        if self.rfc9421_only and "Signature-Input" not in request.headers:
            self.refused += 1
            return web.Response(status=401)
        obj = activity["object"]
        obj = obj if isinstance(obj, str) else obj["id"]
        if obj in self.active_objects:
            self.overlaps.append(obj)
        self.active_objects.add(obj)
        self.events.append(("start", activity["type"]))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
            self.active_objects.discard(obj)
            self.events.append(("end", activity["type"]))
        self.received.append((activity["id"], activity["type"], obj))
        return web.Response(status=self.failing_status if activity["id"] in self.failing
                            else 202)


@pytest.fixture
async def inbox_server() -> AsyncIterator[tuple[str, SlowInbox]]:
    inbox = SlowInbox(delay=0.05)
    async with serving_inbox(inbox.handle) as url:
        yield url, inbox


async def _queue(node: Node, inbox_url: str, activities: list[tuple[str, str]],
                 prefix: str = "bench") -> list[str]:
    """Queue (type, object number) activities from the community actor; their ids."""
    ids = []
    async with node.ctx.store.transaction() as tx:
        for n, (kind, obj) in enumerate(activities):
            activity = {"id": f"{node.group}/activities/{prefix}-{n}", "actor": node.group,
                        "type": kind, "object": {"id": f"{node.url}/objects/{obj}",
                                                 "type": "Note"}}
            await publishing.queue_activity(tx, activity, public=False, inboxes=[inbox_url],
                                            now=format_utc(node.clock()))
            ids.append(activity["id"])
    return ids


async def _warm(node: Node, inbox_url: str, inbox: SlowInbox) -> None:
    """One delivery answered 202: the host is known to answer, it gets the full width (the
    host's first batch goes one request at a time). The inbox's tallies start again."""
    await _queue(node, inbox_url, [("Create", "warm")], prefix="warm")
    assert await node.workers.delivery.step() == 1
    inbox.received.clear()
    inbox.events.clear()
    inbox.peak = 0


async def _states(node: Node) -> dict[str, int]:
    async with node.ctx.store.reader.execute(
            "SELECT state, count(*) FROM deliveries GROUP BY state") as cursor:
        return {row[0]: row[1] for row in await cursor.fetchall()}


async def test_delivery__several_requests_in_flight_never_exceed_the_per_host_cap(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given 40 deliveries of distinct objects due to one slow host and a cap of 4,
    When the delivery worker runs one round,
    Then the host serves exactly 4 at once (never more), gets each activity once, and
    every delivery is recorded as done in a single commit."""
    url, inbox = inbox_server
    alpha = await make_node("alpha", delivery_concurrency=4)
    await _warm(alpha, url, inbox)
    ids = await _queue(alpha, url, [("Create", str(n)) for n in range(40)])
    commits = alpha.ctx.store.generation

    attempted = await alpha.workers.delivery.step()

    assert attempted == 40
    assert inbox.peak == 4
    assert sorted(activity_id for activity_id, _, _ in inbox.received) == sorted(ids)
    assert await _states(alpha) == {"done": 41}
    assert alpha.ctx.store.generation == commits + 1


async def test_delivery__one_objects_activities_stay_in_order_while_others_run_in_parallel(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given a Create, an Update and a Delete of one object queued among 20 other objects,
    When the worker sends them with 8 requests in flight,
    Then the host gets the one object's three activities one after another, in queue
    order, while the others overlap."""
    url, inbox = inbox_server
    alpha = await make_node("alpha")
    await _warm(alpha, url, inbox)
    plan = [("Create", "x")] + [("Create", str(n)) for n in range(10)] + [("Update", "x")]
    plan += [("Create", str(n)) for n in range(10, 20)] + [("Delete", "x")]
    await _queue(alpha, url, plan)

    await alpha.workers.delivery.step()

    of_x = [kind for _, kind, obj in inbox.received if obj.endswith("/objects/x")]
    assert of_x == ["Create", "Update", "Delete"]
    assert inbox.overlaps == []
    assert inbox.peak == 8
    assert await _states(alpha) == {"done": 24}


async def test_delivery__a_batch_records_each_outcome_retry_or_done(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given 12 deliveries of which the host answers 500 to three (an error, not a 503
    "wait", which would pause the host: test_host_pause.py),
    When the worker runs one round,
    Then nine are done and the three are pending for a retry with one attempt and their
    status, all written in one commit; the next round (not yet due) sends nothing."""
    url, inbox = inbox_server
    alpha = await make_node("alpha")
    ids = await _queue(alpha, url, [("Create", str(n)) for n in range(12)])
    inbox.failing, inbox.failing_status = frozenset(ids[::4]), 500
    commits = alpha.ctx.store.generation

    await alpha.workers.delivery.step()

    assert await _states(alpha) == {"done": 9, "pending": 3}
    async with alpha.ctx.store.reader.execute(
            "SELECT attempts, last_status FROM deliveries WHERE state = 'pending'") as cursor:
        assert {tuple(row) for row in await cursor.fetchall()} == {(1, 500)}
    assert alpha.ctx.store.generation == commits + 1
    assert await alpha.workers.delivery.step() == 0
    assert len(inbox.received) == 12


async def test_delivery__an_unsendable_row_fails_alone_and_the_batch_is_still_recorded(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given 10 deliveries of which one is by a member who no longer exists (it cannot be
    signed),
    When the worker runs one round,
    Then the nine others are done, that one failed for good with the reason, all in one
    commit, and the next round sends nothing again."""
    url, inbox = inbox_server
    alpha = await make_node("alpha")
    await _queue(alpha, url, [("Create", str(n)) for n in range(9)])
    async with alpha.ctx.store.transaction() as tx:
        await publishing.queue_activity(
            tx, {"id": f"{alpha.url}/users/ghost/activities/1", "actor": f"{alpha.url}/users/ghost",
                 "type": "Create", "object": {"id": f"{alpha.url}/objects/ghost"}},
            public=False, inboxes=[url], now=format_utc(alpha.clock()))
    commits = alpha.ctx.store.generation

    await alpha.workers.delivery.step()

    assert await _states(alpha) == {"done": 9, "failed": 1}
    async with alpha.ctx.store.reader.execute(
            "SELECT last_error FROM deliveries WHERE state = 'failed'") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    assert row[0].startswith("cannot send:")
    assert alpha.ctx.store.generation == commits + 1
    assert await alpha.workers.delivery.step() == 0
    assert len(inbox.received) == 9


async def test_delivery__a_scheme_fallback_that_works_is_used_by_the_rest_of_the_batch(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given a host that refuses draft-cavage signatures (401) and 20 deliveries to it,
    When the worker sends them with 4 requests in flight,
    Then only the first requests in flight knock twice; the rest of the batch signs with
    RFC 9421 at once, everything is done and the host's scheme is remembered."""
    url, inbox = inbox_server
    inbox.rfc9421_only = True
    alpha = await make_node("alpha", delivery_concurrency=4)
    await _queue(alpha, url, [("Create", str(n)) for n in range(20)])

    await alpha.workers.delivery.step()

    assert await _states(alpha) == {"done": 20}
    assert 1 <= inbox.refused <= 4
    async with alpha.ctx.store.reader.execute("SELECT scheme FROM delivery_hosts") as cursor:
        assert [row[0] for row in await cursor.fetchall()] == ["rfc9421-rsa"]


async def test_delivery__a_follow_and_its_undo_keep_their_order_among_parallel_creates(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given a Follow, the Undo of that Follow (its object is the Follow, not the followed
    actor) and ten listing Creates queued to one host,
    When the worker sends them with 8 requests in flight,
    Then the Creates overlap, but the host starts on the Undo only once the Follow is done."""
    url, inbox = inbox_server
    alpha = await make_node("alpha")
    await _warm(alpha, url, inbox)
    follow = {"id": f"{alpha.group}/activities/follow-1", "actor": alpha.group,
              "type": "Follow", "object": "http://127.0.0.1:9/groups/far"}
    undo = {"id": f"{alpha.group}/activities/undo-1", "actor": alpha.group, "type": "Undo",
            "object": follow}
    async with alpha.ctx.store.transaction() as tx:
        for activity in (follow, undo):
            await publishing.queue_activity(tx, activity, public=False, inboxes=[url],
                                            now=format_utc(alpha.clock()))
    await _queue(alpha, url, [("Create", str(n)) for n in range(10)])

    await alpha.workers.delivery.step()

    assert inbox.events.index(("end", "Follow")) < inbox.events.index(("start", "Undo"))
    assert inbox.peak == 8
    assert await _states(alpha) == {"done": 13}


async def test_delivery__one_request_at_a_time_until_a_host_answers_a_whole_batch(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given a host new to the node and a cap of 4,
    When batches of 20 deliveries go to it,
    Then the first goes one request at a time, the next four at a time, and after a batch
    in which the host answered 500 the node sends one at a time again (a host that does not
    answer never holds more than one of the pool's connections for long). (A 503 would
    pause the host: test_host_pause.py.)"""
    url, inbox = inbox_server
    inbox.failing_status = 500
    alpha = await make_node("alpha", delivery_concurrency=4)
    peaks = []
    for prefix in ("first", "second", "third", "fourth"):
        ids = await _queue(alpha, url, [("Create", f"{prefix}{n}") for n in range(20)],
                           prefix=prefix)
        inbox.failing = frozenset(ids[:1]) if prefix == "third" else frozenset()
        inbox.peak = 0
        assert await alpha.workers.delivery.step() == 20
        peaks.append(inbox.peak)

    assert peaks == [1, 4, 4, 1]
    assert await _states(alpha) == {"done": 79, "pending": 1}


async def test_delivery__a_hosts_finished_drain_is_not_kept(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given the delivery worker's loop running and one activity due to a host,
    When it has been delivered and the loop polled again,
    Then no finished drain task (its coroutine and context, made during the load) is kept
    until the host's next delivery."""
    url, inbox = inbox_server
    alpha = await make_node("alpha")
    loop = asyncio.create_task(alpha.workers.delivery.run_forever(poll=0.01))
    try:
        await _queue(alpha, url, [("Create", "kept")])
        for _ in range(500):
            if inbox.received and await _states(alpha) == {"done": 1}:
                break
            await asyncio.sleep(0.01)
        assert await _states(alpha) == {"done": 1}
        await asyncio.sleep(0.1)  # the loop polls a few times
        gc.collect()
        assert not [task for task in gc.get_objects() if isinstance(task, asyncio.Task)
                    and task.get_coro().__qualname__ == "DeliveryWorker._guarded_drain"]
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_delivery__an_idle_scheduler_reads_the_queue_rarely(
        make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the delivery worker's loop running on a node with nothing to send,
    When a second passes,
    Then it read the queue at most twice (it polled every 0.1 s before: ten reads a second
    on an idle Pi), and a delivery queued with a wake-up is still sent at once."""
    alpha = await make_node("alpha")
    reads: list[str] = []
    due_hosts = delivery_module.oq.due_hosts

    async def counted(db: object, now: str) -> list[str]:
        reads.append(now)
        return await due_hosts(db, now)  # type: ignore[arg-type]

    monkeypatch.setattr(delivery_module.oq, "due_hosts", counted)
    loop = asyncio.create_task(alpha.workers.delivery.run_forever(poll=0.1, idle_poll=2.0))
    try:
        await asyncio.sleep(1.0)
        assert 1 <= len(reads) <= 2
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_delivery__an_idle_scheduler_wakes_when_the_next_retry_is_due(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given deliveries pending with retries at different times (and none at all),
    When the idle scheduler computes how long to sleep,
    Then it sleeps until the earliest retry, never less than the poll nor more than the
    idle poll (nothing pending: the idle poll)."""
    url, _ = inbox_server
    alpha = await make_node("alpha")
    worker = alpha.workers.delivery
    reader = alpha.ctx.store.reader

    async def idle_wait(idle_poll: float) -> float:
        return worker._idle_wait(await delivery_module.oq.next_due_time(reader), 0.1, idle_poll)

    assert await idle_wait(30.0) == 30.0
    await _queue(alpha, url, [("Create", "soon"), ("Create", "later")])
    async with alpha.ctx.store.transaction() as tx:
        for delay, obj in ((7.5, "soon"), (600, "later")):
            await tx.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE outbox_seq IN (SELECT seq FROM"
                " outbox_activities WHERE object_id LIKE ?)",
                (format_utc(alpha.clock() + timedelta(seconds=delay)), f"%/{obj}"))

    assert await idle_wait(30.0) == pytest.approx(7.5, abs=1.0)
    assert await idle_wait(2.0) == 2.0
    alpha.clock.advance(seconds=60)  # overdue: the poll, not zero
    assert await idle_wait(30.0) == 0.1


async def test_delivery__an_idle_scheduler_sends_a_delivery_queued_without_a_wake_up(
        make_node: NodeFactory, inbox_server: tuple[str, SlowInbox]) -> None:
    """Given the delivery worker's loop idle with a long idle poll (30 s),
    When a transaction queues a delivery and nobody wakes the worker,
    Then it is sent within about a poll (the store's commit counter moved), not 30 s later."""
    url, inbox = inbox_server
    alpha = await make_node("alpha")
    loop = asyncio.create_task(alpha.workers.delivery.run_forever(poll=0.1, idle_poll=30.0))
    try:
        await asyncio.sleep(0.3)  # the loop is idle
        await _queue(alpha, url, [("Create", "unwoken")])
        for _ in range(50):
            if await _states(alpha) == {"done": 1}:
                break
            await asyncio.sleep(0.1)
        assert await _states(alpha) == {"done": 1}
        assert [kind for _, kind, _ in inbox.received] == ["Create"]
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
