"""Two real nodes: peer, publish, update, withdraw."""

from __future__ import annotations

from meshnode.federation import peering
from meshnode.services import listings
from tests.federation.conftest import NodeFactory, peer, settle


async def test_peering__auto_policy_peers_both_ways(make_node: NodeFactory) -> None:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    status_a = {p.peer: p for p in await peering.list_peers(a.ctx)}
    status_b = {p.peer: p for p in await peering.list_peers(b.ctx)}
    assert status_a[b.url].status == "peered"
    assert status_a[b.url].ours == "peered"
    assert status_a[b.url].theirs == "accepted"
    assert status_b[a.url].ours == "peered"
    assert status_b[a.url].theirs == "accepted"


async def test_listing__create_update_withdraw_reach_the_peer(make_node: NodeFactory) -> None:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await a.member("alice")
    view = await a.publish(alice)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    assert not remote.is_local
    assert remote.origin == a.url
    assert remote.title == view.row.title
    assert remote.signed_object == view.row.signed_object

    a.clock.advance(seconds=5)
    await listings.update_listing(a.ctx, alice, view.row.id, {"title": "Covoiturage vers Paris"})
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    assert remote.title == "Covoiturage vers Paris"

    a.clock.advance(seconds=5)
    await listings.withdraw_listing(a.ctx, alice, view.row.id)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    assert remote.status == "withdrawn"
