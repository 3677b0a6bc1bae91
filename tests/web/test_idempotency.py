"""``Idempotency-Key`` on the JSON API's creating POSTs (issue 12).

For each creating endpoint: Given a member who sends a POST with a key, When the same POST
(same key, same body) is sent again, Then the first answer comes back (``Idempotent-
Replayed: true``) and exactly one row exists; the same key with another body is 422 and
changes nothing; another member's identical key is a separate request.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.config import Config
from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.services.reputation import MAX_BUNDLE_BYTES
from meshnode.store import idempotency as q
from meshnode.store.db import COMMIT_HOOK
from meshnode.web.idempotency import IDEMPOTENCY, KEEP, request_hash
from tests.conftest import FakeClock, MakeMember, TestMember, ride_listing


@dataclass(frozen=True)
class Endpoint:
    """A creating POST: its path, two different valid bodies, and the table it adds to."""

    name: str
    path: Callable[[NodeContext, TestMember], Awaitable[str]]
    body: dict[str, Any]
    other_body: dict[str, Any]
    table: str


async def _plain(path: str) -> str:
    return path


async def _ride_of(ctx: NodeContext, author: TestMember) -> str:
    view = await listing_service.create_listing(ctx, author.row, ride_listing())
    return f"/api/v1/listings/{view.row.id}/deals"


ENDPOINTS = [
    Endpoint("listings", lambda ctx, a: _plain("/api/v1/listings"), ride_listing(),
             ride_listing(title="Covoiturage vers Grenoble"), "listings"),
    Endpoint("transfers", lambda ctx, a: _plain("/api/v1/transfers"),
             {"payee": "alice", "amount": "1.50"}, {"payee": "alice", "amount": "2.00"},
             "ledger_journal"),
    Endpoint("payment-requests", lambda ctx, a: _plain("/api/v1/payment-requests"),
             {"payer": "alice", "amount": "3.00"}, {"payer": "alice", "amount": "4.00"},
             "ledger_requests"),
    Endpoint("deals", _ride_of, {"quantity": 1, "amount": "4.50"},
             {"quantity": 2, "amount": "9.00"}, "deals"),
    Endpoint("members", lambda ctx, a: _plain("/api/v1/members"),
             {"username": "carol", "password": "a long enough password"},
             {"username": "dave", "password": "a long enough password"}, "members"),
]
IDS = [endpoint.name for endpoint in ENDPOINTS]


def _rows(config: Config, table: str) -> int:
    conn = sqlite3.connect(f"file:{config.database_path}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


async def _caller(make_member: MakeMember, endpoint: Endpoint, name: str = "bob") -> TestMember:
    # POST /api/v1/members needs an admin; the rest any member.
    return await make_member(name, admin=endpoint.name == "members")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
async def test_idempotency__same_key_same_body_gives_the_first_answer_and_one_row(
    client: TestClient, ctx: NodeContext, node_config: Config, alice: TestMember,
    make_member: MakeMember, endpoint: Endpoint,
) -> None:
    # Given a member and a creating endpoint
    caller = await _caller(make_member, endpoint)
    path = await endpoint.path(ctx, alice)
    before = _rows(node_config, endpoint.table)
    headers = {**caller.headers, "Idempotency-Key": "order-2026-0001"}
    # When the same POST is sent twice with the same key
    first = await client.post(path, json=endpoint.body, headers=headers)
    second = await client.post(path, json=endpoint.body, headers=headers)
    # Then the second answer is the first one, replayed, and one row was created
    assert first.status in (201, 202), await first.text()
    assert second.status == first.status
    assert await second.read() == await first.read()
    assert second.headers.get("Location") == first.headers.get("Location")
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _rows(node_config, endpoint.table) == before + 1


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
async def test_idempotency__same_key_different_body_is_422_and_creates_nothing(
    client: TestClient, ctx: NodeContext, node_config: Config, alice: TestMember,
    make_member: MakeMember, endpoint: Endpoint,
) -> None:
    caller = await _caller(make_member, endpoint)
    path = await endpoint.path(ctx, alice)
    headers = {**caller.headers, "Idempotency-Key": "k-1"}
    assert (await client.post(path, json=endpoint.body, headers=headers)).status in (201, 202)
    after_first = _rows(node_config, endpoint.table)
    # When the key is reused with another body
    reused = await client.post(path, json=endpoint.other_body, headers=headers)
    # Then 422, and nothing more was created
    assert reused.status == 422
    body = await reused.json()
    assert body["error"] == "idempotency_key_reused"
    assert "Idempotency-Key" in body["fields"]
    assert _rows(node_config, endpoint.table) == after_first


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
async def test_idempotency__two_members_with_the_same_key_do_not_collide(
    client: TestClient, ctx: NodeContext, node_config: Config, alice: TestMember,
    make_member: MakeMember, endpoint: Endpoint,
) -> None:
    bob = await _caller(make_member, endpoint, "bob")
    erin = await _caller(make_member, endpoint, "erin")
    path = await endpoint.path(ctx, alice)
    before = _rows(node_config, endpoint.table)
    body = endpoint.body
    if endpoint.name == "members":  # two admins creating two different members
        body_of = {"bob": body, "erin": endpoint.other_body}
    else:
        body_of = {"bob": body, "erin": body}
    answers = []
    for member in (bob, erin):
        response = await client.post(path, json=body_of[member.row.username],
                                     headers={**member.headers, "Idempotency-Key": "same"})
        answers.append(response)
    assert [a.status for a in answers] == [answers[0].status] * 2
    assert answers[0].status in (201, 202)
    assert all("Idempotent-Replayed" not in a.headers for a in answers)
    assert _rows(node_config, endpoint.table) == before + 2


async def test_idempotency__a_failed_request_frees_its_key(
    client: TestClient, node_config: Config, alice: TestMember, bob: TestMember
) -> None:
    # Given a transfer refused for lack of balance room (nothing stored)
    headers = {**bob.headers, "Idempotency-Key": "big"}
    refused = await client.post("/api/v1/transfers", json={"payee": "alice", "amount": "9999"},
                                headers=headers)
    assert refused.status == 409
    # When the same request is retried, Then it runs again (not a replayed refusal)
    again = await client.post("/api/v1/transfers", json={"payee": "alice", "amount": "9999"},
                              headers=headers)
    assert again.status == 409
    assert "Idempotent-Replayed" not in again.headers
    assert _rows(node_config, "idempotency_keys") == 0


async def test_idempotency__a_duplicate_while_the_first_runs_is_409_with_retry_after(
    client: TestClient, ctx: NodeContext, node_config: Config, alice: TestMember,
    bob: TestMember,
) -> None:
    # Given a first request that claimed its key and is still running in this process
    state = client.app[IDEMPOTENCY]
    headers = {**bob.headers, "Idempotency-Key": "slow"}
    body = json.dumps({"payee": "alice", "amount": "1.00"}).encode()
    owner = hashlib.sha256(f"Bearer {bob.token}".encode()).hexdigest()
    claimed = await q.claim(ctx.store, owner=owner, key="slow", boot=state.boot,
                            request_hash=request_hash("POST", "/api/v1/transfers", body),
                            now="2026-11-26T10:00:00Z", expired_before="2026-11-25T10:00:00Z")
    assert claimed.is_new
    state.running.add((owner, "slow"))
    try:
        # When a duplicate arrives meanwhile, Then it is refused, to be retried
        duplicate = await client.post("/api/v1/transfers", data=body,
                                      headers={**headers, "Content-Type": "application/json"})
    finally:
        state.running.discard((owner, "slow"))
    assert duplicate.status == 409
    assert (await duplicate.json())["error"] == "request_in_progress"
    assert duplicate.headers["Retry-After"] == "1"
    assert _rows(node_config, "ledger_journal") == 0


async def test_idempotency__concurrent_duplicates_create_one_row(
    client: TestClient, node_config: Config, alice: TestMember, bob: TestMember
) -> None:
    # When ten identical POSTs with one key race each other
    headers = {**bob.headers, "Idempotency-Key": "race"}
    body = {"payee": "alice", "amount": "1.00"}
    answers = await asyncio.gather(*(client.post("/api/v1/transfers", json=body,
                                                 headers=headers) for _ in range(10)))
    # Then exactly one payment exists; the others were replays or "still running" refusals
    statuses = sorted(a.status for a in answers)
    assert set(statuses) <= {201, 409}
    assert 201 in statuses
    assert _rows(node_config, "ledger_journal") == 1
    assert statuses.count(201) + statuses.count(409) == 10


async def test_idempotency__keys_expire_after_24_hours(
    client: TestClient, clock: FakeClock, node_config: Config, alice: TestMember,
    bob: TestMember,
) -> None:
    headers = {**bob.headers, "Idempotency-Key": "daily"}
    body = {"payee": "alice", "amount": "1.00"}
    assert (await client.post("/api/v1/transfers", json=body, headers=headers)).status == 201
    # When more than 24 h pass, Then the key is pruned and the same request is a new payment
    clock.advance(seconds=KEEP.total_seconds() + 1)
    later = await client.post("/api/v1/transfers", json=body, headers=headers)
    assert later.status == 201
    assert "Idempotent-Replayed" not in later.headers
    assert _rows(node_config, "ledger_journal") == 2
    assert _rows(node_config, "idempotency_keys") == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "a b"])
async def test_idempotency__malformed_key_is_422_and_nothing_runs(
    client: TestClient, node_config: Config, alice: TestMember, bob: TestMember, key: str
) -> None:
    response = await client.post("/api/v1/transfers", json={"payee": "alice", "amount": "1"},
                                 headers={**bob.headers, "Idempotency-Key": key})
    assert response.status == 422
    assert "Idempotency-Key" in (await response.json())["fields"]
    assert _rows(node_config, "ledger_journal") == 0


async def test_idempotency__crash_between_commit_and_answer_gives_409_answer_lost_not_a_copy(
    client: TestClient, ctx: NodeContext, node_config: Config, bob: TestMember
) -> None:
    # Given a previous process that claimed a key, committed the listing (the key marked in
    # the same transaction), and died before recording its answer
    body = json.dumps(ride_listing()).encode()
    owner = hashlib.sha256(f"Bearer {bob.token}".encode()).hexdigest()
    await q.claim(ctx.store, owner=owner, key="lost", boot="a-dead-process",
                  request_hash=request_hash("POST", "/api/v1/listings", body),
                  now="2026-11-26T10:00:00Z", expired_before="2026-11-25T10:00:00Z")
    mark = q.CommitMark(owner, "lost")
    token = COMMIT_HOOK.set(mark)
    try:
        await listing_service.create_listing(ctx, bob.row, ride_listing())
    finally:
        COMMIT_HOOK.reset(token)
    assert mark.committed
    # When the client retries with the same key
    retry = await client.post("/api/v1/listings", data=body,
                              headers={**bob.headers, "Idempotency-Key": "lost",
                                       "Content-Type": "application/json"})
    # Then it is told the request was carried out, and no second listing exists
    assert retry.status == 409
    assert (await retry.json())["error"] == "answer_lost"
    assert _rows(node_config, "listings") == 1


async def test_idempotency__a_claim_left_pending_by_a_dead_process_is_taken_over(
    client: TestClient, ctx: NodeContext, node_config: Config, alice: TestMember,
    bob: TestMember,
) -> None:
    # Given a key claimed by a process that died before committing anything
    body = json.dumps({"payee": "alice", "amount": "1.00"}).encode()
    owner = hashlib.sha256(f"Bearer {bob.token}".encode()).hexdigest()
    await q.claim(ctx.store, owner=owner, key="orphan", boot="a-dead-process",
                  request_hash=request_hash("POST", "/api/v1/transfers", body),
                  now="2026-11-26T10:00:00Z", expired_before="2026-11-25T10:00:00Z")
    # When the client retries, Then the payment is made once
    retry = await client.post("/api/v1/transfers", data=body,
                              headers={**bob.headers, "Idempotency-Key": "orphan",
                                       "Content-Type": "application/json"})
    assert retry.status == 201
    assert _rows(node_config, "ledger_journal") == 1


async def test_idempotency__messages_same_key_sends_once_and_another_text_is_422(
    client: TestClient, ctx: NodeContext, node_config: Config, alice: TestMember,
    make_member: MakeMember,
) -> None:
    # Given bob writing to alice about her ride, with a key
    bob = await make_member("bob")
    view = await listing_service.create_listing(ctx, alice.row, ride_listing())
    message = {"to": "alice", "listing": view.row.id, "text": "Une place samedi ?"}
    headers = {**bob.headers, "Idempotency-Key": "msg-0001"}
    before = _rows(node_config, "messages")
    # When the same POST is sent twice, then with another text
    first = await client.post("/api/v1/messages", json=message, headers=headers)
    second = await client.post("/api/v1/messages", json=message, headers=headers)
    reused = await client.post("/api/v1/messages", json={**message, "text": "Deux places ?"},
                               headers=headers)
    # Then one message was sent, the retry got the first answer, the other text a 422
    assert first.status == 201, await first.text()
    assert second.status == 201
    assert await second.read() == await first.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert reused.status == 422
    assert _rows(node_config, "messages") == before + 1


async def test_idempotency__the_body_cap_is_the_routes_own_not_max_body_bytes(
    client: TestClient, ctx: NodeContext, alice: TestMember,
) -> None:
    # Given a receipts import (the route takes up to 512 KiB) of 300 KiB, with a key
    assert ctx.config.max_body_bytes < 300 * 1024 < MAX_BUNDLE_BYTES
    headers = {**alice.headers, "Idempotency-Key": "import-1",
               "Content-Type": "application/json"}
    padded = b'{"type": "nothing"}' + b" " * (300 * 1024)
    # When it is sent, Then the route itself answers (422: not a bundle), not a 413
    response = await client.post("/api/v1/me/receipts/import", data=padded, headers=headers)
    assert response.status == 422, await response.text()
    # And over the route's own limit it is 413, with or without a key
    over = b"{}" + b" " * MAX_BUNDLE_BYTES
    for extra in ({"Idempotency-Key": "import-2"}, {}):
        response = await client.post("/api/v1/me/receipts/import", data=over,
                                     headers={**headers, **extra})
        assert response.status == 413
    # And another route keeps the node's max_body_bytes with a key too
    response = await client.post("/api/v1/listings", data=padded,
                                 headers={**headers, "Idempotency-Key": "listing-1"})
    assert response.status == 413
    # and nothing was stored: the refused requests freed (or never claimed) their keys
    async with ctx.store.reader.execute("SELECT count(*) FROM idempotency_keys") as cursor:
        assert tuple(await cursor.fetchone() or ()) == (0,)
