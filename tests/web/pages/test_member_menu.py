"""A signed-in member's menu is kept as a fragment (issue 17) and still shows every change:
the unread counts, the member's own name and session token, never another member's."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import ledger
from meshnode.services.context import NodeContext
from meshnode.web.appkeys import FRAGMENTS
from tests import conftest as base
from tests.web.pages.conftest import CSRF_RE, HTML, login


def _menu(page: str) -> str:
    return page.split('<ul class="primary">')[1].split("</ul>\n  </nav>")[0]


async def test_member_menu__kept_until_its_count_changes(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given bob's search page read twice
    await login(client, "bob")
    first = await (await client.get("/search", headers=HTML)).text()
    rendered = client.app[FRAGMENTS].renders
    second = await (await client.get("/search", headers=HTML)).text()
    # Then the second page reused his menu (no fragment rendered) and shows the same menu
    assert client.app[FRAGMENTS].renders == rendered
    assert _menu(second) == _menu(first)
    assert 'class="badge"' not in _menu(first)
    # When alice pays him (a notification for bob)
    await ledger.pay(ctx, alice.row, payee="bob", amount="3.00", memo="tarte")
    after = await (await client.get("/search", headers=HTML)).text()
    # Then his next page draws his menu again, with the unread notification
    assert client.app[FRAGMENTS].renders == rendered + 1
    assert "1 unread notification" in _menu(after)


async def test_member_menu__each_member_sees_their_own_name_and_token(
    client: TestClient, alice: base.TestMember, bob: base.TestMember,
) -> None:
    # Given bob's page, then alice's in the same language
    await login(client, "bob")
    bobs = await (await client.get("/search", headers=HTML)).text()
    await login(client, "alice")
    alices = await (await client.get("/search", headers=HTML)).text()
    # Then alice's menu links her own profile and carries her own session's token
    assert 'href="/users/alice"' in _menu(alices)
    assert "/users/bob" not in _menu(alices)
    bob_token = CSRF_RE.search(_menu(bobs))
    alice_token = CSRF_RE.search(_menu(alices))
    assert bob_token
    assert alice_token
    assert alice_token.group(1) != bob_token.group(1)
    assert 'href="/users/bob"' in _menu(bobs)


async def test_member_menu__a_visitor_sees_the_login_link_and_no_menu(
    client: TestClient,
) -> None:
    page = await (await client.get("/search", headers=HTML)).text()
    assert 'href="/login"' in _menu(page)
    assert "/logout" not in page
