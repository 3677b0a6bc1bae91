"""Account deletion (RGPD) across three real nodes: a — b — c, c hears a through b's relay.

alice on a has two listings (relayed to c) and wrote to bob on b. After she deletes her
account, b and c no longer show her listings, b no longer holds her message, and a's ledger
still sums to zero with her account under a pseudonym.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import aiohttp

from meshnode.federation import messaging
from meshnode.protocol.account_deletion import note_delete
from meshnode.services import account_deletion, ledger, member_export, members
from meshnode.services import direct_messages as direct
from meshnode.services.ledger.admin import verify_journal
from tests.conftest import PASSWORD
from tests.federation.conftest import NodeFactory, peer, settle
from tests.federation.test_inbox_hostile import post, sign


async def _api(url: str, method: str, path: str, token: str, body: Any = None
               ) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, url + path, json=body,
            headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json()


async def test_account_deletion__three_nodes_drop_the_listings_and_the_message(
    make_node: NodeFactory,
) -> None:
    # Given a — b — c peered in a chain, alice on a with a password, bob on b, carole on a
    a, b, c = [await make_node(h) for h in ("alpha", "beta", "gamma")]
    await peer(a, b)
    await peer(b, c, a)
    alice = await members.add_member(a.ctx, username="alice", password=PASSWORD)
    carole = await a.member("carole")
    bob = await b.member("bob")
    # And alice's two listings reached b and, relayed by b, c
    views = [await a.publish(alice), await a.publish(alice, title="Retour de Lyon")]
    await settle(a, b, c)
    for node in (b, c):
        for view in views:
            row = await node.remote(view.row.object_id)
            assert row is not None
            assert row.status == "active"
    # And alice wrote to bob on b, and paid carole on a
    bob_handle = f"bob@{b.url.removeprefix('http://')}"
    to_bob = await messaging.resolve_member(a.fed, bob_handle)
    await direct.send_remote(a.ctx, alice, to=to_bob, body="Bonjour Bob")
    await ledger.pay(a.ctx, alice, payee="carole", amount="3", memo="merci")
    await settle(a, b, c)
    assert await b.count("SELECT count(*) FROM direct_messages WHERE member_id = ?",
                         bob.id) == 1
    # And her export holds the message to bob and the payment, with its signed document
    buffer = io.BytesIO()
    await member_export.export_member(a.ctx, alice, buffer)
    archive = zipfile.ZipFile(buffer)
    assert b"Bonjour Bob" in archive.read("messages_remote.jsonl")
    assert b"merci" in archive.read("ledger_entries.jsonl")
    # When alice deletes her account over the API and the nodes settle
    token = (await members.create_token(a.ctx, "alice")).secret
    status, body = await _api(a.url, "DELETE", "/api/v1/me", token,
                              {"password": PASSWORD, "confirm": "DELETE"})
    assert status == 202, body
    await settle(a, b, c)
    # Then b and c show neither listing: both are withdrawn there, search finds nothing
    for node in (b, c):
        for view in views:
            row = await node.remote(view.row.object_id)
            assert row is not None
            assert row.status == "withdrawn"
        assert await node.count("SELECT count(*) FROM listings WHERE status <> 'withdrawn'"
                                " AND author_uri LIKE ?", f"{a.url}/users/alice") == 0
    # And b no longer holds her message
    assert await b.count("SELECT count(*) FROM direct_messages") == 0
    # And on a: the deletion is done, the key is gone, the ledger sums to zero and verifies
    assert await a.count("SELECT count(*) FROM account_deletions WHERE state = 'done'") == 1
    row = await members.get_member(a.ctx, "alice")
    assert row.display_name.startswith("deleted-")
    assert row.ed25519_sealed == b""
    assert await a.count("SELECT sum(balance) FROM ledger_accounts") == 0
    verdict = await verify_journal(a.ctx)
    assert verdict.ok
    assert carole.id != alice.id
    assert await account_deletion.step(a.ctx) == 0  # nothing left to do


async def test_inbox__delete_of_a_message_by_another_member_of_its_node_is_ignored(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha's message to bob@beta, and carole, another member of alpha
    a, b = await make_node("alpha"), await make_node("beta")
    alice, carole = await a.member("alice"), await a.member("carole")
    bob = await b.member("bob")
    to_bob = await messaging.resolve_member(a.fed, f"bob@{b.url.removeprefix('http://')}")
    sent = await direct.send_remote(a.ctx, alice, to=to_bob, body="Bonjour Bob")
    await settle(a, b)
    assert await b.count("SELECT count(*) FROM direct_messages WHERE member_id = ?",
                         bob.id) == 1
    # When carole sends beta a signed Delete of alice's message
    url = f"{b.url}/inbox"
    forged = note_delete(sent.object_id, actor=f"{a.url}/users/carole",
                         recipient=to_bob.actor, published="2026-11-26T10:00:00Z")
    body = json.dumps(forged).encode()
    assert await post(url, body, sign(a, carole, url, body)) == 202
    await settle(a, b)
    # Then the message stays; and alice's own Delete removes it
    assert await b.count("SELECT count(*) FROM direct_messages") == 1
    genuine = note_delete(sent.object_id, actor=f"{a.url}/users/alice",
                          recipient=to_bob.actor, published="2026-11-26T10:00:01Z")
    body = json.dumps({**genuine, "id": f"{genuine['id']}-2"}).encode()
    assert await post(url, body, sign(a, alice, url, body)) == 202
    await settle(a, b)
    assert await b.count("SELECT count(*) FROM direct_messages") == 0
