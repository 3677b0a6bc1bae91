"""A search's outcome is kept for its second while nothing is committed; its rows are always
read afresh (services/search_pages.py, issue 17)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.services.search_pages import SearchOutcomes
from meshnode.store import listings as listing_store
from meshnode.store.listings import SearchFilters
from tests.conftest import FakeClock, TestMember, ride_listing


async def _titles(ctx: NodeContext, text: str) -> list[str]:
    page = await listing_service.search_listings(ctx, SearchFilters(text=text, limit=4))
    return [row.title for row in page.items]


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> list[SearchFilters]:
    """Each search that ran its plan (rather than reading a kept outcome's rows)."""
    ran: list[SearchFilters] = []
    search = listing_store.search_listings_and_taken

    async def counted(db: object, filters: SearchFilters, counts: object = None) -> object:
        ran.append(filters)
        return await search(db, filters, counts)  # type: ignore[arg-type]

    monkeypatch.setattr(listing_store, "search_listings_and_taken", counted)
    return ran


async def test_search_outcome__kept_in_its_second_and_searched_again_after_a_commit(
    client: TestClient, ctx: NodeContext, alice: TestMember, clock: FakeClock,
    searches: list[SearchFilters],
) -> None:
    # Given two listings with the word, searched once
    for title in ("Vélo rouge", "Vélo bleu"):
        await client.post("/api/v1/listings", headers=alice.headers,
                          json=ride_listing(title=title))
        clock.advance(seconds=1)
    first = await _titles(ctx, "velo")
    # When the same search comes again in the same second
    again = await _titles(ctx, "velo")
    # Then it found the same rows without searching again
    assert again == first == ["Vélo bleu", "Vélo rouge"]
    assert len(searches) == 1
    # When a matching listing is committed, then the next search finds it
    await client.post("/api/v1/listings", headers=alice.headers,
                      json=ride_listing(title="Vélo vert"))
    assert await _titles(ctx, "velo") == ["Vélo vert", *first]
    assert len(searches) == 2
    # And in the next second it is searched again (a listing may have expired)
    clock.advance(seconds=1)
    assert await _titles(ctx, "velo") == ["Vélo vert", *first]
    assert len(searches) == 3


async def test_search_outcome__an_expired_listing_leaves_at_its_second(
    client: TestClient, ctx: NodeContext, alice: TestMember, clock: FakeClock,
    searches: list[SearchFilters],
) -> None:
    # Given a listing expiring two seconds from now, found by a search
    expires = clock.now.replace(second=2).strftime("%Y-%m-%dT%H:%M:%SZ")
    await client.post("/api/v1/listings", headers=alice.headers,
                      json=ride_listing(title="Vélo prêté", expires_at=expires))
    assert await _titles(ctx, "velo") == ["Vélo prêté"]
    # When the clock reaches its expiry, with nothing committed
    clock.advance(seconds=2)
    # Then the search no longer finds it
    assert await _titles(ctx, "velo") == []


def test_search_outcomes__bounded_and_tied_to_one_data_version() -> None:
    # Given room for two outcomes, kept at version 2
    kept = SearchOutcomes(max_entries=2)
    a, b, c = (SearchFilters(text=word) for word in ("a", "b", "c"))
    assert kept.get(2, a) is None
    kept.put(2, a, (1,))
    kept.put(2, b, (2,))
    assert kept.get(2, a) == (1,)
    # When a third is kept, then the least recently used is dropped
    kept.put(2, c, (3,))
    assert (kept.get(2, a), kept.get(2, b), kept.get(2, c), len(kept)) == ((1,), None, (3,), 2)
    # When the version moves, then nothing kept before is served, and an outcome read at
    # the old version is not kept
    assert kept.get(4, a) is None
    kept.put(2, b, (2,))
    assert (kept.get(4, b), len(kept)) == (None, 0)
