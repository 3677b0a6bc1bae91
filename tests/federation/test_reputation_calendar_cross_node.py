"""Two real nodes: a lender's minimum reputation for a member of another community, and a
cross-node booking in both parties' calendar feeds (the same UID on both nodes)."""

from __future__ import annotations

from typing import Any

import aiohttp
import icalendar
import pytest

from meshnode.errors import PermissionDeniedError
from meshnode.services import calendar as calendar_service
from meshnode.services import deals, listings, members
from meshnode.services import queue as queue_service
from meshnode.store import deals as deal_store
from meshnode.store.members import MemberRow
from tests.conftest import ride_listing
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_receipts import _api, _export, _three_nodes

SLOT = {"from": "2026-11-29T10:00:00Z", "to": "2026-11-30T10:00:00Z"}


def _camera(**details: Any) -> dict[str, Any]:
    return ride_listing(category="lend", title="Appareil photo argentique",
                        price={"mode": "free"}, details=details)


async def _completed(node: Node, lender: MemberRow, borrower: MemberRow, title: str) -> None:
    view = await listings.create_listing(node.ctx, lender, ride_listing(
        category="give", title=title, price={"mode": "free"}, details={}))
    deal = await deals.book(node.ctx, borrower, view.row.id, {"quantity": 1})
    await deals.act(node.ctx, lender, deal.id, "accept")
    await deals.act(node.ctx, lender, deal.id, "complete")


async def _two_nodes(make_node: NodeFactory) -> tuple[Node, Node, MemberRow, MemberRow]:
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    return a, b, await a.member("alice"), await b.member("bob")


async def test_min_reputation__the_lenders_node_declines_a_remote_member_it_never_saw_deal(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha lends a camera to members with at least one exchange done
    a, b, alice, bob = await _two_nodes(make_node)
    view = await listings.create_listing(a.ctx, alice, _camera(min_reputation=1))
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    # When bob@beta, with no exchange at all, books it: his own node refuses, sends nothing
    with pytest.raises(PermissionDeniedError):
        await deals.book(b.ctx, bob, remote.id, SLOT)
    assert await deal_store.list_for_member(b.ctx.store.reader, bob.id, "booker") == []
    # Given bob then completes an exchange with a neighbour on beta (beta counts 1)
    await _completed(b, await b.member("carol"), bob, "Bocaux vides")
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    await settle(a, b)
    # Then alpha, which saw no exchange of bob's, declines with the rule as the reason
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    assert mine.state == "declined"
    assert "at least 1 completed exchanges" in mine.reason
    assert await deal_store.list_for_listing(a.ctx.store.reader, view.row.id,
                                             ("requested", "accepted")) == []


async def test_min_reputation__an_exchange_done_with_the_lenders_community_counts_there(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob = await _two_nodes(make_node)
    # Given bob@beta shared a ride with alice@alpha, done on both nodes
    ride = await listings.create_listing(a.ctx, alice, ride_listing(price={"mode": "free"}))
    camera = await listings.create_listing(a.ctx, alice, _camera(min_reputation=1))
    await settle(a, b)
    ride_here = await b.remote(ride.row.object_id)
    camera_here = await b.remote(camera.row.object_id)
    assert ride_here is not None
    assert camera_here is not None
    shared = await deals.book(b.ctx, bob, ride_here.id, {"quantity": 1})
    await settle(a, b)
    theirs = await deal_store.deal_by(a.ctx.store.reader, "agreement_id", shared.agreement_id)
    assert theirs is not None
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    await deals.act(a.ctx, alice, theirs.id, "complete")
    await settle(a, b)
    # When he books the camera
    deal = await deals.book(b.ctx, bob, camera_here.id, SLOT)
    await settle(a, b)
    # Then alpha takes the request
    assert (await deals.get_deal(b.ctx, bob, deal.id)).state == "requested"


async def _feed(node: Node, member: MemberRow) -> dict[str, icalendar.Event]:
    token = await calendar_service.new_feed(node.ctx, member)
    async with aiohttp.ClientSession() as session, session.get(
            f"{node.url}/calendar/{token}.ics") as response:
        assert response.status == 200
        body = await response.read()
    return {str(e["UID"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}


async def test_calendar__a_cross_node_booking_has_one_uid_on_both_nodes(
    make_node: NodeFactory,
) -> None:
    a, b, alice, bob = await _two_nodes(make_node)
    ride = await listings.create_listing(a.ctx, alice, ride_listing(price={"mode": "free"}))
    await settle(a, b)
    here = await b.remote(ride.row.object_id)
    assert here is not None
    deal = await deals.book(b.ctx, bob, here.id, {"quantity": 1})
    await settle(a, b)
    theirs = await deal_store.deal_by(a.ctx.store.reader, "agreement_id", deal.agreement_id)
    assert theirs is not None
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    # Then bob's feed on beta and alice's on alpha hold the same event, confirmed, in UTC
    bobs, alices = await _feed(b, bob), await _feed(a, alice)
    assert set(bobs) == set(alices) == {deal.agreement_id}
    for event in (bobs[deal.agreement_id], alices[deal.agreement_id]):
        assert str(event["STATUS"]) == "CONFIRMED"
        assert event.decoded("DTSTART").isoformat() == "2026-12-05T08:00:00+00:00"


async def test_queue__a_remote_booking_during_a_local_turn_is_declined_by_the_lenders_node(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha's drill came back and dave@alpha, first in line, holds the turn
    a, b, alice, bob = await _two_nodes(make_node)
    carol, dave = await a.member("carol"), await a.member("dave")
    view = await listings.create_listing(a.ctx, alice, _camera())
    loan = await deals.book(a.ctx, carol, view.row.id,
                            {"from": "2026-11-26T11:00:00Z", "to": "2026-11-27T10:00:00Z"})
    await deals.act(a.ctx, alice, loan.id, "accept")
    await deals.act(a.ctx, alice, loan.id, "start")
    await queue_service.join(a.ctx, dave, view.row.id)
    await deals.act(a.ctx, alice, loan.id, "complete")
    await settle(a, b)  # the deal worker's queue step gives dave the turn
    assert (await queue_service.status(a.ctx, dave, view.row.id)).state == "notified"
    # When bob@beta books the drill meanwhile
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    deal = await deals.book(b.ctx, bob, remote.id, SLOT)
    await settle(a, b)
    # Then alpha declines it with the reason, and stores no request
    mine = await deals.get_deal(b.ctx, bob, deal.id)
    assert mine.state == "declined"
    assert "kept for the next member of the waiting list" in mine.reason
    assert await deal_store.list_for_listing(a.ctx.store.reader, view.row.id,
                                             ("requested",)) == []


async def test_min_reputation__receipts_imported_on_a_new_node_unlock_a_loan_there(
    make_node: NodeFactory,
) -> None:
    # Given alice of alpha completed a rated deal with bob of beta, then moved to gamma
    # (which never saw the deal) as alice2, where dora lends a camera to members with one
    # exchange done
    _a, _b, c, _alice, _deal, new_actor = await _three_nodes(make_node)
    dora = await c.member("dora")
    alice2 = await members.get_member(c.ctx, "alice2")
    camera = await listings.create_listing(c.ctx, dora, _camera(min_reputation=1))
    # When she books before importing her receipts: refused, nothing stored
    with pytest.raises(PermissionDeniedError):
        await deals.book(c.ctx, alice2, camera.row.id, SLOT)
    # When she imports them (gamma verifies every signature itself) and books again
    bundle = await _export(_a, "alice", new_actor)
    status, _ = await _api(c, "alice2", "POST", "/api/v1/me/receipts/import", bundle)
    assert status == 201
    assert await queue_service.count_completed_deals(c.ctx, new_actor) == 1
    deal = await deals.book(c.ctx, alice2, camera.row.id, SLOT)
    # Then the request is taken
    assert deal.state == "requested"
