"""In a real browser (headless Chromium, French, a 360×740 phone): bob on beta joins the
waiting list of a drill lent out on alpha, sees his place, then his turn, on beta's pages.
Two real nodes; federation work is stepped with ``settle`` between the browser's steps."""

from __future__ import annotations

from typing import Any

from meshnode.services import deals
from tests.federation.browser import person
from tests.federation.conftest import NodeFactory, peer, settle
from tests.federation.test_direct_messages_browser import PHONE_360, _login
from tests.federation.test_queue_cross_node import lent_out, remote_copy
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 (the fixture)


async def test_browser__french_phone_joins_another_communitys_waiting_list(
    make_node: NodeFactory, browser: Any,  # noqa: F811
) -> None:
    # Given alice's drill on alpha is lent out, and bob of beta opens it on his phone
    alpha, beta = await make_node("alpha"), await make_node("beta")
    await peer(alpha, beta)
    alice = await person(alpha, "alice")
    await person(beta, "bob")
    listing, loan = await lent_out(alpha, alice)
    await settle(alpha, beta)
    here = await remote_copy(beta, listing)
    context = await browser.new_context(viewport=PHONE_360, locale="fr-FR")
    page = await _login(context, beta, "bob")
    await page.goto(f"{beta.url}/listings/{here.id}")
    # When he presses "Rejoindre la file d'attente"
    await page.get_by_role("button", name="Rejoindre la file d’attente").click()
    await page.wait_for_url(f"{beta.url}/listings/{here.id}#queue")
    assert "Votre demande a été envoyée" in await page.locator("#queue-joining").inner_text()
    # Then, once alpha answered, he sees his place as alpha told it
    await settle(alpha, beta)
    await page.reload()
    assert "Vous êtes n° 1 dans la file d’attente" in await page.locator(
        "#queue-position").inner_text()
    # When the drill comes back, his turn shows on the listing and in "Mes réservations"
    await deals.act(alpha.ctx, alice, loan, "complete")
    await settle(alpha, beta)
    await page.reload()
    assert "C’est votre tour" in await page.locator("#queue-turn").inner_text()
    await page.screenshot(path=SCREENSHOTS / "remote_queue_turn_fr.png", full_page=True)
    await page.goto(f"{beta.url}/my/deals")
    places = await page.locator("#queue-places").inner_text()
    assert "c’est votre tour" in places
    assert listing.title in places
    assert await page.title() == "Mes réservations · Community beta"  # the list is not in it
    await page.screenshot(path=SCREENSHOTS / "remote_queue_my_deals_fr.png", full_page=True)
    await context.close()
