"""Paying an amount stated in the PAYEE's currency (``amount_in: "payee"``), real nodes.

The payee receives exactly the stated amount; each upstream amount is the downstream one
converted back at the line's rate, rounded half-even to the upstream currency's decimals.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from meshnode.config import CurrencyConfig
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.services import iou as svc
from meshnode.services import members
from tests.federation.conftest import Node, NodeFactory, settle
from tests.federation.iou_helpers import balance, check_invariants, handle, open_line

HOURS = CurrencyConfig(name="Hour", symbol="h", decimals=0, default_min_balance="-30",
                       default_max_balance="100")


async def _token(node: Node, username: str) -> dict[str, str]:
    await members.add_member(node.ctx, username=username, password=None)
    token = await members.create_token(node.ctx, username)
    return {"Authorization": f"Bearer {token.secret}"}


async def _post(node: Node, headers: dict[str, str], body: dict[str, Any]
                ) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(
            f"{node.url}/api/v1/transfers", headers=headers, json=body) as response:
        return response.status, await response.json()


async def _nothing_moved(*nodes: Node) -> None:
    for node in nodes:
        assert await node.count("SELECT count(*) FROM iou_transfers") == 0
        assert await node.count("SELECT count(*) FROM ledger_holds") == 0
        assert await node.count("SELECT count(*) FROM ledger_journal") == 0


async def test_payee_amount__direct_payee_receives_exactly_the_stated_amount(
    make_node: NodeFactory,
) -> None:
    # Given a line where 1 alpha grain = 3 beta grains
    a, b = await make_node("alpha"), await make_node("beta")
    headers = await _token(a, "alice")
    await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="3")
    # When alice pays bob 10.00 stated in beta's currency
    status, body = await _post(a, headers, {"payee": handle(b, "bob"), "amount": "10.00",
                                            "amount_in": "payee"})
    assert status == 202, body
    assert body["amount_in"] == "payee"
    assert body["payee_amount"] == "10.00"
    # Then alice's debit is 10.00 / 3 = 3.3333 rounded half-even to 3.33
    assert body["amount"] == "3.33"
    await settle(a, b)
    assert (await svc.get_transfer(a.ctx, None, body["id"])).state == "committed"
    assert await balance(b, "bob") == 1000
    assert await balance(a, "alice") == -333
    await check_invariants(a, b)


async def test_payee_amount__ties_round_half_even_on_the_payers_side(
    make_node: NodeFactory,
) -> None:
    # Given 1 alpha = 2 beta: 0.05 beta is 0.025 alpha, 0.07 beta is 0.035 alpha (exact ties)
    a, b = await make_node("alpha"), await make_node("beta")
    headers = await _token(a, "alice")
    await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="2")
    _, low = await _post(a, headers, {"payee": handle(b, "bob"), "amount": "0.05",
                                      "amount_in": "payee"})
    _, high = await _post(a, headers, {"payee": handle(b, "bob"), "amount": "0.07",
                                       "amount_in": "payee"})
    # Then ties go to the even cent: 0.02 and 0.04, and bob still gets exactly 0.12
    assert (low["amount"], high["amount"]) == ("0.02", "0.04")
    await settle(a, b)
    assert await balance(a, "alice") == -6
    assert await balance(b, "bob") == 12
    await check_invariants(a, b)


async def test_payee_amount__two_hops_compose_the_rates_hop_by_hop(
    make_node: NodeFactory,
) -> None:
    # Given alpha—gamma at 1 alpha = 2 gamma and gamma—beta at 1 gamma = 3 beta
    a, b, c = await make_node("alpha"), await make_node("beta"), await make_node("gamma")
    alice, _ = await a.member("alice"), await b.member("bob")
    await open_line(a, c, b, limit_out="30", limit_in="30", rate="2")
    await open_line(c, b, a, limit_out="30", limit_in="30", rate="3")
    # When alice pays bob exactly 10.00 beta
    status = await svc.pay_remote_payee_amount(a.ctx, alice, handle(b, "bob"), "10.00", "",
                                               network=a.app[IOU_NETWORK])
    # Then gamma's amount is 10.00/3 = 3.33 and alice's 3.33/2 = 1.665 -> 1.66 (half-even)
    assert status.route == (a.group, c.group, b.group)
    assert (status.amount, status.payee_amount) == (166, 1000)
    await settle(a, b, c)
    for node in (a, b, c):
        assert (await svc.get_transfer(node.ctx, None, status.id)).state == "committed"
    assert await balance(b, "bob") == 1000
    assert await balance(a, "alice") == -166
    assert await balance(c, f"node:{b.url.split('//')[1]}") == 333
    assert await balance(c, f"node:{a.url.split('//')[1]}") == -333
    await check_invariants(a, b, c)


async def test_payee_amount__a_currency_without_decimals_on_the_payees_side(
    make_node: NodeFactory,
) -> None:
    # Given beta counts whole hours and 1 alpha grain = 0.4 hour
    a, b = await make_node("alpha"), await make_node("beta", currency=HOURS)
    headers = await _token(a, "alice")
    await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="0.4")
    # When alice pays bob 3 hours: 3 / 0.4 = 7.50 grains
    status, body = await _post(a, headers, {"payee": handle(b, "bob"), "amount": "3",
                                            "amount_in": "payee"})
    assert status == 202, body
    assert (body["amount"], body["payee_amount"]) == ("7.50", "3")
    await settle(a, b)
    assert await balance(b, "bob") == 3
    assert await balance(a, "alice") == -750
    await check_invariants(a, b)


async def test_payee_amount__bad_inputs_are_422_and_nothing_moves(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta", currency=HOURS)
    headers = await _token(a, "alice")
    await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="0.4")
    payee = handle(b, "bob")
    cases: list[dict[str, Any]] = [
        {"payee": payee, "amount": "3", "amount_in": "bank"},  # unknown currency side
        {"payee": payee, "amount": "3", "amount_in": None},
        {"payee": payee, "amount": "-3", "amount_in": "payee"},  # negative
        {"payee": payee, "amount": "0", "amount_in": "payee"},
        {"payee": payee, "amount": "1.5", "amount_in": "payee"},  # hours have no decimals
        {"payee": payee, "amount": 3, "amount_in": "payee"},  # not a string
        {"payee": "bob", "amount": "3", "amount_in": "bank"},  # local payee, same rule
    ]
    for body in cases:
        status, answer = await _post(a, headers, body)
        assert status == 422, (body, answer)
    # over the line's room, stated in hours: 409, still nothing prepared
    status, answer = await _post(a, headers, {"payee": payee, "amount": "25",
                                              "amount_in": "payee"})
    assert status == 409, answer
    await settle(a, b)
    await _nothing_moved(a, b)
    assert await balance(a, "alice") == 0


async def test_wallet_page__pays_an_amount_stated_in_the_payees_currency(
    make_node: NodeFactory,
) -> None:
    from tests.federation.browser import browser, page, person, submit
    a, b = await make_node("alpha"), await make_node("beta", currency=HOURS)
    await person(a, "alice")
    await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="0.4")
    async with browser(a, "alice") as session:
        form = await page(session, "/wallet/pay")
        assert '<option value="payee">' in form
        # A bad currency side is refused next to the field, nothing stored
        status, _, text = await submit(session, "/wallet/pay", {
            "payee": handle(b, "bob"), "amount": "3", "memo": "", "listing": "",
            "amount_in": "bank"}, "/wallet/pay")
        assert status == 422
        assert 'id="err-amount_in"' in text
        # Hours have no decimals: 1.5 is refused for the payee's currency
        status, _, text = await submit(session, "/wallet/pay", {
            "payee": handle(b, "bob"), "amount": "1,5", "memo": "", "listing": "",
            "amount_in": "payee"}, "/wallet/pay")
        assert status == 422
        assert "more than 0 decimal places" in text
        assert await a.count("SELECT count(*) FROM iou_transfers") == 0
        # When alice pays bob 3 hours from the form
        status, location, _ = await submit(session, "/wallet/pay", {
            "payee": handle(b, "bob"), "amount": "3", "memo": "", "listing": "",
            "amount_in": "payee"}, "/wallet/pay")
        assert status == 303, location
        await settle(a, b)
        done = await page(session, location)
        assert "They receive (their currency)" in done
        assert "7.50\u00a0G" in done
    assert await balance(b, "bob") == 3
    assert await balance(a, "alice") == -750
