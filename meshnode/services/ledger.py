"""The community's mutual-credit ledger: payments, bills, reversals, admin entries, limits.

Every use case signs its document with the acting member's Ed25519 key *before* taking the
write lock, then checks limits and appends to the journal inside ONE ``store.transaction()``:
the store serialises writers, so no interleaving of concurrent payments can breach a limit.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.ledger import (
    MEMO_MAX,
    AccountPosition,
    ChainHead,
    ChainReport,
    CurrencyTerms,
    EntryFields,
    JournalEntry,
    LimitBreach,
    PreparedEntry,
    TransferTerms,
    balances_from_entries,
    build_decision,
    build_event,
    build_request,
    check_transfer,
    parse_limit,
    parse_memo,
    prepare_entry,
    verify_chain,
)
from meshnode.protocol.proofs import create_proof
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, When, message_of, number
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.member_limits import member_limited
from meshnode.services.members import check_username, member_identity
from meshnode.store import ledger as q
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store.ledger import FUND_ACCOUNT, AccountRow, HeldAccount, HoldRow, RequestRow
from meshnode.store.members import MemberRow

DEFAULT_REQUEST_LIFETIME = timedelta(days=14)
MAX_REQUEST_LIFETIME = timedelta(days=90)
ACTIVE_WINDOW = timedelta(days=30)
NEAR_LIMIT_FRACTION = Decimal("0.1")
CROSS_COMMUNITY = "cross-community bills and admin entries are not available"
ALREADY_DECIDED = {
    "approved": "this payment request is already approved",
    "declined": "this payment request is already declined",
    "expired": "this payment request is already expired",
}


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wallet:
    """A member's account as a wallet page or ``GET /api/v1/wallet`` shows it."""

    account: str
    position: AccountPosition
    decimals: int
    symbol: str
    pending_requests_to_pay: int = 0
    holds: tuple[HoldRow, ...] = ()  # what each part of ``held_*`` is for

    def fmt(self, units: int | None) -> str | None:
        """Format minor units as a decimal string (None stays None: unlimited)."""
        return None if units is None else format_amount(units, decimals=self.decimals)


@dataclass(frozen=True)
class HistoryPage:
    """A page of journal entries, newest first, with the cursor of the next page."""

    entries: list[JournalEntry]
    next_cursor: str | None


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


# --- helpers --------------------------------------------------------------------------------


def currency_terms(ctx: NodeContext) -> CurrencyTerms:
    """The currency as documents name it."""
    currency = ctx.config.currency
    return CurrencyTerms(
        uri=urls.currency_uri(ctx.config.base_url), symbol=currency.symbol,
        decimals=currency.decimals,
    )


def _decimals(ctx: NodeContext) -> int:
    return ctx.config.currency.decimals


def default_limits(ctx: NodeContext) -> tuple[int, int]:
    """The configured default (lower, upper) limits of member accounts, in minor units."""
    currency = ctx.config.currency
    scale = Decimal(10) ** currency.decimals
    return (int(Decimal(currency.default_min_balance) * scale),
            int(Decimal(currency.default_max_balance) * scale))


def effective_limits(ctx: NodeContext, account: AccountRow) -> tuple[int | None, int | None]:
    """An account's limits: its overrides, else the defaults (members) or none (system)."""
    if account.kind == "system":
        return account.min_balance, account.max_balance
    low, high = default_limits(ctx)
    return (account.min_balance if account.min_balance is not None else low,
            account.max_balance if account.max_balance is not None else high)


def account_uri(ctx: NodeContext, name: str) -> str:
    """The IRI documents use for an account: the member's actor, or a community account."""
    if name.startswith("sys:"):
        return urls.ledger_system_account(ctx.config.base_url, ctx.config.handle, name)
    return urls.member_actor(ctx.config.base_url, name)


def _new_id() -> str:
    return secrets.token_hex(16)


def _sign(ctx: NodeContext, member: MemberRow, document: dict[str, Any], now: datetime) -> dict[
    str, Any
]:
    seed = member_identity(ctx, member).ed25519_seed
    method = urls.ed25519_key_id(urls.member_actor(ctx.config.base_url, member.username))
    return create_proof(document, seed=seed, verification_method=method, created=now)


def _as_position(ctx: NodeContext, held: HeldAccount) -> AccountPosition:
    low, high = effective_limits(ctx, held.account)
    return AccountPosition(name=held.account.name, balance=held.account.balance,
                           min_balance=low, max_balance=high, held_debit=held.held_debit,
                           held_credit=held.held_credit)


async def _positions(
    ctx: NodeContext, db: aiosqlite.Connection, names: tuple[str] | tuple[str, str], now: str
) -> tuple[dict[str, AccountPosition], ChainHead]:
    held, head = await q.transfer_snapshot(db, names, now)
    missing = set(names) - held.keys()
    if missing:
        raise NotFoundError(f"no ledger account {sorted(missing)[0]!r}")
    return {name: _as_position(ctx, item) for name, item in held.items()}, head


async def _position(
    ctx: NodeContext, db: aiosqlite.Connection, name: str, now: str
) -> AccountPosition:
    positions, _ = await _positions(ctx, db, (name,), now)
    return positions[name]


def _breach_error(ctx: NodeContext, breach: LimitBreach, amount: int) -> LimitExceededError:
    available = format_amount(breach.available, decimals=_decimals(ctx))
    wanted = format_amount(amount, decimals=_decimals(ctx))
    if breach.side == "spend":
        message = Text("limit exceeded: %(account)s can spend at most %(available)s"
                       " %(symbol)s now (asked %(asked)s)", account=breach.account,
                       available=number(available), symbol=ctx.config.currency.symbol,
                       asked=number(wanted))
    else:
        message = Text("limit exceeded: %(account)s can receive at most %(available)s"
                       " %(symbol)s now (asked %(asked)s)", account=breach.account,
                       available=number(available), symbol=ctx.config.currency.symbol,
                       asked=number(wanted))
    return LimitExceededError(message, available=breach.available,
                              fields={"amount": Text("at most %(available)s available",
                                                     available=number(available))},
                              side=breach.side, account=breach.account)


async def _check_limits(
    ctx: NodeContext, db: aiosqlite.Connection, payer: str, payee: str, amount: int, now: str
) -> ChainHead:
    """Refuse a transfer that breaches a limit; return the chain head read with the balances."""
    positions, head = await _positions(ctx, db, (payer, payee), now)
    breach = check_transfer(positions[payer], positions[payee], amount)
    if breach is not None:
        raise _breach_error(ctx, breach, amount)
    return head


async def _counterparty(ctx: NodeContext, username: object, me: MemberRow, role: str) -> MemberRow:
    """Resolve the other member of a transfer; 422 for remote, unknown, disabled or self."""
    if not isinstance(username, str) or not username:
        raise ValidationError(Text("%(role)s is required", role=role),
            {role: "a member's username"})
    if "@" in username.strip("@"):
        raise ValidationError(CROSS_COMMUNITY, {role: CROSS_COMMUNITY})
    name = username.lstrip("@")
    try:
        check_username(name)
    except ValidationError as exc:  # report it on the form's field, not on "username"
        raise ValidationError(message_of(exc),
                              {role: "1-30 lowercase letters, digits or _"}) from exc
    other = await member_q.get_member_by_username(ctx.store.reader, name)
    if other is None:
        raise ValidationError(Text("no member named %(name)s", name=repr(name)),
                              {role: "unknown member"})
    if not other.is_active:
        raise ValidationError(Text("member %(name)s is disabled", name=repr(name)),
                              {role: "member is disabled"})
    if other.id == me.id:
        raise ValidationError("you cannot pay yourself", {role: "cannot be yourself"})
    return other


async def _listing_uri(ctx: NodeContext, listing_id: object) -> tuple[str | None, str | None]:
    if listing_id is None or listing_id == "":
        return None, None
    if not isinstance(listing_id, str) or len(listing_id) > 64:
        raise ValidationError("listing must be a listing id", {"listing": "a listing id"})
    row = await listing_q.get_listing(ctx.store.reader, listing_id)
    if row is None:
        raise ValidationError(Text("no listing %(id)s", id=repr(listing_id)),
                              {"listing": "unknown listing"})
    return listing_id, row.object_id


def _fields(
    tx_id: str, kind: str, payer: str, payee: str, amount: int, memo: str, signer: str,
    created: str, *, listing_id: str | None = None, reverses: str | None = None,
    request_id: str | None = None,
) -> EntryFields:
    return EntryFields(
        id=tx_id, kind=kind, payer=payer, payee=payee, amount=amount, memo=memo,
        listing_id=listing_id, reverses=reverses, request_id=request_id, signer=signer,
        created_at=created,
    )


# --- wallet ---------------------------------------------------------------------------------


async def wallet_summary(ctx: NodeContext, member: MemberRow) -> Wallet:
    """Balance, limits, holds and what the member can spend / receive right now."""
    now = format_utc(ctx.clock())
    position = await _position(ctx, ctx.store.reader, member.username, now)
    pending = await q.list_requests(ctx.store.reader, member.username, status="pending",
                                    limit=1000)
    to_pay = sum(1 for r in pending if r.payer_account == member.username and r.expires_at > now)
    holds = tuple(await q.list_holds(ctx.store.reader, member.username, now))
    return Wallet(account=member.username, position=position, decimals=_decimals(ctx),
                  symbol=ctx.config.currency.symbol, pending_requests_to_pay=to_pay, holds=holds)


# --- payments -------------------------------------------------------------------------------


async def pay(
    ctx: NodeContext, payer: MemberRow, *, payee: object, amount: object, memo: object = None,
    listing_id: object = None,
) -> JournalEntry:
    """Pay another member of this community; committed at once if within both limits."""
    units = parse_amount(amount, decimals=_decimals(ctx))
    note = parse_memo(memo)
    other = await _counterparty(ctx, payee, payer, "payee")
    listing, listing_uri = await _listing_uri(ctx, listing_id)
    now = ctx.clock()
    tx_id = _new_id()
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, tx_id), kind="payment",
        payer_uri=account_uri(ctx, payer.username), payee_uri=account_uri(ctx, other.username),
        amount=units, memo=note, created=now, listing_uri=listing_uri,
    )
    document = _sign(ctx, payer, build_event(terms, currency_terms(ctx)), now)
    created = format_utc(now)
    fields = _fields(tx_id, "payment", payer.username, other.username, units, note,
                     payer.username, created, listing_id=listing)
    prepared = prepare_entry(fields, document)
    async with ctx.store.transaction() as tx:
        head = await _check_limits(ctx, tx, payer.username, other.username, units, created)
        await notifications.payment_received(ctx, tx, account=other.username, amount=units,
                                             tx_id=tx_id, memo=note)
        return await q.append_entry(tx, prepared, head)


async def get_transaction(ctx: NodeContext, member: MemberRow, tx_id: str) -> JournalEntry:
    """One transaction the member took part in (admins see all)."""
    entry = await q.get_entry(ctx.store.reader, tx_id)
    if entry is None or not (member.is_admin or member.username in (
        entry.fields.payer, entry.fields.payee
    )):
        raise NotFoundError(f"no transaction {tx_id!r}")
    return entry


async def history(
    ctx: NodeContext, member: MemberRow, *, cursor: str | None = None, limit: int = 20
) -> HistoryPage:
    """The member's transactions, newest first; ``cursor`` continues a previous page."""
    before = None
    if cursor:
        if not cursor.isdigit() or len(cursor) > 18:
            raise ValidationError("invalid cursor", {"cursor": "use next_cursor as given"})
        before = int(cursor)
    if not 1 <= limit <= 100:
        raise ValidationError("limit must be 1-100", {"limit": "1-100"})
    entries = await q.account_entries(ctx.store.reader, member.username, before_seq=before,
                                      limit=limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    return HistoryPage(entries=entries, next_cursor=str(entries[-1].seq) if more else None)


# --- payment requests -----------------------------------------------------------------------


def _lifetime(expires_in_days: object) -> timedelta:
    if expires_in_days is None:
        return DEFAULT_REQUEST_LIFETIME
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
        raise ValidationError("expires_in_days must be a whole number", {"expires_in_days": "1-90"})
    lifetime = timedelta(days=expires_in_days)
    if not timedelta(days=1) <= lifetime <= MAX_REQUEST_LIFETIME:
        raise ValidationError("expires_in_days must be 1-90", {"expires_in_days": "1-90"})
    return lifetime


@member_limited("payment_requests")
async def request_payment(
    ctx: NodeContext, payee: MemberRow, *, payer: object, amount: object, memo: object = None,
    listing_id: object = None, expires_in_days: object = None,
) -> RequestRow:
    """Bill another member; reserves the payee's receiving room until decided or expired.

    Only the *payee's* room is held: holding the payer's spending room on someone else's
    say-so would let anyone freeze another member's account with bills.
    """
    units = parse_amount(amount, decimals=_decimals(ctx))
    note = parse_memo(memo)
    other = await _counterparty(ctx, payer, payee, "payer")
    listing, listing_uri = await _listing_uri(ctx, listing_id)
    now = ctx.clock()
    expires = now + _lifetime(expires_in_days)
    request_id = _new_id()
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, request_id), kind="request",
        payer_uri=account_uri(ctx, other.username), payee_uri=account_uri(ctx, payee.username),
        amount=units, memo=note, created=now, listing_uri=listing_uri,
    )
    unsigned = build_request(terms, currency_terms(ctx), expires=expires,
                             request_uri=urls.ledger_request(ctx.config.base_url, request_id))
    document = _sign(ctx, payee, unsigned, now)
    created = format_utc(now)
    async with ctx.store.transaction() as tx:
        receiving = await _position(ctx, tx, payee.username, created)
        room = receiving.available_to_receive
        if room is not None and units > room:
            raise _breach_error(ctx, LimitBreach(payee.username, "receive", room), units)
        await q.insert_request(
            tx, request_id=request_id, payer=other.username, payee=payee.username, amount=units,
            memo=note, listing_id=listing, document=document, created_at=created,
            expires_at=format_utc(expires),
        )
        await q.insert_hold(tx, hold_id=_new_id(), account=payee.username, direction="credit",
                            amount=units, reason=request_id, expires_at=format_utc(expires))
        await notifications.payment_requested(ctx, tx, payer=other.username, amount=units,
                                              request_id=request_id, memo=note)
    return await get_request(ctx, payee, request_id)


async def get_request(ctx: NodeContext, member: MemberRow, request_id: str) -> RequestRow:
    """A request the member is payer or payee of (admins see all)."""
    row = await q.get_request(ctx.store.reader, request_id)
    if row is None or not (member.is_admin or member.username in (
        row.payer_account, row.payee_account
    )):
        raise NotFoundError(f"no payment request {request_id!r}")
    return row


async def list_requests(
    ctx: NodeContext, member: MemberRow, *, status: str | None = None
) -> list[RequestRow]:
    """The member's requests (to pay and to be paid), newest first."""
    if status not in (None, "pending", "approved", "declined", "expired"):
        raise ValidationError("unknown status", {"status": "pending, approved, declined, expired"})
    return await q.list_requests(ctx.store.reader, member.username, status=status, limit=100)


def _check_pending(row: RequestRow, now: str) -> None:
    if row.status != "pending":
        raise ConflictError(ALREADY_DECIDED.get(row.status) or Text(
            "this payment request is already %(status)s", status=row.status))
    if row.expires_at <= now:
        raise ConflictError(Text("this payment request expired at %(when)s",
                                 when=When(row.expires_at)))


async def _decidable(ctx: NodeContext, member: MemberRow, request_id: str) -> RequestRow:
    row = await get_request(ctx, member, request_id)
    if row.payer_account != member.username:
        raise PermissionDeniedError("only the member asked to pay can approve or decline this")
    _check_pending(row, format_utc(ctx.clock()))
    return row


async def approve_request(ctx: NodeContext, payer: MemberRow, request_id: str) -> JournalEntry:
    """The payer approves a bill: a signed ``Accept`` becomes a journal entry."""
    row = await _decidable(ctx, payer, request_id)
    now = ctx.clock()
    created = format_utc(now)
    decision = _sign(ctx, payer, build_decision(
        json.loads(row.document), approve=True, when=now,
        actor_uri=account_uri(ctx, payer.username),
        decision_uri=urls.ledger_request(ctx.config.base_url, request_id) + "/decision",
    ), now)
    fields = _fields(request_id, "request", row.payer_account, row.payee_account, row.amount,
                     row.memo, payer.username, created, listing_id=row.listing_id,
                     request_id=request_id)
    prepared = prepare_entry(fields, decision)
    async with ctx.store.transaction() as tx:
        current = await q.get_request(tx, request_id)
        assert current is not None
        _check_pending(current, created)
        await q.release_holds(tx, request_id)
        head = await _check_limits(ctx, tx, row.payer_account, row.payee_account, row.amount,
                                   created)
        await q.decide_request(tx, request_id, status="approved", decision=decision,
                               decided_at=created)
        await notifications.payment_received(ctx, tx, account=row.payee_account,
                                             amount=row.amount, tx_id=request_id, memo=row.memo)
        return await q.append_entry(tx, prepared, head)


async def decline_request(ctx: NodeContext, member: MemberRow, request_id: str) -> RequestRow:
    """The payer declines (or the payee withdraws) a pending bill; its hold is released."""
    row = await get_request(ctx, member, request_id)
    if member.username not in (row.payer_account, row.payee_account):
        raise PermissionDeniedError("only the payer or the payee can decline this request")
    now = ctx.clock()
    created = format_utc(now)
    _check_pending(row, created)
    decision = _sign(ctx, member, build_decision(
        json.loads(row.document), approve=False, when=now,
        actor_uri=account_uri(ctx, member.username),
        decision_uri=urls.ledger_request(ctx.config.base_url, request_id) + "/decision",
    ), now)
    async with ctx.store.transaction() as tx:
        if not await q.decide_request(tx, request_id, status="declined", decision=decision,
                                      decided_at=created):
            raise ConflictError("this payment request was decided meanwhile")
        await q.release_holds(tx, request_id)
    return await get_request(ctx, member, request_id)


async def expire_requests(ctx: NodeContext) -> int:
    """Mark every pending request past its expiry as expired; returns how many."""
    async with ctx.store.transaction() as tx:
        return len(await q.expire_requests(tx, format_utc(ctx.clock())))


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
    new_id = _new_id()
    base = ctx.config.base_url
    terms = TransferTerms(
        object_id=urls.ledger_transaction(base, new_id), kind="reversal",
        payer_uri=account_uri(ctx, fields0.payee), payee_uri=account_uri(ctx, fields0.payer),
        amount=fields0.amount, memo=note, created=now,
        reverses_uri=urls.ledger_transaction(base, tx_id),
        entered_by_uri=None if member.username == fields0.payee else account_uri(
            ctx, member.username),
    )
    document = _sign(ctx, member, build_event(terms, currency_terms(ctx)), now)
    created = format_utc(now)
    fields = _fields(new_id, "reversal", fields0.payee, fields0.payer, fields0.amount, note,
                     member.username, created, reverses=tx_id, listing_id=fields0.listing_id)
    prepared = prepare_entry(fields, document)
    async with ctx.store.transaction() as tx:
        if await q.reversal_of(tx, tx_id) is not None:
            raise ConflictError("this transaction was already reversed")
        head = await _check_limits(ctx, tx, fields.payer, fields.payee, fields.amount, created)
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
    if not admin.is_admin:
        raise PermissionDeniedError("only admins can enter transactions for others")
    units = parse_amount(amount, decimals=_decimals(ctx))
    note = parse_memo(memo)
    source, target = await _account_named(ctx, payer, "payer"), await _account_named(
        ctx, payee, "payee")
    if source.name == target.name:
        raise ValidationError("payer and payee must differ", {"payee": "same as payer"})
    now = ctx.clock()
    tx_id = _new_id()
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, tx_id), kind="admin",
        payer_uri=account_uri(ctx, source.name), payee_uri=account_uri(ctx, target.name),
        amount=units, memo=note, created=now, entered_by_uri=account_uri(ctx, admin.username),
    )
    document = _sign(ctx, admin, build_event(terms, currency_terms(ctx)), now)
    created = format_utc(now)
    fields = _fields(tx_id, "admin", source.name, target.name, units, note, admin.username,
                     created)
    prepared = prepare_entry(fields, document)
    async with ctx.store.transaction() as tx:
        head = await _check_limits(ctx, tx, source.name, target.name, units, created)
        return await q.append_entry(tx, prepared, head)


def _limit_value(ctx: NodeContext, value: object, field: str) -> int | None:
    return None if value is None else parse_limit(value, decimals=_decimals(ctx), field=field)


async def set_limits(
    ctx: NodeContext, admin: MemberRow, username: str, *, min_balance: object,
    max_balance: object,
) -> Wallet:
    """Override a member's limits (None = back to the default); refused if already breached."""
    if not admin.is_admin:
        raise PermissionDeniedError("only admins can change limits")
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
    position = await _position(ctx, tx, name, now)
    decimals = _decimals(ctx)
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
    chain = verify_chain(entries, decimals=_decimals(ctx), keys=keys, head=head)
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
        journal_ok=verification.ok, near_limits=near, decimals=_decimals(ctx),
    )


def fund_account() -> str:
    """Name of the community fund's system account."""
    return FUND_ACCOUNT


def signed_document(entry: JournalEntry) -> Mapping[str, Any]:
    """The signed document a journal entry records."""
    return entry.document


# --- transfers and holds made by other use cases (deals) inside their own transaction -----


def prepare_transfer(
    ctx: NodeContext, payer: MemberRow, *, payee: str, amount: int, memo: str,
    listing_id: str | None, now: datetime,
) -> PreparedEntry:
    """Sign a payment by ``payer`` (who consented elsewhere, e.g. in a signed Offer) now,
    outside the write lock; :func:`commit_transfer` appends it inside the caller's one."""
    tx_id = _new_id()
    listing_uri = urls.listing_object(ctx.config.base_url, listing_id) if listing_id else None
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, tx_id), kind="payment",
        payer_uri=account_uri(ctx, payer.username), payee_uri=account_uri(ctx, payee),
        amount=amount, memo=parse_memo(memo[:MEMO_MAX]), created=now, listing_uri=listing_uri,
    )
    document = _sign(ctx, payer, build_event(terms, currency_terms(ctx)), now)
    return prepare_entry(_fields(tx_id, "payment", payer.username, payee, amount, terms.memo,
                                 payer.username, format_utc(now), listing_id=listing_id),
                         document)


async def commit_transfer(
    ctx: NodeContext, tx: aiosqlite.Connection, prepared: PreparedEntry
) -> JournalEntry:
    """Check both limits and append a prepared transfer on the caller's transaction."""
    fields = prepared.fields
    head = await _check_limits(ctx, tx, fields.payer, fields.payee, fields.amount,
                               fields.created_at)
    await notifications.payment_received(ctx, tx, account=fields.payee, amount=fields.amount,
                                         tx_id=fields.id, memo=fields.memo)
    return await q.append_entry(tx, prepared, head)


async def place_hold(
    ctx: NodeContext, tx: aiosqlite.Connection, *, account: str, amount: int, reason: str,
    now: str, expires_at: str,
) -> None:
    """Reserve ``amount`` of an account's spending room (409 if it does not have it)."""
    position = await _position(ctx, tx, account, now)
    room = position.available_to_spend
    if room is not None and amount > room:
        raise _breach_error(ctx, LimitBreach(account, "spend", room), amount)
    await q.insert_hold(tx, hold_id=_new_id(), account=account, direction="debit",
                        amount=amount, reason=reason, expires_at=expires_at)


async def release_holds(tx: aiosqlite.Connection, reason: str) -> None:
    """Drop the holds placed for ``reason``."""
    await q.release_holds(tx, reason)
