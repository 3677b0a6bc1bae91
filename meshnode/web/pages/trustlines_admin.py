"""Administration of trust lines with other communities (IOUs): list, propose, answer, change.

Same use cases as ``meshnode trustline …`` and ``/api/v1/trustlines`` (``services.iou``);
the IOU worker sends the signed messages, woken after each change.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from meshnode.errors import ConflictError, NotFoundError
from meshnode.federation.runtime import IOU_NETWORK
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.reachability import UNKNOWN_ERROR, explain_error
from meshnode.protocol.translatable import message_of
from meshnode.services import iou, iou_admin, names
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_admin
from meshnode.web.i18n import N_
from meshnode.web.pages.wallet import amount_text

PROPOSE_FIELDS = ("peer", "limit_out", "limit_in", "rate")
LIMIT_FIELDS = ("limit_out", "limit_in")
HINTS = {
    "peer": N_("Give a node address (https://…) or a handle like name@host."),
    "limit_out": N_("Give an amount of zero or more, e.g. 100 or 12.50."),
    "limit_in": N_("Give an amount of zero or more, e.g. 100 or 12.50."),
    "rate": N_("Give a positive decimal number, e.g. 1 or 0.75."),
}
STATE_LABELS = {"proposed": N_("Proposed"), "pending": N_("Offered to us"),
                "active": N_("Active"), "rejected": N_("Rejected"), "frozen": N_("Frozen"),
                "closed": N_("Closed")}
PROOF_LABELS = {"unsigned": N_("not signed yet"), "verified": N_("signed by both nodes"),
                "ours_only": N_("signed by us only"), "theirs_only": N_("signed by them only"),
                "invalid": N_("does NOT verify")}
RECONCILE_LABELS = {"match": N_("Both ledgers agree"),
                    "in_flight": N_("Differ by transfers in progress"),
                    "mismatch": N_("MISMATCH between the two ledgers")}
DONE_MESSAGES = {
    "propose": N_("Trust line proposed: the offer is sent to the other node."),
    "accept": N_("Trust line accepted."), "reject": N_("Trust line rejected."),
    "freeze": N_("Trust line frozen."), "unfreeze": N_("Trust line unfrozen."),
    "close": N_("Trust line closed."), "limits": N_("Limits lowered."),
}


def field_errors(exc: ValidationError | ConflictError, names: tuple[str, ...],
                 fallback: str) -> dict[str, str]:
    """A translatable hint next to each field the service refused; else the whole message."""
    hit = [name for name in exc.fields if name in names] if exc.fields else []
    if isinstance(exc, ConflictError) and not isinstance(exc, ValidationError):
        return {name: message_of(exc) for name in hit} or {"": message_of(exc)}
    if not hit:
        return {fallback: HINTS.get(fallback, message_of(exc))}
    return {name: HINTS[name] for name in hit}


def _error_sentence(raw: str | None) -> str | None:
    """A network failure as a translatable sentence (``ClientConnectorError(…)`` never shows);
    None for other errors, which are our own messages (their catalogue entry, if any)."""
    sentence = explain_error(raw)
    return None if sentence in (None, UNKNOWN_ERROR) else sentence


async def _page(request: web.Request, *, values: dict[str, str] | None = None,
                errors: dict[str, str] | None = None, line_id: str | None = None,
                status: int = 200) -> web.Response:
    ctx = request.app[CONTEXT]
    lines: list[dict[str, Any]] = []
    rows = await iou.list_lines(ctx)
    parties = await names.remote_parties(ctx, [r.peer_actor for r in rows if r.peer_actor])
    for line in rows:
        report = await iou.line_report(ctx, line)
        # the community's name first; its address on a details line
        party = parties.get(line.peer_actor or "")
        report["name"] = party.name if party else report["peer"]
        report["proof"] = await iou_admin.agreement_proof(ctx, line)
        report["is_proposer"] = bool(line.is_proposer)
        report["error_sentence"] = _error_sentence(report.get("last_error"))
        lines.append(report)
    return await render(request, "admin/trustlines.html", {
        "lines": lines, "state_labels": STATE_LABELS, "proof_labels": PROOF_LABELS,
        "reconcile_labels": RECONCILE_LABELS,
        "values": values or dict.fromkeys(PROPOSE_FIELDS, ""),
        "errors": errors or {}, "line_id": line_id,
        "done": DONE_MESSAGES.get(request.query.get("done", "")),
    }, status=status)


def _wake(request: web.Request) -> None:
    network = request.app.get(IOU_NETWORK)
    if network is not None:
        network.wake()


async def lines_page(request: web.Request) -> web.Response:
    """``GET /admin/trustlines``."""
    await require_admin(request)
    return await _page(request)


async def propose(request: web.Request) -> web.StreamResponse:
    """``POST /admin/trustlines``: offer a line to a peer node."""
    admin = await require_admin(request)
    form = await read_form(request)
    values = {name: field(form, name, 300).strip() for name in PROPOSE_FIELDS}
    try:
        await iou.propose_line(request.app[CONTEXT], admin, peer=values["peer"],
                               limit_out=amount_text(values["limit_out"]),
                               limit_in=amount_text(values["limit_in"]),
                               rate=amount_text(values["rate"]))
    except ValidationError as exc:
        return await _page(request, values=values, status=422,
                           errors=field_errors(exc, PROPOSE_FIELDS, "peer"))
    _wake(request)
    raise redirect("/admin/trustlines?done=propose")


async def lower_limits(request: web.Request) -> web.StreamResponse:
    """``POST /admin/trustlines/{id}/limits``: lower one or both limits (empty: unchanged)."""
    admin = await require_admin(request)
    form = await read_form(request)
    line_id = request.match_info["line_id"]
    values = {name: field(form, name, 40).strip() for name in LIMIT_FIELDS}
    try:
        await iou.change_line(request.app[CONTEXT], admin, line_id, "limits",
                              limit_out=amount_text(values["limit_out"]) or None,
                              limit_in=amount_text(values["limit_in"]) or None)
    except (ValidationError, ConflictError) as exc:
        status = 422 if isinstance(exc, ValidationError) else 409
        return await _page(request, values=values, line_id=line_id, status=status,
                           errors=field_errors(exc, LIMIT_FIELDS, ""))
    _wake(request)
    raise redirect(f"/admin/trustlines?done=limits#line-{line_id}")


async def line_action(request: web.Request) -> web.StreamResponse:
    """``POST /admin/trustlines/{id}/{accept|reject|freeze|unfreeze|close}``."""
    admin = await require_admin(request)
    await read_form(request)
    ctx = request.app[CONTEXT]
    line_id, action = request.match_info["line_id"], request.match_info["action"]
    try:
        if action == "accept":
            await iou.accept_line(ctx, admin, line_id)
        elif action == "reject":
            await iou.reject_line(ctx, admin, line_id)
        else:
            await iou.change_line(ctx, admin, line_id, action)
    except (ConflictError, NotFoundError) as exc:  # e.g. closing needs a zero balance
        return await _page(request, line_id=line_id, errors={"": message_of(exc)}, status=409)
    _wake(request)
    raise redirect(f"/admin/trustlines?done={action}#line-{line_id}")


def setup_trustline_admin_pages(app: web.Application) -> None:
    """Register the trust lines page."""
    app.router.add_get("/admin/trustlines", lines_page)
    app.router.add_post("/admin/trustlines", propose)
    app.router.add_post("/admin/trustlines/{line_id}/limits", lower_limits)
    app.router.add_post(
        "/admin/trustlines/{line_id}/{action:accept|reject|freeze|unfreeze|close}", line_action)
