"""The wallet's pay form with a ``name@host`` payee on one node (no line, bad handles)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import iou
from meshnode.services.context import NodeContext
from meshnode.store import ledger as ledger_q
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login


async def _pay(client: TestClient, payee: str, amount: str = "5",
               headers: dict[str, str] = HTML) -> tuple[int, str]:
    token = await csrf_of(client, "/wallet/pay")
    response = await client.post("/wallet/pay", data={
        "payee": payee, "amount": amount, "memo": "", "listing": "", "csrf": token},
        headers=headers, allow_redirects=False)
    return response.status, await response.text()


@pytest.mark.parametrize(("payee", "status", "reason"), [
    ("bob@", 422, "payee"),
    ("bob@bad host", 422, "payee"),
    ("bob@:99", 422, "payee"),
    ("carol@127.0.0.1:8080", 422, "pay them by username"),  # our own host
    ("bob@other.example", 409, "no active trust line"),
])
async def test_pay_remote__refused_next_to_the_payee_and_nothing_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    payee: str, status: int, reason: str,
) -> None:
    await login(client, "bob")
    answer, text = await _pay(client, payee)
    assert answer == status
    assert reason in text
    assert 'id="err-payee"' in text
    assert f'value="{payee}"' in text
    assert await iou.list_transfers(ctx, alice.row) == []
    account = await ledger_q.get_account(ctx.store.reader, "bob")
    assert account is not None
    assert account.balance == 0


async def test_pay_form__says_other_communities_can_be_paid_in_french(
    client: TestClient, bob: base.TestMember
) -> None:
    await login(client, "bob")
    text = await (await client.get("/wallet/pay", headers={
        "Accept": "text/html", "Accept-Language": "fr"})).text()
    assert "nom@hôte pour une autre communauté" in text
    assert 'maxlength="300"' in text


async def test_transfer_page__unknown_transfer_is_404(
    client: TestClient, bob: base.TestMember
) -> None:
    await login(client, "bob")
    response = await client.get("/wallet/transfers/nope", headers=HTML)
    assert response.status == 404
