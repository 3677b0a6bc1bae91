"""A phone in French (360×740) on the node a member moved to: the profile counts the deals
brought from the old community, and each receipt shows its signatures checked again."""

from __future__ import annotations

import pytest

from meshnode import urls
from meshnode.services import members
from tests.conftest import PASSWORD
from tests.federation.conftest import NodeFactory
from tests.federation.test_receipts import _api, _completed_cross_deal, _export
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PHONE = {"width": 360, "height": 740}


async def test_phone_fr__profile_counts_imported_receipts_and_each_one_verifies(  # type: ignore[no-untyped-def]
    make_node: NodeFactory, browser,  # noqa: F811
) -> None:
    # Given alice of alpha completed a deal with bob of beta and moved to gamma as "alice"
    a, b, _alice, _bob, _deal = await _completed_cross_deal(make_node)
    c = await make_node("gamma")
    await members.add_member(c.ctx, username="alice", password=PASSWORD,
                             display_name="Alice")
    bundle = await _export(a, "alice", urls.member_actor(c.url, "alice"))
    status, body = await _api(c, "alice", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 201, body
    context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    page = await context.new_page()
    # When she signs in on gamma and opens her profile
    await page.goto(f"{c.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill("alice")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.goto(f"{c.url}/users/alice")
    # Then the profile counts the deal from her former community, in French
    line = await page.locator("#reputation").inner_text()
    assert line.replace("\u202f", " ").replace("\u00a0", " ") == (
        "1 échange dont 1 avec une autre communauté, 0 absence")
    await page.screenshot(path=SCREENSHOTS / "profile_reputation_fr.png", full_page=True)
    # When she opens the receipts, each one says its signatures were checked
    await page.get_by_role("link", name="Vérifier chaque reçu").click()
    await page.wait_for_url(f"{c.url}/users/alice/receipts")
    receipt = page.locator("li.receipt")
    assert await receipt.count() == 1
    text = await receipt.inner_text()
    assert "Signatures vérifiées" in text
    assert "Apporté d’une autre communauté" in text
    await page.screenshot(path=SCREENSHOTS / "receipts_verified_fr.png", full_page=True)
    await context.close()
    assert b.url != c.url
