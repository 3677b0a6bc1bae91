"""Reversals, admin-entered transactions, limit overrides, journal verification and the
admin summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError, PermissionDeniedError
from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import (
    ChainHead,
    ChainReport,
    JournalEntry,
    TransferTerms,
    balances_from_entries,
    build_event,
    parse_limit,
    parse_memo,
    prepare_entry,
    verify_chain,
)
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, number
from meshnode.services.context import NodeContext
from meshnode.services.ledger.accounts import (
    CROSS_COMMUNITY,
    Wallet,
    account_position,
    account_uri,
    check_limits,
    currency_decimals,
    currency_terms,
    effective_limits,
    entry_fields,
    new_id,
    wallet_summary,
)
from meshnode.services.ledger.payments import get_transaction
from meshnode.services.permissions import require_admin
from meshnode.services.signing import sign_as_member
from meshnode.store import ledger as q
from meshnode.store import members as member_q
from meshnode.store.ledger import FUND_ACCOUNT, AccountRow
from meshnode.store.members import MemberRow

ACTIVE_WINDOW = timedelta(days=30)
NEAR_LIMIT_FRACTION = Decimal("0.1")


@dataclass(frozen=True)
class NearLimit:
    """An account within 10% of one of its limits."""

    account: str
    balance: int
    limit: int
    side: str


@dataclass(frozen=True)
class LedgerVerification:
    """The chain report plus the balance checks (cached balances vs recomputed, sum zero)."""

    chain: ChainReport
    balance_mismatches: dict[str, tuple[int, int]]
    balance_sum: int

    @property
    def ok(self) -> bool:
        """True when the chain verifies, every balance matches and the sum is zero."""
        return self.chain.ok and not self.balance_mismatches and self.balance_sum == 0

    def describe(self) -> str:
        """A human-readable report."""
        lines = [self.chain.describe()]
        for account, (stored, computed) in sorted(self.balance_mismatches.items()):
            lines.append(f"  balance of {account}: stored {stored}, journal says {computed}")
        if self.balance_sum != 0:
            lines.append(f"  sum of balances is {self.balance_sum}, not zero")
        return "\n".join(lines)


@dataclass(frozen=True)
class LedgerSummary:
    """The admin overview of the ledger."""

    accounts: int
    transactions: int
    balance_sum: int
    volume: int
    active_traders: int
    journal_ok: bool
    near_limits: list[NearLimit]
    decimals: int


# --- reversals and admin entries ------------------------------------------------------------


async def reverse(
    ctx: NodeContext, member: MemberRow, tx_id: str, *, memo: object = None
) -> JournalEntry:
    """Undo a transaction by a new, linked one (payee → payer); the original stays as is.

    Allowed to the original payee or an admin; a reversal is limit-checked like any transfer
    (an admin can raise a limit first if the payee already spent the money).
    """
    original = await get_transaction(ctx, member, tx_id)
    fields0 = original.fields
    if not (member.is_admin or member.username == fields0.payee):
        raise PermissionDeniedError("only the payee of a transaction or an admin can reverse it")
    if fields0.kind == "reversal":
        raise ConflictError("a reversal cannot itself be reversed; make a new payment")
    note = parse_memo(memo) or f"reversal of {tx_id}"
    now = ctx.clock()
    reversal_id = new_id()
    base = ctx.config.base_url
    terms = TransferTerms(
        object_id=urls.ledger_transaction(base, reversal_id), kind="reversal",
        payer_uri=account_uri(ctx, fields0.payee), payee_uri=account_uri(ctx, fields0.payer),
        amount=fields0.amount, memo=note, created=now,
        reverses_uri=urls.ledger_transaction(base, tx_id),
        entered_by_uri=None if member.username == fields0.payee else account_uri(
            ctx, member.username),
    )
    document = sign_as_member(ctx, member, build_event(terms, currency_terms(ctx)), now)
    created = format_utc(now)
    fields = entry_fields(reversal_id, "reversal", fields0.payee, fields0.payer,
                          fields0.amount, note, member.username, created, reverses=tx_id,
                          listing_id=fields0.listing_id)
    prepared = prepare_entry(fields, document)
    async with ctx.store.transaction() as tx:
        if await q.reversal_of(tx, tx_id) is not None:
            raise ConflictError("this transaction was already reversed")
        head = await check_limits(ctx, tx, fields.payer, fields.payee, fields.amount, created)
        return await q.append_entry(tx, prepared, head)


async def _account_named(ctx: NodeContext, name: object, role: str) -> AccountRow:
    if not isinstance(name,
        str) or not name:
        raise ValidationError(Text("%(role)s is required", role=role),
            {role: "a username or sys:fund"})
    if "@" in name.strip("@"):
        raise ValidationError(CROSS_COMMUNITY, {role: CROSS_COMMUNITY})
    account = await q.get_account(ctx.store.reader, name.lstrip("@"))
    if account is None:
        raise ValidationError(Text("no account named %(name)s", name=repr(name)),
                              {role: "unknown account"})
    return account


async def admin_transfer(
    ctx: NodeContext, admin: MemberRow, *, payer: object, payee: object, amount: object,
    memo: object = None,
) -> JournalEntry:
    """An admin-entered transaction (e.g. a membership fee to ``sys:fund``), marked as such."""
    require_admin(admin, "only admins can enter transactions for others")
    units = parse_amount(amount, decimals=currency_decimals(ctx))
    note = parse_memo(memo)
    source, target = await _account_named(ctx, payer, "payer"), await _account_named(
        ctx, payee, "payee")
    if source.name == target.name:
        raise ValidationError("payer and payee must differ", {"payee": "same as payer"})
    now = ctx.clock()
    tx_id = new_id()
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, tx_id), kind="admin",
        payer_uri=account_uri(ctx, source.name), payee_uri=account_uri(ctx, target.name),
        amount=units, memo=note, created=now, entered_by_uri=account_uri(ctx, admin.username),
    )
    document = sign_as_member(ctx, admin, build_event(terms, currency_terms(ctx)), now)
    created = format_utc(now)
    fields = entry_fields(tx_id, "admin", source.name, target.name, units, note, admin.username,
                     created)
    prepared = prepare_entry(fields, document)
    async with ctx.store.transaction() as tx:
        head = await check_limits(ctx, tx, source.name, target.name, units, created)
        return await q.append_entry(tx, prepared, head)


def _limit_value(ctx: NodeContext, value: object, field: str) -> int | None:
    return None if value is None else parse_limit(value, decimals=currency_decimals(ctx),
                                                  field=field)


async def set_limits(
    ctx: NodeContext, admin: MemberRow, username: str, *, min_balance: object,
    max_balance: object,
) -> Wallet:
    """Override a member's limits (None = back to the default); refused if already breached."""
    require_admin(admin, "only admins can change limits")
    member = await member_q.get_member_by_username(ctx.store.reader, username)
    if member is None:
        raise NotFoundError(f"no member named {username!r}")
    low = _limit_value(ctx, min_balance, "min_balance")
    high = _limit_value(ctx, max_balance, "max_balance")
    if low is not None and low > 0:
        raise ValidationError("min_balance must be zero or negative", {"min_balance": "≤ 0"})
    if high is not None and high < 0:
        raise ValidationError("max_balance must be zero or positive", {"max_balance": "≥ 0"})
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        await _apply_limits(ctx, tx, username, low, high, now)
        await q.insert_limit_change(tx, account=username, min_balance=low, max_balance=high,
                                    changed_by=admin.username, changed_at=now)
    return await wallet_summary(ctx, member)


async def _apply_limits(
    ctx: NodeContext, tx: aiosqlite.Connection, name: str, low: int | None, high: int | None,
    now: str,
) -> None:
    await q.set_limits(tx, name, low, high)
    position = await account_position(ctx, tx, name, now)
    decimals = currency_decimals(ctx)
    lowest = position.balance - position.held_debit
    highest = position.balance + position.held_credit
    if position.min_balance is not None and lowest < position.min_balance:
        raise ConflictError(
            Text("%(name)s's balance with pending holds is %(balance)s; a higher lower limit"
                 " would already be breached", name=name,
                 balance=number(format_amount(lowest, decimals=decimals))),
            {"min_balance": "too high"})
    if position.max_balance is not None and highest > position.max_balance:
        raise ConflictError(
            Text("%(name)s's balance with pending holds is %(balance)s; a lower upper limit"
                 " would already be breached", name=name,
                 balance=number(format_amount(highest, decimals=decimals))),
            {"max_balance": "too low"})


# --- verification and summary ---------------------------------------------------------------


async def signing_keys(ctx: NodeContext) -> dict[str, bytes]:
    """verificationMethod → Ed25519 public key for every member of this node."""
    base = ctx.config.base_url
    keys = {
        urls.ed25519_key_id(urls.member_actor(base, m.username)): m.ed25519_public
        for m in await member_q.list_members(ctx.store.reader)
    }
    # Cross-community legs on the hop and payee nodes are signed by the node itself.
    keys[urls.ed25519_key_id(urls.community_actor(base, ctx.config.handle))] = (
        ctx.identity.ed25519_public)
    return keys


async def _snapshot(
    ctx: NodeContext,
) -> tuple[list[JournalEntry], ChainHead, list[AccountRow]]:
    # Read under the write lock so journal, head and balances come from one instant.
    async with ctx.store.transaction() as tx:
        entries = [entry async for entry in q.iter_entries(tx)]
        return entries, await q.get_head(tx), await q.list_accounts(tx)


async def verify_journal(ctx: NodeContext, *, check_signatures: bool = True) -> LedgerVerification:
    """Verify the hash chain (and signatures) and that every cached balance matches it."""
    entries, head, accounts = await _snapshot(ctx)
    keys = await signing_keys(ctx) if check_signatures else None
    chain = verify_chain(entries, decimals=currency_decimals(ctx), keys=keys, head=head)
    computed = balances_from_entries(entries)
    mismatches = {
        account.name: (account.balance, computed.get(account.name, 0))
        for account in accounts
        if account.balance != computed.get(account.name, 0)
    }
    return LedgerVerification(chain=chain, balance_mismatches=mismatches,
                              balance_sum=sum(account.balance for account in accounts))


def _near_limit(ctx: NodeContext, account: AccountRow) -> NearLimit | None:
    low, high = effective_limits(ctx, account)
    if low is not None and low < 0 and account.balance - low <= -low * NEAR_LIMIT_FRACTION:
        return NearLimit(account.name, account.balance, low, "lower")
    if high is not None and high > 0 and high - account.balance <= high * NEAR_LIMIT_FRACTION:
        return NearLimit(account.name, account.balance, high, "upper")
    return None


async def ledger_summary(ctx: NodeContext, *, check_signatures: bool = False) -> LedgerSummary:
    """Totals, activity, members near their limits and whether the journal verifies."""
    verification = await verify_journal(ctx, check_signatures=check_signatures)
    totals = await q.totals(ctx.store.reader)
    since = format_utc(ctx.clock() - ACTIVE_WINDOW)
    accounts = await q.list_accounts(ctx.store.reader)
    near = [hit for account in accounts if account.kind == "member"
            if (hit := _near_limit(ctx, account)) is not None]
    return LedgerSummary(
        accounts=totals.accounts, transactions=totals.transactions,
        balance_sum=totals.balance_sum, volume=totals.volume,
        active_traders=await q.active_traders(ctx.store.reader, since),
        journal_ok=verification.ok, near_limits=near, decimals=currency_decimals(ctx),
    )


def fund_account() -> str:
    """Name of the community fund's system account."""
    return FUND_ACCOUNT


def signed_document(entry: JournalEntry) -> Mapping[str, Any]:
    """The signed document a journal entry records."""
    return entry.document
