"""Administration of the community's ledger: overview and per-member limit changes."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import message_of
from meshnode.services import ledger
from meshnode.services import wallet as wallet_service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_admin
from meshnode.web.pages.wallet import amount_text, form_errors, money

TX_ID_MAX = 64


async def _overview(request: web.Request, *, editing: str | None = None,
                    values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
                    status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    return await render(request, "admin/ledger.html", {
        "summary": await ledger.ledger_summary(ctx),
        "accounts": await wallet_service.member_accounts(ctx), "money": money(request),
        "plain": lambda units: format_amount(units, decimals=ctx.config.currency.decimals),
        "editing": editing, "values": values or {}, "errors": errors or {},
        "saved": request.query.get("saved"),
    }, status=status)


async def overview(request: web.Request) -> web.Response:
    """``GET /admin/ledger``: volume, active traders, members near limits, journal check."""
    await require_admin(request)
    return await _overview(request)


def _limit(text: str) -> str | None:
    text = amount_text(text).replace("\u2212", "-")
    return text or None


async def change_limits(request: web.Request) -> web.StreamResponse:
    """``POST /admin/ledger/limits/{username}``: an empty field restores the default."""
    admin = await require_admin(request)
    form = await read_form(request)
    username = request.match_info["username"]
    values = {"min_balance": field(form, "min_balance", 40).strip(),
              "max_balance": field(form, "max_balance", 40).strip()}
    try:
        await ledger.set_limits(request.app[CONTEXT], admin, username,
                                min_balance=_limit(values["min_balance"]),
                                max_balance=_limit(values["max_balance"]))
    except ValidationError as exc:
        return await _overview(request, editing=username, values=values,
                               errors=form_errors(exc), status=422)
    except ConflictError as exc:  # the message says what the balance with holds is
        return await _overview(request, editing=username, values=values,
                               errors={**exc.fields, "": message_of(exc)}, status=409)
    raise redirect(f"/admin/ledger?saved={username}#account-{username}")


async def find_transaction(request: web.Request) -> web.StreamResponse:
    """``GET /admin/ledger/transaction?id=``: open any transaction (to reverse it)."""
    await require_admin(request)
    tx_id = request.query.get("id", "").strip()[:TX_ID_MAX]
    if not tx_id.isalnum():
        raise redirect("/admin/ledger")
    raise redirect(f"/wallet/transactions/{tx_id}")


def setup_ledger_admin_pages(app: web.Application) -> None:
    """Register the ledger administration pages."""
    app.router.add_get("/admin/ledger", overview)
    app.router.add_post("/admin/ledger/limits/{username}", change_limits)
    app.router.add_get("/admin/ledger/transaction", find_transaction)
