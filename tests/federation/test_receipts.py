"""Portable reputation (issue 18): deal receipts signed by both parties and both communities,
exported by a member of node A and imported into node C, which never saw the deal and checks
every signature against the actor documents it fetches from A and B. Real nodes on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import aiohttp

from meshnode import urls
from meshnode.protocol.iou import cosign
from meshnode.protocol.receipts import signer_methods
from meshnode.protocol.timefmt import format_utc
from meshnode.services import deals, members, reputation
from meshnode.services import receipts as receipt_service
from meshnode.services.receipts import UPDATE_CONTEXT
from meshnode.services.signing import cosign_as_member, cosign_as_node, sign_as_member
from meshnode.store import receipts as receipt_q
from meshnode.store.deals import DealRow
from meshnode.store.federation import insert_inbox
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, settle
from tests.federation.test_deals import _author_side, _setup, free_ride


async def _api(node: Node, username: str, method: str, path: str,
               body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    token = (await members.create_token(node.ctx, username)).secret
    headers = {"Authorization": f"Bearer {token}"}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    async with aiohttp.ClientSession() as session, session.request(
            method, f"{node.url}{path}", data=data, headers=headers) as response:
        return response.status, await response.json()


async def _completed_cross_deal(make_node: NodeFactory, *, author_rating: int = 5,
                                booker_no_show: bool = False
                                ) -> tuple[Node, Node, MemberRow, MemberRow, DealRow]:
    """alice@alpha lends a ride to bob@beta; done and rated by both; exchange settled."""
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    await deals.act(b.ctx, bob, deal.id, "complete")
    await settle(a, b)
    await deals.leave_feedback(b.ctx, bob, deal.id, {"rating": 4, "comment": "Ponctuelle"})
    await settle(a, b)
    await deals.leave_feedback(a.ctx, alice, theirs.id,
                               {"rating": author_rating, "no_show": booker_no_show})
    await settle(a, b)
    return a, b, alice, bob, deal


async def _receipt_rows(node: Node) -> int:
    return await node.count("SELECT count(*) FROM deal_receipts")


async def _export(a: Node, username: str, moving_to: str) -> dict[str, Any]:
    status, bundle = await _api(a, username, "GET",
                                f"/api/v1/me/receipts/export?for={moving_to}")
    assert status == 200, bundle
    return dict(bundle)


def _resign(a: Node, alice: MemberRow, bundle: dict[str, Any]) -> dict[str, Any]:
    """What a dishonest member can do with their own export: change it, sign it again
    with their own key and their node's (both held by node A)."""
    bare = {k: v for k, v in bundle.items() if k != "proof"}
    now = a.clock()
    return cosign_as_node(a.ctx, cosign_as_member(a.ctx, alice, bare, now), now)


async def test_receipt__cross_node_deal_gives_both_sides_a_receipt_with_four_proofs(
    make_node: NodeFactory,
) -> None:
    # Given a ride completed and rated by both parties, on two nodes
    a, b, _alice, bob, deal = await _completed_cross_deal(make_node)
    # Then both nodes keep one complete receipt, each with the same four proofs
    row_b = await receipt_q.get_receipt(b.ctx.store.reader, deal.agreement_id, deal.booker_uri)
    row_a = await receipt_q.get_receipt(a.ctx.store.reader, deal.agreement_id, deal.author_uri)
    assert row_a is not None
    assert row_b is not None
    assert (row_a.state, row_b.state) == ("complete", "complete")
    assert json.loads(row_a.document) == json.loads(row_b.document)
    document = json.loads(row_b.document)
    controllers = {m.split("#")[0] for m in signer_methods(document, frozenset({
        deal.booker_uri, deal.author_uri, b.group, a.group}))}
    assert controllers == {deal.booker_uri, deal.author_uri, a.group, b.group}
    assert (row_b.rating, row_b.no_show, row_b.other_rating) == (5, False, 4)
    # and each side's reputation counts it once, as a deal with another community
    assert await reputation.count_for(b.ctx, deal.booker_uri) == reputation.Reputation(1, 1, 0)
    assert await reputation.count_for(a.ctx, deal.author_uri) == reputation.Reputation(1, 1, 0)
    # and the node of the booker sees the author's count from its own receipts
    assert await reputation.count_for(b.ctx, deal.author_uri) == reputation.Reputation(1, 1, 0)
    assert bob.username == "bob"


async def test_receipt__no_receipt_until_both_parties_rated(make_node: NodeFactory) -> None:
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    await deals.act(b.ctx, bob, deal.id, "complete")
    await deals.leave_feedback(b.ctx, bob, deal.id, {"rating": 4})
    await settle(a, b)
    assert await _receipt_rows(a) == 0
    assert await _receipt_rows(b) == 0
    assert await reputation.count_for(b.ctx, deal.booker_uri) == reputation.Reputation(0, 0, 0)


async def _three_nodes(make_node: NodeFactory, **kwargs: Any
                       ) -> tuple[Node, Node, Node, MemberRow, DealRow, str]:
    a, b, alice, _bob, deal = await _completed_cross_deal(make_node, **kwargs)
    c = await make_node("gamma")  # never peered, never saw the deal
    await c.member("alice2")
    return a, b, c, alice, deal, urls.member_actor(c.url, "alice2")


async def test_import__member_moves_to_a_node_that_never_saw_the_deal_and_it_verifies_all(
    make_node: NodeFactory,
) -> None:
    # Given alice of alpha completed a deal with bob of beta, and opened an account on gamma
    a, b, c, _alice, deal, new_actor = await _three_nodes(make_node)
    # When she exports her receipts for that account and imports them on gamma
    bundle = await _export(a, "alice", new_actor)
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bundle)
    # Then gamma verified every signature itself and counts the deal
    assert status == 201, body
    assert body == {"imported": 1, "reputation": {"deals": 1, "cross_community": 1,
                                                  "no_shows": 0}}
    # (it fetched the four signers' actor documents from alpha and beta, on 127.0.0.1)
    async with c.ctx.store.reader.execute("SELECT id FROM remote_actors") as cursor:
        fetched = {row[0] for row in await cursor.fetchall()}
    assert fetched >= {deal.author_uri, deal.booker_uri, a.group, b.group}
    # and the receipts API on gamma shows it verified
    status, listed = await _api(c, "alice2", "GET", "/api/v1/members/alice2/receipts")
    assert status == 200
    [item] = listed["items"]
    assert (item["verified"], item["source"], item["party"]) == (True, "import",
                                                                 deal.author_uri)
    assert (item["other"], item["cross_community"]) == (deal.booker_uri, True)


async def test_import__the_same_receipts_twice_are_refused_409_and_nothing_changes(
    make_node: NodeFactory,
) -> None:
    a, _b, c, _alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    status, _ = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 201
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 409, body
    assert body["fields"] == {"receipts.0": "already imported"}
    assert await _receipt_rows(c) == 1


async def test_import__a_receipt_twice_in_one_export_is_refused(make_node: NodeFactory) -> None:
    a, _b, c, alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    doubled = _resign(a, alice, {**bundle, "receipts": bundle["receipts"] * 2})
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", doubled)
    assert status == 422, body
    assert body["fields"] == {"receipts.1": "the same deal twice in this export"}
    assert await _receipt_rows(c) == 0


async def test_import__an_altered_rating_fails_the_parties_proofs_and_nothing_is_stored(
    make_node: NodeFactory,
) -> None:
    # Given alice rewrites the rating bob gave her, and signs her export again
    a, _b, c, alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    receipt = dict(bundle["receipts"][0])
    receipt["author"] = {**receipt["author"], "rating": 5}
    receipt["booker"] = {**receipt["booker"], "noShow": True}
    altered = _resign(a, alice, {**bundle, "receipts": [receipt]})
    # When she imports it on gamma
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", altered)
    # Then the receipt's own proofs fail: refused, nothing stored
    assert status == 422, body
    assert "signature does not verify" in body["fields"]["receipts.0"]
    assert await _receipt_rows(c) == 0


async def test_import__a_forged_receipt_signed_with_other_keys_is_refused(
    make_node: NodeFactory,
) -> None:
    # Given alice forges a receipt of a deal that never happened, signing bob's and beta's
    # proofs with keys of her own under their key ids (a key mismatch)
    a, _b, c, alice, deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    genuine = bundle["receipts"][0]
    fake_deal = deal.agreement_id.rsplit("/", 1)[0] + "/forged"
    bare = {k: v for k, v in genuine.items() if k != "proof"} | {
        "deal": fake_deal, "id": f"{fake_deal}#receipt"}
    now = a.clock()
    forged = cosign_as_node(a.ctx, cosign_as_member(a.ctx, alice, bare, now), now)
    for controller in (deal.booker_uri, genuine["booker"]["node"]):
        forged = cosign(forged, seed=bytes(range(32)),
                        verification_method=urls.ed25519_key_id(controller), created=now)
    bad = _resign(a, alice, {**bundle, "receipts": [forged, genuine]})
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bad)
    assert status == 422, body
    assert list(body["fields"]) == ["receipts.0"]
    assert await _receipt_rows(c) == 0  # the genuine one is not kept either: all or none


async def test_import__a_receipt_naming_someone_else_is_refused(make_node: NodeFactory) -> None:
    # Given dave of alpha also dealt with bob; alice puts dave's receipt in her export
    a, b, c, alice, _deal, new_actor = await _three_nodes(make_node)
    dave = await a.member("dave")
    view = await a.publish(dave, **free_ride())
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    bob = await members.get_member(b.ctx, "bob")
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    await deals.act(a.ctx, dave, (await _author_side(a, deal)).id, "accept")
    await settle(a, b)
    await deals.act(b.ctx, bob, deal.id, "complete")
    await deals.leave_feedback(b.ctx, bob, deal.id, {"rating": 3})
    await settle(a, b)
    await deals.leave_feedback(a.ctx, dave, (await _author_side(a, deal)).id, {"rating": 4})
    await settle(a, b)
    daves = await _export(a, "dave", new_actor)
    mine = await _export(a, "alice", new_actor)
    mixed = _resign(a, alice, {**mine, "receipts": [*mine["receipts"], *daves["receipts"]]})
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", mixed)
    assert status == 422, body
    assert body["fields"] == {"receipts.1": "this receipt names someone else"}
    assert await _receipt_rows(c) == 0


async def test_import__an_export_made_for_another_account_is_refused(
    make_node: NodeFactory,
) -> None:
    a, _b, c, _alice, _deal, _new_actor = await _three_nodes(make_node)
    await c.member("mallory")
    bundle = await _export(a, "alice", urls.member_actor(c.url, "alice2"))
    status, body = await _api(c, "mallory", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 422, body
    assert "movingTo" in body["fields"]
    assert await _receipt_rows(c) == 0


async def test_import__an_export_whose_own_signature_fails_is_refused(
    make_node: NodeFactory,
) -> None:
    a, _b, c, _alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    bundle["exported"] = "2026-01-01T00:00:00Z"  # changed after signing
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 422, body
    assert "proof" in body["fields"]
    assert await _receipt_rows(c) == 0


async def test_import__oversized_bundle_is_413_and_too_many_receipts_422(
    make_node: NodeFactory,
) -> None:
    a, _b, c, alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    padding = b" " * (reputation.MAX_BUNDLE_BYTES + 1)
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import",
                              raw=json.dumps(bundle).encode() + padding)
    assert status == 413, body
    many = _resign(a, alice, {**bundle, "receipts": [{"type": "DealReceipt"}] * (
        reputation.MAX_BUNDLE_RECEIPTS + 1)})
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", many)
    assert status == 422, body
    assert "receipts" in body["fields"]
    assert await _receipt_rows(c) == 0


async def test_self_dealing__two_accounts_of_one_node_count_once_a_month(
    make_node: NodeFactory, clock: Any,
) -> None:
    # Given alice and her second account dave on one node deal with each other 3 times
    a = await make_node("alpha")
    alice, dave = await a.member("alice"), await a.member("dave")

    async def one_deal() -> None:
        departure = format_utc(clock() + timedelta(days=2))
        view = await a.publish(alice, **free_ride(departure=departure))
        deal = await deals.book(a.ctx, dave, view.row.id, {"quantity": 1})
        await deals.act(a.ctx, alice, deal.id, "accept")
        await deals.act(a.ctx, dave, deal.id, "complete")
        await deals.leave_feedback(a.ctx, dave, deal.id, {"rating": 5})
        await deals.leave_feedback(a.ctx, alice, deal.id, {"rating": 5})

    for _ in range(3):
        await one_deal()
    # Then three receipts exist, each signed by both and the node, but count once this month
    assert await _receipt_rows(a) == 6  # one per party
    alice_uri = urls.member_actor(a.url, "alice")
    assert await reputation.count_for(a.ctx, alice_uri) == reputation.Reputation(1, 0, 0)
    # and a deal next month counts again
    clock.advance(days=31)
    await one_deal()
    assert await reputation.count_for(a.ctx, alice_uri) == reputation.Reputation(2, 0, 0)


async def test_receipts_api__a_row_altered_in_the_database_shows_unverified(
    make_node: NodeFactory,
) -> None:
    a, _b, _alice, _bob, deal = await _completed_cross_deal(make_node)
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE deal_receipts SET document = replace(document,"
                         " '\"rating\": 4', '\"rating\": 5')")
    status, listed = await _api(a, "alice", "GET", "/api/v1/members/alice/receipts")
    assert status == 200
    [item] = listed["items"]
    assert item["verified"] is False
    assert item["deal"] == deal.agreement_id


async def test_profile__counts_in_french_and_english_on_the_node_the_member_moved_to(
    make_node: NodeFactory,
) -> None:
    # Given alice moved her receipts to gamma
    a, _b, c, _alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    status, _ = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 201
    # When anyone opens her profile on gamma, in French then in English
    lines = {}
    for lang in ("fr", "en"):
        async with aiohttp.ClientSession() as session, session.get(
                f"{c.url}/users/alice2", headers={"Accept": "text/html",
                                                  "Accept-Language": lang}) as response:
            html = await response.text()
        found = re.search(r'<p class="reputation" id="reputation">([^<]*)</p>', html)
        assert found is not None, html
        lines[lang] = found.group(1)
    # Then the counts read as sentences, each figure pluralised in its language
    assert lines == {"fr": "1 échange dont 1 avec une autre communauté, 0 absence",
                     "en": "1 exchange, of which 1 with another community, 0 no-shows"}


async def test_countersign__a_receipt_misstating_our_members_rating_is_not_signed(
    make_node: NodeFactory,
) -> None:
    # Given a completed ride bob@beta rated 4; alice@alpha rates it, and alpha queues the
    # half-signed receipt for beta
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    await deals.act(b.ctx, bob, deal.id, "complete")
    await deals.leave_feedback(b.ctx, bob, deal.id, {"rating": 4})
    await settle(a, b)
    await deals.leave_feedback(a.ctx, alice, theirs.id, {"rating": 5})
    pending = await receipt_q.get_receipt(a.ctx.store.reader, deal.agreement_id,
                                          deal.author_uri)
    assert pending is not None
    assert pending.state == "pending"
    # When a receipt validly signed by alice and alpha, but saying bob gave her 5, reaches beta
    bare = {k: v for k, v in json.loads(pending.document).items() if k != "proof"}
    bare["author"] = {**bare["author"], "rating": 5}
    now = a.clock()
    lying = cosign_as_node(a.ctx, cosign_as_member(a.ctx, alice, bare, now), now)
    update = sign_as_member(a.ctx, alice, {
        "@context": UPDATE_CONTEXT, "id": f"{a.url}/deals/{theirs.id}/receipt/forged",
        "type": "Update", "actor": deal.author_uri, "to": [deal.booker_uri],
        "object": {"type": "Agreement", "id": deal.agreement_id, "dealReceipt": lying},
        "published": format_utc(now)}, now)
    async with b.ctx.store.transaction() as tx:
        await insert_inbox(tx, activity_id=update["id"], actor=update["actor"],
                           activity_type="Update", body=json.dumps(update),
                           received_at=format_utc(now))
    await settle(b)
    # Then beta refuses to countersign it and keeps nothing
    assert await b.count("SELECT count(*) FROM inbox_activities WHERE outcome ="
                         " 'rejected: the receipt misstates our member''s rating'") == 1
    assert await _receipt_rows(b) == 0
    # and the genuine receipt still goes through
    await settle(a, b)
    assert await reputation.count_for(b.ctx, deal.booker_uri) == reputation.Reputation(1, 1, 0)
    assert await reputation.count_for(a.ctx, deal.author_uri) == reputation.Reputation(1, 1, 0)


async def test_import__an_export_naming_too_many_communities_is_refused_before_any_fetch(
    make_node: NodeFactory,
) -> None:
    # Given alice's export lists receipts with partners on 21 different origins (ports)
    a, b, c, alice, _deal, new_actor = await _three_nodes(make_node)
    bundle = await _export(a, "alice", new_actor)
    genuine = bundle["receipts"][0]
    fakes = []
    for port in range(1, 22):
        other = f"http://127.0.0.1:{port}"
        fakes.append({**genuine, "booker": {**genuine["booker"], "actor": f"{other}/users/x",
                                            "node": f"{other}/groups/x"},
                      "deal": f"{other}/deals/{port}", "id": f"{other}/deals/{port}#receipt"})
    many = _resign(a, alice, {**bundle, "receipts": fakes})
    # When she imports it on gamma
    status, body = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", many)
    # Then it is refused from its fields alone: gamma contacted none of those addresses
    assert status == 422, body
    assert body["fields"] == {"receipts": "at most 20 communities"}
    known = await c.count("SELECT count(*) FROM remote_actors WHERE origin != ? AND origin != ?",
                          a.url, b.url)
    assert known == 0
    assert await _receipt_rows(c) == 0


async def test_receipt__a_reported_no_show_counts_against_the_absent_party(
    make_node: NodeFactory,
) -> None:
    a, b, _alice, _bob, deal = await _completed_cross_deal(make_node, booker_no_show=True)
    assert await reputation.count_for(b.ctx, deal.booker_uri) == reputation.Reputation(1, 1, 1)
    assert await reputation.count_for(a.ctx, deal.author_uri) == reputation.Reputation(1, 1, 0)
    # the author's node sees bob's absence in the receipts its members hold
    assert await reputation.count_for(a.ctx, deal.booker_uri) == reputation.Reputation(1, 1, 1)


async def test_complete__the_author_node_keeps_only_what_it_signed(
    make_node: NodeFactory,
) -> None:
    # Given alpha signed its half of a receipt and waits for beta's proofs
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    await deals.act(b.ctx, bob, deal.id, "complete")
    await deals.leave_feedback(b.ctx, bob, deal.id, {"rating": 2})
    await settle(a, b)
    await deals.leave_feedback(a.ctx, alice, theirs.id, {"rating": 5})
    pending = await receipt_q.get_receipt(a.ctx.store.reader, deal.agreement_id,
                                          deal.author_uri)
    assert pending is not None
    # When a "countersigned" copy comes back saying bob gave 5 instead of 2
    changed = json.loads(pending.document)
    changed["author"] = {**changed["author"], "rating": 5}
    async with a.ctx.store.transaction() as tx:
        outcome = await receipt_service.complete(a.ctx, tx, deal.booker_uri, changed, {})
    # Then alpha refuses it and its half stays pending, counting for nothing
    assert outcome == "rejected: the receipt was changed"
    kept = await receipt_q.get_receipt(a.ctx.store.reader, deal.agreement_id, deal.author_uri)
    assert kept is not None
    assert kept.state == "pending"
    assert await reputation.count_for(a.ctx, deal.author_uri) == reputation.Reputation(0, 0, 0)


async def test_export__without_the_new_account_is_422_naming_the_field(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha")
    await a.member("alice")
    status, body = await _api(a, "alice", "GET", "/api/v1/me/receipts/export")
    assert status == 422, body
    assert body["fields"] == {"for": "the actor URL of your new account"}
    status, body = await _api(a, "alice", "GET", "/api/v1/members/nobody/receipts")
    assert status == 404, body


async def test_backfill__a_deal_that_missed_its_receipt_gets_it_from_the_deal_worker(
    make_node: NodeFactory, clock: Any,
) -> None:
    # Given a cross-node deal completed and rated whose receipts were never kept (it
    # predates receipts, or beta's community was not known yet then)
    a, b, _alice, _bob, deal = await _completed_cross_deal(make_node)
    for node in (a, b):
        async with node.ctx.store.transaction() as tx:
            await tx.execute("DELETE FROM deal_receipts")
    # When the deal worker next looks for them (every 10 minutes), and the nodes settle
    clock.advance(minutes=11)
    assert await a.workers.deals.step() >= 1
    await settle(a, b)
    # Then both sides hold the complete receipt again
    assert await reputation.count_for(a.ctx, deal.author_uri) == reputation.Reputation(1, 1, 0)
    assert await reputation.count_for(b.ctx, deal.booker_uri) == reputation.Reputation(1, 1, 0)
