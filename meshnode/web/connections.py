"""Slow clients and connection counts: what a visitor can hold open on the node.

Three rules, each configurable in ``[server]``:

- a request head must arrive within ``header_timeout`` seconds of the connection opening
  (or of the previous answer on a kept-alive connection): aiohttp's keep-alive timer, which
  also runs before the first request, closes it otherwise;
- a request body must arrive within ``body_timeout`` seconds of its head
  (``connection_middleware``), else the connection is closed;
- at most ``max_connections`` connections are open (``ConnectionGuard``): a new one first
  evicts the connection idle the longest (no request under way: slow or absent headers,
  idle keep-alive), then the oldest one still receiving a body; when every connection is
  busy answering, the new one gets a short 503. The cap is kept under the process's file
  limit (``fit_connection_cap``), so ``accept()`` never fails for lack of descriptors.

Each class of refusal is logged as one line per minute with a count (``ThrottledLog``),
never a traceback per connection; so are requests aiohttp's parser refuses as malformed
(``quiet_malformed_requests``), which it would otherwise log with a traceback each.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from meshnode.config import Config

log = logging.getLogger(__name__)

LOG_INTERVAL = 60.0
# Descriptors kept for everything but visitors: SQLite, the outgoing client pool (aiohttp's
# default limit is 100), mDNS sockets, logs, media files being served.
FD_RESERVE = 192
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
           b"Retry-After: 5\r\nConnection: close\r\nContent-Length: 33\r\n\r\n"
           b"too many connections; retry soon\n")
ACCEPT_ERROR = "socket.accept() out of system resource"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ThrottledLog:
    """At most one line per kind of event per ``interval`` seconds, with a count."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL) -> None:
        self._logger = logger
        self._interval = interval
        self._counts: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def note(self, kind: str, message: str, now: float) -> None:
        """Count one ``kind`` event; log ``message`` if this kind was quiet for a while."""
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if now - self._last.get(kind, -self._interval) >= self._interval:
            self._logger.warning("%s (%d since the last such line)", message,
                                 self._counts.pop(kind))
            self._last[kind] = now


class MalformedRequestFilter(logging.Filter):
    """Turns aiohttp's "Error handling request" traceback for a request its parser refused
    (bad request line, header or chunk: the client already got a 400) into one counted line
    a minute, so a stranger cannot fill a Pi's SD card with tracebacks."""

    def __init__(self, throttled: ThrottledLog) -> None:
        super().__init__()
        self._throttled = throttled

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but those for malformed requests (counted instead)."""
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        self._throttled.note("malformed", "malformed HTTP requests refused with 400",
                             time.monotonic())
        return False


@contextmanager
def quiet_malformed_requests(interval: float = LOG_INTERVAL) -> Iterator[None]:
    """While serving, log malformed requests as one counted line per ``interval``."""
    server_log = logging.getLogger("aiohttp.server")
    quiet = MalformedRequestFilter(ThrottledLog(log, interval))
    server_log.addFilter(quiet)
    try:
        yield
    finally:
        server_log.removeFilter(quiet)


class GuardedConnection(asyncio.Protocol):
    """Wraps aiohttp's per-connection protocol so the guard can count and evict it."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], Any]) -> None:
        self._guard = guard
        self._make_inner = make_inner
        self.inner: Any = None
        self.transport: asyncio.Transport | None = None
        self.request: web.BaseRequest | None = None  # the request being answered, if any
        self.since = 0.0  # admitted, or last became idle / busy

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit (maybe evicting another) or refuse; aiohttp takes over once admitted."""
        transport = cast(asyncio.Transport, transport)  # a TCP server's transports
        self.transport = transport
        if not self._guard.admit(self):
            transport.write(REFUSAL)
            transport.close()
            return
        self.inner = self._make_inner()
        self.inner.connection_made(transport)
        self._guard.attach(self)

    def data_received(self, data: bytes) -> None:
        """Hand bytes to aiohttp (none for a refused connection)."""
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Hand the half-close to aiohttp."""
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        """Free the slot, then let aiohttp clean up."""
        self._guard.release(self)
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        """Flow control, passed through."""
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        """Flow control, passed through."""
        if self.inner is not None:
            self.inner.resume_writing()

    def receiving_body(self) -> bool:
        """Busy with a request whose body has not fully arrived."""
        return self.request is not None and not self.request.content.is_eof()


class ConnectionGuard:
    """Caps open connections, evicting slow or idle ones first; times out slow bodies."""

    def __init__(self, config: Config) -> None:
        self.cap = config.max_connections
        self.body_timeout = config.body_timeout
        self.header_timeout = config.header_timeout
        self.log = ThrottledLog(log)
        self._open: dict[GuardedConnection, None] = {}
        self._by_handler: dict[object, GuardedConnection] = {}

    @property
    def open_count(self) -> int:
        """Connections currently admitted."""
        return len(self._open)

    def protocol_factory(self, make_inner: Callable[[], Any]) -> Callable[[], GuardedConnection]:
        """A protocol factory for ``loop.create_server`` around aiohttp's ``runner.server``."""
        return lambda: GuardedConnection(self, make_inner)

    def admit(self, conn: GuardedConnection) -> bool:
        """Make room for ``conn`` if the cap is reached; False when nothing could go."""
        now = asyncio.get_running_loop().time()
        if len(self._open) >= self.cap:
            victim = self._victim()
            if victim is None:
                self.log.note("refused", f"connection cap ({self.cap}) reached with every"
                              " connection busy: refused a new one with 503", now)
                return False
            self.log.note("evicted", f"connection cap ({self.cap}) reached: closed the"
                          " connection idle or slow the longest", now)
            self.release(victim)
            if victim.transport is not None:
                victim.transport.abort()
        conn.since = now
        self._open[conn] = None
        return True

    def attach(self, conn: GuardedConnection) -> None:
        """Remember which aiohttp protocol belongs to ``conn`` (the middleware sees that)."""
        self._by_handler[conn.inner] = conn

    def release(self, conn: GuardedConnection) -> None:
        """Forget ``conn`` (idempotent)."""
        self._open.pop(conn, None)
        self._by_handler.pop(conn.inner, None)

    def _victim(self) -> GuardedConnection | None:
        idle = [c for c in self._open if c.request is None]
        if idle:
            return min(idle, key=lambda c: c.since)
        receiving = [c for c in self._open if c.receiving_body()]
        return min(receiving, key=lambda c: c.since) if receiving else None

    def started(self, request: web.Request) -> GuardedConnection | None:
        """Mark the connection of ``request`` busy (not evictable once its body is in)."""
        conn = self._by_handler.get(request.protocol)
        if conn is not None:
            conn.request = request
            conn.since = asyncio.get_running_loop().time()
        return conn

    def finished(self, conn: GuardedConnection | None) -> None:
        """The answer is written: the connection is idle again."""
        if conn is not None:
            conn.request = None
            conn.since = asyncio.get_running_loop().time()

    def body_deadline(self, request: web.Request) -> None:
        """Called ``body_timeout`` after the head: close the connection if the body lags."""
        if request.content.is_eof() or request.transport is None:
            return
        self.log.note("body", f"closed a connection whose request body did not arrive within"
                      f" {self.body_timeout:g} s", asyncio.get_running_loop().time())
        request.transport.abort()

    def accept_errors(self, loop: asyncio.AbstractEventLoop) -> None:
        """Log ``accept()`` running out of descriptors as a counted line, not a traceback."""
        previous = loop.get_exception_handler()

        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            if str(context.get("message", "")).startswith(ACCEPT_ERROR):
                self.log.note("accept", "accept() failed: out of file descriptors", loop.time())
            elif previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handler)


CONNECTIONS = web.AppKey("connections", ConnectionGuard)


@web.middleware
async def connection_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Times out slow bodies and tells the guard which connections are busy answering."""
    guard = request.app[CONNECTIONS]
    conn = guard.started(request)
    timer = None
    # A body already in full (an inbox POST usually arrives in one read) needs no timer:
    # ``body_deadline`` would find it complete. Each armed timer is also a cancelled entry
    # left in the loop's heap until the timeout (60 s of requests at the inbox's rate).
    if request.body_exists and not request.content.is_eof():
        loop = asyncio.get_running_loop()
        timer = loop.call_later(guard.body_timeout, guard.body_deadline, request)
    try:
        return await handler(request)
    except (ConnectionError, RuntimeError):
        # aiohttp raises ConnectionResetError, or RuntimeError("Connection closed.") when a
        # read starts after the close, for a body cut off by the timeout, an eviction or
        # the client leaving. Nobody reads an answer then, and the cause was logged once:
        # no traceback per connection. Any other error goes on.
        transport = request.transport
        if transport is not None and not transport.is_closing():
            raise
        return web.Response(status=408)
    finally:
        if timer is not None:
            timer.cancel()
        guard.finished(conn)


def fit_connection_cap(wanted: int) -> int:
    """Raise the soft file limit so ``wanted`` connections fit; else lower the cap to fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(8, soft - FD_RESERVE)
        log.warning("server.max_connections lowered from %d to %d: the file limit is %d",
                    wanted, fitted, soft)
        return fitted
    return wanted


async def start_server(
    runner: web.AppRunner, guard: ConnectionGuard, host: str, port: int
) -> asyncio.AbstractServer:
    """Listen on ``host:port`` with ``runner``'s aiohttp server behind ``guard``.

    Used instead of ``web.TCPSite``; ``runner.cleanup()`` still closes the connections.
    Close the returned server before ``runner.cleanup()``.
    """
    server = runner.server
    if server is None:
        raise RuntimeError("call runner.setup() before start_server()")
    loop = asyncio.get_running_loop()
    guard.cap = fit_connection_cap(guard.cap)
    guard.accept_errors(loop)
    return await loop.create_server(guard.protocol_factory(server), host, port, backlog=128)
