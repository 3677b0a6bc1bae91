"""An idle node empties its page caches and gives the memory back (issue 17, web/idle.py)."""

from __future__ import annotations

import abc
import ctypes
import ctypes.util
import gc
import sqlite3
import sys
import time
import weakref
from collections.abc import Mapping

import jinja2
import pytest
import yarl
from aiohttp import web
from aiohttp.helpers import parse_mimetype
from aiohttp.test_utils import TestClient

from meshnode.federation.state import FEDERATION
from meshnode.protocol.activities import origin_of
from meshnode.services.context import NodeContext
from meshnode.services.memory import library_memos
from meshnode.store.db import in_connection_thread
from meshnode.store.statements import drop_dead_cursor_references
from meshnode.web.appkeys import CARDS, FRAGMENTS, I18N
from meshnode.web.fragments import FragmentCache
from meshnode.web.i18n import _negotiate as negotiate_memo
from meshnode.web.i18n import negotiate
from meshnode.web.idle import (
    IDLE_SECONDS,
    PURE_MEMOS,
    QUIET_SECONDS,
    give_back,
    settle,
    sweep,
)
from meshnode.web.pagecache import PAGE_CACHE
from tests.conftest import TestMember
from tests.web.pages.conftest import HTML, make_ride


def abc_cached(cls: type) -> set[object]:
    """The classes an abstract class remembers being, or not being, its subclasses."""
    _, cache, negative, _ = abc._get_dump(cls)  # type: ignore[attr-defined]
    return {ref() for ref in cache | negative}


async def _browse(client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    """An anonymous visitor reads the home page and a listing: pages and cards are kept."""
    listing_id = await make_ride(ctx, alice, title="Perceuse à prêter")
    for path in ("/", f"/listings/{listing_id}"):
        assert (await client.get(path, headers=HTML)).status == 200


async def test_idle_sweep__an_idle_node_empties_its_caches_once(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given a node that served pages: its page and card caches hold them
    await _browse(client, ctx, alice)
    app = client.app
    assert len(app[PAGE_CACHE]) == 2
    assert len(app[CARDS]) >= 1
    assert len(ctx.reads) + len(ctx.views) >= 1
    # And a peer's activity id was read (the memo of its origin filled)
    origin_of("https://peer.example/activities/1")
    assert origin_of.cache_info().currsize >= 1
    # And a browser's Accept-Language was negotiated
    negotiate("de-CH, en;q=0.5", ("fr", "en"))
    assert negotiate_memo.cache_info().currsize >= 1
    # And the libraries parsed a peer's URL and an upload's Content-Type
    yarl.URL("https://peer.example/activities/2")
    parse_mimetype("multipart/form-data; boundary=----idle-sweep")
    assert sum(memo.cache_info().currsize for memo in library_memos()) >= 2
    # And a peer's JSON was checked for a mapping (each of Mapping's subclasses keeps the
    # answer in its negative cache: a weak reference to ``list``)
    assert not isinstance(["peer", "values"], Mapping)
    assert list in abc_cached(web.Request)
    # And the inbox's door kept a reading of an activity for the worker
    federation = app[FEDERATION]
    writer = federation.writer
    await writer.store({"id": "x"}, activity_id="http://a.example/activities/x",
                       actor="http://a.example/u/a", activity_type="Create", body="{}",
                       received_at="2026-11-26T10:00:00Z")
    # And the door knows a sending peer's facts and the set of blocked origins
    await federation.senders.get("http://a.example")
    assert len(federation.senders) == 1
    assert await federation.blocked.contains("http://a.example") is False
    # When a sweep runs after IDLE_SECONDS without any request
    idle_at = app[PAGE_CACHE].last_request + IDLE_SECONDS + 1
    # Then every cache is empty, their byte counts too
    assert sweep(app, idle_at) is True
    assert (len(app[PAGE_CACHE]), app[PAGE_CACHE].bytes) == (0, 0)
    assert (len(app[CARDS]), app[CARDS].bytes) == (0, 0)
    assert len(app[FRAGMENTS]) == 0
    assert not app[I18N].translators["fr"]._memo
    assert negotiate_memo.cache_info().currsize == 0
    assert (len(ctx.reads), len(ctx.views)) == (0, 0)
    assert writer.take_reading("http://a.example/activities/x", "{}") is None
    # And the sender's facts and the blocked set are dropped (read again when needed)
    assert len(federation.senders) == 0
    assert federation.blocked._generation == -1
    assert await federation.blocked.contains("http://a.example") is False
    # And the pure functions' memos too
    assert [memo.cache_info().currsize for memo in PURE_MEMOS] == [0] * len(PURE_MEMOS)
    # And the libraries' memos of peers' strings
    assert [memo.cache_info().currsize for memo in library_memos()] == [0] * len(
        library_memos())
    # And the abstract classes' answers about subclasses
    assert abc_cached(web.Request) == set()
    assert abc_cached(Mapping) == set()
    # And the next sweep of the same idle stretch does nothing more
    assert sweep(app, idle_at + 30) is False
    # And the pages render again for the next visitor
    assert (await client.get("/", headers=HTML)).status == 200
    assert len(app[PAGE_CACHE]) == 1


async def test_idle_sweep__a_busy_node_keeps_its_fresh_pages(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given a node that has just served pages
    await _browse(client, ctx, alice)
    app = client.app
    # When a sweep runs before IDLE_SECONDS have passed
    # Then nothing is emptied while the pages are fresh
    assert sweep(app, time.monotonic()) is False
    assert len(app[PAGE_CACHE]) == 2
    assert len(app[CARDS]) >= 1
    # And pages older than page_cache_seconds are dropped (never served again), cards kept
    stale = app[PAGE_CACHE].last_request + app[PAGE_CACHE].seconds + 1
    assert sweep(app, stale, idle_seconds=stale + 1) is False
    assert (len(app[PAGE_CACHE]), app[PAGE_CACHE].bytes) == (0, 0)
    assert len(app[CARDS]) >= 1


def test_fragment_cache__long_fragments_are_dropped_beyond_the_byte_cap() -> None:
    # Given a fragment cache allowed 4,000 fragments but only 50 KB
    cache = FragmentCache(size=4000, max_bytes=50_000)
    env = jinja2.Environment(loader=jinja2.DictLoader({"_line.html": "<p>{{ text }}</p>"}),
                             autoescape=True)
    # When 300 different lines of 1 KB each are rendered
    for number in range(300):
        cache.render(env, "_line.html", number, lambda n=number: {"text": f"{n:04d}" * 250})
    # Then the cache holds what fits in 50 KB, the newest lines
    assert cache.bytes <= 50_000
    assert 30 <= len(cache) < 300
    assert cache.bytes == sum(sys.getsizeof(html) for html in cache._html.values())


async def test_idle_sweep__a_quiet_moment_after_requests_trims_the_heap_once(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given a node that has just served pages
    await _browse(client, ctx, alice)
    app = client.app
    last = app[PAGE_CACHE].last_request
    # When the settle tick comes before QUIET_SECONDS have passed, Then nothing goes back
    assert settle(app, last + QUIET_SECONDS / 2) is False
    # When it comes after, Then memory goes back, once for this quiet moment
    assert settle(app, last + QUIET_SECONDS) is True
    assert settle(app, last + QUIET_SECONDS + 30) is False
    # And the caches stay warm (only the idle sweep empties them)
    assert len(app[PAGE_CACHE]) == 2
    # And after the next request the next quiet moment gives back again
    assert (await client.get("/", headers=HTML)).status == 200
    assert settle(app, app[PAGE_CACHE].last_request + QUIET_SECONDS) is True


async def test_idle_sweep__a_quiet_moment_gives_back_sqlites_page_caches(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given SQLite's own memory counter (the library Python's sqlite3 module runs on)
    try:
        sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    except (OSError, AttributeError):
        pytest.skip("no shared SQLite library to ask for its memory")
    # And a node that has just served pages (its connections' page caches hold what they read)
    await _browse(client, ctx, alice)
    app = client.app
    warm = sqlite.sqlite3_memory_used()
    await in_connection_thread(ctx.store.reader, drop_dead_cursor_references)
    # When a quiet moment comes
    assert settle(app, app[PAGE_CACHE].last_request + QUIET_SECONDS) is True
    await give_back(app)
    # Then SQLite freed its page caches, and the pages are still served (and kept warm)
    freed = warm - sqlite.sqlite3_memory_used()
    assert freed > 64 * 1024, freed
    # And shrinking ran on the connections' kept cursors: no new cursor, no weak reference
    assert await in_connection_thread(ctx.store.reader, _cursor_references) == 0
    assert len(app[PAGE_CACHE]) == 2
    assert (await client.get("/", headers=HTML)).status == 200


async def test_idle_sweep__an_idle_node_forgets_its_prepared_statements(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given a node that served pages: its reader prepared the statements they ran
    await _browse(client, ctx, alice)
    app = client.app
    assert await in_connection_thread(ctx.store.reader, _cached_statements) > 0
    # When a quiet moment (not idle yet) gives memory back, Then the statements stay
    await give_back(app)
    assert await in_connection_thread(ctx.store.reader, _cached_statements) > 0
    # When the idle sweep has run and memory goes back
    assert sweep(app, app[PAGE_CACHE].last_request + IDLE_SECONDS + 1) is True
    await give_back(app, idle=True)
    # Then the reader holds no prepared statement, and the pages are served again
    assert await in_connection_thread(ctx.store.reader, _cached_statements) == 0
    assert (await client.get("/", headers=HTML)).status == 200


def _cached_statements(conn: sqlite3.Connection) -> int:
    """How many statements the connection's cache holds (an ``lru_cache`` the connection
    shows only to the garbage collector: see ``store.statements.forget_statements``)."""
    caches = [held for held in gc.get_referents(conn) if hasattr(held, "cache_info")]
    assert len(caches) == 1
    count: int = caches[0].cache_info().currsize
    return count


def _cursor_references(conn: sqlite3.Connection) -> int:
    """The weak references to cursors, live or gone, the connection keeps beside its kept
    cursor's (each cursor made leaves one: ``store.statements.drop_dead_cursor_references``)."""
    kept = getattr(conn, "_reads", None)
    return sum(1 for held in gc.get_referents(conn) if isinstance(held, list)
               for ref in held if isinstance(ref, weakref.ReferenceType)
               and (kept is None or ref() is not kept))
