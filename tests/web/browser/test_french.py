"""Issue 16, language and typography, in a real browser: French on a 360×740 phone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from meshnode.services import listings
from meshnode.services import members as member_service
from tests.conftest import ride_listing
from tests.web.browser.conftest import SCREENSHOTS, RunningNode

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SMALL_PHONE = {"width": 360, "height": 740}
# Where the browser says the visitor is: next to the Quai du Canal (tests/conftest.py).
HERE = {"latitude": 45.7641, "longitude": 4.8356}


async def _ride(node: RunningNode, title: str, place: dict[str, object]) -> str:
    alice = await member_service.get_member(node.ctx, "alice")
    departure = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    data = ride_listing(title=title, location=place, details={
        "from": "Canal", "to": "Lyon", "departure": departure, "seats": 3})
    view = await listings.create_listing(node.ctx, alice, data)
    return view.row.id


async def test_visitor__switches_language_in_the_footer_and_searches_near_me(  # type: ignore[no-untyped-def]
    node: RunningNode, browser
) -> None:
    # Given a ride from the Quai du Canal and one from far away, and a visitor in French
    near_id = await _ride(node, "Covoiturage vers Lyon",
                          {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357})
    await _ride(node, "Covoiturage vers Grenoble",
                {"name": "Villeurbanne", "lat": 46.7700, "lon": 4.8800})
    context = await browser.new_context(viewport=SMALL_PHONE, locale="fr-FR",
                                        geolocation=HERE, permissions=["geolocation"])
    page = await context.new_page()
    await page.goto(f"{node.url}/listings/{near_id}")
    assert await page.locator("html").get_attribute("lang") == "fr"

    # When they follow "English" in the footer, they stay on the same listing, in English
    await page.locator("footer").get_by_role("link", name="English").click()
    await page.wait_for_url(f"{node.url}/listings/{near_id}")
    assert await page.locator("html").get_attribute("lang") == "en"
    await page.screenshot(path=SCREENSHOTS / "language_switch_en.png", full_page=True)
    # And "Français" brings French back
    await page.locator("footer").get_by_role("link", name="Français").click()
    await page.wait_for_url(f"{node.url}/listings/{near_id}")
    assert await page.locator("html").get_attribute("lang") == "fr"

    # When they open the search, "near" lists the community's places, no coordinates asked
    await page.goto(f"{node.url}/search")
    near = page.locator("select#near")
    names = await near.locator("option").all_text_contents()
    assert names[1:] == ["Quai du Canal", "Villeurbanne"]
    assert await page.get_by_text("latitude").count() == 0
    # And "Près de moi" takes the browser's position as a "Ma position" choice
    await page.get_by_role("button", name="Près de moi").click()
    await expect(near).to_have_value("45.7641,4.8356")
    assert await near.locator("option:checked").text_content() == "Ma position"
    await page.screenshot(path=SCREENSHOTS / "search_near_me_fr.png", full_page=True)
    await page.locator("form.filters button[type=submit]").click()
    await page.wait_for_url("**/search?**near=45.7641%2C4.8356**")
    # Then only the ride from the Quai du Canal is found, and the position stays chosen
    assert await page.get_by_text("Covoiturage vers Lyon").count() >= 1
    assert await page.get_by_text("Covoiturage vers Grenoble").count() == 0
    assert await near.locator("option:checked").text_content() == "Ma position"
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= SMALL_PHONE["width"]
    await context.close()
