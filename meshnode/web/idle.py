"""An idle node gives back what its busy minutes kept (issue 17: a Raspberry Pi's memory).

Under load the members' pages fill bounded caches: rendered anonymous pages
(``web/pagecache.py``), listing cards (``web/cards.py``), deal cards and wallet lines
(``web/fragments.py``), each language's formatting memo (``web/i18n.py``) and the rows and
page views the pages read (``services/readcache.py``) and the documents already verified
(``services/verified.py``); the inbox's door keeps its readings of activities for the worker
(``federation/state.py``). Each is capped, but a node that
served a burst kept them full for ever after, and a Pi shares its RAM with everything else it
runs. So, every ``SWEEP_SECONDS``:

* pages older than ``page_cache_seconds`` are dropped (they would never be served again);
* once no request at all has come for ``IDLE_SECONDS`` (once per idle stretch), every one
  of those caches is emptied, the garbage collected and glibc's free pages returned
  (``services/memory.py``). The next visitor pays one render per page again (a few
  milliseconds), as after a start; SQLite's connections give back their page caches too.

And once ``QUIET_SECONDS`` pass without a request after some (a burst of pages is over),
memory goes back (``give_back``): SQLite's connections free their page caches (2 MB after
1,000 pages; the next reads come from the kernel's page cache, a few microseconds per page)
and the heap is trimmed (glibc kept 4 MB of freed memory until the next periodic trim,
``services/memory.py``, up to a minute later); the Python caches stay warm.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from meshnode.federation.state import FEDERATION
from meshnode.protocol.activities import origin_of
from meshnode.protocol.capacity import stored_capacity
from meshnode.services.background import BackgroundTask
from meshnode.services.memory import forget_abc_caches, forget_library_memos, trim_heap
from meshnode.web.appkeys import CARDS, CONTEXT, FRAGMENTS, I18N, SEARCH_OPTIONS
from meshnode.web.pagecache import PAGE_CACHE

SWEEP_SECONDS = 30.0
IDLE_SECONDS = 60.0
QUIET_SECONDS = 2.0
# Pure functions' memos (``functools.lru_cache``), emptied with the caches: they refill at a
# few microseconds an entry, and ``origin_of`` is keyed by whole URLs (every activity's id is
# new), so after a busy stretch it held 4,096 URLs read from peers' documents for ever, live
# objects made during the load that kept Python's object arenas from being given back
# (issue 17: the soak; tracemalloc, 2-minute soak: +1,443 blocks there, +962 from the JSON
# parser behind them).
PURE_MEMOS = (origin_of, stored_capacity)


def sweep(app: web.Application, now: float, *, idle_seconds: float = IDLE_SECONDS) -> bool:
    """One sweep at monotonic time ``now``: drop expired pages; empty every cache and trim
    the heap if no request came for ``idle_seconds``. Whether the node was idle."""
    cache = app[PAGE_CACHE]
    cache.drop_expired(now)
    if now - cache.last_request < idle_seconds or cache.swept_after == cache.last_request:
        return False  # busy, or already swept since the last request
    cache.swept_after = cache.last_request
    for pages in (cache, app[CARDS], app[FRAGMENTS], app[SEARCH_OPTIONS]):
        pages.clear()
    if (ctx := app.get(CONTEXT)) is not None:  # rows and page views read for the pages
        ctx.reads.clear()
        ctx.views.clear()
        ctx.match_counts.clear()
        ctx.verified.clear()
    app[I18N].forget()
    if (federation := app.get(FEDERATION)) is not None:  # what the door kept of its peers
        federation.writer.forget_readings()
        federation.senders.forget()
        federation.blocked.forget()
    for memo in PURE_MEMOS:
        memo.cache_clear()
    forget_library_memos()  # yarl's parsed URLs, aiohttp's Content-Types: peers' strings
    forget_abc_caches()  # isinstance(x, Mapping)'s answers, built again during the load
    gc.collect()
    trim_heap()
    return True


def settle(app: web.Application, now: float, *, quiet_seconds: float = QUIET_SECONDS) -> bool:
    """Whether memory should go back now (``give_back``): ``quiet_seconds`` have passed since
    the last request, once per quiet moment (a node without requests is not asked again and
    again)."""
    cache = app[PAGE_CACHE]
    if now - cache.last_request < quiet_seconds or cache.trimmed_after == cache.last_request:
        return False
    cache.trimmed_after = cache.last_request
    return True


async def give_back(app: web.Application, *, idle: bool = False) -> None:
    """SQLite's page caches freed (``Store.shrink_memory``), and when the node is ``idle``
    (after a sweep that emptied the caches) its connections' prepared statements too
    (``Store.forget_statements``); then glibc's free pages returned to the system, what
    SQLite freed included."""
    if (ctx := app.get(CONTEXT)) is not None:
        await ctx.store.shrink_memory()
        if idle:
            await ctx.store.forget_statements()
    trim_heap()


async def _sweep_forever(app: web.Application, seconds: float, quiet: float) -> None:
    next_sweep = time.monotonic() + seconds
    while True:
        await asyncio.sleep(quiet)
        now = time.monotonic()
        swept = False
        if now >= next_sweep:
            next_sweep = now + seconds
            swept = sweep(app, now)
        if settle(app, now, quiet_seconds=quiet) or swept:
            await give_back(app, idle=swept)


def idle_sweep_context(*, run_workers: bool = True, seconds: float = SWEEP_SECONDS,
                       quiet: float = QUIET_SECONDS
                       ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry: giving memory back ``quiet`` seconds after a burst of
    requests, sweeping every ``seconds`` (tests call ``settle``, ``give_back`` and ``sweep``
    themselves when ``run_workers`` is False)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with BackgroundTask(lambda: _sweep_forever(app, seconds, quiet),
                                  name="idle-sweep", run=run_workers):
            yield

    return context
