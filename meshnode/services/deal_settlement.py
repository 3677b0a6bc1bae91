"""Payments of deals whose parties live on two nodes, as seen from inside a transition.

Each payment is made by the node of the member who pays, since that member's keys and
account live there: the booker's node pays the price (and a claimed deposit); the author's
node pays a refund back.

* each transition that makes money due (``deal_effects.amount_due``) records a
  ``deal_payments`` row on both nodes, in the transition's own transaction: ``due`` on the
  payer's node (side ``payer``), ``pending`` on the payee's node (side ``payee``);
* the payer's deal worker then pays through the trust lines (``services.deal_payments``,
  ``iou.pay_remote`` with a transfer id derived from the agreement and the action, so a
  retry never pays twice) and follows the transfer to ``paid`` or ``failed``;
* ``paid``: the payer's node sends a signed notice naming the transfer; the payee's node
  marks its side paid only if it committed that transfer, as payee, to its member, for at
  least the amount due;
* ``failed`` (no route, limit, refusal, expiry): the deal is cancelled by the
  ``payment_failed`` transition, the author's node is told with the reason (its seat is
  released) and both sides show the reason.

**Refunds**: cancelling a paid deal (within the listing's cancellation policy) records a
``refund`` payment on both nodes; the author's node pays it back to the booker the same way.
A refund the lines refuse for now is retried (``REFUND_WINDOW``).

**Deposits** (loans): the borrower's node holds the deposit on the borrower's account from
the booking on (a ledger hold against the borrower's limit, so an acceptance never fails for
want of room); returned → the hold is released; claimed → the hold is released and the
deposit is paid to the lender with the price, through the trust line, as the ``dispute``
payment. A deposit across nodes needs a direct trust line with the lender's community
(the hold is the deposit converted at that line's rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from meshnode.errors import ConflictError
from meshnode.protocol.activities import origin_of
from meshnode.protocol.amounts import parse_amount
from meshnode.protocol.timefmt import format_utc, parse_utc
from meshnode.services import iou, ledger
from meshnode.services.context import NodeContext
from meshnode.store import deals as q
from meshnode.store import iou as iq
from meshnode.store.deals import DealPaymentRow, DealRow
from meshnode.store.iou import LineRow

NOT_AVAILABLE = ("paid bookings across communities need an active trust line between the"
                 " communities: this community has none")
DEPOSIT_NEEDS_LINE = ("a deposit across communities needs a direct trust line with the"
                      " lender's community: this community has none")
IN_FLIGHT = "the payment of this deal is in progress; try again in a moment"
PAYMENT_MIN_WAIT = timedelta(days=1)
REFUND_WINDOW = timedelta(days=7)
HOLD_LIFETIME = timedelta(days=366)


def remote_payments_available(ctx: NodeContext) -> bool:
    """Cross-node deal payments are settled through trust lines (``services.iou``)."""
    del ctx
    return True


def deposit_reason(deal_id: str) -> str:
    """The reason of the ledger hold that keeps a loan's deposit."""
    return f"deal:{deal_id}:deposit"


def payment_deadline(deal: DealRow, payment: DealPaymentRow) -> datetime:
    """Until when the payer's node waits for the other node (a day at least, or the deal's
    expiry; a refund: ``REFUND_WINDOW``). The transfer expires then, so the wait is bounded."""
    created = parse_utc(payment.created_at, field="created_at")
    if payment.action == "refund":
        return created + REFUND_WINDOW
    expiry = parse_utc(deal.expires_at, field="expires_at") if deal.expires_at else created
    return max(created + PAYMENT_MIN_WAIT, expiry)


async def direct_line(ctx: NodeContext, db: aiosqlite.Connection, actor: str
                      ) -> LineRow | None:
    """Our active trust line with the community of ``actor``, if any."""
    for line in await iq.list_lines(db):
        if line.state == "active" and line.peer_origin == origin_of(actor):
            return line
    del ctx
    return None


def in_our_units(ctx: NodeContext, line: LineRow, wanted: int) -> int:
    """The smallest amount of ours that the line converts to at least ``wanted`` of theirs."""
    view = iou.line_view(ctx, line)
    if wanted <= 0:
        return 0
    amount = max(1, view.from_peer(wanted))
    for _ in range(20):
        if view.to_peer(amount) >= wanted:
            break
        amount += 1
    while amount > 1 and view.to_peer(amount - 1) >= wanted:
        amount -= 1
    return amount


async def settles_across(ctx: NodeContext, *, author_uri: str | None = None) -> bool:
    """Whether a paid booking of another community's listing can be settled: an active trust
    line at all (``check_payable``) and, for a deposit (``author_uri`` given), a direct one
    with the lender's community (``deposit_hold``). The listing page asks before showing a
    booking form that would be refused."""
    if not await iou.local_edges(ctx):
        return False
    return author_uri is None or await direct_line(ctx, ctx.store.reader, author_uri) is not None


async def check_payable(ctx: NodeContext, *, amount: int, deposit: int) -> None:
    """Refuse, before anything is stored, a cross-node booking this node cannot settle."""
    if (amount or deposit) and not await settles_across(ctx):
        raise ConflictError(NOT_AVAILABLE, {"amount": "no trust line"})


async def deposit_hold(ctx: NodeContext, author_uri: str, deposit_text: str | None) -> int:
    """The booker's node: the deposit (the lender's currency) in our units, to hold."""
    if not deposit_text:
        return 0
    line = await direct_line(ctx, ctx.store.reader, author_uri)
    if line is None:
        raise ConflictError(DEPOSIT_NEEDS_LINE, {"deposit": "no direct trust line"})
    wanted = parse_amount(deposit_text, decimals=iou.line_view(ctx, line).peer_decimals)
    return in_our_units(ctx, line, wanted)


async def hold_deposit(ctx: NodeContext, tx: aiosqlite.Connection, deal_id: str, *,
                       account: str, amount: int, now: str) -> None:
    """Hold a borrower's deposit against their limit (409 when it does not fit)."""
    if amount > 0:
        await ledger.place_hold(ctx, tx, account=account, amount=amount,
                                reason=deposit_reason(deal_id), now=now,
                                expires_at=format_utc(ctx.clock() + HOLD_LIFETIME))


async def _cancel(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, *, role: str,
                  now: str) -> None:
    """A paid deal is cancelled: record its refund (or wait for the payment to finish)."""
    payer_side = deal.booker_id is not None  # this node paid the price
    for payment in await q.payments_of(tx, deal.id):
        if payment.action == "refund":
            continue
        if payment.state == "paid":
            await q.insert_payment(tx, deal_id=deal.id, action="refund",
                                   side="payee" if payer_side else "payer",
                                   amount=payment.amount,
                                   state="pending" if payer_side else "due", now=now)
        elif payment.state in ("due", "pending"):
            local = role == ("booker" if payer_side else "author")
            if local or payer_side:
                raise ConflictError(IN_FLIGHT)
            # the booker's node cancelled while its payment travels: its notice decides
            # (paid → a refund is recorded then, ``deal_payments.receive_notice``; failed)


async def settle_remote(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, *,
                        action: str, amount: int, role: str = "system") -> None:
    """Record what ``action`` makes due on a cross-node deal (both nodes, in the transition)."""
    now = format_utc(ctx.clock())
    payer_side = deal.booker_id is not None
    if action == "cancel":
        await _cancel(ctx, tx, deal, role=role, now=now)
    if payer_side and action != "start":
        # a group-buy pledge held on the booker's ledger becomes a payment or is released
        await ledger.release_holds(tx, f"deal:{deal.id}")
        if action != "accept":  # returned, claimed (paid below) or called off
            await ledger.release_holds(tx, deposit_reason(deal.id))
    if amount > 0:
        await q.insert_payment(tx, deal_id=deal.id, action=action,
                               side="payer" if payer_side else "payee", amount=amount,
                               state="due" if payer_side else "pending", now=now)


# --- what the parties see ---------------------------------------------------------------------

PAYING_ACTIONS = ("accept", "complete", "dispute")
OPEN_STATES = ("requested", "accepted", "in_progress")


@dataclass(frozen=True)
class PaymentStatus:
    """A deal's money as its parties see it: ``payment`` is paid, pending, awaiting (sent,
    waiting for the other node), failed, refunded, refund_pending or refund_failed (None:
    nothing to pay); ``deposit`` is held, released or claimed (None: no deposit);
    ``reason`` explains a failure or a claim."""

    payment: str | None
    deposit: str | None
    reason: str


def _payment_code(deal: DealRow, payments: Sequence[DealPaymentRow],
                  events: Sequence[aiosqlite.Row]) -> tuple[str | None, str]:
    by_action = {p.action: p for p in payments}
    refund = by_action.get("refund")
    if refund is not None:
        return {"paid": "refunded", "failed": "refund_failed"}.get(
            refund.state, "refund_pending"), refund.reason
    price = next((by_action[a] for a in PAYING_ACTIONS if a in by_action), None)
    if price is not None and deal.amount:
        if price.side == "payer" and price.state == "pending":
            return "awaiting", ""  # our transfer is prepared: the other node must take it
        return {"paid": "paid", "failed": "failed"}.get(price.state, "pending"), (
            price.reason if price.state == "failed" else "")
    if deal.is_local and deal.amount:
        moved = [e["action"] for e in events if e["payments"]]
        if "cancel" in moved:
            return "refunded", ""
        if any(a in PAYING_ACTIONS for a in moved):
            return "paid", ""
    if deal.amount and deal.state in OPEN_STATES:
        return "pending", ""
    return None, ""


def payment_status(deal: DealRow, payments: Sequence[DealPaymentRow],
                   events: Sequence[aiosqlite.Row]) -> PaymentStatus:
    """What the deal page shows of the payment and the deposit (``events``: the deal's
    transition log, whose ``payments`` name the ledger entries of a local deal)."""
    payment, reason = _payment_code(deal, payments, events)
    deposit = None
    if deal.deposit:
        deposit = "held" if deal.state in OPEN_STATES else (
            "claimed" if deal.state == "disputed" else "released")
        if deposit == "claimed":
            reason = deal.reason
    return PaymentStatus(payment=payment, deposit=deposit, reason=reason)
