"""Administration: members, invitation links (with QR codes), settings, reports and moderation."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import ConflictError
from meshnode.federation.flags import inbox_of
from meshnode.federation.state import FEDERATION
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import Text
from meshnode.services import accounts, flags, invitations, listings, members, moderation
from meshnode.services.accounts import MemberChange
from meshnode.web.appkeys import CONTEXT
from meshnode.web.bodies import path_id
from meshnode.web.browser import field, read_form, redirect, render, require_admin, require_member

MEMBER_ACTIONS = {
    "disable": MemberChange(disabled=True), "enable": MemberChange(disabled=False),
    "promote": MemberChange(admin=True), "demote": MemberChange(admin=False),
}


def qr_svg(url: str) -> str:
    """An inline SVG QR code for an invitation link (no external service, no file)."""
    import segno  # imported here: only admins open this page, keep it out of idle memory

    qr = segno.make(url, error="m")
    svg: str = qr.svg_inline(scale=4, dark="#000", light="#fff", omitsize=True)
    return svg


async def members_page(request: web.Request) -> web.Response:
    """``GET /admin/members``."""
    await require_admin(request)
    everyone = await members.list_members(request.app[CONTEXT])
    return await render(request, "admin/members.html", {
        "members": everyone, "error": request.query.get("error"),
    })


async def member_action(request: web.Request) -> web.StreamResponse:
    """``POST /admin/members/{username}``: disable, enable, promote or demote."""
    admin = await require_admin(request)
    form = await read_form(request)
    change = MEMBER_ACTIONS.get(field(form, "action"))
    if change is None:
        raise web.HTTPBadRequest(reason="unknown action")
    try:
        await accounts.admin_change_member(
            request.app[CONTEXT], admin, request.match_info["username"], change
        )
    except ConflictError:
        raise redirect("/admin/members?error=last_admin") from None
    raise redirect("/admin/members")


async def invitations_page(request: web.Request) -> web.Response:
    """``GET /admin/invitations``: recent invitations; a new link is shown once, with its QR."""
    await require_admin(request)
    ctx = request.app[CONTEXT]
    settings = await accounts.get_settings(ctx)
    return await render(request, "admin/invitations.html", {
        "invitations": await invitations.list_invitations(ctx), "new": None, "qr": None,
        "errors": {}, "days": settings.invite_days, "now": ctx.clock(),
    })


async def create_invitation(request: web.Request) -> web.Response:
    """``POST /admin/invitations``: the page itself shows the new link (it is never stored)."""
    admin = await require_admin(request)
    form = await read_form(request)
    ctx = request.app[CONTEXT]
    days_text = field(form, "days", 4)
    errors: dict[str, str] = {}
    new_link = qr = None
    try:
        days = invitations.check_days(days_text)
        created = await invitations.create_invitation(
            ctx, admin, days=days, note=field(form, "note", 200)
        )
        new_link = f"{ctx.config.base_url}/join/{created.secret}"
        qr = qr_svg(new_link)
    except ValidationError as exc:
        errors = exc.fields
    response = await render(request, "admin/invitations.html", {
        "invitations": await invitations.list_invitations(ctx), "new": new_link, "qr": qr,
        "errors": errors, "days": days_text, "now": ctx.clock(),
    }, status=422 if errors else 201)
    return response


async def revoke_invitation(request: web.Request) -> web.StreamResponse:
    """``POST /admin/invitations/{id}/revoke``."""
    admin = await require_admin(request)
    await read_form(request)
    await invitations.revoke_invitation(request.app[CONTEXT], admin,
                                        request.match_info["invitation_id"])
    raise redirect("/admin/invitations")


async def settings_page(request: web.Request) -> web.Response:
    """``GET /admin/settings``."""
    await require_admin(request)
    current = await accounts.get_settings(request.app[CONTEXT])
    return await render(request, "admin/settings.html", {
        "values": {"about": current.about, "invite_days": str(current.invite_days)},
        "errors": {}, "saved": request.query.get("saved"),
    })


async def save_settings(request: web.Request) -> web.StreamResponse:
    """``POST /admin/settings``."""
    admin = await require_admin(request)
    form = await read_form(request)
    values = {"about": field(form, "about", 5000), "invite_days": field(form, "invite_days", 4)}
    try:
        await accounts.save_settings(request.app[CONTEXT], admin, **values)
    except ValidationError as exc:
        return await render(request, "admin/settings.html", {
            "values": values, "errors": exc.fields, "saved": None,
        }, status=422)
    raise redirect("/admin/settings?saved=1")


async def reports_page(request: web.Request) -> web.Response:
    """``GET /admin/reports``: open reports first, then the recently resolved ones."""
    await require_admin(request)
    ctx = request.app[CONTEXT]
    return await render(request, "admin/reports.html", {
        "open_reports": await moderation.list_reports(ctx, open_only=True),
        "all_reports": await moderation.list_reports(ctx, open_only=False),
    })


async def report_listing(request: web.Request) -> web.StreamResponse:
    """``POST /listings/{id}/report``: any member can report a listing; one of another
    community is also sent there (anonymously when the box is ticked, as it is by default)."""
    member = await require_member(request)
    form = await read_form(request)
    listing_id = request.match_info["listing_id"]
    ctx = request.app[CONTEXT]
    listing = await listings.get_listing(ctx, listing_id)
    try:
        if listing.row.is_local:
            await moderation.report_listing(ctx, member, listing_id, field(form, "reason", 2000))
        else:  # another community's listing: also sent there as a Flag
            await flags.file_report(ctx, member, listing_id, reason="other",
                                    comment=field(form, "reason", 2000),
                                    anonymous=field(form, "anonymous") == "1",
                                    inbox_of=inbox_of(request.app[FEDERATION]))
            request.app[FEDERATION].wake_delivery()
    except (ValidationError, ConflictError):
        raise redirect(f"/listings/{listing_id}?report=invalid#report") from None
    raise redirect(f"/listings/{listing_id}?report=sent")


async def moderate(request: web.Request) -> web.StreamResponse:
    """``POST /admin/listings/{id}/hide`` or ``/restore``."""
    admin = await require_admin(request)
    await read_form(request)
    hidden = request.match_info["action"] == "hide"
    await moderation.set_listing_hidden(request.app[CONTEXT], admin,
                                        request.match_info["listing_id"], hidden=hidden)
    raise redirect("/admin/reports")


async def decide_report(request: web.Request) -> web.StreamResponse:
    """``POST /admin/reports/{id}/removed`` or ``/dismissed``: decide one report (one from
    another community is answered there)."""
    admin = await require_admin(request)
    await read_form(request)
    await moderation.decide_report(request.app[CONTEXT], admin,
                                   path_id(request, "report_id", Text("no such report")),
                                   request.match_info["decision"])
    raise redirect("/admin/reports")


async def admin_home(request: web.Request) -> web.StreamResponse:
    """``GET /admin``."""
    await require_admin(request)
    raise redirect("/admin/members")


def setup_admin_pages(app: web.Application) -> None:
    """Register the administration pages."""
    app.router.add_get("/admin", admin_home)
    app.router.add_get("/admin/members", members_page)
    app.router.add_post("/admin/members/{username}", member_action)
    app.router.add_get("/admin/invitations", invitations_page)
    app.router.add_post("/admin/invitations", create_invitation)
    app.router.add_post("/admin/invitations/{invitation_id}/revoke", revoke_invitation)
    app.router.add_get("/admin/settings", settings_page)
    app.router.add_post("/admin/settings", save_settings)
    app.router.add_get("/admin/reports", reports_page)
    app.router.add_post("/listings/{listing_id}/report", report_listing)
    app.router.add_post("/admin/listings/{listing_id}/{action:hide|restore}", moderate)
    app.router.add_post("/admin/reports/{report_id:[0-9]+}/{decision:removed|dismissed}",
                        decide_report)
