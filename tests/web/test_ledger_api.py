"""The ledger's JSON API: wallet, transfers, requests, reversals, limits, summary."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import ledger as ledger_service
from meshnode.services import members
from meshnode.services.context import NodeContext
from tests.conftest import FakeClock
from tests.conftest import TestMember as Member


async def _wallet(client: TestClient, who: Member) -> dict[str, Any]:
    response = await client.get("/api/v1/wallet", headers=who.headers)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def _pay(client: TestClient, who: Member, **body: object) -> Any:
    return await client.post("/api/v1/transfers", json=body, headers=who.headers)


async def _journal_size(ctx: NodeContext) -> int:
    async with ctx.store.reader.execute("SELECT COUNT(*) FROM ledger_journal") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_wallet__new_member_has_default_limits(client: TestClient, bob: Member) -> None:
    wallet = await _wallet(client, bob)
    assert wallet["balance"] == "0.00"
    assert wallet["limits"] == {"min_balance": "-300.00", "max_balance": "1000.00"}
    assert wallet["available_to_spend"] == "300.00"
    assert wallet["available_to_receive"] == "1000.00"


async def test_transfer__moves_money_and_signs(
    client: TestClient, alice: Member, bob: Member
) -> None:
    response = await _pay(client, alice, payee="bob", amount="12.50", memo="vélo")
    assert response.status == 201
    body = await response.json()
    assert body["amount"] == "12.50"
    assert body["document"]["type"] == "EconomicEvent"
    assert body["document"]["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert (await _wallet(client, alice))["balance"] == "-12.50"
    assert (await _wallet(client, bob))["balance"] == "12.50"


@pytest.mark.parametrize(
    ("amount", "field"),
    [("0", "amount"), ("-5", "amount"), ("NaN", "amount"), ("1e3", "amount"),
     ("1.234", "amount"), ("99999999999999", "amount"), (12.5, "amount"), ("", "amount")],
)
async def test_transfer__bad_amount_is_422_and_writes_nothing(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member, amount: object,
    field: str,
) -> None:
    response = await _pay(client, alice, payee="bob", amount=amount)
    assert response.status == 422
    assert field in (await response.json())["fields"]
    assert await _journal_size(ctx) == 0


@pytest.mark.parametrize(
    ("payee", "status", "message"),
    [("alice", 422, "yourself"), ("nobody", 422, "no member"),
     ("bob@other.example", 409, "no trust line"),
     ("", 422, "payee")],
)
async def test_transfer__bad_payee_is_4xx_and_writes_nothing(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member, payee: str,
    status: int, message: str,
) -> None:
    response = await _pay(client, alice, payee=payee, amount="1")
    assert response.status == status
    assert message in (await response.json())["message"]
    assert await _journal_size(ctx) == 0


@pytest.mark.parametrize("payee", ["bob", "bob@other.example"])
@pytest.mark.parametrize("memo", [5, ["vélo"], "x" * 501])
async def test_transfer__bad_memo_is_422_to_a_local_or_remote_payee_alike(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member, payee: str, memo: object,
) -> None:
    # one memo rule (protocol.ledger.parse_memo) for both paths: the cross-node one used to
    # drop a memo that was not text and go on
    response = await _pay(client, alice, payee=payee, amount="1", memo=memo)
    assert response.status == 422
    assert "memo" in (await response.json())["fields"]
    assert await _journal_size(ctx) == 0


async def test_transfer__disabled_payee_is_422(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member
) -> None:
    await members.set_disabled(ctx, "bob", disabled=True)
    response = await _pay(client, alice, payee="bob", amount="1")
    assert response.status == 422
    assert "disabled" in (await response.json())["message"]
    assert await _journal_size(ctx) == 0


async def test_transfer__over_limit_is_409_saying_what_is_available(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member
) -> None:
    assert (await _pay(client, alice, payee="bob", amount="250")).status == 201
    response = await _pay(client, alice, payee="bob", amount="60")
    assert response.status == 409
    body = await response.json()
    assert body["error"] == "limit_exceeded"
    assert "at most 50.00" in body["message"]
    assert await _journal_size(ctx) == 1


async def test_transfer__unknown_field_is_422(
    client: TestClient, alice: Member, bob: Member
) -> None:
    response = await _pay(client, alice, payee="bob", amount="1", currency="EUR")
    assert response.status == 422


async def test_transfers__concurrent_burst_never_breaches_limit(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member
) -> None:
    # Given alice may spend 300.00, When 300 requests of 1.70 race (510.00 in all)
    responses = await asyncio.gather(
        *(_pay(client, alice, payee="bob", amount="1.70") for _ in range(300))
    )
    statuses = [r.status for r in responses]
    # Then exactly floor(300 / 1.7) = 176 succeed and the rest are refused with 409
    assert statuses.count(201) == 176
    assert statuses.count(409) == 124
    wallet = await _wallet(client, alice)
    assert wallet["balance"] == "-299.20"
    verification = await ledger_service.verify_journal(ctx)
    assert verification.ok, verification.describe()
    assert verification.chain.entries == 176


async def _bill(client: TestClient, payee: Member, **body: object) -> dict[str, Any]:
    response = await client.post("/api/v1/payment-requests", json=body, headers=payee.headers)
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def test_payment_request__approve_then_twice_is_409(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member
) -> None:
    bill = await _bill(client, bob, payer="alice", amount="3", memo="pain")
    url = f"/api/v1/payment-requests/{bill['id']}/approve"
    first = await client.post(url, headers=alice.headers)
    assert first.status == 201
    assert (await first.json())["kind"] == "request"
    again = await client.post(url, headers=alice.headers)
    assert again.status == 409
    assert await _journal_size(ctx) == 1


async def test_payment_request__payee_cannot_approve_own_bill(
    client: TestClient, ctx: NodeContext, alice: Member, bob: Member
) -> None:
    bill = await _bill(client, bob, payer="alice", amount="3")
    response = await client.post(f"/api/v1/payment-requests/{bill['id']}/approve",
                                 headers=bob.headers)
    assert response.status == 403
    assert await _journal_size(ctx) == 0


async def test_payment_request__expired_is_409(
    client: TestClient, ctx: NodeContext, clock: FakeClock, alice: Member, bob: Member
) -> None:
    bill = await _bill(client, bob, payer="alice", amount="3", expires_in_days=2)
    clock.advance(days=3)
    response = await client.post(f"/api/v1/payment-requests/{bill['id']}/approve",
                                 headers=alice.headers)
    assert response.status == 409
    assert "expired" in (await response.json())["message"]
    assert await _journal_size(ctx) == 0


async def test_payment_request__decline(
    client: TestClient, alice: Member, bob: Member
) -> None:
    bill = await _bill(client, bob, payer="alice", amount="3")
    response = await client.post(f"/api/v1/payment-requests/{bill['id']}/decline",
                                 headers=alice.headers)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "declined"
    assert body["decision"]["type"] == "Reject"


async def test_payment_request__cross_community_payer_is_422(
    client: TestClient, alice: Member, bob: Member
) -> None:
    response = await client.post("/api/v1/payment-requests", headers=bob.headers,
                                 json={"payer": "alice@elsewhere.example", "amount": "1"})
    assert response.status == 422
    assert "cross-community" in (await response.json())["message"]


async def test_transactions__history_and_reverse(
    client: TestClient, alice: Member, bob: Member
) -> None:
    paid = await (await _pay(client, alice, payee="bob", amount="4")).json()
    history = await (await client.get("/api/v1/transactions?limit=10",
                                      headers=bob.headers)).json()
    assert [item["id"] for item in history["items"]] == [paid["id"]]
    assert history["items"][0]["direction"] == "in"
    # alice paid, so only as an admin may she reverse her own payment
    by_admin = await client.post(f"/api/v1/transactions/{paid['id']}/reverse",
                                 headers=alice.headers, json={})
    assert by_admin.status == 201
    again = await client.post(f"/api/v1/transactions/{paid['id']}/reverse",
                              headers=bob.headers, json={})
    assert again.status == 409
    assert (await _wallet(client, bob))["balance"] == "0.00"


async def test_transactions__bad_cursor_is_422(client: TestClient, bob: Member) -> None:
    response = await client.get("/api/v1/transactions?cursor=abc", headers=bob.headers)
    assert response.status == 422


async def test_limits__admin_only_and_applied(
    client: TestClient, alice: Member, bob: Member
) -> None:
    body = {"min_balance": "-50", "max_balance": "100"}
    denied = await client.put("/api/v1/accounts/bob/limits", json=body, headers=bob.headers)
    assert denied.status == 403
    response = await client.put("/api/v1/accounts/bob/limits", json=body, headers=alice.headers)
    assert response.status == 200
    assert (await response.json())["available_to_spend"] == "50.00"
    over = await _pay(client, bob, payee="alice", amount="50.01")
    assert over.status == 409


async def test_summary__admin_only(client: TestClient, alice: Member, bob: Member) -> None:
    assert (await _pay(client, alice, payee="bob", amount="2")).status == 201
    assert (await client.get("/api/v1/ledger/summary", headers=bob.headers)).status == 403
    response = await client.get("/api/v1/ledger/summary", headers=alice.headers)
    body = await response.json()
    assert body["sum_of_balances"] == "0.00"
    assert body["transactions"] == 1
    assert body["accounts"] == 3  # alice, bob, sys:fund
    assert body["journal_verifies"] is True
    assert body["total_volume"] == "2.00"
