"""Admin ledger page: overview figures, members near their limits, per-member limit changes."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import ledger
from meshnode.services.context import NodeContext
from meshnode.store import ledger as ledger_q
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login


async def _limits(ctx: NodeContext, username: str) -> tuple[int | None, int | None]:
    account = await ledger_q.get_account(ctx.store.reader, username)
    assert account is not None
    return account.min_balance, account.max_balance


async def _post_limits(client: TestClient, username: str, low: str, high: str) -> object:
    token = await csrf_of(client, "/admin/ledger")
    return await client.post(f"/admin/ledger/limits/{username}", data={
        "csrf": token, "min_balance": low, "max_balance": high}, headers=HTML,
        allow_redirects=False)


async def test_overview__volume_traders_near_limits_and_journal(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob spent 280 of his 300 and alice received it
    await ledger.pay(ctx, bob.row, payee="alice", amount="280")
    await ledger.pay(ctx, alice.row, payee="bob", amount="0.50")
    await login(client, "alice")
    # When the admin opens the ledger overview
    response = await client.get("/admin/ledger", headers=HTML)
    text = await response.text()
    # Then the figures are there and bob is near his lower limit
    assert response.status == 200
    assert "✔ verifies" in text
    assert "280.50\u00a0G" in text  # total volume
    assert "<dt>Active traders (30 days)</dt><dd>2</dd>" in text
    assert '<a href="#account-bob">bob</a>: -279.50\u00a0G · lower limit -300.00\u00a0G' in text


async def test_overview__in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await ledger.pay(ctx, bob.row, payee="alice", amount="12.5")
    await login(client, "alice")
    text = await (await client.get("/admin/ledger", headers={
        "Accept": "text/html", "Accept-Language": "fr"})).text()
    assert "Membres proches de leurs limites" in text
    assert "12,50\u00a0G" in text


async def test_overview__members_get_403(client: TestClient, bob: base.TestMember) -> None:
    await login(client, "bob")
    response = await client.get("/admin/ledger", headers=HTML)
    assert response.status == 403


async def test_limits__admin_changes_and_restores_default(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "alice")
    saved = await _post_limits(client, "bob", "-500", "2 000,50")
    assert saved.status == 303  # type: ignore[attr-defined]
    assert await _limits(ctx, "bob") == (-50000, 200050)
    page = await (await client.get("/admin/ledger?saved=bob", headers=HTML)).text()
    assert "Limits of bob saved." in page
    assert 'value="-500.00"' in page
    restored = await _post_limits(client, "bob", "", "")
    assert restored.status == 303  # type: ignore[attr-defined]
    assert await _limits(ctx, "bob") == (None, None)


async def test_limits__bad_values_shown_next_to_fields_and_nothing_saved(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "alice")
    bad = await _post_limits(client, "bob", "12", "lots")
    assert bad.status == 422  # type: ignore[attr-defined]
    text = await bad.text()  # type: ignore[attr-defined]
    assert 'value="lots"' in text
    assert 'value="12"' in text
    assert 'id="err-max_balance"' in text
    assert await _limits(ctx, "bob") == (None, None)
    # A limit the current balance already breaches is refused with the reason
    await ledger.pay(ctx, bob.row, payee="alice", amount="100")
    breached = await _post_limits(client, "bob", "-50", "")
    assert breached.status == 409  # type: ignore[attr-defined]
    assert "too high" in await breached.text()  # type: ignore[attr-defined]
    assert await _limits(ctx, "bob") == (None, None)


async def test_limits__without_csrf_or_as_member_nothing_changes(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "alice")
    no_token = await client.post("/admin/ledger/limits/bob", data={"min_balance": "-900"},
                                 headers=HTML, allow_redirects=False)
    assert no_token.status == 403
    client.session.cookie_jar.clear()
    await login(client, "bob")
    member = await _post_limits(client, "bob", "-900", "")
    assert member.status == 403  # type: ignore[attr-defined]
    assert await _limits(ctx, "bob") == (None, None)
