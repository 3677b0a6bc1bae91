"""Notifications in a real browser, in French on a 360×740 phone: the author of a ride sees
the count in the navigation, opens the item, lands on the booking, and the count is gone."""

from __future__ import annotations

import pytest

from meshnode.services import deals, listings
from meshnode.services import members as member_service
from tests.conftest import PASSWORD, ride_listing
from tests.web.browser.conftest import SCREENSHOTS, RunningNode

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
SMALL_PHONE = {"width": 360, "height": 740}


async def test_author_is_told_of_a_booking_and_opens_it_on_a_small_phone_in_french(
    node: RunningNode, browser,  # type: ignore[no-untyped-def]
) -> None:
    # Given bob booked a seat on alice's ride
    alice = await member_service.get_member(node.ctx, "alice")
    bob = await member_service.add_member(node.ctx, username="bob", password=PASSWORD,
                                          display_name="Bob")
    ride = await listings.create_listing(node.ctx, alice, ride_listing())
    deal = await deals.book(node.ctx, bob, ride.row.id, {"quantity": 1})
    # When alice logs in on her phone in French
    context = await browser.new_context(viewport=SMALL_PHONE, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill("alice")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{node.url}/")
    # Then the navigation says one unread notification
    badge = page.get_by_label("1 notification non lue")
    assert await badge.inner_text() == "1"
    # When she opens the notifications page, the item reads in French, without sideways scroll
    await page.get_by_role("link", name="Notifications").click()
    await page.wait_for_url(f"{node.url}/notifications")
    item = page.get_by_role("button", name="Quelqu’un demande à réserver votre annonce")
    assert await item.count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    assert await item.is_visible()  # the sentence is readable: accent on white, not white
    assert await item.evaluate("e => getComputedStyle(e).color") == "rgb(29, 94, 58)"
    await page.screenshot(path=SCREENSHOTS / "notifications_fr_360.png", full_page=True)
    # And opening it lands on the booking, and the count is gone
    await item.click()
    await page.wait_for_url(f"{node.url}/deals/{deal.id}")
    assert await page.get_by_label("1 notification non lue").count() == 0
    await context.close()
