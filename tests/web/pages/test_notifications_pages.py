"""Notification pages: the unread count in the navigation, the list in French, opening an
item marks it read and goes where it points, mark all read, preferences; CSRF enforced."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from meshnode.services import deals, ledger, listings, notifications
from meshnode.services.context import NodeContext
from tests import conftest as base
from tests.services.test_deals import group_buy
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FR = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}


async def _post(client: TestClient, path: str, data: dict[str, object]) -> object:
    token = await csrf_of(client, "/notifications")
    return await client.post(path, data={**data, "csrf": token}, headers=HTML,
                             allow_redirects=False)


async def test_pages__french_navigation_counts_unread_and_page_lists_them(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given bob booked alice's ride and paid her
    listing_id = await make_ride(ctx, alice)
    await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    await ledger.pay(ctx, bob.row, payee="alice", amount="2", memo="essence")
    # When alice opens any page in French
    await login(client, "alice")
    home = await (await client.get("/", headers=FR)).text()
    # Then the navigation shows 2 unread notifications, and the page says what happened
    assert re.search(r'href="/notifications">Notifications <span class="badge" '
                     r'aria-label="2 notifications non lues">2</span>', home), home[:3000]
    page = await (await client.get("/notifications", headers=FR)).text()
    assert "Quelqu’un demande à réserver votre annonce" in page
    assert "Vous avez reçu un paiement" in page
    assert "<strong>2,00\u00a0G</strong> · essence" in page
    assert "Tout marquer comme lu" in page


async def test_pages__opening_an_item_marks_it_read_and_goes_to_its_page(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    item = (await notifications.list_notifications(ctx, alice.row))[0]
    await login(client, "alice")
    opened = await _post(client, f"/notifications/{item.id}/open", {})
    assert opened.status == 303  # type: ignore[attr-defined]
    assert opened.headers["Location"] == f"/deals/{deal.id}"  # type: ignore[attr-defined]
    assert await notifications.unread_count(ctx, alice.row) == 0


async def test_pages__another_members_item_cannot_be_opened(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    item = (await notifications.list_notifications(ctx, alice.row))[0]
    await login(client, "bob")
    for path in (f"/notifications/{item.id}/open", "/notifications/99999999999999999999/open",
                 "/notifications/x/open"):
        response = await _post(client, path, {})
        assert response.status == 404  # type: ignore[attr-defined]
    assert await notifications.unread_count(ctx, alice.row) == 1


async def test_pages__mark_all_read_needs_a_csrf_token(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    listing_id = await make_ride(ctx, alice)
    await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    await login(client, "alice")
    forged = await client.post("/notifications/read", data={"csrf": "forged"}, headers=HTML,
                               allow_redirects=False)
    assert forged.status == 403
    assert await notifications.unread_count(ctx, alice.row) == 1
    done = await _post(client, "/notifications/read", {})
    assert done.status == 303  # type: ignore[attr-defined]
    assert await notifications.unread_count(ctx, alice.row) == 0


async def test_pages__preferences_form_turns_types_off(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    await login(client, "alice")
    token = await csrf_of(client, "/notifications")
    kept = [t for t in notifications.TYPES if t != "message"]
    data = [("csrf", token), *[("type", t) for t in kept], ("type", "not_a_type")]
    saved = await client.post("/notifications/preferences", data=data, headers=HTML,
                              allow_redirects=False)
    assert saved.status == 303
    prefs = await notifications.preferences(ctx, alice.row)
    assert prefs.muted == {"message"}
    page = await (await client.get("/notifications?saved=types", headers=FR)).text()
    assert "Préférences enregistrées." in page
    assert 'value="message">' in page
    assert 'value="payment_received" checked>' in page


async def test_pages__visitor_is_sent_to_login(client: TestClient) -> None:
    response = await client.get("/notifications", headers=HTML, allow_redirects=False)
    assert response.status in (302, 303)
    assert response.headers["Location"].startswith("/login")


async def test_wallet_page__lists_each_hold_with_its_deal_and_date(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given bob pledged 10 kg (15.00) on alice's group buy
    view = await listings.create_listing(ctx, alice.row, group_buy())
    pledge = await deals.book(ctx, bob.row, view.row.id, {"quantity": "10"})
    # When bob opens his wallet in French
    await login(client, "bob")
    page = await (await client.get("/wallet", headers=FR)).text()
    # Then the reserved amount is explained: what, which deal (linked), until when
    holds = page[page.index('id="holds"'):]
    assert "15,00\u00a0G" in holds[:600]
    assert f'<a href="/deals/{pledge.id}">' in holds
    assert "Commande groupée de pommes" in holds
    assert "30 nov. 2026" in holds


async def test_pages__a_backlog_shows_99_plus_and_the_count_stays_cheap(
    client: TestClient, ctx: NodeContext, alice: base.TestMember,
) -> None:
    # Given 120 unread items (the badge counts to 100 only: every page pays for it)
    async with ctx.store.transaction() as tx:
        for n in range(120):
            await notifications.notify(ctx, tx, alice.row.id, "payment_received", ref=str(n))
    await login(client, "alice")
    home = await (await client.get("/", headers=HTML)).text()
    assert '>99+</span>' in home
    assert await notifications.unread_badge(ctx, alice.row) == 100
    assert await notifications.unread_count(ctx, alice.row) == 120
