"""``/login?next=…`` through the real page: only same-origin paths survive (issue 12)."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from meshnode.web.appkeys import CONTEXT, LOGIN_THROTTLE
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of

NEXT_FIELD = re.compile(r'name="next" value="([^"]*)"')

# As a browser or a script would send them in the form body (urlencoded by the client).
HOSTILE_NEXT = [
    "/\t/evil.example/phish",
    "/\n/evil.example/",
    "/\r\n/evil.example/",
    "//evil.example/",
    "\\\\evil.example/",
    "/\\evil.example/",
    "/%09/evil.example/",
    "/%2F/evil.example/",
    "/%5C/evil.example/",
    "https://evil.example/",
    " //evil.example/",
]


async def _log_in(client: TestClient, next_value: str) -> str:
    token = await csrf_of(client, "/login")
    response = await client.post("/login", data={
        "username": "alice", "password": base.PASSWORD, "csrf": token, "next": next_value,
    }, headers=HTML, allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"]


async def test_login_next__issue_12_tab_url_ends_on_the_home_page(
    client: TestClient, alice: base.TestMember
) -> None:
    # Given the link from the issue, sent byte for byte
    page = await client.get(URL("/login?next=%2F%09%2Fevil.example%2Fphish", encoded=True),
                            headers=HTML)
    found = NEXT_FIELD.search(await page.text())
    # Then the form carries "/" onward, and posting the raw value lands on "/" too
    assert found is not None
    assert found.group(1) == "/"
    assert await _log_in(client, "/\t/evil.example/phish") == "/"


@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
async def test_login_next__any_other_host_becomes_home(
    client: TestClient, alice: base.TestMember, next_value: str
) -> None:
    assert await _log_in(client, next_value) == "/"


async def test_login_next__visitor_sent_to_login_comes_back_to_the_page(
    client: TestClient, alice: base.TestMember
) -> None:
    bounced = await client.get("/settings?tab=password", headers=HTML, allow_redirects=False)
    assert bounced.status == 303
    login_page = await client.get(bounced.headers["Location"], headers=HTML)
    found = NEXT_FIELD.search(await login_page.text())
    assert found is not None
    assert found.group(1) == "/settings?tab=password"
    assert await _log_in(client, found.group(1)) == "/settings?tab=password"


async def test_login__account_slowdown_is_a_translated_429_with_retry_after(
    client: TestClient, alice: base.TestMember
) -> None:
    # Given 10 failures on alice from other addresses (one each: no pair is locked)
    throttle = client.app[LOGIN_THROTTLE]
    now = client.app[CONTEXT].clock()
    for host in range(10):
        throttle.record_failure("alice", f"192.0.2.{host}", now)
    # When alice logs in from here right away, in French
    token = await csrf_of(client, "/login")
    response = await client.post("/login", data={
        "username": "alice", "password": base.PASSWORD, "csrf": token, "next": "/",
    }, headers={**HTML, "Accept-Language": "fr"}, allow_redirects=False)
    # Then she is asked to wait a second, in French, with no session opened
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    assert "Veuillez patienter 1 seconde" in await response.text()
    assert "mn_session" not in response.cookies
