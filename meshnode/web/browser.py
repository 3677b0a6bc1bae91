"""Browser state: the session cookie, the current member, CSRF tokens and page rendering.

CSRF: a signed-in member's forms carry the per-session token stored with the session; an
anonymous visitor's forms (login, sign-up) carry the value of a random ``mn_csrf`` cookie
(double submit). ``read_form`` refuses any POST whose token is missing or wrong with 403.
"""

from __future__ import annotations

import hmac
import secrets
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web
from markupsafe import escape
from multidict import MultiDictProxy

from meshnode.protocol.redirects import local_target
from meshnode.services import badges as badge_service
from meshnode.services import sessions as session_service
from meshnode.store.members import MemberRow
from meshnode.store.sessions import SessionRow
from meshnode.web.appkeys import CARDS, CONTEXT, FRAGMENTS, I18N, TEMPLATES
from meshnode.web.i18n import Translator

if TYPE_CHECKING:
    import jinja2  # the environment is passed in (web/templating.py imports it lazily)
    from markupsafe import Markup

SESSION_COOKIE = "mn_session"
CSRF_COOKIE = "mn_csrf"
# An anonymous visitor's language, chosen in the footer (web/pages/language.py).
LANG_COOKIE = "mn_lang"
CSRF_FIELD = "csrf"
_SESSION = web.RequestKey[SessionRow | None]("mn_session")
_ANON_CSRF = web.RequestKey("mn_anon_csrf", str)
_TRANSLATOR = web.RequestKey("mn_translator", Translator)
_TRANSLATOR_MEMBER = web.RequestKey[MemberRow | None]("mn_translator_member")
# Set when a response carries something of this visitor's own (web/pagecache.py).
PERSONAL = web.RequestKey("mn_page_personal", bool)


def mark_personal(request: web.Request) -> None:
    """This response carries something of this visitor's own: never share it from a cache."""
    request[PERSONAL] = True


class _AnonymousCsrfToken:
    """An anonymous visitor's CSRF token, drawn (and its cookie set) only if a form uses it,
    so pages without forms stay free of anything personal and can be cached."""

    def __init__(self, request: web.Request) -> None:
        self._request = request

    def __str__(self) -> str:
        request = self._request
        mark_personal(request)
        existing = request.cookies.get(CSRF_COOKIE, "")
        if 20 <= len(existing) <= 100:
            return existing
        if _ANON_CSRF not in request:
            request[_ANON_CSRF] = secrets.token_urlsafe(32)
        return request[_ANON_CSRF]

    def __html__(self) -> str:
        return escape(str(self))


def secure_cookies(request: web.Request) -> bool:
    """Cookies get ``Secure`` when the node is served over https."""
    return request.app[CONTEXT].config.base_url.startswith("https://")


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str,
               max_age: int | None = None) -> None:
    """Set a cookie with the flags every meshnode cookie carries."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="Lax",
        secure=secure_cookies(request),
    )


async def current_session(request: web.Request) -> SessionRow | None:
    """The signed-in session of this request (looked up once per request)."""
    if _SESSION not in request:
        secret = request.cookies.get(SESSION_COOKIE, "")
        request[_SESSION] = (
            await session_service.current_session(request.app[CONTEXT], secret) if secret else None
        )
    return request[_SESSION]


async def current_member(request: web.Request) -> MemberRow | None:
    """The signed-in member, or None for a visitor."""
    found = await current_session(request)
    return found.member if found else None


def login_url(request: web.Request) -> str:
    """Where to send a visitor who must sign in first (and come back afterwards)."""
    return f"/login?next={quote(request.path_qs, safe='')}"


async def require_member(request: web.Request) -> MemberRow:
    """The signed-in member; visitors are redirected to the login page."""
    member = await current_member(request)
    if member is None:
        raise web.HTTPSeeOther(login_url(request))
    return member


async def require_admin(request: web.Request) -> MemberRow:
    """The signed-in administrator (403 for other members)."""
    member = await require_member(request)
    if not member.is_admin:
        raise web.HTTPForbidden()
    return member


async def csrf_token(request: web.Request) -> str:
    """The token forms on this page must send back."""
    found = await current_session(request)
    if found is not None:
        return found.csrf_token
    return str(_AnonymousCsrfToken(request))


async def read_form(request: web.Request) -> MultiDictProxy[str | Any]:
    """The submitted form, after checking its CSRF token (403 if missing or forged)."""
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    found = await current_session(request)
    expected = found.csrf_token if found is not None else request.cookies.get(CSRF_COOKIE, "")
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(
        sent.encode(), expected.encode()
    ):
        raise web.HTTPForbidden(reason="CSRF token missing or invalid")
    return form


def field(form: MultiDictProxy[str | Any], name: str, limit: int = 10_000) -> str:
    """A text field of a form ('' if absent or not text), capped at ``limit`` characters."""
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def translator(request: web.Request, member: MemberRow | None = None) -> Translator:
    """The language of this request: member preference (a visitor's footer choice),
    Accept-Language, node default."""
    # Chosen once a request, again only for a member not chosen for yet (a page asks three
    # or four times: the handler, money(), render(); issue 17).
    if _TRANSLATOR not in request or (member is not None
                                      and request.get(_TRANSLATOR_MEMBER) is not member):
        i18n = request.app[I18N]
        request[_TRANSLATOR] = i18n.choose(
            member.locale if member else request.cookies.get(LANG_COOKIE),
            request.headers.get("Accept-Language", ""),
        )
        request[_TRANSLATOR_MEMBER] = member
    return request[_TRANSLATOR]


async def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render a page with the common context (member, language, CSRF token, unread count)."""
    ctx = request.app[CONTEXT]
    member = await current_member(request)
    tr = translator(request, member)
    badges = await badge_service.navigation_badges(ctx, member) if member else None
    unread = badges.messages if badges else 0
    notices = badges.notifications if badges else 0
    token: str | _AnonymousCsrfToken = (
        await csrf_token(request) if member else _AnonymousCsrfToken(request))
    env = request.app[TEMPLATES].env
    page = env.get_template(template).render(
        {
            "_": tr.gettext, "ngettext": tr.ngettext, "pgettext": tr.pgettext,
            "fmt": tr, "lang": tr.lang, "now": ctx.clock(),
            "me": member, "csrf_token": token, "unread": unread, "notices": notices,
            "member_nav": _member_nav(request, env, tr, member, str(token), unread, notices)
            if member else None,
            "community": ctx.config,
            "path": request.path, "path_qs": request.path_qs, "storage": ctx.store.health,
            "cached_card": partial(request.app[CARDS].render, env, tr),
            "cards": partial(request.app[CARDS].render_all, env, tr), **context,
        }
    )
    response = web.Response(text=page, content_type="text/html", status=status)
    response.headers["Cache-Control"] = "no-store" if member else "no-cache"
    response.headers["Content-Language"] = tr.lang
    if member is None and _ANON_CSRF in request:
        set_cookie(request, response, CSRF_COOKIE, request[_ANON_CSRF])
    return response


def _member_nav(request: web.Request, env: jinja2.Environment, tr: Translator,
                member: MemberRow, token: str, unread: int, notices: int) -> Markup:
    """A signed-in member's menu (``_member_nav.html``), kept in the fragment cache: keyed by
    all it shows (language, username, admin or not, both counts, the session's CSRF token), it
    is rendered again only when one of them changes (its twenty translations were about a
    tenth of every member's page, issue 17)."""
    key = (tr.lang, member.username, member.is_admin, unread, notices, token)
    return request.app[FRAGMENTS].render(env, "_member_nav.html", key, lambda: {
        "_": tr.gettext, "ngettext": tr.ngettext, "fmt": tr, "me": member,
        "csrf_token": token, "unread": unread, "notices": notices})


def redirect(location: str) -> web.HTTPSeeOther:
    """Post/redirect/get: answer a successful form with a 303 to a page."""
    return web.HTTPSeeOther(location)


def safe_next(target: str) -> str:
    """Only same-origin paths are allowed as a post-login destination (no open redirect)."""
    return local_target(target)
