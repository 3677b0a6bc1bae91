"""Wallet pages: balance and chart, pay, request, approve/decline, reverse, paging, French."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import ledger, listings
from meshnode.services.context import NodeContext
from meshnode.store import ledger as ledger_q
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FR = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}


async def _journal_size(ctx: NodeContext) -> int:
    return (await ledger_q.totals(ctx.store.reader)).transactions


async def _balance(ctx: NodeContext, username: str) -> int:
    account = await ledger_q.get_account(ctx.store.reader, username)
    assert account is not None
    return account.balance


async def _post(client: TestClient, path: str, data: dict[str, str]) -> object:
    token = await csrf_of(client, "/wallet")
    return await client.post(path, data={**data, "csrf": token}, headers=HTML,
                             allow_redirects=False)


async def test_wallet__shows_balance_limits_room_chart_and_history(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given alice paid bob twice
    await ledger.pay(ctx, alice.row, payee="bob", amount="12.50", memo="Vélo réparé")
    await ledger.pay(ctx, alice.row, payee="bob", amount="7")
    # When bob opens his wallet
    await login(client, "bob")
    response = await client.get("/wallet", headers=HTML)
    text = await response.text()
    # Then balance, room on both sides, limits, history and an accessible chart are shown
    assert response.status == 200
    assert '<strong id="balance">19.50\u00a0G</strong>' in text
    assert '<dd id="available-spend">319.50\u00a0G</dd>' in text
    assert '<dd id="available-receive">980.50\u00a0G</dd>' in text
    assert "<dt>Lower limit</dt><dd>-300.00\u00a0G</dd>" in text
    assert "<dt>Upper limit</dt><dd>1,000.00\u00a0G</dd>" in text
    assert "Vélo réparé" in text
    assert "from alice" in text
    assert '<svg viewBox="0 0 320 120"' in text
    assert '<title id="chart-title">Balance over time</title>' in text
    assert "the balance went from 0.00\u00a0G to 19.50\u00a0G" in text
    assert "<table class=\"data\">" in text


async def test_wallet__visitor_is_sent_to_login(client: TestClient) -> None:
    response = await client.get("/wallet", headers=HTML, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login?next=")


async def test_wallet__french_formatting(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await ledger.set_limits(ctx, alice.row, "alice", min_balance="-5000", max_balance=None)
    await ledger.set_limits(ctx, alice.row, "bob", min_balance=None, max_balance="5000")
    await ledger.pay(ctx, alice.row, payee="bob", amount="1234.50")
    await login(client, "alice")
    text = await (await client.get("/wallet", headers=FR)).text()
    assert "Mon compte" in text
    assert "-1\u202f234,50\u00a0G" in text  # Babel: narrow no-break space, decimal comma
    assert "Évolution du solde" in text
    assert "à bob" in text


async def test_pay__happy_path_accepts_a_decimal_comma(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "alice")
    response = await _post(client, "/wallet/pay",
                           {"payee": "bob", "amount": "12,50", "memo": "Confiture"})
    assert response.status == 303  # type: ignore[attr-defined]
    assert response.headers["Location"] == "/wallet?done=paid"  # type: ignore[attr-defined]
    assert await _balance(ctx, "bob") == 1250
    page = await (await client.get("/wallet?done=paid", headers=HTML)).text()
    assert "Payment sent." in page
    assert "Confiture" in page


async def test_pay__over_limit_says_how_much_is_available_and_keeps_input(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    response = await _post(client, "/wallet/pay",
                           {"payee": "alice", "amount": "300.01", "memo": "Trop cher"})
    text = await response.text()  # type: ignore[attr-defined]
    assert response.status == 409  # type: ignore[attr-defined]
    assert 'id="err-amount"' in text
    assert "Limit exceeded: you can spend at most 300.00\u00a0G now." in text
    assert 'value="300.01"' in text
    assert 'value="Trop cher"' in text
    assert 'value="alice"' in text
    assert await _journal_size(ctx) == 0


async def test_pay__over_limit_in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    token = await csrf_of(client, "/wallet")
    response = await client.post("/wallet/pay", data={
        "csrf": token, "payee": "alice", "amount": "400"}, headers=FR)
    assert response.status == 409
    assert "vous pouvez dépenser au plus 300,00\u00a0G" in await response.text()


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"payee": "nobody", "amount": "1"}, "payee", "unknown member"),
    ({"payee": "bob", "amount": "abc"}, "amount", "use digits with an optional decimal point"),
    ({"payee": "bob", "amount": "0"}, "amount", "must be &gt; 0"),
    ({"payee": "bob", "amount": "1.234"}, "amount", "at most 2 decimal places"),
    ({"payee": "alice", "amount": "1"}, "payee", "cannot be yourself"),
    ({"payee": "Bad Name!", "amount": "1"}, "payee", "1-30 lowercase letters"),
    # (``bob@host`` payees go to the cross-community payment: test_wallet_remote_pay_pages.py)
    ({"payee": "bob", "amount": "1", "listing": "nope"}, "listing", "unknown listing"),
])
async def test_pay__bad_input_shows_message_next_to_field_and_writes_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    data: dict[str, str], field: str, message: str,
) -> None:
    await login(client, "alice")
    response = await _post(client, "/wallet/pay", data)
    text = await response.text()  # type: ignore[attr-defined]
    assert response.status == 422  # type: ignore[attr-defined]
    assert f'id="err-{field}"' in text
    assert message in text
    assert await _journal_size(ctx) == 0


@pytest.mark.parametrize(("path", "needs"), [
    ("/wallet/pay", None), ("/wallet/request", None), ("/wallet/requests/{r}/approve", "r"),
    ("/wallet/requests/{r}/decline", "r"), ("/wallet/transactions/{t}/reverse", "t"),
])
async def test_wallet_forms__without_csrf_are_403_and_write_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    path: str, needs: str | None,
) -> None:
    # Given a paid transaction alice -> bob and a pending bill bob -> alice
    paid = await ledger.pay(ctx, alice.row, payee="bob", amount="5")
    bill = await ledger.request_payment(ctx, bob.row, payer="alice", amount="3")
    await login(client, "bob" if "reverse" in path else "alice")
    # When a form is posted without a CSRF token
    response = await client.post(
        path.format(r=bill.id, t=paid.fields.id),
        data={"payee": "bob", "payer": "bob", "amount": "1"}, headers=HTML,
        allow_redirects=False,
    )
    # Then it is refused and neither the journal nor the bill changed
    assert response.status == 403
    assert await _journal_size(ctx) == 1
    assert (await ledger.get_request(ctx, bob.row, bill.id)).status == "pending"
    assert len(await ledger.list_requests(ctx, alice.row)) == 1


async def test_request__approve_by_payer_moves_money(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given bob bills alice through the request form
    await login(client, "bob")
    response = await _post(client, "/wallet/request", {
        "payer": "alice", "amount": "8,20", "memo": "Paniers", "expires_in_days": "7"})
    assert response.status == 303  # type: ignore[attr-defined]
    bob_page = await (await client.get("/wallet", headers=HTML)).text()
    assert "My requests awaiting payment" in bob_page
    assert "Paniers" in bob_page
    # When alice sees it on her wallet and approves it
    client.session.cookie_jar.clear()
    await login(client, "alice")
    page = await (await client.get("/wallet", headers=HTML)).text()
    assert "Requests for me to pay" in page
    assert "to bob" in page
    request_id = re.search(r'/wallet/requests/([0-9a-f]+)/approve', page)
    assert request_id
    approved = await _post(client, f"/wallet/requests/{request_id.group(1)}/approve", {})
    # Then the payment is done
    assert approved.status == 303  # type: ignore[attr-defined]
    assert await _balance(ctx, "bob") == 820
    assert await _balance(ctx, "alice") == -820


async def test_request__bad_expiry_and_limit_are_refused(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    bad = await _post(client, "/wallet/request",
                      {"payer": "alice", "amount": "1", "expires_in_days": "0"})
    assert bad.status == 422  # type: ignore[attr-defined]
    assert 'id="err-expires_in_days"' in await bad.text()  # type: ignore[attr-defined]
    over = await _post(client, "/wallet/request",
                       {"payer": "alice", "amount": "1000.01", "expires_in_days": "14"})
    assert over.status == 409  # type: ignore[attr-defined]
    text = await over.text()  # type: ignore[attr-defined]
    assert "you can receive at most 1,000.00\u00a0G now" in text
    assert await ledger.list_requests(ctx, bob.row) == []


async def test_request__decline_by_payer_and_cancel_by_payee(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    first = await ledger.request_payment(ctx, bob.row, payer="alice", amount="3")
    second = await ledger.request_payment(ctx, bob.row, payer="alice", amount="4")
    await login(client, "alice")
    declined = await _post(client, f"/wallet/requests/{first.id}/decline", {})
    assert declined.headers["Location"] == "/wallet?done=declined"  # type: ignore[attr-defined]
    client.session.cookie_jar.clear()
    await login(client, "bob")
    cancelled = await _post(client, f"/wallet/requests/{second.id}/decline", {})
    assert cancelled.headers["Location"] == "/wallet?done=cancelled"  # type: ignore[attr-defined]
    statuses = {r.id: r.status for r in await ledger.list_requests(ctx, bob.row)}
    assert statuses == {first.id: "declined", second.id: "declined"}
    assert await _journal_size(ctx) == 0


async def test_request__approving_someone_elses_request_is_refused(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    # Given bob bills alice
    bill = await ledger.request_payment(ctx, bob.row, payer="alice", amount="3")
    await make_member("carol")
    # When bob (the payee) tries to approve his own bill, or carol (a stranger) tries
    await login(client, "bob")
    own = await _post(client, f"/wallet/requests/{bill.id}/approve", {})
    client.session.cookie_jar.clear()
    await login(client, "carol")
    stranger = await _post(client, f"/wallet/requests/{bill.id}/approve", {})
    # Then both are refused and nothing moved
    assert own.status == 403  # type: ignore[attr-defined]
    assert stranger.status == 404  # type: ignore[attr-defined]
    assert await _journal_size(ctx) == 0
    assert (await ledger.get_request(ctx, bob.row, bill.id)).status == "pending"


async def test_request__approving_twice_says_it_is_already_approved(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    bill = await ledger.request_payment(ctx, bob.row, payer="alice", amount="3")
    await login(client, "alice")
    await _post(client, f"/wallet/requests/{bill.id}/approve", {})
    again = await _post(client, f"/wallet/requests/{bill.id}/approve", {})
    assert again.status == 409  # type: ignore[attr-defined]
    assert "already approved" in await again.text()  # type: ignore[attr-defined]
    assert await _journal_size(ctx) == 1


async def test_reverse__by_payee_only(
    client: TestClient, ctx: NodeContext, bob: base.TestMember, make_member: base.MakeMember,
) -> None:
    carol = await make_member("carol")
    paid = await ledger.pay(ctx, bob.row, payee="carol", amount="10")
    # The payer (not an admin) sees no reverse form and is refused
    await login(client, "bob")
    page = await (await client.get(f"/wallet/transactions/{paid.fields.id}", headers=HTML)).text()
    assert "Reverse this transaction" not in page
    refused = await _post(client, f"/wallet/transactions/{paid.fields.id}/reverse", {})
    assert refused.status == 403  # type: ignore[attr-defined]
    assert await _journal_size(ctx) == 1
    # The payee reverses it: a new linked transaction, the original untouched
    client.session.cookie_jar.clear()
    await login(client, "carol")
    page = await (await client.get(f"/wallet/transactions/{paid.fields.id}", headers=HTML)).text()
    assert "Reverse this transaction" in page
    done = await _post(client, f"/wallet/transactions/{paid.fields.id}/reverse",
                       {"memo": "Erreur"})
    assert done.status == 303  # type: ignore[attr-defined]
    assert (await _balance(ctx, "bob"), await _balance(ctx, carol.row.username)) == (0, 0)
    shown = await (await client.get(done.headers["Location"], headers=HTML)).text()  # type: ignore[attr-defined]
    assert "The transaction was reversed." in shown
    assert "Erreur" in shown
    twice = await _post(client, f"/wallet/transactions/{paid.fields.id}/reverse", {})
    assert twice.status == 409  # type: ignore[attr-defined]
    assert await _journal_size(ctx) == 2


async def test_reverse__an_admin_can_reverse_others_transactions(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    await make_member("carol")
    paid = await ledger.pay(ctx, bob.row, payee="carol", amount="10")
    await login(client, "alice")
    found = await client.get(f"/admin/ledger/transaction?id={paid.fields.id}", headers=HTML,
                             allow_redirects=False)
    assert found.headers["Location"] == f"/wallet/transactions/{paid.fields.id}"
    done = await _post(client, f"/wallet/transactions/{paid.fields.id}/reverse", {})
    assert done.status == 303  # type: ignore[attr-defined]
    assert await _balance(ctx, "carol") == 0


async def test_transaction__strangers_get_404(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember,
    make_member: base.MakeMember,
) -> None:
    await make_member("carol")
    paid = await ledger.pay(ctx, alice.row, payee="bob", amount="1")
    await login(client, "carol")
    response = await client.get(f"/wallet/transactions/{paid.fields.id}", headers=HTML)
    assert response.status == 404


async def test_history__pages_through_older_transactions(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    for n in range(1, 24):
        await ledger.pay(ctx, alice.row, payee="bob", amount="1", memo=f"memo-{n:02d}-x")
    await login(client, "bob")
    first = await (await client.get("/wallet", headers=HTML)).text()
    assert "memo-23-x" in first
    assert "memo-04-x" in first
    assert "memo-03-x" not in first
    link = re.search(r'href="(/wallet\?cursor=\d+)#history-h"', first)
    assert link
    second = await (await client.get(link.group(1), headers=HTML)).text()
    assert "memo-03-x" in second
    assert "memo-01-x" in second
    assert "memo-04-x" not in second
    assert "Older transactions" not in second


async def test_pay_for_this__prefills_the_form_from_the_listing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    # Given alice's ride listing priced 4.50, reserved (arranged by message: no booking form)
    listing_id = await make_ride(ctx, alice)
    await listings.update_listing(ctx, alice.row, listing_id, {"status": "reserved"})
    await login(client, "bob")
    page = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    link = re.search(r'id="pay-for-this" href="([^"]+)"', page)
    assert link
    # When bob follows "Pay for this"
    href = link.group(1).replace("&amp;", "&")
    form = await (await client.get(href, headers=HTML)).text()
    assert 'name="payee" value="alice"' in form
    assert 'name="amount" value="4.50"' in form
    assert f'name="listing" value="{listing_id}"' in form
    # Then paying links the transaction to the listing
    response = await _post(client, "/wallet/pay",
                           {"payee": "alice", "amount": "4.50", "listing": listing_id})
    assert response.status == 303  # type: ignore[attr-defined]
    page = await ledger.history(ctx, bob.row)
    assert page.entries[0].fields.listing_id == listing_id


async def test_pay_for_this__not_offered_to_the_author(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "alice")
    page = await (await client.get(f"/listings/{listing_id}", headers=HTML)).text()
    assert "pay-for-this" not in page


async def test_pay__payee_limit_names_the_payee_and_their_room(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await ledger.set_limits(ctx, alice.row, "bob", min_balance=None, max_balance="5")
    await login(client, "alice")
    response = await _post(client, "/wallet/pay", {"payee": "bob", "amount": "10"})
    assert response.status == 409  # type: ignore[attr-defined]
    assert "bob can receive at most 5.00\u00a0G now" in await response.text()  # type: ignore[attr-defined]
    assert await _journal_size(ctx) == 0
