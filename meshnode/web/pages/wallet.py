"""Wallet pages: balance, chart, bills, history; pay, request, approve/decline, reverse.

Every state change is a POST with the CSRF token (``read_form``) that calls one use case of
``services.ledger``; each use case commits in one transaction, so a refused form wrote nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from markupsafe import Markup

from meshnode.errors import ConflictError, LimitExceededError, NotFoundError
from meshnode.protocol.amounts import format_amount
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.ledger import JournalEntry
from meshnode.protocol.names import parse_deal_memo
from meshnode.protocol.translatable import message_of
from meshnode.services import ledger, names
from meshnode.services import listings as listing_service
from meshnode.services import wallet as wallet_service
from meshnode.services.balance_chart import chart_geometry
from meshnode.services.context import NodeContext
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT, FRAGMENTS, TEMPLATES
from meshnode.web.browser import field, read_form, redirect, render, require_member, translator
from meshnode.web.i18n import N_, Translator
from meshnode.web.pages import remote_pay
from meshnode.web.pages.refill import refused

PAY_FIELDS = ("payee", "amount", "memo", "listing", "amount_in")
REQUEST_FIELDS = ("payer", "amount", "memo", "expires_in_days")
KIND_LABELS = {"payment": N_("Payment"), "request": N_("Paid request"),
               "reversal": N_("Reversal"), "admin": N_("Entered by an admin")}
DONE_MESSAGES = {
    "paid": N_("Payment sent."), "requested": N_("Payment request sent."),
    "approved": N_("Request approved: the payment is done."),
    "declined": N_("Payment request declined."), "cancelled": N_("Payment request cancelled."),
    "reversed": N_("The transaction was reversed."),
}


def money(request: web.Request) -> Callable[[int | None], str]:
    """A template helper: minor units -> the locale's amount with the currency symbol."""
    tr = translator(request)
    decimals = request.app[CONTEXT].config.currency.decimals
    return lambda units: "" if units is None else tr.amount(format_amount(units,
                                                                          decimals=decimals))


def amount_text(text: str) -> str:
    """What was typed -> the decimal string the ledger parses (``12,50`` and spaces accepted)."""
    for space in (" ", "\u00a0", "\u202f"):
        text = text.replace(space, "")
    return text.replace(",", ".")


def limit_message(tr: Translator, exc: LimitExceededError, fmt: Callable[[int], str],
                  me: str) -> str:
    """The limit that was hit, in the reader's language, saying how much is available."""
    available = fmt(exc.available)
    if exc.side == "spend":
        return tr.gettext("Limit exceeded: you can spend at most %(available)s now.",
                          available=available)
    if exc.account == me:
        return tr.gettext("Limit exceeded: you can receive at most %(available)s now.",
                          available=available)
    return tr.gettext("Limit exceeded: %(name)s can receive at most %(available)s now.",
                      name=exc.account, available=available)


def form_errors(exc: ValidationError | ConflictError) -> dict[str, str]:
    """Field messages of a refused form ('' holds a message for the whole form)."""
    return dict(exc.fields) if exc.fields else {"": message_of(exc)}


async def wallet_page(request: web.Request, *, notice: str | None = None,
                      status: int = 200) -> web.Response:
    """``GET /wallet``: balance, limits, room, bills both ways, chart, history."""
    member = await require_member(request)
    tr = translator(request, member)  # the member's language, for money() and the chart too
    ctx = request.app[CONTEXT]
    cursor = request.query.get("cursor", "")[:20] or None
    view = await wallet_service.wallet_view(ctx, member, cursor=cursor)
    done = DONE_MESSAGES.get(request.query.get("done", ""))
    return await render(request, "wallet.html", {
        "history_line": _history_line(request, tr, member.username, view.others),
        "view": view, "position": view.wallet.position, "money": money(request),
        "chart": _chart(request, tr, view),
        "kind_labels": KIND_LABELS, "done": done, "notice": notice, "cursor": cursor,
    }, status=status)


def _history_line(request: web.Request, tr: Translator, me: str,
                  others: dict[str, names.OtherSide]) -> Callable[[JournalEntry], Markup]:
    """A history line from the fragment cache: keyed by the entry's id (a journal entry
    never changes: the journal is append-only and its ids unique, so the id stands for all
    its fields and its memo), who is on the other side, the reader and the language.
    Rendering twenty lines with the memo macros was most of the wallet page's time; hashing
    each entry's fields for the key, still a third of its template time (issue 17)."""
    env = request.app[TEMPLATES].env
    fragments = request.app[FRAGMENTS]
    fmt = money(request)
    zone = str(tr.tz)

    def line(entry: JournalEntry) -> Markup:
        other = others.get(entry.fields.id)
        # The other side by the labels the line shows: strings hash and compare in C, the
        # dataclasses it is made of in Python (a tenth of the wallet page, issue 17).
        shown = None if other is None else (
            other.person and other.person.label, other.community and other.community.label)
        return fragments.render(
            env, "_wallet_line.html", (tr.lang, zone, me, entry.fields.id, shown),
            lambda: {"_": tr.gettext, "fmt": tr, "money": fmt, "e": entry, "me_name": me,
                     "other": other, "memo": parse_deal_memo(entry.fields.memo),
                     "kind_labels": KIND_LABELS})

    return line


def _chart(request: web.Request, tr: Translator, view: wallet_service.WalletView
           ) -> Markup | None:
    """The balance chart and its table, from the fragment cache: keyed by what its series is
    made of (the account's movements, its balance and the second the chart ends, ``now``),
    the language and the time zone. The series is walked and its SVG path scaled only for a
    key not seen yet (a fifth of the wallet page, issue 17): under load a member's chart is
    drawn about once a second. None: no movement yet, no chart."""
    if not view.moves:
        return None
    key = (tr.lang, str(tr.tz), view.account, view.moves, view.wallet.position.balance,
           view.now)

    def context() -> dict[str, object]:
        series = view.series  # never None: there are movements
        return {"_": tr.gettext, "fmt": tr, "money": money(request),
                "chart": chart_geometry(series) if series else None, "series": series}

    return request.app[FRAGMENTS].render(
        request.app[TEMPLATES].env, "_chart_fragment.html", key, context)


async def show_wallet(request: web.Request) -> web.Response:
    """``GET /wallet``."""
    return await wallet_page(request)


async def _listing(request: web.Request, listing_id: str) -> ListingRow | None:
    if not listing_id:
        return None
    try:
        return (await listing_service.get_listing(request.app[CONTEXT], listing_id)).row
    except NotFoundError:
        return None


async def _pay_page(request: web.Request, member: MemberRow, values: dict[str, str],
                    errors: dict[str, str], *, status: int = 200) -> web.Response:
    wallet = await ledger.wallet_summary(request.app[CONTEXT], member)
    return await render(request, "wallet_pay.html", {
        "values": values, "errors": errors, "position": wallet.position,
        "money": money(request), "listing": await _listing(request, values["listing"]),
    }, status=status)


async def pay_form(request: web.Request) -> web.Response:
    """``GET /wallet/pay?payee=&amount=&listing=``: a blank or prefilled payment form."""
    member = await require_member(request)
    values = {name: request.query.get(name, "")[:200] for name in PAY_FIELDS}
    return await _pay_page(request, member, values, {})


async def pay(request: web.Request) -> web.StreamResponse:
    """``POST /wallet/pay``: pay now, or the form again with its errors and the input kept."""
    member = await require_member(request)
    form = await read_form(request)
    values = {name: field(form, name, 600).strip() for name in PAY_FIELDS}
    if values["amount_in"] not in ("", "payer", "payee"):
        return await _pay_page(request, member, values, {"amount_in": N_("Choose a currency")},
                               status=422)
    if remote_pay.is_remote_payee(values["payee"]):  # bob@host[:port]: another community
        return await remote_pay.pay_remote_member(request, member, values, _pay_page)
    try:
        await ledger.pay(request.app[CONTEXT], member, payee=values["payee"],
                         amount=amount_text(values["amount"]), memo=values["memo"],
                         listing_id=values["listing"] or None)
    except LimitExceededError as exc:
        message = limit_message(translator(request), exc, money(request), member.username)
        return await _pay_page(request, member, values, {"amount": message}, status=409)
    except (ValidationError, ConflictError) as exc:  # pages/refill.py: the one mechanism
        state = refused(exc, values, PAY_FIELDS)
        return await _pay_page(request, member, values, state.errors, status=state.status)
    raise redirect("/wallet?done=paid")


async def _request_page(request: web.Request, member: MemberRow, values: dict[str, str],
                        errors: dict[str, str], *, status: int = 200) -> web.Response:
    wallet = await ledger.wallet_summary(request.app[CONTEXT], member)
    return await render(request, "wallet_request.html", {
        "values": values, "errors": errors, "position": wallet.position,
        "money": money(request),
    }, status=status)


async def request_form(request: web.Request) -> web.Response:
    """``GET /wallet/request``: ask a member to pay (a bill they approve or decline)."""
    member = await require_member(request)
    values = {name: request.query.get(name, "")[:200] for name in REQUEST_FIELDS}
    values["expires_in_days"] = values["expires_in_days"] or "14"
    return await _request_page(request, member, values, {})


async def send_request(request: web.Request) -> web.StreamResponse:
    """``POST /wallet/request``."""
    member = await require_member(request)
    form = await read_form(request)
    values = {name: field(form, name, 600).strip() for name in REQUEST_FIELDS}
    try:
        await ledger.request_payment(
            request.app[CONTEXT], member, payer=values["payer"],
            amount=amount_text(values["amount"]), memo=values["memo"],
            expires_in_days=values["expires_in_days"],
        )
    except LimitExceededError as exc:
        message = limit_message(translator(request), exc, money(request), member.username)
        return await _request_page(request, member, values, {"amount": message}, status=409)
    except (ValidationError, ConflictError) as exc:
        return await _request_page(request, member, values, form_errors(exc), status=422)
    raise redirect("/wallet?done=requested")


async def decide(request: web.Request) -> web.StreamResponse:
    """``POST /wallet/requests/{id}/approve|decline``: only the member asked to pay decides.

    The payee may also withdraw its own pending request (``decline``).
    """
    member = await require_member(request)
    await read_form(request)
    ctx = request.app[CONTEXT]
    request_id = request.match_info["request_id"]
    tr = translator(request)
    try:
        if request.match_info["action"] == "approve":
            await ledger.approve_request(ctx, member, request_id)
            raise redirect("/wallet?done=approved")
        row = await ledger.decline_request(ctx, member, request_id)
    except LimitExceededError as exc:
        notice = limit_message(tr, exc, money(request), member.username)
        return await wallet_page(request, notice=notice, status=409)
    except ConflictError as exc:
        return await wallet_page(request, notice=tr.error(exc), status=409)
    done = "cancelled" if row.payee_account == member.username else "declined"
    raise redirect(f"/wallet?done={done}")


async def _account_labels(ctx: NodeContext, member: MemberRow,
                          entry: JournalEntry) -> dict[str, str]:
    """Both accounts of a transaction by name; the other community's account also names the
    person there (``Bob · bob@host (Community · handle@host)``)."""
    fields = entry.fields
    accounts = await names.account_parties(ctx, [fields.payer, fields.payee])
    other = (await names.history_names(ctx, member.username, [entry]))[fields.id]
    labels = {account: party.label for account, party in accounts.items()}
    for account in (fields.payer, fields.payee):
        if account.startswith(names.NODE_ACCOUNT_PREFIX) and other.person is not None:
            community = accounts.get(account)
            labels[account] = (f"{other.person.label} ({community.label})" if community
                               else other.person.label)
    return labels


async def _transaction_page(request: web.Request, member: MemberRow, *,
                            notice: str | None = None, status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    entry = await ledger.get_transaction(ctx, member, request.match_info["tx_id"])
    fields = entry.fields
    reversal = await wallet_service.reversed_by(ctx, fields.id)
    can_reverse = (fields.kind != "reversal" and reversal is None
                   and (member.is_admin or member.username == fields.payee))
    return await render(request, "wallet_transaction.html", {
        "labels": await _account_labels(ctx, member, entry),
        "memo": parse_deal_memo(fields.memo),
        "entry": entry, "f": fields, "reversal": reversal, "can_reverse": can_reverse,
        "money": money(request), "kind_labels": KIND_LABELS, "notice": notice,
        "done": DONE_MESSAGES.get(request.query.get("done", "")),
        "listing": await _listing(request, fields.listing_id or ""),
    }, status=status)


async def transaction(request: web.Request) -> web.Response:
    """``GET /wallet/transactions/{id}``: one transaction (parties and admins only)."""
    member = await require_member(request)
    return await _transaction_page(request, member)


async def reverse(request: web.Request) -> web.StreamResponse:
    """``POST /wallet/transactions/{id}/reverse``: the original payee or an admin undoes it."""
    member = await require_member(request)
    form = await read_form(request)
    tr = translator(request)
    try:
        entry = await ledger.reverse(request.app[CONTEXT], member, request.match_info["tx_id"],
                                     memo=field(form, "memo", 600).strip() or None)
    except LimitExceededError as exc:
        notice = limit_message(tr, exc, money(request), member.username)
        return await _transaction_page(request, member, notice=notice, status=409)
    except (ValidationError, ConflictError) as exc:
        return await _transaction_page(request, member, notice=tr.error(exc),
                                       status=409)
    raise redirect(f"/wallet/transactions/{entry.fields.id}?done=reversed")


def setup_wallet_pages(app: web.Application) -> None:
    """Register the wallet pages."""
    app.router.add_get("/wallet", show_wallet)
    app.router.add_get("/wallet/pay", pay_form)
    app.router.add_post("/wallet/pay", pay)
    app.router.add_get("/wallet/request", request_form)
    app.router.add_post("/wallet/request", send_request)
    app.router.add_post("/wallet/requests/{request_id}/{action:approve|decline}", decide)
    app.router.add_get("/wallet/transactions/{tx_id}", transaction)
    app.router.add_post("/wallet/transactions/{tx_id}/reverse", reverse)
