"""One background task for the life of a ``cleanup_ctx`` entry: started on entry, cancelled
and awaited on exit (the idle sweep, ``web/idle.py``; the heap trim, ``services/memory.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def background(work: Callable[[], Coroutine[Any, Any, None]], *, name: str,
                     run: bool = True) -> AsyncIterator[None]:
    """Run ``work()`` as a task named ``name`` while the block runs (not at all unless
    ``run``: tests step the work themselves); cancel it and wait for it on the way out."""
    task = asyncio.create_task(work(), name=name) if run else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
