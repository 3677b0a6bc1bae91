"""Messages between members of different nodes: signed direct Notes, two real nodes each.

alpha and beta run on 127.0.0.1 ports; workers are stepped by hand (``settle``). Hostile
Notes are signed for real by alpha's member and posted to beta's inbox over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from meshnode.config import LimitsConfig
from meshnode.federation import messaging, peering
from meshnode.protocol.direct_messages import build_direct_note, create_activity
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.vocab import PUBLIC
from meshnode.services import direct_messages as direct
from meshnode.services import members
from meshnode.services.signing import sign_as_member
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_inbox_hostile import post, sign

Pair = tuple[Node, Node, MemberRow, MemberRow, str, str]


async def _token(node: Node, username: str) -> dict[str, str]:
    token = await members.create_token(node.ctx, username)
    return {"Authorization": f"Bearer {token.secret}"}


@pytest.fixture
async def pair(make_node: NodeFactory) -> Pair:
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    alice = await alpha.member("alice")
    bob = await beta.member("bob")
    host_a = alpha.url.removeprefix("http://")
    host_b = beta.url.removeprefix("http://")
    return alpha, beta, alice, bob, f"alice@{host_a}", f"bob@{host_b}"


async def _api(node: Node, method: str, path: str, headers: dict[str, str],
               body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, node.url + path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def _rows(node: Node) -> int:
    return await node.count("SELECT count(*) FROM direct_messages")


async def _outcome(node: Node) -> str:
    async with node.ctx.store.reader.execute(
            "SELECT outcome FROM inbox_activities ORDER BY seq DESC LIMIT 1") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


def _note(alpha: Node, alice: MemberRow, recipient: str, **changes: Any) -> dict[str, Any]:
    actor = f"{alpha.url}/users/{alice.username}"
    note = build_direct_note(note_id=f"{actor}/notes/n1", author=actor, recipient=recipient,
                             text="Bonjour", published="2026-11-26T10:00:00Z")
    note.update(changes)
    return create_activity(sign_as_member(alpha.ctx, alice, note, alpha.clock()))


async def _deliver(alpha: Node, beta: Node, alice: MemberRow, act: dict[str, Any]) -> int:
    body = json.dumps(act).encode()
    url = f"{beta.url}/inbox"
    status = await post(url, body, sign(alpha, alice, url, body))
    await settle(alpha, beta)
    return status


async def test_messages_api__member_writes_to_a_member_of_another_node_and_gets_a_reply(
    pair: Pair,
) -> None:
    # Given alice@alpha and bob@beta, whose nodes are not even peers
    alpha, beta, _alice, _bob, alice_handle, bob_handle = pair
    alice_h, bob_h = await _token(alpha, "alice"), await _token(beta, "bob")
    # When alice writes to bob by his handle
    status, sent = await _api(alpha, "POST", "/api/v1/messages", alice_h,
                              {"to": bob_handle, "text": "Bonjour Bob <b>!</b>"})
    assert status == 201, sent
    assert (sent["from"], sent["to"], sent["remote"]) == ("alice", bob_handle, True)
    assert sent["delivery"] == "pending"
    await settle(alpha, beta)
    # Then bob sees it, from alice's handle, as plain text, unread
    status, got = await _api(beta, "GET", f"/api/v1/messages?with={alice_handle}", bob_h)
    assert status == 200
    assert [(m["from"], m["text"]) for m in got["items"]] == [
        (alice_handle, "Bonjour Bob <b>!</b>")]
    # and was notified, with a link to the conversation
    _, notes = await _api(beta, "GET", "/api/v1/notifications", bob_h)
    assert [(n["type"], n["url"]) for n in notes["items"]] == [
        ("message", f"{beta.url}/messages/with/{alice_handle}")]
    # And when bob replies, the reply threads to alice's message and reaches her
    status, reply = await _api(beta, "POST", "/api/v1/messages", bob_h,
                               {"to": alice_handle, "text": "Salut Alice"})
    assert status == 201
    assert reply["in_reply_to"] == sent["object"]
    await settle(alpha, beta)
    _, listing = await _api(alpha, "GET", "/api/v1/messages", alice_h)
    assert listing["items"][0]["with"] == bob_handle
    assert listing["items"][0]["unread"] == 1
    status, thread = await _api(alpha, "GET", f"/api/v1/messages?with={bob_handle}", alice_h)
    assert [m["text"] for m in thread["items"]] == ["Bonjour Bob <b>!</b>", "Salut Alice"]
    assert [m["delivery"] for m in thread["items"]] == ["done", None]
    _, listing = await _api(alpha, "GET", "/api/v1/messages", alice_h)
    assert listing["items"][0]["unread"] == 0  # reading the conversation marked it read


async def test_messages_api__the_note_is_direct_signed_and_queued_with_the_message(
    pair: Pair,
) -> None:
    # Given alice writes to bob (beta is not run yet)
    alpha, _beta, _alice, _bob, _ah, bob_handle = pair
    status, _ = await _api(alpha, "POST", "/api/v1/messages", await _token(alpha, "alice"),
                           {"to": bob_handle, "text": "Bonjour"})
    assert status == 201
    # Then the queued Create is addressed only to bob, never public, with alice's proof
    async with alpha.ctx.store.reader.execute(
            "SELECT body, public FROM outbox_activities WHERE type = 'Create'") as cursor:
        rows = await cursor.fetchall()
    assert len(rows) == 1
    assert rows[0][1] == 0
    act = json.loads(rows[0][0])
    bob_actor = f"{_beta.url}/users/bob"
    assert act["to"] == [bob_actor]
    assert act["object"]["to"] == [bob_actor]
    assert "cc" not in act
    assert "cc" not in act["object"]
    assert act["object"]["proof"]["verificationMethod"].startswith(f"{alpha.url}/users/alice")
    assert await alpha.count("SELECT count(*) FROM deliveries") == 1


async def test_send_remote__message_about_a_federated_listing_reaches_its_author(
    make_node: NodeFactory,
) -> None:
    # Given alpha and beta peered, and alice's ride on alpha shown on beta
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    await peer(alpha, beta)
    alice = await alpha.member("alice")
    bob = await beta.member("bob")
    view = await alpha.publish(alice)
    await settle(alpha, beta)
    remote = await beta.remote(view.row.object_id)
    assert remote is not None
    # When bob writes to the listing's author about it
    to = await messaging.member_by_actor(beta.fed, remote.author_uri)
    await direct.send_remote(beta.ctx, bob, to=to, body="Une place ?", listing_id=remote.id)
    await settle(alpha, beta)
    # Then alice gets it, about her own listing
    found = await direct.conversations(alpha.ctx, alice)
    assert [(c.other, c.title, c.unread, c.remote) for c in found] == [
        (f"bob@{beta.url.removeprefix('http://')}", view.row.title, 1, True)]


async def test_inbox__direct_note_with_public_addressing_is_not_stored(pair: Pair) -> None:
    alpha, beta, alice, _bob, _ah, _bh = pair
    bob_actor = f"{beta.url}/users/bob"
    act = _note(alpha, alice, bob_actor, cc=[PUBLIC])
    assert await _deliver(alpha, beta, alice, act) == 202
    assert (await _outcome(beta)).startswith("rejected: a direct message must not be public")
    assert await _rows(beta) == 0


async def test_inbox__direct_note_to_a_member_that_does_not_exist_is_not_stored(
    pair: Pair,
) -> None:
    alpha, beta, alice, _bob, _ah, _bh = pair
    act = _note(alpha, alice, f"{beta.url}/users/nobody")
    await _deliver(alpha, beta, alice, act)
    assert await _outcome(beta) == "rejected: the recipient is not a member here"
    assert await _rows(beta) == 0


async def test_inbox__direct_note_with_forged_proof_is_not_stored(pair: Pair) -> None:
    alpha, beta, alice, _bob, _ah, _bh = pair
    act = _note(alpha, alice, f"{beta.url}/users/bob")
    act["object"]["content"] = "Envoyez-moi 500"  # altered after signing
    await _deliver(alpha, beta, alice, act)
    assert (await _outcome(beta)).startswith("rejected:")
    assert await _rows(beta) == 0


async def test_inbox__direct_note_html_is_reduced_to_plain_text(pair: Pair) -> None:
    alpha, beta, alice, bob, _ah, _bh = pair
    html = '<p>Salut <script>alert(1)</script><a href="javascript:x">lien</a></p>'
    act = _note(alpha, alice, f"{beta.url}/users/bob", content=html, mediaType="text/html")
    await _deliver(alpha, beta, alice, act)
    assert await _outcome(beta) == "stored"
    [row] = await direct.conversations(beta.ctx, bob)
    assert "<" not in row.body
    assert "script" not in row.body
    assert "lien" in row.body


async def test_inbox__direct_note_longer_than_the_cap_is_not_stored(pair: Pair) -> None:
    alpha, beta, alice, _bob, _ah, _bh = pair
    act = _note(alpha, alice, f"{beta.url}/users/bob", content="x" * 2001)
    await _deliver(alpha, beta, alice, act)
    assert (await _outcome(beta)).startswith("rejected: the message text must have")
    assert await _rows(beta) == 0


async def test_inbox__direct_note_attributed_to_someone_else_is_not_stored(pair: Pair) -> None:
    alpha, beta, alice, _bob, _ah, _bh = pair
    act = _note(alpha, alice, f"{beta.url}/users/bob",
                attributedTo=f"{alpha.url}/users/mallory")
    act["actor"] = f"{alpha.url}/users/alice"  # alice relays a Note claiming to be mallory's
    assert await _deliver(alpha, beta, alice, act) == 202
    assert (await _outcome(beta)).startswith("rejected:")
    assert await _rows(beta) == 0


async def test_inbox__remote_sender_over_the_hourly_cap_is_refused(
    make_node: NodeFactory,
) -> None:
    # Given beta lets a remote member send 2 messages per hour to one member
    alpha = await make_node("alpha")
    beta = await make_node("beta", limits=LimitsConfig(remote_messages_per_hour=2))
    alice = await alpha.member("alice")
    await beta.member("bob")
    bob_actor = f"{beta.url}/users/bob"
    # When alice sends 3
    for n in range(3):
        act = _note(alpha, alice, bob_actor, id=f"{alpha.url}/users/alice/notes/{n}")
        act["id"] = f"{alpha.url}/users/alice/notes/{n}/create"
        await _deliver(alpha, beta, alice, act)
    # Then the third is refused and only 2 are stored
    assert await _outcome(beta) == "refused: too many messages from this member this hour"
    assert await _rows(beta) == 2


async def test_block__member_who_blocked_a_remote_member_receives_nothing_and_cannot_write(
    pair: Pair,
) -> None:
    alpha, beta, _alice, bob, alice_handle, bob_handle = pair
    alice_h, bob_h = await _token(alpha, "alice"), await _token(beta, "bob")
    await _api(alpha, "POST", "/api/v1/messages", alice_h, {"to": bob_handle, "text": "1"})
    await settle(alpha, beta)
    # When bob blocks alice through the API
    status, blocked = await _api(beta, "POST", "/api/v1/messages/block", bob_h,
                                 {"with": alice_handle})
    assert (status, blocked["blocked"]) == (200, True)
    assert await direct.is_blocked(beta.ctx, bob, f"{alpha.url}/users/alice")
    await _api(alpha, "POST", "/api/v1/messages", alice_h, {"to": bob_handle, "text": "2"})
    await settle(alpha, beta)
    # Then her second message is refused at bob's node, and bob cannot write to her
    assert await _outcome(beta) == "refused: blocked by the recipient"
    assert await _rows(beta) == 1
    status, body = await _api(beta, "POST", "/api/v1/messages", bob_h,
                              {"to": alice_handle, "text": "3"})
    assert status == 409, body
    assert await _rows(beta) == 1
    # And after unblocking, messages flow again
    await _api(beta, "POST", "/api/v1/messages/unblock", bob_h, {"with": alice_handle})
    await _api(alpha, "POST", "/api/v1/messages", alice_h, {"to": bob_handle, "text": "4"})
    await settle(alpha, beta)
    assert await _outcome(beta) == "stored"


async def test_block__a_blocked_node_cannot_message_and_cannot_be_messaged(pair: Pair) -> None:
    alpha, beta, alice, _bob, alice_handle, _bh = pair
    await peering.block_peer(beta.ctx, alpha.url)
    # A Note from the blocked node is refused at the door
    act = _note(alpha, alice, f"{beta.url}/users/bob")
    assert await _deliver(alpha, beta, alice, act) == 403
    # and our member cannot write there either
    status, _ = await _api(beta, "POST", "/api/v1/messages", await _token(beta, "bob"),
                           {"to": alice_handle, "text": "Bonjour"})
    assert status == 403
    assert await _rows(beta) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "", "text": "x"}, "to"),
    ({"to": "bob@", "text": "x"}, "to"),
    ({"to": 7, "text": "x"}, "to"),
    ({"to": "someone@127.0.0.1:1", "text": ""}, "text"),
    ({"to": "someone@127.0.0.1:1", "text": "x" * 2001}, "text"),
    ({"to": "someone@127.0.0.1:1", "text": ["x"]}, "text"),
])
async def test_messages_api__bad_input_is_a_clear_422_and_stores_nothing(
    pair: Pair, body: dict[str, Any], field: str,
) -> None:
    alpha, *_ = pair
    status, answer = await _api(alpha, "POST", "/api/v1/messages",
                                await _token(alpha, "alice"), body)
    assert status == 422, answer
    assert field in answer["fields"]
    assert await _rows(alpha) == 0
    assert await alpha.count("SELECT count(*) FROM outbox_activities") == 0


async def test_messages_api__own_host_given_as_name_at_host_is_a_local_message(pair: Pair) -> None:
    # Given carol and dora on alpha, and dora's listing
    alpha, *_ = pair
    await alpha.member("carol")
    dora = await alpha.member("dora")
    view = await alpha.publish(dora)
    host = alpha.url.removeprefix("http://")
    # When dora writes to carol@<alpha's own host>
    status, sent = await _api(alpha, "POST", "/api/v1/messages", await _token(alpha, "dora"),
                              {"to": f"carol@{host}", "text": "Salut", "listing": view.row.id})
    # Then it is an ordinary local message: nothing federated, nothing queued
    assert status == 201, sent
    assert (sent["remote"], sent["to"]) == (False, "carol")
    assert await _rows(alpha) == 0
    assert await alpha.count("SELECT count(*) FROM outbox_activities WHERE type = 'Create'"
                             " AND public = 0") == 0


async def test_send_remote__an_actor_of_our_own_node_is_refused(pair: Pair) -> None:
    alpha, _beta, alice, *_ = pair
    ours = direct.RemoteMember(actor=f"{alpha.url}/users/alice", handle="alice@x",
                               inbox=f"{alpha.url}/users/alice/inbox")
    with pytest.raises(ValidationError):
        await direct.send_remote(alpha.ctx, alice, to=ours, body="moi-même")
    assert await _rows(alpha) == 0


async def test_messages_api__member_over_the_hourly_allowance_gets_429_and_nothing_leaves(
    make_node: NodeFactory,
) -> None:
    # Given alice may send 1 message per hour
    alpha = await make_node("alpha", limits=LimitsConfig(messages_per_hour=1))
    beta = await make_node("beta")
    await alpha.member("alice")
    await beta.member("bob")
    headers = await _token(alpha, "alice")
    to = f"bob@{beta.url.removeprefix('http://')}"
    first, _ = await _api(alpha, "POST", "/api/v1/messages", headers, {"to": to, "text": "1"})
    assert first == 201
    # When she sends a second one
    status, body = await _api(alpha, "POST", "/api/v1/messages", headers, {"to": to, "text": "2"})
    # Then it is refused and only the first was stored and queued
    assert status == 429, body
    assert await _rows(alpha) == 1
    assert await alpha.count("SELECT count(*) FROM outbox_activities WHERE public = 0") == 1


async def test_messages_api__local_conversation_by_username_is_listed_and_marked_read(
    pair: Pair,
) -> None:
    # Given carol wrote to dora about dora's listing
    alpha, *_ = pair
    await alpha.member("carol")
    dora = await alpha.member("dora")
    view = await alpha.publish(dora)
    carol_h, dora_h = await _token(alpha, "carol"), await _token(alpha, "dora")
    status, _ = await _api(alpha, "POST", "/api/v1/messages", carol_h,
                           {"to": "dora", "text": "Bonjour", "listing": view.row.id})
    assert status == 201
    # When dora reads the conversation with carol
    _, first = await _api(alpha, "GET", "/api/v1/messages?with=carol", dora_h)
    _, again = await _api(alpha, "GET", "/api/v1/messages?with=carol", dora_h)
    # Then she got it unread once, read after
    assert [(m["from"], m["text"], m["read"]) for m in first["items"]] == [
        ("carol", "Bonjour", False)]
    assert [m["read"] for m in again["items"]] == [True]


async def test_messages_api__message_refused_by_the_other_node_shows_as_not_delivered(
    pair: Pair,
) -> None:
    # Given bob@beta wrote to alice@alpha once, then alpha blocked beta
    alpha, beta, _alice, _bob, alice_handle, _bh = pair
    bob_h = await _token(beta, "bob")
    await _api(beta, "POST", "/api/v1/messages", bob_h, {"to": alice_handle, "text": "1"})
    await settle(alpha, beta)
    await peering.block_peer(alpha.ctx, beta.url)
    # When bob writes again
    await _api(beta, "POST", "/api/v1/messages", bob_h, {"to": alice_handle, "text": "2"})
    await settle(alpha, beta)
    # Then his first message shows delivered, the second not delivered (alpha answered 403)
    _, thread = await _api(beta, "GET", f"/api/v1/messages?with={alice_handle}", bob_h)
    assert [(m["text"], m["delivery"]) for m in thread["items"]] == [("1", "done"),
                                                                     ("2", "failed")]
    assert await _rows(alpha) == 1
