"""JSON API of IOUs between communities: cross-node payments and trust lines (admin).

``POST /api/v1/transfers`` with a remote ``payee`` (``name@host[:port]``) comes here from the
ledger API; it answers 201 once committed, 202 with the transfer id while still in
progress, 409 when refused (with the reason).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.federation.runtime import IOU_NETWORK, IOU_WAIT
from meshnode.federation.state import FEDERATION
from meshnode.federation.tasks import wait_event
from meshnode.protocol.amounts import parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.services import iou as svc
from meshnode.services.context import NodeContext
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin, api_member
from meshnode.web.bodies import read_json

LINE_FIELDS = frozenset({"peer", "limit_out", "limit_in", "rate"})
LIMIT_FIELDS = frozenset({"limit_out", "limit_in"})
ACTIONS = {"freeze": "freeze", "unfreeze": "unfreeze", "close": "close"}


AMOUNT_SIDES = ("payer", "payee")


def check_amount_in(value: object) -> str:
    """``amount_in``: which currency ``amount`` is stated in, the payer's or the payee's."""
    if value not in AMOUNT_SIDES:
        raise ValidationError("amount_in must be \"payer\" or \"payee\"",
                              {"amount_in": "payer or payee"})
    return str(value)


def is_remote_payee(payee: object) -> bool:
    """True for ``name@host`` payees (a local payee is a bare username)."""
    return isinstance(payee, str) and "@" in payee.strip().lstrip("@")


async def wait_for_outcome(request: web.Request, status: svc.TransferStatus
                           ) -> svc.TransferStatus:
    """Wait (up to the configured time) until the transfer is committed, released or expired."""
    ctx = request.app[CONTEXT]
    wait = request.app[IOU_WAIT]
    if wait <= 0 or status.final:
        return status
    waiters = request.app[FEDERATION].iou_waiters
    event = waiters.setdefault(status.id, asyncio.Event())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    try:
        while loop.time() < deadline:
            status = await svc.get_transfer(ctx, None, status.id)
            if status.final:
                return status
            event.clear()
            await wait_event(event, min(0.05, deadline - loop.time()))
        return status
    finally:
        waiters.pop(status.id, None)


def transfer_response(status: svc.TransferStatus) -> web.Response:
    """201 committed, 202 in progress, 409 refused (body: the transfer with its reason)."""
    body = status.as_json()
    location = {"Location": f"/api/v1/transfers/{status.id}"}
    if status.state == "committed":
        return web.json_response(body, status=201, headers=location)
    if status.state == "prepared":
        return web.json_response(body, status=202, headers=location)
    return web.json_response({"error": "transfer_refused",
                              "message": f"the payment was refused: {status.reason}",
                              "fields": {}, "transfer": body}, status=409, headers=location)


async def post_remote_transfer(request: web.Request, member: MemberRow,
                               data: Mapping[str, Any]) -> web.Response:
    """The cross-community branch of ``POST /api/v1/transfers``."""
    ctx = request.app[CONTEXT]
    side = check_amount_in(data.get("amount_in", "payer"))
    listing = data.get("listing")
    if listing is not None and not isinstance(listing, str):
        raise ValidationError("listing must be a listing id", {"listing": "a listing id"})
    note = data.get("memo")  # checked by the service (protocol.ledger.parse_memo), as locally
    network = request.app[IOU_NETWORK]
    if side == "payee":
        status = await svc.pay_remote_payee_amount(ctx, member, str(data["payee"]),
                                                   data.get("amount"), note, listing,
                                                   network=network)
    else:
        units = parse_amount(data.get("amount"), decimals=ctx.config.currency.decimals)
        status = await svc.pay_remote(ctx, member, str(data["payee"]), units, note, listing,
                                      network=network)
    network.wake()
    return transfer_response(await wait_for_outcome(request, status))


async def _member_ctx(request: web.Request) -> tuple[MemberRow, NodeContext]:
    return await api_member(request), request.app[CONTEXT]


async def _admin_ctx(request: web.Request) -> tuple[MemberRow, NodeContext]:
    return await api_admin(request, "this needs an admin token"), request.app[CONTEXT]


async def _body(request: web.Request, ctx: NodeContext, allowed: frozenset[str]
                ) -> Mapping[str, Any]:
    data = await read_json(request, ctx.config.max_body_bytes)
    if not isinstance(data, Mapping):
        raise ValidationError("the body must be a JSON object", {"": "expected an object"})
    unknown = {name: "unknown field" for name in data if name not in allowed}
    if unknown:
        raise ValidationError("unknown fields", unknown)
    return data


async def get_transfer(request: web.Request) -> web.Response:
    """``GET /api/v1/transfers/{id}``: the state of a cross-node payment."""
    member, ctx = await _member_ctx(request)
    status = await svc.get_transfer(ctx, member, request.match_info["transfer_id"])
    return web.json_response(status.as_json())


async def list_transfers(request: web.Request) -> web.Response:
    """``GET /api/v1/transfers``: the caller's cross-node payments (admins: all)."""
    member, ctx = await _member_ctx(request)
    return web.json_response({"items": [s.as_json() for s in
                                        await svc.list_transfers(ctx, member)]})


async def list_lines(request: web.Request) -> web.Response:
    """``GET /api/v1/trustlines`` (admin), with balances and reconciliation."""
    _, ctx = await _admin_ctx(request)
    return web.json_response({"items": [await svc.line_report(ctx, line)
                                        for line in await svc.list_lines(ctx)]})


async def get_line(request: web.Request) -> web.Response:
    """``GET /api/v1/trustlines/{id}`` (admin)."""
    _, ctx = await _admin_ctx(request)
    line = await svc.get_line(ctx, request.match_info["line_id"])
    return web.json_response(await svc.line_report(ctx, line))


async def post_line(request: web.Request) -> web.Response:
    """``POST /api/v1/trustlines`` (admin): propose a line; the node sends the offer (202)."""
    admin, ctx = await _admin_ctx(request)
    data = await _body(request, ctx, LINE_FIELDS)
    line = await svc.propose_line(ctx, admin, peer=data.get("peer"),
                                  limit_out=data.get("limit_out"), limit_in=data.get("limit_in"),
                                  rate=data.get("rate"))
    return web.json_response(await svc.line_report(ctx, line), status=202,
                             headers={"Location": f"/api/v1/trustlines/{line.id}"})


async def post_line_action(request: web.Request) -> web.Response:
    """``POST /api/v1/trustlines/{id}/{accept|reject|freeze|unfreeze|close}`` (admin)."""
    admin, ctx = await _admin_ctx(request)
    line_id, action = request.match_info["line_id"], request.match_info["action"]
    if action == "accept":
        line = await svc.accept_line(ctx, admin, line_id)
    elif action == "reject":
        line = await svc.reject_line(ctx, admin, line_id)
    elif action in ACTIONS:
        line = await svc.change_line(ctx, admin, line_id, ACTIONS[action])
    else:
        raise ConflictError(f"unknown action {action!r}")
    request.app[IOU_NETWORK].wake()
    return web.json_response(await svc.line_report(ctx, line))


async def post_line_limits(request: web.Request) -> web.Response:
    """``POST /api/v1/trustlines/{id}/limits`` (admin): lower ``limit_out``/``limit_in``."""
    admin, ctx = await _admin_ctx(request)
    data = await _body(request, ctx, LIMIT_FIELDS)
    line = await svc.change_line(ctx, admin, request.match_info["line_id"], "limits",
                                 limit_out=data.get("limit_out"), limit_in=data.get("limit_in"))
    request.app[IOU_NETWORK].wake()
    return web.json_response(await svc.line_report(ctx, line))


def setup_iou_routes(app: web.Application) -> None:
    """Register the IOU routes (``POST /api/v1/transfers`` stays in the ledger API)."""
    router = app.router
    router.add_get("/api/v1/transfers", list_transfers)
    router.add_get("/api/v1/transfers/{transfer_id}", get_transfer)
    router.add_get("/api/v1/trustlines", list_lines)
    router.add_post("/api/v1/trustlines", post_line)
    router.add_get("/api/v1/trustlines/{line_id}", get_line)
    router.add_post("/api/v1/trustlines/{line_id}/limits", post_line_limits)
    router.add_post("/api/v1/trustlines/{line_id}/{action}", post_line_action)
