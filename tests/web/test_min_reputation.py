"""A lender's minimum reputation (``details.min_reputation`` of a loan): completed exchanges
without a reported absence. Below it a booking or a place in the waiting list is refused
with a clear 403 (JSON for the API, a translated page for browsers), nothing stored."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import deals, listings
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from meshnode.store import deals as deal_store
from tests.conftest import MakeMember, TestMember, ride_listing
from tests.web.pages.conftest import HTML, csrf_of, login
from tests.web.test_queue_api import LATER, SLOT, drill, lent_out

FR = {**HTML, "Accept-Language": "fr-FR,fr;q=0.9"}


async def completed_loans(ctx: NodeContext, lender: TestMember, borrower: TestMember,
                           count: int, *, no_show_on: int | None = None) -> None:
    """``count`` small things lent and returned; the lender reports an absence on one."""
    for number in range(count):
        view = await listings.create_listing(ctx, lender.row, ride_listing(
            category="give", title=f"Bocaux vides {number}", price={"mode": "free"},
            details={}))
        deal = await deals.book(ctx, borrower.row, view.row.id, {"quantity": 1})
        await deals.act(ctx, lender.row, deal.id, "accept")
        await deals.act(ctx, lender.row, deal.id, "complete")
        if number == no_show_on:
            await deals.leave_feedback(ctx, lender.row, deal.id,
                                       {"rating": 1, "no_show": True})


async def test_min_reputation__booking_below_the_minimum_is_refused_and_stores_nothing(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    # Given Alice lends a camera only to members with 2 exchanges; Bob has 1
    view = await listings.create_listing(ctx, alice.row, drill(min_reputation=2))
    await completed_loans(ctx, alice, bob, 1)
    # When Bob books it
    response = await client.post(f"/api/v1/listings/{view.row.id}/deals", json=SLOT,
                                 headers=bob.headers)
    # Then 403 explains the rule and his count, and no deal exists
    body = await response.json()
    assert response.status == 403
    assert body["error"] == "forbidden"
    assert body["message"] == ("the lender asks for at least 2 completed exchanges without"
                               " absence before lending this item; you have 1")
    assert body["fields"] == {"min_reputation": "at least 2"}
    assert await deal_store.list_for_listing(ctx.store.reader, view.row.id,
                                             ("requested", "accepted")) == []


async def test_min_reputation__enough_exchanges_book_and_an_absence_does_not_count(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    carol = await make_member("carol")
    view = await listings.create_listing(ctx, alice.row, drill(min_reputation=2))
    # Bob: two exchanges, both kept; Carol: two, one of which she did not show up for
    await completed_loans(ctx, alice, bob, 2)
    await completed_loans(ctx, alice, carol, 2, no_show_on=0)
    assert await queue_service.count_completed_deals(
        ctx, "http://127.0.0.1:8080/users/bob") == 2
    assert await queue_service.count_completed_deals(
        ctx, "http://127.0.0.1:8080/users/carol") == 1
    ok = await client.post(f"/api/v1/listings/{view.row.id}/deals", json=SLOT,
                           headers=bob.headers)
    assert ok.status == 201
    refused = await client.post(f"/api/v1/listings/{view.row.id}/deals", json=LATER,
                                headers=carol.headers)
    assert refused.status == 403
    assert (await refused.json())["message"].endswith("you have 1")


async def test_min_reputation__the_waiting_list_is_gated_too(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    await completed_loans(ctx, alice, bob, 1)
    listing_id, _ = await lent_out(ctx, alice, bob, min_reputation=1)
    carol = await make_member("carol")
    response = await client.post(f"/api/v1/listings/{listing_id}/queue", headers=carol.headers)
    assert response.status == 403
    assert (await queue_service.status(ctx, carol.row, listing_id)).length == 0


async def test_min_reputation__refused_booking_page_says_why_in_french(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
) -> None:
    view = await listings.create_listing(ctx, alice.row, drill(min_reputation=3))
    await login(client, "bob")
    page = f"/listings/{view.row.id}"
    token = await csrf_of(client, page)
    response = await client.post(f"{page}/book", headers=FR, allow_redirects=False, data={
        "csrf": token, "from": "2026-11-29T10:00", "to": "2026-11-30T10:00", "message": ""})
    text = await response.text()
    assert response.status == 403
    assert ("le prêteur demande au moins 3 échanges terminés sans absence avant de"
            " prêter cet objet\u202f; vous en avez 0") in text
    assert "completed exchanges" not in text
    assert await deal_store.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_min_reputation__is_validated_as_a_whole_number(
    client: TestClient, alice: TestMember,
) -> None:
    for bad in (-1, 1001, "beaucoup", True):
        response = await client.post("/api/v1/listings", headers=alice.headers,
                                     json=drill(min_reputation=bad))
        assert response.status == 422
        assert "details.min_reputation" in (await response.json())["fields"]
