"""The 201 answer of ``POST /api/v1/listings`` is the listing exactly as ``GET`` shows it.

The answer takes the signature verdict kept when the node signed (no second Ed25519 check
of the proof the same request has just made: issue 17, publishing at 300/s); GET checks
the stored document again. Both must say the same for a fresh listing.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.conftest import TestMember, ride_listing


async def test_create_listing__answer_equals_what_get_shows_signature_verdict_included(
    client: TestClient, alice: TestMember
) -> None:
    # Given alice publishes a listing
    created = await client.post("/api/v1/listings", json=ride_listing(), headers=alice.headers)
    assert created.status == 201
    answer = await created.json()
    # When she reads it back
    shown = await client.get(created.headers["Location"], headers=alice.headers)
    # Then both say the same, verified with her key by the local rule
    assert await shown.json() == answer
    assert answer["signature"]["verified"] is True
    assert answer["signature"]["rule"] == "eddsa-jcs-2022/local-member-key"
