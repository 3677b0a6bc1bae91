"""``listings.get_listing_for_page``: a listing's page reads its row, images, kept signature
check and deals' use in one trip to the reader's thread, and they mean what the separate
reads meant (issue 17: the page made 2.6 trips a view)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.errors import NotFoundError
from meshnode.services import capacity, trust
from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.store import deals as deal_q
from tests.conftest import TestMember, ride_listing


def count_trips(ctx: NodeContext, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts this task's trips to the reader's thread (the node's background work may read
    meanwhile: not counted)."""
    reader = ctx.store.reader
    original = reader._execute
    this_test = asyncio.current_task()
    trips = [0]

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips[0] += asyncio.current_task() is this_test
        return await original(fn, *args, **kwargs)

    monkeypatch.setattr(reader, "_execute", counted)
    return trips


async def _publish(client: TestClient, member: TestMember, **overrides: object) -> str:
    response = await client.post("/api/v1/listings", headers=member.headers,
                                 json=ride_listing(**overrides))
    assert response.status == 201
    return str((await response.json())["id"])


async def test_listing_page_reads__one_trip_same_answers(
        client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a ride with three seats, one of them booked
    listing_id = await _publish(client, alice)
    booked = await client.post(f"/api/v1/listings/{listing_id}/deals", headers=bob.headers,
                               json={"quantity": 1})
    assert booked.status in (200, 201)
    trips = count_trips(ctx, monkeypatch)
    # When its page's reads are made
    reads = await listing_service.get_listing_for_page(ctx, listing_id)
    # Then they took one trip
    assert trips[0] == 1
    # And they are what the separate reads give
    view = await listing_service.get_listing(ctx, listing_id)
    assert reads.view == view
    assert listing_id in reads.checks  # kept when it was published
    assert reads.taken == await deal_q.taken_by_listing(ctx.store.reader, [listing_id])
    assert reads.taken  # the booking counts
    assert (await capacity.remaining_of(ctx, view.row, reads.taken)
            == await capacity.remaining_of(ctx, view.row))
    assert (await trust.signature_verdict(ctx, view.row, reads.checks)
            == await trust.signature_verdict(ctx, view.row))


async def test_listing_page_reads__nothing_to_count_and_unknown(
        client: TestClient, ctx: NodeContext, alice: TestMember) -> None:
    # Given a request (nothing counts down)
    listing_id = await _publish(client, alice, kind="request")
    # When its page's reads are made, Then no deals' use is read
    reads = await listing_service.get_listing_for_page(ctx, listing_id)
    assert reads.taken is None
    assert await capacity.remaining_of(ctx, reads.view.row, reads.taken) is None
    # And an unknown listing is not found, as with get_listing
    with pytest.raises(NotFoundError):
        await listing_service.get_listing_for_page(ctx, "nothing-here")
