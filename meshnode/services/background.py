"""One background task for the life of a ``cleanup_ctx`` entry: started on entry, cancelled
and awaited on exit (the idle sweep, ``web/idle.py``; the heap trim, ``services/memory.py``).

A class rather than ``contextlib.asynccontextmanager``: when the event loop closes a
``cleanup_ctx`` generator itself (the app was never cleaned up), the ``GeneratorExit`` goes
through ``__aexit__`` directly, with no second generator to confuse ("generator didn't stop
after athrow()", ``tests/federation/test_mdns_shutdown.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any


class BackgroundTask:
    """Run ``work()`` as a task named ``name`` while the block runs (not at all unless
    ``run``: tests step the work themselves); cancel it and wait for it on the way out."""

    def __init__(self, work: Callable[[], Coroutine[Any, Any, None]], *, name: str,
                 run: bool = True) -> None:
        self.work, self.name, self.run = work, name, run
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        """Start the task (when ``run``)."""
        if self.run:
            self.task = asyncio.create_task(self.work(), name=self.name)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        """Cancel the task and wait for it; whatever ended the block goes on."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
