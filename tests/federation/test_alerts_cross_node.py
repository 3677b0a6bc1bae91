"""Alerts and expiry between two real nodes on 127.0.0.1 (workers stepped by hand, one
shared fake clock): a neighbour's offer matches a saved search where it arrives, once;
requests and swaps match across communities both ways; an expired listing leaves search
on the receiving node; renewal and republication travel as signed Updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from meshnode.protocol.timefmt import format_utc
from meshnode.services import alerts, listings, notifications
from meshnode.store.listings import SearchFilters
from meshnode.store.members import MemberRow
from tests.conftest import START
from tests.federation.conftest import Node, NodeFactory, peer, settle

LADDER: dict[str, Any] = {
    "kind": "offer", "category": "lend", "title": "Echelle alu 3 m",
    "description": "Prêtée le week-end.", "price": {"mode": "free"},
    "location": {"name": "Quai du Canal", "lat": 45.7640, "lon": 4.8357}, "details": {}}


async def _matches(node: Node, member: MemberRow) -> list[tuple[str, str]]:
    rows = await notifications.list_notifications(node.ctx, member)
    return [(row.ref, row.detail) for row in rows if row.type == "match"]


async def _found(node: Node, text: str) -> list[str]:
    page = await listings.search_listings(node.ctx, SearchFilters(text=text))
    return [row.object_id for row in page.items]


async def _two(make_node: NodeFactory) -> tuple[Node, Node]:
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    return a, b


async def test_alerts_cross_node__neighbours_offer_notifies_once_even_when_updated(
    make_node: NodeFactory,
) -> None:
    # Given bob on alpha saved "échelle" (with the accent)
    a, b = await _two(make_node)
    bob, carol = await a.member("bob"), await b.member("carol")
    await alerts.create_alert(a.ctx, bob, {"q": "échelle", "category": "lend"})
    # When carol on beta lends an "Echelle" (without), and it reaches alpha
    view = await listings.create_listing(b.ctx, carol, LADDER)
    await settle(a, b)
    # Then bob has exactly one match, pointing at alpha's copy of the listing
    remote = await a.remote(view.row.object_id)
    assert remote is not None
    assert await _matches(a, bob) == [(remote.id, "Echelle alu 3 m")]
    # When carol edits it twice (two signed Updates arrive), still one
    await listings.update_listing(b.ctx, carol, view.row.id, {"title": "Echelle alu 3,5 m"})
    await listings.update_listing(b.ctx, carol, view.row.id, {"description": "Solide."})
    await settle(a, b)
    assert len(await _matches(a, bob)) == 1
    assert (await a.remote(view.row.object_id)).version == 3  # type: ignore[union-attr]
    # and carol, on her own node, was told nothing
    assert await _matches(b, carol) == []


async def test_alerts_cross_node__swaps_match_both_ways_across_communities(
    make_node: NodeFactory,
) -> None:
    a, b = await _two(make_node)
    alice, carol = await a.member("alice"), await b.member("carol")
    # Given alice on alpha swaps a drill against a bike
    drill = await listings.create_listing(a.ctx, alice, {
        **LADDER, "category": "swap", "title": "Perceuse Bosch", "price": {"mode": "swap"},
        "details": {"wanted": "un vélo"}})
    await settle(a, b)
    # When carol on beta offers a bike against "perceuse, scie"
    bike = await listings.create_listing(b.ctx, carol, {
        **LADDER, "category": "swap", "title": "Vélo de ville", "price": {"mode": "swap"},
        "details": {"wanted": "perceuse, scie"}})
    await settle(a, b)
    # Then alice is told on alpha of carol's bike, and carol on beta of alice's drill
    bike_on_a, drill_on_b = await a.remote(bike.row.object_id), await b.remote(
        drill.row.object_id)
    assert bike_on_a is not None
    assert drill_on_b is not None
    assert await _matches(a, alice) == [(bike_on_a.id, "Vélo de ville")]
    assert await _matches(b, carol) == [(drill_on_b.id, "Perceuse Bosch")]


async def test_alerts_cross_node__a_neighbours_request_reaches_our_offers_author(
    make_node: NodeFactory,
) -> None:
    a, b = await _two(make_node)
    alice, carol = await a.member("alice"), await b.member("carol")
    # Given alice on alpha lends a ladder
    ladder = await listings.create_listing(a.ctx, alice, LADDER)
    await settle(a, b)
    # When carol on beta asks "Cherche une échelle"
    wanted = await listings.create_listing(b.ctx, carol, {
        **LADDER, "kind": "request", "title": "Cherche une échelle", "description": ""})
    await settle(a, b)
    # Then alice is told on alpha, and her offer's matches list carol's request
    on_a = await a.remote(wanted.row.object_id)
    assert on_a is not None
    assert await _matches(a, alice) == [(on_a.id, "Cherche une échelle")]
    assert [r.id for r in await alerts.matches_for(a.ctx, ladder.row.id)] == [on_a.id]
    # and carol, on beta, was told of alice's ladder
    ladder_on_b = await b.remote(ladder.row.object_id)
    assert ladder_on_b is not None
    assert await _matches(b, carol) == [(ladder_on_b.id, "Echelle alu 3 m")]


async def test_alerts_cross_node__an_expired_remote_listing_leaves_search_on_the_receiver(
    make_node: NodeFactory,
) -> None:
    a, b = await _two(make_node)
    carol = await b.member("carol")
    # Given carol's ladder on beta expires in two days, and reached alpha
    view = await listings.create_listing(b.ctx, carol, {
        **LADDER, "expires_at": format_utc(START + timedelta(days=2))})
    await settle(a, b)
    assert await _found(a, "echelle") == [view.row.object_id]
    # When two days and a minute pass, alpha's search, home and the API no longer show it
    a.clock.advance(days=2, minutes=1)
    assert await _found(a, "echelle") == []
    home = await listings.search_listings(a.ctx, SearchFilters(status="active"))
    assert home.items == []
    # but alpha keeps the stored copy (an Update may renew it)
    assert await a.remote(view.row.object_id) is not None


async def test_alerts_cross_node__renewal_and_republication_travel_as_signed_updates(
    make_node: NodeFactory,
) -> None:
    a, b = await _two(make_node)
    alice = await a.member("alice")
    # Given alice's ladder on alpha expires in five days, seen on beta
    view = await listings.create_listing(a.ctx, alice, {
        **LADDER, "expires_at": format_utc(START + timedelta(days=5))})
    await settle(a, b)
    # When the warning worker runs three days before, she is warned once
    a.clock.advance(days=2, minutes=1)
    assert await notifications.warn_expiring(a.ctx) == 1
    assert await notifications.warn_expiring(a.ctx) == 0
    # and renews in one click: 60 days from now, on both nodes
    renewed = await listings.renew_listing(a.ctx, alice, view.row.id)
    await settle(a, b)
    expected = format_utc(a.clock() + timedelta(days=60))
    assert renewed.row.expires_at == expected
    copy = await b.remote(view.row.object_id)
    assert copy is not None
    assert copy.expires_at == expected
    assert copy.version == 2
    assert renewed.signed_object["endTime"] == expected
    # When the new date is three days away, she is warned again (a new expiry)
    a.clock.advance(days=57, minutes=1)
    assert await notifications.warn_expiring(a.ctx) == 1
    # When it expires anyway, it leaves beta's search; republished, it comes back
    a.clock.advance(days=3)
    assert await _found(b, "echelle") == []
    await listings.renew_listing(a.ctx, alice, view.row.id)
    await settle(a, b)
    assert await _found(b, "echelle") == [view.row.object_id]
