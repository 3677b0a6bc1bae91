"""Cross-community payments between real nodes on 127.0.0.1 (workers stepped by hand)."""

from __future__ import annotations

import json

from meshnode.federation.runtime import IOU_NETWORK
from meshnode.protocol.proofs import create_proof
from meshnode.services import iou as svc
from meshnode.services import members
from meshnode.store import federation as fq
from tests.federation.conftest import Node, NodeFactory, settle
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
    assert final.reason is not None
    assert "limit exceeded" in final.reason
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


async def _prepared(a: Node, b: Node, amount: int = 1000) -> svc.TransferStatus:
    alice = await members.get_member(a.ctx, "alice")
    return await svc.pay_remote(a.ctx, alice, handle(b, "bob"), amount, "",
                                network=a.app[IOU_NETWORK])


async def test_iou__offer_delivered_after_expiry_is_refused_and_released(
    make_node: NodeFactory,
) -> None:
    # Given a prepared payment whose offer has not been delivered yet
    a, b = await make_node("alpha"), await make_node("beta")
    await a.member("alice"), await b.member("bob")
    await open_line(a, b)
    status = await _prepared(a, b)
    # When the clock passes its expiry before anything is delivered
    a.clock.advance(seconds=600)
    await settle(a, b)
    # Then beta recorded "expired", alpha released the hold, nothing moved
    assert (await svc.get_transfer(b.ctx, None, status.id)).state == "expired"
    assert (await svc.get_transfer(a.ctx, None, status.id)).state == "expired"
    assert await balance(a, "alice") == 0
    assert await balance(b, "bob") == 0
    assert await a.count("SELECT count(*) FROM ledger_holds") == 0
    await check_invariants(a, b)


async def test_iou__release_before_offer_then_late_offer_never_applies(
    make_node: NodeFactory,
) -> None:
    # Given a prepared payment, the release asked before beta ever saw the offer (reordered)
    a, b = await make_node("alpha"), await make_node("beta")
    await a.member("alice"), await b.member("bob")
    await open_line(a, b)
    status = await _prepared(a, b)
    prepare_body = await _outbox_body(a, "IouPrepare")
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE deliveries SET state = 'failed'")  # the offer is lost for now
    a.clock.advance(seconds=600)
    await settle(a, b)
    assert (await svc.get_transfer(a.ctx, None, status.id)).state == "expired"
    # When the late offer finally arrives (same activity, replayed into beta's inbox)
    await _inject(b, prepare_body, suffix="late")
    b.clock.advance(seconds=-600)  # even if beta's clock says it is not expired
    await settle(a, b)
    # Then beta's recorded decision stands: nothing moved anywhere
    assert (await svc.get_transfer(b.ctx, None, status.id)).state == "expired"
    assert await balance(b, "bob") == 0
    assert await balance(a, "alice") == 0
    await check_invariants(a, b)


async def test_iou__duplicate_messages_apply_once(make_node: NodeFactory) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    await a.member("alice"), await b.member("bob")
    await open_line(a, b)
    status = await _prepared(a, b)
    await settle(a, b)
    # When the offer and the commit are both delivered again (new activity ids)
    await _inject(b, await _outbox_body(a, "IouPrepare"), suffix="again")
    await _inject(a, await _outbox_body(b, "IouCommit"), suffix="again")
    await settle(a, b)
    # Then the payment counts once on each ledger
    assert (await svc.get_transfer(a.ctx, None, status.id)).state == "committed"
    assert await balance(a, "alice") == -1000
    assert await balance(b, "bob") == 1000
    assert await b.count("SELECT count(*) FROM ledger_journal") == 1
    await check_invariants(a, b)


async def test_iou__forged_acceptance_is_rejected(make_node: NodeFactory) -> None:
    # Given a prepared payment whose offer beta never received
    a, b = await make_node("alpha"), await make_node("beta")
    await a.member("alice"), await b.member("bob")
    line = await open_line(a, b)
    status = await _prepared(a, b)
    # When someone forges beta's commit, signed with a key that is not beta's
    forged = {"@context": "https://www.w3.org/ns/activitystreams",
              "id": f"{b.group}/iou/transfers/{status.id}/commit", "type": "IouCommit",
              "actor": b.group, "to": [a.group], "transfer": status.id, "line": line,
              "published": "2026-01-01T00:00:00Z"}
    signed = create_proof(forged, seed=b"\x07" * 32,
                          verification_method=f"{b.group}#ed25519-key", created=a.clock())
    await _inject(a, json.dumps(signed), suffix="")
    await a.workers.inbox.step()
    # Then alpha refuses it: still prepared, nothing in the journal
    outcome = await _outcome(a, signed["id"])
    assert outcome.startswith("rejected"), outcome
    assert (await svc.get_transfer(a.ctx, None, status.id)).state == "prepared"
    assert await a.count("SELECT count(*) FROM ledger_journal") == 0


async def _outbox_body(node: Node, kind: str) -> str:
    async with node.ctx.store.reader.execute(
        "SELECT body FROM outbox_activities WHERE type = ? ORDER BY seq DESC LIMIT 1", (kind,)
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def _inject(node: Node, body: str, *, suffix: str) -> None:
    """Store an activity in a node's inbox as if delivered (authenticity is the proof's job)."""
    act = json.loads(body)
    async with node.ctx.store.transaction() as tx:
        await fq.insert_inbox(tx, activity_id=act["id"] + (f"#{suffix}" if suffix else ""),
                              actor=act["actor"], activity_type=act["type"], body=body,
                              received_at="2026-01-01T00:00:00Z")


async def _outcome(node: Node, activity_id: str) -> str:
    async with node.ctx.store.reader.execute(
        "SELECT outcome FROM inbox_activities WHERE activity_id = ?", (activity_id,)
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def test_iou__a_round_with_nothing_expired_writes_nothing(make_node: NodeFactory) -> None:
    # Given a node with a line and a payment still prepared, not expired
    a, b = await make_node("alpha"), await make_node("beta")
    await a.member("alice"), await b.member("bob")
    await open_line(a, b)
    await _prepared(a, b)
    commits = a.ctx.store.generation
    # When the IOU worker's release round runs (every second, idle or not)
    released = await svc.queue_releases(a.ctx)
    # Then it released nothing and opened no write transaction (the store's commit counter,
    # which wakes the idle delivery scheduler, did not move)
    assert released == 0
    assert a.ctx.store.generation == commits
