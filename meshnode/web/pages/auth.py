"""Accounts: login, logout, sign-up through an invitation link, profile and password settings."""

from __future__ import annotations

from aiohttp import web

from meshnode.config import LOCALES
from meshnode.errors import AuthenticationError, ConflictError, NotFoundError, RateLimitedError
from meshnode.protocol.errors import ValidationError
from meshnode.services import accounts, invitations, sessions
from meshnode.services.sessions import SESSION_LIFETIME
from meshnode.web.appkeys import CONTEXT, LOGIN_THROTTLE
from meshnode.web.browser import (
    SESSION_COOKIE,
    current_session,
    field,
    read_form,
    redirect,
    render,
    require_member,
    safe_next,
    set_cookie,
)
from meshnode.web.pages.calendar import calendar_settings

MISMATCH = "the two passwords differ"


def _start_session(request: web.Request, new: sessions.NewSession, target: str) -> web.HTTPSeeOther:
    response = redirect(safe_next(target))
    set_cookie(request, response, SESSION_COOKIE, new.secret,
               max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


async def login_form(request: web.Request) -> web.Response:
    """``GET /login``."""
    return await render(request, "login.html", {
        "next": safe_next(request.query.get("next", "/")), "username": "", "error": None,
    })


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /login``: throttled per account and per address; 303 to ``next`` on success."""
    form = await read_form(request)
    username, target = field(form, "username", 64), safe_next(field(form, "next", 500))
    ctx = request.app[CONTEXT]
    try:
        new = await sessions.login(
            ctx, request.app[LOGIN_THROTTLE], username=username,
            password=field(form, "password", 2000), address=request.remote or "unknown",
        )
    except RateLimitedError as exc:
        response = await render(request, "login.html", {
            "next": target, "username": username, "error": "rate_limited",
            "retry_after": exc.retry_after,
        }, status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AuthenticationError:
        return await render(request, "login.html", {
            "next": target, "username": username, "error": "wrong",
        }, status=401)
    raise _start_session(request, new, target)


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /logout``: the session row is revoked, the cookie cleared."""
    await read_form(request)
    secret = request.cookies.get(SESSION_COOKIE, "")
    if secret:
        await sessions.logout(request.app[CONTEXT], secret)
    response = redirect("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def join_form(request: web.Request) -> web.Response:
    """``GET /join/{secret}``: the sign-up form of an invitation link."""
    try:
        await invitations.usable_invitation(request.app[CONTEXT], request.match_info["secret"])
    except NotFoundError:
        return await render(request, "join_invalid.html", {}, status=404)
    return await render(request, "join.html", {"values": {}, "errors": {}})


async def join(request: web.Request) -> web.StreamResponse:
    """``POST /join/{secret}``: create the account, consume the link, sign in."""
    form = await read_form(request)
    ctx = request.app[CONTEXT]
    values = {k: field(form, k, 200) for k in ("username", "display_name")}
    password = field(form, "password", 2000)
    if password != field(form, "password_again", 2000):
        return await render(request, "join.html", {
            "values": values, "errors": {"password_again": MISMATCH},
        }, status=422)
    try:
        member = await invitations.redeem(
            ctx, request.match_info["secret"], username=values["username"].strip(),
            password=password, display_name=values["display_name"],
        )
    except NotFoundError:
        return await render(request, "join_invalid.html", {}, status=404)
    except (ValidationError, ConflictError) as exc:
        return await render(request, "join.html", {"values": values, "errors": exc.fields},
                            status=422)
    raise _start_session(request, await sessions.open_session(ctx, member), "/")


async def settings_page(request: web.Request) -> web.Response:
    """``GET /settings``: profile, language and password."""
    member = await require_member(request)
    return await render(request, "settings.html", {
        "values": {"display_name": member.display_name, "bio": member.bio,
                   "locale": member.locale or ""},
        "errors": {}, "locales": LOCALES, "saved": request.query.get("saved"),
        "calendar": await calendar_settings(request, member),
    })


async def save_profile(request: web.Request) -> web.StreamResponse:
    """``POST /settings/profile``."""
    member = await require_member(request)
    form = await read_form(request)
    values = {k: field(form, k, 3000) for k in ("display_name", "bio", "locale")}
    try:
        await accounts.update_profile(request.app[CONTEXT], member, **values)
    except ValidationError as exc:
        return await render(request, "settings.html", {
            "values": values, "errors": exc.fields, "locales": LOCALES, "saved": None,
        }, status=422)
    raise redirect("/settings?saved=profile")


async def change_password(request: web.Request) -> web.StreamResponse:
    """``POST /settings/password``: every other session of the member is revoked."""
    member = await require_member(request)
    form = await read_form(request)
    found = await current_session(request)
    assert found is not None
    new = field(form, "new", 2000)
    try:
        if new != field(form, "new_again", 2000):
            raise ValidationError(MISMATCH, {"new_again": MISMATCH})  # noqa: TRY301
        await accounts.change_password(
            request.app[CONTEXT], member, current=field(form, "current", 2000), new=new,
            keep_session=found.id,
        )
    except ValidationError as exc:
        return await render(request, "settings.html", {
            "values": {"display_name": member.display_name, "bio": member.bio,
                       "locale": member.locale or ""},
            "password_errors": exc.fields, "errors": {}, "locales": LOCALES, "saved": None,
        }, status=422)
    raise redirect("/settings?saved=password")


def setup_auth_pages(app: web.Application) -> None:
    """Register the account pages."""
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/join/{secret}", join_form)
    app.router.add_post("/join/{secret}", join)
    app.router.add_get("/settings", settings_page)
    app.router.add_post("/settings/profile", save_profile)
    app.router.add_post("/settings/password", change_password)
