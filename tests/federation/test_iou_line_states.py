"""Trust-line messages follow the declared table (``protocol.iou.LINE_GRAPH``), real nodes."""

from __future__ import annotations

from meshnode.services import iou as svc
from meshnode.store import iou as iq
from tests.federation.conftest import Node, NodeFactory, settle


async def _offered_line(a: Node, b: Node) -> str:
    """alpha offers a line to beta; beta has it pending, alpha has it proposed."""
    line = await svc.propose_line(a.ctx, None, peer=b.url, limit_out="10", limit_in="10",
                                  rate="1")
    await settle(a, b)
    return line.id


async def _state(node: Node, line_id: str) -> str:
    row = await iq.get_line(node.ctx.store.reader, line_id)
    assert row is not None
    return row.state


async def test_line_update__cannot_smuggle_an_acceptance_past_the_agreement_check(
        make_node: NodeFactory) -> None:
    # Given a line alpha proposed and beta has not answered
    a, b = await make_node("alpha"), await make_node("beta")
    line_id = await _offered_line(a, b)
    assert await _state(a, line_id) == "proposed"
    # When beta sends a TrustLineUpdate whose change is the answer's event, or any change
    async with a.ctx.store.transaction() as tx:
        smuggled = await svc.receive_line_update(a.ctx, tx, actor=b.group,
                                                 act={"line": line_id, "change": "accepted"})
        early = await svc.receive_line_update(a.ctx, tx, actor=b.group,
                                              act={"line": line_id, "change": "unfreeze"})
    # Then both are ignored and the line is still only proposed (no account opened)
    assert smuggled == "ignored: unknown change"
    assert early == "ignored: line is proposed"
    assert await _state(a, line_id) == "proposed"
    assert (await iq.get_line(a.ctx.store.reader, line_id)).account is None  # type: ignore[union-attr]


async def test_line_answer__a_repeated_acceptance_of_a_rejected_offer_changes_nothing(
        make_node: NodeFactory) -> None:
    # Given an offer beta rejected
    a, b = await make_node("alpha"), await make_node("beta")
    line_id = await _offered_line(a, b)
    await svc.reject_line(b.ctx, None, line_id)
    await settle(a, b)
    assert await _state(a, line_id) == "rejected"
    # When an acceptance for it arrives afterwards
    async with a.ctx.store.transaction() as tx:
        outcome = await svc.receive_line_answer(a.ctx, tx, actor=b.group,
                                                kind="TrustLineAccept", line_id=line_id,
                                                agreement={})
    # Then it is ignored: rejected is terminal
    assert outcome == "ignored: line already rejected"
    assert await _state(a, line_id) == "rejected"
