"""Issue 16, "Dead ends and misleading forms", in a real browser in French on a 360×740 phone:
a booking refused for asking too much comes back as the listing with the form refilled and the
reason under the field (no dead end); corrected, it goes through; the author then sees the
pending request on "Mes annonces", on the listing and in the navigation count."""

from __future__ import annotations

import pytest

from meshnode.services import listings
from meshnode.services import members as member_service
from meshnode.store import deals as q
from tests.conftest import PASSWORD, ride_listing
from tests.web.browser.conftest import SCREENSHOTS, RunningNode

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
SMALL_PHONE = {"width": 360, "height": 740}


async def _log_in(browser, url: str, username: str):  # type: ignore[no-untyped-def]
    context = await browser.new_context(viewport=SMALL_PHONE, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.get_by_label("Nom d’utilisateur").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{url}/")
    return context, page


async def test_booking_refused_comes_back_refilled_then_author_sees_the_request(
    node: RunningNode, browser,  # type: ignore[no-untyped-def]
) -> None:
    # Given alice's ride with 3 seats and bob on his phone
    alice = await member_service.get_member(node.ctx, "alice")
    bob = await member_service.add_member(node.ctx, username="bob", password=PASSWORD,
                                          display_name="Bob")
    ride = await listings.create_listing(node.ctx, alice, ride_listing())
    context, page = await _log_in(browser, node.url, "bob")
    await page.goto(f"{node.url}/listings/{ride.row.id}")
    # When he asks for 5 seats with a message
    await page.get_by_label("Quantité").fill("5")
    await page.get_by_label("Message (facultatif)").fill("On est cinq")
    await page.get_by_role("button", name="Envoyer la demande").click()
    # Then the listing comes back, his input kept, the reason under the field, capitalised
    await page.wait_for_load_state()
    assert page.url == f"{node.url}/listings/{ride.row.id}/book"
    assert await page.get_by_label("Quantité").input_value() == "5"
    assert await page.get_by_label("Message (facultatif)").input_value() == "On est cinq"
    reason = page.locator("#err-quantity")
    assert await reason.is_visible()
    # rendered text: the stylesheet capitalises the service's lower-case sentence
    assert (await reason.inner_text()).startswith("Il ne reste que 3 place")
    assert await page.get_by_label("Quantité").get_attribute("aria-invalid") == "true"
    # the refilled field has the focus, so the phone scrolls to it rather than the page top
    assert await page.evaluate("document.activeElement.id") == "book-quantity"
    assert await page.locator("text=Un problème est survenu").count() == 0
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=SCREENSHOTS / "booking_refused_fr_360.png", full_page=True)
    assert await q.list_for_member(node.ctx.store.reader, bob.id, "booker") == []
    # When he corrects it to 2, the request goes through
    await page.get_by_label("Quantité").fill("2")
    await page.get_by_role("button", name="Envoyer la demande").click()
    await page.wait_for_url(f"{node.url}/deals/*")
    await context.close()

    # Then alice sees it in the navigation count, on "Mes annonces" and on the listing
    context, page = await _log_in(browser, node.url, "alice")
    assert await page.get_by_label("1 notification non lue").inner_text() == "1"
    await page.goto(f"{node.url}/my/listings")
    waiting = page.get_by_role("link", name="1 demande de réservation attend votre réponse")
    assert await waiting.is_visible()
    await page.screenshot(path=SCREENSHOTS / "my_listings_pending_fr_360.png", full_page=True)
    await page.goto(f"{node.url}/listings/{ride.row.id}")
    await page.locator("#pending-requests a").click()
    await page.wait_for_url(f"{node.url}/my/deals")
    assert await page.get_by_role("button", name="Accepter").count() == 1
    await context.close()
