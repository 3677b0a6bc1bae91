"""The ledger's JSON API: wallet, transfers, requests, reversals, limits, summary."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import ledger as ledger_service
from meshnode.services import members
from meshnode.services.context import NodeContext
from tests.conftest import FakeClock, MakeMember
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
     ("bob@other.example", 422, "cross-community payments are not available yet"),
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
