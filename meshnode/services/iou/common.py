"""What every part of the IOU feature shares: the transfer status result, the network
collaborator, line conversion, and queueing a node-signed activity to a line's peer."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.protocol import iou as p
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text
from meshnode.services.context import NodeContext
from meshnode.services.publishing import queue_activity
from meshnode.services.signing import sign_as_node
from meshnode.store.iou import LineRow, TransferRow

Enough = Callable[[Sequence[p.Edge]], bool]
DEFAULT_EXPIRY = timedelta(minutes=2)
HOLD_GRACE = timedelta(days=30)
EXPIRED = "expired"
NODE_SIGNER = "node"


# --- results and collaborators --------------------------------------------------------------


@dataclass(frozen=True)
class TransferStatus:
    """What the payer (or a deal) sees of a cross-node transfer."""

    id: str
    state: str
    role: str
    payer: str
    payee: str
    amount: int
    decimals: int
    route: tuple[str, ...]
    reason: str | None
    created_at: str
    expires_at: str
    decided_at: str | None
    # Set when the payer stated the amount in the payee's currency (what the payee receives).
    payee_amount: int | None = None
    payee_decimals: int | None = None

    @property
    def final(self) -> bool:
        """True once committed, released or expired."""
        return self.state in p.FINAL_STATES

    def as_json(self) -> dict[str, Any]:
        """API representation (amount as a decimal string of the payer's currency)."""
        return {
            "id": self.id, "state": self.state, "role": self.role, "payer": self.payer,
            "payee": self.payee, "amount": format_amount(self.amount, decimals=self.decimals),
            "route": list(self.route), "reason": self.reason, "created_at": self.created_at,
            "expires_at": self.expires_at, "decided_at": self.decided_at,
            "amount_in": "payer" if self.payee_amount is None else "payee",
            "payee_amount": None if self.payee_amount is None else format_amount(
                self.payee_amount, decimals=self.payee_decimals or 0),
        }


class IouNetwork(Protocol):
    """Network work a payment needs before it is prepared (implemented by federation)."""

    async def resolve_member(self, handle: str) -> str:
        """The actor id of ``name@host[:port]`` (WebFinger)."""

    async def routing_edges(self, ctx: NodeContext, target_origin: str,
                            enough: Enough | None = None) -> list[p.Edge]:
        """Known usable line directions, ours and our neighbours' (for path finding).

        ``enough(edges)``, checked before each farther ring of neighbours is asked: True
        stops the search (the shortest route with room is already known)."""

    def wake(self) -> None:
        """New outgoing activities were queued."""


# --- helpers --------------------------------------------------------------------------------


def node_account_name(peer_origin: str) -> str:
    """Ledger account of a peer community: ``node:<host[:port]>``."""
    return "node:" + (urlsplit(peer_origin).netloc or peer_origin)


def line_view(ctx: NodeContext, line: LineRow) -> p.LineView:
    """Conversion helper for one line."""
    return p.LineView(line_id=line.id, peer=line.peer_actor or "", rate=Decimal(line.rate),
                      is_proposer=bool(line.is_proposer),
                      local_decimals=ctx.config.currency.decimals,
                      peer_decimals=line.peer_decimals if line.peer_decimals is not None
                      else ctx.config.currency.decimals)


def nonce() -> str:
    return secrets.token_hex(8)


def transfer_status(ctx: NodeContext, row: TransferRow) -> TransferStatus:
    """The status a payer (or a deal) sees of a stored transfer."""
    return TransferStatus(
        id=row.id, state=row.state, role=row.role, payer=row.payer, payee=row.payee,
        amount=row.amount, decimals=ctx.config.currency.decimals,
        route=tuple(json.loads(row.route)), reason=row.reason, created_at=row.created_at,
        expires_at=row.expires_at, decided_at=row.decided_at, payee_amount=row.payee_amount,
        payee_decimals=row.payee_decimals)


async def send(ctx: NodeContext, tx: aiosqlite.Connection, line: LineRow,
                activity: Mapping[str, Any], now: datetime) -> None:
    """Sign ``activity`` as the node and queue it to the line's peer inbox."""
    if not line.peer_inbox:
        raise ConflictError(Text("trust line %(id)s has no known peer inbox", id=line.id))
    signed = sign_as_node(ctx, activity, now)
    await queue_activity(tx, signed, public=False, inboxes=[line.peer_inbox],
                         now=format_utc(now))


# --- trust lines: admin actions -------------------------------------------------------------
