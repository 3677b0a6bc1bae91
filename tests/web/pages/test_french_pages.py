"""Pages in French: typography in the rendered text, no internals, the footer language switch."""

from __future__ import annotations

from html.parser import HTMLParser

from aiohttp.test_utils import TestClient

from meshnode.services import deals, iou, listings
from meshnode.services.context import NodeContext
from meshnode.store import iou as iou_store
from meshnode.web.typography import missing_french_spaces
from tests import conftest as base
from tests.conftest import ride_listing
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FRENCH = {**HTML, "Accept-Language": "fr"}


class _Text(HTMLParser):
    """The text a reader sees (no scripts or styles), one string per text node."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return "".join(parser.parts)


async def _lend_deal_disputed(ctx: NodeContext, alice: base.TestMember,
                              bob: base.TestMember) -> str:
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="lend", title="Perceuse", details={"deposit": "30.00"},
        price={"mode": "amount", "amount": "2.00", "period": "day"}))
    deal = await deals.book(ctx, bob.row, view.row.id, {
        "from": "2026-11-27T09:00:00Z", "to": "2026-11-29T09:00:00Z"})
    await deals.act(ctx, alice.row, deal.id, "accept")
    await deals.act(ctx, alice.row, deal.id, "dispute", "mandrin cassé")
    return deal.id


async def test_french_pages__every_sign_has_its_narrow_space_and_times_no_seconds(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given a ride, a disputed loan, and bob signed in reading French
    listing_id = await make_ride(ctx, alice)
    deal_id = await _lend_deal_disputed(ctx, alice, bob)
    await login(client, "bob")
    paths = ["/", "/search", f"/listings/{listing_id}", "/my/deals", f"/deals/{deal_id}",
             "/wallet", "/wallet/pay", "/wallet/request", "/messages", "/settings"]
    seen: list[str] = []
    for path in paths:
        response = await client.get(path, headers=FRENCH)
        assert response.status == 200, path
        text = visible_text(await response.text())
        # Then no colon, semicolon, ! or ? lacks its narrow no-break space
        assert missing_french_spaces(text) == [], path
        # And no time shows its seconds
        assert ":00:00" not in text, path
        seen.append(text)
    # And the labels a template follows with a colon got theirs (web/i18n.py: colon)
    assert any("\u202f:" in text for text in seen)


async def test_wallet__deal_memos_and_deposit_claims_are_french_sentences(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given a loan whose deposit alice kept
    await _lend_deal_disputed(ctx, alice, bob)
    await login(client, "alice")
    # When she reads her wallet in French
    text = visible_text(await (await client.get("/wallet", headers=FRENCH)).text())
    # Then the memos are sentences, not the ledger's "deal <id>:" or "deposit claimed:"
    assert "Réservation" in text
    assert "Caution gardée par l’auteur·e" in text
    assert "deal " not in text
    assert "deposit claimed" not in text
    # And so does the notification of the payment
    notices = visible_text(await (await client.get("/notifications", headers=FRENCH)).text())
    assert "Réservation" in notices or "Caution gardée" in notices
    assert "deal " not in notices
    assert "deposit claimed" not in notices


async def test_language_switch__a_visitor_picks_english_then_french_from_the_footer(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    path = f"/listings/{listing_id}"
    # Given a visitor whose browser asks for French
    page = await (await client.get(path, headers=FRENCH)).text()
    assert f'href="/lang/en?next=/listings/{listing_id}"' in page
    # When they follow "English" in the footer
    switched = await client.get(f"/lang/en?next=/listings/{listing_id}", headers=FRENCH,
                                allow_redirects=False)
    assert switched.status == 303
    assert switched.headers["Location"] == path
    assert "mn_lang=en" in switched.headers["Set-Cookie"]
    # Then the same page (served through the anonymous page cache) is in English
    english = await client.get(path, headers=FRENCH)
    assert english.headers["Content-Language"] == "en"
    assert 'href="/lang/fr?next=' in await english.text()
    # And switching back gives French again, not the cached English page
    await client.get("/lang/fr?next=/", headers=FRENCH)
    french = await client.get(path, headers=FRENCH)
    assert french.headers["Content-Language"] == "fr"


async def test_language_switch__unknown_language_is_404_and_next_stays_on_this_node(
    client: TestClient,
) -> None:
    unknown = await client.get("/lang/de?next=/", headers=HTML, allow_redirects=False)
    assert unknown.status == 404
    assert "mn_lang" not in unknown.headers.get("Set-Cookie", "")
    away = await client.get("/lang/en?next=https://evil.example/", headers=HTML,
                            allow_redirects=False)
    assert away.status == 303
    assert not away.headers["Location"].startswith(("http", "//"))


async def test_language_switch__a_member_keeps_the_language_of_their_settings(
    client: TestClient, alice: base.TestMember
) -> None:
    await login(client, "alice")
    page = await (await client.get("/", headers=FRENCH)).text()
    assert "/lang/" not in page  # members choose in Settings


async def test_search__offers_the_communitys_known_places_instead_of_coordinates(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    # Given two rides from the Quai du Canal and one from Villeurbanne, far away
    await make_ride(ctx, alice)
    await make_ride(ctx, alice, title="Covoiturage vers Annecy")
    far = {"name": "Villeurbanne", "lat": 46.7700, "lon": 4.8800}
    far_id = await make_ride(ctx, alice, title="Covoiturage vers Grenoble", location=far)
    # When a visitor opens the search in French
    page = await (await client.get("/search", headers=FRENCH)).text()
    # Then "near" offers those places by name, most used first, and asks for no coordinates
    assert "latitude" not in page
    assert page.index(">Quai du Canal</option>") < page.index(">Villeurbanne</option>")
    assert 'value="46.7700,4.8800">Villeurbanne</option>' in page
    assert "Près de moi" in page  # the geolocation button, shown by app.js when it can work
    # And choosing one finds the listings there and keeps it selected
    found = await (await client.get("/search?near=46.7700,4.8800&radius_km=5",
                                    headers=FRENCH)).text()
    assert f"/listings/{far_id}" in found
    assert "Covoiturage vers Annecy" not in found
    assert 'value="46.7700,4.8800" selected>Villeurbanne' in found


async def test_search__a_position_from_near_me_stays_selected_as_my_position(
    client: TestClient,
) -> None:
    page = await (await client.get("/search?near=45.1000,5.7000", headers=FRENCH)).text()
    assert '<option value="45.1000,5.7000" selected data-position>Ma position</option>' in page


async def test_deal_page__a_request_expires_in_words_and_at_a_time_without_seconds(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob's booking request, waiting for alice's answer
    listing_id = await make_ride(ctx, alice)
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": "2"})
    assert deal.expires_at is not None
    await login(client, "bob")
    # When he reads it in French
    text = visible_text(await (await client.get(f"/deals/{deal.id}", headers=FRENCH)).text())
    # Then the expiry says how far it is, in words, and its time has no seconds
    assert "(dans " in text
    assert ":00:00" not in text


async def test_my_deals__a_decimal_pledge_shows_french_decimals_and_its_unit(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob pledged 2.5 kg on alice's group buy
    view = await listings.create_listing(ctx, alice.row, ride_listing(
        category="group-buy", title="Commande de pommes", price={"mode": "free"},
        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                 "deadline": "2026-11-30T18:00:00Z"}))
    await deals.book(ctx, bob.row, view.row.id, {"quantity": "2.5"})
    await login(client, "bob")
    # When he lists his bookings in French
    text = visible_text(await (await client.get("/my/deals", headers=FRENCH)).text())
    # Then the quantity has a decimal comma and its unit, kept on one line
    assert "Quantité\u202f: 2,5\u00a0kg" in text
    assert "2.5" not in text


async def test_french_admin_pages__every_sign_has_its_narrow_space(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given an admin (alice) with a disputed loan in the ledger, reading French
    await _lend_deal_disputed(ctx, alice, bob)
    await login(client, "alice")
    # The peers and neighbours pages are the layout16 helper's (their own tests)
    paths = ["/admin/members", "/admin/invitations", "/admin/ledger", "/admin/reports",
             "/admin/settings", "/admin/trustlines"]
    for path in paths:
        response = await client.get(path, headers=FRENCH)
        assert response.status == 200, path
        text = visible_text(await response.text())
        # Then no colon, semicolon, ! or ? lacks its narrow no-break space, no time its seconds
        assert missing_french_spaces(text) == [], path
        assert ":00:00" not in text, path


async def test_trustlines__a_connection_failure_reads_as_a_sentence_not_an_exception(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    # Given a proposed trust line whose last attempt could not connect
    await login(client, "alice")
    token = await csrf_of(client, "/admin/trustlines")
    await client.post("/admin/trustlines", headers=HTML, allow_redirects=False, data={
        "peer": "canal@127.0.0.1:9999", "limit_out": "100", "limit_in": "50,5", "rate": "1.5",
        "csrf": token})
    [line] = await iou.list_lines(ctx)
    raw = ("GET http://127.0.0.1:9999/iou/info failed: ClientConnectorError(ConnectionKey("
           "host='127.0.0.1', port=9999), ConnectionRefusedError(111, 'Connect call failed'))")
    async with ctx.store.transaction() as tx:
        await iou_store.update_line(tx, line.id, "2026-11-26T10:00:00Z", last_error=raw)
    # When the admin reads the page in French
    text = visible_text(await (await client.get("/admin/trustlines", headers=FRENCH)).text())
    # Then the failure is a French sentence and no exception name shows
    assert "ClientConnectorError" not in text
    assert "Connect call failed" not in text
    assert "Le nœud est injoignable\u202f: son serveur est éteint" in text
    assert "1 G = 1,5" in text  # the rate with a decimal comma
