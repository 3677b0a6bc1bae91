"""Helpers for the HTML pages: a browser-like client that fetches CSRF tokens and logs in."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import invitations, listings
from meshnode.services.context import NodeContext
from meshnode.store.members import MemberRow
from tests import conftest as base
from tests.conftest import PASSWORD, ride_listing

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
HTML = {"Accept": "text/html,application/xhtml+xml", "Accept-Language": "en"}


async def csrf_of(client: TestClient, path: str) -> str:
    """The CSRF token a page's forms carry."""
    response = await client.get(path, headers=HTML)
    text = await response.text()
    match = CSRF_RE.search(text)
    assert match, f"no CSRF field on {path} ({response.status})"
    return match.group(1)


async def post_form(
    client: TestClient, path: str, data: dict[str, str], *, token_from: str | None = None
) -> object:
    """POST a form with a valid CSRF token taken from ``token_from`` (default: the home page)."""
    token = await csrf_of(client, token_from or "/login")
    return await client.post(path, data={**data, "csrf": token}, headers=HTML,
                             allow_redirects=False)


async def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form (the session cookie lands in the client's jar)."""
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login", data={"username": username, "password": password, "csrf": token, "next": "/"},
        headers=HTML, allow_redirects=False,
    )
    assert response.status == 303, await response.text()


Login = Callable[[TestClient, str], Awaitable[None]]


@pytest.fixture
def signed_in() -> Callable[..., Awaitable[None]]:
    return login


async def make_ride(
    ctx: NodeContext, author: base.TestMember | MemberRow, **overrides: object
) -> str:
    """Publish a ride listing through the service layer; returns its id."""
    row = author.row if isinstance(author, base.TestMember) else author
    view = await listings.create_listing(ctx, row, ride_listing(**overrides))
    return view.row.id


async def invitation_link(ctx: NodeContext, admin: base.TestMember, days: int = 7) -> str:
    """A fresh invitation path ``/join/<secret>``."""
    created = await invitations.create_invitation(ctx, admin.row, days=days)
    return f"/join/{created.secret}"
