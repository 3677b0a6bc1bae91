"""services/background.py: a cleanup_ctx entry's one background task."""

from __future__ import annotations

import asyncio

from meshnode.services.background import BackgroundTask


async def test_background__runs_inside_the_block_and_is_cancelled_on_exit() -> None:
    # Given work that counts its rounds and records that it was cancelled
    rounds: list[str] = []
    stepped = asyncio.Event()

    async def work() -> None:
        try:
            while True:
                rounds.append("round")
                stepped.set()
                await asyncio.sleep(3600)
        except asyncio.CancelledError:
            rounds.append("cancelled")
            raise

    # When the block runs, Then the work has started
    async with BackgroundTask(work, name="test-work"):
        await stepped.wait()
        assert rounds == ["round"]
        assert any(task.get_name() == "test-work" for task in asyncio.all_tasks())
    # Then on exit it was cancelled and awaited: no task of that name is left
    assert rounds == ["round", "cancelled"]
    assert not any(task.get_name() == "test-work" for task in asyncio.all_tasks())


async def test_background__run_false_never_starts_the_work() -> None:
    # Given run=False (tests step the work themselves)
    called: list[bool] = []

    async def work() -> None:
        called.append(True)

    # When the block runs, Then the work was never even created as a coroutine
    async with BackgroundTask(work, name="test-off", run=False):
        await asyncio.sleep(0)
    assert called == []
