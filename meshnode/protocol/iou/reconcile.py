"""Line statements and their reconciliation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou.fields import ident_field, signed_int
from meshnode.protocol.iou.vocab import IOU_CONTEXT


@dataclass(frozen=True)
class Statement:
    """A node's view of a line: its account balance (own units), the peer's (peer units)."""

    line_id: str
    balance: int
    peer_balance: int
    transfers: tuple[str, ...]
    # The newest moves as the sender recorded them: (transfer, its change, the peer's change).
    moves: tuple[tuple[str, int, int], ...] = ()


MAX_STATEMENT_MOVES = 100


def build_statement(statement: Statement, *, actor: str, to: str, when: str,
                    nonce: str) -> dict[str, Any]:
    """Unsigned ``LineStatement`` for reconciliation."""
    return {
        "@context": IOU_CONTEXT, "id": f"{actor}/iou/lines/{statement.line_id}/stmt-{nonce}",
        "type": "LineStatement", "actor": actor, "to": [to], "line": statement.line_id,
        "balance": str(statement.balance), "peerBalance": str(statement.peer_balance),
        "transfers": list(statement.transfers), "published": when,
    } | ({"moves": [[t, str(local), str(peer)] for t, local, peer in statement.moves]}
         if statement.moves else {})


def parse_statement(act: Mapping[str, Any]) -> Statement:
    """Check and read a ``LineStatement``."""
    transfers = act.get("transfers", [])
    if not isinstance(transfers, list) or len(transfers) > 100 or not all(
            isinstance(t, str) and t.isalnum() and len(t) <= 64 for t in transfers):
        raise ValidationError("transfers must list at most 100 transfer ids")
    listed = act.get("moves", [])
    if not isinstance(listed, list) or len(listed) > MAX_STATEMENT_MOVES:
        raise ValidationError(f"moves must list at most {MAX_STATEMENT_MOVES} moves")
    moves: list[tuple[str, int, int]] = []
    for item in listed:
        if not isinstance(item, list) or len(item) != 3:
            raise ValidationError("a move is [transfer, change, peer change]")
        fields = {"transfer": item[0], "local": item[1], "peer": item[2]}
        moves.append((ident_field(fields, "transfer"), signed_int(fields, "local"),
                      signed_int(fields, "peer")))
    return Statement(line_id=ident_field(act, "line"), balance=signed_int(act, "balance"),
                     peer_balance=signed_int(act, "peerBalance"), transfers=tuple(transfers),
                     moves=tuple(moves))


@dataclass(frozen=True)
class Reconciliation:
    """The outcome of comparing our view of a line with the peer's signed statement."""

    status: str
    detail: str
    only_ours: tuple[str, ...] = ()
    only_theirs: tuple[str, ...] = ()
    # Transfers both sides list with amounts that do not mirror:
    # (transfer, our change, our view of theirs, their change, their view of ours).
    differing: tuple[tuple[str, int, int, int, int], ...] = ()


def reconcile(ours: Statement, theirs: Statement, *, in_flight: int) -> Reconciliation:
    """Mirror check: our balance is their ``peerBalance`` and vice versa.

    With transfers still prepared on this line a difference may be a commit in transit:
    reported as ``in_flight`` rather than a mismatch.
    """
    only_ours = tuple(sorted(set(ours.transfers) - set(theirs.transfers)))
    only_theirs = tuple(sorted(set(theirs.transfers) - set(ours.transfers)))
    their_moves = {transfer: (local, peer) for transfer, local, peer in theirs.moves}
    differing = tuple(
        (transfer, local, peer, *their_moves[transfer]) for transfer, local, peer in ours.moves
        if transfer in their_moves and (local, peer) != their_moves[transfer][::-1])
    if (ours.balance == theirs.peer_balance and ours.peer_balance == theirs.balance
            and not differing):
        return Reconciliation("match", "both views agree")
    detail = (f"our balance {ours.balance} vs their view {theirs.peer_balance}; their balance"
              f" {theirs.balance} vs our view {ours.peer_balance}")
    if differing:
        detail += f"; {len(differing)} transfer(s) recorded with different amounts"
    status = "in_flight" if in_flight and not differing else "mismatch"
    return Reconciliation(status, detail, only_ours, only_theirs, differing)
