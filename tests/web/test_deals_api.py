"""The deals JSON API: every action, and hostile input answered 4xx with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import ledger, listings
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from tests.conftest import MakeMember, TestMember, ride_listing


async def _ride(ctx: NodeContext, alice: TestMember, **details: Any) -> str:
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    view = await listings.create_listing(ctx, alice.row, ride_listing(details={**base, **details}))
    return view.row.id


async def _nothing_changed(ctx: NodeContext) -> None:
    async with ctx.store.reader.execute("SELECT COUNT(*) FROM ledger_journal") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == 0
    wallet = await ledger.wallet_summary(ctx, (await _bob(ctx)))
    assert (wallet.position.balance, wallet.position.held_debit) == (0, 0)


async def _bob(ctx: NodeContext):  # type: ignore[no-untyped-def]
    from meshnode.services.members import get_member
    return await get_member(ctx, "bob")


async def test_api__book_accept_done_feedback_and_lists(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    listing_id = await _ride(ctx, alice)
    booked = await client.post(f"/api/v1/listings/{listing_id}/deals",
                               json={"quantity": 1, "amount": "4.50"}, headers=bob.headers)
    assert booked.status == 201, await booked.text()
    deal = await booked.json()
    assert (deal["state"], deal["amount"], deal["role"]) == ("requested", "4.50", "booker")
    assert deal["offer"]["type"] == "Offer"
    assert deal["offer"]["proof"]["cryptosuite"]
    inbox = await (await client.get("/api/v1/deals?role=author", headers=alice.headers)).json()
    assert [d["id"] for d in inbox["items"]] == [deal["id"]]
    for action, state in (("accept", "accepted"), ("done", "completed")):
        moved = await client.post(f"/api/v1/deals/{deal['id']}/{action}", headers=alice.headers)
        assert (await moved.json())["state"] == state
    rated = await client.post(f"/api/v1/deals/{deal['id']}/feedback",
                              json={"rating": 4, "no_show": False}, headers=bob.headers)
    assert rated.status == 201
    about = await (await client.get("/api/v1/users/alice/feedback")).json()
    assert about["items"][0]["rating"] == 4


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"quantity": 4}, 409, "quantity"),  # more than the 3 seats
    ({"quantity": 0}, 422, "quantity"),
    ({"quantity": 1, "amount": "1.00"}, 422, "amount"),  # paying less than the price
    ({"quantity": 1, "seats": 2}, 422, "seats"),
])
async def test_api__hostile_bookings(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    body: dict[str, Any], status: int, field: str,
) -> None:
    listing_id = await _ride(ctx, alice)
    response = await client.post(f"/api/v1/listings/{listing_id}/deals", json=body,
                                 headers=bob.headers)
    assert response.status == status
    assert field in (await response.json())["fields"]
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []
    await _nothing_changed(ctx)


async def test_api__past_slot_and_own_listing(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="lend", title="Tondeuse électrique", price={"mode": "free"}, details={}))
    past = await client.post(f"/api/v1/listings/{view.row.id}/deals", headers=bob.headers,
                             json={"from": "2026-01-01T10:00:00Z", "to": "2026-01-02T10:00:00Z"})
    assert past.status == 422
    own = await client.post(f"/api/v1/listings/{view.row.id}/deals", headers=alice.headers,
                            json={"from": "2026-12-01T10:00:00Z", "to": "2026-12-02T10:00:00Z"})
    assert own.status == 403
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_api__acting_for_someone_else(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    listing_id = await _ride(ctx, alice)
    deal = await (await client.post(f"/api/v1/listings/{listing_id}/deals",
                                    json={"quantity": 1}, headers=bob.headers)).json()
    self_accept = await client.post(f"/api/v1/deals/{deal['id']}/accept", headers=bob.headers)
    assert self_accept.status == 403
    mallory = await make_member("mallory")
    for path in ("accept", "feedback"):
        response = await client.post(f"/api/v1/deals/{deal['id']}/{path}", json={"rating": 1},
                                     headers=mallory.headers)
        assert response.status == 404
    twice = await client.post(f"/api/v1/deals/{deal['id']}/start", headers=alice.headers)
    assert twice.status == 409  # a requested ride cannot start
    assert (await q.get_deal(ctx.store.reader, deal["id"])).state == "requested"  # type: ignore[union-attr]
    await _nothing_changed(ctx)


async def test_api__unauthenticated_is_401(client: TestClient, ctx: NodeContext,
                                           alice: TestMember) -> None:
    listing_id = await _ride(ctx, alice)
    response = await client.post(f"/api/v1/listings/{listing_id}/deals", json={"quantity": 1})
    assert response.status == 401


async def test_api__payment_status_of_a_local_deal_paid_then_refunded(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    listing_id = await _ride(ctx, alice, auto_accept=True)
    booked = await client.post(f"/api/v1/listings/{listing_id}/deals", json={"quantity": 1},
                               headers=bob.headers)
    deal = await booked.json()
    body = await (await client.get(f"/api/v1/deals/{deal['id']}", headers=bob.headers)).json()
    assert (body["state"], body["payment_status"], body["deposit_status"]) == (
        "accepted", "paid", None)
    await client.post(f"/api/v1/deals/{deal['id']}/cancel", json={}, headers=bob.headers)
    body = await (await client.get(f"/api/v1/deals/{deal['id']}", headers=bob.headers)).json()
    assert (body["state"], body["payment_status"]) == ("cancelled", "refunded")
