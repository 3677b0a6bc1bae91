"""Public, unauthenticated resources: signed listing objects, media files, health."""

from __future__ import annotations

import re

from aiohttp import web

from meshnode.errors import NotFoundError
from meshnode.protocol.vocab import ACTIVITY_JSON
from meshnode.services import listings as listing_service
from meshnode.web.appkeys import CONTEXT
from meshnode.web.health import health
from meshnode.web.negotiation import negotiated
from meshnode.web.pages.listings import listing_page

SAFE_NAME = re.compile(r"^[0-9a-f]{16}(\.jpg)?$")


async def listing_object(request: web.Request) -> web.Response:
    """``GET /listings/{id}`` for ActivityPub clients: the stored signed document, as signed."""
    ctx = request.app[CONTEXT]
    view = await listing_service.get_listing(ctx, request.match_info["listing_id"])
    if view.row.hidden:
        raise NotFoundError("this listing is not available")
    return web.Response(
        text=view.row.signed_object,
        content_type=ACTIVITY_JSON,
        headers={"Vary": "Accept", "Cache-Control": "public, max-age=60"},
    )


async def media_file(request: web.Request) -> web.FileResponse:
    """``GET /media/{listing}/{file}``: a re-encoded listing image."""
    listing_id = request.match_info["listing_id"]
    filename = request.match_info["filename"]
    if not SAFE_NAME.fullmatch(listing_id) or not SAFE_NAME.fullmatch(filename):
        raise web.HTTPNotFound()
    path = request.app[CONTEXT].config.media_dir / listing_id / filename
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": "image/jpeg", "Cache-Control": "public, max-age=86400"}
    )


def setup_public_routes(app: web.Application) -> None:
    """Register the public routes."""
    app.router.add_get("/listings/{listing_id}", negotiated(listing_page, listing_object))
    app.router.add_get("/media/{listing_id}/{filename}", media_file)
    app.router.add_get("/healthz", health)
