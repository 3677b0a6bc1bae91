"""``meshnode run``'s server: the application, its listener, signals and a bounded shutdown.

Apart from ``cli.py`` so that the other commands (and ``cli.py`` itself) do not import
aiohttp: ``cmd_run`` imports this module only after ``services.memory.prefer_pure_frozenlist``
(issue 17: the node's memory on a Raspberry Pi).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading

from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.services.images import map_large_allocations
from meshnode.services.memory import limit_arenas
from meshnode.web.connections import CONNECTIONS, quiet_malformed_requests, start_server

log = logging.getLogger("meshnode")
SHUTDOWN_TIMEOUT = 10.0
# After SIGTERM the process ends within this bound whatever happens (a store close stuck on a
# full disk, a thread that never returns): committed data is safe in SQLite's WAL regardless.
SHUTDOWN_HARD_LIMIT = 45.0
FORCED_EXIT_CODE = 70  # EX_SOFTWARE
# The collector's thresholds once the start-up heap is frozen: a young collection every 5,000
# new containers, not 700 (issue 17: at the inbox door ~14 µs a request went to collections,
# ~3 µs with these); garbage in reference cycles waits a little longer (at most ~5,000
# containers: idle and after-pages RSS measured the same).
GC_THRESHOLDS = (5_000, 20, 20)


async def serve(config: Config, *, access_log: bool = False) -> None:
    """Serve the node until SIGINT or SIGTERM, then stop it cleanly (within a hard limit)."""
    map_large_allocations()  # image buffers go back to the system once freed
    limit_arenas()  # the store's and executor's threads share two malloc arenas
    app = create_app(config)
    # No access log by default: one journal line per request wears a Pi's SD card.
    # keepalive_timeout also runs before the first request: it is the request-head timeout.
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        keepalive_timeout=config.header_timeout,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    listener: asyncio.AbstractServer | None = None
    try:
        listener = await start_server(runner, app[CONNECTIONS], config.host, config.port)
        settle_heap()
        log.info("serving %r on http://%s:%d (public URL %s)", config.name, config.host,
                 config.port, config.public_url)
        with quiet_malformed_requests():
            await stop.wait()
        log.info("shutting down")
        _exit_at_the_latest(SHUTDOWN_HARD_LIMIT)
    finally:
        if listener is not None:
            listener.close()
        await runner.cleanup()
    log.info("stopped cleanly")


def settle_heap() -> int:
    """Collect once, then move every object alive after start-up (modules, routes, compiled
    templates, caches' containers) out of the collector's reach (``gc.freeze``); returns how
    many. A full collection then walks only what requests created: under 50 connections it
    took 25-150 ms, every connection waiting (issue 17: the members' pages' p99), and ~2 ms
    once frozen. Then the collector runs less often (``GC_THRESHOLDS``).
    https://docs.python.org/3/library/gc.html#gc.freeze"""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()


def _exit_at_the_latest(seconds: float) -> None:
    """Arm a daemon timer that ends the process if a clean shutdown has not within ``seconds``."""

    def force() -> None:
        log.error("shutdown did not finish within %.0fs; exiting now", seconds)
        logging.shutdown()
        os._exit(FORCED_EXIT_CODE)

    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()
