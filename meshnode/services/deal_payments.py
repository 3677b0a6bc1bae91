"""The paying party's node pays cross-node deals (the booker's: price and claimed deposit;
the author's: refund); the other node checks it was paid.

See ``services.deal_settlement`` for the flow. Here:

* :func:`pay_due` (the deal worker's step): pay every ``due`` payment with
  ``iou.pay_remote`` under a transfer id derived from the agreement and the action
  (a keyed hash, so a retry after a crash finds the same transfer and never pays twice,
  and no other node can guess the id and squat it);
* :func:`transfer_decided` (in the IOU inbox transaction that commits or releases our
  transfer): mark the payment paid and notify the payee, or failed (notify, and cancel the
  deal if its price could not be paid);
* :func:`receive_notice` (payee's node, inbox transaction): accept a signed payment notice
  only if this node committed the named transfer as payee, to its member, for the amount due.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiosqlite

from meshnode.errors import ServiceError
from meshnode.protocol import deals as proto
from meshnode.protocol import iou as iou_proto
from meshnode.protocol.amounts import parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.iou import Edge
from meshnode.protocol.retry import backoff_seconds
from meshnode.protocol.timefmt import format_utc
from meshnode.services import deal_settlement, iou
from meshnode.services.context import NodeContext
from meshnode.services.deal_effects import apply, deal_url, plan, queue_to
from meshnode.services.signing import sign_as_member
from meshnode.store import deals as q
from meshnode.store import iou as iq
from meshnode.store import members as member_q
from meshnode.store.deals import DealPaymentRow, DealRow

log = logging.getLogger(__name__)
REFUSALS = (ServiceError, ValidationError)


def transfer_id_for(ctx: NodeContext, deal: DealRow, action: str) -> str:
    """The transfer id paying ``action`` of ``deal``: stable across retries, unguessable."""
    message = f"deal-payment\n{deal.agreement_id}\n{action}".encode()
    return hmac.new(ctx.identity.ed25519_seed, message, hashlib.sha256).hexdigest()[:32]


def _money_text(node: object) -> str | None:
    """The decimal text of an Offer's money node (``resourceQuantity.hasNumericalValue``)."""
    money = node.get("resourceQuantity") if isinstance(node, dict) else None
    value = money.get("hasNumericalValue") if isinstance(money, dict) else None
    return value if isinstance(value, str) else None


def parties(deal: DealRow, action: str) -> tuple[int | None, str, int | None, str]:
    """(payer id, payer IRI, payee id, payee IRI) of the payment ``action`` makes due:
    the booker pays the price and a claimed deposit, the author pays a refund back."""
    if action == "refund":
        return deal.author_id, deal.author_uri, deal.booker_id, deal.booker_uri
    return deal.booker_id, deal.booker_uri, deal.author_id, deal.author_uri


async def source_amount(ctx: NodeContext, deal: DealRow, payment: DealPaymentRow) -> int:
    """What our member pays, in our units, so the other side receives what is due.

    A refund is what the author received, in the author's own units. Otherwise the amount
    due is stated by the Offer in the author's currency (the price; plus the deposit when it
    is claimed): over a direct trust line it is converted back with the line's rate, the
    smallest amount whose conversion reaches it being chosen. Without a direct line the
    amount recorded by the transition is paid (routed hops convert on the way).
    """
    if payment.action == "refund":
        return payment.amount
    agreement = json.loads(deal.offer).get("object", {})
    texts = [_money_text(agreement.get("stipulatesReciprocal"))]
    if payment.action == "dispute":
        texts.append(_money_text(agreement.get("deposit")))
    line = await deal_settlement.direct_line(ctx, ctx.store.reader, deal.author_uri)
    if line is None or not any(texts):
        return payment.amount
    decimals = iou.line_view(ctx, line).peer_decimals
    wanted = sum(parse_amount(text, decimals=decimals) for text in texts if text)
    return max(1, deal_settlement.in_our_units(ctx, line, wanted))


def _handle(actor_uri: str) -> str:
    """``name@host[:port]`` of a member actor IRI (``…/users/name``)."""
    return f"{actor_uri.rsplit('/', 1)[-1]}@{urlsplit(actor_uri).netloc}"


@dataclass(frozen=True)
class KnownPayee:
    """The IOU network, except that the payee is already known (the deal's other party):
    no WebFinger, so a payee node that is down still gets a prepared, retried transfer."""

    network: iou.IouNetwork
    actor: str

    async def resolve_member(self, handle: str) -> str:
        """The deal's other party (``handle`` is derived from it)."""
        del handle
        return self.actor

    async def routing_edges(self, ctx: NodeContext, target_origin: str,
                            enough: iou.Enough | None = None) -> list[Edge]:
        """As the network finds them."""
        return await self.network.routing_edges(ctx, target_origin, enough)

    def wake(self) -> None:
        """As the network does."""
        self.network.wake()


async def pay_due(ctx: NodeContext, network: iou.IouNetwork) -> int:
    """Pay every due payment of a cross-node deal (and settle pending ones already decided)."""
    done = 0
    now = ctx.clock()
    for payment in await q.open_payments(ctx.store.reader, "payer", format_utc(now)):
        deal = await q.get_deal(ctx.store.reader, payment.deal_id)
        payer_id, _, _, payee_uri = parties(deal, payment.action) if deal else (None,) * 4
        if deal is None or payer_id is None or payee_uri is None:
            continue
        transfer_id = transfer_id_for(ctx, deal, payment.action)
        if payment.state == "pending":
            row = await iq.get_transfer(ctx.store.reader, transfer_id)
            if row is not None and row.state in iou_proto.FINAL_STATES:
                async with ctx.store.transaction() as tx:
                    await transfer_decided(ctx, tx, transfer_id)
                done += 1
            continue
        payer = await member_q.get_member(ctx.store.reader, int(payer_id))
        if payer is None:
            continue
        refund = payment.action == "refund"
        memo = f"{'refund, ' if refund else ''}deal: {deal.listing_title}"[:200]
        deadline = deal_settlement.payment_deadline(deal, payment)
        try:
            amount = await source_amount(ctx, deal, payment)
            status = await iou.pay_remote(
                ctx, payer, _handle(str(payee_uri)), amount, memo,
                network=KnownPayee(network, str(payee_uri)), transfer_id=transfer_id,
                expires_in=max(deadline - now, iou.DEFAULT_EXPIRY))
        except REFUSALS as exc:
            if refund and now < deadline:  # the lines may have room later: try again
                await _retry(ctx, payment, f"refund not possible yet: {exc}")
            else:
                await _fail(ctx, deal, payment, f"{'refund' if refund else 'payment'}"
                                                f" refused: {exc}")
            done += 1
            continue
        async with ctx.store.transaction() as tx:
            await q.move_payment(tx, deal.id, payment.action, expect="due", state="pending",
                                 now=format_utc(ctx.clock()), transfer_id=status.id,
                                 amount=status.amount)
            if status.final:
                await transfer_decided(ctx, tx, status.id)
        network.wake()
        done += 1
    return done


async def _retry(ctx: NodeContext, payment: DealPaymentRow, reason: str) -> None:
    now = ctx.clock()
    delay = timedelta(seconds=backoff_seconds(payment.attempts + 1, 0.0))
    async with ctx.store.transaction() as tx:
        await q.retry_payment(tx, payment.deal_id, payment.action, now=format_utc(now),
                              next_attempt_at=format_utc(now + delay), reason=reason[:300])


async def _fail(ctx: NodeContext, deal: DealRow, payment: DealPaymentRow, reason: str) -> None:
    """The payment could not even be prepared: record it (a price: cancel the deal)."""
    async with ctx.store.transaction() as tx:
        if await q.move_payment(tx, deal.id, payment.action, expect="due", state="failed",
                                now=format_utc(ctx.clock()), reason=reason[:300]):
            await _after_failure(ctx, tx, deal.id, payment.action, reason)


async def transfer_decided(ctx: NodeContext, tx: aiosqlite.Connection,
                           transfer_id: str) -> str | None:
    """Our transfer paying a deal was committed or released: move the deal's payment on."""
    payment = await q.payment_by_transfer(tx, transfer_id)
    row = await iq.get_transfer(tx, transfer_id)
    if payment is None or payment.state != "pending" or row is None:
        return None
    now = format_utc(ctx.clock())
    if row.state == "committed":
        await q.move_payment(tx, payment.deal_id, payment.action, expect="pending",
                             state="paid", now=now)
        await _notify(ctx, tx, payment.deal_id, payment.action, state="paid",
                      transfer_id=transfer_id)
        return "deal refunded" if payment.action == "refund" else "deal paid"
    if row.state in iou_proto.FINAL_STATES:
        reason = f"payment {row.state}: {row.reason or 'refused'}"[:300]
        await q.move_payment(tx, payment.deal_id, payment.action, expect="pending",
                             state="failed", now=now, reason=reason)
        await _after_failure(ctx, tx, payment.deal_id, payment.action, reason)
        return "deal payment failed"
    return None


async def _after_failure(ctx: NodeContext, tx: aiosqlite.Connection, deal_id: str,
                         action: str, reason: str) -> None:
    """Tell the other side; cancel an accepted deal whose price could not be paid."""
    deal = await q.get_deal(tx, deal_id)
    payer_id = parties(deal, action)[0] if deal is not None else None
    if deal is None or payer_id is None:
        return
    await _notify(ctx, tx, deal.id, action, state="failed", reason=reason)
    if action != "refund" and "payment_failed" in proto.TRANSITIONS.get(deal.state, {}):
        booker = await member_q.get_member(tx, payer_id)
        prepared = await plan(ctx, deal, "payment_failed", booker, ctx.clock(),
                              reason=reason[:200])
        await apply(ctx, tx, deal.id, "payment_failed", "system", "system", prepared,
                    expect=deal, reason=reason[:200])


async def _notify(ctx: NodeContext, tx: aiosqlite.Connection, deal_id: str, action: str, *,
                  state: str, transfer_id: str | None = None, reason: str = "") -> None:
    """Send the other party a notice, signed by our paying member, of the payment's outcome."""
    deal = await q.get_deal(tx, deal_id)
    if deal is None:
        return
    payer_id, payer_uri, _, payee_uri = parties(deal, action)
    payer = await member_q.get_member(tx, payer_id) if payer_id is not None else None
    if payer is None:
        return
    now = ctx.clock()
    document = build_notice(activity_id=f"{deal_url(ctx, deal.id)}/payment/{action}/{state}",
                            actor=payer_uri, to=payee_uri,
                            agreement_id=deal.agreement_id, action=action, state=state,
                            transfer_id=transfer_id, reason=reason, when=format_utc(now))
    await queue_to(ctx, tx, sign_as_member(ctx, payer, document, now), payee_uri)


def build_notice(*, activity_id: str, actor: str, to: str, agreement_id: str, action: str,
                 state: str, transfer_id: str | None, reason: str, when: str
                 ) -> dict[str, Any]:
    """The unsigned ``Update`` of an Agreement telling the author how its payment went."""
    agreement: dict[str, Any] = {"type": "Agreement", "id": agreement_id,
                                 "paymentFor": action, "paymentState": state}
    if transfer_id:
        agreement["paymentTransfer"] = transfer_id
    if reason:
        agreement["reason"] = reason[:200]
    return {"@context": proto.DEAL_CONTEXT, "id": activity_id, "type": "Update",
            "actor": actor, "to": [to], "object": agreement, "published": when}


def is_notice(agreement: dict[str, Any]) -> bool:
    """An Update of an Agreement that reports a payment (not a state change)."""
    return "paymentState" in agreement


async def receive_notice(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow,
                         actor: str, agreement: dict[str, Any]) -> str:
    """The payee's node: the remote payer says a deal payment is done (or failed); check it."""
    action, state = str(agreement.get("paymentFor")), agreement.get("paymentState")
    payer_id, payer_uri, payee_id, _ = parties(deal, action)
    if payer_id is not None or payee_id is None or actor != payer_uri:
        return "rejected: only the remote payer reports a payment"
    payment = next((p for p in await q.payments_of(tx, deal.id) if p.action == action), None)
    if payment is None or payment.side != "payee":
        return "rejected: this deal owes no such payment"
    if payment.state != "pending":
        return f"ignored: payment already {payment.state}"
    now = format_utc(ctx.clock())
    if state == "failed":
        reason = agreement.get("reason")
        await q.move_payment(tx, deal.id, action, expect="pending", state="failed", now=now,
                             reason=reason[:300] if isinstance(reason, str) else "failed")
        return "payment failed"
    transfer_id = agreement.get("paymentTransfer")
    if state != "paid" or not isinstance(transfer_id, str):
        return "rejected: unknown payment state"
    received, problem = await _check_received(ctx, tx, payment, transfer_id, payer_uri,
                                              payee_id)
    if problem is not None:
        return f"rejected: {problem}"
    await q.move_payment(tx, deal.id, action, expect="pending", state="paid", now=now,
                         transfer_id=transfer_id, amount=received)
    if action != "refund" and deal.state == "cancelled":
        # the booker cancelled while this payment travelled: pay it back
        await q.insert_payment(tx, deal_id=deal.id, action="refund", side="payer",
                               amount=received, state="due", now=now)
        return "payment confirmed; refund due"
    return "refund confirmed" if action == "refund" else "payment confirmed"


async def _check_received(ctx: NodeContext, tx: aiosqlite.Connection, payment: DealPaymentRow,
                          transfer_id: str, payer_uri: str, payee_id: int
                          ) -> tuple[int, str | None]:
    """(amount received, problem or None) of the transfer a notice names."""
    row = await iq.get_transfer(tx, transfer_id)
    payee = await member_q.get_member(tx, payee_id)
    if row is None or row.role != "final" or row.state != "committed":
        return 0, "no transfer with this id was committed here"
    if payee is None or row.credit_account != payee.username or row.payer != payer_uri:
        return 0, "the transfer did not go from the payer to the payee"
    # a refund comes back through the line's conversion, which may round one unit down
    slack = 1 if payment.action == "refund" else 0
    if row.amount < payment.amount - slack:
        return 0, "the transfer is less than the amount due"
    if await q.payment_by_transfer(tx, transfer_id) is not None:
        return 0, "this transfer already paid another deal"
    del ctx
    return row.amount, None


async def payments_json(ctx: NodeContext, deal: DealRow) -> list[dict[str, Any]]:
    """The deal's cross-node payments for the API (amounts in minor units of this node)."""
    return [{"action": p.action, "side": p.side, "amount": p.amount, "state": p.state,
             "transfer": p.transfer_id, "reason": p.reason, "updated_at": p.updated_at}
            for p in await q.payments_of(ctx.store.reader, deal.id)]

