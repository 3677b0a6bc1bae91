"""JSON API of the mutual-credit ledger under ``/api/v1`` (amounts are decimal strings)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import JournalEntry
from meshnode.protocol.parsing import parse_optional_int
from meshnode.services import ledger as ledger_service
from meshnode.services import names
from meshnode.services.context import NodeContext
from meshnode.services.ledger import LedgerSummary, Wallet
from meshnode.store.ledger import HoldRow, RequestRow
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin, api_member
from meshnode.web.bodies import read_json
from meshnode.web.iou_api import check_amount_in, is_remote_payee, post_remote_transfer

TRANSFER_FIELDS = frozenset({"payee", "amount", "memo", "listing", "amount_in"})
REQUEST_FIELDS = frozenset({"payer", "amount", "memo", "listing", "expires_in_days"})
REVERSE_FIELDS = frozenset({"memo"})
LIMIT_FIELDS = frozenset({"min_balance", "max_balance"})
ADMIN_TRANSFER_FIELDS = frozenset({"payer", "payee", "amount", "memo"})


def wallet_json(wallet: Wallet) -> dict[str, Any]:
    """``GET /api/v1/wallet`` body."""
    position = wallet.position
    return {
        "account": wallet.account,
        "currency": {"symbol": wallet.symbol, "decimals": wallet.decimals},
        "balance": wallet.fmt(position.balance),
        "limits": {"min_balance": wallet.fmt(position.min_balance),
                   "max_balance": wallet.fmt(position.max_balance)},
        "held": {"debit": wallet.fmt(position.held_debit),
                 "credit": wallet.fmt(position.held_credit)},
        "available_to_spend": wallet.fmt(position.available_to_spend),
        "available_to_receive": wallet.fmt(position.available_to_receive),
        "pending_requests_to_pay": wallet.pending_requests_to_pay,
        "holds": [hold_json(hold, wallet) for hold in wallet.holds],
    }


def hold_json(hold: HoldRow, wallet: Wallet) -> dict[str, Any]:
    """One hold: what it is for (``kind`` and the deal, bill or transfer), how much, until."""
    return {
        "kind": hold.kind, "direction": hold.direction, "amount": wallet.fmt(hold.amount),
        "until": hold.expires_at, "label": hold.label,
        "deal": hold.ref if hold.kind in ("deal", "deposit") else None,
        "request": hold.ref if hold.kind == "request" else None,
        "transfer": hold.ref if hold.kind == "transfer" else None,
    }


def entry_json(entry: JournalEntry, decimals: int, viewer: str | None = None) -> dict[str, Any]:
    """A journal entry (transaction) with its signed document."""
    fields = entry.fields
    body: dict[str, Any] = {
        "id": fields.id, "seq": entry.seq, "kind": fields.kind, "payer": fields.payer,
        "payee": fields.payee, "amount": format_amount(fields.amount, decimals=decimals),
        "memo": fields.memo, "listing": fields.listing_id, "reverses": fields.reverses,
        "request": fields.request_id, "signed_by": fields.signer,
        "created_at": fields.created_at, "hash": entry.hash, "prev_hash": entry.prev_hash,
        "document": dict(entry.document),
    }
    if viewer is not None:
        body["direction"] = "out" if fields.payer == viewer else "in"
    return body


def request_json(row: RequestRow, decimals: int) -> dict[str, Any]:
    """A payment request (bill) and its state."""
    return {
        "id": row.id, "payer": row.payer_account, "payee": row.payee_account,
        "amount": format_amount(row.amount, decimals=decimals), "memo": row.memo,
        "listing": row.listing_id, "status": row.status, "created_at": row.created_at,
        "expires_at": row.expires_at, "decided_at": row.decided_at,
        "document": json.loads(row.document),
        "decision": json.loads(row.decision) if row.decision else None,
    }


def summary_json(summary: LedgerSummary) -> dict[str, Any]:
    """``GET /api/v1/ledger/summary`` body."""
    decimals = summary.decimals
    return {
        "sum_of_balances": format_amount(summary.balance_sum, decimals=decimals),
        "accounts": summary.accounts, "transactions": summary.transactions,
        "journal_verifies": summary.journal_ok,
        "total_volume": format_amount(summary.volume, decimals=decimals),
        "active_traders": summary.active_traders,
        "near_limits": [
            {"account": hit.account, "balance": format_amount(hit.balance, decimals=decimals),
             "limit": format_amount(hit.limit, decimals=decimals), "side": hit.side}
            for hit in summary.near_limits
        ],
    }


async def _body(request: web.Request, ctx: NodeContext, allowed: frozenset[str]) -> Mapping[
    str, Any
]:
    data = await read_json(request, ctx.config.max_body_bytes)
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object", {"": "expected an object"})
    unknown = {name: "unknown field" for name in data if name not in allowed}
    if unknown:
        raise ValidationError("unknown fields", unknown)
    return data


async def _member_ctx(request: web.Request) -> tuple[MemberRow, NodeContext]:
    return await api_member(request), request.app[CONTEXT]


async def get_wallet(request: web.Request) -> web.Response:
    """``GET /api/v1/wallet``."""
    member, ctx = await _member_ctx(request)
    return web.json_response(wallet_json(await ledger_service.wallet_summary(ctx, member)))


async def post_transfer(request: web.Request) -> web.Response:
    """``POST /api/v1/transfers``: pay a member (201 with the signed transaction)."""
    member, ctx = await _member_ctx(request)
    data = await _body(request, ctx, TRANSFER_FIELDS)
    check_amount_in(data.get("amount_in", "payer"))  # a local payee shares our currency
    if is_remote_payee(data.get("payee")):
        return await post_remote_transfer(request, member, data)
    entry = await ledger_service.pay(
        ctx, member, payee=data.get("payee"), amount=data.get("amount"), memo=data.get("memo"),
        listing_id=data.get("listing"),
    )
    return web.json_response(
        entry_json(entry, ctx.config.currency.decimals, member.username), status=201,
        headers={"Location": f"/api/v1/transactions/{entry.fields.id}"},
    )


async def list_transactions(request: web.Request) -> web.Response:
    """``GET /api/v1/transactions?cursor=&limit=``: the caller's history, newest first."""
    member, ctx = await _member_ctx(request)
    limit = parse_optional_int(request.query.get("limit"), "limit", low=1, high=100, default=20)
    page = await ledger_service.history(ctx, member, cursor=request.query.get("cursor"),
                                        limit=limit)
    decimals = ctx.config.currency.decimals
    others = await names.history_names(ctx, member.username, page.entries)
    items = []
    for entry in page.entries:
        other = others[entry.fields.id]
        items.append({**entry_json(entry, decimals, member.username), "other_side": {
            "person": other.person.to_json() if other.person else None,
            "community": other.community.to_json() if other.community else None}})
    return web.json_response({"items": items, "next_cursor": page.next_cursor})


async def get_transaction(request: web.Request) -> web.Response:
    """``GET /api/v1/transactions/{id}``."""
    member, ctx = await _member_ctx(request)
    entry = await ledger_service.get_transaction(ctx, member, request.match_info["tx_id"])
    return web.json_response(entry_json(entry, ctx.config.currency.decimals, member.username))


async def post_reverse(request: web.Request) -> web.Response:
    """``POST /api/v1/transactions/{id}/reverse``: a new linked transaction (201)."""
    member, ctx = await _member_ctx(request)
    data = await _body(request, ctx, REVERSE_FIELDS) if request.can_read_body else {}
    entry = await ledger_service.reverse(ctx, member, request.match_info["tx_id"],
                                         memo=data.get("memo"))
    return web.json_response(entry_json(entry, ctx.config.currency.decimals), status=201)


async def post_request(request: web.Request) -> web.Response:
    """``POST /api/v1/payment-requests``: bill a member (201)."""
    member, ctx = await _member_ctx(request)
    data = await _body(request, ctx, REQUEST_FIELDS)
    row = await ledger_service.request_payment(
        ctx, member, payer=data.get("payer"), amount=data.get("amount"), memo=data.get("memo"),
        listing_id=data.get("listing"), expires_in_days=data.get("expires_in_days"),
    )
    return web.json_response(request_json(row, ctx.config.currency.decimals), status=201,
                             headers={"Location": f"/api/v1/payment-requests/{row.id}"})


async def list_requests(request: web.Request) -> web.Response:
    """``GET /api/v1/payment-requests?status=``."""
    member, ctx = await _member_ctx(request)
    rows = await ledger_service.list_requests(ctx, member, status=request.query.get("status"))
    decimals = ctx.config.currency.decimals
    return web.json_response({"items": [request_json(row, decimals) for row in rows]})


async def get_request(request: web.Request) -> web.Response:
    """``GET /api/v1/payment-requests/{id}``."""
    member, ctx = await _member_ctx(request)
    row = await ledger_service.get_request(ctx, member, request.match_info["request_id"])
    return web.json_response(request_json(row, ctx.config.currency.decimals))


async def approve_request(request: web.Request) -> web.Response:
    """``POST /api/v1/payment-requests/{id}/approve``: 201 with the new transaction."""
    member, ctx = await _member_ctx(request)
    entry = await ledger_service.approve_request(ctx, member, request.match_info["request_id"])
    return web.json_response(entry_json(entry, ctx.config.currency.decimals, member.username),
                             status=201)


async def decline_request(request: web.Request) -> web.Response:
    """``POST /api/v1/payment-requests/{id}/decline``."""
    member, ctx = await _member_ctx(request)
    row = await ledger_service.decline_request(ctx, member, request.match_info["request_id"])
    return web.json_response(request_json(row, ctx.config.currency.decimals))


async def _admin(request: web.Request) -> tuple[MemberRow, NodeContext]:
    return await api_admin(request, "this needs an admin token"), request.app[CONTEXT]


async def put_limits(request: web.Request) -> web.Response:
    """``PUT /api/v1/accounts/{username}/limits`` (admin): null restores the default."""
    admin, ctx = await _admin(request)
    data = await _body(request, ctx, LIMIT_FIELDS)
    wallet = await ledger_service.set_limits(
        ctx, admin, request.match_info["username"], min_balance=data.get("min_balance"),
        max_balance=data.get("max_balance"),
    )
    return web.json_response(wallet_json(wallet))


async def post_admin_transfer(request: web.Request) -> web.Response:
    """``POST /api/v1/ledger/admin-transfers`` (admin): e.g. a fee to ``sys:fund``."""
    admin, ctx = await _admin(request)
    data = await _body(request, ctx, ADMIN_TRANSFER_FIELDS)
    entry = await ledger_service.admin_transfer(
        ctx, admin, payer=data.get("payer"), payee=data.get("payee"),
        amount=data.get("amount"), memo=data.get("memo"),
    )
    return web.json_response(entry_json(entry, ctx.config.currency.decimals), status=201)


async def get_summary(request: web.Request) -> web.Response:
    """``GET /api/v1/ledger/summary`` (admin)."""
    _, ctx = await _admin(request)
    return web.json_response(summary_json(await ledger_service.ledger_summary(ctx)))


def setup_ledger_routes(app: web.Application) -> None:
    """Register the ledger's ``/api/v1`` routes."""
    router = app.router
    router.add_get("/api/v1/wallet", get_wallet)
    router.add_post("/api/v1/transfers", post_transfer)
    router.add_get("/api/v1/transactions", list_transactions)
    router.add_get("/api/v1/transactions/{tx_id}", get_transaction)
    router.add_post("/api/v1/transactions/{tx_id}/reverse", post_reverse)
    router.add_post("/api/v1/payment-requests", post_request)
    router.add_get("/api/v1/payment-requests", list_requests)
    router.add_get("/api/v1/payment-requests/{request_id}", get_request)
    router.add_post("/api/v1/payment-requests/{request_id}/approve", approve_request)
    router.add_post("/api/v1/payment-requests/{request_id}/decline", decline_request)
    router.add_put("/api/v1/accounts/{username}/limits", put_limits)
    router.add_post("/api/v1/ledger/admin-transfers", post_admin_transfer)
    router.add_get("/api/v1/ledger/summary", get_summary)
