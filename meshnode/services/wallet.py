"""What the wallet pages show, assembled from the ledger's use cases (services/ledger.py).

Nothing here moves money: payments, bills, reversals and limit changes go through
``services.ledger`` unchanged; this module only gathers read-side views for the web pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from meshnode.protocol.ledger import Movement
from meshnode.protocol.parsing import parse_cursor
from meshnode.protocol.timefmt import format_utc
from meshnode.services import ledger, names
from meshnode.services.balance_chart import BalanceSeries, balance_series
from meshnode.services.context import NodeContext
from meshnode.services.ledger import HistoryPage, Wallet
from meshnode.services.ledger.accounts import PENDING_READ
from meshnode.services.ledger.payments import history_page
from meshnode.services.names import OtherSide
from meshnode.store import ledger as q
from meshnode.store.db import reads_together
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
    others: dict[str, OtherSide]  # who is on the other side of each history line
    # What the chart is drawn from: the account's newest movements (newest first), its
    # balance now and the moment the chart ends. ``series`` walks them only when asked:
    # the page keeps a drawn chart by these, so it need not build the series for a chart
    # it already holds (issue 17).
    account: str
    moves: tuple[Movement, ...]
    now: datetime

    @cached_property
    def series(self) -> BalanceSeries | None:
        """The balance over time the chart draws (None: no movement yet)."""
        return balance_series(self.moves, self.account, self.wallet.position.balance, self.now)


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
    name, stamp = member.username, format_utc(now)
    before = parse_cursor(cursor) if cursor else None
    # Every read in one trip to the reader thread (issue 17: five trips, each a turn of the
    # event loop under load). One read of the pending requests for the count to pay and
    # the lists shown (the first REQUESTS_SHOWN, newest first, as list_requests gives them).
    # The chart reads its entries' movements only; the history page, its whole entries.
    held, holds, unsettled, moves, shown = await reads_together(
        ctx.store.reader,
        lambda db: q.transfer_snapshot(db, (name,), stamp),
        lambda db: q.list_holds(db, name, stamp),
        lambda db: q.list_requests(db, name, status="pending", limit=PENDING_READ),
        lambda db: q.account_movements(db, name, limit=CHART_ENTRIES),
        lambda db: q.account_entries(db, name, before_seq=before, limit=HISTORY_PAGE + 1))
    wallet = ledger.wallet_from(ctx, member, held[0], unsettled, holds, stamp)
    page = history_page(shown, HISTORY_PAGE)
    pending = [row for row in unsettled[:REQUESTS_SHOWN] if row.expires_at > stamp]
    return WalletView(
        wallet=wallet,
        to_pay=[row for row in pending if row.payer_account == name],
        sent=[row for row in pending if row.payee_account == name],
        history=page, others=await names.history_names(ctx, name, page.entries),
        account=name, moves=tuple(moves), now=now,
    )


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
