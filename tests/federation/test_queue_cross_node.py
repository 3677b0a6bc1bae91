"""Real nodes on 127.0.0.1: members of other communities in a lent item's waiting list
(join, position, the turn, a lapse after 24 h, confirming by booking, leaving)."""

from __future__ import annotations

from typing import Any

from meshnode.services import deals, listings, queue_guest
from meshnode.services import queue as queue_service
from meshnode.store import deals as deal_store
from meshnode.store import queue as queue_store
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from tests.conftest import ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_receipts import _api

SLOT = {"from": "2026-11-29T10:00:00Z", "to": "2026-11-30T10:00:00Z"}
LOAN = {"from": "2026-11-26T11:00:00Z", "to": "2026-11-27T10:00:00Z"}


def _drill(**details: Any) -> dict[str, Any]:
    return ride_listing(category="lend", title="Perceuse à percussion",
                        price={"mode": "free"}, details=details)


async def lent_out(a: Node, lender: MemberRow, **details: Any) -> tuple[ListingRow, str]:
    """A drill of ``lender`` on ``a``, lent to carol and handed over; (listing, loan id)."""
    view = await listings.create_listing(a.ctx, lender, _drill(**details))
    carol = await a.member("carol")
    loan = await deals.book(a.ctx, carol, view.row.id, LOAN)
    await deals.act(a.ctx, lender, loan.id, "accept")
    await deals.act(a.ctx, lender, loan.id, "start")
    return view.row, loan.id


async def remote_copy(node: Node, listing: ListingRow) -> ListingRow:
    row = await node.remote(listing.object_id)
    assert row is not None
    return row


async def turns(node: Node, member: MemberRow) -> int:
    return await node.count("SELECT COUNT(*) FROM notifications WHERE member_id = ?"
                            " AND type = 'queue_turn'", member.id)


async def lender_rows(a: Node, listing: ListingRow) -> list[tuple[str | None, str]]:
    async with a.ctx.store.reader.execute(
            "SELECT remote_actor, state FROM listing_queue WHERE listing_id = ? ORDER BY id",
            (listing.id,)) as cursor:
        return [(r[0], r[1]) for r in await cursor.fetchall()]


async def test_queue_cross_node__join_position_turn_confirm_deal(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha's drill is lent out, and bob@beta looks at it on beta
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    alice, bob = await a.member("alice"), await b.member("bob")
    listing, loan = await lent_out(a, alice)
    await settle(a, b)
    here = await remote_copy(b, listing)
    # When bob joins its waiting list from beta
    joining = await queue_service.join(b.ctx, bob, here.id)
    assert (joining.state, joining.remote) == ("joining", True)
    await settle(a, b)
    # Then alpha keeps his place and beta shows the position alpha told
    assert await lender_rows(a, listing) == [(f"{b.url}/users/bob", "waiting")]
    mine = await queue_service.status(b.ctx, bob, here.id)
    assert (mine.state, mine.position) == ("waiting", 1)
    # When the drill comes back
    await deals.act(a.ctx, alice, loan, "complete")
    await settle(a, b)
    # Then bob is told on beta, with 24 hours to confirm
    mine = await queue_service.status(b.ctx, bob, here.id)
    assert (mine.state, mine.position) == ("notified", 1)
    assert mine.confirm_by == "2026-11-27T10:00:00Z"
    assert await turns(b, bob) == 1
    status, body = await _api(b, "bob", "GET", f"/api/v1/listings/{here.id}/queue")
    assert (status, body["state"], body["position"], body["remote"]) == (
        200, "notified", 1, True)
    # When someone else of beta books it meanwhile, alpha declines that booking
    dora = await b.member("dora")
    other = await deals.book(b.ctx, dora, here.id, SLOT)
    await settle(a, b)
    assert "kept for the next member" in (await deals.get_deal(b.ctx, dora, other.id)).reason
    # When bob confirms by booking it on beta
    deal = await deals.book(b.ctx, bob, here.id, SLOT)
    await settle(a, b)
    # Then alpha holds the loan request and the place is confirmed on both nodes
    theirs = await deal_store.deal_by(a.ctx.store.reader, "agreement_id", deal.agreement_id)
    assert theirs is not None
    assert theirs.state == "requested"
    assert await lender_rows(a, listing) == [(f"{b.url}/users/bob", "confirmed")]
    assert (await queue_service.status(b.ctx, bob, here.id)).state is None
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "accepted"


async def test_queue_cross_node__a_lapsed_turn_passes_to_the_next_community(
    make_node: NodeFactory,
) -> None:
    # Given bob@beta, then cleo@gamma, wait for alice@alpha's drill
    a, b, c = await make_node("alpha"), await make_node("beta"), await make_node("gamma")
    await peer(a, b)
    await peer(a, c)
    alice, bob, cleo = await a.member("alice"), await b.member("bob"), await c.member("cleo")
    listing, loan = await lent_out(a, alice)
    await settle(a, b, c)
    on_b, on_c = await remote_copy(b, listing), await remote_copy(c, listing)
    await queue_service.join(b.ctx, bob, on_b.id)
    await settle(a, b, c)
    status, body = await _api(c, "cleo", "POST", f"/api/v1/listings/{on_c.id}/queue")
    assert (status, body["state"]) == (201, "joining")
    await settle(a, b, c)
    assert (await queue_service.status(c.ctx, cleo, on_c.id)).position == 2
    await deals.act(a.ctx, alice, loan, "complete")
    await settle(a, b, c)
    assert (await queue_service.status(b.ctx, bob, on_b.id)).state == "notified"
    # When bob lets 24 hours pass (the clock is stepped past his deadline)
    a.clock.advance(hours=24, seconds=1)
    await settle(a, b, c)
    # Then the turn goes to cleo on gamma, and bob's place is over on beta and alpha
    assert await lender_rows(a, listing) == [(f"{b.url}/users/bob", "lapsed"),
                                             (f"{c.url}/users/cleo", "notified")]
    assert (await queue_service.status(b.ctx, bob, on_b.id)).state is None
    cleos = await queue_service.status(c.ctx, cleo, on_c.id)
    assert (cleos.state, cleos.position) == ("notified", 1)
    assert (await turns(b, bob), await turns(c, cleo)) == (1, 1)
    # When cleo books it, alpha takes her request
    deal = await deals.book(c.ctx, cleo, on_c.id, SLOT)
    await settle(a, b, c)
    theirs = await deal_store.deal_by(a.ctx.store.reader, "agreement_id", deal.agreement_id)
    assert theirs is not None
    assert theirs.state == "requested"


async def test_queue_cross_node__leaving_and_withdrawal_are_told(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    alice, bob, eve = await a.member("alice"), await b.member("bob"), await b.member("eve")
    listing, _loan = await lent_out(a, alice)
    await settle(a, b)
    here = await remote_copy(b, listing)
    await queue_service.join(b.ctx, bob, here.id)
    await queue_service.join(b.ctx, eve, here.id)
    await settle(a, b)
    # When bob leaves on beta: alpha frees his place, eve moves up when next told
    await queue_service.leave(b.ctx, bob, here.id)
    await settle(a, b)
    assert [s for _, s in await lender_rows(a, listing)] == ["left", "waiting"]
    rows = await queue_store.live_entries(a.ctx.store.reader, listing.id)
    assert [r.remote_actor for r in rows] == [f"{b.url}/users/eve"]
    # When alice withdraws the drill: eve's place closes on both nodes
    await listings.withdraw_listing(a.ctx, alice, listing.id)
    await settle(a, b)
    assert [s for _, s in await lender_rows(a, listing)] == ["left", "closed"]
    assert (await queue_service.status(b.ctx, eve, here.id)).state is None
    assert await queue_guest.places(b.ctx, eve) == []


async def test_queue_cross_node__a_join_sent_while_the_lender_is_down_arrives_after_restarts(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha's drill is lent out and alpha is down
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    alice, bob = await a.member("alice"), await b.member("bob")
    listing, loan = await lent_out(a, alice)
    await settle(a, b)
    here = await remote_copy(b, listing)
    await a.stop()
    # When bob joins on beta: the Join waits in beta's outbox; beta restarts too
    await queue_service.join(b.ctx, bob, here.id)
    await settle(b)
    await b.stop()
    await b.start()
    await a.start()
    b.clock.advance(minutes=5)  # past the first retry's backoff
    await settle(a, b)
    # Then alpha has his place and beta the position it told, from the rows alone
    assert await lender_rows(a, listing) == [(f"{b.url}/users/bob", "waiting")]
    assert (await queue_service.status(b.ctx, bob, here.id)).position == 1
    # And the turn still reaches him after alpha restarts once more
    await a.stop()
    await a.start()
    await deals.act(a.ctx, alice, loan, "complete")
    await settle(a, b)
    assert (await queue_service.status(b.ctx, bob, here.id)).state == "notified"
