"""The seam between deals and cross-community payments (branch ``iou``, not merged yet).

A paid deal whose parties live on two nodes needs the cross-community IOU service
(``services/iou.py: pay_remote``) to move the amount through the trust line between the two
communities. Until it is wired, :func:`remote_payments_available` is False: booking a paid
listing of another node is refused with a clear 409, and an incoming paid Offer is
answered with a Reject. Free cross-node deals work fully.
"""

from __future__ import annotations

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.services.context import NodeContext
from meshnode.store.deals import DealRow

NOT_AVAILABLE = "paid bookings across communities are not available yet (free ones are)"


def remote_payments_available(ctx: NodeContext) -> bool:
    """Whether cross-node deal payments can be settled (wire ``iou.pay_remote`` here)."""
    del ctx
    return False


async def settle_remote(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, *,
                        action: str, amount: int) -> None:
    """Move ``amount`` for ``deal`` across nodes inside the transition's transaction.

    To wire: call ``iou.pay_remote(ctx, tx, payer=deal.booker_uri, payee=deal.author_uri,
    amount=amount, memo=..., idempotency_key=f"{deal.agreement_id}#{action}")`` (prepare on
    this ledger, commit when the peer confirms) and let the peer's Accept carry its id.
    """
    del tx
    if amount and not remote_payments_available(ctx):
        raise ConflictError(NOT_AVAILABLE)
