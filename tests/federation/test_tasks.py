"""Worker loops stop when cancelled, whatever else happens in the same loop iteration.

Python 3.11's ``asyncio.wait_for(event.wait(), poll)`` returns normally when the event
fires in the iteration the task is cancelled in: the cancel is lost, the worker loops on
and the app's shutdown, which awaits it, hangs (seen as ``scripts/bench_discovery.py``
hanging in ``DeliveryWorker.run_forever`` about once in 13 runs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.federation import delivery, runtime
from meshnode.federation.delivery import DeliveryWorker
from meshnode.federation.neighbour_verifier import NeighbourVerifier
from meshnode.federation.state import FEDERATION
from meshnode.federation.tasks import bounded, cancel_and_wait, wait_event

# Between ``event.set()`` and ``task.cancel()``, let the loop run this many iterations: one
# of them is the iteration where 3.11's wait_for has the wake-up but not the cancel yet.
RACE_GAPS = range(5)


async def _cancel_racing_a_wake(
    start: Callable[[asyncio.Event], Awaitable[Any]], gap: int
) -> asyncio.Task[Any]:
    event = asyncio.Event()
    task = asyncio.create_task(start(event))
    for _ in range(5):  # let the worker park in its wait
        await asyncio.sleep(0)
    event.set()
    for _ in range(gap):
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done, "the worker swallowed its cancellation and kept looping"
    return task


@pytest.mark.parametrize("gap", RACE_GAPS)
async def test_wait_event__cancel_racing_a_wake_propagates(gap: int) -> None:
    async def worker(event: asyncio.Event) -> None:
        while True:
            await wait_event(event, 5.0)
            event.clear()

    task = await _cancel_racing_a_wake(worker, gap)
    assert task.cancelled()


async def test_wait_event__reports_wake_and_timeout() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 5.0) is True


@pytest.mark.parametrize("gap", RACE_GAPS)
async def test_neighbour_verifier__cancel_racing_a_wake_stops_the_loop(gap: int) -> None:
    # Given a verifier loop with nothing to verify (step() returns 0 at once)
    verifier = NeighbourVerifier.__new__(NeighbourVerifier)

    async def idle_step() -> int:
        return 0

    verifier.step = idle_step  # type: ignore[method-assign]
    # When a new advert wakes it in the iteration the app cancels it, Then it stops
    task = await _cancel_racing_a_wake(verifier.run_forever, gap)
    assert task.cancelled()


@pytest.mark.parametrize("gap", RACE_GAPS)
async def test_federation_worker_loop__cancel_racing_a_wake_stops_the_loop(gap: int) -> None:
    async def idle_step() -> int:
        return 0

    task = await _cancel_racing_a_wake(
        lambda event: runtime._loop("test", idle_step, event, 5.0), gap)
    assert task.cancelled()


@pytest.mark.parametrize("gap", RACE_GAPS)
async def test_delivery_worker__cancel_racing_a_wake_stops_the_loop(
    gap: int, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the delivery scheduler with no host due (the hang seen in bench_discovery.py)
    async def no_hosts(*_: object) -> list[str]:
        return []

    monkeypatch.setattr(delivery.oq, "due_hosts", no_hosts)
    federation = client.app[FEDERATION]

    async def run(event: asyncio.Event) -> None:
        federation.delivery_event = event
        await DeliveryWorker(federation).run_forever(poll=5.0)

    # When an outbox write wakes it in the iteration the app cancels it, Then it stops
    task = await _cancel_racing_a_wake(run, gap)
    assert task.cancelled()


async def test_cancel_and_wait__logs_failures_and_gives_up_on_stuck_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a task that failed, one that is cancelled normally and one that ignores cancel
    async def fails() -> None:
        raise OSError("disk on fire")

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue

    failed = asyncio.create_task(fails(), name="fails")
    normal = asyncio.create_task(asyncio.sleep(10), name="normal")  # type: ignore[arg-type]
    stuck = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    # When they are stopped with a bound
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.ERROR, logger="meshnode.federation.tasks"):
        await cancel_and_wait([failed, normal, stuck, None], what="test", timeout=0.2)
    # Then the wait is bounded, the failure and the stuck task are logged, not dropped
    assert loop.time() - started < 1.0
    assert normal.cancelled()
    messages = [r.getMessage() for r in caplog.records]
    assert any("fails failed" in m for m in messages)
    assert any("stubborn ignored cancellation" in m for m in messages)
    assert not any("normal" in m for m in messages)
    stuck.cancel()
    stuck.get_coro().close()  # type: ignore[union-attr]


async def test_cancel_and_wait__the_callers_cancellation_propagates() -> None:
    # Given a stop that waits for a task slow to finish its cancellation
    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.shield(asyncio.sleep(0.3))

    child = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait([child], what="test"))
    await asyncio.sleep(0.05)
    # When the stopper itself is cancelled, Then it ends cancelled (nothing swallowed it)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    await asyncio.wait({child}, timeout=2)
    assert child.cancelled()


async def test_bounded__logs_a_timeout_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="meshnode.federation.tasks"):
        await bounded(asyncio.sleep(10), what="goodbye", timeout=0.05)
    assert "goodbye did not finish within 0.1 s" in caplog.text
