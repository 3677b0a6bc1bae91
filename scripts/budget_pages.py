"""Where a member's page spends the node's CPU: per thread, and per part on the event loop.

Usage: ``PYTHONPATH=. python scripts/budget_pages.py [--listings 10000] [--pages
search,listing,wallet] [--seconds 6] [--clients 50]``

Seeds a node like ``bench_web.py --members`` and serves it in this process the way
``meshnode run`` does (``create_app``, the guarded listener, the frozen heap), signed in as
``member0``; ``wrk`` (another process) loads each page twice:

1. unprofiled: the CPU of each of the node's threads per request (``/proc/self/task``: the
   event loop, the reader's and the writer's SQLite threads, others), and the trips to a
   connection's thread per request;
2. one client at a time (``wrk -c1``), the loop thread's CPU clock (``time.thread_time_ns``)
   read at the boundaries of each part of a request: aiohttp's parsing, each middleware,
   the session lookup, the handler, Jinja, the trips to the reader, writing the response.
   With one request in flight the loop is idle while a part awaits the reader, so a
   coroutine's clock difference is its own CPU, what it calls included (a part nested in
   itself counts once). What no part covers is the loop's own work (``epoll``, callbacks,
   the reader's wake-ups through the self-pipe). cProfile and py-spy are not used: the
   first inflates small calls several times over, the second counts GIL waits as busy.

A diagnostic for issue 17's closing note, not a benchmark: ``bench_web.py --members`` gives
the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.serve import settle_heap
from meshnode.services.node import init_node
from meshnode.web.appkeys import CONTEXT
from meshnode.web.connections import CONNECTIONS, start_server
from scripts import bench_web as bench


@dataclass
class Timer:
    """One part's CPU on the loop thread (nanoseconds), and how often it ran."""

    ns: int = 0
    calls: int = 0
    depth: int = 0


TIMERS: dict[str, Timer] = {}


def _timed_sync(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    timer = TIMERS.setdefault(label, Timer())

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        if timer.depth:
            return fn(*args, **kwargs)
        timer.depth += 1
        began = time.thread_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            timer.ns += time.thread_time_ns() - began
            timer.calls += 1
            timer.depth -= 1

    return timed


def _timed_async(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    timer = TIMERS.setdefault(label, Timer())

    @functools.wraps(fn)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        if timer.depth:
            return await fn(*args, **kwargs)
        timer.depth += 1
        began = time.thread_time_ns()
        try:
            return await fn(*args, **kwargs)
        finally:
            timer.ns += time.thread_time_ns() - began
            timer.calls += 1
            timer.depth -= 1

    return timed


def instrument(label: str, owner: Any, name: str, *, everywhere: bool = False) -> None:
    """Time ``owner.name`` (a module's function or a class's method) under ``label``;
    ``everywhere``: also in each meshnode module that imported it by name."""
    original = getattr(owner, name)
    wrap = _timed_async if inspect.iscoroutinefunction(original) else _timed_sync
    timed = wrap(label, original)
    if hasattr(original, "__middleware_version__"):
        timed.__middleware_version__ = original.__middleware_version__  # type: ignore
    setattr(owner, name, timed)
    if everywhere:
        for module in list(sys.modules.values()):
            if (getattr(module, "__name__", "").startswith("meshnode")
                    and getattr(module, name, None) is original):
                setattr(module, name, timed)


def instrument_parts() -> None:
    """Put the timers in place (before ``create_app``: it reads the middlewares)."""
    from aiohttp import web_protocol
    from jinja2.environment import Template

    import meshnode.app
    from meshnode.services import badges
    from meshnode.services.context import NodeContext
    from meshnode.store import db
    from meshnode.web import browser, cards, search_form
    from meshnode.web.pages import deals, listings, wallet

    instrument("aiohttp: bytes in (parse)", web_protocol.RequestHandler, "data_received")
    instrument("aiohttp: request (all below)", web_protocol.RequestHandler,
               "_handle_request")
    instrument("aiohttp: write the response", web_protocol.RequestHandler,
               "finish_response")
    for middleware in ("connection_middleware", "security_headers_middleware",
                       "error_middleware", "idempotency_middleware", "page_cache_middleware"):
        instrument(f"middleware {middleware} (+inner)", meshnode.app, middleware)
    instrument("session lookup", browser, "current_session", everywhere=True)
    instrument("render (common context + Jinja)", browser, "render", everywhere=True)
    instrument("  Jinja: Template.render (page)", Template, "render")
    instrument("  navigation badges", badges, "navigation_badges")
    instrument("  member nav fragment", browser, "_member_nav")
    instrument("  cards (render_all)", cards.CardCache, "render_all")
    instrument("handler: search", listings, "search")
    instrument("  search filters form", search_form.SearchOptions, "filters")
    instrument("  card context (names, capacity)", listings, "card_context")
    instrument("handler: listing", listings, "listing_page")
    instrument("handler: wallet", wallet, "show_wallet")
    instrument("handler: my deals", deals, "my_deals")
    instrument("NodeContext.cached", NodeContext, "cached")
    instrument("store.data_version", db.Store, "data_version")
    instrument("trip to a SQLite thread (loop side)", aiosqlite.Connection, "_execute")


async def _load(url: str, paths: list[str], args: argparse.Namespace, cookie: str
                ) -> dict[str, float]:
    return await asyncio.to_thread(bench.drive_wrk, url, paths, args.clients, args.seconds,
                                   cookie)


def _per_thread(before: dict[int, float], after: dict[int, float], threads: dict[str, int],
                requests: float) -> dict[str, float]:
    names = {tid: label for label, tid in threads.items()}
    per: dict[str, float] = {}
    for tid, spent in after.items():
        label = names.get(tid, "other threads")
        per[label] = per.get(label, 0.0) + (spent - before.get(tid, 0.0)) * 1e6 / requests
    return per


async def measure_page(name: str, paths: list[str], url: str, cookie: str,
                       args: argparse.Namespace, threads: dict[str, int]) -> None:
    """Print one page's per-thread CPU at ``--clients``, then its parts at one client."""
    await asyncio.to_thread(bench.drive_wrk, url, paths, args.clients, 1, cookie)  # warm
    for clients in (args.clients, 1):
        for timer in TIMERS.values():
            timer.ns = timer.calls = 0
        before = bench.thread_cpu()
        r = await asyncio.to_thread(bench.drive_wrk, url, paths, clients, args.seconds, cookie)
        count = max(1.0, r["requests"])
        per = _per_thread(before, bench.thread_cpu(), threads, count)
        print(f"\n== {name}, {clients} client(s): {r['requests']:.0f} requests, p99 "
              f"{r['p99']:.1f} ms, {sum(per.values()):.0f} µs of CPU per request")
        for label, spent in sorted(per.items(), key=lambda kv: -kv[1]):
            print(f"  {label:44} {spent:7.0f} µs")
    print(f"  {'part (loop thread, inclusive)':44} {'µs/req':>7} {'calls/req':>9}")
    for label, timer in TIMERS.items():
        if timer.calls:
            print(f"  {label:44} {timer.ns / 1000 / count:7.1f} {timer.calls / count:9.2f}")


async def main_async(args: argparse.Namespace) -> None:
    """Seed, serve, sign in, measure each page."""
    with tempfile.TemporaryDirectory(prefix="meshnode-budget-") as tmp:
        port = bench._free_port()
        config = init_node(Config(data_dir=Path(tmp) / "node", name="Banc d'essai",
                                  handle="bench", public_url=f"http://127.0.0.1:{port}",
                                  port=port, discovery_policy="off"))
        ids = await bench.seed(config, args.listings)
        await bench.seed_member_activity(config, ids)
        instrument_parts()
        app = create_app(config)
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               keepalive_timeout=config.header_timeout)
        await runner.setup()
        listener = await start_server(runner, app[CONNECTIONS], "127.0.0.1", port)
        try:
            settle_heap()
            url = f"http://127.0.0.1:{port}"
            cookie = await bench.login_cookie(url, "member0", "bench-password")
            store = app[CONTEXT].store
            threads = {"event loop": threading.get_native_id(),
                       "reader (SQLite)": store.reader._thread.native_id or 0,
                       "writer (SQLite)": store._writer._thread.native_id or 0}
            mix = bench._page_mix(ids, 2_000)
            pages = {**mix, "wallet": ["/wallet"], "bookings": ["/my/deals"]}
            for name in args.pages.split(","):
                await measure_page(name, pages[name], url, cookie, args, threads)
        finally:
            listener.close()
            await runner.cleanup()


def main() -> None:
    """Parse the flags and measure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--pages", default="search,listing,wallet,home,bookings")
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--clients", type=int, default=50)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
