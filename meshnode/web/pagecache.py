"""A few seconds of memory for the pages anonymous visitors read most: home, search, listings.

Rendering a page costs 1-3 ms of the node's only CPU core; a Raspberry Pi serving a busy
neighbourhood (or a link shared in a group chat) would queue requests behind each other.
Nginx-style micro-caching keeps those pages in memory briefly, under three rules:

* only GET requests of visitors without a session cookie, asking for HTML, on the page
  routes below; the key is the path with its query and the chosen language;
* a page is kept only if nothing personal went into it (``browser.mark_personal``: the
  anonymous CSRF token of a login form; no ``Set-Cookie``) and it answered 200;
* a kept page is served while it is younger than ``page_cache_seconds`` AND this process
  has committed nothing since it was rendered (``Store.generation``): a new listing, an
  edit, a booking or an inbox activity empties the cache at once. Writes by another process
  (``meshnode`` commands) show up within ``page_cache_seconds``;
* one render per page at a time: visitors asking for a page being rendered wait for that
  render instead of starting their own (nginx's ``proxy_cache_lock``), so a page that
  expires under load costs one render, not fifty.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import PERSONAL, SESSION_COOKIE, translator
from meshnode.web.errors import Handler

PAGE_CACHE_ENTRIES = 1000
# Visitors choose the keys (any search text), so the memory is capped, not only the count:
# 4 MiB in all is a few hundred pages and little for a Raspberry Pi Zero 2's 512 MB.
PAGE_CACHE_MAX_BYTES = 4 * 1024 * 1024
PAGE_CACHE_MAX_PAGE = 256 * 1024
# The pages worth keeping: what anonymous visitors read. Everything else is never cached.
CACHEABLE_PATH = re.compile(r"^/(?:|search|network|listings/[A-Za-z0-9_-]{1,64})$")
_KEPT_HEADERS = ("Content-Type", "Content-Language", "Cache-Control")


@dataclass(frozen=True)
class CachedPage:
    """A rendered page and what it was rendered against."""

    body: bytes
    headers: tuple[tuple[str, str], ...]
    generation: int
    stored_at: float


class PageCache:
    """Bounded LRU of anonymous pages keyed by (path and query, language)."""

    def __init__(self, seconds: float, entries: int = PAGE_CACHE_ENTRIES,
                 max_bytes: int = PAGE_CACHE_MAX_BYTES) -> None:
        self.seconds = seconds
        self.entries = entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._pages: OrderedDict[tuple[str, str], CachedPage] = OrderedDict()
        # Renders in progress: later visitors of the same page wait for the first one.
        self.rendering: dict[tuple[str, str], asyncio.Future[CachedPage | None]] = {}
        # When this process last received a request of any kind (web/idle.py).
        self.last_request = time.monotonic()
        self.swept_after: float | None = None  # the ``last_request`` an idle sweep followed
        self.trimmed_after: float | None = None  # the ``last_request`` a quiet trim followed

    def clear(self) -> None:
        """Forget every page (pages being rendered are still shared when done)."""
        self._pages.clear()
        self.bytes = 0

    def get(self, key: tuple[str, str], generation: int) -> CachedPage | None:
        """The page for ``key`` if still fresh for ``generation``."""
        page = self._pages.get(key)
        if page is None or page.generation != generation or (
                time.monotonic() - page.stored_at > self.seconds):
            self.misses += 1
            return None
        self._pages.move_to_end(key)
        self.hits += 1
        return page

    def __len__(self) -> int:
        return len(self._pages)

    def drop_expired(self, now: float) -> int:
        """Forget the pages older than ``seconds`` (never served again); how many."""
        old = [key for key, page in self._pages.items() if now - page.stored_at > self.seconds]
        for key in old:
            self.bytes -= len(self._pages.pop(key).body)
        return len(old)

    def put(self, key: tuple[str, str], page: CachedPage) -> None:
        """Keep ``page``, dropping the least recently used beyond the bounds."""
        previous = self._pages.pop(key, None)
        if previous is not None:
            self.bytes -= len(previous.body)
        self._pages[key] = page
        self.bytes += len(page.body)
        while len(self._pages) > self.entries or self.bytes > self.max_bytes:
            _, dropped = self._pages.popitem(last=False)
            self.bytes -= len(dropped.body)


PAGE_CACHE = web.AppKey("page_cache", PageCache)


def _cache_key(request: web.Request) -> tuple[str, str] | None:
    """The cache key of a request that may be served from the cache, else None."""
    if request.method != "GET" or SESSION_COOKIE in request.cookies:
        return None
    if "text/html" not in request.headers.get("Accept", ""):
        return None  # peers and scripts get JSON (ActivityPub, API), never a cached page
    if not CACHEABLE_PATH.match(request.path):
        return None
    return request.path_qs, translator(request).lang


@web.middleware
async def page_cache_middleware(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Serve anonymous pages from the cache; keep what may be shared (module docstring)."""
    cache = request.app[PAGE_CACHE]
    cache.last_request = time.monotonic()
    key = _cache_key(request) if cache.seconds > 0 else None
    if key is None:
        return await handler(request)
    generation = request.app[CONTEXT].store.generation
    page = cache.get(key, generation)
    if page is None and key in cache.rendering:
        page = await asyncio.shield(cache.rendering[key])
        if page is None:  # that render was not shareable: this visitor gets their own
            return await handler(request)
    if page is not None:
        return web.Response(body=page.body, headers=CIMultiDict(page.headers))
    rendered: asyncio.Future[CachedPage | None] = asyncio.get_running_loop().create_future()
    cache.rendering[key] = rendered
    try:
        response = await handler(request)
        page = _shareable(request, response, generation)
        if page is not None:
            cache.put(key, page)
        return response
    finally:
        del cache.rendering[key]
        rendered.set_result(page)


def _shareable(
    request: web.Request, response: web.StreamResponse, generation: int
) -> CachedPage | None:
    """The page to keep from ``response``, or None if it must not be shared."""
    if (response.status != 200 or not isinstance(response, web.Response)
            or request.get(PERSONAL) or "Set-Cookie" in response.headers
            or not isinstance(response.body, bytes) or len(response.body) > PAGE_CACHE_MAX_PAGE):
        return None
    headers = tuple((name, response.headers[name]) for name in _KEPT_HEADERS
                    if name in response.headers)
    return CachedPage(response.body, headers, generation, time.monotonic())
