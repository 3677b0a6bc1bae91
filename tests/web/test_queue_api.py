"""Waiting lists of lent items, through the JSON API, stepped with the test clock.

Given/When/Then: a drill is lent out, members queue, the lender marks it returned, the deal
worker's queue step (``services.queue.run_due``) gives the turn; the clock is moved by hand
past the 24 hours. The background worker may step too: it applies the same moves.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from meshnode.services import deals, listings, notifications
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from meshnode.store import deals as deal_store
from meshnode.store import queue as queue_store
from tests.conftest import FakeClock, MakeMember, TestMember, ride_listing

SLOT = {"from": "2026-11-26T11:00:00Z", "to": "2026-11-28T10:00:00Z"}
LATER = {"from": "2026-11-29T10:00:00Z", "to": "2026-11-30T10:00:00Z"}


def drill(**details: Any) -> dict[str, Any]:
    return ride_listing(category="lend", title="Perceuse à percussion",
                        price={"mode": "free"}, details=details)


async def lent_out(ctx: NodeContext, alice: TestMember, bob: TestMember,
                   **details: Any) -> tuple[str, str]:
    """Alice's drill, handed over to Bob: the listing id and Bob's deal id."""
    view = await listings.create_listing(ctx, alice.row, drill(**details))
    deal = await deals.book(ctx, bob.row, view.row.id, SLOT)
    await deals.act(ctx, alice.row, deal.id, "accept")
    await deals.act(ctx, alice.row, deal.id, "start")
    return view.row.id, deal.id


async def _queue(client: TestClient, member: TestMember, listing_id: str,
                 method: str = "GET") -> tuple[int, dict[str, Any]]:
    response = await client.request(method, f"/api/v1/listings/{listing_id}/queue",
                                    headers=member.headers)
    return response.status, await response.json()


async def _types(ctx: NodeContext, member: TestMember) -> list[str]:
    return [n.type for n in await notifications.list_notifications(ctx, member.row)]


async def test_queue__members_wait_in_joining_order_while_the_item_is_out(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    # Given Alice's drill is out with Bob
    listing_id, _ = await lent_out(ctx, alice, bob)
    carol, dave = await make_member("carol"), await make_member("dave")
    # When Carol then Dave join its waiting list
    first = await _queue(client, carol, listing_id, "POST")
    second = await _queue(client, dave, listing_id, "POST")
    # Then each gets 201 with their place, and GET says the same
    assert first == (201, {"listing": listing_id, "state": "waiting", "position": 1,
                           "length": 1, "confirm_by": None, "item_out": True,
                           "remote": False, "reason": ""})
    assert (second[0], second[1]["position"], second[1]["length"]) == (201, 2, 2)
    assert (await _queue(client, dave, listing_id))[1]["position"] == 2
    assert (await _queue(client, bob, listing_id))[1]["state"] is None
    # And nobody is told anything while the drill is still out
    assert await queue_service.run_due(ctx) == 0
    assert "queue_turn" not in await _types(ctx, carol)


async def test_queue__returned_item_tells_the_first_in_line_who_books_it(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    listing_id, deal_id = await lent_out(ctx, alice, bob)
    carol, dave = await make_member("carol"), await make_member("dave")
    await _queue(client, carol, listing_id, "POST")
    await _queue(client, dave, listing_id, "POST")
    # When Alice marks the drill returned and the worker steps
    returned = await client.post(f"/api/v1/deals/{deal_id}/returned", headers=alice.headers)
    assert returned.status == 200
    await queue_service.run_due(ctx)
    # Then Carol, first in line, is told, with 24 h to confirm; Dave is not
    assert (await _types(ctx, carol))[0] == "queue_turn"
    assert "queue_turn" not in await _types(ctx, dave)
    _, mine = await _queue(client, carol, listing_id)
    assert (mine["state"], mine["position"], mine["confirm_by"]) == (
        "notified", 1, "2026-11-27T10:00:00Z")
    # And Dave cannot take the drill meanwhile: 409, nothing stored
    direct = await client.post(f"/api/v1/listings/{listing_id}/deals", json=LATER,
                               headers=dave.headers)
    assert direct.status == 409
    assert "kept for the next member of the waiting list" in (await direct.json())["message"]
    assert await deal_store.list_for_member(ctx.store.reader, dave.row.id, "booker") == []
    # When Carol confirms: a booking request is made from her confirmation
    confirmed = await client.post(f"/api/v1/listings/{listing_id}/queue/confirm", json=LATER,
                                  headers=carol.headers)
    assert confirmed.status == 201, await confirmed.text()
    deal = await confirmed.json()
    assert (deal["state"], deal["slot"]) == ("requested", LATER)
    # Then her place is done (with the booking), Dave is now first in line
    assert (await _queue(client, carol, listing_id))[1]["state"] is None
    assert (await _queue(client, dave, listing_id))[1]["position"] == 1
    [row] = [r for r in await _all_places(ctx, listing_id) if r[0] == carol.row.id]
    assert row[1:] == ("confirmed", deal["id"])
    # And Dave's turn waits for Carol's loan to be over, not merely booked
    await queue_service.run_due(ctx)
    assert (await _queue(client, dave, listing_id))[1]["state"] == "waiting"
    await deals.act(ctx, alice.row, deal["id"], "decline")
    await queue_service.run_due(ctx)
    assert (await _queue(client, dave, listing_id))[1]["state"] == "notified"


async def _all_places(ctx: NodeContext, listing_id: str) -> list[tuple[int, str, str | None]]:
    async with ctx.store.reader.execute(
            "SELECT member_id, state, deal_id FROM listing_queue WHERE listing_id = ?"
            " ORDER BY id", (listing_id,)) as cursor:
        return [(r[0], r[1], r[2]) for r in await cursor.fetchall()]


async def test_queue__a_turn_not_confirmed_in_24_hours_passes_to_the_next(
    client: TestClient, ctx: NodeContext, clock: FakeClock, alice: TestMember,
    bob: TestMember, make_member: MakeMember,
) -> None:
    listing_id, deal_id = await lent_out(ctx, alice, bob)
    carol, dave = await make_member("carol"), await make_member("dave")
    await _queue(client, carol, listing_id, "POST")
    await _queue(client, dave, listing_id, "POST")
    await deals.act(ctx, alice.row, deal_id, "complete")
    await queue_service.run_due(ctx)
    # Given Carol holds the turn; 23 h 59 min later she still does
    clock.advance(hours=23, minutes=59)
    assert await queue_service.run_due(ctx) == 0
    assert (await _queue(client, carol, listing_id))[1]["state"] == "notified"
    # When the 24 hours pass without a booking from her
    clock.advance(minutes=1)
    assert await queue_service.run_due(ctx) == 2  # her lapse, Dave's turn
    # Then Dave is told and holds the turn until 24 h from now; Carol is out of the line
    assert (await _types(ctx, dave))[0] == "queue_turn"
    _, his = await _queue(client, dave, listing_id)
    assert (his["state"], his["confirm_by"]) == ("notified", "2026-11-28T10:00:00Z")
    assert (await _queue(client, carol, listing_id))[1]["state"] is None
    assert [r[1] for r in await _all_places(ctx, listing_id)] == ["lapsed", "notified"]
    # And Carol's late confirmation is refused: it is no longer her turn
    late = await client.post(f"/api/v1/listings/{listing_id}/queue/confirm", json=LATER,
                             headers=carol.headers)
    assert late.status == 409
    assert await deal_store.list_for_member(ctx.store.reader, carol.row.id, "booker") == []


async def test_queue__leaving_gives_up_the_place_and_the_next_moves_up(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    listing_id, deal_id = await lent_out(ctx, alice, bob)
    carol, dave = await make_member("carol"), await make_member("dave")
    await _queue(client, carol, listing_id, "POST")
    await _queue(client, dave, listing_id, "POST")
    # When Carol leaves
    status, body = await _queue(client, carol, listing_id, "DELETE")
    assert (status, body["state"], body["length"]) == (200, None, 1)
    # Then Dave is first, and gets the turn when the drill is back
    assert (await _queue(client, dave, listing_id))[1]["position"] == 1
    await deals.act(ctx, alice.row, deal_id, "complete")
    await queue_service.run_due(ctx)
    assert (await _queue(client, dave, listing_id))[1]["state"] == "notified"
    assert "queue_turn" not in await _types(ctx, carol)
    # And leaving twice is 404
    assert (await _queue(client, carol, listing_id, "DELETE"))[0] == 404


async def test_queue__refusals_store_nothing(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    carol = await make_member("carol")
    # An item not lent out: book it directly
    free = await listings.create_listing(ctx, alice.row, drill())
    status, body = await _queue(client, carol, free.row.id, "POST")
    assert (status, body["error"]) == (409, "conflict")
    assert "book it directly" in body["message"]
    # A ride has no waiting list; one's own item neither; twice in line is refused
    ride = await listings.create_listing(ctx, alice.row, ride_listing())
    assert (await _queue(client, carol, ride.row.id, "POST"))[0] == 409
    listing_id, _ = await lent_out(ctx, alice, bob)
    assert (await _queue(client, alice, listing_id, "POST"))[0] == 403
    assert (await _queue(client, carol, listing_id, "POST"))[0] == 201
    assert (await _queue(client, carol, listing_id, "POST"))[0] == 409
    assert (await _queue(client, carol, "nope", "POST"))[0] == 404
    unauthenticated = await client.post(f"/api/v1/listings/{listing_id}/queue")
    assert unauthenticated.status == 401
    assert [r[0] for r in await _all_places(ctx, free.row.id)] == []
    assert [r[0] for r in await _all_places(ctx, ride.row.id)] == []
    assert [r[0] for r in await _all_places(ctx, listing_id)] == [carol.row.id]


async def test_queue__a_withdrawn_item_closes_its_waiting_list(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    listing_id, _ = await lent_out(ctx, alice, bob)
    carol = await make_member("carol")
    await _queue(client, carol, listing_id, "POST")
    withdrawn = await client.delete(f"/api/v1/listings/{listing_id}", headers=alice.headers)
    assert withdrawn.status in (200, 204)
    assert await queue_service.run_due(ctx) == 1
    assert await queue_store.queued_listings(ctx.store.reader) == []
    assert [r[1] for r in await _all_places(ctx, listing_id)] == ["closed"]
