"""The anonymous page cache: what is shared, what never is, and when a page is rendered again."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.web.pagecache import PAGE_CACHE, PageCache
from tests.conftest import MakeMember, TestMember
from tests.web.pages.conftest import HTML, login, make_ride


def _cache(client: TestClient) -> PageCache:
    return client.app[PAGE_CACHE]


async def _get(client: TestClient, path: str, **headers: str) -> tuple[int, str]:
    response = await client.get(path, headers={**HTML, **headers})
    return response.status, await response.text()


async def test_page_cache__second_anonymous_view_is_served_from_memory(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    listing_id = await make_ride(ctx, alice, title="Perceuse à prêter")
    for path in ("/", "/search?q=perceuse", f"/listings/{listing_id}"):
        first = await _get(client, path)
        hits = _cache(client).hits
        second = await _get(client, path)
        assert first == second
        assert first[0] == 200
        assert "Perceuse à prêter" in first[1]
        assert _cache(client).hits == hits + 1, path


async def test_page_cache__a_write_renders_the_page_again(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    await make_ride(ctx, alice, title="Perceuse à prêter")
    assert "Échelle" not in (await _get(client, "/"))[1]
    await make_ride(ctx, alice, title="Échelle de 3 mètres")
    assert "Échelle de 3 mètres" in (await _get(client, "/"))[1]


async def test_page_cache__write_by_another_process_shows_after_the_ttl(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    listing_id = await make_ride(ctx, alice, title="Perceuse à prêter")
    path = f"/listings/{listing_id}"
    await _get(client, path)
    with sqlite3.connect(ctx.config.database_path) as conn:  # e.g. a `meshnode` command
        conn.execute("UPDATE listings SET title = 'Perceuse vendue' WHERE id = ?", (listing_id,))
    assert "Perceuse à prêter" in (await _get(client, path))[1]  # within the TTL
    _cache(client).seconds = 0.000_001  # page_cache_seconds have passed
    assert "Perceuse vendue" in (await _get(client, path))[1]


async def test_page_cache__one_page_per_language(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    await make_ride(ctx, alice)
    _, english = await _get(client, "/", **{"Accept-Language": "en"})
    _, french = await _get(client, "/", **{"Accept-Language": "fr-FR,fr;q=0.9"})
    assert 'lang="en"' in english
    assert 'lang="fr"' in french
    assert (await _get(client, "/", **{"Accept-Language": "fr"}))[1] == french


async def test_page_cache__pages_with_a_visitor_token_are_never_shared(
        client: TestClient) -> None:
    first = await client.get("/login", headers=HTML)
    client.session.cookie_jar.clear()
    second = await client.get("/login", headers=HTML)
    assert "mn_csrf" in first.cookies
    assert "mn_csrf" in second.cookies
    assert first.cookies["mn_csrf"].value != second.cookies["mn_csrf"].value
    assert first.cookies["mn_csrf"].value in await first.text()
    assert first.cookies["mn_csrf"].value not in await second.text()


async def test_page_cache__anonymous_pages_without_forms_set_no_cookie(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    listing_id = await make_ride(ctx, alice)
    for path in ("/", f"/listings/{listing_id}"):
        response = await client.get(path, headers=HTML)
        assert response.status == 200
        assert "Set-Cookie" not in response.headers, path


async def test_page_cache__members_get_their_own_pages(
        client: TestClient, ctx: NodeContext, make_member: MakeMember) -> None:
    bob = await make_member("bob")
    await make_ride(ctx, bob)
    await _get(client, "/")  # cached anonymously
    await login(client, "bob")
    hits = _cache(client).hits
    status, page = await _get(client, "/")
    assert status == 200
    assert "Log out" in page
    assert _cache(client).hits == hits


async def test_page_cache__servers_asking_for_json_never_get_a_cached_page(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    listing_id = await make_ride(ctx, alice)
    await _get(client, f"/listings/{listing_id}")
    response = await client.get(f"/listings/{listing_id}",
                                headers={"Accept": "application/activity+json"})
    assert response.status == 200
    assert response.content_type == "application/activity+json"
    assert (await response.json())["type"] == "Proposal"


async def test_page_cache__cached_pages_keep_the_security_headers(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    await make_ride(ctx, alice)
    first = await client.get("/", headers=HTML)
    second = await client.get("/", headers=HTML)
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Content-Language",
                 "Content-Type"):
        assert second.headers[name] == first.headers[name], name


async def test_page_cache__zero_seconds_turns_it_off(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    await make_ride(ctx, alice)
    _cache(client).seconds = 0
    await _get(client, "/")
    await _get(client, "/")
    assert _cache(client).hits == 0


async def test_page_cache__concurrent_visitors_share_one_render(
        client: TestClient, ctx: NodeContext, alice: TestMember,
        monkeypatch: pytest.MonkeyPatch) -> None:
    await make_ride(ctx, alice)
    searches = 0
    real_search = listing_service.search_listings

    async def counting_search(*args: Any, **kwargs: Any) -> Any:
        nonlocal searches
        searches += 1
        await asyncio.sleep(0.05)  # a slow render: the others arrive meanwhile
        return await real_search(*args, **kwargs)

    monkeypatch.setattr(listing_service, "search_listings", counting_search)
    pages = await asyncio.gather(*(_get(client, "/") for _ in range(10)))
    assert searches == 1
    assert len(set(pages)) == 1


async def test_page_cache__flood_of_distinct_searches_stays_within_its_memory_cap(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given a small cap, so the test shows it without thousands of requests
    await make_ride(ctx, alice)
    cache = _cache(client)
    cache.max_bytes = 60_000
    # When a visitor asks for many different searches (each a new cache key)
    sizes = []
    for n in range(40):
        status, page = await _get(client, f"/search?q=velo{n}")
        assert status == 200
        sizes.append(len(page.encode()))
    # Then the cache holds at most its cap, dropping the oldest pages
    assert cache.bytes <= 60_000
    assert 0 < len(cache) < 40
    assert cache.bytes == sum(sizes[-len(cache):])
    # And the newest page is still served from memory
    hits = cache.hits
    await _get(client, "/search?q=velo39")
    assert cache.hits == hits + 1
