"""The 201 answer of ``POST /api/v1/listings`` is the listing exactly as ``GET`` shows it.

The answer takes the signature verdict kept when the node signed (no second Ed25519 check
of the proof the same request has just made: issue 17, publishing at 300/s); GET checks
the stored document again. Both must say the same for a fresh listing.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import members
from meshnode.services.context import NodeContext
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


async def test_create_listing__answer_names_the_author_and_capacity_as_get_does(
    client: TestClient, ctx: NodeContext
) -> None:
    # Given a member with a display name (the answer takes it from the authenticated member,
    # GET from the members table) and a ride with seats (the answer's capacity is all of it)
    await members.add_member(ctx, username="zoe", password=None, display_name=" Zoé  Martin ")
    headers = {"Authorization": f"Bearer {(await members.create_token(ctx, 'zoe')).secret}"}
    created = await client.post("/api/v1/listings", json=ride_listing(), headers=headers)
    assert created.status == 201
    answer = await created.json()
    # When she reads it back
    shown = await client.get(created.headers["Location"], headers=headers)
    # Then both name her and count the seats the same way
    assert await shown.json() == answer
    assert answer["author"]["name"] == "Zoé Martin"
    assert answer["capacity"]["remaining"] == answer["capacity"]["total"] == 3
