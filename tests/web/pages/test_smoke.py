"""Every page renders for the people allowed to see it."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services.context import NodeContext
from tests import conftest as base
from tests.web.pages.conftest import HTML, login, make_ride


@pytest.mark.parametrize("path", ["/", "/search", "/search?q=velo", "/login"])
async def test_public_pages__render(client: TestClient, path: str) -> None:
    response = await client.get(path, headers=HTML)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/html"


async def test_member_pages__render(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "alice")
    for path in ["/", "/search?category=ride", f"/listings/{listing_id}",
                 f"/listings/{listing_id}/edit", "/post", "/post?category=ride",
                 "/post?category=group-buy", "/my/listings", "/messages", "/users/alice",
                 "/settings", "/admin/members", "/admin/invitations", "/admin/settings",
                 "/admin/reports"]:
        response = await client.get(path, headers=HTML)
        assert response.status == 200, (path, await response.text())
