"""Payment requests (bills): the payee asks, the payer approves or declines."""

from __future__ import annotations

import json
from datetime import timedelta

from meshnode import urls
from meshnode.errors import ConflictError, NotFoundError, PermissionDeniedError
from meshnode.protocol.amounts import parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import (
    JournalEntry,
    LimitBreach,
    TransferTerms,
    build_decision,
    build_request,
    parse_memo,
    prepare_entry,
)
from meshnode.protocol.parsing import parse_int
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import Text, When
from meshnode.services import notifications
from meshnode.services.context import NodeContext
from meshnode.services.ledger.accounts import (
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
from meshnode.services.member_limits import member_limited
from meshnode.services.signing import sign_as_member
from meshnode.store import ledger as q
from meshnode.store.ledger import RequestRow
from meshnode.store.members import MemberRow

DEFAULT_REQUEST_LIFETIME = timedelta(days=14)
MAX_REQUEST_LIFETIME = timedelta(days=90)


ALREADY_DECIDED = {
    "approved": "this payment request is already approved",
    "declined": "this payment request is already declined",
    "expired": "this payment request is already expired",
}


# --- payment requests -----------------------------------------------------------------------


def _lifetime(expires_in_days: object) -> timedelta:
    if expires_in_days is None:
        return DEFAULT_REQUEST_LIFETIME
    try:  # a JSON number or the form's text; the range is checked before timedelta() sees it
        days = parse_int(expires_in_days, "expires_in_days", low=1,
                         high=MAX_REQUEST_LIFETIME.days)
    except ValidationError as exc:
        raise ValidationError("expires_in_days must be 1-90", {"expires_in_days": "1-90"}) from exc
    return timedelta(days=days)


@member_limited("payment_requests")
async def request_payment(
    ctx: NodeContext, payee: MemberRow, *, payer: object, amount: object, memo: object = None,
    listing_id: object = None, expires_in_days: object = None,
) -> RequestRow:
    """Bill another member; reserves the payee's receiving room until decided or expired.

    Only the *payee's* room is held: holding the payer's spending room on someone else's
    say-so would let anyone freeze another member's account with bills.
    """
    units = parse_amount(amount, decimals=currency_decimals(ctx))
    note = parse_memo(memo)
    other = await counterparty(ctx, payer, payee, "payer")
    listing, listing_uri = await listing_ref(ctx, listing_id)
    now = ctx.clock()
    expires = now + _lifetime(expires_in_days)
    request_id = new_id()
    terms = TransferTerms(
        object_id=urls.ledger_transaction(ctx.config.base_url, request_id), kind="request",
        payer_uri=account_uri(ctx, other.username), payee_uri=account_uri(ctx, payee.username),
        amount=units, memo=note, created=now, listing_uri=listing_uri,
    )
    unsigned = build_request(terms, currency_terms(ctx), expires=expires,
                             request_uri=urls.ledger_request(ctx.config.base_url, request_id))
    document = sign_as_member(ctx, payee, unsigned, now)
    created = format_utc(now)
    async with ctx.store.transaction() as tx:
        receiving = await account_position(ctx, tx, payee.username, created)
        room = receiving.available_to_receive
        if room is not None and units > room:
            raise breach_error(ctx, LimitBreach(payee.username, "receive", room), units)
        await q.insert_request(
            tx, request_id=request_id, payer=other.username, payee=payee.username, amount=units,
            memo=note, listing_id=listing, document=document, created_at=created,
            expires_at=format_utc(expires),
        )
        await q.insert_hold(tx, hold_id=new_id(), account=payee.username, direction="credit",
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
    decision = sign_as_member(ctx, payer, build_decision(
        json.loads(row.document), approve=True, when=now,
        actor_uri=account_uri(ctx, payer.username),
        decision_uri=urls.ledger_request(ctx.config.base_url, request_id) + "/decision",
    ), now)
    fields = entry_fields(request_id, "request", row.payer_account, row.payee_account, row.amount,
                     row.memo, payer.username, created, listing_id=row.listing_id,
                     request_id=request_id)
    prepared = prepare_entry(fields, decision)
    async with ctx.store.transaction() as tx:
        current = await q.get_request(tx, request_id)
        assert current is not None
        _check_pending(current, created)
        await q.release_holds(tx, request_id)
        head = await check_limits(ctx, tx, row.payer_account, row.payee_account, row.amount,
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
    decision = sign_as_member(ctx, member, build_decision(
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
