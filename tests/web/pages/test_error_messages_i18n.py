"""Error messages built from values (seats left, limits, days...) in the page's language.

The same errors keep their English message and code in the JSON API.
"""

from __future__ import annotations

from decimal import Decimal

from aiohttp.test_utils import TestClient

from meshnode.errors import ConflictError
from meshnode.protocol.translatable import Text, When, message_of, number
from meshnode.services import deals, ledger
from meshnode.services.context import NodeContext
from meshnode.store import deals as deal_q
from meshnode.store import ledger as ledger_q
from meshnode.web.i18n import I18n
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FR = {**HTML, "Accept-Language": "fr-FR,fr;q=0.9"}


async def _post(client: TestClient, path: str, data: dict[str, str], token_from: str,
                headers: dict[str, str] = FR) -> tuple[int, str]:
    token = await csrf_of(client, token_from)
    response = await client.post(path, data={**data, "csrf": token}, headers=headers,
                                 allow_redirects=False)
    return response.status, await response.text()


def test_text__is_the_english_string_and_translates_with_locale_numbers() -> None:
    message = Text("only %(left)s %(unit)s(s) left, asked %(asked)s", left=number("1.5"),
                   unit=Text("seat"), asked=2)
    assert message == "only 1.5 seat(s) left, asked 2"
    assert str(ConflictError(message)) == "only 1.5 seat(s) left, asked 2"
    assert message_of(ConflictError(message)) is message
    i18n = I18n.build(default="fr", timezone="Europe/Paris", symbol="G", decimals=2)
    french = i18n.translators["fr"]
    assert french.error(ConflictError(message)) == (
        "il ne reste que 1,5\u00a0place(s), vous en demandez 2")
    assert i18n.translators["en"].error(ConflictError(message)) == message
    assert french.error(ValueError("not in any catalogue")) == "not in any catalogue"
    assert french.gettext(Text("%(field)s is too large", field="amount")) == (
        "amount est trop grand")
    assert french._value(Decimal("-1234.50")).endswith("234,50")
    lent = Text("already lent from %(start)s to %(end)s", start=When("2026-12-05T08:30:00Z"),
                end=When("2026-12-06T08:30:00Z"))
    assert lent == "already lent from 2026-12-05T08:30:00Z to 2026-12-06T08:30:00Z"
    assert french.gettext(lent) == "déjà prêté du 5 déc. 2026, 09:30 au 6 déc. 2026, 09:30"


async def test_book__more_seats_than_left_in_french_api_english(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)  # 3 seats
    await login(client, "bob")
    status, text = await _post(client, f"/listings/{listing_id}/book",
                               {"quantity": "5", "message": ""}, f"/listings/{listing_id}")
    assert status == 409
    assert "il ne reste que 3\u00a0place(s), vous en demandez 5" in text
    assert "seat(s) left" not in text
    assert await deal_q.list_for_member(ctx.store.reader, bob.row.id, "booker") == []
    api = await client.post(f"/api/v1/listings/{listing_id}/deals", json={"quantity": 5},
                            headers=bob.headers)
    body = await api.json()
    assert api.status == 409
    assert body["error"] == "not_available"
    assert body["message"] == "only 3 seat(s) left, asked 5"


async def test_deal_action__not_possible_in_this_state_in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    deal = await deals.book(ctx, bob.row, listing_id, {"quantity": 1})
    await deals.act(ctx, alice.row, deal.id, "decline")
    await login(client, "alice")
    status, text = await _post(client, f"/deals/{deal.id}/accept", {}, f"/deals/{deal.id}")
    assert status == 409
    assert "Cette action n’est pas possible sur une réservation refusée" in text
    assert "cannot be accepted" not in text
    api = await client.post(f"/api/v1/deals/{deal.id}/accept", json={},
                            headers=alice.headers)
    assert api.status == 409
    assert (await api.json())["message"] == "a declined deal cannot be accepted"


async def test_pay__beyond_the_limit_in_french_api_english(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    status, text = await _post(client, "/wallet/pay", {"payee": "alice", "amount": "400"},
                               "/wallet")
    assert status == 409
    assert "vous pouvez dépenser au plus 300,00\u00a0G" in text
    assert "available" not in text
    assert "Limit exceeded" not in text
    api = await client.post("/api/v1/transfers", json={"payee": "alice", "amount": "400"},
                            headers=bob.headers)
    body = await api.json()
    assert (api.status, body["error"]) == (409, "limit_exceeded")
    assert body["message"] == "limit exceeded: bob can spend at most 300.00 G now (asked 400.00)"
    assert body["fields"] == {"amount": "at most 300.00 available"}


async def test_admin_invitation__bad_validity_in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    status, text = await _post(client, "/admin/invitations", {"days": "500", "note": ""},
                               "/admin/invitations")
    assert status == 422
    assert "entre 1 et 90 jours" in text
    assert "between 1 and 90 days" not in text


async def test_join__taken_username_in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    from tests.web.pages.conftest import invitation_link

    link = await invitation_link(ctx, alice)
    status, text = await _post(client, link, {
        "username": "alice", "password": "long enough pw", "password_again": "long enough pw",
        "display_name": "Alice bis"}, link)
    assert status == 409 or status == 422
    assert "déjà pris" in text
    assert "already taken" not in text


async def test_listing_form__too_many_decimals_in_french_api_english(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "alice")
    edit = f"/listings/{listing_id}/edit"
    page = await (await client.get(edit, headers=FR)).text()
    assert 'name="price.amount"' in page
    import re

    values = dict(re.findall(r'name="([a-z_.]+)" value="([^"]*)"', page))
    values.pop("csrf", None)
    values["price.mode"] = "amount"
    values["price.amount"] = "4.555"
    values.setdefault("kind", "offer")
    status, text = await _post(client, edit, values, edit)
    assert status == 422, text
    assert "au plus 2 décimales" in text
    assert "decimal places" not in text
    api = await client.patch(f"/api/v1/listings/{listing_id}",
                             json={"price": {"mode": "amount", "amount": "4.555"}},
                             headers=alice.headers)
    body = await api.json()
    assert (api.status, body["error"]) == (422, "validation_failed")
    assert "at most 2 decimal places" in body["fields"].values()


async def test_admin_limits__breached_by_balance_in_french_api_english(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await ledger.pay(ctx, bob.row, payee="alice", amount="100")
    await login(client, "alice")
    status, text = await _post(client, "/admin/ledger/limits/bob",
                               {"min_balance": "-50", "max_balance": ""}, "/admin/ledger")
    assert status == 409
    assert "Le solde de bob, montants réservés compris, est de" in text
    assert "100,00" in text
    assert "pending holds" not in text
    account = await ledger_q.get_account(ctx.store.reader, "bob")
    assert account is not None
    assert account.min_balance is None  # unchanged: the default applies
    api = await client.put("/api/v1/accounts/bob/limits",
                           json={"min_balance": "-50", "max_balance": None},
                           headers=alice.headers)
    body = await api.json()
    assert (api.status, body["error"]) == (409, "conflict")
    assert body["message"] == ("bob's balance with pending holds is -100.00; a higher lower"
                               " limit would already be breached")
