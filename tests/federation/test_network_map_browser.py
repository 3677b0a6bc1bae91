"""The public network map on a 360×740 phone in French, JavaScript off: headless Chromium."""

from __future__ import annotations

import pytest

from tests.federation.conftest import NodeFactory
from tests.federation.test_network_map import _network
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
PHONE = {"width": 360, "height": 740}


async def test_phone_fr__public_network_map_fits_the_screen_without_javascript(  # type: ignore[no-untyped-def]
    make_node: NodeFactory, browser,  # noqa: F811
) -> None:
    # Given alpha with a peer on a trust line, a community heard of, a peer down
    a, *_ = await _network(make_node)
    context = await browser.new_context(viewport=PHONE, locale="fr-FR",
                                        java_script_enabled=False)
    page = await context.new_page()
    # When a visitor opens the public map in French, with JavaScript off
    await page.goto(f"{a.url}/network")
    # Then the drawing is there, named for screen readers, and fits the phone's width
    drawing = page.get_by_role("img", name="Carte du réseau de Community alpha")
    box = await drawing.bounding_box()
    assert box is not None
    assert 300 <= box["width"] <= 360
    legend = await page.locator("svg .legend").text_content()
    assert legend is not None
    assert "Envois en échec" in legend
    # and the table under it gives the same data, without balances
    table = await page.locator("table.network-links").inner_text()
    assert "Connue par nos pairs" in table
    assert "30 j" not in table  # the table says it in full
    assert "nous lui devons" not in await page.content()
    body = await page.locator("body").bounding_box()
    assert body is not None
    assert body["width"] <= 360
    await page.screenshot(path=SCREENSHOTS / "network_map_public_fr.png", full_page=True)
    await context.close()
