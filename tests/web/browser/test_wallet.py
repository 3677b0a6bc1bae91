"""A payment in a real browser: member A pays member B from the wallet page."""

from __future__ import annotations

import pytest

from meshnode.services import members as member_service
from tests.conftest import PASSWORD
from tests.web.browser.conftest import PHONE, SCREENSHOTS, RunningNode

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def _login(page, node: RunningNode, username: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{node.url}/")


async def test_member_pays_another_from_the_wallet_page(node: RunningNode, browser) -> None:  # type: ignore[no-untyped-def]
    await member_service.add_member(node.ctx, username="bob", password=PASSWORD,
                                    display_name="Bob")
    # Given alice on her phone opens her wallet
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await context.new_page()
    await _login(page, node, "alice")
    await page.locator("nav summary").click()  # the menu (a <details>)
    await page.get_by_role("link", name="Wallet").click()
    await page.wait_for_url(f"{node.url}/wallet")
    # When she pays bob 12,50 from it (a first try over her limit keeps her input)
    await page.get_by_role("link", name="Pay someone").click()
    await page.get_by_label("Pay to (username, or name@host").fill("bob")
    await page.get_by_label("Amount (G)").fill("301")
    await page.get_by_label("What for?").fill("Pain au levain")
    await page.get_by_role("button", name="Pay now").click()
    assert "you can spend at most 300.00" in await page.locator("#err-amount").inner_text()
    assert await page.get_by_label("What for?").input_value() == "Pain au levain"
    await page.screenshot(path=SCREENSHOTS / "wallet_pay_error.png", full_page=True)
    await page.get_by_label("Amount (G)").fill("12,50")
    await page.get_by_role("button", name="Pay now").click()
    await page.wait_for_url(f"{node.url}/wallet?done=paid")
    assert await page.locator("#balance").inner_text() == "-12.50\u00a0G"
    await page.screenshot(path=SCREENSHOTS / "wallet_payer.png", full_page=True)
    await page.goto(f"{node.url}/admin/ledger")
    assert "✔ verifies" in await page.locator(".fields").inner_text()
    await page.screenshot(path=SCREENSHOTS / "admin_ledger.png", full_page=True)
    await context.close()

    # Then bob, on his phone, sees the new balance, the payment and the chart
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await context.new_page()
    await _login(page, node, "bob")
    await page.goto(f"{node.url}/wallet")
    assert await page.locator("#balance").inner_text() == "12.50\u00a0G"
    assert "Pain au levain" in await page.locator(".history").inner_text()
    assert await page.get_by_role("img", name="Balance over time").count() == 1
    await page.screenshot(path=SCREENSHOTS / "wallet.png", full_page=True)
    await context.close()
