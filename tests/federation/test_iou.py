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
