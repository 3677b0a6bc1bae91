"""Deal pages: book from the listing page, my bookings, accept, done, feedback; CSRF; French."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import deals, listings
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from tests import conftest as base
from tests.conftest import ride_listing
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride, post_form


async def test_book_form__request_then_author_accepts_and_both_rate(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    page = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert f'action="/listings/{listing_id}/book"' in page
    booked = await post_form(client, f"/listings/{listing_id}/book",
                             {"quantity": "2", "message": "Deux places"},
                             token_from=f"/listings/{listing_id}")
    assert booked.status == 303  # type: ignore[attr-defined]
    deal_path = booked.headers["Location"]  # type: ignore[attr-defined]
    mine = await (await client.get("/my/deals", headers=HTML)).text()
    assert "Covoiturage vers Lyon" in mine
    assert "Requested" in mine

    await client.post("/logout", data={"csrf": await csrf_of(client, "/")}, headers=HTML)
    await login(client, "alice")
    received = await (await client.get("/my/deals", headers=HTML)).text()
    assert f'action="{deal_path}/accept"' in received
    accepted = await post_form(client, f"{deal_path}/accept", {}, token_from="/my/deals")
    assert accepted.status == 303  # type: ignore[attr-defined]
    await post_form(client, f"{deal_path}/complete", {}, token_from=deal_path)
    rated = await post_form(client, f"{deal_path}/feedback",
                            {"rating": "5", "comment": "Très sympa"}, token_from=deal_path)
    assert rated.status == 303  # type: ignore[attr-defined]
    profile = await (await client.get("/users/bob", headers=HTML)).text()
    assert "Très sympa" in profile
    assert "1 rating, average 5" in profile


async def test_book_form__without_csrf_is_refused_and_nothing_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    response = await client.post(f"/listings/{listing_id}/book", data={"quantity": "1"},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 403
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_group_buy_page__progress_in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="group-buy", title="Commande de pommes", price={"mode": "free"},
        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                 "deadline": "2026-11-30T18:00:00Z"}))
    await deals.book(ctx, bob.row, view.row.id, {"quantity": "10"})
    page = await (await client.get(f"/listings/{view.row.id}",
                                   headers={**HTML, "Accept-Language": "fr"})).text()
    assert "Avancement de l’achat groupé" in page
    assert 'value="25"' in page  # 10 of 40 kg


async def test_action__someone_elses_deal_is_404(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    await make_member("mallory")
    await login(client, "mallory")
    response = await post_form(client, f"/deals/{deal.id}/accept", {})
    assert response.status == 404  # type: ignore[attr-defined]
    assert (await deals.get_deal(ctx, bob.row, deal.id)).state == "requested"


async def test_deal_page__local_loan_shows_deposit_held_then_claimed_in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="lend", title="Perceuse", details={"deposit": "30.00"},
        price={"mode": "amount", "amount": "2.00", "period": "day"}))
    deal = await deals.book(ctx, bob.row, view.row.id, {
        "from": "2026-11-27T09:00:00Z", "to": "2026-11-29T09:00:00Z"})
    await deals.act(ctx, alice.row, deal.id, "accept")
    await login(client, "bob")
    french = {**HTML, "Accept-Language": "fr"}
    page = await (await client.get(f"/deals/{deal.id}", headers=french)).text()
    assert "Caution bloquée" in page  # held, not "retenue" (which reads as kept)
    assert "Paiement en attente" in page  # a loan is paid on return
    await deals.act(ctx, alice.row, deal.id, "dispute", "mandrin cassé")
    page = await (await client.get(f"/deals/{deal.id}", headers=french)).text()
    assert "Caution réclamée" in page
    assert "Paiement effectué" in page
    assert "mandrin cassé" in page
