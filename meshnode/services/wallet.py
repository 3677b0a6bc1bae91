"""What the wallet pages show, assembled from the ledger's use cases (services/ledger.py).

Nothing here moves money: payments, bills, reversals and limit changes go through
``services.ledger`` unchanged; this module only gathers read-side views for the web pages.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from meshnode.protocol.timefmt import format_utc
from meshnode.services import ledger, names
from meshnode.services.balance_chart import BalanceSeries, balance_series
from meshnode.services.context import NodeContext
from meshnode.services.ledger import HistoryPage, Wallet
from meshnode.services.ledger.accounts import PENDING_READ
from meshnode.services.names import OtherSide
from meshnode.store import ledger as q
from meshnode.store.ledger import RequestRow
from meshnode.store.members import MemberRow

HISTORY_PAGE = 20
REQUESTS_SHOWN = 100  # as ledger.list_requests reads them
CHART_ENTRIES = 60


@dataclass(frozen=True)
class WalletView:
    """A member's wallet page: position, open bills both ways, one history page, the chart."""

    wallet: Wallet
    to_pay: list[RequestRow]
    sent: list[RequestRow]
    history: HistoryPage
    series: BalanceSeries | None
    others: dict[str, OtherSide]  # who is on the other side of each history line


@dataclass(frozen=True)
class AccountLine:
    """A member account as the admin ledger page lists it (limits: override or default)."""

    name: str
    balance: int
    min_balance: int | None
    max_balance: int | None
    overridden: bool


async def wallet_view(ctx: NodeContext, member: MemberRow, *, cursor: str | None) -> WalletView:
    """Everything the wallet page needs (``cursor`` pages the history, not the chart).

    Read afresh on every page: kept for the clock's second (bills expire, the chart ends
    now), it made every member's request miss at once each second under load (a 1 s p99
    tail in ``bench_web.py --members``)."""
    now = ctx.clock()
    return await _wallet_view(ctx, member, cursor, now)


async def _wallet_view(ctx: NodeContext, member: MemberRow, cursor: str | None,
                       now: datetime) -> WalletView:
    # Reads that do not depend on each other wait together for the reader thread
    # (``asyncio.gather``): two trips through its queue instead of five (issue 17).
    # One read of the pending requests for the count to pay and the lists shown (the
    # first REQUESTS_SHOWN, newest first, as ledger.list_requests gives them).
    unsettled, recent, older = await asyncio.gather(
        q.list_requests(ctx.store.reader, member.username, status="pending",
                        limit=PENDING_READ),
        ledger.history(ctx, member, limit=CHART_ENTRIES),
        ledger.history(ctx, member, cursor=cursor, limit=HISTORY_PAGE) if cursor else _none())
    if older is None:  # the first page is the newest part of the chart's entries: one read
        first = recent.entries[:HISTORY_PAGE]
        more = len(recent.entries) > HISTORY_PAGE or recent.next_cursor is not None
        page = HistoryPage(entries=first,
                           next_cursor=str(first[-1].seq) if more and first else None)
    else:
        page = older
    wallet, others = await asyncio.gather(
        ledger.wallet_summary(ctx, member, unsettled),
        names.history_names(ctx, member.username, page.entries))
    stamp = format_utc(now)
    pending = [row for row in unsettled[:REQUESTS_SHOWN] if row.expires_at > stamp]
    series = balance_series(recent.entries, member.username, wallet.position.balance, now)
    return WalletView(
        wallet=wallet,
        to_pay=[row for row in pending if row.payer_account == member.username],
        sent=[row for row in pending if row.payee_account == member.username],
        history=page, series=series, others=others,
    )


async def _none() -> None:
    return None


async def reversed_by(ctx: NodeContext, tx_id: str) -> str | None:
    """The id of the transaction that reversed ``tx_id``, if any."""
    return await q.reversal_of(ctx.store.reader, tx_id)


async def member_accounts(ctx: NodeContext) -> list[AccountLine]:
    """Every member account with its balance and effective limits, by name."""
    lines = []
    for account in await q.list_accounts(ctx.store.reader):
        if account.kind != "member":
            continue
        low, high = ledger.effective_limits(ctx, account)
        lines.append(AccountLine(
            name=account.name, balance=account.balance, min_balance=low, max_balance=high,
            overridden=account.min_balance is not None or account.max_balance is not None,
        ))
    return sorted(lines, key=lambda line: line.name)
