"""The ledger's shared pieces: currency terms, limits, account positions and limit checks,
counterparties, and the wallet summary (used by payments, requests, admin and IOUs)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiosqlite

from meshnode import urls
from meshnode.errors import LimitExceededError, NotFoundError
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import (
    AccountPosition,
    ChainHead,
    CurrencyTerms,
    EntryFields,
    JournalEntry,
    LimitBreach,
    check_transfer,
)
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, message_of, number
from meshnode.services.context import NodeContext
from meshnode.services.members import check_username
from meshnode.store import ledger as q
from meshnode.store import listings as listing_q
from meshnode.store import members as member_q
from meshnode.store.db import reads_together
from meshnode.store.ledger import AccountRow, HeldAccount, HoldRow, RequestRow
from meshnode.store.members import MemberRow

# Pending requests read for a wallet (counted to pay; the wallet page lists them too).
PENDING_READ = 1000
CROSS_COMMUNITY = "cross-community bills and admin entries are not available"


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


# --- helpers --------------------------------------------------------------------------------


def currency_terms(ctx: NodeContext) -> CurrencyTerms:
    """The currency as documents name it."""
    currency = ctx.config.currency
    return CurrencyTerms(
        uri=urls.currency_uri(ctx.config.base_url), symbol=currency.symbol,
        decimals=currency.decimals,
    )


def currency_decimals(ctx: NodeContext) -> int:
    """Decimal places of our currency."""
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


def new_id() -> str:
    """A fresh random id for a transaction, request or hold."""
    return secrets.token_hex(16)


def _as_position(ctx: NodeContext, held: HeldAccount) -> AccountPosition:
    low, high = effective_limits(ctx, held.account)
    return AccountPosition(name=held.account.name, balance=held.account.balance,
                           min_balance=low, max_balance=high, held_debit=held.held_debit,
                           held_credit=held.held_credit)


async def account_positions(
    ctx: NodeContext, db: aiosqlite.Connection, names: tuple[str] | tuple[str, str], now: str
) -> tuple[dict[str, AccountPosition], ChainHead]:
    """Positions (balance, limits, holds) of one or two accounts, and the chain head."""
    held, head = await q.transfer_snapshot(db, names, now)
    missing = set(names) - held.keys()
    if missing:
        raise NotFoundError(f"no ledger account {sorted(missing)[0]!r}")
    return {name: _as_position(ctx, item) for name, item in held.items()}, head


async def account_position(
    ctx: NodeContext, db: aiosqlite.Connection, name: str, now: str
) -> AccountPosition:
    """One account's position (NotFoundError if there is no such account)."""
    positions, _ = await account_positions(ctx, db, (name,), now)
    return positions[name]


def breach_error(ctx: NodeContext, breach: LimitBreach, amount: int) -> LimitExceededError:
    """The 409 a limit breach becomes, naming the room left."""
    available = format_amount(breach.available, decimals=currency_decimals(ctx))
    wanted = format_amount(amount, decimals=currency_decimals(ctx))
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


async def check_limits(
    ctx: NodeContext, db: aiosqlite.Connection, payer: str, payee: str, amount: int, now: str
) -> ChainHead:
    """Refuse a transfer that breaches a limit; return the chain head read with the balances."""
    positions, head = await account_positions(ctx, db, (payer, payee), now)
    breach = check_transfer(positions[payer], positions[payee], amount)
    if breach is not None:
        raise breach_error(ctx, breach, amount)
    return head


async def limit_breach(
    ctx: NodeContext, db: aiosqlite.Connection, payer: str, payee: str, amount: int, now: str
) -> LimitBreach | None:
    """The limit ``amount`` from ``payer`` to ``payee`` would breach now (holds counted)."""
    positions, _ = await account_positions(ctx, db, (payer, payee), now)
    return check_transfer(positions[payer], positions[payee], amount)


async def counterparty(ctx: NodeContext, username: object, me: MemberRow, role: str) -> MemberRow:
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


async def listing_ref(ctx: NodeContext, listing_id: object) -> tuple[str | None, str | None]:
    """A listing id given with a payment: (id, object IRI), or (None, None) when absent."""
    if listing_id is None or listing_id == "":
        return None, None
    if not isinstance(listing_id, str) or len(listing_id) > 64:
        raise ValidationError("listing must be a listing id", {"listing": "a listing id"})
    row = await listing_q.get_listing(ctx.store.reader, listing_id)
    if row is None:
        raise ValidationError(Text("no listing %(id)s", id=repr(listing_id)),
                              {"listing": "unknown listing"})
    return listing_id, row.object_id


def entry_fields(
    tx_id: str, kind: str, payer: str, payee: str, amount: int, memo: str, signer: str,
    created: str, *, listing_id: str | None = None, reverses: str | None = None,
    request_id: str | None = None,
) -> EntryFields:
    """The journal fields of a new entry."""
    return EntryFields(
        id=tx_id, kind=kind, payer=payer, payee=payee, amount=amount, memo=memo,
        listing_id=listing_id, reverses=reverses, request_id=request_id, signer=signer,
        created_at=created,
    )


# --- wallet ---------------------------------------------------------------------------------


async def wallet_summary(ctx: NodeContext, member: MemberRow,
                         pending: list[RequestRow] | None = None) -> Wallet:
    """Balance, limits, holds and what the member can spend / receive right now.

    ``pending``: the member's pending requests (``PENDING_READ``, newest first) when the
    caller has read them already (the wallet page shows them: one read for both)."""
    now = format_utc(ctx.clock())
    name = member.username
    reads: list[Callable[[aiosqlite.Connection], Awaitable[Any]]] = [
        lambda db: q.transfer_snapshot(db, (name,), now), lambda db: q.list_holds(db, name, now)]
    if pending is None:
        reads.append(lambda db: q.list_requests(db, name, status="pending",
                                                limit=PENDING_READ))
    found = await reads_together(ctx.store.reader, *reads)  # one thread hop (issue 17)
    return wallet_from(ctx, member, found[0][0], pending if pending is not None else found[2],
                       found[1], now)


def wallet_from(ctx: NodeContext, member: MemberRow, held: dict[str, HeldAccount],
                pending: list[RequestRow], holds: list[HoldRow], now: str) -> Wallet:
    """``wallet_summary`` from its reads: ``transfer_snapshot``'s accounts, the pending
    requests (newest first) and the unexpired holds of the member's account at ``now``."""
    if member.username not in held:
        raise NotFoundError(f"no ledger account {member.username!r}")
    position = _as_position(ctx, held[member.username])
    to_pay = sum(1 for r in pending
                 if r.payer_account == member.username and r.expires_at > now)
    return Wallet(account=member.username, position=position, decimals=currency_decimals(ctx),
                  symbol=ctx.config.currency.symbol, pending_requests_to_pay=to_pay,
                  holds=tuple(holds))
