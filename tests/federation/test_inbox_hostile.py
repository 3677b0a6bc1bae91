"""Hostile input at the inbox: each attack is refused and leaves nothing stored.

Given two real nodes (alpha sends, beta receives), when a request is tampered with in one
way, then beta answers 4xx and stores neither the activity nor a listing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from meshnode.federation import peering
from meshnode.federation.runtime import Workers
from meshnode.protocol.activities import activity, listing_activity
from meshnode.protocol.signing import signed_post_headers
from meshnode.services import members
from meshnode.store import federation as fq
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, settle


async def follows(beta: Node, alpha: Node) -> None:
    """Beta follows alpha's Group (alpha is beta's peer), without the network round trip."""
    async with beta.ctx.store.transaction() as tx:
        await fq.insert_peer(tx, origin=alpha.url, requested=alpha.url, out_state="peered",
                             now="2026-11-26T10:00:00Z")


@pytest.fixture
async def pair(make_node: NodeFactory) -> tuple[Node, Node, MemberRow]:
    # Given alpha is beta's peer: public content from alpha passes beta's door
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    alice = await alpha.member("alice")
    await follows(beta, alpha)
    return alpha, beta, alice


def _actor(node: Node, member: MemberRow) -> str:
    return f"{node.url}/users/{member.username}"


async def create_activity(alpha: Node, alice: MemberRow) -> dict[str, Any]:
    view = await alpha.publish(alice)
    return listing_activity("Create", json.loads(view.row.signed_object),
                            actor=_actor(alpha, alice), version=1, published="2026-11-26T10:00:00Z")


def sign(node: Node, member: MemberRow, url: str, body: bytes, *, scheme: str = "rfc9421-ed25519",
         delta: timedelta = timedelta()) -> dict[str, str]:
    identity = members.member_identity(node.ctx, member)
    actor = _actor(node, member)
    now = int((node.clock() + delta).timestamp())
    if scheme == "rfc9421-ed25519":
        key = Ed25519PrivateKey.from_private_bytes(identity.ed25519_seed)
        return signed_post_headers("rfc9421-ed25519", url, body, key=key,
                                   key_id=f"{actor}#ed25519-key", now=now)
    return signed_post_headers("cavage-rsa", url, body, key=identity.rsa_private_key,
                               key_id=f"{actor}#main-key", now=now)


async def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=dict(headers)) as response:
        return response.status


async def nothing_stored(beta: Node) -> None:
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM inbox_activities") == 0
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 0


async def test_inbox__valid_signed_create_is_stored_then_processed(pair: Any) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body)) == 202
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1


async def test_inbox__cavage_rsa_signature_is_accepted(pair: Any) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/users/nobody/inbox"
    assert await post(url, body, sign(alpha, alice, url, body, scheme="cavage")) == 202


async def test_inbox__no_signature(pair: Any) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, {"Content-Type": "application/activity+json"}) == 401
    await nothing_stored(beta)


async def test_inbox__bad_signature(pair: Any) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, body)
    headers["Signature"] = "sig1=:" + "A" * 86 + "==:"
    assert await post(url, body, headers) == 401
    await nothing_stored(beta)


async def test_inbox__body_tampered_after_signing(pair: Any) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, body)
    assert await post(url, body.replace(b"Lyon", b"Nice"), headers) == 401
    await nothing_stored(beta)


@pytest.mark.parametrize("scheme", ["rfc9421-ed25519", "cavage"])
async def test_inbox__wrong_digest_header(pair: Any, scheme: str) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, body, scheme=scheme)
    name = "Content-Digest" if scheme == "rfc9421-ed25519" else "Digest"
    other = sign(alpha, alice, url, b"{}", scheme=scheme)[name]
    headers[name] = other
    assert await post(url, body, headers) == 401
    await nothing_stored(beta)


@pytest.mark.parametrize("delta", [timedelta(hours=-2), timedelta(hours=2)])
async def test_inbox__stale_or_future_date(pair: Any, delta: timedelta) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body, delta=delta)) == 401
    await nothing_stored(beta)


async def test_inbox__replayed_activity_is_stored_once(pair: Any) -> None:
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, body)
    assert await post(url, body, headers) == 202
    await beta.workers.inbox.step()
    assert await post(url, body, headers) == 202
    assert await beta.workers.inbox.step() == 0
    assert await beta.count("SELECT count(*) FROM inbox_activities") == 1
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1
    assert await beta.count("SELECT count(*) FROM listing_versions") == 1


async def test_inbox__key_owner_is_not_the_actor(pair: Any) -> None:
    alpha, beta, alice = pair
    mallory = await alpha.member("mallory")
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, mallory, url, body)) == 401
    await nothing_stored(beta)


async def test_inbox__forged_listing_proof_is_never_stored(pair: Any) -> None:
    alpha, beta, alice = pair
    create = await create_activity(alpha, alice)
    create["object"]["name"] = "Forged title"
    body = json.dumps(create).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body)) == 202
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 0
    async with beta.ctx.store.reader.execute("SELECT outcome FROM inbox_activities") as cur:
        row = await cur.fetchone()
    assert row[0].startswith("rejected")


async def test_inbox__relayed_listing_with_altered_proof_is_never_stored(pair: Any) -> None:
    alpha, beta, alice = pair
    create = await create_activity(alpha, alice)
    relay_node = alpha  # a peer relays alice's listing, altered
    mallory = await relay_node.member("mallory")
    obj = dict(create["object"])
    obj["proof"] = {**obj["proof"], "proofValue": obj["proof"]["proofValue"][:-4] + "abcd"}
    announce = activity("Announce", activity_id=f"{_actor(relay_node, mallory)}/a/1",
                        actor=_actor(relay_node, mallory), obj=obj, hops=2)
    body = json.dumps(announce).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(relay_node, mallory, url, body)) == 202
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 0


async def test_inbox__oversized_body(pair: Any) -> None:
    alpha, beta, alice = pair
    create = await create_activity(alpha, alice)
    create["padding"] = "x" * (300 * 1024)
    body = json.dumps(create).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body)) == 413
    await nothing_stored(beta)


async def test_inbox__json_nested_1000_deep(pair: Any) -> None:
    alpha, beta, alice = pair
    body = b"[" * 1000 + b"]" * 1000
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body)) == 400
    await nothing_stored(beta)


async def test_inbox__activity_from_a_blocked_node(pair: Any) -> None:
    alpha, beta, alice = pair
    await peering.block_peer(beta.ctx, alpha.url)
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body)) == 403
    await nothing_stored(beta)


async def test_inbox__activity_id_on_another_origin(pair: Any) -> None:
    alpha, beta, alice = pair
    create = await create_activity(alpha, alice)
    create["id"] = "http://elsewhere.example/activities/1"
    body = json.dumps(create).encode()
    url = f"{beta.url}/inbox"
    assert await post(url, body, sign(alpha, alice, url, body)) == 401
    await nothing_stored(beta)


async def test_inbox__accepts_http_message_signatures_library(pair: Any) -> None:
    # Interop: a request signed by the independent http_message_signatures package.
    alpha, beta, alice = pair
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    identity = members.member_identity(alpha.ctx, alice)

    class Message:
        method = "POST"
    message = Message()
    message.headers = {"Content-Type": "application/activity+json",  # type: ignore[attr-defined]
                       "Host": url.split("/")[2]}
    message.url = url  # type: ignore[attr-defined]
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={
            f"{_actor(alpha, alice)}#ed25519-key":
                Ed25519PrivateKey.from_private_bytes(identity.ed25519_seed)}))
    signer.sign(message, key_id=f"{_actor(alpha, alice)}#ed25519-key", created=alpha.clock(),
                label="sig1", covered_component_ids=("@method", "@authority", "@target-uri"),
                body=body)
    assert await post(url, body, message.headers) == 202  # type: ignore[attr-defined]
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 1


def test_outgoing_signature__verified_by_http_message_signatures() -> None:
    import time

    from http_message_signatures import HTTPMessageVerifier

    key = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    url = "http://127.0.0.1:9/inbox"
    body = b'{"type":"Create"}'
    headers = signed_post_headers("rfc9421-ed25519", url, body, key=key, key_id="k",
                                  now=int(time.time()))

    class Message:
        method = "POST"

    message = Message()
    message.url = url  # type: ignore[attr-defined]
    message.headers = headers  # type: ignore[attr-defined]
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519,
                                   key_resolver=MappingKeyResolver(
                                       public_keys={"k": key.public_key()}, private_keys={}))
    results = verifier.verify(message, body=body, require_components=("@method", "@target-uri",
                                                                      "content-digest"))
    assert results[0].body == body


async def test_settle_helper_has_no_work_on_idle_nodes(pair: Any) -> None:
    alpha, beta, _ = pair
    workers: Workers = alpha.workers
    assert await workers.step_all() == 0
    await settle(alpha, beta)


async def test_inbox__flood_beyond_the_backlog_cap_gets_503_and_is_not_stored(pair: Any) -> None:
    # Given beta's inbox may hold only two unprocessed activities
    alpha, beta, alice = pair
    beta.fed.writer.backlog_max = 2
    url = f"{beta.url}/inbox"
    bodies = []
    for n in range(3):
        create = await create_activity(alpha, alice)
        create["id"] += f"-{n}"
        bodies.append(json.dumps(create).encode())
    # When three arrive before the worker runs
    statuses = [await post(url, body, sign(alpha, alice, url, body)) for body in bodies[:2]]
    async with aiohttp.ClientSession() as session, session.post(
            url, data=bodies[2], headers=sign(alpha, alice, url, bodies[2])) as response:
        refused = response.status, response.headers.get("Retry-After"), await response.json()
    # Then the third is refused with 503 + Retry-After (senders retry) and not stored
    assert statuses == [202, 202]
    assert refused == (503, "30", {"error": "busy", "fields": {},
                                   "message": "this node's inbox is full; retry later"})
    assert await beta.count("SELECT count(*) FROM inbox_activities") == 2
    # And once the backlog is processed, the retry is accepted
    await beta.workers.inbox.step()
    assert beta.fed.writer.backlog == 0
    assert await post(url, bodies[2], sign(alpha, alice, url, bodies[2])) == 202
    assert await beta.count("SELECT count(*) FROM inbox_activities") == 3


async def test_inbox__block_written_by_another_process_applies_within_a_second(
        pair: Any) -> None:
    # Given beta has already answered alpha (its blocked-origins cache is warm)
    alpha, beta, alice = pair
    url = f"{beta.url}/inbox"
    first = json.dumps(await create_activity(alpha, alice)).encode()
    assert await post(url, first, sign(alpha, alice, url, first)) == 202
    # When `meshnode peer block` (another process: another connection) blocks alpha

    with sqlite3.connect(beta.ctx.config.database_path) as conn:
        conn.execute("UPDATE peers SET blocked = 1 WHERE origin = ?", (alpha.url,))
    beta.fed.blocked.max_age = 0.0  # the cache's age limit (1 s in production) has passed
    second = await create_activity(alpha, alice)
    second["id"] += "-2"
    body = json.dumps(second).encode()
    # Then beta refuses alpha's next activity
    assert await post(url, body, sign(alpha, alice, url, body)) == 403
    assert await beta.count("SELECT count(*) FROM inbox_activities") == 1
