"""The notification centre's pages: the list (phone first), mark read, preferences."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import ConflictError, NotFoundError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.names import parse_deal_memo
from meshnode.services import email as email_service
from meshnode.services import notifications as service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_member
from meshnode.web.mail import LABELS
from meshnode.web.pages.wallet import money


async def notifications_page(request: web.Request) -> web.Response:
    """``GET /notifications``: newest first, unread ones marked, preferences below."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    items = await service.list_notifications(ctx, member, limit=service.MAX_PAGE)
    prefs = await service.preferences(ctx, member)
    return await render(request, "notifications.html", {
        "items": items, "types": service.TYPES, "enabled": prefs.enabled, "labels": LABELS,
        "saved": request.query.get("saved", ""), "money": money(request),
        "email": await email_service.email_settings(ctx, member),
        "email_error": request.query.get("email_error", ""),
        "memos": {item.id: parse_deal_memo(item.detail) for item in items if item.detail},
    })


async def open_item(request: web.Request) -> web.StreamResponse:
    """``POST /notifications/{id}/open``: mark one item read and go where it points."""
    member = await require_member(request)
    await read_form(request)
    ctx = request.app[CONTEXT]
    raw = request.match_info["item_id"]
    item_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0
    target = await service.open_notification(ctx, member, item_id)
    if target is None:
        raise NotFoundError("no such notification")
    raise redirect(target or "/notifications")


async def read_all(request: web.Request) -> web.StreamResponse:
    """``POST /notifications/read``: mark every item read."""
    member = await require_member(request)
    await read_form(request)
    await service.mark_read(request.app[CONTEXT], member, None)
    raise redirect("/notifications")


async def save_preferences(request: web.Request) -> web.StreamResponse:
    """``POST /notifications/preferences``: the checked types stay on."""
    member = await require_member(request)
    form = await read_form(request)
    wanted = [t for t in form.getall("type", []) if isinstance(t, str) and t in service.TYPES]
    await service.set_preferences(request.app[CONTEXT], member, wanted)
    raise redirect("/notifications?saved=types#preferences")


async def save_email(request: web.Request) -> web.StreamResponse:
    """``POST /notifications/email``: address (verified by a link), mail on/off, digest."""
    member = await require_member(request)
    form = await read_form(request)
    ctx = request.app[CONTEXT]
    current = await email_service.email_settings(ctx, member)
    address = field(form, "address", 300).strip()
    try:
        if address and address != current.address:
            current = await email_service.set_address(ctx, member, address)
        if current.address is not None:
            await email_service.set_choices(ctx, member, enabled=form.get("enabled") == "1",
                                            digest=form.get("digest") == "1")
    except (ValidationError, ConflictError) as exc:
        reason = "address" if isinstance(exc, ValidationError) else (
            "wait" if str(exc) == email_service.WAIT_RESEND else "off")
        raise redirect(f"/notifications?email_error={reason}#email") from None
    raise redirect("/notifications?saved=email#email")


async def verify_email(request: web.Request) -> web.Response:
    """``GET /email/verify/{token}``: the link of a verification mail (a capability URL)."""
    await email_service.verify_address(request.app[CONTEXT], request.match_info["token"])
    return await render(request, "email_verified.html", {})


def setup_notification_pages(app: web.Application) -> None:
    """Register the notification pages."""
    app.router.add_get("/notifications", notifications_page)
    app.router.add_post("/notifications/read", read_all)
    app.router.add_post("/notifications/preferences", save_preferences)
    app.router.add_post("/notifications/{item_id}/open", open_item)
    app.router.add_post("/notifications/email", save_email)
    app.router.add_get("/email/verify/{token}", verify_email)
