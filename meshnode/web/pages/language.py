"""The language switch in the footer: anonymous visitors choose French or English.

``GET /lang/<code>?next=<path>`` sets the ``mn_lang`` cookie and sends the visitor back.
It changes nothing but the visitor's own cookie, so a plain link (no form, no CSRF token) is
enough, and anonymous pages stay cacheable: the page cache keys on the chosen language
(``web/pagecache.py``). Signed-in members keep the language of their Settings.
"""

from __future__ import annotations

from aiohttp import web

from meshnode.config import LOCALES
from meshnode.web.browser import LANG_COOKIE, redirect, safe_next, set_cookie

LANG_COOKIE_AGE = 365 * 24 * 3600


async def switch_language(request: web.Request) -> web.StreamResponse:
    """``GET /lang/{code}``: remember the language and go back to ``next``."""
    code = request.match_info["code"]
    if code not in LOCALES:
        raise web.HTTPNotFound()
    response = redirect(safe_next(request.query.get("next", "/")))
    set_cookie(request, response, LANG_COOKIE, code, max_age=LANG_COOKIE_AGE)
    response.headers["Cache-Control"] = "no-store"
    raise response


def setup_language_pages(app: web.Application) -> None:
    """Register the language switch."""
    app.router.add_get("/lang/{code}", switch_language)
