"""What is left, on the cards and the listing page, in French (plural forms) and English."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import deals, listings, members
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from tests import conftest as base
from tests.conftest import ride_listing
from tests.web.pages.conftest import HTML, login, make_ride, post_form

FR = {**HTML, "Accept-Language": "fr"}


async def _accepted(ctx: NodeContext, author: base.TestMember, booker: base.TestMember,
                    listing_id: str, quantity: object) -> None:
    deal = await deals.book(ctx, booker.row, listing_id, {"quantity": quantity})
    await deals.act(ctx, author.row, deal.id, "accept")


async def test_ride_card__counts_down_in_french_with_plural_forms(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    listing_id = await make_ride(ctx, alice, details={
        "from": "Canal", "to": "Lyon", "departure": "2026-12-05T09:00:00+01:00", "seats": 3})
    home = await (await client.get("/", headers=FR)).text()
    assert "3 places restantes sur 3" in home
    await _accepted(ctx, alice, bob, listing_id, 2)
    home = await (await client.get("/", headers=FR)).text()
    assert "1 place restante sur 3" in home
    page = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert "1 seat left of 3" in page


async def test_listing_page__full_shows_complet_and_no_booking_form(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    await _accepted(ctx, alice, bob, listing_id, 3)
    await make_member("carol")
    await login(client, "carol")
    page = await (await client.get(f"/listings/{listing_id}", headers=FR)).text()
    assert "Complet" in page
    assert f'action="/listings/{listing_id}/book"' not in page
    assert "pay-for-this" not in page, "no payment for a place that does not exist"
    # When carol posts the form anyway, Then 409 with the reason, and nothing is stored
    response = await post_form(client, f"/listings/{listing_id}/book", {"quantity": "1"},
                               token_from=f"/listings/{listing_id}")
    assert response.status == 409  # type: ignore[attr-defined]
    carol = await members.get_member(ctx, "carol")
    assert await q.list_for_member(ctx.store.reader, carol.id, "booker") == []


async def test_produce_and_group_buy__decimal_quantities_left_and_pledged(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    produce = await listings.create_listing(ctx, alice.row, ride_listing(
        category="produce", title="Pommes du verger", price={"mode": "free"},
        details={"quantity": "3", "unit": "kg"}))
    await _accepted(ctx, alice, bob, produce.row.id, "1.5")
    group = await listings.create_listing(ctx, alice.row, ride_listing(
        category="group-buy", title="Commande de farine", price={"mode": "free"},
        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                 "deadline": "2026-11-30T18:00:00Z"}))
    await deals.book(ctx, bob.row, group.row.id, {"quantity": "10"})
    home = await (await client.get("/", headers=FR)).text()
    assert "Reste 1,5\u00a0kg sur 3\u00a0kg" in home  # a number and its unit never split
    assert "10 sur 100\u00a0kg promis" in home


async def test_api__remaining_on_listings_with_a_capacity_only(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    ride = await make_ride(ctx, alice)
    await _accepted(ctx, alice, bob, ride, 1)
    loan = await listings.create_listing(ctx, alice.row, ride_listing(
        category="lend", title="Perceuse", price={"mode": "free"}, details={}))
    auth = {"Authorization": f"Bearer {bob.token}"}
    body = await (await client.get(f"/api/v1/listings/{ride}", headers=auth)).json()
    assert (body["remaining"], body["capacity"]["total"], body["capacity"]["full"]) == (
        2, 3, False)
    body = await (await client.get(f"/api/v1/listings/{loan.row.id}", headers=auth)).json()
    assert (body["remaining"], body["capacity"]) == (None, None)
