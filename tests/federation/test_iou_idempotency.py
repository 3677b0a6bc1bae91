"""A cross-community payment retried with its Idempotency-Key is made once (issue 12).

Given two communities with an active line and their own background workers, When alice posts
the same payment to bob@beta twice with one ``Idempotency-Key``, Then the second answer is the
first one replayed, one transfer exists on each node, and bob was paid once.
"""

from __future__ import annotations

import aiohttp

from tests.federation.conftest import NodeFactory
from tests.federation.iou_helpers import check_invariants, handle
from tests.federation.test_iou_live import _open_live, _settled, _token


async def test_iou__same_idempotency_key_twice_pays_once_across_communities(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha", run_workers=True)
    b = await make_node("beta", run_workers=True)
    headers = {**await _token(a, "alice"), "Idempotency-Key": "rent-december"}
    await b.member("bob")
    await _open_live(a, b)
    body = {"payee": handle(b, "bob"), "amount": "12.50", "memo": "rent"}
    answers = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(f"{a.url}/api/v1/transfers", headers=headers,
                                    json=body) as response:
                answers.append((response.status, await response.read(),
                                response.headers.get("Idempotent-Replayed")))
    await _settled(a, b)
    assert answers[0][0] == 201, answers[0]
    assert answers[1] == (answers[0][0], answers[0][1], "true")
    assert await a.count("SELECT count(*) FROM iou_transfers") == 1
    assert await b.count("SELECT count(*) FROM iou_transfers") == 1
    await check_invariants(a, b)
