"""Helpers for IOU tests: open trust lines between real nodes, pay, check invariants."""

from __future__ import annotations

from urllib.parse import urlsplit

from meshnode.services import iou as svc
from meshnode.services import ledger
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from tests.federation.conftest import Node, settle


def handle(node: Node, username: str) -> str:
    """``username@host:port`` of a member of ``node``."""
    return f"{username}@{urlsplit(node.url).netloc}"


async def open_line(a: Node, b: Node, *others: Node, limit_out: str = "100",
                    limit_in: str = "100", rate: str = "1") -> str:
    """``a`` proposes, ``b`` accepts; returns the line id (active on both)."""
    line = await svc.propose_line(a.ctx, None, peer=b.url, limit_out=limit_out,
                                  limit_in=limit_in, rate=rate)
    await settle(a, b, *others)
    await svc.accept_line(b.ctx, None, line.id)
    await settle(a, b, *others)
    assert (await iq.get_line(a.ctx.store.reader, line.id)).state == "active"  # type: ignore[union-attr]
    return line.id


async def balance(node: Node, account: str) -> int:
    row = await ledger_store.get_account(node.ctx.store.reader, account)
    assert row is not None
    return row.balance


async def check_invariants(*nodes: Node) -> None:
    """Every ledger verifies and sums to zero; every line's two views mirror each other."""
    views: dict[str, dict[str, tuple[int, int]]] = {}
    for node in nodes:
        verification = await ledger.verify_journal(node.ctx)
        assert verification.ok, verification.describe()
        held = await node.count("SELECT count(*) FROM iou_transfers WHERE state = 'prepared'")
        holds = await node.count("SELECT count(*) FROM ledger_holds h JOIN iou_transfers t"
                                 " ON t.id = h.reason WHERE t.state != 'prepared'")
        assert holds == 0, "a decided transfer still holds funds"
        for line in await iq.list_lines(node.ctx.store.reader):
            local, peer, _ = await iq.line_totals(node.ctx.store.reader, line.id)
            if line.account:
                assert await balance(node, line.account) == local
            views.setdefault(line.id, {})[node.url] = (local, peer)
        del held
    states: dict[str, set[str]] = {}
    for node in nodes:
        async with node.ctx.store.reader.execute("SELECT id, state FROM iou_transfers") as cur:
            for row in await cur.fetchall():
                states.setdefault(row[0], set()).add(row[1])
    for transfer_id, seen in states.items():
        assert "committed" not in seen or seen == {"committed"}, (transfer_id, seen)
        assert "prepared" not in seen, (transfer_id, seen)
    for line_id, sides in views.items():
        if len(sides) == 2:
            (l1, p1), (l2, p2) = sides.values()
            assert (l1, p1) == (p2, l2), f"line {line_id} does not mirror: {sides}"
