"""Content negotiation between HTML pages and ActivityPub JSON on the same URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ACTIVITY_TYPES = ("application/activity+json", "application/ld+json", "application/json")


def wants_activity_json(request: web.Request) -> bool:
    """True when the client asks for ActivityPub JSON rather than a page.

    Browsers send ``text/html`` first; federation peers send ``application/activity+json`` or
    ``application/ld+json; profile=...``. Anything naming a JSON type wins unless HTML is
    listed before it.
    """
    accept = request.headers.get("Accept", "").lower()
    json_at = min((accept.find(t) for t in ACTIVITY_TYPES if t in accept), default=-1)
    if json_at < 0:
        return False
    html_at = accept.find("text/html")
    return html_at < 0 or json_at < html_at


def negotiated(html: Handler, activity: Handler | None) -> Handler:
    """One handler serving ``html`` to browsers and ``activity`` to ActivityPub clients.

    ``activity=None`` answers 406 to ActivityPub clients until the federation layer provides
    a handler (e.g. the actor document of ``/users/{username}``).
    """

    async def handler(request: web.Request) -> web.StreamResponse:
        if wants_activity_json(request):
            if activity is None:
                raise web.HTTPNotAcceptable()
            response = await activity(request)
        else:
            response = await html(request)
        response.headers["Vary"] = "Accept"
        return response

    return handler
