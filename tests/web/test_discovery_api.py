"""Admin neighbours API and the public /.well-known/meshnode endpoints."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.protocol.challenge import (
    new_challenge,
    parse_challenge_response,
    verify_challenge_response,
)
from meshnode.services.context import NodeContext
from tests.conftest import START, TestMember
from tests.services.test_neighbours import SEEN, _record


async def test_well_known__describes_node(client: TestClient, ctx: NodeContext) -> None:
    resp = await client.get("/.well-known/meshnode")
    body = await resp.json()
    assert resp.status == 200
    assert body["multikey"] == ctx.identity.multikey
    assert body["actor"] == "http://127.0.0.1:8080/groups/voisins"


async def test_challenge__signed_for_own_origin(client: TestClient, ctx: NodeContext) -> None:
    challenge = new_challenge(b"\x05" * 32, START, "http://127.0.0.1:8080")
    resp = await client.post("/.well-known/meshnode/challenge", json=challenge.as_json())
    assert resp.status == 200
    response = parse_challenge_response(await resp.json())
    verify_challenge_response(challenge, response, ctx.identity.ed25519_public, START)


async def test_challenge__other_target_or_garbage_refused(client: TestClient) -> None:
    other = new_challenge(b"\x05" * 32, START, "http://10.9.9.9:8080").as_json()
    assert (await client.post("/.well-known/meshnode/challenge", json=other)).status == 401
    assert (await client.post("/.well-known/meshnode/challenge", data=b"{")).status == 400
    huge = {"nonce": "ab" * 32, "pad": "x" * 5000}
    assert (await client.post("/.well-known/meshnode/challenge", json=huge)).status == 413


async def test_neighbours_api__admin_only(client: TestClient, alice: TestMember,
                                          bob: TestMember, ctx: NodeContext) -> None:
    row = await _record(ctx)
    assert (await client.get("/api/v1/neighbours")).status == 401
    assert (await client.get("/api/v1/neighbours", headers=bob.headers)).status == 403
    resp = await client.post(f"/api/v1/neighbours/{row.id}/block", headers=bob.headers)
    assert resp.status == 403
    resp = await client.get("/api/v1/neighbours", headers=alice.headers)
    listed = (await resp.json())["neighbours"]
    assert [(n["name"], n["address"], n["status"]) for n in listed] == [
        ("Les Voisins", "192.168.1.20", "discovered")]
    assert listed[0]["fingerprint"] == SEEN.advert.fingerprint


async def test_neighbours_api__block_and_unknown_ids(client: TestClient, alice: TestMember,
                                                     ctx: NodeContext) -> None:
    row = await _record(ctx)
    resp = await client.post(f"/api/v1/neighbours/{row.id}/block", headers=alice.headers)
    assert (await resp.json())["status"] == "rejected"
    resp = await client.post(f"/api/v1/neighbours/{row.id}/approve", headers=alice.headers)
    assert resp.status == 409
    for bad in ("999", "abc"):
        resp = await client.post(f"/api/v1/neighbours/{bad}/approve", headers=alice.headers)
        assert resp.status == 404
