"""Paid deals across two real nodes: the booker's node pays through the trust line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshnode.errors import ConflictError
from meshnode.protocol.proofs import create_proof
from meshnode.services import deal_payments, deals, listings
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store.deals import DealRow
from meshnode.store.federation import insert_inbox
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from tests.conftest import ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.iou_helpers import balance, check_invariants, open_line

PRICE = 450  # 4.50 in alpha's currency; the line says 1 beta = 2 alpha


async def _setup(make_node: NodeFactory, listing: dict[str, Any], *, line: bool = True,
                 limit: str = "50") -> tuple[Node, Node, MemberRow, MemberRow, ListingRow]:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    bob = await b.member("bob")
    if line:
        await open_line(b, a, limit_out=limit, limit_in=limit, rate="2")
    view = await listings.create_listing(a.ctx, alice, listing)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    return a, b, alice, bob, remote


async def _author_side(a: Node, deal: DealRow) -> DealRow:
    found = await q.deal_by(a.ctx.store.reader, "agreement_id", deal.agreement_id)
    assert found is not None
    return found


async def _payment(node: Node, deal: DealRow) -> tuple[str, str | None, str]:
    rows = await q.payments_of(node.ctx.store.reader, deal.id)
    assert len(rows) == 1, rows
    return rows[0].state, rows[0].transfer_id, rows[0].reason


async def _inject(node: Node, activity: dict[str, Any], suffix: str) -> None:
    async with node.ctx.store.transaction() as tx:
        await insert_inbox(tx, activity_id=activity["id"] + suffix, actor=activity["actor"],
                           activity_type=activity["type"], body=json.dumps(activity),
                           received_at="2026-11-26T10:00:00Z")


async def test_paid_ride__booker_pays_through_the_trust_line_on_acceptance(
    make_node: NodeFactory,
) -> None:
    # Given bob@beta and a trust line beta—alpha at 1 beta = 2 alpha
    a, b, alice, bob, remote = await _setup(make_node, ride_listing())
    # When bob books a 4.50 seat on alice's ride and alice accepts
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    assert (theirs.state, theirs.amount) == ("requested", PRICE)
    assert await b.count("SELECT count(*) FROM iou_transfers") == 0  # nothing before accept
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    # Then the seat is counted at alpha, bob paid 2.25 beta and alice received 4.50 alpha
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
    assert await q.taken(a.ctx.store.reader, theirs.listing_id, ("accepted",)) == 1
    assert await balance(b, "bob") == -225
    assert await balance(a, "alice") == PRICE
    state, transfer, _ = await _payment(b, deal)
    assert (state, transfer) == ("paid", deal_payments.transfer_id_for(b.ctx, deal, "accept"))
    assert (await _payment(a, theirs))[:2] == ("paid", transfer)
    await check_invariants(a, b)


async def test_paid_ride__booker_node_restarted_before_paying_pays_once(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob, remote = await _setup(make_node, ride_listing())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await a.workers.delivery.step()
    await b.workers.inbox.step()  # beta learns of the Accept: the payment is due...
    assert (await _payment(b, deal))[0] == "due"
    await b.stop()  # ...and beta stops before its deal worker pays
    await b.start()
    await settle(a, b)
    assert (await _payment(b, deal))[0] == "paid"
    assert (await _payment(a, theirs))[0] == "paid"
    assert await balance(b, "bob") == -225
    assert await balance(a, "alice") == PRICE
    await check_invariants(a, b)


async def test_paid_ride__delivered_twice_and_retried_pays_once(
    make_node: NodeFactory,
) -> None:
    ride = ride_listing(details={**ride_listing()["details"], "auto_accept": True})  # type: ignore[dict-item]
    a, b, _alice, bob, remote = await _setup(make_node, ride)
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 2})
    await _inject(a, json.loads(deal.offer), "#again")  # the Offer delivered twice
    await settle(a, b)
    theirs = await _author_side(a, deal)
    accept = json.loads((await deals.get_deal(b.ctx, bob, deal.id)).answer or "{}")
    assert accept["type"] == "Accept"
    await _inject(b, accept, "#again")  # and the Accept delivered twice
    await settle(a, b)
    # a crash between preparing and recording the transfer: the worker pays again
    async with b.ctx.store.transaction() as tx:
        await tx.execute("UPDATE deal_payments SET state = 'due', transfer_id = NULL")
    await settle(a, b)
    assert await a.count("SELECT count(*) FROM deals") == 1
    assert await b.count("SELECT count(*) FROM iou_transfers") == 1
    assert await a.count("SELECT count(*) FROM iou_transfers") == 1
    assert await balance(b, "bob") == -450
    assert await balance(a, "alice") == 2 * PRICE
    assert (await _payment(a, theirs))[0] == "paid"
    assert (await _payment(b, deal))[0] == "paid"
    await check_invariants(a, b)


async def test_paid_ride__no_trust_line_is_refused_and_nothing_is_held(
    make_node: NodeFactory,
) -> None:
    a, b, _alice, bob, remote = await _setup(make_node, ride_listing(), line=False)
    with pytest.raises(ConflictError, match="trust line"):
        await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    for node in (a, b):
        assert await node.count("SELECT count(*) FROM deals") == 0
        assert await node.count("SELECT count(*) FROM ledger_holds") == 0
        assert await node.count("SELECT count(*) FROM iou_transfers") == 0
        assert await node.count("SELECT count(*) FROM ledger_journal") == 0


async def test_paid_ride__payment_beyond_the_line_cancels_the_deal_on_both_nodes(
    make_node: NodeFactory,
) -> None:
    # Given a line with room for 1.00 beta only (2.00 alpha): a 4.50 seat cannot be paid
    a, b, alice, bob, remote = await _setup(make_node, ride_listing(), limit="1")
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    # Then the deal is cancelled on both sides with the reason; the seat is free again
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    assert mine.state == "cancelled"
    assert "payment" in mine.reason
    state, _, reason = await _payment(b, deal)
    assert state == "failed"
    assert "capacity" in reason or "limit" in reason
    theirs = await _author_side(a, deal)
    assert theirs.state == "cancelled"
    assert "payment" in theirs.reason
    assert (await _payment(a, theirs))[0] == "failed"
    assert await q.taken(a.ctx.store.reader, theirs.listing_id, ("accepted",)) == 0
    assert await balance(b, "bob") == 0
    assert await balance(a, "alice") == 0
    await check_invariants(a, b)


async def test_paid_loan__paid_on_return(make_node: NodeFactory) -> None:
    lend = ride_listing(category="lend", title="Perceuse", details={"auto_accept": True},
                        price={"mode": "amount", "amount": "2.00", "period": "day"})
    a, b, alice, bob, remote = await _setup(make_node, lend)
    deal = await deals.book(b.ctx, bob, remote.id, {"from": "2026-11-27T09:00:00Z",
                                                   "to": "2026-11-29T09:00:00Z"})
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"
    assert await balance(b, "bob") == 0  # loans are paid on return
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "complete")
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "completed"
    assert await balance(a, "alice") == 400
    assert await balance(b, "bob") == -200
    assert (await _payment(a, theirs))[0] == "paid"
    await check_invariants(a, b)


async def test_payment_notice__forged_or_unbacked_is_rejected(make_node: NodeFactory) -> None:
    a, b, alice, bob, remote = await _setup(make_node, ride_listing())
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await _author_side(a, deal)
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await a.workers.delivery.step()  # alpha waits for the payment; beta has not paid yet
    now = b.clock()
    notice = deal_payments.build_notice(
        activity_id=f"{b.url}/deals/{deal.id}/payment/accept/paid", actor=deal.booker_uri,
        to=deal.author_uri, agreement_id=deal.agreement_id, action="accept", state="paid",
        transfer_id="f" * 32, reason="", when="2026-11-26T10:00:00Z")
    unbacked = sign_as_member(b.ctx, bob, notice, now)  # bob's real key, but no such transfer
    wrong_key = create_proof(notice, seed=b"\x02" * 32,
                             verification_method=f"{deal.booker_uri}#ed25519-key", created=now)
    await _inject(a, unbacked, "#1")
    await _inject(a, wrong_key, "#2")
    for _ in range(3):
        await a.workers.inbox.step()
    async with a.ctx.store.reader.execute(
            "SELECT outcome FROM inbox_activities WHERE activity_id LIKE '%/payment/%#%'"
            " ORDER BY activity_id") as cursor:
        outcomes = [row[0] for row in await cursor.fetchall()]
    assert len(outcomes) == 2
    assert all(o.startswith("rejected") for o in outcomes), outcomes
    assert (await _payment(a, theirs))[0] == "pending"
    assert await balance(a, "alice") == 0
    await settle(a, b)  # the real payment still goes through
    assert (await _payment(a, theirs))[0] == "paid"
