"""A full disk, seen from a browser and from the admin pages (real tmpfs, see tests/diskfull.py).

Given a node whose database lives on a small tmpfs, When the disk is filled, Then a browser's
write gets a translated page saying the node is out of space (507, ``Retry-After``), the JSON
API gets 507 JSON, the admin pages show a banner, and once space returns the next write
succeeds and the banner goes away by itself.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from meshnode.config import Config
from tests import conftest as base
from tests.conftest import PASSWORD, make_config, ride_listing
from tests.diskfull import fill, small_disk
from tests.web.pages.conftest import CSRF_RE, HTML, login

__all__ = ["small_disk"]  # the fixture, imported for pytest
FR = {**HTML, "Accept-Language": "fr-FR,fr;q=0.9"}
BANNER = 'id="storage-full"'


@pytest.fixture
def node_config(small_disk: Path) -> Config:
    return make_config(small_disk / "node")


async def _admin_page(client: TestClient) -> str:
    response = await client.get("/admin/members", headers=HTML)
    assert response.status == 200
    return await response.text()


async def _french_login(client: TestClient, username: str) -> tuple[int, str, str]:
    """Sign in from a second, French browser (its own cookies): status, Retry-After, page."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(client.make_url("/login"), headers=FR) as form:
            token = CSRF_RE.search(await form.text())
        assert token is not None
        async with browser.post(client.make_url("/login"), headers=FR, allow_redirects=False,
                                data={"username": username, "password": PASSWORD,
                                      "csrf": token.group(1), "next": "/"}) as page:
            return page.status, page.headers.get("Retry-After", ""), await page.text()


async def test_disk_full__browser_gets_french_page_admin_sees_banner_until_space_returns(
    client: TestClient, alice: base.TestMember, bob: base.TestMember, small_disk: Path
) -> None:
    # Given an admin signed in while there is space
    await login(client, "alice")
    assert BANNER not in await _admin_page(client)
    # When the disk fills up
    filler = fill(small_disk)
    api = await client.post("/api/v1/listings", json=ride_listing(), headers=bob.headers)
    # Then the API answers 507 JSON with Retry-After
    assert api.status == 507
    assert (await api.json())["error"] == "insufficient_storage"
    assert int(api.headers["Retry-After"]) > 0
    # And a French browser signing in (a session row to write) gets a French page
    status, retry_after, text = await _french_login(client, "bob")
    assert status == 507
    assert int(retry_after) > 0
    assert "Le nœud n’a plus d’espace disque" in text
    assert "Server got itself in trouble" not in text
    # And the admin pages say so (read-only pages still work on a full disk)
    assert BANNER in await _admin_page(client)
    # When space returns, Then the next write succeeds and the banner is gone
    filler.unlink()
    again = await client.post("/api/v1/listings", json=ride_listing(), headers=bob.headers)
    assert again.status == 201
    assert BANNER not in await _admin_page(client)
