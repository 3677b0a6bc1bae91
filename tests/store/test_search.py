"""Search plans: sorting the matches and walking the newest-first index give the same pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from meshnode.store.db import initialise_database
from meshnode.store.listings import SearchFilters, _index_hint, _where
from meshnode.store.match_counts import MatchCounts
from tests.conftest import FakeClock, TestMember, ride_listing


async def titles(client: TestClient, member: TestMember, **params: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": "4", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/listings", params=query, headers=member.headers)
        assert response.status == 200
        page = await response.json()
        seen += [item["title"] for item in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            return seen


@pytest.mark.parametrize(
    "params",
    [{"q": "velo"}, {"q": "canal velo"}, {"q": "velo", "kind": "request"},
     {"q": "velo", "near": "45.76,4.83", "radius_km": "3"}, {"q": "absent"}],
)
async def test_search__index_walk_and_sorted_matches_agree(
    client: TestClient, alice: TestMember, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
    params: dict[str, str],
) -> None:
    for number in range(15):
        kind = "request" if number % 3 == 0 else "offer"
        lat = 45.76 if number % 2 else 46.5
        await client.post("/api/v1/listings", headers=alice.headers, json=ride_listing(
            title=f"Vélo numéro {number}", kind=kind,
            location={"name": "Canal", "lat": lat, "lon": 4.83}))
        clock.advance(seconds=number % 2)
    sorted_plan = await titles(client, alice, **params)
    monkeypatch.setattr(listing_store, "WALK_MARGIN", 0)
    walked_plan = await titles(client, alice, **params)
    assert walked_plan == sorted_plan
    if params.get("q") != "absent":
        assert sorted_plan


def test_search__text_matches_are_sorted_from_the_covering_index(tmp_path: Path) -> None:
    """Given a node's database, when a text search sorts its matches, then it reads them
    through ``listings_match`` alone (issue 17: one table page per match overflowed the page
    cache); a search without words and an author's page keep their own plans."""
    initialise_database(tmp_path / "db.sqlite3")
    conn = sqlite3.connect(tmp_path / "db.sqlite3")
    conn.create_function("haversine_km", 4, lambda *_: 0.0)
    filters = SearchFilters(text="velo", kind="offer", price="free", near=(45.7, 4.8), now="x")
    hint = _index_hint(conn, filters)
    clauses, params = _where(filters)
    plan = " ".join(str(row[3]) for row in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT l.seq FROM listings l {hint} WHERE {' AND '.join(clauses)}"
        " ORDER BY l.published_at DESC, l.seq DESC LIMIT 21", params))
    assert "COVERING INDEX listings_match" in plan
    assert _index_hint(conn, SearchFilters(now="x")) == ""
    assert _index_hint(conn, SearchFilters(text="velo", author_id=1, now="x")) == ""
    conn.close()


async def test_search__a_words_count_is_kept_until_a_listing_is_added(
    client: TestClient, ctx: NodeContext, alice: TestMember, clock: FakeClock,
) -> None:
    """The plan choice counts a text query's matches once, then again only after a new
    listing (store/match_counts.py); the pages found are the same as without the count."""
    # Given three listings with the word and a search for it (counted once)
    for number in range(3):
        await client.post("/api/v1/listings", headers=alice.headers,
                          json=ride_listing(title=f"Vélo numéro {number}"))
        clock.advance(seconds=1)
    counts = ctx.match_counts
    first = await titles(client, alice, q="velo")
    counted = counts.counted
    # When the same words are searched again, then nothing is counted again
    assert await titles(client, alice, q="velo") == first
    assert counts.counted == counted
    # When a listing is added, then the words are counted again and the new one shows first
    await client.post("/api/v1/listings", headers=alice.headers,
                      json=ride_listing(title="Vélo tout neuf"))
    after = await titles(client, alice, q="velo")
    assert after == ["Vélo tout neuf", *first]
    assert counts.counted == counted + 1


def test_match_counts__bounded_and_tied_to_the_newest_listing() -> None:
    counts = MatchCounts(size=2)
    counts.put("a", newest=10, matches=3)
    counts.put("b", newest=10, matches=4)
    assert counts.get("a", 10) == 3
    assert counts.get("a", 11) is None  # a listing was added since: count again
    counts.put("c", newest=10, matches=5)  # "b", the least recently used, goes
    assert len(counts) == 2
    assert counts.get("b", 10) is None
    assert counts.get("c", 10) == 5
