"""Cross-community payments between real nodes on 127.0.0.1 (workers stepped by hand)."""

from __future__ import annotations

from meshnode.federation.runtime import IOU_NETWORK
from meshnode.services import iou as svc
from tests.federation.conftest import NodeFactory, settle
from tests.federation.iou_helpers import balance, check_invariants, handle, open_line


async def test_iou__direct_payment_commits_on_both_ledgers(make_node: NodeFactory) -> None:
    # Given two communities with a trust line at rate 1 A = 2 B
    a, b = await make_node("alpha"), await make_node("beta")
    alice, _ = await a.member("alice"), await b.member("bob")
    await open_line(a, b, limit_out="50", limit_in="50", rate="2")
    # When alice pays bob@beta 10
    status = await svc.pay_remote(a.ctx, alice, handle(b, "bob"), 1000, "thanks",
                                  network=a.app[IOU_NETWORK])
    assert status.state == "prepared"
    await settle(a, b)
    # Then it is committed on both sides, with the converted amount at beta
    assert (await svc.get_transfer(a.ctx, None, status.id)).state == "committed"
    assert (await svc.get_transfer(b.ctx, None, status.id)).state == "committed"
    assert await balance(a, "alice") == -1000
    assert await balance(b, "bob") == 2000
    await check_invariants(a, b)


async def test_iou__two_hops_through_an_intermediate_community(make_node: NodeFactory) -> None:
    # Given alpha—gamma and gamma—beta lines but none between alpha and beta
    a, b, c = await make_node("alpha"), await make_node("beta"), await make_node("gamma")
    alice, _ = await a.member("alice"), await b.member("bob")
    await open_line(a, c, b, limit_out="30", limit_in="30", rate="1")
    await open_line(c, b, a, limit_out="30", limit_in="30", rate="1.5")
    # When alice pays bob@beta 10 (alpha units)
    status = await svc.pay_remote(a.ctx, alice, handle(b, "bob"), 1000, "",
                                  network=a.app[IOU_NETWORK])
    assert status.route == (a.group, c.group, b.group)
    await settle(a, b, c)
    # Then every hop committed, gamma charged no fee, and every ledger sums to zero
    for node in (a, b, c):
        assert (await svc.get_transfer(node.ctx, None, status.id)).state == "committed"
    assert await balance(a, "alice") == -1000
    assert await balance(b, "bob") == 1500
    assert await balance(c, f"node:{a.url.split('//')[1]}") == -1000
    assert await balance(c, f"node:{b.url.split('//')[1]}") == 1000
    await check_invariants(a, b, c)


async def test_iou__insufficient_capacity_on_second_hop_moves_nothing(
    make_node: NodeFactory,
) -> None:
    # Given a route whose second line only has room for 5
    a, b, c = await make_node("alpha"), await make_node("beta"), await make_node("gamma")
    alice, _ = await a.member("alice"), await b.member("bob")
    await open_line(a, c, b, limit_out="30", limit_in="30")
    line = await open_line(c, b, a, limit_out="5", limit_in="30")
    # When gamma's line toward beta is lowered after alpha chose its route
    edges = await a.app[IOU_NETWORK].routing_edges(a.ctx, b.url)
    assert edges
    status = await svc.prepare_origin(a.ctx, alice, payee_actor=f"{b.url}/users/bob",
                                      route=(a.group, c.group, b.group), amount=1000, memo="",
                                      listing=None, expires=a.clock() + svc.DEFAULT_EXPIRY)
    await settle(a, b, c)
    # Then the payment is released everywhere with gamma's reason, nothing moved
    final = await svc.get_transfer(a.ctx, None, status.id)
    assert final.state == "released"
    assert final.reason is not None and "limit exceeded" in final.reason
    assert await balance(a, "alice") == 0
    assert await b.count("SELECT count(*) FROM iou_transfers") == 0
    assert await c.count("SELECT count(*) FROM ledger_journal") == 0
    assert line
    await check_invariants(a, b, c)


async def test_iou__route_search_refuses_amount_beyond_capacity(make_node: NodeFactory) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    alice, _ = await a.member("alice"), await b.member("bob")
    await open_line(a, b, limit_out="5", limit_in="5")
    import pytest

    from meshnode.errors import ConflictError
    with pytest.raises(ConflictError, match="capacity"):
        await svc.pay_remote(a.ctx, alice, handle(b, "bob"), 1000, "",
                             network=a.app[IOU_NETWORK])
    assert await a.count("SELECT count(*) FROM iou_transfers") == 0
    assert await a.count("SELECT count(*) FROM ledger_holds") == 0
