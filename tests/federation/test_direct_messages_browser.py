"""In a real browser (headless Chromium, French, a 360×740 phone): bob on beta writes to the
author of a ride published on alpha, alice answers, bob reads the answer. Two real nodes;
federation work is stepped with ``settle`` between the browser's steps (no sleeping)."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD
from tests.federation.browser import person
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 (the fixture)

PHONE_360 = {"width": 360, "height": 740}


async def _login(context: Any, node: Node, username: str) -> Any:
    page = await context.new_page()
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{node.url}/")
    return page


async def test_browser__french_phone_messages_the_author_of_another_communitys_ride(
    make_node: NodeFactory, browser: Any,  # noqa: F811
) -> None:
    # Given alice's ride on alpha, shown on beta
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    await peer(alpha, beta)
    alice = await person(alpha, "alice")
    await person(beta, "bob")
    view = await alpha.publish(alice)
    await settle(alpha, beta)
    remote = await beta.remote(view.row.object_id)
    assert remote is not None
    bob_context = await browser.new_context(viewport=PHONE_360, locale="fr-FR")
    alice_context = await browser.new_context(viewport=PHONE_360, locale="fr-FR")
    # When bob opens it on his phone and presses "Ça m'intéresse"
    bob_page = await _login(bob_context, beta, "bob")
    await bob_page.goto(f"{beta.url}/listings/{remote.id}")
    assert await bob_page.get_by_role("heading", name="Ça m’intéresse").count() == 1
    await bob_page.locator("#body").fill("Bonjour, il reste une place samedi ?")
    await bob_page.locator('form[action$="/interested"] button').click()
    await bob_page.wait_for_url(f"{beta.url}/messages/with/**")
    assert "Bonjour, il reste une place samedi ?" in await bob_page.content()
    await bob_page.screenshot(path=SCREENSHOTS / "remote_message_sent_fr.png", full_page=True)
    await settle(alpha, beta)
    # Then alice sees a new message and a notification in her navigation, and answers it
    alice_page = await _login(alice_context, alpha, "alice")
    assert await alice_page.locator("nav summary .badge").inner_text() == "1"  # on the Menu
    assert await alice_page.get_by_role("link", name="Notifications 1 notification").count() == 1
    await alice_page.goto(f"{alpha.url}/messages")
    await alice_page.get_by_role("link", name=view.row.title).click()
    await alice_page.locator("#body").fill("Oui, une place, rendez-vous au canal.")
    await alice_page.get_by_role("button", name="Envoyer", exact=True).click()
    await alice_page.screenshot(path=SCREENSHOTS / "remote_message_reply_fr.png",
                                full_page=True)
    await settle(alpha, beta)
    # And bob reads her answer under his message
    await bob_page.reload()
    text = await bob_page.locator("ol.thread").inner_text()
    assert text.index("il reste une place") < text.index("rendez-vous au canal")
    await bob_context.close()
    await alice_context.close()
