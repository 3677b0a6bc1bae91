"""End-to-end flows in a real browser against a real node (screenshots in test-output/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meshnode.services import listings
from meshnode.services import members as member_service
from tests.conftest import PASSWORD, ride_listing
from tests.web.browser.conftest import PHONE, SCREENSHOTS, RunningNode

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _departure(days: int = 10) -> str:
    when = datetime.now(UTC) + timedelta(days=days)
    return when.strftime("%Y-%m-%dT09:30")


async def _login(page, node: RunningNode, username: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{node.url}/")


async def test_invitation_signup_post_search_edit_done_logout(node: RunningNode, browser) -> None:  # type: ignore[no-untyped-def]
    admin = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await admin.new_page()
    # Given an admin who creates an invitation link in the admin pages
    await _login(page, node, "alice")
    await page.goto(f"{node.url}/admin/invitations")
    await page.get_by_role("button", name="Create an invitation link").click()
    link = await page.locator("#invite-link").input_value()
    assert link.startswith(f"{node.url}/join/")
    assert await page.locator(".qr svg").count() == 1
    await page.screenshot(path=SCREENSHOTS / "admin_invitation.png", full_page=True)
    await admin.close()

    # When a neighbour follows it on their phone and signs up
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await context.new_page()
    await page.goto(link)
    await page.screenshot(path=SCREENSHOTS / "join.png", full_page=True)
    await page.get_by_label("Username").fill("carol")
    await page.get_by_label("Name shown to others").fill("Carol")
    await page.get_by_label("Password", exact=True).fill("a long password")
    await page.get_by_label("Password again").fill("a long password")
    await page.get_by_role("button", name="Create my account").click()
    await page.wait_for_url(f"{node.url}/")

    # And posts a ride offer (a first attempt with a missing field keeps the input)
    await page.get_by_role("link", name="Post", exact=True).click()
    await page.get_by_role("link", name="Ride").click()
    await page.get_by_label("Title").fill("Balade à vélo jusqu'à Lyon")
    await page.get_by_label("From").fill("Quai du Canal")
    await page.get_by_label("Departure").fill(_departure())
    await page.get_by_label("Seats").fill("2")
    await page.get_by_role("button", name="Publish").click()
    await page.screenshot(path=SCREENSHOTS / "post_errors.png", full_page=True)
    # the field message as rendered: the stylesheet capitalises its first letter (issue 16)
    assert await page.locator("#err-details-to").inner_text() == "Required"
    assert await page.get_by_label("Title").input_value() == "Balade à vélo jusqu'à Lyon"
    await page.get_by_label("To", exact=True).fill("Lyon Part-Dieu")
    await page.get_by_label("Price", exact=True).check()
    await page.get_by_label("Amount (G)").fill("3,50")
    await page.get_by_role("button", name="Publish").click()
    await page.wait_for_url(f"{node.url}/listings/*")
    listing_url = page.url

    # Then it can be found without accents and opened
    await page.goto(f"{node.url}/")
    await page.screenshot(path=SCREENSHOTS / "home.png", full_page=True)
    await page.get_by_label("Search listings").fill("velo")
    await page.get_by_role("button", name="Search").click()
    await page.screenshot(path=SCREENSHOTS / "search.png", full_page=True)
    await page.get_by_role("link", name="Balade à vélo jusqu'à Lyon").click()
    assert page.url == listing_url
    assert (await page.locator(".sig.ok").inner_text()).endswith("), verified")
    assert "3.50" in await page.locator(".fields").inner_text()
    await page.screenshot(path=SCREENSHOTS / "listing.png", full_page=True)

    # And edited, then marked done
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Seats").fill("1")
    await page.screenshot(path=SCREENSHOTS / "edit.png", full_page=True)
    await page.get_by_role("button", name="Save changes").click()
    await page.wait_for_url(listing_url)
    assert "1" in await page.locator(".fields").inner_text()
    await page.get_by_role("button", name="Mark done").click()
    await page.wait_for_url(listing_url)
    assert await page.locator(".tag-status").inner_text() == "Done"
    await page.goto(f"{node.url}/my/listings")
    await page.screenshot(path=SCREENSHOTS / "my_listings.png", full_page=True)

    # And finally logs out
    await page.locator("nav summary").click()  # the menu (a <details>)
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{node.url}/")
    assert await page.get_by_role("link", name="Log in").count() == 1
    await context.close()


async def test_key_pages_in_french(node: RunningNode, browser) -> None:  # type: ignore[no-untyped-def]
    alice = await member_service.get_member(node.ctx, "alice")
    data = ride_listing(details={"from": "Canal", "to": "Lyon", "departure":
                                 (datetime.now(UTC) + timedelta(days=5)).isoformat(), "seats": 3})
    view = await listings.create_listing(node.ctx, alice, data)
    context = await browser.new_context(viewport=PHONE, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{node.url}/")
    assert await page.locator("html").get_attribute("lang") == "fr"
    assert await page.get_by_role("heading", name="Dernières annonces").count() == 1
    await page.screenshot(path=SCREENSHOTS / "home_fr.png", full_page=True)
    await page.goto(f"{node.url}/search?q=velo")
    assert "Covoiturage vers Lyon" in await page.content()
    await page.goto(f"{node.url}/search?q=introuvable")
    assert "Aucune annonce ne correspond" in await page.content()
    await page.screenshot(path=SCREENSHOTS / "search_empty_fr.png", full_page=True)
    await page.goto(f"{node.url}/listings/{view.row.id}")
    signed = await page.locator(".sig.ok").inner_text()
    assert signed.startswith("✔ Signé par Alice (alice@127.0.0.1:")
    assert signed.endswith("), vérifié")
    assert "4,50" in await page.locator(".fields").inner_text()
    await page.screenshot(path=SCREENSHOTS / "listing_fr.png", full_page=True)
    await page.goto(f"{node.url}/login")
    assert await page.get_by_label("Nom d’utilisateur").count() == 1
    await page.get_by_label("Nom d’utilisateur").fill("alice")
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.goto(f"{node.url}/post?category=ride")
    assert await page.get_by_label("Départ de").count() == 1
    await page.screenshot(path=SCREENSHOTS / "post_fr.png", full_page=True)
    await page.goto(f"{node.url}/nope")
    assert "Page introuvable" in await page.content()
    await context.close()


async def test_csrf_less_post_refused_and_script_title_shown_as_text(
    node: RunningNode, browser  # type: ignore[no-untyped-def]
) -> None:
    alice = await member_service.get_member(node.ctx, "alice")
    evil = '<script>alert("pwned")</script> vélo'
    data = ride_listing(title=evil, details={"from": "Canal", "to": "Lyon", "departure":
                        (datetime.now(UTC) + timedelta(days=5)).isoformat(), "seats": 3})
    view = await listings.create_listing(node.ctx, alice, data)
    context = await browser.new_context(viewport=PHONE, locale="en-GB")
    page = await context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await _login(page, node, "alice")
    # A POST without the CSRF field, with the member's session cookie, is refused.
    response = await page.request.post(f"{node.url}/post", form={
        "category": "ride", "kind": "offer", "title": "Sans jeton", "details.from": "A",
        "details.to": "B", "details.departure": _departure(), "details.seats": "1",
    })
    assert response.status == 403
    assert await listings.search_listings(node.ctx, _filters("Sans jeton")) is not None
    assert (await listings.search_listings(node.ctx, _filters("Sans jeton"))).items == []
    # The title with a script tag is displayed literally and never runs.
    await page.goto(f"{node.url}/listings/{view.row.id}")
    assert await page.locator("h1").inner_text() == evil
    await page.goto(f"{node.url}/")
    assert evil in await page.locator(".card h3").first.inner_text()
    await page.screenshot(path=SCREENSHOTS / "escaped_title.png", full_page=True)
    assert dialogs == []
    await context.close()


def _filters(text: str):  # type: ignore[no-untyped-def]
    from meshnode.store.listings import SearchFilters

    return SearchFilters(text=text)
