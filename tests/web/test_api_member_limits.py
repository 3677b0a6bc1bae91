"""Per-member hourly allowances through the JSON API: 429 + Retry-After, nothing stored.

Issue 12: one member created 2,000 listings in 7.6 s. The first test runs with the shipped
defaults (60 listings per hour); the others set small limits in ``[limits]`` to stay short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from meshnode.app import create_app
from meshnode.config import LimitsConfig
from meshnode.services import listings as listing_service
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_q
from meshnode.web.appkeys import CONTEXT
from tests.conftest import FakeClock, TestMember, make_config, ride_listing

SMALL = LimitsConfig(listings_per_hour=2, messages_per_hour=2, payment_requests_per_hour=2)


async def _small_client(aiohttp_client: Any, tmp_path: Path, clock: FakeClock,
                        limits: LimitsConfig = SMALL) -> TestClient:
    config = make_config(tmp_path / "small", limits=limits)
    client: TestClient = await aiohttp_client(create_app(config, clock=clock))
    return client


async def _member(client: TestClient, username: str) -> TestMember:
    ctx = client.app[CONTEXT]
    row = await members.add_member(ctx, username=username, password="correct horse battery")
    return TestMember(row=row, token=(await members.create_token(ctx, username)).secret)


async def _listings(ctx: NodeContext) -> int:
    return await listing_q.count_listings(ctx.store.reader)


async def test_create_listing__61st_in_an_hour_is_429_with_retry_after_and_not_stored(
    client: TestClient, ctx: NodeContext, clock: FakeClock, alice: TestMember, bob: TestMember
) -> None:
    # Given alice published the default allowance of 60 listings, one a minute
    assert ctx.config.limits.listings_per_hour == 60
    for _ in range(60):
        created = await client.post("/api/v1/listings", json=ride_listing(),
                                    headers=alice.headers)
        assert created.status == 201, await created.text()
        clock.advance(seconds=59)
    # When she sends one more within the hour
    refused = await client.post("/api/v1/listings", json=ride_listing(), headers=alice.headers)
    # Then it is refused with the API's error shape and a Retry-After, and nothing is stored
    assert refused.status == 429
    body = await refused.json()
    assert body["error"] == "rate_limited"
    assert body["message"] == "at most 60 new listings per hour: try again in 1 min"
    assert body["fields"] == {}
    assert int(refused.headers["Retry-After"]) == 60 * 60 - 60 * 59
    assert await _listings(ctx) == 60
    # Other members are not affected, and alice may publish again once the window slid
    assert (await client.post("/api/v1/listings", json=ride_listing(),
                              headers=bob.headers)).status == 201
    clock.advance(seconds=int(refused.headers["Retry-After"]))
    assert (await client.post("/api/v1/listings", json=ride_listing(),
                              headers=alice.headers)).status == 201
    assert await _listings(ctx) == 62


async def test_create_listing__refused_and_invalid_attempts_use_no_allowance(
    aiohttp_client: Any, tmp_path: Path, clock: FakeClock
) -> None:
    client = await _small_client(aiohttp_client, tmp_path, clock)
    alice = await _member(client, "alice")
    for _ in range(3):
        invalid = await client.post("/api/v1/listings", json=ride_listing(title=""),
                                    headers=alice.headers)
        assert invalid.status == 422
    statuses = [
        (await client.post("/api/v1/listings", json=ride_listing(), headers=alice.headers)).status
        for _ in range(4)
    ]
    assert statuses == [201, 201, 429, 429]
    assert await _listings(client.app[CONTEXT]) == 2


async def test_payment_requests__over_the_limit_is_429_and_no_request_or_hold_stored(
    aiohttp_client: Any, tmp_path: Path, clock: FakeClock
) -> None:
    client = await _small_client(aiohttp_client, tmp_path, clock)
    alice, bob = await _member(client, "alice"), await _member(client, "bob")
    bill = {"payer": "alice", "amount": "3", "memo": "pain"}
    for _ in range(2):
        ok = await client.post("/api/v1/payment-requests", json=bill, headers=bob.headers)
        assert ok.status == 201
    refused = await client.post("/api/v1/payment-requests", json=bill, headers=bob.headers)
    assert refused.status == 429
    assert (await refused.json())["error"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) == 3600
    listed = await (await client.get("/api/v1/payment-requests", headers=bob.headers)).json()
    assert len(listed["items"]) == 2
    wallet = await (await client.get("/api/v1/wallet", headers=bob.headers)).json()
    assert wallet["held"]["credit"] == "6.00"
    # alice, the payer, may still bill bob: the allowance is per member
    back = await client.post("/api/v1/payment-requests", json={**bill, "payer": "bob"},
                             headers=alice.headers)
    assert back.status == 201


async def test_limits__zero_means_no_limit(
    aiohttp_client: Any, tmp_path: Path, clock: FakeClock
) -> None:
    client = await _small_client(aiohttp_client, tmp_path, clock, LimitsConfig(0, 0, 0))
    alice, ctx = await _member(client, "alice"), client.app[CONTEXT]
    for _ in range(70):
        await listing_service.create_listing(ctx, alice.row, ride_listing())
    assert await _listings(ctx) == 70
