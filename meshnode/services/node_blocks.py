"""What blocking a whole node does to our side, shown before and applied on confirmation.

``preview`` counts it all without changing anything; ``apply_effects`` then hides the node's
listings (reversibly), cancels the deals in progress with its members (the deal machinery
records the refunds and releases the deposits and pledges held on our ledger), and freezes
the trust line (no IOU crosses a frozen line: ``services/iou/routing``). ``undo_effects``
shows the listings again and unfreezes the lines the block froze; cancelled deals stay
cancelled. Messages need nothing here: a blocked origin's are refused both ways
(``services/direct_messages``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError, ServiceError
from meshnode.protocol import deals as proto
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ProtocolError
from meshnode.protocol.timefmt import format_utc
from meshnode.services import iou
from meshnode.services.context import NodeContext
from meshnode.services.deal_effects import apply, plan
from meshnode.services.permissions import require_admin
from meshnode.store import blocks as q
from meshnode.store import deals as deal_q
from meshnode.store import iou as iq
from meshnode.store import ledger as ledger_store
from meshnode.store import members as member_q
from meshnode.store.deals import DealRow
from meshnode.store.members import MemberRow

CANCEL_ERRORS = (ConflictError, NotFoundError, ProtocolError)


@dataclass(frozen=True)
class DealEffect:
    """One deal in progress with a member of the blocked node, and what the block does."""

    id: str
    title: str
    state: str
    action: str  # "cancel", "decline", or "none" (in progress: the parties finish it)
    paid: str  # what was already paid for it ("0.00" when nothing)
    held: str  # what our ledger holds for it (deposit, pledge), released by the cancel
    outcome: str = ""  # after apply: "cancelled", "declined" or why it could not be


@dataclass(frozen=True)
class LineEffect:
    """The trust line with the blocked node: its balance, and whether the block freezes it."""

    id: str
    state: str
    balance: str
    freeze: bool


@dataclass(frozen=True)
class BlockPreview:
    """Everything blocking ``origin`` changes, in numbers the admin can check."""

    origin: str
    listings_hidden: int
    deals: list[DealEffect] = field(default_factory=list)
    lines: list[LineEffect] = field(default_factory=list)
    conversations: int = 0
    messages: int = 0

    def to_json(self) -> dict[str, Any]:
        """API representation."""
        return asdict(self)


def _action(deal: DealRow, local_role: str) -> str:
    if deal.state == "requested":
        return "decline" if local_role == "author" else "cancel"
    return "cancel" if deal.state == "accepted" else "none"


def _role(deal: DealRow) -> str:
    return "booker" if deal.booker_id is not None else "author"


async def _deal_effect(ctx: NodeContext, deal: DealRow) -> DealEffect:
    decimals = ctx.config.currency.decimals
    payments = await deal_q.payments_of(ctx.store.reader, deal.id)
    paid = sum(p.amount for p in payments if p.state == "paid" and p.action != "refund")
    held = await q.held_for(ctx.store.reader, f"deal:{deal.id}")
    return DealEffect(id=deal.id, title=deal.listing_title, state=deal.state,
                      action=_action(deal, _role(deal)),
                      paid=format_amount(paid, decimals=decimals),
                      held=format_amount(held, decimals=decimals))


async def _line_effects(ctx: NodeContext, origin: str) -> list[LineEffect]:
    found = []
    for line in await iq.list_lines(ctx.store.reader):
        if line.peer_origin != origin or line.state in ("rejected", "closed"):
            continue
        account = (await ledger_store.get_account(ctx.store.reader, line.account)
                   if line.account else None)
        found.append(LineEffect(
            id=line.id, state=line.state, freeze=line.state == "active",
            balance=format_amount(account.balance if account else 0,
                                  decimals=ctx.config.currency.decimals)))
    return found


async def preview(ctx: NodeContext, origin: str) -> BlockPreview:
    """What blocking ``origin`` would do; changes nothing."""
    reader = ctx.store.reader
    deals = [await _deal_effect(ctx, deal) for deal_id in await q.open_deal_ids(reader, origin)
             if (deal := await deal_q.get_deal(reader, deal_id)) is not None]
    conversations, messages = await q.message_counts(reader, origin)
    return BlockPreview(origin=origin, listings_hidden=await q.visible_listings(reader, origin),
                        deals=deals, lines=await _line_effects(ctx, origin),
                        conversations=conversations, messages=messages)


async def _end_deal(ctx: NodeContext, effect: DealEffect) -> str:
    """Cancel (or decline) one deal as its local party would, notice period aside: the
    block is the admin's decision. Returns the outcome, or why it could not be done."""
    if effect.action == "none":
        return "left to the parties (in progress)"
    deal = await deal_q.get_deal(ctx.store.reader, effect.id)
    if deal is None:
        return "gone"
    role = _role(deal)
    member_id = deal.booker_id if role == "booker" else deal.author_id
    member = None if member_id is None else await member_q.get_member(ctx.store.reader,
                                                                       member_id)
    if member is None:
        return "no local party"
    try:
        prepared = await plan(ctx, deal, effect.action, member, ctx.clock(),
                              reason="community blocked")
        async with ctx.store.transaction() as tx:
            await apply(ctx, tx, deal.id, effect.action, role,
                        urls.member_actor(ctx.config.base_url, member.username), prepared,
                        expect=deal, reason="community blocked")
    except CANCEL_ERRORS as exc:
        return f"not {proto.TRANSITIONS[deal.state][effect.action].to}: {exc}"
    return proto.TRANSITIONS[deal.state][effect.action].to


async def apply_effects(ctx: NodeContext, admin: MemberRow | None,
                        origin: str) -> BlockPreview:
    """Hide the listings, end the deals, freeze the lines; returns what was done."""
    require_admin(admin, "only administrators block communities")
    before = await preview(ctx, origin)
    async with ctx.store.transaction() as tx:
        await q.hide_listings(tx, origin, format_utc(ctx.clock()))
    deals = [DealEffect(**{**asdict(d), "outcome": await _end_deal(ctx, d)})
             for d in before.deals]
    for line in before.lines:
        if line.freeze:
            await iou.change_line(ctx, admin, line.id, "freeze")
            async with ctx.store.transaction() as tx:
                await q.remember_frozen_line(tx, line.id, origin)
    return BlockPreview(origin=origin, listings_hidden=before.listings_hidden, deals=deals,
                        lines=before.lines, conversations=before.conversations,
                        messages=before.messages)


async def undo_effects(ctx: NodeContext, admin: MemberRow | None,
                       origin: str) -> dict[str, Any]:
    """Show the listings the block hid and unfreeze the lines it froze."""
    require_admin(admin, "only administrators block communities")
    async with ctx.store.transaction() as tx:
        shown = await q.unhide_listings(tx, origin)
        lines = await q.take_frozen_lines(tx, origin)
    unfrozen: list[str] = []
    refused: dict[str, str] = {}
    for line_id in lines:
        try:
            await iou.change_line(ctx, admin, line_id, "unfreeze")
            unfrozen.append(line_id)
        except (ServiceError, ProtocolError) as exc:  # closed meanwhile: reported, go on
            refused[line_id] = str(exc)
    return {"origin": origin, "listings_shown": shown, "lines_unfrozen": unfrozen,
            "lines_not_unfrozen": refused}
