"""Bookings in a calendar application: the private ``.ics`` feed, its address on the Settings
page (make, replace, turn off; CSRF on every POST), and "Add to my calendar" on a deal page.
"""

from __future__ import annotations

from aiohttp import web

from meshnode.config import LOCALES
from meshnode.services import calendar as calendar_service
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import read_form, redirect, render, require_member

ICS_TYPE = "text/calendar"


def _ics(body: bytes, filename: str) -> web.Response:
    # private to one member: never stored by a shared cache, never indexed
    return web.Response(body=body, content_type=ICS_TYPE, charset="utf-8", headers={
        "Cache-Control": "private, no-store", "X-Robots-Tag": "noindex",
        "Content-Disposition": f'inline; filename="{filename}"'})


async def feed(request: web.Request) -> web.Response:
    """``GET /calendar/{secret}.ics``: the member's bookings, no session needed."""
    body = await calendar_service.feed(request.app[CONTEXT], request.match_info["token"],
                                       request.remote or "unknown")
    return _ics(body, "meshnode.ics")


async def deal_file(request: web.Request) -> web.Response:
    """``GET /deals/{id}.ics``: one deal, for its parties ("Add to my calendar")."""
    member = await require_member(request)
    deal_id = request.match_info["deal_id"]
    body = await calendar_service.deal_file(request.app[CONTEXT], member, deal_id)
    response = _ics(body, f"deal-{deal_id}.ics")
    response.headers["Content-Disposition"] = f'attachment; filename="deal-{deal_id}.ics"'
    return response


async def calendar_settings(request: web.Request, member: MemberRow,
                            url: str | None = None) -> dict[str, object]:
    """The Settings page's calendar block: since when the feed exists, and its address
    right after it was made (the only time it can be shown: only its hash is kept)."""
    ctx = request.app[CONTEXT]
    return {"since": await calendar_service.feed_since(ctx, member), "url": url}


async def new_feed(request: web.Request) -> web.Response:
    """``POST /settings/calendar``: a new feed address (the previous one stops working)."""
    member = await require_member(request)
    await read_form(request)
    ctx = request.app[CONTEXT]
    token = await calendar_service.new_feed(ctx, member)
    return await render(request, "settings.html", {
        "values": {"display_name": member.display_name, "bio": member.bio,
                   "locale": member.locale or ""},
        "errors": {}, "locales": LOCALES, "saved": "calendar",
        "calendar": await calendar_settings(
            request, member, f"{ctx.config.base_url}/calendar/{token}.ics"),
    })


async def revoke_feed(request: web.Request) -> web.StreamResponse:
    """``POST /settings/calendar/revoke``: the feed's address answers 404 from now on."""
    member = await require_member(request)
    await read_form(request)
    await calendar_service.revoke_feed(request.app[CONTEXT], member)
    raise redirect("/settings?saved=calendar_off#calendar")


def setup_calendar_pages(app: web.Application) -> None:
    """Register the calendar routes (before ``/deals/{id}``, which would take ``x.ics``)."""
    app.router.add_get("/calendar/{token}.ics", feed)
    app.router.add_get("/deals/{deal_id}.ics", deal_file)
    app.router.add_post("/settings/calendar", new_feed)
    app.router.add_post("/settings/calendar/revoke", revoke_feed)
