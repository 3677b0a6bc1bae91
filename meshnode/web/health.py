"""``GET /healthz``, in a module of its own: systemd and monitors ask for it first and often,
and a route's module is imported on its first request (``web/lazyroutes.py``), so answering
it must not import the pages."""

from __future__ import annotations

from aiohttp import web

from meshnode.web.appkeys import CONTEXT


async def health(request: web.Request) -> web.Response:
    """``GET /healthz``: liveness for systemd and monitoring."""
    return web.json_response({"status": "ok", "name": request.app[CONTEXT].config.name})
