"""Payments of deals whose parties live on two nodes, as seen from inside a transition.

The PAYER is the booker, whose member and keys live on the booker's node, so the booker's
node pays, after the deal is confirmed (the author's signed Accept, or completion for loans):

* each transition that makes money due (``deal_effects.amount_due``) records a
  ``deal_payments`` row on both nodes, in the transition's own transaction: ``due`` on the
  booker's node (side ``payer``), ``pending`` on the author's node (side ``payee``);
* the booker's deal worker then pays through the trust lines (``services.deal_payments``,
  ``iou.pay_remote`` with a transfer id derived from the agreement and the action, so a
  retry never pays twice) and follows the transfer to ``paid`` or ``failed``;
* ``paid``: the booker's node sends a signed notice naming the transfer; the author's node
  marks its side paid only if it committed that transfer, as payee, to the author, for at
  least the price;
* ``failed`` (no route, limit, refusal, expiry): the deal is cancelled by the
  ``payment_failed`` transition, the author's node is told with the reason (its seat is
  released) and both sides show the reason.

Deposits across nodes are refused for now (holding a deposit across two ledgers is not built).
"""

from __future__ import annotations

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.protocol.timefmt import format_utc
from meshnode.services import iou, ledger
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from meshnode.store.deals import DealRow

NOT_AVAILABLE = ("paid bookings across communities need an active trust line between the"
                 " communities: this community has none")
DEPOSIT_NOT_AVAILABLE = "deposits across communities are not available yet: book locally"
NO_REFUND = ("this deal was paid across communities; cancelling it would need a refund,"
             " which is not available yet")
IN_FLIGHT = "the payment of this deal is in progress; try again in a moment"


def remote_payments_available(ctx: NodeContext) -> bool:
    """Cross-node deal payments are settled through trust lines (``services.iou``)."""
    del ctx
    return True


async def check_payable(ctx: NodeContext, *, amount: int, deposit: int) -> None:
    """Refuse, before anything is stored, a cross-node booking this node cannot settle."""
    if deposit:
        raise ConflictError(DEPOSIT_NOT_AVAILABLE, {"deposit": "not across communities"})
    if amount and not await iou.local_edges(ctx):
        raise ConflictError(NOT_AVAILABLE, {"amount": "no trust line"})


async def settle_remote(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, *,
                        action: str, amount: int) -> None:
    """Record what ``action`` makes due on a cross-node deal (both nodes, in the transition)."""
    now = format_utc(ctx.clock())
    payments = await q.payments_of(tx, deal.id)
    payer_side = deal.booker_id is not None
    if action == "cancel":
        for payment in payments:
            if payment.state == "paid":
                raise ConflictError(NO_REFUND)
            if payment.state in ("due", "pending") and payer_side:
                raise ConflictError(IN_FLIGHT)
            if payment.state == "pending":  # the booker's node gave up: the payment failed
                await q.move_payment(tx, deal.id, payment.action, expect="pending",
                                     state="failed", now=now,
                                     reason="the deal was cancelled before it was paid")
    if payer_side and action != "start":
        # a group-buy pledge held on the booker's ledger becomes a payment or is released
        await ledger.release_holds(tx, f"deal:{deal.id}")
    if amount > 0:
        await q.insert_payment(tx, deal_id=deal.id, action=action,
                               side="payer" if payer_side else "payee", amount=amount,
                               state="due" if payer_side else "pending", now=now)
