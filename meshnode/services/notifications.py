"""The notification centre: what happened that a member should know about.

:func:`notify` is called by the use case that causes the event, on *its* transaction, so the
item commits with the booking, payment or message it reports (a crash loses neither) and a
refused event leaves no item behind. Each hook in the other services is one line calling one
of the small helpers below; what a type means and where it points is decided here only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import aiosqlite

from meshnode.protocol.timefmt import format_utc
from meshnode.services import email
from meshnode.services.context import NodeContext
from meshnode.store import notifications as q
from meshnode.store.deals import DealRow
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.store.notifications import NotificationRow

TYPES = (
    "booking_requested", "booking_accepted", "booking_declined", "booking_cancelled",
    "payment_received", "payment_request", "message", "pledge", "group_buy_reached",
    "group_buy_failed", "listing_expiring", "trustline_proposed", "report_received",
    "queue_turn",
    "report_answered",
    "match",
)
PAGE = 50
BADGE_CAP = 100
EXPIRY_WARNING = timedelta(days=3)  # issue 18: "warn the author 3 days before"
MAX_PAGE = 100
MAX_IDS = 500
READ_KEPT = timedelta(days=90)  # a read item older than this is forgotten
MAX_STORED = 1000  # per member, read or not: the newest are kept
GROUP_BUY_FAILED = "threshold not reached"  # services/deals.settle_group_buy

# A deal transition → (who is told, the type); "other" is the party that did not act.
_DEAL_EVENTS: Mapping[str, tuple[str, str]] = {
    "accept": ("booker", "booking_accepted"),
    "decline": ("booker", "booking_declined"),
    "cancel": ("other", "booking_cancelled"),
}


@dataclass(frozen=True)
class Preferences:
    """A member's choice of notification types (everything is on until turned off)."""

    enabled: frozenset[str]

    @property
    def muted(self) -> frozenset[str]:
        """The types turned off."""
        return frozenset(TYPES) - self.enabled


async def notify(
    ctx: NodeContext, tx: aiosqlite.Connection, member_id: int | None, type_: str, *,
    ref: str = "", url: str = "", detail: str = "", amount: int | None = None,
) -> int | None:
    """Record one item for a local member on the caller's transaction (None: nobody local,
    or the member muted this type)."""
    if type_ not in TYPES:
        raise ValueError(f"unknown notification type {type_!r}")
    if member_id is None:
        return None
    item_id = await q.insert_notification(
        tx, member_id=member_id, type_=type_, ref=ref, target_url=url, detail=detail[:200],
        amount=amount, created_at=format_utc(ctx.clock()))
    if item_id is not None:
        await email.queue_notification(ctx, tx, member_id, item_id)
    return item_id


# --- hooks: one line each in the service that causes the event --------------------------------


async def deal_requested(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow) -> None:
    """A booking (or a group-buy pledge) arrived for a local author's listing."""
    type_ = "pledge" if deal.category == "group-buy" else "booking_requested"
    await notify(ctx, tx, deal.author_id, type_, ref=deal.id, url=f"/deals/{deal.id}",
                 detail=deal.listing_title)


async def deal_moved(ctx: NodeContext, tx: aiosqlite.Connection, deal: DealRow, action: str,
                     role: str, reason: str = "") -> None:
    """A deal changed state by ``role``'s ``action``: tell the local party it concerns."""
    if _deadline_outcome(deal, action, role, reason):
        type_ = "group_buy_reached" if action == "accept" else "group_buy_failed"
        await notify(ctx, tx, deal.booker_id, type_, ref=deal.id, url=f"/deals/{deal.id}",
                     detail=deal.listing_title)  # the author is told once: group_buy_settled
        return
    event = _DEAL_EVENTS.get(action)
    if event is None:
        return
    who, type_ = event
    if who == "other":
        who = "booker" if role == "author" else "author"
    member_id = deal.booker_id if who == "booker" else deal.author_id
    detail = f"{deal.listing_title} — {reason}" if reason else deal.listing_title
    await notify(ctx, tx, member_id, type_, ref=deal.id, url=f"/deals/{deal.id}", detail=detail)


async def group_buy_settled(ctx: NodeContext, tx: aiosqlite.Connection, listing: ListingRow,
                            reached: bool) -> None:
    """The author of a group buy learns its outcome at the deadline, once for all pledges."""
    await notify(ctx, tx, listing.author_id,
                 "group_buy_reached" if reached else "group_buy_failed", ref=listing.id,
                 url=f"/listings/{listing.id}", detail=listing.title)


def _deadline_outcome(deal: DealRow, action: str, role: str, reason: str) -> bool:
    """A group buy's pledges are accepted together at the deadline (never by hand), or
    declined there because the threshold was not reached (the author's node says so)."""
    if deal.category != "group-buy":
        return False
    return action == "accept" or (action == "decline" and (
        role == "system" or reason == GROUP_BUY_FAILED))


async def queue_turn(ctx: NodeContext, tx: aiosqlite.Connection, member_id: int,
                     listing: ListingRow) -> None:
    """A lent item is back and this member is first in its waiting list (services/queue)."""
    await notify(ctx, tx, member_id, "queue_turn", ref=listing.id,
                 url=f"/listings/{listing.id}", detail=listing.title)


async def payment_received(ctx: NodeContext, tx: aiosqlite.Connection, *, account: str,
                           amount: int, tx_id: str, memo: str) -> None:
    """Money reached a member's account (local payment, approved bill, cross-node transfer)."""
    member_id = await q.member_of_account(tx, account)
    await notify(ctx, tx, member_id, "payment_received", ref=tx_id,
                 url=f"/wallet/transactions/{tx_id}", detail=memo, amount=amount)


async def payment_requested(ctx: NodeContext, tx: aiosqlite.Connection, *, payer: str,
                            amount: int, request_id: str, memo: str) -> None:
    """A member is asked to approve a bill."""
    member_id = await q.member_of_account(tx, payer)
    await notify(ctx, tx, member_id, "payment_request", ref=request_id, url="/wallet",
                 detail=memo, amount=amount)


async def admins(ctx: NodeContext, tx: aiosqlite.Connection, type_: str, *, ref: str,
                 url: str, detail: str = "") -> None:
    """Tell every active administrator (trust-line proposals, reports)."""
    for member_id in await q.active_admin_ids(tx):
        await notify(ctx, tx, member_id, type_, ref=ref, url=url, detail=detail)


async def warn_expiring(ctx: NodeContext) -> int:
    """Tell authors, once per expiry date, that a listing of theirs expires within
    ``EXPIRY_WARNING`` (the item links to the listing, whose page offers "Renew")."""
    now = ctx.clock()
    due = await q.expiring_unwarned(ctx.store.reader, now=format_utc(now),
                                    until=format_utc(now + EXPIRY_WARNING),
                                    window_seconds=int(EXPIRY_WARNING.total_seconds()))
    if not due:
        return 0
    async with ctx.store.transaction() as tx:
        for listing_id, author_id, title in due:
            await notify(ctx, tx, author_id, "listing_expiring", ref=listing_id,
                         url=f"/listings/{listing_id}", detail=title)
    return len(due)


async def prune(ctx: NodeContext) -> int:
    """Forget read items older than ``READ_KEPT`` and each member's items beyond the newest
    ``MAX_STORED`` (a member's stored items are capped like every size that can grow);
    run by the periodic maintenance (``federation.runtime.DealWorker``)."""
    before = format_utc(ctx.clock() - READ_KEPT)
    async with ctx.store.transaction() as tx:
        return await q.prune(tx, read_before=before, keep=MAX_STORED)


# --- what members read and set ----------------------------------------------------------------


async def unread_count(ctx: NodeContext, member: MemberRow) -> int:
    """How many items wait for ``member``."""
    return await q.unread_count(ctx.store.reader, member.id)


async def unread_badge(ctx: NodeContext, member: MemberRow) -> int:
    """The unread count for the navigation, counted up to ``BADGE_CAP`` (shown "99+"): every
    page pays for it, so its cost must not grow with a backlog."""
    return await q.unread_count(ctx.store.reader, member.id, BADGE_CAP)


async def list_notifications(
    ctx: NodeContext, member: MemberRow, *, before: int | None = None, limit: int = PAGE,
    unread_only: bool = False,
) -> list[NotificationRow]:
    """The member's items, newest first (``before``: an item id to page on)."""
    return await q.list_for_member(ctx.store.reader, member.id, before=before,
                                   limit=max(1, min(limit, MAX_PAGE)),
                                   unread_only=unread_only)


async def mark_read(ctx: NodeContext, member: MemberRow, ids: list[int] | None) -> int:
    """Mark the member's items read (only their own; all of them when ``ids`` is None)."""
    async with ctx.store.transaction() as tx:
        return await q.mark_read(tx, member.id, ids, format_utc(ctx.clock()))


async def open_notification(ctx: NodeContext, member: MemberRow, item_id: int) -> str | None:
    """Mark one of the member's items read; its target path ('' if none, None if not theirs)."""
    async with ctx.store.transaction() as tx:
        target = await q.target_of(tx, member.id, item_id)
        if target is not None:
            await q.mark_read(tx, member.id, [item_id], format_utc(ctx.clock()))
    return target


async def preferences(ctx: NodeContext, member: MemberRow) -> Preferences:
    """The member's enabled types."""
    muted = await q.muted_types(ctx.store.reader, member.id)
    return Preferences(enabled=frozenset(t for t in TYPES if t not in muted))


async def set_preferences(ctx: NodeContext, member: MemberRow,
                          enabled: Iterable[str]) -> Preferences:
    """Keep only ``enabled`` types on for the member."""
    wanted = frozenset(enabled)
    async with ctx.store.transaction() as tx:
        await q.set_muted(tx, member.id, sorted(frozenset(TYPES) - wanted))
    return Preferences(enabled=wanted & frozenset(TYPES))
