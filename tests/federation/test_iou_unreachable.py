"""A neighbour that is down is "unreachable now, retry", not "no trust line leads there".

Given communities joined by trust lines, each node served on a real 127.0.0.1 port, When the
node on the way to the payee is stopped, Then a cross-community payment is refused with 503,
``Retry-After`` and ``community_unreachable`` (nothing prepared, no balance moved); when the
route really does not exist, the answer stays 409 "no trust line leads to the payee's
community".
"""

from __future__ import annotations

from typing import Any

import aiohttp

from meshnode.services import members
from tests.conftest import PASSWORD
from tests.federation.conftest import Node, NodeFactory
from tests.federation.iou_helpers import handle, open_line
from tests.web.pages.conftest import CSRF_RE, HTML

FR = {**HTML, "Accept-Language": "fr-FR,fr;q=0.9"}


async def _token(node: Node, username: str) -> dict[str, str]:
    await members.add_member(node.ctx, username=username, password=None)
    token = await members.create_token(node.ctx, username)
    return {"Authorization": f"Bearer {token.secret}"}


async def _pay(node: Node, headers: dict[str, str], payee: str,
               extra: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    async with aiohttp.ClientSession() as session, session.post(
        f"{node.url}/api/v1/transfers", headers={**headers, **(extra or {})},
        json={"payee": payee, "amount": "5.00"},
    ) as response:
        return response.status, await response.json(), response.headers.get("Retry-After", "")


async def _prepared(node: Node) -> int:
    return await node.count("SELECT count(*) FROM iou_transfers")


async def test_iou__payment_through_a_stopped_neighbour_is_503_retry_later_not_409(
    make_node: NodeFactory,
) -> None:
    # Given alpha - beta - gamma, with lines alpha-beta and beta-gamma
    a, b, c = [await make_node(name) for name in ("alpha", "beta", "gamma")]
    await open_line(a, b, c)
    await open_line(b, c, a)
    headers = await _token(a, "alice")
    await c.member("carol")
    # When beta, the only way to gamma, is stopped
    await b.stop()
    status, body, retry_after = await _pay(a, headers, handle(c, "carol"))
    # Then the payer is told the community is unreachable now and can retry
    assert status == 503, body
    assert body["error"] == "community_unreachable"
    assert "retried" in body["message"]
    assert "no trust line" not in body["message"]
    assert int(retry_after) > 0
    assert await _prepared(a) == 0


async def test_iou__payee_node_itself_stopped_is_503_not_cannot_resolve(
    make_node: NodeFactory,
) -> None:
    # Given alpha - beta with an active line, and beta stopped
    a, b = await make_node("alpha"), await make_node("beta")
    await open_line(a, b)
    headers = await _token(a, "alice")
    await b.member("bob")
    await b.stop()
    # When alice pays bob@beta, Then 503 with Retry-After, nothing prepared
    status, body, retry_after = await _pay(a, headers, handle(b, "bob"))
    assert (status, body["error"]) == (503, "community_unreachable"), body
    assert int(retry_after) > 0
    assert await _prepared(a) == 0


async def test_iou__no_line_to_the_payee_stays_409_no_trust_line(
    make_node: NodeFactory,
) -> None:
    # Given alpha - beta, and gamma running but linked to nobody
    a, b, c = [await make_node(name) for name in ("alpha", "beta", "gamma")]
    await open_line(a, b)
    headers = await _token(a, "alice")
    await c.member("carol")
    # When alice pays carol@gamma (every node answers), Then the refusal is the honest 409
    status, body, _ = await _pay(a, headers, handle(c, "carol"))
    assert status == 409, body
    assert body["message"] == "no trust line leads to the payee's community"
    assert await _prepared(a) == 0


async def test_pay_form__stopped_neighbour_says_retry_later_in_french(
    make_node: NodeFactory,
) -> None:
    # Given alpha - beta, a member of alpha signed in from a French browser, beta stopped
    a, b = await make_node("alpha"), await make_node("beta")
    await open_line(a, b)
    await members.add_member(a.ctx, username="alice", password=PASSWORD)
    await b.member("bob")
    await b.stop()
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, headers=FR) as browser:
        token = await _csrf(browser, f"{a.url}/login")
        async with browser.post(f"{a.url}/login", data={
                "username": "alice", "password": PASSWORD, "csrf": token, "next": "/"},
                allow_redirects=False) as signed_in:
            assert signed_in.status == 303
        # When she pays bob@beta through the pay form
        token = await _csrf(browser, f"{a.url}/wallet/pay")
        async with browser.post(f"{a.url}/wallet/pay", data={
                "payee": handle(b, "bob"), "amount": "5", "memo": "", "listing": "",
                "csrf": token}, allow_redirects=False) as page:
            status, text = page.status, await page.text()
            retry_after = page.headers.get("Retry-After", "")
    # Then the form comes back in French: unreachable now, retry later; nothing prepared
    assert status == 503
    assert int(retry_after) > 0
    assert "est injoignable pour le moment" in text
    assert "peut être refait" in text
    assert await _prepared(a) == 0


async def _csrf(browser: aiohttp.ClientSession, url: str) -> str:
    async with browser.get(url) as response:
        found = CSRF_RE.search(await response.text())
    assert found is not None, url
    return found.group(1)
