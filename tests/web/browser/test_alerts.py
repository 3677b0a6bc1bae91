"""A saved search that alerts, in a real browser, in French on a 360×740 phone: bob searches
for a ladder, saves the search as an alert with one button, alice lends one, and bob finds
the match in his notifications and opens the listing."""

from __future__ import annotations

from typing import Any

import pytest

from meshnode.services import alerts, listings
from meshnode.services import members as member_service
from tests.conftest import PASSWORD
from tests.web.browser.conftest import SCREENSHOTS, RunningNode

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
SMALL_PHONE = {"width": 360, "height": 740}
LADDER: dict[str, Any] = {
    "kind": "offer", "category": "lend", "title": "Échelle alu 3 m",
    "description": "Prêtée le week-end.", "price": {"mode": "free"},
    "location": {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357}, "details": {}}


async def test_saved_search_alerts_of_a_new_ladder_on_a_small_phone_in_french(
    node: RunningNode, browser,  # type: ignore[no-untyped-def]
) -> None:
    alice = await member_service.get_member(node.ctx, "alice")
    bob = await member_service.add_member(node.ctx, username="bob", password=PASSWORD,
                                          display_name="Bob")
    # Given bob, on his phone in French, searches for a ladder (nothing yet)
    context = await browser.new_context(viewport=SMALL_PHONE, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill("bob")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{node.url}/")
    await page.goto(f"{node.url}/search?q=echelle")
    # When he presses "Créer une alerte pour cette recherche"
    await page.get_by_role("button", name="Créer une alerte pour cette recherche").click()
    await page.wait_for_url(f"{node.url}/my/alerts?saved=1")
    # Then "Mes alertes" confirms it, without sideways scroll
    assert await page.get_by_role("heading", name="Mes alertes").count() == 1
    assert await page.get_by_text("Alerte enregistrée").count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=SCREENSHOTS / "alerts_fr_360.png", full_page=True)
    assert [a.row.q for a in await alerts.list_alerts(node.ctx, bob)] == ["echelle"]
    # When alice lends an "Échelle" (with the accent)
    ladder = await listings.create_listing(node.ctx, alice, LADDER)
    # Then bob's navigation counts one notification, which reads as a match
    await page.goto(f"{node.url}/")
    assert await page.get_by_label("1 notification non lue").inner_text() == "1"
    await page.get_by_role("link", name="Notifications").click()
    await page.wait_for_url(f"{node.url}/notifications")
    item = page.get_by_role(
        "button", name="Une annonce correspond à votre recherche ou à votre annonce")
    assert await item.count() == 1
    assert await page.get_by_text("Échelle alu 3 m").count() == 1
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=SCREENSHOTS / "alerts_match_fr_360.png", full_page=True)
    # And opening it lands on the ladder
    await item.click()
    await page.wait_for_url(f"{node.url}/listings/{ladder.row.id}")
    await context.close()
