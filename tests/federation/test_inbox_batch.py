"""The inbox worker processes a batch in one transaction: good listings stored (and relayed)
together, bad ones refused one by one, nothing lost.

Given real nodes on 127.0.0.1 (alpha publishes, beta receives, gamma follows beta), when
alpha's activities reach beta's inbox and beta's worker takes them as one batch, then the
outcome of each is what processing them one after another gives.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshnode.federation import ingest
from meshnode.protocol.activities import listing_activity, origin_of
from meshnode.services import listings
from meshnode.services.publishing import dumps
from meshnode.store import listings as listing_store
from meshnode.store import outbox
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_inbox_hostile import follows, post, sign

GOOD = 6


def _create(alpha: Node, alice: MemberRow, document: dict[str, Any], *, version: int = 1,
            kind: str = "Create") -> dict[str, Any]:
    return listing_activity(kind, document, actor=f"{alpha.url}/users/{alice.username}",
                            version=version, published="2026-11-26T10:00:00Z")


async def _send(alpha: Node, alice: MemberRow, beta: Node, act: dict[str, Any]) -> int:
    body = json.dumps(act).encode()
    url = f"{beta.url}/inbox"
    return await post(url, body, sign(alpha, alice, url, body))


@pytest.fixture
async def trio(make_node: NodeFactory) -> tuple[Node, Node, Node, MemberRow]:
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    gamma = await make_node("gamma")
    await peer(gamma, beta)  # gamma follows beta's Group: beta relays to gamma
    await follows(beta, alpha)
    return alpha, beta, gamma, await alpha.member("alice")


async def _outcomes(beta: Node) -> list[tuple[str, str | None, str | None]]:
    async with beta.ctx.store.reader.execute(
            "SELECT activity_id, processed_at, outcome FROM inbox_activities"
            " WHERE type IN ('Create', 'Update') ORDER BY seq") as cursor:
        return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]


async def test_inbox_batch__forged_proof_and_replays_are_refused_good_ones_all_stored(
        trio: tuple[Node, Node, Node, MemberRow]) -> None:
    alpha, beta, gamma, alice = trio
    # Given six good listings, one whose text was changed after alice signed it, the very
    # same Create delivered twice, and the first listing again under another activity id
    documents = [json.loads((await alpha.publish(alice, title=f"Trajet {n}")).row.signed_object)
                 for n in range(GOOD)]
    forged = json.loads((await alpha.publish(alice, title="Trajet honnête")).row.signed_object)
    forged["name"] = "Trajet falsifié"
    replayed_elsewhere = _create(alpha, alice, documents[0])
    replayed_elsewhere["id"] += "-again"
    sent = [_create(alpha, alice, documents[0]), _create(alpha, alice, documents[1]),
            _create(alpha, alice, forged), _create(alpha, alice, documents[1])]
    sent += [_create(alpha, alice, document) for document in documents[2:]]
    sent.append(replayed_elsewhere)
    # When they all reach beta's inbox (each accepted: 202) and beta's worker takes one batch
    assert [await _send(alpha, alice, beta, act) for act in sent] == [202] * len(sent)
    assert await beta.workers.inbox.step() == len(sent) - 1  # the exact replay: stored once
    # Then every good listing is stored once, with its proof check, and relayed to gamma
    stored = await beta.count("SELECT count(*) FROM listings WHERE is_local = 0")
    assert stored == GOOD
    assert await beta.count("SELECT count(DISTINCT object_id) FROM listings") == GOOD
    assert await beta.count("SELECT count(*) FROM listing_versions v JOIN listings l"
                            " ON l.id = v.listing_id WHERE l.is_local = 0 AND v.verified = 1"
                            " AND v.key_id LIKE ?", f"{alpha.url}/users/alice#%") == GOOD
    assert await beta.remote(forged["id"]) is None
    assert await beta.count("SELECT count(*) FROM listings_fts WHERE listings_fts MATCH"
                            " 'Trajet'") == GOOD
    assert await beta.count("SELECT count(*) FROM deliveries d JOIN outbox_activities o"
                            " ON o.seq = d.outbox_seq WHERE o.type = 'Announce'"
                            " AND d.inbox LIKE ?", f"{gamma.url}/%") == GOOD
    assert await beta.count("SELECT count(*) FROM deliveries WHERE inbox LIKE ?",
                            f"{alpha.url}/%") == 0  # never back to the author's node
    # And nothing is lost: each stored activity is processed, the bad ones say why
    outcomes = await _outcomes(beta)
    assert all(processed_at is not None for _, processed_at, _ in outcomes)
    by_id = [outcome for _, _, outcome in outcomes]
    assert by_id[2] is not None
    assert by_id[2].startswith("rejected:")
    assert by_id[-1] == ingest.IGNORED
    assert by_id.count(ingest.RELAYED) == GOOD


async def test_inbox_batch__create_then_update_of_one_listing_in_a_batch_applies_in_order(
        trio: tuple[Node, Node, Node, MemberRow]) -> None:
    alpha, beta, _, alice = trio
    # Given a listing and its edited version, sent back to back with another listing
    view = await alpha.publish(alice, title="Perceuse à prêter")
    first = json.loads(view.row.signed_object)
    edited = await listings.update_listing(alpha.ctx, alice, view.row.id,
                                           {"title": "Perceuse à prêter, avec mèches"})
    other = json.loads((await alpha.publish(alice, title="Échelle")).row.signed_object)
    sent = [_create(alpha, alice, first), _create(alpha, alice, other),
            _create(alpha, alice, json.loads(edited.row.signed_object), version=2,
                    kind="Update")]
    assert [await _send(alpha, alice, beta, act) for act in sent] == [202] * 3
    # When beta's worker takes them as one batch
    assert await beta.workers.inbox.step() == 3
    # Then the Update applies after the Create, as if processed one by one
    stored = await beta.remote(first["id"])
    assert stored is not None
    assert (stored.version, stored.title) == (2, "Perceuse à prêter, avec mèches")
    assert await beta.count("SELECT count(*) FROM listing_versions WHERE listing_id = ?",
                            stored.id) == 2
    assert [outcome for _, _, outcome in await _outcomes(beta)] == [ingest.RELAYED] * 3
    assert await beta.count("SELECT count(*) FROM listings_fts WHERE listings_fts MATCH"
                            " 'mèches'") == 1


async def test_inbox_batch__a_listing_the_database_refuses_fails_alone_rest_of_run_stored(
        trio: tuple[Node, Node, Node, MemberRow]) -> None:
    alpha, beta, _, alice = trio
    # Given a database that refuses one title (a trigger stands for any constraint a row
    # can break), and that listing between good ones
    async with beta.ctx.store.transaction() as tx:
        await tx.execute("CREATE TRIGGER refuse_boum BEFORE INSERT ON listings"
                         " WHEN new.title = 'Boum' BEGIN"
                         " SELECT RAISE(ABORT, 'refused by the test trigger'); END")
    titles = ["Trajet 0", "Boum", "Trajet 1", "Trajet 2"]
    documents = [json.loads((await alpha.publish(alice, title=title)).row.signed_object)
                 for title in titles]
    sent = [_create(alpha, alice, document) for document in documents]
    assert [await _send(alpha, alice, beta, act) for act in sent] == [202] * 4
    # When beta's worker takes them as one batch (one run of new listings)
    assert await beta.workers.inbox.step() == 4
    # Then the refused one fails with its reason, alone; the others are stored and relayed
    outcomes = [outcome for _, _, outcome in await _outcomes(beta)]
    assert outcomes[1] is not None
    assert outcomes[1].startswith("failed:")
    assert "refused by the test trigger" in outcomes[1]
    assert [outcomes[0], outcomes[2], outcomes[3]] == [ingest.RELAYED] * 3
    assert await beta.remote(documents[1]["id"]) is None
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 3
    assert await beta.count("SELECT count(*) FROM listing_versions v JOIN listings l"
                            " ON l.id = v.listing_id WHERE l.is_local = 0") == 3
    assert await beta.count("SELECT count(*) FROM outbox_activities"
                            " WHERE type = 'Announce'") == 3



async def test_inbox_batch__a_new_listing_is_stored_once_and_every_version_reads_whole(
        trio: tuple[Node, Node, Node, MemberRow]) -> None:
    alpha, beta, _, alice = trio
    # Given two listings received in one batch (a run of new listings)
    view = await alpha.publish(alice, title="Scie sauteuse")
    first = json.loads(view.row.signed_object)
    other = json.loads((await alpha.publish(alice, title="Escabeau")).row.signed_object)
    for document in (first, other):
        assert await _send(alpha, alice, beta, _create(alpha, alice, document)) == 202
    assert await beta.workers.inbox.step() == 2
    stored = await beta.remote(first["id"])
    assert stored is not None
    # Then its signed text is stored once (the version row points at the listing's) and
    # reads whole, the author's exact text
    assert await beta.count("SELECT count(*) FROM listing_versions WHERE listing_id = ?"
                            " AND signed_object = ''", stored.id) == 1
    assert await listing_store.list_versions(beta.ctx.store.reader, stored.id) == [
        (1, view.row.signed_object)]
    # When alpha edits it and beta processes the Update
    edited = await listings.update_listing(alpha.ctx, alice, view.row.id,
                                           {"title": "Scie sauteuse, avec lames"})
    update = _create(alpha, alice, json.loads(edited.row.signed_object), version=2,
                     kind="Update")
    assert await _send(alpha, alice, beta, update) == 202
    assert await beta.workers.inbox.step() == 1
    # Then version 1 kept its own text (copied before the listing's was replaced) and
    # version 2 is the edit
    assert await listing_store.list_versions(beta.ctx.store.reader, stored.id) == [
        (1, view.row.signed_object), (2, edited.row.signed_object)]
    assert await beta.count("SELECT count(*) FROM listing_versions WHERE listing_id = ?"
                            " AND signed_object = ''", stored.id) == 0

def test_spliced_dumps__gives_the_bytes_of_encoding_the_whole_announce() -> None:
    # Given a signed listing as the batch stores it (non-ASCII text, nesting, numbers) and
    # the Announce that relays it
    document = {"@context": ["https://www.w3.org/ns/activitystreams", {"x": "y"}],
                "id": "http://127.0.0.1:1/listings/é", "name": "Trajet \u00e0 \"Lyon\"\n",
                "location": {"latitude": 45.764, "seats": 3, "none": None, "ok": True},
                "proof": {"proofValue": "z3FXQ"}}
    announce = {"@context": "https://www.w3.org/ns/activitystreams", "id": "http://a/1",
                "type": "Announce", "actor": "http://a/g", "object": document,
                "to": ["https://www.w3.org/ns/activitystreams#Public"], "hops": 2}
    # When its body is made by splicing the listing's stored JSON into the rest
    body = ingest.spliced_dumps(announce, "object", dumps(document))
    # Then it is exactly what encoding the whole Announce gives
    assert body == dumps(announce)
    assert json.loads(body) == announce


async def _announces(node: Node) -> list[str]:
    return [row["body"] for row in await outbox.public_page(node.ctx.store.reader, [node.group],
                                                            0, 100)
            if json.loads(row["body"])["type"] == "Announce"]


async def test_inbox_batch__a_relayed_announce_points_at_the_listing_text_and_sends_it_whole(
        trio: tuple[Node, Node, Node, MemberRow]) -> None:
    alpha, beta, gamma, alice = trio
    # Given two listings beta receives in a batch (a run) and relays to gamma
    view = await alpha.publish(alice, title="Remorque")
    other = await alpha.publish(alice, title="Diable")
    for published in (view, other):
        assert await _send(alpha, alice, beta,
                           _create(alpha, alice, json.loads(published.row.signed_object))) == 202
    assert await beta.workers.inbox.step() == 2
    stored = await beta.remote(view.row.object_id)
    assert stored is not None
    # Then the first Announce's row does not hold a copy of the signed text: it points at
    # the listing's (migration 0021)
    async with beta.ctx.store.reader.execute(
            "SELECT object_of, length(body) + length(body_tail) FROM outbox_activities"
            " WHERE type = 'Announce' ORDER BY seq") as cursor:
        rows = list(await cursor.fetchall())
    assert rows[0][0] == stored.id
    assert rows[0][1] < len(view.row.signed_object)
    # And read back (outbox page, delivery) it is the whole Announce, the author's exact text
    # inside it
    body = (await _announces(beta))[0]
    assert view.row.signed_object in body
    assert json.loads(body)["object"] == json.loads(view.row.signed_object)
    due = await outbox.due_for_host(beta.ctx.store.reader, origin_of(gamma.url),
                                    "9999-01-01T00:00:00Z", 10)
    assert due[0]["body"] == body
    # When it is delivered, gamma verifies the author's proof and stores the same text
    await settle(beta, gamma)
    relayed = await gamma.remote(view.row.object_id)
    assert relayed is not None
    assert relayed.signed_object == view.row.signed_object
    # When alpha edits the listing and beta stores the new text
    edited = await listings.update_listing(alpha.ctx, alice, view.row.id, {"title": "Remorque!"})
    update = _create(alpha, alice, json.loads(edited.row.signed_object), version=2,
                     kind="Update")
    assert await _send(alpha, alice, beta, update) == 202
    assert await beta.workers.inbox.step() == 1
    # Then the first Announce still sends the text it announced, byte for byte (its own copy
    # now); the Update's Announce (one activity: the one-at-a-time path) points at the new
    # text; and the edit reached gamma too
    announces = await _announces(beta)
    assert announces[0] == body
    assert edited.row.signed_object in announces[-1]
    async with beta.ctx.store.reader.execute(
            "SELECT object_id, object_of FROM outbox_activities WHERE type = 'Announce'"
            " ORDER BY seq") as cursor:
        pointers = [(row[0], row[1]) for row in await cursor.fetchall()]
    assert pointers[0] == (view.row.object_id, None)
    assert pointers[-1] == (view.row.object_id, stored.id)
    await settle(beta, gamma)
    relayed = await gamma.remote(view.row.object_id)
    assert relayed is not None
    assert relayed.signed_object == edited.row.signed_object
