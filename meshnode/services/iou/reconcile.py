"""Reconciliation: signed statements of each line exchanged with the peer and compared."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiosqlite

from meshnode.protocol import iou as p
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.timefmt import format_utc
from meshnode.services.context import NodeContext
from meshnode.services.iou.common import nonce, send
from meshnode.services.signing import community_actor
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from meshnode.store.iou import LineRow


async def our_statement(ctx: NodeContext, db: aiosqlite.Connection,
                        line: LineRow) -> p.Statement:
    """Our view of a line: our ledger account's balance (Σ our moves when there is no
    account), Σ the peer's moves, recent transfers and their moves (to explain a mismatch)."""
    local, peer, recent = await iq.line_totals(db, line.id)
    account = await ledger_store.get_account(db, line.account) if line.account else None
    moves = await iq.line_moves(db, line.id, limit=p.MAX_STATEMENT_MOVES)
    return p.Statement(line_id=line.id, balance=local if account is None else account.balance,
                       peer_balance=peer, transfers=tuple(recent),
                       moves=tuple((row[0], int(row[1]), int(row[2])) for row in moves))


async def queue_statements(ctx: NodeContext) -> int:
    """Send a signed statement of every active or frozen line to its peer."""
    now = ctx.clock()
    count = 0
    async with ctx.store.transaction() as tx:
        for line in await iq.list_lines(tx):
            if line.state not in p.OPEN_LINE_STATES or not line.peer_actor:
                continue
            statement = await our_statement(ctx, tx, line)
            document = p.build_statement(statement, actor=community_actor(ctx), to=line.peer_actor,
                                         when=format_utc(now), nonce=nonce())
            await send(ctx, tx, line, document, now)
            count += 1
    return count


async def receive_statement(ctx: NodeContext, tx: aiosqlite.Connection, *, actor: str,
                            statement: p.Statement, raw: Mapping[str, Any]) -> str:
    """Compare the peer's signed statement with our view and record the verdict."""
    line = await iq.get_line(tx, statement.line_id)
    if line is None or line.peer_actor != actor:
        return "ignored: no such line with the sender"
    ours = await our_statement(ctx, tx, line)
    verdict = p.reconcile(ours, statement, in_flight=await iq.prepared_on_line(tx, line.id))
    status, detail = verdict.status, verdict.detail
    moved, _, _ = await iq.line_totals(tx, line.id)
    if moved != ours.balance:  # our ledger no longer matches the line's own transfers
        status = "mismatch"
        detail += (f"; our ledger balance {ours.balance} differs from the sum of this line's"
                   f" transfers {moved}")
    differing = [{"transfer": t, "ours": [local, peer], "theirs": [their_local, their_peer]}
                 for t, local, peer, their_local, their_peer in verdict.differing]
    await iq.save_reconciliation(
        tx, line_id=line.id, status=status, detail=detail,
        only_ours=json.dumps(verdict.only_ours), only_theirs=json.dumps(verdict.only_theirs),
        statement=json.dumps(dict(raw)), now=format_utc(ctx.clock()),
        differing=json.dumps(differing))
    return f"reconciled: {verdict.status}"


async def line_report(ctx: NodeContext, line: LineRow) -> dict[str, Any]:
    """A line for the admin API: limits, balance, agreement, last reconciliation, moves."""
    decimals = ctx.config.currency.decimals
    account = (await ledger_store.get_account(ctx.store.reader, line.account)
               if line.account else None)
    rec = next((row for row in await iq.reconciliations(ctx.store.reader)
                if row["line_id"] == line.id), None)
    moves = await iq.line_moves(ctx.store.reader, line.id, limit=20)
    return {
        "id": line.id, "peer": line.peer_actor or line.requested, "state": line.state,
        "role": "proposer" if line.is_proposer else "acceptor", "account": line.account,
        "limit_out": format_amount(line.limit_out, decimals=decimals),
        "limit_in": format_amount(line.limit_in, decimals=decimals), "rate": line.rate,
        "balance": format_amount(account.balance, decimals=decimals) if account else None,
        "pending_action": line.intent, "last_error": line.last_error,
        "agreement": json.loads(line.agreement) if line.agreement else None,
        "reconciliation": None if rec is None else {
            "status": rec["status"], "detail": rec["detail"],
            "only_ours": json.loads(rec["only_ours"]),
            "only_theirs": json.loads(rec["only_theirs"]),
            "differing": [_differing_json(item, decimals, line.peer_decimals)
                          for item in json.loads(rec["differing"])],
            "checked_at": rec["checked_at"]},
        "recent_transfers": [{"transfer": m[0], "local_delta": m[1], "peer_delta": m[2],
                              "at": m[3]} for m in moves],
    }


def _differing_json(item: Mapping[str, Any], decimals: int,
                    peer_decimals: int | None) -> dict[str, Any]:
    """One transfer recorded differently by the two nodes, amounts as decimal strings:
    ``here`` = our account's change (our currency), ``there`` = theirs (their currency)."""
    ours, theirs = item["ours"], item["theirs"]
    there = decimals if peer_decimals is None else peer_decimals
    return {"transfer": item["transfer"],
            "here": {"ours": format_amount(ours[0], decimals=decimals),
                     "theirs": format_amount(theirs[1], decimals=decimals)},
            "there": {"ours": format_amount(ours[1], decimals=there),
                      "theirs": format_amount(theirs[0], decimals=there)}}
