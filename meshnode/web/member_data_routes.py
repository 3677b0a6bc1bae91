"""Members' data rights (RGPD): the export archive, for the member or by an admin, and
account deletion (docs/member-data.md)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from typing import IO

from aiohttp import web

from meshnode.errors import ConflictError, PermissionDeniedError
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.timefmt import format_utc
from meshnode.protocol.translatable import message_of
from meshnode.services import account_deletion, member_export
from meshnode.services.context import NodeContext
from meshnode.web.appkeys import CONTEXT
from meshnode.web.auth import api_admin, api_member
from meshnode.web.bodies import read_json
from meshnode.web.browser import (
    SESSION_COOKIE,
    field,
    read_form,
    render,
    require_member,
)
from meshnode.web.browser import require_admin as require_admin_page
from meshnode.web.i18n import N_

CHUNK = 64 * 1024
# Above this an archive being built spills from memory to a temporary file in the data dir.
SPOOL_BYTES = 1024 * 1024

Writer = Callable[[IO[bytes]], Awaitable[member_export.ExportSummary]]


def archive_name(ctx: NodeContext, username: str) -> str:
    """``meshnode-<community>-<username>-<date>.zip``: what the browser saves."""
    day = format_utc(ctx.clock())[:10]
    return f"meshnode-{ctx.config.handle}-{username}-{day}.zip"


async def send_archive(request: web.Request, username: str, write: Writer
                       ) -> web.StreamResponse:
    """Build the archive in a spooled temporary file, then stream it in 64 KiB chunks."""
    ctx = request.app[CONTEXT]
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b",
                                         dir=str(ctx.config.data_dir)) as out:
        await write(out)
        size = out.tell()
        out.seek(0)
        response = web.StreamResponse(headers={
            "Content-Type": "application/zip", "Content-Length": str(size),
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{archive_name(ctx, username)}"'})
        await response.prepare(request)
        while chunk := await asyncio.to_thread(out.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
    return response


async def export_me(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/me/export``: the caller's data as a zip archive."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    return await send_archive(request, member.username,
                              lambda out: member_export.export_member(ctx, member, out))


async def export_for_member(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/admin/members/{username}/export``: an admin exports a member's data."""
    admin = await api_admin(request, "only administrators can export another member's data")
    ctx = request.app[CONTEXT]
    username = request.match_info["username"]
    return await send_archive(request, username, lambda out: member_export.export_for_admin(
        ctx, admin, username, out))


async def delete_me(request: web.Request) -> web.Response:
    """``DELETE /api/v1/me`` ``{"password", "confirm": "DELETE"}``: 202, the deletion runs in
    the background (403 for a wrong password, 422 without the confirmation; nothing changed)."""
    member = await api_member(request)
    ctx = request.app[CONTEXT]
    data = await read_json(request, ctx.config.max_body_bytes)
    if not isinstance(data, dict):
        data = {}
    row = await account_deletion.request_deletion(ctx, member, password=data.get("password"),
                                                  confirm=data.get("confirm"))
    return web.json_response({"deletion": {"state": row.state,
                                           "requested_at": row.requested_at}}, status=202)


WRONG_PASSWORD = N_("wrong password: nothing was deleted")
NOT_CONFIRMED = N_("tick the box to confirm")


async def export_page(request: web.Request) -> web.StreamResponse:
    """``GET /settings/export``: the signed-in member downloads their archive."""
    member = await require_member(request)
    ctx = request.app[CONTEXT]
    return await send_archive(request, member.username,
                              lambda out: member_export.export_member(ctx, member, out))


async def admin_export_page(request: web.Request) -> web.StreamResponse:
    """``GET /admin/members/{username}/export``: an admin downloads a member's archive from
    the Members page (403 for members)."""
    admin = await require_admin_page(request)
    ctx = request.app[CONTEXT]
    username = request.match_info["username"]
    return await send_archive(request, username, lambda out: member_export.export_for_admin(
        ctx, admin, username, out))


async def delete_form(request: web.Request) -> web.Response:
    """``GET /settings/delete``: what deletion does, then the password and a confirmation."""
    await require_member(request)
    return await render(request, "delete_account.html", {"errors": {}})


async def delete_account(request: web.Request) -> web.StreamResponse:
    """``POST /settings/delete``: the second step; on success the session ends and a page
    says what happens next. A wrong password (403) or no confirmation (422) changes nothing."""
    member = await require_member(request)
    form = await read_form(request)
    confirm = account_deletion.CONFIRM_WORD if field(form, "confirm", 10) == "yes" else ""
    try:
        await account_deletion.request_deletion(
            request.app[CONTEXT], member, password=field(form, "password", 2000),
            confirm=confirm)
    except PermissionDeniedError:
        return await render(request, "delete_account.html",
                            {"errors": {"password": WRONG_PASSWORD}}, status=403)
    except ValidationError:
        return await render(request, "delete_account.html",
                            {"errors": {"confirm": NOT_CONFIRMED}}, status=422)
    except ConflictError as exc:
        return await render(request, "delete_account.html",
                            {"errors": {"": message_of(exc)}}, status=409)
    response = await render(request, "account_deleted.html", {})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def setup_member_data_routes(app: web.Application) -> None:
    """Register the export and deletion routes."""
    app.router.add_get("/api/v1/me/export", export_me)
    app.router.add_delete("/api/v1/me", delete_me)
    app.router.add_get("/settings/export", export_page)
    app.router.add_get("/admin/members/{username}/export", admin_export_page)
    app.router.add_get("/settings/delete", delete_form)
    app.router.add_post("/settings/delete", delete_account)
    app.router.add_get("/api/v1/admin/members/{username}/export", export_for_member)
