"""The booker's node pays cross-node deals; the author's node checks it was paid.

See ``services.deal_settlement`` for the flow. Here:

* :func:`pay_due` (the deal worker's step): pay every ``due`` payment with
  ``iou.pay_remote`` under a transfer id derived from the agreement and the action
  (a keyed hash, so a retry after a crash finds the same transfer and never pays twice,
  and no other node can guess the id and squat it);
* :func:`transfer_decided` (in the IOU inbox transaction that commits or releases our
  transfer): mark the payment paid and notify the author, or failed and cancel the deal;
* :func:`receive_notice` (author's node, inbox transaction): accept a signed payment notice
  only if this node committed the named transfer as payee, to the author, for the price.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import aiosqlite

from meshnode.errors import ServiceError
from meshnode.protocol import deals as proto
from meshnode.protocol import iou as iou_proto
from meshnode.protocol.activities import origin_of
from meshnode.protocol.amounts import parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.services import iou
from meshnode.services.context import NodeContext
from meshnode.services.deal_effects import apply, deal_url, plan, queue_to, sign_as
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


def _price_text(deal: DealRow) -> str | None:
    """The price as the Offer states it, in the author's currency (decimal text)."""
    agreement = json.loads(deal.offer).get("object", {})
    money = agreement.get("stipulatesReciprocal", {}).get("resourceQuantity", {})
    value = money.get("hasNumericalValue") if isinstance(money, dict) else None
    return value if isinstance(value, str) else None


async def source_amount(ctx: NodeContext, deal: DealRow, payment: DealPaymentRow) -> int:
    """What the booker pays, in our units, so the author receives at least the price.

    Over a direct trust line the price (author's units) is converted back with the line's
    rate; the smallest amount whose conversion reaches the price is chosen. Without a direct
    line the amount recorded by the transition is paid (routed hops convert on the way).
    """
    text = _price_text(deal)
    lines = [line for line in await iq.list_lines(ctx.store.reader)
             if line.state == "active" and line.peer_origin == origin_of(deal.author_uri)]
    if text is None or not lines:
        return payment.amount
    view = iou.line_view(ctx, lines[0])
    wanted = parse_amount(text, decimals=view.peer_decimals)
    amount = max(1, view.from_peer(wanted))
    for _ in range(20):
        if view.to_peer(amount) >= wanted:
            break
        amount += 1
    while amount > 1 and view.to_peer(amount - 1) >= wanted:
        amount -= 1
    return amount


def _handle(actor_uri: str) -> str:
    """``name@host[:port]`` of a member actor IRI (``…/users/name``)."""
    return f"{actor_uri.rsplit('/', 1)[-1]}@{urlsplit(actor_uri).netloc}"


async def pay_due(ctx: NodeContext, network: iou.IouNetwork) -> int:
    """Pay every due payment of a cross-node deal (and settle pending ones already decided)."""
    done = 0
    for payment in await q.open_payments(ctx.store.reader, "payer"):
        deal = await q.get_deal(ctx.store.reader, payment.deal_id)
        if deal is None or deal.booker_id is None:
            continue
        transfer_id = transfer_id_for(ctx, deal, payment.action)
        if payment.state == "pending":
            row = await iq.get_transfer(ctx.store.reader, transfer_id)
            if row is not None and row.state in iou_proto.FINAL_STATES:
                async with ctx.store.transaction() as tx:
                    await transfer_decided(ctx, tx, transfer_id)
                done += 1
            continue
        booker = await member_q.get_member(ctx.store.reader, deal.booker_id)
        if booker is None:
            continue
        memo = f"deal: {deal.listing_title}"[:200]
        try:
            amount = await source_amount(ctx, deal, payment)
            status = await iou.pay_remote(ctx, booker, _handle(deal.author_uri), amount, memo,
                                          network=network, transfer_id=transfer_id)
        except REFUSALS as exc:
            await _fail(ctx, deal, payment, f"payment refused: {exc}")
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


async def _fail(ctx: NodeContext, deal: DealRow, payment: DealPaymentRow, reason: str) -> None:
    """The payment could not even be prepared: record it and cancel the deal."""
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
        return "deal paid"
    if row.state in iou_proto.FINAL_STATES:
        reason = f"payment {row.state}: {row.reason or 'refused'}"[:300]
        await q.move_payment(tx, payment.deal_id, payment.action, expect="pending",
                             state="failed", now=now, reason=reason)
        await _after_failure(ctx, tx, payment.deal_id, payment.action, reason)
        return "deal payment failed"
    return None


async def _after_failure(ctx: NodeContext, tx: aiosqlite.Connection, deal_id: str,
                         action: str, reason: str) -> None:
    """Cancel an accepted deal whose payment failed (tells the author); else notify."""
    deal = await q.get_deal(tx, deal_id)
    if deal is None or deal.booker_id is None:
        return
    if "payment_failed" in proto.TRANSITIONS.get(deal.state, {}):
        booker = await member_q.get_member(tx, deal.booker_id)
        prepared = await plan(ctx, deal, "payment_failed", booker, ctx.clock(),
                              reason=reason[:200])
        await apply(ctx, tx, deal.id, "payment_failed", "system", "system", prepared,
                    expect=deal, reason=reason[:200])
        return
    await _notify(ctx, tx, deal.id, action, state="failed", reason=reason)


async def _notify(ctx: NodeContext, tx: aiosqlite.Connection, deal_id: str, action: str, *,
                  state: str, transfer_id: str | None = None, reason: str = "") -> None:
    """Send the author a notice, signed by the booker, of the payment's outcome."""
    deal = await q.get_deal(tx, deal_id)
    if deal is None or deal.booker_id is None:
        return
    booker = await member_q.get_member(tx, deal.booker_id)
    if booker is None:
        return
    now = ctx.clock()
    document = build_notice(activity_id=f"{deal_url(ctx, deal.id)}/payment/{action}/{state}",
                            actor=deal.booker_uri, to=deal.author_uri,
                            agreement_id=deal.agreement_id, action=action, state=state,
                            transfer_id=transfer_id, reason=reason, when=format_utc(now))
    await queue_to(ctx, tx, sign_as(ctx, booker, document, now), deal.author_uri)


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
    """Author's node: the booker says a deal payment is done (or failed); check it."""
    if deal.author_id is None or deal.booker_id is not None or actor != deal.booker_uri:
        return "rejected: only the remote booker reports a payment"
    action, state = str(agreement.get("paymentFor")), agreement.get("paymentState")
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
    problem = await _check_received(ctx, tx, deal, payment, transfer_id)
    if problem is not None:
        return f"rejected: {problem}"
    await q.move_payment(tx, deal.id, action, expect="pending", state="paid", now=now,
                         transfer_id=transfer_id)
    return "payment confirmed"


async def _check_received(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow,
                          payment: DealPaymentRow, transfer_id: str) -> str | None:
    row = await iq.get_transfer(tx, transfer_id)
    author = await member_q.get_member(tx, deal.author_id) if deal.author_id else None
    if row is None or row.role != "final" or row.state != "committed":
        return "no transfer with this id was committed here"
    if author is None or row.credit_account != author.username or row.payer != deal.booker_uri:
        return "the transfer did not go from the booker to the author"
    if row.amount < payment.amount:
        return "the transfer is less than the price"
    if await q.payment_by_transfer(tx, transfer_id) is not None:
        return "this transfer already paid another deal"
    return None


async def payments_json(ctx: NodeContext, deal: DealRow) -> list[dict[str, Any]]:
    """The deal's cross-node payments for the API (amounts in minor units of this node)."""
    return [{"action": p.action, "side": p.side, "amount": p.amount, "state": p.state,
             "transfer": p.transfer_id, "reason": p.reason, "updated_at": p.updated_at}
            for p in await q.payments_of(ctx.store.reader, deal.id)]

