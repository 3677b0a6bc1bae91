"""The notification centre's pages: the list (phone first), mark read, preferences."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import NotFoundError
from meshnode.services import notifications as service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import read_form, redirect, render, require_member
from meshnode.web.pages.wallet import money


async def notifications_page(request: web.Request) -> web.Response:
    """``GET /notifications``: newest first, unread ones marked, preferences below."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    items = await service.list_notifications(ctx, member, limit=service.MAX_PAGE)
    prefs = await service.preferences(ctx, member)
    return await render(request, "notifications.html", {
        "items": items, "types": service.TYPES, "enabled": prefs.enabled,
        "saved": request.query.get("saved") == "1", "money": money(request),
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
    raise redirect("/notifications?saved=1#preferences")


def setup_notification_pages(app: web.Application) -> None:
    """Register the notification pages."""
    app.router.add_get("/notifications", notifications_page)
    app.router.add_post("/notifications/read", read_all)
    app.router.add_post("/notifications/preferences", save_preferences)
    app.router.add_post("/notifications/{item_id}/open", open_item)
