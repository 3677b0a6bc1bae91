"""Alert and expiry pages in French: save the current search as an alert in one click, list
and delete alerts, a refused alert comes back with translated field messages and nothing
stored, renew from the expiry notification, republish from "Mes annonces" (Expirées), and
the author of an offer sees the matching requests on its page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from meshnode.protocol.timefmt import format_utc
from meshnode.services import alerts, listings, notifications
from meshnode.services.context import NodeContext
from tests import conftest as base
from tests.conftest import START, FakeClock
from tests.web.pages.conftest import csrf_of, login

FR = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}
LADDER: dict[str, Any] = {
    "kind": "offer", "category": "lend", "title": "Échelle alu 3 m", "description": "",
    "price": {"mode": "free"},
    "location": {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357}, "details": {}}


async def _post(client: TestClient, path: str, data: dict[str, str], page: str) -> Any:
    token = await csrf_of(client, page)
    return await client.post(path, data={**data, "csrf": token}, headers=FR,
                             allow_redirects=False)


async def test_alert_pages__search_button_saves_the_search_and_my_alerts_lists_it(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    await login(client, "bob")
    # Given bob searched free ladders to borrow
    page = await (await client.get("/search?q=échelle&category=lend&price=free",
                                   headers=FR)).text()
    assert "Créer une alerte pour cette recherche" in page
    # When he presses the button (its hidden fields carry the search)
    saved = await _post(client, "/my/alerts", {"q": "échelle", "category": "lend",
                                               "price": "free"}, "/search?q=x")
    assert saved.status == 303
    assert saved.headers["Location"] == "/my/alerts?saved=1"
    # Then "Mes alertes" lists it in French, as a free-only search
    mine = await (await client.get("/my/alerts?saved=1", headers=FR)).text()
    assert "Mes alertes" in mine
    assert "Alerte enregistrée" in mine
    assert "échelle" in mine
    assert "Gratuit" in mine
    (alert,) = await alerts.list_alerts(ctx, bob.row)
    assert (alert.row.q, alert.row.category, alert.row.max_price) == ("échelle", "lend", 0)
    # and it works: alice's ladder tells bob
    await listings.create_listing(ctx, alice.row, LADDER)
    assert [n.type for n in await notifications.list_notifications(ctx, bob.row)] == ["match"]
    notices = await (await client.get("/notifications", headers=FR)).text()
    assert "Une annonce correspond à votre recherche ou à votre annonce" in notices
    # When he deletes it, it is gone
    gone = await _post(client, f"/my/alerts/{alert.row.id}/delete", {}, "/my/alerts")
    assert gone.status == 303
    assert await alerts.list_alerts(ctx, bob.row) == []


async def test_alert_pages__refused_alert_shows_french_messages_and_stores_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    await login(client, "bob")
    refused = await _post(client, "/my/alerts", {"q": "vélo", "radius_km": "500",
                                                 "near": "45.76,4.83", "max_price": "-3"},
                          "/my/alerts")
    assert refused.status == 422
    page = await refused.text()
    assert "de 0 à 200" in page
    assert "un montant positif, par exemple 12,50" in page
    assert 'value="vélo"' in page  # the form comes back filled in
    assert await alerts.list_alerts(ctx, bob.row) == []
    # another member's alert cannot be deleted
    other = await alerts.create_alert(ctx, bob.row, {"q": "vélo"})
    await client.post("/logout", data={"csrf": await csrf_of(client, "/")}, headers=FR)
    await login(client, "alice")
    stolen = await _post(client, f"/my/alerts/{other.row.id}/delete", {}, "/my/alerts")
    assert stolen.status == 404
    assert len(await alerts.list_alerts(ctx, bob.row)) == 1


async def test_alert_pages__renew_from_the_warning_then_republish_from_expired_section(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, clock: FakeClock,
) -> None:
    view = await listings.create_listing(ctx, alice.row, {
        **LADDER, "expires_at": format_utc(START + timedelta(days=5))})
    clock.advance(days=2, minutes=1)
    assert await notifications.warn_expiring(ctx) == 1
    await login(client, "alice")
    # The warning carries a one-click renewal
    notices = await (await client.get("/notifications", headers=FR)).text()
    assert f'action="/listings/{view.row.id}/renew"' in notices
    assert "Renouveler pour 60 jours" in notices
    renewed = await _post(client, f"/listings/{view.row.id}/renew",
                          {"next": "/notifications"}, "/notifications")
    assert renewed.status == 303
    row = (await listings.get_listing(ctx, view.row.id)).row
    assert row.expires_at == format_utc(clock() + timedelta(days=60))
    assert row.version == 2
    # When 60 days pass, "Mes annonces" puts it under "Expirées" with "Republier"
    clock.advance(days=61)
    await login(client, "alice")  # the session did not last 61 days
    mine = await (await client.get("/my/listings", headers=FR)).text()
    assert "Expirées" in mine
    assert "Republier" in mine
    again = await _post(client, f"/listings/{view.row.id}/renew", {"next": "/my/listings"},
                        "/my/listings")
    assert again.headers["Location"] == f"/my/listings?renewed={view.row.id}"
    mine = await (await client.get("/my/listings", headers=FR)).text()
    assert "Republier" not in mine
    found = await listings.search_listings(ctx, listings.SearchFilters(text="echelle"))
    assert [r.id for r in found.items] == [view.row.id]


async def test_alert_pages__offer_page_shows_matching_requests_to_its_author_only(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    await listings.create_listing(ctx, bob.row, {
        **LADDER, "kind": "request", "title": "Cherche une échelle"})
    offer = await listings.create_listing(ctx, alice.row, LADDER)
    await login(client, "alice")
    page = await (await client.get(f"/listings/{offer.row.id}", headers=FR)).text()
    assert "Annonces qui correspondent à la vôtre" in page
    assert "Cherche une échelle" in page
    await client.post("/logout", data={"csrf": await csrf_of(client, "/")}, headers=FR)
    await login(client, "bob")
    page = await (await client.get(f"/listings/{offer.row.id}", headers=FR)).text()
    assert "Annonces qui correspondent à la vôtre" not in page
