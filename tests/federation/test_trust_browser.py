"""A phone in French (360×740) reads another community's listing: who signed it, verified,
checked again from the page; names instead of URLs on the card."""

from __future__ import annotations

import pytest

from meshnode.services import members
from tests.conftest import PASSWORD
from tests.federation.conftest import NodeFactory, peer, settle
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PHONE = {"width": 360, "height": 740}


async def test_phone_fr__remote_listing_names_signer_and_checks_again(  # type: ignore[no-untyped-def]
    make_node: NodeFactory, browser,  # noqa: F811
) -> None:
    # Given alpha's Camille published a ride that beta received
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    camille = await members.add_member(a.ctx, username="camille", password=None,
                                       display_name="Camille")
    view = await a.publish(camille)
    await settle(a, b)
    await members.add_member(b.ctx, username="lea", password=PASSWORD)
    host_a = a.url.removeprefix("http://")
    context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    page = await context.new_page()
    # When Léa, on beta, opens the home page
    await page.goto(f"{b.url}/")
    card = page.locator("article.card", has_text="Covoiturage vers Lyon")
    # Then the card names Camille and her community, not their URLs
    byline = await card.locator(".byline").inner_text()
    assert byline == f"Camille · camille@{host_a} · depuis Community alpha · alpha@{host_a}"
    # When she logs in and opens the listing
    await page.goto(f"{b.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill("lea")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    await page.goto(f"{b.url}/listings/{remote.id}")
    # Then it says who signed it, verified, with the key's fingerprint
    assert await page.locator(".sig.ok").inner_text() == \
        f"✔ Signé par Camille (camille@{host_a}), vérifié"
    assert "Clé " in await page.locator(".sig-details").inner_text()
    await page.screenshot(path=SCREENSHOTS / "remote_listing_signed_fr.png", full_page=True)
    # When she asks for the signature to be checked again, it still verifies
    b.clock.advance(minutes=5)
    await page.get_by_role("button", name="Vérifier à nouveau la signature").click()
    await page.wait_for_url(f"{b.url}/listings/{remote.id}#signature")
    assert await page.locator(".sig.ok").count() == 1
    await context.close()
