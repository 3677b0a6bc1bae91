"""Cross-community payments through the JSON API with the nodes' own background workers."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp

from meshnode.errors import ConflictError
from meshnode.services import iou as svc
from meshnode.services import members
from tests.federation.conftest import Node, NodeFactory
from tests.federation.iou_helpers import check_invariants, handle


async def _token(node: Node, username: str, *, admin: bool = False) -> dict[str, str]:
    await members.add_member(node.ctx, username=username, password=None, is_admin=admin)
    token = await members.create_token(node.ctx, username)
    return {"Authorization": f"Bearer {token.secret}"}


async def _settled(*nodes: Node, limit: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        counts = [await n.count("SELECT count(*) FROM iou_transfers WHERE state = 'prepared'")
                  + await n.count("SELECT count(*) FROM inbox_activities WHERE processed_at"
                                  " IS NULL") for n in nodes]
        if not any(counts):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("payments did not settle")


async def _open_live(a: Node, b: Node, **limits: str) -> str:
    line = await svc.propose_line(a.ctx, None, peer=b.url, limit_out=limits.get("out", "1000"),
                                  limit_in=limits.get("inn", "1000"), rate=limits.get("rate", "1"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline:
        row = await svc.get_line(b.ctx, line.id) if await b.count(
            "SELECT count(*) FROM iou_lines WHERE id = ?", line.id) else None
        if row is not None and row.state == "pending":
            await svc.accept_line(b.ctx, None, line.id)
        if (await svc.get_line(a.ctx, line.id)).state == "active":
            return line.id
        await asyncio.sleep(0.05)
    raise AssertionError("line did not open")


async def test_api__remote_payee_is_201_when_committed_and_pollable(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha", run_workers=True)
    b = await make_node("beta", run_workers=True)
    headers = await _token(a, "alice", admin=True)
    await b.member("bob")
    await _open_live(a, b)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{a.url}/api/v1/transfers", headers=headers, json={
                "payee": handle(b, "bob"), "amount": "12.50", "memo": "bread"}) as response:
            body: dict[str, Any] = await response.json()
            assert response.status == 201, body
        assert body["state"] == "committed"
        async with session.get(f"{a.url}/api/v1/transfers/{body['id']}",
                               headers=headers) as response:
            assert (await response.json())["state"] == "committed"
        # over the line's limit: refused before anything is prepared
        async with session.post(f"{a.url}/api/v1/transfers", headers=headers, json={
                "payee": handle(b, "bob"), "amount": "5000"}) as response:
            assert response.status == 409
        async with session.get(f"{a.url}/api/v1/trustlines", headers=headers) as response:
            lines = (await response.json())["items"]
            assert lines[0]["balance"] == "12.50"
    await check_invariants(a, b)


async def test_iou__randomized_three_nodes_local_and_cross_payments(
    make_node: NodeFactory,
) -> None:
    # Given three communities in a triangle of lines and a few members each
    rng = random.Random(7)
    nodes = [await make_node(name, run_workers=True) for name in ("alpha", "beta", "gamma")]
    people: dict[int, list[Any]] = {}
    for index, node in enumerate(nodes):
        people[index] = [await node.member(f"m{index}{k}") for k in range(4)]
    await _open_live(nodes[0], nodes[1], out="40", inn="40", rate="2")
    await _open_live(nodes[1], nodes[2], out="60", inn="60", rate="0.5")
    await _open_live(nodes[2], nodes[0], out="30", inn="30", rate="1.25")

    # When 300 payments run concurrently, half of them across communities
    async def one(step: int) -> None:
        src = rng.randrange(3)
        payer = rng.choice(people[src])
        amount = rng.randint(1, 900)
        try:
            if rng.random() < 0.5:
                payee = rng.choice([m for m in people[src] if m.id != payer.id])
                from meshnode.services import ledger
                await ledger.pay(nodes[src].ctx, payer, payee=payee.username,
                                 amount=f"{amount / 100:.2f}")
            else:
                dst = rng.choice([i for i in range(3) if i != src])
                await svc.pay_remote(nodes[src].ctx, payer,
                                     handle(nodes[dst], rng.choice(people[dst]).username),
                                     amount, f"p{step}", network=_net(nodes[src]))
        except ConflictError:  # refusals (limits, capacity) are expected outcomes here
            pass

    for batch in range(0, 300, 30):
        await asyncio.gather(*(one(step) for step in range(batch, batch + 30)))
    await _settled(*nodes)
    # Then every ledger verifies and sums to zero, lines mirror, states agree everywhere
    await check_invariants(*nodes)
    committed = [await n.count("SELECT count(*) FROM iou_transfers WHERE state = 'committed'")
                 for n in nodes]
    assert sum(committed) > 20


def _net(node: Node) -> Any:
    from meshnode.federation.runtime import IOU_NETWORK
    return node.app[IOU_NETWORK]
