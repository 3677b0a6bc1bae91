"""Blocking a node from the peers page: the preview first, then the admin confirms
(``federation/blocking.py``; the same use cases as ``/api/v1/blocks``)."""

from __future__ import annotations

from aiohttp import web

from meshnode.errors import ConflictError, NotFoundError
from meshnode.federation import blocking
from meshnode.federation.state import FEDERATION
from meshnode.protocol.errors import ValidationError
from meshnode.protocol.translatable import message_of
from meshnode.web.appkeys import CONTEXT
from meshnode.web.browser import field, read_form, redirect, render, require_admin

PEER_MAX = 300
REFUSALS = (ConflictError, NotFoundError, ValidationError)


async def preview_page(request: web.Request) -> web.Response:
    """``POST /admin/blocks/preview``: what blocking the node would do, and a confirm button."""
    admin = await require_admin(request)
    form = await read_form(request)
    peer = field(form, "peer", PEER_MAX).strip()
    try:
        preview = await blocking.preview_block(request.app[CONTEXT], admin, peer)
    except REFUSALS as exc:
        return await render(request, "admin/block_preview.html",
                            {"preview": None, "error": message_of(exc), "done": False}, status=422)
    return await render(request, "admin/block_preview.html",
                        {"preview": preview, "error": None, "done": False})


async def confirm_block(request: web.Request) -> web.Response:
    """``POST /admin/blocks``: block the node and apply what the preview showed."""
    admin = await require_admin(request)
    form = await read_form(request)
    peer = field(form, "peer", PEER_MAX).strip()
    try:
        done = await blocking.block_node(request.app[CONTEXT], admin, peer,
                                         confirm=field(form, "confirm") == "1")
    except REFUSALS as exc:
        return await render(request, "admin/block_preview.html",
                            {"preview": None, "error": message_of(exc), "done": False}, status=422)
    request.app[FEDERATION].wake_delivery()
    return await render(request, "admin/block_preview.html",
                        {"preview": done, "error": None, "done": True})


async def unblock(request: web.Request) -> web.StreamResponse:
    """``POST /admin/blocks/undo``: lift a block made from this page or the API."""
    admin = await require_admin(request)
    form = await read_form(request)
    try:
        await blocking.unblock_node(request.app[CONTEXT], admin, field(form, "peer", PEER_MAX))
    except REFUSALS as exc:
        return await render(request, "admin/block_preview.html",
                            {"preview": None, "error": message_of(exc), "done": False}, status=422)
    request.app[FEDERATION].wake_delivery()
    raise redirect("/admin/peers")


def setup_block_admin_pages(app: web.Application) -> None:
    """Register the block preview and confirmation pages."""
    app.router.add_post("/admin/blocks/preview", preview_page)
    app.router.add_post("/admin/blocks", confirm_block)
    app.router.add_post("/admin/blocks/undo", unblock)
