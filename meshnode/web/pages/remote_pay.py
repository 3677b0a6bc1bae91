"""Paying a member of another community from the wallet (``bob@host[:port]``), and its status.

The pay form hands a remote payee here; the payment is the same use case as the API's
(``services.iou.pay_remote``): prepared at once, committed when the payee's node answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from meshnode.errors import CommunityUnreachableError, ConflictError, LimitExceededError
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.protocol.amounts import format_amount, parse_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import message_of
from meshnode.services import iou
from meshnode.services import names as name_service
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import redirect, render, require_member
from meshnode.web.i18n import N_
from meshnode.web.iou_api import is_remote_payee, wait_for_outcome

__all__ = ["is_remote_payee", "pay_remote_member"]

ShowForm = Callable[..., Awaitable[web.Response]]
STATE_LABELS = {"prepared": N_("In progress"), "committed": N_("Paid"),
                "released": N_("Refused"), "expired": N_("Expired: nothing was paid")}


def _amount_text(text: str) -> str:
    for space in (" ", "\u00a0", "\u202f"):
        text = text.replace(space, "")
    return text.replace(",", ".")


async def pay_remote_member(request: web.Request, member: MemberRow, values: dict[str, str],
                            show_form: ShowForm) -> web.StreamResponse:
    """Start a cross-community payment; on success go to its status page."""
    ctx = request.app[CONTEXT]
    try:
        network = request.app[IOU_NETWORK]
        if values.get("amount_in") == "payee":  # the amount is in the payee's currency
            status = await iou.pay_remote_payee_amount(
                ctx, member, values["payee"], _amount_text(values["amount"]), values["memo"],
                values["listing"] or None, network=network)
        else:
            units = parse_amount(_amount_text(values["amount"]),
                                 decimals=ctx.config.currency.decimals)
            status = await iou.pay_remote(ctx, member, values["payee"], units,
                                          values["memo"], values["listing"] or None,
                                          network=network)
    except ValidationError as exc:
        names = [name for name in (exc.fields or {}) if name in values] or ["payee"]
        return await show_form(request, member, values, dict.fromkeys(names, message_of(exc)),
                               status=422)
    except (ConflictError, LimitExceededError) as exc:
        fields = [name for name in (exc.fields or {})
                  if name in ("payee", "amount", "amount_in")]
        return await show_form(request, member, values,
                               {name: message_of(exc) for name in fields} or {"": message_of(exc)},
                               status=409)
    except CommunityUnreachableError as exc:  # not a refusal: the same form works later
        response = await show_form(request, member, values, {"payee": message_of(exc)},
                                   status=503)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    network.wake()
    status = await wait_for_outcome(request, status)
    raise redirect(f"/wallet/transfers/{status.id}")


async def transfer_page(request: web.Request) -> web.Response:
    """``GET /wallet/transfers/{id}``: a cross-node payment (the payer and admins only)."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    status = await iou.get_transfer(ctx, member, request.match_info["transfer_id"])
    payee = status.payee if "://" in status.payee else None
    named = await name_service.actor_parties(ctx, [payee] if payee else [])
    return await render(request, "wallet_transfer.html", {
        "t": status, "state_labels": STATE_LABELS,
        "payee_label": named[payee].label if payee else status.payee,
        "amount": format_amount(status.amount, decimals=status.decimals),
        "payee_amount": None if status.payee_amount is None else format_amount(
            status.payee_amount, decimals=status.payee_decimals or 0),
    })


def setup_remote_pay_pages(app: web.Application) -> None:
    """Register the transfer status page (the form itself is the wallet's pay form)."""
    app.router.add_get("/wallet/transfers/{transfer_id}", transfer_page)
