"""Deals across two real nodes: Offer of an Agreement → Accept/Reject → completion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshnode.errors import ConflictError
from meshnode.protocol.proofs import create_proof
from meshnode.services import deals, listings
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store.deals import DealRow
from meshnode.store.federation import insert_inbox
from meshnode.store.listings import ListingRow
from tests.conftest import ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle


async def _setup(make_node: NodeFactory, listing: dict[str, Any]
                 ) -> tuple[Node, Node, Any, Any, ListingRow]:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    bob = await b.member("bob")
    view = await listings.create_listing(a.ctx, alice, listing)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    return a, b, alice, bob, remote


def free_ride(**details: Any) -> dict[str, Any]:
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    return ride_listing(price={"mode": "free"}, details={**base, **details})


async def _author_side(a: Node, deal: DealRow) -> DealRow:
    found = await q.deal_by(a.ctx.store.reader, "agreement_id", deal.agreement_id)
    assert found is not None
    return found


async def test_ride__remote_booking_accepted_then_done_both_sides(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 2, "message": "Deux places"})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    assert (theirs.state, theirs.quantity, theirs.booker_id) == ("requested", 2, None)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
    await deals.act(b.ctx, bob, deal.id, "complete")
    await settle(a, b)
    assert (await _author_side(a, deal)).state == "completed"
    await deals.leave_feedback(b.ctx, bob, deal.id, {"rating": 4, "comment": "Ponctuelle"})
    await settle(a, b)
    received = await deals.feedback_about(a.ctx, "alice")
    assert [(f.rating, f.author_uri) for f in received] == [(4, f"{b.url}/users/bob")]


async def test_meal__remote_auto_accept_and_seats_counted_on_the_author_node(
    make_node: NodeFactory,
) -> None:
    meal = ride_listing(category="meal", title="Soupe au potiron", price={"mode": "free"},
                        details={"portions": 3, "pickup_time": "2026-11-28T19:00:00Z",
                                 "auto_accept": True})
    a, b, _alice, bob, remote = await _setup(make_node, meal)
    first = await deals.book(b.ctx, bob, remote.id, {"quantity": 2})
    second = await deals.book(b.ctx, bob, remote.id, {"quantity": 2})  # only 1 left
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, first.id)).state == "accepted"
    refused = await deals.get_deal(b.ctx, bob, second.id)
    assert refused.state == "declined"
    assert "only 1 portion" in refused.reason
    theirs = await _author_side(a, first)
    assert await q.taken(a.ctx.store.reader, theirs.listing_id, ("accepted",)) == 2
    assert await a.count("SELECT COUNT(*) FROM deals") == 1  # the refused one left no row


async def test_loan__remote_slots_never_overlap(make_node: NodeFactory) -> None:
    lend = ride_listing(category="lend", title="Échelle de 3 mètres", price={"mode": "free"},
                        details={"auto_accept": True})
    a, b, alice, bob, remote = await _setup(make_node, lend)
    one = await deals.book(b.ctx, bob, remote.id, {"from": "2026-11-27T09:00:00Z",
                                                   "to": "2026-11-28T09:00:00Z"})
    two = await deals.book(b.ctx, bob, remote.id, {"from": "2026-11-27T18:00:00Z",
                                                   "to": "2026-11-29T09:00:00Z"})
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, one.id)).state == "accepted"
    assert (await deals.get_deal(b.ctx, bob, two.id)).state == "declined"
    theirs = await _author_side(a, one)
    await deals.act(a.ctx, alice, theirs.id, "complete")  # returned
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, one.id)).state == "completed"


@pytest.mark.parametrize(("pledge", "expected"), [("30", "accepted"), ("10", "declined")])
async def test_group_buy__remote_pledges_committed_or_released(
    make_node: NodeFactory, pledge: str, expected: str
) -> None:
    buy = ride_listing(category="group-buy", title="Commande de farine", price={"mode": "free"},
                       details={"target_quantity": "50", "threshold": "25", "unit": "kg",
                                "deadline": "2026-11-30T18:00:00Z"})
    a, b, _alice, bob, remote = await _setup(make_node, buy)
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": pledge})
    await settle(a, b)
    assert (await _author_side(a, deal)).state == "requested"
    a.clock.advance(days=5)
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == expected


async def test_paid_remote_booking__refused_without_a_trust_line(
    make_node: NodeFactory,
) -> None:
    a, b, _alice, bob, remote = await _setup(make_node, ride_listing())
    with pytest.raises(ConflictError, match="trust line"):
        await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    assert await q.list_for_member(b.ctx.store.reader, bob.id, "booker") == []
    assert await a.count("SELECT COUNT(*) FROM deals") == 0


async def test_retries__same_offer_twice_is_one_deal(make_node: NodeFactory) -> None:
    a, b, _alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    offer = json.loads(deal.offer)
    async with a.ctx.store.transaction() as tx:  # a replay under another activity row
        await insert_inbox(tx, activity_id=offer["id"] + "#again", actor=offer["actor"],
                           activity_type="Offer", body=json.dumps(offer),
                           received_at="2026-11-26T10:00:00Z")
    await settle(a, b)
    assert await a.count("SELECT COUNT(*) FROM deals") == 1


async def test_forged_accept__bad_proof_changes_nothing(make_node: NodeFactory) -> None:
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    now = a.clock()
    accept = {"@context": json.loads(deal.offer)["@context"],
              "id": f"{a.url}/deals/forged/accept", "type": "Accept",
              "actor": f"{a.url}/users/alice", "to": [deal.booker_uri],
              "object": {"type": "Offer", "id": deal.offer_id}, "result": deal.agreement_id,
              "published": "2026-11-26T10:00:00Z"}
    signed = sign_as_member(a.ctx, alice, accept, now)
    signed["result"] = "https://evil.example/other"  # altered after signing
    wrong_key = create_proof(accept, seed=b"\x01" * 32,
                             verification_method=f"{a.url}/users/alice#ed25519-key",
                             created=now)
    for n, forged in enumerate((signed, wrong_key)):
        async with b.ctx.store.transaction() as tx:
            await insert_inbox(tx, activity_id=f"{forged['id']}{n}", actor=forged["actor"],
                               activity_type="Accept", body=json.dumps(forged),
                               received_at="2026-11-26T10:00:00Z")
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "requested"
    outcomes = [r[0] async for r in _outcomes(b)]
    assert sum(o.startswith("rejected") for o in outcomes) == 2


async def _outcomes(node: Node):  # type: ignore[no-untyped-def]
    async with node.ctx.store.reader.execute(
            "SELECT outcome FROM inbox_activities WHERE type = 'Accept'"
            " AND activity_id LIKE '%forged%'") as cursor:
        for row in await cursor.fetchall():
            yield row


async def test_catch_up__booker_node_down_during_acceptance(make_node: NodeFactory) -> None:
    a, b, alice, bob, remote = await _setup(make_node, free_ride())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await b.stop()
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a)
    await b.start()
    a.clock.advance(minutes=30)
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
