"""Issue 16, "Dead ends and misleading forms": a refused action re-renders the form it came from
(message by the field, input kept, nothing stored); no paid booking form where it cannot work;
no "Pay for this" on a group buy; the author sees pending booking requests. French pages."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from meshnode.services import deals, ledger, listings
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from tests import conftest as base
from tests.conftest import ride_listing
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FR = {**HTML, "Accept-Language": "fr"}


def _error_of(page: str, name: str) -> str:
    """The text of the message shown under the field ``name`` (``form``: the whole form)."""
    found = re.search(rf'<p class="error" id="err-{name}">([^<]*)</p>', page)
    assert found, f"no message for {name}"
    return found.group(1)


async def _post_fr(client: TestClient, path: str, data: dict[str, str], token_from: str
                   ) -> tuple[int, str]:
    """POST a form as a French browser; the status and the page that comes back."""
    token = await csrf_of(client, token_from)
    response = await client.post(path, data={**data, "csrf": token}, headers=FR,
                                 allow_redirects=False)
    return response.status, await response.text()


async def test_book_form__more_seats_than_left_comes_back_refilled_with_the_reason(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given a ride with 3 seats
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    # When Bob asks for 5 with a message
    status, page = await _post_fr(client, f"/listings/{listing_id}/book",
                                  {"quantity": "5", "message": "On est cinq"},
                                  f"/listings/{listing_id}")
    # Then the listing page comes back (409) with the form, his input and the reason by the field
    assert status == 409
    assert "Un problème est survenu" not in page
    assert 'action="/listings/' + listing_id + '/book"' in page
    assert 'id="book-quantity" name="quantity" inputmode="decimal" value="5"' in page
    assert '>On est cinq</textarea>' in page
    assert 'aria-describedby="err-quantity"' in page
    assert _error_of(page, "quantity").startswith("il ne reste que 3\u00a0place")
    assert _error_of(page, "quantity").endswith("vous en demandez 5")
    assert "Votre demande n’a pas été envoyée" in page
    # And nothing was stored
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_book_form__invalid_quantity_keeps_the_validators_message_by_the_field(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    status, page = await _post_fr(client, f"/listings/{listing_id}/book",
                                  {"quantity": "beaucoup"}, f"/listings/{listing_id}")
    assert status == 422
    assert 'value="beaucoup"' in page
    assert _error_of(page, "quantity")
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_slot_form__overlapping_slot_comes_back_with_both_times_kept(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    # Given a drill Alice lends, booked and accepted for Saturday 10:00-12:00
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="lend", title="Perceuse", price={"mode": "free"}, details={}))
    first = await deals.book(ctx, bob.row, view.row.id, {
        "from": "2026-12-05T10:00:00+01:00", "to": "2026-12-05T12:00:00+01:00"})
    await deals.act(ctx, alice.row, first.id, "accept", "")
    carol = await make_member("carol")
    await login(client, "carol")
    # When Carol asks for 11:00-13:00 the same day
    status, page = await _post_fr(client, f"/listings/{view.row.id}/book",
                                  {"from": "2026-12-05T11:00", "to": "2026-12-05T13:00"},
                                  f"/listings/{view.row.id}")
    # Then the slot form comes back with her times and the clash named by "from"
    assert status == 409
    assert 'value="2026-12-05T11:00"' in page
    assert 'value="2026-12-05T13:00"' in page
    assert _error_of(page, "from").startswith("déjà prêté")
    assert await q.list_for_member(ctx.store.reader, carol.row.id, "booker") == []


async def test_deal_action__refused_payment_stays_on_the_deal_page_with_the_reason(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    # Given Bob booked a paid seat but may not spend anything
    listing_id = await make_ride(ctx, alice)
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": "1"})
    admin = await make_member("admin", admin=True)
    await ledger.set_limits(ctx, admin.row, "bob", min_balance="0", max_balance=None)
    await login(client, "alice")
    # When Alice accepts, which makes Bob pay
    status, page = await _post_fr(client, f"/deals/{deal.id}/accept", {}, f"/deals/{deal.id}")
    # Then the deal page comes back with the refusal, not a bare error page
    assert status == 409
    assert "Un problème est survenu" not in page
    assert f'action="/deals/{deal.id}/accept"' in page
    assert _error_of(page, "form").startswith("Limite dépassée")
    stored = await q.get_deal(ctx.store.reader, deal.id)
    assert stored is not None
    assert stored.state == "requested"


async def test_group_buy_page__pledge_form_and_no_pay_for_this(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="group-buy", title="Commande de pommes", price={"mode": "amount",
                                                                 "amount": "2.00"},
        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                 "deadline": "2026-11-30T18:00:00Z"}))
    await login(client, "bob")
    page = await (await client.get(f"/listings/{view.row.id}", headers=FR)).text()
    assert f'action="/listings/{view.row.id}/book"' in page
    assert "pay-for-this" not in page
    assert "Payer cette annonce" not in page
    # a paid listing without a booking form (reserved: arranged by message) keeps its button
    ride = await make_ride(ctx, alice)
    await listings.update_listing(ctx, alice.row, ride, {"status": "reserved"})
    assert "pay-for-this" in await (await client.get(f"/listings/{ride}", headers=FR)).text()


async def test_paid_ride_page__the_booking_form_only_no_pay_for_this(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given alice's ride at 4.50 a seat, open for booking
    ride = await make_ride(ctx, alice)
    await login(client, "bob")
    # When bob opens it
    page = await (await client.get(f"/listings/{ride}", headers=FR)).text()
    # Then the booking form is offered (the booking pays), and no separate payment
    assert f'action="/listings/{ride}/book"' in page
    assert "pay-for-this" not in page
    assert "Payer cette annonce" not in page


async def test_remote_paid_listing__without_trust_line_says_so_and_offers_the_message_form(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given a paid ride from another community (stored as federation stores it) and no line
    listing_id = await make_ride(ctx, alice)
    async with ctx.store.transaction() as tx:  # the federation path needs a second node
        await tx.execute(
            "UPDATE listings SET is_local = 0, author_id = NULL, origin = ?,"
            " author_uri = ? WHERE id = ?",
            ("http://127.0.0.1:9", "http://127.0.0.1:9/users/camille", listing_id))
    await login(client, "bob")
    page = await (await client.get(f"/listings/{listing_id}", headers=FR)).text()
    # Then no booking form, the reason said up front, and the message form offered
    assert 'id="no-trust-line"' in page
    assert "n’a pas encore de ligne de confiance avec" in page
    assert "demandez à un·e admin" in page
    assert f'action="/listings/{listing_id}/book' not in page
    assert f'action="/listings/{listing_id}/interested"' in page
    # And a free booking needs no line: the same listing made free shows the form again
    async with ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET price_mode = 'free', price_amount = NULL"
                         " WHERE id = ?", (listing_id,))
    free = await (await client.get(f"/listings/{listing_id}", headers=FR)).text()
    assert 'id="no-trust-line"' not in free
    assert f'action="/listings/{listing_id}/book"' in free


async def test_pending_requests__author_sees_them_on_my_listings_the_listing_and_the_nav(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "alice")
    quiet = await (await client.get("/my/listings", headers=FR)).text()
    assert "pending-requests" not in quiet
    # When two members ask for a seat
    await deals.book(ctx, bob.row, listing_id, {"quantity": "1"})
    carol = await make_member("carol")
    await deals.book(ctx, carol.row, listing_id, {"quantity": "1"})
    # Then "Mes annonces", the listing and the navigation count show it
    mine = await (await client.get("/my/listings", headers=FR)).text()
    assert "2 demandes de réservation attendent votre réponse" in mine
    listing = await (await client.get(f"/listings/{listing_id}", headers=FR)).text()
    assert 'id="pending-requests"' in listing
    assert "2 demandes de réservation attendent votre réponse" in listing
    badge = re.search(r'<a href="/notifications">[^<]*<span class="badge"[^>]*>(\d+)</span>',
                      listing)
    assert badge, "no notification count in the navigation"
    assert int(badge.group(1)) >= 2
    # And once one is answered, one is left
    first = (await q.list_for_member(ctx.store.reader, alice.row.id, "author"))[0]
    await deals.act(ctx, alice.row, first.id, "decline", "")
    mine = await (await client.get("/my/listings", headers=FR)).text()
    assert "1 demande de réservation attend votre réponse" in mine


async def test_pledge_form__more_than_the_target_comes_back_refilled(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="group-buy", title="Commande de pommes", price={"mode": "free"},
        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                 "deadline": "2026-11-30T18:00:00Z"}))
    await login(client, "bob")
    status, page = await _post_fr(client, f"/listings/{view.row.id}/book",
                                  {"quantity": "250,5", "message": "Pour l’AMAP"},
                                  f"/listings/{view.row.id}")
    assert status == 409
    assert 'value="250,5"' in page  # as typed, French comma kept
    assert ">Pour l’AMAP</textarea>" in page
    assert _error_of(page, "quantity").startswith("il ne reste que 100")
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_pay_form__refused_payment_keeps_the_input_with_the_message_by_the_payee(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    status, page = await _post_fr(client, "/wallet/pay",
                                  {"payee": "bob", "amount": "3,50", "memo": "Pommes"},
                                  "/wallet/pay")
    assert status == 422
    assert 'value="3,50"' in page
    assert _error_of(page, "payee")
    assert "Un problème est survenu" not in page


async def test_book_form__listing_full_meanwhile_says_why_without_a_form(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    # Given Bob has the ride open while Carol takes the 3 seats and Alice accepts
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    token = await csrf_of(client, f"/listings/{listing_id}")
    carol = await make_member("carol")
    taken = await deals.book(ctx, carol.row, listing_id, {"quantity": "3"})
    await deals.act(ctx, alice.row, taken.id, "accept", "")
    # When Bob sends his request from the page he had open
    response = await client.post(f"/listings/{listing_id}/book",
                                 data={"quantity": "1", "csrf": token}, headers=FR,
                                 allow_redirects=False)
    page = await response.text()
    # Then the listing says why (no form to fill any more), nothing stored
    assert response.status == 409
    assert 'id="booking-refused"' in page
    assert f'action="/listings/{listing_id}/book"' not in page
    assert "Complet" in page
    assert await q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []


async def test_feedback_form__bad_rating_comes_back_with_the_comment_kept(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice, price={"mode": "free"})
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": "1"})
    await deals.act(ctx, alice.row, deal.id, "accept", "")
    await deals.act(ctx, alice.row, deal.id, "complete", "")
    await login(client, "bob")
    status, page = await _post_fr(client, f"/deals/{deal.id}/feedback",
                                  {"rating": "9", "comment": "Très sympa"}, f"/deals/{deal.id}")
    assert status == 422
    assert ">Très sympa</textarea>" in page
    assert _error_of(page, "rating")
    assert await q.feedback_for_deal(ctx.store.reader, deal.id) == []
