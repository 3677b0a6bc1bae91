"""The inbox door: who may post what, quotas, retention, and the requests it makes for others.

Real nodes on 127.0.0.1 (alpha sends, beta receives), and a "decoy" HTTP server that counts
the requests it gets: it stands for whatever a hostile keyId points at, so a test can prove
that the node never contacted it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meshnode.config import InboxLimits
from meshnode.federation.directory import StrangerFetchBudget
from meshnode.protocol.activities import activity, follow_activity
from meshnode.protocol.signing import signed_post_headers
from meshnode.store import federation as fq
from tests.federation.conftest import Node, NodeFactory, bind_socket
from tests.federation.test_inbox_hostile import _actor, create_activity, follows, sign
from tests.nodeproc import free_port

# --- helpers --------------------------------------------------------------------------------


@dataclass
class Decoy:
    """A local HTTP server answering every request with ``status``; counts what it got."""

    url: str
    status: int = 404
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def decoy() -> AsyncIterator[Decoy]:
    sock = bind_socket()
    port = sock.getsockname()[1]
    found = Decoy(url=f"http://127.0.0.1:{port}")

    async def handler(request: web.Request) -> web.Response:
        found.hits.append(request.path)
        if found.status == 302:
            raise web.HTTPFound("http://127.0.0.1:1/elsewhere")
        return web.Response(status=found.status, text="decoy")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield found
    await runner.cleanup()


STRANGER_KEY = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)


def stranger_headers(node: Node, url: str, body: bytes, key_id: str) -> dict[str, str]:
    """Headers signed by a key nobody publishes (the door must refuse before fetching it)."""
    return signed_post_headers("rfc9421-ed25519", url, body, key=STRANGER_KEY, key_id=key_id,
                               now=int(node.clock().timestamp()))


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any],
                                                                        str | None]:
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=headers) as response:
        text = await response.text()
        payload = json.loads(text) if text.startswith("{") else {"raw": text}
        return response.status, payload, response.headers.get("Retry-After")


async def inbox_rows(node: Node) -> int:
    return await node.count("SELECT count(*) FROM inbox_activities")


@pytest.fixture
async def strangers(make_node: NodeFactory) -> tuple[Node, Node, Any]:
    """alpha and beta know nothing of each other (no peering)."""
    alpha, beta = await make_node("alpha"), await make_node("beta")
    return alpha, beta, await alpha.member("alice")


# --- who may post what ---------------------------------------------------------------------


async def test_inbox__create_from_a_stranger_is_refused_before_any_key_fetch(
        strangers: Any, decoy: Decoy) -> None:
    # Given an actor on an origin beta does not peer with, whose key lives on the decoy
    _, beta, _ = strangers
    actor = f"{decoy.url}/users/spam"
    note = {"id": f"{decoy.url}/notes/1", "type": "Proposal", "attributedTo": actor}
    body = json.dumps(activity("Create", activity_id=f"{decoy.url}/a/1", actor=actor,
                               obj=note)).encode()
    url = f"{beta.url}/inbox"
    # When it posts a Create of public content
    status, payload, _ = await post(url, body, stranger_headers(beta, url, body,
                                                                f"{actor}#key"))
    # Then the door refuses it (403), never fetched the key, and stored nothing
    assert (status, payload["error"]) == (403, "forbidden")
    assert "peers" in payload["message"]
    assert decoy.hits == []
    assert await inbox_rows(beta) == 0


async def test_inbox__a_flood_of_big_signed_notes_from_a_stranger_stores_nothing(
        strangers: Any) -> None:
    # Given alice on alpha (validly signed, but alpha is not beta's peer)
    alpha, beta, alice = strangers
    url = f"{beta.url}/inbox"
    size_before = await beta.count("SELECT page_count FROM pragma_page_count()")
    # When she posts 20 signed 250 KB Notes (the attack, scaled down)
    statuses = set()
    for n in range(20):
        note = {"id": f"{_actor(alpha, alice)}/notes/{n}", "type": "Note",
                "content": "x" * 250_000}
        body = json.dumps(activity("Create", activity_id=f"{_actor(alpha, alice)}/a/{n}",
                                   actor=_actor(alpha, alice), obj=note)).encode()
        statuses.add((await post(url, body, sign(alpha, alice, url, body)))[0])
    # Then every one is refused at the door and the database did not grow
    assert statuses == {403}
    assert await inbox_rows(beta) == 0
    assert await beta.count("SELECT page_count FROM pragma_page_count()") == size_before


async def test_inbox__follow_from_a_stranger_is_accepted_and_processed(strangers: Any) -> None:
    # Given alice on alpha, a node beta does not peer with
    alpha, beta, alice = strangers
    follow = follow_activity(f"{_actor(alpha, alice)}/follows/1", _actor(alpha, alice),
                             beta.group)
    body = json.dumps(follow).encode()
    url = f"{beta.url}/inbox"
    # When she follows beta's community, Then the door lets it in and beta records her
    assert (await post(url, body, sign(alpha, alice, url, body)))[0] == 202
    await beta.workers.inbox.step()
    assert await beta.count("SELECT count(*) FROM followers WHERE state = 'accepted'") == 1


async def test_inbox__unsupported_type_from_a_peer_is_refused_and_not_kept(
        strangers: Any) -> None:
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    like = activity("Like", activity_id=f"{_actor(alpha, alice)}/likes/1",
                    actor=_actor(alpha, alice), obj=f"{beta.url}/listings/1")
    body = json.dumps(like).encode()
    url = f"{beta.url}/inbox"
    status, payload, _ = await post(url, body, sign(alpha, alice, url, body))
    assert (status, "Like" in payload["message"]) == (403, True)
    assert await inbox_rows(beta) == 0


async def test_inbox__peer_create_of_an_object_on_another_origin_is_refused(
        strangers: Any) -> None:
    # Given alpha is beta's peer; relays travel as Announce, never as a Create
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    create = await create_activity(alpha, alice)
    create["object"]["id"] = "http://127.0.0.1:9/listings/elsewhere"
    body = json.dumps(create).encode()
    url = f"{beta.url}/inbox"
    status, payload, _ = await post(url, body, sign(alpha, alice, url, body))
    assert (status, payload["error"]) == (403, "forbidden")
    assert await inbox_rows(beta) == 0


async def test_inbox__peer_delete_of_our_own_listing_is_refused_and_it_stays(
        strangers: Any) -> None:
    # Given beta's own listing, and alpha a peer
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    bob = await beta.member("bob")
    ours = await beta.publish(bob)
    object_id = json.loads(ours.row.signed_object)["id"]
    delete = activity("Delete", activity_id=f"{_actor(alpha, alice)}/d/1",
                      actor=_actor(alpha, alice), obj=object_id)
    body = json.dumps(delete).encode()
    url = f"{beta.url}/inbox"
    # When alpha deletes it, Then 403, nothing stored, the listing is untouched
    assert (await post(url, body, sign(alpha, alice, url, body)))[0] == 403
    assert await inbox_rows(beta) == 0
    assert await beta.count("SELECT count(*) FROM listings WHERE status = 'active'") == 1


async def test_inbox__accept_of_a_follow_we_never_sent_is_refused_at_the_door(
        strangers: Any) -> None:
    alpha, beta, alice = strangers
    await follows(beta, alpha)  # a peer row, but beta's Follow id is unknown to alpha
    accept = activity("Accept", activity_id=f"{alpha.group}/accept/1", actor=alpha.group,
                      obj={"type": "Follow", "id": f"{beta.group}/activities/follow-forged"})
    body = json.dumps(accept).encode()
    url = f"{beta.url}/inbox"
    status, payload, _ = await post(url, body, sign(alpha, alice, url, body))
    assert (status, payload["error"]) == (403, "forbidden")
    peer = await fq.get_peer(beta.ctx.store.reader, alpha.url)
    assert peer is not None
    assert peer["out_state"] == "peered"


async def test_inbox__undo_of_another_actors_follow_passes_the_door_but_the_worker_refuses(
        strangers: Any) -> None:
    # Given alice (alpha) follows beta; mallory, on the same origin, knows her follow id
    alpha, beta, alice = strangers
    mallory = await alpha.member("mallory")
    url = f"{beta.url}/inbox"
    follow_id = f"{_actor(alpha, alice)}/follows/1"
    follow = json.dumps(follow_activity(follow_id, _actor(alpha, alice), beta.group)).encode()
    assert (await post(url, follow, sign(alpha, alice, url, follow)))[0] == 202
    await beta.workers.inbox.step()
    # When mallory sends Undo of that id (on her own origin: the door cannot tell whose it is)
    undo = json.dumps(activity("Undo", activity_id=f"{_actor(alpha, mallory)}/undo/1",
                               actor=_actor(alpha, mallory), obj=follow_id)).encode()
    assert (await post(url, undo, sign(alpha, mallory, url, undo)))[0] == 202
    await beta.workers.inbox.step()
    # Then the worker, which holds the follow rows, refuses it: alice still follows
    assert await beta.count("SELECT count(*) FROM followers WHERE follow_id = ?", follow_id) == 1
    async with beta.ctx.store.reader.execute(
            "SELECT outcome FROM inbox_activities WHERE type = 'Undo'") as cursor:
        assert (await cursor.fetchone())[0] == "ignored: no such follow"
    # And an Undo embedding alice's Follow, sent by mallory, is refused at the door
    embedded = json.dumps(activity(
        "Undo", activity_id=f"{_actor(alpha, mallory)}/undo/2", actor=_actor(alpha, mallory),
        obj={"id": follow_id, "type": "Follow", "actor": _actor(alpha, alice)})).encode()
    assert (await post(url, embedded, sign(alpha, mallory, url, embedded)))[0] == 403


async def test_inbox__worker_refuses_content_from_an_origin_no_longer_a_peer(
        strangers: Any) -> None:
    # Given a Create stored while alpha was a peer
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    assert (await post(url, body, sign(alpha, alice, url, body)))[0] == 202
    # When beta stops following alpha before the worker runs
    async with beta.ctx.store.transaction() as tx:
        await tx.execute("DELETE FROM peers")
    await beta.workers.inbox.step()
    # Then the worker refuses it and no listing is stored
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 0
    async with beta.ctx.store.reader.execute("SELECT outcome FROM inbox_activities") as cursor:
        assert (await cursor.fetchone())[0].startswith("refused:")


# --- what the door judges on the request itself --------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "application/json",
                                          "application/x-www-form-urlencoded"])
async def test_inbox__body_that_is_not_activitypub_json_gets_415(
        strangers: Any, content_type: str) -> None:
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, body)
    headers["Content-Type"] = content_type
    assert (await post(url, body, headers))[0] == 415
    assert await inbox_rows(beta) == 0


async def test_inbox__ld_json_with_the_activitystreams_profile_is_accepted(
        strangers: Any) -> None:
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    body = json.dumps(await create_activity(alpha, alice)).encode()
    url = f"{beta.url}/inbox"
    headers = sign(alpha, alice, url, body)
    headers["Content-Type"] = ('application/ld+json; '
                               'profile="https://www.w3.org/ns/activitystreams"')
    assert (await post(url, body, headers))[0] == 202


async def test_inbox__json_with_a_duplicate_key_is_refused(strangers: Any) -> None:
    # Given a signed Follow whose "object" appears twice (parsers disagree on which wins)
    alpha, beta, alice = strangers
    actor = _actor(alpha, alice)
    body = (f'{{"id": "{actor}/f/1", "type": "Follow", "actor": "{actor}",'
            f' "object": "{beta.group}", "object": "{beta.url}/users/bob"}}').encode()
    url = f"{beta.url}/inbox"
    status, payload, _ = await post(url, body, sign(alpha, alice, url, body))
    assert status == 400
    assert "duplicate key" in payload["message"]
    assert await inbox_rows(beta) == 0


async def test_inbox__rfc9421_signature_without_created_is_refused_before_any_key_fetch(
        strangers: Any, decoy: Decoy) -> None:
    _, beta, _ = strangers
    actor = f"{decoy.url}/users/x"
    body = json.dumps(follow_activity(f"{actor}/f/1", actor, beta.group)).encode()
    url = f"{beta.url}/inbox"
    headers = stranger_headers(beta, url, body, f"{actor}#key")
    stamp = headers["Signature-Input"].split(";created=")[1].split(";")[0]
    headers["Signature-Input"] = headers["Signature-Input"].replace(f";created={stamp}", "")
    status, payload, _ = await post(url, body, headers)
    assert status == 401
    assert "created" in payload["message"]
    assert decoy.hits == []


async def test_inbox__key_on_another_origin_than_the_actor_is_never_fetched(
        strangers: Any, decoy: Decoy) -> None:
    # Given a Follow by alice on alpha whose keyId points at the decoy
    alpha, beta, alice = strangers
    actor = _actor(alpha, alice)
    body = json.dumps(follow_activity(f"{actor}/f/1", actor, beta.group)).encode()
    url = f"{beta.url}/inbox"
    status, _, _ = await post(url, body, stranger_headers(beta, url, body,
                                                         f"{decoy.url}/keys/1"))
    # Then 401, and the node never contacted the decoy
    assert status == 401
    assert decoy.hits == []


# --- SSRF: what the node fetches for others -------------------------------------------------


@pytest.mark.parametrize("answer", [302, 404, "closed port"])
async def test_inbox__key_fetch_errors_are_logged_never_echoed_to_the_requester(
        strangers: Any, decoy: Decoy, answer: Any, caplog: pytest.LogCaptureFixture) -> None:
    # Given a stranger whose actor lives on the decoy (answering 302 or 404) or a closed port
    _, beta, _ = strangers
    origin = "http://127.0.0.1:1" if answer == "closed port" else decoy.url
    if answer != "closed port":
        decoy.status = answer
    actor = f"{origin}/users/x"
    body = json.dumps(follow_activity(f"{actor}/f/1", actor, beta.group)).encode()
    url = f"{beta.url}/inbox"
    # When its Follow arrives (the policy admits Follows, so the key is fetched)
    with caplog.at_level(logging.WARNING, logger="meshnode.federation.directory"):
        status, payload, _ = await post(url, body, stranger_headers(beta, url, body,
                                                                    f"{actor}#key"))
    # Then the answer says nothing about what happened; the log does
    assert status == 401
    text = json.dumps(payload)
    for leak in ("302", "404", "answered", "Connect", "port", "refused", "127.0.0.1:1"):
        assert leak not in text, (leak, text)
    assert payload["message"].startswith("cannot verify the signing key")
    assert any("cannot fetch key" in record.getMessage() for record in caplog.records)


async def test_inbox__key_fetches_per_origin_are_rate_limited(
        make_node: NodeFactory, decoy: Decoy) -> None:
    # Given beta allows 2 key fetches per origin per hour
    beta = await make_node("beta", inbox=InboxLimits(key_fetches_per_hour=2))
    url = f"{beta.url}/inbox"
    statuses = []
    # When a stranger on the decoy sends 4 Follows, each signed by a new key
    for n in range(4):
        actor = f"{decoy.url}/users/u{n}"
        body = json.dumps(follow_activity(f"{actor}/f/1", actor, beta.group)).encode()
        status, _, retry_after = await post(url, body, stranger_headers(
            beta, url, body, f"{actor}#key"))
        statuses.append((status, retry_after is not None))
    # Then the first two are fetched (and fail), the rest get 429 with Retry-After unfetched
    assert statuses == [(401, False), (401, False), (429, True), (429, True)]
    assert len(decoy.hits) == 2


async def test_inbox__bad_signatures_refetch_a_key_at_most_once_a_minute(
        strangers: Any) -> None:
    # Given alpha is a peer whose key beta already holds
    alpha, beta, alice = strangers
    await follows(beta, alpha)
    url = f"{beta.url}/inbox"
    body = json.dumps(await create_activity(alpha, alice)).encode()
    assert (await post(url, body, sign(alpha, alice, url, body)))[0] == 202
    # (a counting spy around the real fetch: the fetch itself still goes to alpha)
    fetched: list[str] = []
    real_fetch = beta.fed.directory.fetch_actor

    async def counting_fetch(actor_id: str) -> Any:
        fetched.append(actor_id)
        return await real_fetch(actor_id)

    beta.fed.directory.fetch_actor = counting_fetch  # type: ignore[method-assign]
    # When five requests with a bad signature arrive within a minute
    for _ in range(5):
        headers = sign(alpha, alice, url, body)
        headers["Signature"] = "sig1=:" + "A" * 86 + "==:"
        assert (await post(url, body, headers))[0] == 401
    # Then the key was re-fetched once; a minute later, once more
    assert len(fetched) == 1
    beta.clock.advance(seconds=61)
    headers = sign(alpha, alice, url, body)
    headers["Signature"] = "sig1=:" + "A" * 86 + "==:"
    assert (await post(url, body, headers))[0] == 401
    assert len(fetched) == 2


# --- quotas and retention -------------------------------------------------------------------


async def _follow_body(alpha: Node, member: Any, target: str, n: int) -> bytes:
    actor = _actor(alpha, member)
    return json.dumps(follow_activity(f"{actor}/f/{n}", actor, target)).encode()


async def test_inbox__stranger_beyond_its_hourly_rows_gets_429_even_after_a_restart(
        make_node: NodeFactory) -> None:
    # Given beta stores at most 2 activities an hour from a stranger origin
    alpha = await make_node("alpha")
    beta = await make_node("beta", inbox=InboxLimits(stranger_rows_per_hour=2))
    alice = await alpha.member("alice")
    url = f"{beta.url}/inbox"
    bodies = [await _follow_body(alpha, alice, beta.group, n) for n in range(4)]
    # When alpha's member sends three Follows
    results = [await post(url, body, sign(alpha, alice, url, body)) for body in bodies[:3]]
    # Then the third gets 429 with Retry-After and is not stored
    assert [status for status, _, _ in results] == [202, 202, 429]
    assert results[2][1]["error"] == "rate_limited"
    assert 3000 < int(results[2][2] or 0) <= 3601
    assert await inbox_rows(beta) == 2
    # And a restart does not reset the quota (it is read from the inbox table)
    await beta.stop()
    await beta.start()
    assert (await post(url, bodies[3], sign(alpha, alice, url, bodies[3])))[0] == 429
    # And an hour later the origin may post again
    beta.clock.advance(hours=1, seconds=1)
    assert (await post(url, bodies[3], sign(alpha, alice, url, bodies[3])))[0] == 202


async def test_inbox__concurrent_requests_cannot_all_pass_one_quota_check(
        make_node: NodeFactory) -> None:
    # Given beta stores at most 4 activities an hour from a stranger origin
    alpha = await make_node("alpha")
    beta = await make_node("beta", inbox=InboxLimits(stranger_rows_per_hour=4))
    alice = await alpha.member("alice")
    url = f"{beta.url}/inbox"
    bodies = [await _follow_body(alpha, alice, beta.group, n) for n in range(8)]
    # When alpha sends eight at once (each waits for alice's key while the others arrive)
    results = await asyncio.gather(*(post(url, body, sign(alpha, alice, url, body))
                                     for body in bodies))
    # Then four are stored and the other four get 429, not all eight stored
    assert sorted(status for status, _, _ in results) == [202] * 4 + [429] * 4
    assert await inbox_rows(beta) == 4


async def test_inbox__peer_beyond_its_hourly_bytes_gets_429(make_node: NodeFactory) -> None:
    # Given beta stores at most 6 KB an hour from a peer
    alpha = await make_node("alpha")
    beta = await make_node("beta", inbox=InboxLimits(peer_bytes_per_hour=6000))
    alice = await alpha.member("alice")
    await follows(beta, alpha)
    url = f"{beta.url}/inbox"
    statuses = []
    for n in range(4):
        create = await create_activity(alpha, alice)
        create["id"] += f"-{n}"
        body = json.dumps(create).encode()
        statuses.append((await post(url, body, sign(alpha, alice, url, body)))[0])
    # Then once the bytes are used, 429; what was stored stays within the quota
    assert statuses[0] == 202
    assert statuses[-1] == 429
    assert await beta.count("SELECT coalesce(sum(size), 0) FROM inbox_activities") <= 6000


async def test_inbox_worker__prune_deletes_processed_rows_past_retention_only(
        strangers: Any) -> None:
    # Given three activities: two processed (one 8 days ago, one 6 days ago), one waiting
    alpha, beta, alice = strangers
    url = f"{beta.url}/inbox"
    for n in range(2):
        body = await _follow_body(alpha, alice, beta.group, n)
        assert (await post(url, body, sign(alpha, alice, url, body)))[0] == 202
        await beta.workers.inbox.step()
        beta.clock.advance(days=2)
    beta.clock.advance(days=4)
    body = await _follow_body(alpha, alice, beta.group, 9)
    assert (await post(url, body, sign(alpha, alice, url, body)))[0] == 202
    # When the worker's prune step runs with the default retention (7 days)
    removed = await beta.workers.inbox.prune()
    # Then only the processed row older than 7 days is gone
    assert removed == 1
    assert await inbox_rows(beta) == 2
    assert await beta.count("SELECT count(*) FROM inbox_activities"
                            " WHERE processed_at IS NULL") == 1
    assert await beta.workers.inbox.prune() == 0


async def test_inbox__key_fetches_for_all_strangers_together_are_capped(
        make_node: NodeFactory) -> None:
    # Given beta allows 5 key fetches per origin but 3 for all non-peer origins together
    beta = await make_node("beta", inbox=InboxLimits(key_fetches_per_hour=5,
                                                     stranger_key_fetches_per_hour=3))
    url = f"{beta.url}/inbox"
    statuses = []
    # When strangers on five different ports (five origins: a port scan) each send a Follow
    for _ in range(5):
        origin = f"http://127.0.0.1:{free_port()}"
        actor = f"{origin}/users/u"
        body = json.dumps(follow_activity(f"{actor}/f/1", actor, beta.group)).encode()
        status, _, retry_after = await post(url, body, stranger_headers(
            beta, url, body, f"{actor}#key"))
        statuses.append((status, retry_after is not None))
    # Then three keys are fetched (and fail), the other two get 429 with Retry-After
    assert statuses == [(401, False)] * 3 + [(429, True)] * 2


def test_stranger_fetch_budget__an_origin_over_its_own_budget_cannot_drain_the_shared_one(
) -> None:
    budget = StrangerFetchBudget(per_hour=2, total_per_hour=4, burst=2)
    # Given one origin spends its own budget, then keeps asking
    spent = [budget.take("http://a", now=0.0) for _ in range(10)]
    assert [wait == 0 for wait in spent] == [True, True] + [False] * 8
    # Then the shared budget still has room for other origins (4 total, 2 spent)
    assert budget.take("http://b", now=0.0) == 0
    assert budget.take("http://c", now=0.0) == 0
    assert budget.take("http://d", now=0.0) > 0
