"""``GET /feed.atom``: the community's listings for feed readers (RFC 4287)."""

from __future__ import annotations

from aiohttp import web

from meshnode.protocol.atom import ATOM_TYPE
from meshnode.services.feed import listings_feed
from meshnode.web.appkeys import CONTEXT


async def atom_feed(request: web.Request) -> web.Response:
    """``GET /feed.atom[?category=ride]``: newest active local listings, Atom XML."""
    body = await listings_feed(request.app[CONTEXT], request.query.get("category"))
    return web.Response(body=body, content_type=ATOM_TYPE, charset="utf-8",
                        headers={"Cache-Control": "public, max-age=300"})


def setup_feed_routes(app: web.Application) -> None:
    """Register the feed."""
    app.router.add_get("/feed.atom", atom_feed)
