"""Giving memory back: a Raspberry Pi shares its RAM with everything else it runs.

CPython frees its small objects in 1 MiB arenas it unmaps once empty, but everything larger
(rows SQLite hands back, rendered pages, request bodies, image buffers) goes through glibc's
``malloc``, which keeps freed memory for reuse, in one arena per thread that allocated it.
After a burst of work (a page storm, a catch-up, six uploads) that memory stays resident.
Three process-wide settings bring it back (``scripts/bench_memory.py`` prints the figures):

* ``limit_arenas``: at most two glibc arenas, so the store's and the executor's threads do
  not each keep a fragmented heap of their own;
* ``trim_heap``: ``malloc_trim(0)`` returns the free pages of every arena, including those in
  the middle of a heap (glibc ≥ 2.8); it takes microseconds on a node-sized heap;
* ``prefer_pure_frozenlist``: aiohttp's frozen lists (its signals and middleware lists,
  read a few times per request) in Python rather than frozenlist's C++ build, which loads
  libstdc++ (1.1 MB resident);
* ``trim_context``: once the node has started (the start-up's garbage collected first), and
  then every ``TRIM_SECONDS`` while it runs.

Where there is no glibc (musl, macOS) each of these does nothing and says so.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable

from meshnode.services.background import BackgroundTask

log = logging.getLogger(__name__)

# mallopt parameter numbers (glibc malloc.h).
M_ARENA_MAX = -8
ARENAS = 2
TRIM_SECONDS = 60.0

Trimmer = Callable[[int], object]


def heap_trimmer() -> Trimmer | None:
    """glibc's ``malloc_trim``, which returns freed arena pages to the system, if present."""
    try:
        trim: Trimmer = ctypes.CDLL(None).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): the allocator decides
        return None


def trim_heap() -> bool:
    """Return glibc's free pages to the system now; False where there is no glibc."""
    trim = heap_trimmer()
    if trim is None:
        return False
    trim(0)
    return True


def limit_arenas(count: int = ARENAS) -> bool:
    """Have glibc keep at most ``count`` malloc arenas (process-wide, before threads start).

    False where there is no glibc.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))


FROZENLIST_SWITCH = "FROZENLIST_NO_EXTENSIONS"  # frozenlist's documented switch


def prefer_pure_frozenlist() -> bool:
    """Have frozenlist use its pure-Python ``FrozenList`` (its C++ build loads libstdc++:
    1.1 MB of resident memory for lists aiohttp freezes once at start-up). Process-wide, and
    only effective before frozenlist is first imported (by aiohttp): whether it will be.
    https://frozenlist.aio-libs.org/en/latest/#implementation"""
    os.environ.setdefault(FROZENLIST_SWITCH, "1")
    return "frozenlist" not in sys.modules


async def trim_forever(seconds: float = TRIM_SECONDS) -> None:
    """Trim the heap every ``seconds`` (cancel to stop)."""
    while True:
        await asyncio.sleep(seconds)
        trim_heap()


def trim_context(*, run_workers: bool = True, seconds: float = TRIM_SECONDS
                 ) -> Callable[[object], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry, appended last: once every resource is open, collect the
    start-up's garbage and trim; then trim every ``seconds`` (unless ``run_workers`` is
    False: tests call ``trim_heap`` themselves)."""

    async def context(app: object) -> AsyncIterator[None]:
        gc.collect()
        if not trim_heap():
            log.info("no glibc malloc_trim here: freed memory stays with the allocator")
        async with BackgroundTask(lambda: trim_forever(seconds), name="heap-trim",
                                  run=run_workers):
            yield

    return context
