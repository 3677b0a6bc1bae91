"""Reconciliation, freeze, lowered limits and closing between REAL nodes on 127.0.0.1.

Both nodes run their HTTP apps; workers are stepped by hand (``settle``); everything the
admins see goes through the JSON API or the admin page over real HTTP.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import aiohttp

from meshnode.services import members
from tests.federation.browser import browser, page, person
from tests.federation.conftest import Node, NodeFactory, settle
from tests.federation.iou_helpers import balance, check_invariants, handle, open_line


async def _admin(node: Node, username: str = "root") -> dict[str, str]:
    await person(node, username, admin=True)
    token = await members.create_token(node.ctx, username)
    return {"Authorization": f"Bearer {token.secret}"}


async def _call(node: Node, headers: dict[str, str], path: str,
                body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        if body is None and not path.endswith(("/freeze", "/unfreeze", "/close")):
            async with session.get(f"{node.url}{path}", headers=headers) as response:
                return response.status, await response.json()
        async with session.post(f"{node.url}{path}", headers=headers,
                                json=body or {}) as response:
            return response.status, await response.json()


async def _pay(payer: Node, headers: dict[str, str], payee: Node, username: str,
               amount: str) -> tuple[int, dict[str, Any]]:
    return await _call(payer, headers, "/api/v1/transfers",
                       {"payee": handle(payee, username), "amount": amount})


async def _two_nodes(make_node: NodeFactory, **limits: str
                     ) -> tuple[Node, Node, str, dict[str, str], dict[str, str]]:
    """alpha (admin 'root', member alice... as admin token) and beta with an active line."""
    a, b = await make_node("alpha"), await make_node("beta")
    ha, hb = await _admin(a), await _admin(b)
    line = await open_line(a, b, limit_out=limits.get("out", "50"),
                           limit_in=limits.get("inn", "50"), rate=limits.get("rate", "1"))
    return a, b, line, ha, hb


async def _reconcile(a: Node, b: Node) -> None:
    await a.workers.iou.reconcile()
    await b.workers.iou.reconcile()
    await settle(a, b)


async def test_reconciliation__signed_statements_agree_on_both_nodes(
    make_node: NodeFactory,
) -> None:
    a, b, line, ha, hb = await _two_nodes(make_node, rate="2")
    assert (await _pay(a, ha, b, "root", "10"))[0] == 202
    assert (await _pay(b, hb, a, "root", "4"))[0] == 202
    await settle(a, b)
    await _reconcile(a, b)
    for node, headers in ((a, ha), (b, hb)):
        status, report = await _call(node, headers, f"/api/v1/trustlines/{line}")
        assert status == 200
        rec = report["reconciliation"]
        assert rec is not None
        assert (rec["status"], rec["differing"], rec["only_ours"]) == ("match", [], [])
        statement = await node.count("SELECT count(*) FROM iou_reconciliations WHERE"
                                     " statement LIKE '%eddsa-jcs-2022%'")
        assert statement == 1  # the peer's statement was signed (and its proof checked)
    await check_invariants(a, b)


async def test_reconciliation__altered_row_is_shown_to_both_admins_with_the_transfer(
    make_node: NodeFactory,
) -> None:
    # Given two payments committed on both nodes
    a, b, line, ha, hb = await _two_nodes(make_node)
    _, first = await _pay(a, ha, b, "root", "10")
    _, second = await _pay(a, ha, b, "root", "3")
    await settle(a, b)
    await _reconcile(a, b)
    # When someone edits beta's record of the second transfer directly in SQLite
    with sqlite3.connect(b.config.database_path) as conn:
        changed = conn.execute("UPDATE iou_line_moves SET local_delta = -200, peer_delta = 200"
                               " WHERE transfer_id = ?", (second["id"],)).rowcount
    assert changed == 1
    await _reconcile(a, b)
    # Then both admins see the mismatch and the transfer that explains it (API)
    for node, headers in ((a, ha), (b, hb)):
        _, report = await _call(node, headers, f"/api/v1/trustlines/{line}")
        rec = report["reconciliation"]
        assert rec["status"] == "mismatch", (node.config.handle, rec)
        assert [item["transfer"] for item in rec["differing"]] == [second["id"]]
        assert first["id"] not in rec["detail"]
    _, report_a = await _call(a, ha, f"/api/v1/trustlines/{line}")
    assert report_a["reconciliation"]["differing"][0]["here"] == {"ours": "3.00",
                                                                  "theirs": "2.00"}
    _, report_b = await _call(b, hb, f"/api/v1/trustlines/{line}")
    assert "differs from the sum of this line's transfers" in report_b["reconciliation"][
        "detail"]
    # and on the admin page of each node
    for node in (a, b):
        async with browser(node, "root") as session:
            text = await page(session, "/admin/trustlines")
        assert "MISMATCH between the two ledgers" in text
        assert "Transfers that explain it:" in text
        assert f"<code>{second['id']}</code>" in text
        assert f"<code>{first['id']}</code>" not in text


async def test_freeze__one_side_freezes_and_payments_are_refused_both_ways(
    make_node: NodeFactory,
) -> None:
    a, b, line, ha, hb = await _two_nodes(make_node)
    assert (await _pay(a, ha, b, "root", "5"))[0] == 202
    await settle(a, b)
    # When beta's admin freezes the line
    status, report = await _call(b, hb, f"/api/v1/trustlines/{line}/freeze")
    assert (status, report["state"]) == (200, "frozen")
    await settle(a, b)
    assert (await _call(a, ha, f"/api/v1/trustlines/{line}"))[1]["state"] == "frozen"
    # Then a payment either way is refused with a readable reason, and nothing moves
    for payer, headers, payee in ((a, ha, b), (b, hb, a)):
        status, body = await _pay(payer, headers, payee, "root", "1")
        assert status == 409, body
        assert "is frozen" in body["message"]
    await settle(a, b)
    assert await balance(a, "root") == -500
    assert await balance(b, "root") == 500
    assert await a.count("SELECT count(*) FROM iou_transfers") == 1
    assert await b.count("SELECT count(*) FROM iou_transfers") == 1
    # A prepare already on its way when the line froze is refused by the other node
    from meshnode.federation.runtime import IOU_NETWORK
    from meshnode.services import iou as svc
    from meshnode.store import iou as iq
    with sqlite3.connect(a.config.database_path) as conn:  # alpha has not heard yet
        conn.execute("UPDATE iou_lines SET state = 'active' WHERE id = ?", (line,))
    root = await members.get_member(a.ctx, "root")
    late = await svc.pay_remote(a.ctx, root, handle(b, "root"), 100, "",
                                network=a.app[IOU_NETWORK])
    await settle(a, b)
    refused = await svc.get_transfer(a.ctx, None, late.id)
    assert (refused.state, refused.reason) == ("released", "trust line is frozen")
    with sqlite3.connect(a.config.database_path) as conn:
        conn.execute("UPDATE iou_lines SET state = 'frozen' WHERE id = ?", (line,))
    # When it is unfrozen, payments flow again
    assert (await _call(b, hb, f"/api/v1/trustlines/{line}/unfreeze"))[0] == 200
    await settle(a, b)
    assert (await iq.get_line(a.ctx.store.reader, line)).state == "active"  # type: ignore[union-attr]
    assert (await _pay(b, hb, a, "root", "2"))[0] == 202
    await settle(a, b)
    assert await balance(a, "root") == -300
    await check_invariants(a, b)


async def test_lower_limit__below_the_balance_refuses_going_further_over_it(
    make_node: NodeFactory,
) -> None:
    # Given alpha owes beta 30 on a 50/50 line
    a, b, line, ha, hb = await _two_nodes(make_node)
    assert (await _pay(a, ha, b, "root", "30"))[0] == 202
    await settle(a, b)
    # When beta lowers what alpha may owe it to 20 (below the 30 owed)
    status, report = await _call(b, hb, f"/api/v1/trustlines/{line}/limits",
                                 {"limit_in": "20"})
    assert (status, report["limit_in"]) == (200, "20.00")
    await settle(a, b)
    assert (await _call(a, ha, f"/api/v1/trustlines/{line}"))[1]["limit_out"] == "20.00"
    # Then alpha cannot pay beta even 1 more, with a readable reason; nothing moves
    status, body = await _pay(a, ha, b, "root", "1")
    assert status == 409, body
    assert "capacity" in body["message"]
    # Even if alpha had not heard of the new limit, beta refuses at its side
    with sqlite3.connect(a.config.database_path) as conn:
        conn.execute("UPDATE iou_lines SET limit_out = 5000 WHERE id = ?", (line,))
        conn.execute("UPDATE ledger_accounts SET max_balance = 5000 WHERE name LIKE 'node:%'")
    status, body = await _pay(a, ha, b, "root", "1")
    assert status == 202, body
    await settle(a, b)
    _, refused = await _call(a, ha, f"/api/v1/transfers/{body['id']}")
    assert refused["state"] == "released"
    assert "limit exceeded" in refused["reason"]
    assert await balance(a, "root") == -3000
    # But beta paying alpha (back toward the limit) is fine
    assert (await _pay(b, hb, a, "root", "12"))[0] == 202
    await settle(a, b)
    assert await balance(a, "root") == -1800
    assert await balance(b, "root") == 1800
    await check_invariants(a, b)


async def test_close__refused_with_a_balance_then_visible_on_both_nodes_at_zero(
    make_node: NodeFactory,
) -> None:
    a, b, line, ha, hb = await _two_nodes(make_node)
    assert (await _pay(a, ha, b, "root", "7"))[0] == 202
    await settle(a, b)
    # Closing with a non-zero balance: 409 on either side, the line stays active
    for node, headers in ((a, ha), (b, hb)):
        status, body = await _call(node, headers, f"/api/v1/trustlines/{line}/close")
        assert status == 409, body
        assert "closing needs zero" in body["message"]
    await settle(a, b)
    for node, headers in ((a, ha), (b, hb)):
        assert (await _call(node, headers, f"/api/v1/trustlines/{line}"))[1]["state"] == "active"
    # Paid back to zero, beta closes: both nodes show it closed, payments refused
    assert (await _pay(b, hb, a, "root", "7"))[0] == 202
    await settle(a, b)
    status, body = await _call(b, hb, f"/api/v1/trustlines/{line}/close")
    assert (status, body["state"]) == (200, "closed")
    await settle(a, b)
    for node, headers in ((a, ha), (b, hb)):
        _, report = await _call(node, headers, f"/api/v1/trustlines/{line}")
        assert (report["state"], report["balance"]) == ("closed", "0.00")
        async with browser(node, "root") as session:
            assert "Closed" in await page(session, "/admin/trustlines")
    status, body = await _pay(a, ha, b, "root", "1")
    assert status == 409, body
    await check_invariants(a, b)


async def test_reconciliation__altered_ledger_balance_is_a_mismatch_on_both_nodes(
    make_node: NodeFactory,
) -> None:
    # Given a committed payment, then beta's ledger row for alpha's account edited in SQLite
    a, b, line, ha, hb = await _two_nodes(make_node)
    _, paid = await _pay(a, ha, b, "root", "10")
    await settle(a, b)
    with sqlite3.connect(b.config.database_path) as conn:
        changed = conn.execute("UPDATE ledger_accounts SET balance = balance + 500 WHERE name"
                               " LIKE 'node:%'").rowcount
    assert changed == 1
    await _reconcile(a, b)
    # Then alpha sees beta's balance disagree with its view; beta sees its own ledger no
    # longer equals the sum of the line's transfers; the transfers themselves agree
    _, report_a = await _call(a, ha, f"/api/v1/trustlines/{line}")
    _, report_b = await _call(b, hb, f"/api/v1/trustlines/{line}")
    rec_a, rec_b = report_a["reconciliation"], report_b["reconciliation"]
    assert (rec_a["status"], rec_b["status"]) == ("mismatch", "mismatch")
    assert "their balance -500 vs our view -1000" in rec_a["detail"]
    assert ("our ledger balance -500 differs from the sum of this line's transfers -1000"
            in rec_b["detail"])
    assert rec_a["differing"] == rec_b["differing"] == []
    assert paid["id"] in [move["transfer"] for move in report_b["recent_transfers"]]
