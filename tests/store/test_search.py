"""Search plans: sorting the matches and walking the newest-first index give the same pages."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from meshnode.store import listings as listing_store
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
