"""Issue 14's closing walk, in a real browser (headless Chromium, French, a 360×740 phone).

Léa, on beta, opens the ride Camille published on alpha: she sees who signed it, verified, and
"3 places restantes sur 3", and books a seat. Camille, on alpha, is told (count in the
navigation, item on /notifications), opens the booking and accepts it; both communities then
say "2 places restantes sur 3". Léa writes to Camille with the "Ça m'intéresse" form, Camille
is told, reads and answers, and Léa reads the answer. Two real nodes on 127.0.0.1; federation
work is stepped with ``settle`` between the browser's steps (no sleeping). Every page visited
is no wider than the phone, and each step is photographed into ``tmp_path`` (and into
``$MESHNODE_SCREENSHOTS`` when set)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from meshnode.services import listings, members
from tests.conftest import PASSWORD, ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.web.browser.conftest import browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PHONE = {"width": 360, "height": 740}


class Camera:
    """Photographs each step into tmp_path (and $MESHNODE_SCREENSHOTS when set), after
    checking the page does not scroll sideways on the phone."""

    def __init__(self, tmp_path: Path) -> None:
        self.folders = [tmp_path / "screenshots"]
        extra = os.environ.get("MESHNODE_SCREENSHOTS")
        if extra:
            self.folders.append(Path(extra))
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def step(self, page: Any, name: str) -> None:
        """Assert the document fits the viewport's width, then take the step's screenshot."""
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name}: {page.url} is {width}px wide"
        self.count += 1
        for folder in self.folders:
            await page.screenshot(path=folder / f"issue14_{self.count:02d}_{name}.png",
                                  full_page=True)


async def _log_in(context: Any, node: Node, username: str) -> Any:
    page = await context.new_page()
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{node.url}/")
    return page


async def _remaining(page: Any, url: str) -> str:
    await page.goto(url)
    return str(await page.locator("#remaining").inner_text())


async def test_issue14_walk__french_phone_books_another_communitys_ride_and_talks_to_its_author(
    make_node: NodeFactory, browser: Any, tmp_path: Path,  # noqa: F811
) -> None:
    camera = Camera(tmp_path)
    # Given Camille@alpha offers a free 3-seat ride (accepted by hand), seen by beta
    alpha, beta = await make_node("alpha"), await make_node("beta")
    await peer(alpha, beta)
    camille = await members.add_member(alpha.ctx, username="camille", password=PASSWORD,
                                       display_name="Camille")
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    view = await listings.create_listing(alpha.ctx, camille, ride_listing(
        price={"mode": "free"}, details={**base, "seats": 3}))
    await settle(alpha, beta)
    await members.add_member(beta.ctx, username="lea", password=PASSWORD, display_name="Léa")
    remote = await beta.remote(view.row.object_id)
    assert remote is not None
    on_beta, on_alpha = f"{beta.url}/listings/{remote.id}", f"{alpha.url}/listings/{view.row.id}"
    handle = f"camille@{alpha.url.removeprefix('http://')}"
    lea_context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    camille_context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    lea = await _log_in(lea_context, beta, "lea")
    await camera.step(lea, "lea_home_beta")

    # When Léa opens alpha's ride on beta
    # Then she sees who signed it, verified, and 3 seats of 3
    assert await _remaining(lea, on_beta) == "3 places restantes sur 3"
    assert await lea.locator(".sig.ok").inner_text() == f"✔ Signé par Camille ({handle}), vérifié"
    await camera.step(lea, "lea_remote_ride_signed_3_of_3")
    # When she books one seat
    await lea.get_by_label("Quantité").fill("1")
    await lea.get_by_role("button", name="Envoyer la demande").click()
    await lea.wait_for_url(f"{beta.url}/deals/**")
    await camera.step(lea, "lea_booking_requested")
    await settle(alpha, beta)

    # Then Camille, on alpha, sees one unread notification in her navigation
    camille_page = await _log_in(camille_context, alpha, "camille")
    assert await camille_page.get_by_label("1 notification non lue").inner_text() == "1"
    await camera.step(camille_page, "camille_home_one_notification")
    # and the booking request on /notifications
    await camille_page.get_by_role("link", name="Notifications").click()
    await camille_page.wait_for_url(f"{alpha.url}/notifications")
    request = camille_page.get_by_role("button", name="Quelqu’un demande à réserver votre annonce")
    assert await request.count() == 1
    await camera.step(camille_page, "camille_notifications_booking")
    # When she opens it and accepts
    await request.click()
    await camille_page.wait_for_url(f"{alpha.url}/deals/**")
    assert view.row.title in await camille_page.locator("h1").inner_text()
    lea_handle = f"lea@{beta.url.removeprefix('http://')}"
    assert await camille_page.locator("article.deal p.small").inner_text() == \
        f"Léa · {lea_handle}"  # the booker by name, not by URL
    await camera.step(camille_page, "camille_booking_to_accept")
    await camille_page.get_by_role("button", name="Accepter").click()
    await camille_page.wait_for_url(f"{alpha.url}/deals/**")
    assert await camille_page.get_by_role("button", name="Accepter").count() == 0
    assert await camille_page.locator("article.deal .tag-status").inner_text() == "Acceptée"
    await camera.step(camille_page, "camille_booking_accepted")
    await settle(alpha, beta)

    # Then both communities say 2 seats of 3
    assert await _remaining(camille_page, on_alpha) == "2 places restantes sur 3"
    await camera.step(camille_page, "camille_ride_2_of_3")
    assert await _remaining(lea, on_beta) == "2 places restantes sur 3"
    await camera.step(lea, "lea_remote_ride_2_of_3")
    # and Léa was told her booking was accepted
    assert await lea.get_by_label("1 notification non lue").inner_text() == "1"

    # When Léa writes to Camille with the "Ça m'intéresse" form
    assert await lea.get_by_role("heading", name="Ça m’intéresse").count() == 1
    await lea.locator("#body").fill("Bonjour Camille, où se retrouve-t-on samedi ?")
    await lea.locator('form[action$="/interested"] button').click()
    await lea.wait_for_url(f"{beta.url}/messages/with/**")
    assert "où se retrouve-t-on samedi ?" in await lea.locator("ol.thread").inner_text()
    await camera.step(lea, "lea_message_sent")
    await settle(alpha, beta)

    # Then Camille is told: a notification and a new message in her navigation
    await camille_page.goto(f"{alpha.url}/")
    assert await camille_page.get_by_label("1 notification non lue").inner_text() == "1"
    # (the unread messages count is on the navigation's Menu, issue 16's one-line navigation)
    assert await camille_page.locator("nav summary .badge").inner_text() == "1"
    await camera.step(camille_page, "camille_told_of_message")
    await camille_page.get_by_role("link", name="Notifications").click()
    await camille_page.wait_for_url(f"{alpha.url}/notifications")
    message = camille_page.get_by_role("button", name="Nouveau message")
    assert await message.count() == 1
    await camera.step(camille_page, "camille_notifications_message")
    # When she opens it, reads the conversation and answers
    await message.click()
    await camille_page.wait_for_url(f"{alpha.url}/messages/**")
    assert "où se retrouve-t-on samedi ?" in await camille_page.locator("ol.thread").inner_text()
    await camera.step(camille_page, "camille_conversation")
    await camille_page.locator("#body").fill("Au quai du canal, 8 h 45. À samedi !")
    await camille_page.get_by_role("button", name="Envoyer", exact=True).click()
    await camille_page.wait_for_url(f"{alpha.url}/messages/**")
    await camera.step(camille_page, "camille_replied")
    await settle(alpha, beta)

    # Then Léa reads the answer under her message
    await lea.reload()
    thread = await lea.locator("ol.thread").inner_text()
    assert thread.index("où se retrouve-t-on") < thread.index("Au quai du canal, 8 h 45")
    await camera.step(lea, "lea_reads_reply")
    assert camera.count == 15
    await lea_context.close()
    await camille_context.close()
