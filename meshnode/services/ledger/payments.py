"""Payments between members of this community, and the transfers and holds other use cases
(deals) make inside their own transaction.

Every use case signs its document with the acting member's Ed25519 key *before* taking the
write lock, then checks limits and appends to the journal inside ONE ``store.transaction()``:
the store serialises writers, so no interleaving of concurrent payments can breach a limit.
"""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from meshnode import urls
from meshnode.errors import NotFoundError
from meshnode.protocol.amounts import parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import (
    MEMO_MAX,
    JournalEntry,
    LimitBreach,
    PreparedEntry,
    TransferTerms,
    build_event,
    parse_memo,
    prepare_entry,
)
from meshnode.protocol.parsing import parse_cursor
from meshnode.protocol.timefmt import format_utc
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.ledger.accounts import (
    HistoryPage,
    account_position,
    account_uri,
    breach_error,
    check_limits,
    counterparty,
    currency_decimals,
    currency_terms,
    entry_fields,
    listing_ref,
    new_id,
)
from meshnode.services.signing import sign_as_member
from meshnode.store import ledger as q
from meshnode.store.members import MemberRow

# --- payments -------------------------------------------------------------------------------


async def pay(
    ctx: NodeContext, payer: MemberRow, *, payee: object, amount: object, memo: object = None,
    listing_id: object = None,
) -> JournalEntry:
    """Pay another member of this community; committed at once if within both limits."""
    units = parse_amount(amount, decimals=currency_decimals(ctx))
    note = parse_memo(memo)
    other = await counterparty(ctx, payee, payer, "payee")
    listing, listing_uri = await listing_ref(ctx, listing_id)
    now = ctx.clock()
    tx_id = new_id()
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, tx_id), kind="payment",
        payer_uri=account_uri(ctx, payer.username), payee_uri=account_uri(ctx, other.username),
        amount=units, memo=note, created=now, listing_uri=listing_uri,
    )
    document = sign_as_member(ctx, payer, build_event(terms, currency_terms(ctx)), now)
    created = format_utc(now)
    fields = entry_fields(tx_id, "payment", payer.username, other.username, units, note,
                     payer.username, created, listing_id=listing)
    prepared = prepare_entry(fields, document)
    async with ctx.store.transaction() as tx:
        head = await check_limits(ctx, tx, payer.username, other.username, units, created)
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
    before = parse_cursor(cursor) if cursor else None
    if not 1 <= limit <= 100:
        raise ValidationError("limit must be 1-100", {"limit": "1-100"})
    entries = await q.account_entries(ctx.store.reader, member.username, before_seq=before,
                                      limit=limit + 1)
    return history_page(entries, limit)


def history_page(entries: list[JournalEntry], limit: int) -> HistoryPage:
    """A page of ``limit`` entries from ``limit + 1`` read (one more: is there a next page)."""
    more = len(entries) > limit
    entries = entries[:limit]
    return HistoryPage(entries=entries, next_cursor=str(entries[-1].seq) if more else None)


# --- transfers and holds made by other use cases (deals) inside their own transaction -----


def prepare_transfer(
    ctx: NodeContext, payer: MemberRow, *, payee: str, amount: int, memo: str,
    listing_id: str | None, now: datetime,
) -> PreparedEntry:
    """Sign a payment by ``payer`` (who consented elsewhere, e.g. in a signed Offer) now,
    outside the write lock; :func:`commit_transfer` appends it inside the caller's one."""
    tx_id = new_id()
    listing_uri = urls.listing_object(ctx.config.base_url, listing_id) if listing_id else None
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, tx_id), kind="payment",
        payer_uri=account_uri(ctx, payer.username), payee_uri=account_uri(ctx, payee),
        amount=amount, memo=parse_memo(memo[:MEMO_MAX]), created=now, listing_uri=listing_uri,
    )
    document = sign_as_member(ctx, payer, build_event(terms, currency_terms(ctx)), now)
    return prepare_entry(entry_fields(tx_id, "payment", payer.username, payee, amount, terms.memo,
                                 payer.username, format_utc(now), listing_id=listing_id),
                         document)


async def commit_transfer(
    ctx: NodeContext, tx: aiosqlite.Connection, prepared: PreparedEntry
) -> JournalEntry:
    """Check both limits and append a prepared transfer on the caller's transaction."""
    fields = prepared.fields
    head = await check_limits(ctx, tx, fields.payer, fields.payee, fields.amount,
                               fields.created_at)
    await notifications.payment_received(ctx, tx, account=fields.payee, amount=fields.amount,
                                         tx_id=fields.id, memo=fields.memo)
    return await q.append_entry(tx, prepared, head)


async def place_hold(
    ctx: NodeContext, tx: aiosqlite.Connection, *, account: str, amount: int, reason: str,
    now: str, expires_at: str,
) -> None:
    """Reserve ``amount`` of an account's spending room (409 if it does not have it)."""
    position = await account_position(ctx, tx, account, now)
    room = position.available_to_spend
    if room is not None and amount > room:
        raise breach_error(ctx, LimitBreach(account, "spend", room), amount)
    await q.insert_hold(tx, hold_id=new_id(), account=account, direction="debit",
                        amount=amount, reason=reason, expires_at=expires_at)


async def release_holds(tx: aiosqlite.Connection, reason: str) -> None:
    """Drop the holds placed for ``reason``."""
    await q.release_holds(tx, reason)
