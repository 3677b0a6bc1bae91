"""Every page route on a phone in French (360×740): no page is wider than the screen.

Two real nodes with data in every page (members, listings of each kind, deals, messages,
payments, a peer, a dead peer, a trust line, a cross-node transfer, notifications). Each
GET route the router knows is visited (or excluded below with a reason), the document's
``scrollWidth`` is checked against the viewport and a screenshot lands in
``test-output/screenshots/layout_*.png`` for review.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from meshnode.federation import peering
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.protocol.discovery import Advert
from meshnode.services import (
    deals,
    invitations,
    ledger,
    listings,
    members,
    messages,
    neighbours,
)
from meshnode.services.iou import transfers
from meshnode.services.neighbours import SeenAdvert
from tests.conftest import PASSWORD, ride_listing
from tests.federation.conftest import Node, NodeFactory, bind_socket, peer, settle
from tests.federation.iou_helpers import handle, open_line
from tests.web.browser.conftest import SCREENSHOTS, browser  # noqa: F401 - the fixture

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
PHONE = {"width": 360, "height": 740}
ONE_LINE_PX = 40  # one line of the navigation (its text and badges), not two

# GET routes that are not pages a person reads, each with its reason.
EXCLUDED: dict[str, str] = {
    "/media/{listing_id}/{filename}": "an uploaded image file, not a page",
    "/healthz": "a plain-text health probe for monitoring",
    "/feed.atom": "an Atom feed read by feed readers",
    "/nodeinfo/2.1": "NodeInfo JSON for crawlers",
    "/iou/info": "JSON for the cross-node IOU protocol",
    "/listings/{listing_id}/note": "the ActivityPub Note of a listing (JSON only)",
    "/users/{name}/outbox": "an ActivityPub collection (JSON)",
    "/users/{name}/followers": "an ActivityPub collection (JSON)",
    "/users/{name}/following": "an ActivityPub collection (JSON)",
    "/groups/{handle}/outbox": "an ActivityPub collection (JSON)",
    "/groups/{handle}/followers": "an ActivityPub collection (JSON)",
    "/groups/{handle}/following": "an ActivityPub collection (JSON)",
    "/lang/{code}": "the footer's language switch: sets a cookie and redirects, no page",
    "/settings/export": "a member's data archive (a zip download)",
    "/admin/members/{username}/export": "a member's data archive (a zip download)",
    "/calendar/{token}.ics": "a member's private iCalendar feed, read by calendar applications",
    "/deals/{deal_id}.ics": "one deal as an iCalendar file to download",
    "/blocklist": "the signed block-list collection (JSON)",
}
EXCLUDED_PREFIXES = ("/api/", "/.well-known/", "/static")


def page_routes(app: web.Application) -> set[str]:
    """Every GET path the router knows that serves a page (not API, files or ActivityPub)."""
    paths: set[str] = set()
    for route in app.router.routes():
        if route.method != "GET":
            continue
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith(EXCLUDED_PREFIXES) or path in EXCLUDED:
            continue
        paths.add(path)
    return paths


def _meal() -> dict[str, Any]:
    return ride_listing(category="meal", title="Lasagnes maison pour quatre personnes",
                        price={"mode": "free"},
                        details={"portions": 4, "pickup_time": "2026-12-05T19:00:00Z",
                                 "auto_accept": True})


def _loan() -> dict[str, Any]:
    return ride_listing(category="lend", title="Perceuse à percussion",
                        price={"mode": "amount", "amount": "2.00", "period": "day"},
                        details={"deposit": "30.00"})


def _group_buy() -> dict[str, Any]:
    return ride_listing(category="group-buy", title="Commande groupée de pommes",
                        price={"mode": "amount", "amount": "1.50"},
                        details={"target_quantity": "100", "threshold": "40", "unit": "kg",
                                 "deadline": "2026-12-20T18:00:00Z"})


async def _dead_peer(a: Node) -> None:
    """A peer whose server is gone: deliveries to it fail with connection errors."""
    probe = bind_socket()
    port = probe.getsockname()[1]
    probe.close()
    await peering.add_peer(a.ctx, f"http://127.0.0.1:{port}")


async def _neighbours(a: Node, b: Node) -> None:
    """Two neighbours as mDNS would record them (127.0.0.1 only), one verified as beta."""
    for key, name, port in ((bytes(range(32)), "Les Jardins partagés du Canal", b.config.port),
                            (bytes(range(1, 33)), "Association des Voisins", 9)):
        seen = SeenAdvert(f"{name} (AAAA-BBBB)._meshnode._tcp.local.",
                          Advert(key, "/groups/beta", name), ("127.0.0.1",), port)
        row = await neighbours.record_advert(a.ctx, seen, max_neighbours=10)
        assert row is not None
    await neighbours.record_verified(a.ctx, row.id - 1, b.group)


async def _populate(a: Node, b: Node) -> dict[str, str]:
    """Data in every page of alpha; returns the values for the routes' parameters."""
    await peer(a, b)
    root = await members.add_member(a.ctx, username="root", password=PASSWORD, is_admin=True,
                                    display_name="Dominique Administratrice")
    camille = await members.add_member(a.ctx, username="camille", password=PASSWORD,
                                       display_name="Camille Étienne-Delacroix")
    lea = await members.add_member(b.ctx, username="lea", password=PASSWORD, display_name="Léa")
    ride = await listings.create_listing(a.ctx, root, ride_listing(
        details={**ride_listing()["details"], "auto_accept": True}))  # type: ignore[dict-item]
    meal = await listings.create_listing(a.ctx, camille, _meal())
    await listings.create_listing(a.ctx, camille, _loan())
    await listings.create_listing(a.ctx, root, _group_buy())
    await listings.create_listing(a.ctx, camille, ride_listing(
        kind="request", title="Cherche une place vers Grenoble", price={"mode": "free"}))
    deal = await deals.book(a.ctx, camille, ride.row.id, {"quantity": 1})
    await deals.book(a.ctx, root, meal.row.id, {"quantity": 2})
    await messages.send_message(a.ctx, camille, listing_id=ride.row.id,
                                recipient_username="root",
                                body="Bonjour ! Reste-t-il une place pour samedi ?")
    entry = await ledger.pay(a.ctx, camille, payee="root", amount="3.50", memo="Confiture")
    await ledger.request_payment(a.ctx, root, payer="camille", amount="1.25", memo="Pain")
    invitation = await invitations.create_invitation(a.ctx, root, note="Voisine du 3e")
    await open_line(a, b)
    transfer = await transfers.pay_remote(a.ctx, root, handle(b, lea.username), 150,
                                          "Paniers", network=a.app[IOU_NETWORK])
    await settle(a, b)
    await _dead_peer(a)
    await settle(a, b)
    await _neighbours(a, b)
    return {"listing_id": ride.row.id, "username": "camille", "deal_id": deal.id,
            "tx_id": entry.fields.id, "transfer_id": transfer.id, "secret": invitation.secret,
            "handle": handle(b, lea.username), "token": "jeton-inconnu",
            "group": a.config.handle}


def _url(path: str, values: dict[str, str]) -> str:
    """The route's path with its ``{parameters}`` filled from ``values``."""
    filled = path.replace("/groups/{handle}", "/groups/" + values["group"])
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], filled)


async def _log_in(page: Any, node: Node, username: str) -> None:
    await page.goto(f"{node.url}/login")
    await page.get_by_label("Nom d’utilisateur").fill(username)
    await page.get_by_label("Mot de passe").fill(PASSWORD)
    await page.get_by_role("button", name="Se connecter").click()
    await page.wait_for_url(f"{node.url}/")


async def _screenshot(page: Any, name: str) -> None:
    """A full-page screenshot (an artefact to look at; the test asserts the layout). Chromium
    under load sometimes answers "Unable to capture screenshot" once: one retry, then it fails."""
    from playwright.async_api import Error as PlaywrightError
    try:
        await page.screenshot(path=SCREENSHOTS / name, full_page=True)
    except PlaywrightError:
        await page.wait_for_timeout(500)
        await page.screenshot(path=SCREENSHOTS / name, full_page=True)


def _shot_name(who: str, path: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "home"
    return f"layout_{who}_{slug}.png"


async def test_every_page_route_is_visited_or_excluded_with_a_reason(
    make_node: NodeFactory,
) -> None:
    # Given a node's router
    a = await make_node("alpha")
    routes = page_routes(a.app)
    # Then the visit list below names every page route, and no stale one
    assert routes == set(VISITED), (
        "new page routes must be added to VISITED (or EXCLUDED with a reason): "
        f"missing {sorted(routes - set(VISITED))}, stale {sorted(set(VISITED) - routes)}")


# Each page route: who visits it ("root" is an admin, "camille" a member, "" nobody).
VISITED: dict[str, str] = {
    "/": "camille", "/search": "", "/post": "camille", "/login": "",
    "/listings/{listing_id}": "camille", "/listings/{listing_id}/edit": "root",
    "/my/listings": "root", "/my/alerts": "root", "/my/deals": "camille",
    "/deals/{deal_id}": "camille",
    "/messages": "root", "/messages/{listing_id}/{username}": "root",
    "/messages/with/{handle}": "root", "/notifications": "root", "/settings": "camille",
    "/settings/delete": "camille",
    "/users/{username}": "", "/users/{username}/receipts": "camille",
    "/groups/{handle}": "", "/join/{secret}": "",
    "/email/verify/{token}": "", "/wallet": "camille", "/wallet/pay": "camille",
    "/wallet/request": "camille", "/wallet/transactions/{tx_id}": "camille",
    "/wallet/transfers/{transfer_id}": "root",
    "/admin": "root", "/admin/members": "root", "/admin/invitations": "root",
    "/admin/settings": "root", "/admin/reports": "root", "/admin/peers": "root",
    "/admin/neighbours": "root", "/admin/trustlines": "root", "/admin/ledger": "root",
    "/admin/ledger/transaction": "root",
    "/admin/network": "root", "/network": "",
}


async def test_phone_fr__every_page_route_fits_360_px_with_data_in_it(  # type: ignore[no-untyped-def]
    make_node: NodeFactory, browser,  # noqa: F811
) -> None:
    # Given two peered communities with data in every page, and a dead peer
    a, b = await make_node("alpha"), await make_node("beta")
    values = await _populate(a, b)
    assert page_routes(a.app) == set(VISITED)
    sessions: dict[str, Any] = {}
    for who in sorted(set(VISITED.values())):
        context = await browser.new_context(viewport=PHONE, locale="fr-FR")
        page = await context.new_page()
        if who:
            await _log_in(page, a, who)
        sessions[who] = page
    too_wide: list[str] = []
    raw: list[str] = []
    # When each page is opened on a 360 px phone in French
    for path, who in sorted(VISITED.items()):
        page = sessions[who]
        suffix = "?id=" + values["tx_id"] if path == "/admin/ledger/transaction" else ""
        await page.goto(f"{a.url}{_url(path, values)}{suffix}")
        width = await page.evaluate("document.documentElement.scrollWidth")
        await _screenshot(page, _shot_name(who or "anon", path))
        # Then no page is wider than the screen, and the navigation is one line
        if width > PHONE["width"]:
            too_wide.append(f"{path} ({who or 'anonymous'}): {width} px")
        nav = await page.evaluate(
            "document.querySelector('nav .primary').getBoundingClientRect().height")
        if nav > ONE_LINE_PX:
            too_wide.append(f"{path} ({who or 'anonymous'}): navigation {nav} px tall")
        html = await page.content()
        if "Traceback" in html or "ClientConnectorError" in html:
            raw.append(path)
    for page in sessions.values():
        await page.context.close()
    assert not too_wide, too_wide
    # And no raw exception reaches a page (they are in the log only)
    assert not raw, raw
    assert urlsplit(a.url).hostname == "127.0.0.1"


async def test_phone_fr__the_menu_opens_without_javascript(  # type: ignore[no-untyped-def]
    make_node: NodeFactory, browser,  # noqa: F811
) -> None:
    # Given a member on a phone whose browser runs no JavaScript
    a = await make_node("alpha")
    await members.add_member(a.ctx, username="camille", password=PASSWORD)
    context = await browser.new_context(viewport=PHONE, locale="fr-FR",
                                        java_script_enabled=False)
    page = await context.new_page()
    await _log_in(page, a, "camille")
    # Then the menu's links are hidden until its summary is pressed, then reachable
    wallet = page.get_by_role("link", name="Compte")
    assert not await wallet.is_visible()
    await page.locator("nav summary").click()
    await page.screenshot(path=SCREENSHOTS / "layout_menu_open_no_js.png", full_page=True)
    await wallet.click()
    await page.wait_for_url(f"{a.url}/wallet")
    await context.close()
