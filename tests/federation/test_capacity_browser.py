"""A phone in French (360×740) books a seat on another community's ride and sees the seats
left count down on both nodes, then "Complet" with no booking form on both."""

from __future__ import annotations

from typing import Any

import pytest

from meshnode.services import deals, listings, members
from tests.conftest import PASSWORD, ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PHONE = {"width": 360, "height": 740}


async def _log_in(page: Any, node: Node, username: str) -> None:
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()


async def test_phone_fr__a_seat_booked_from_beta_counts_down_on_both_nodes(  # type: ignore[no-untyped-def]
    make_node: NodeFactory, browser,  # noqa: F811
) -> None:
    # Given Camille@alpha offers a 3-seat ride, accepted automatically, seen by beta
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    camille = await members.add_member(a.ctx, username="camille", password=PASSWORD)
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    view = await listings.create_listing(a.ctx, camille, ride_listing(
        price={"mode": "free"}, details={**base, "auto_accept": True}))
    await settle(a, b)
    await members.add_member(b.ctx, username="lea", password=PASSWORD)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    lea = await context.new_page()
    await _log_in(lea, b, "lea")
    await lea.goto(f"{b.url}/listings/{remote.id}")
    assert await lea.locator("#remaining").inner_text() == "3 places restantes sur 3"
    # When Léa books one seat from her phone
    await lea.get_by_label("Quantité").fill("1")
    await lea.get_by_role("button", name="Envoyer la demande").click()
    await settle(a, b)
    # Then both communities say 2 of 3
    await lea.goto(f"{b.url}/listings/{remote.id}")
    assert await lea.locator("#remaining").inner_text() == "2 places restantes sur 3"
    visitor = await context.new_page()
    await visitor.goto(f"{a.url}/listings/{view.row.id}")
    assert await visitor.locator("#remaining").inner_text() == "2 places restantes sur 3"
    await lea.screenshot(path=SCREENSHOTS / "capacity_two_left_fr.png", full_page=True)
    # When the last two seats go to someone of alpha
    rider = await members.add_member(a.ctx, username="rider", password=None)
    await deals.book(a.ctx, rider, view.row.id, {"quantity": 2})
    await settle(a, b)
    # Then Léa's page says "Complet" and has no booking form, on beta as on alpha
    for page, url in ((lea, f"{b.url}/listings/{remote.id}"),
                      (visitor, f"{a.url}/listings/{view.row.id}")):
        await page.goto(url)
        assert await page.locator("#remaining").inner_text() == "Complet"
        assert await page.get_by_role("button", name="Envoyer la demande").count() == 0
    await lea.goto(f"{b.url}/")
    card = lea.locator("article.card", has_text="Covoiturage vers Lyon")
    assert await card.locator(".tag-full").inner_text() == "Complet"
    await lea.screenshot(path=SCREENSHOTS / "capacity_full_fr.png", full_page=True)
    await context.close()
