"""Security properties of the HTML pages: CSRF, cookies, rate limits, escaping, ownership."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_q
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, invitation_link, login, make_ride


async def _count(ctx: NodeContext) -> int:
    return await listing_q.count_listings(ctx.store.reader)


def _ride_form(**overrides: str) -> dict[str, str]:
    form = {"category": "ride", "kind": "offer", "title": "Covoiturage vers Lyon",
            "description": "", "price.mode": "free", "details.from": "Canal",
            "details.to": "Lyon", "details.departure": "2026-12-05T09:00", "details.seats": "3"}
    form.update(overrides)
    return form


@pytest.mark.parametrize("token", [None, "", "forged-token-value-0123456789abcdef"])
async def test_post_listing__without_valid_csrf_is_403_and_stores_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, token: str | None
) -> None:
    # Given a signed-in member
    await login(client, "alice")
    data = _ride_form()
    if token is not None:
        data["csrf"] = token
    # When the form is posted without a valid CSRF token
    response = await client.post("/post", data=data, headers=HTML, allow_redirects=False)
    # Then it is refused and nothing is stored
    assert response.status == 403
    assert "text/html" in response.headers["Content-Type"]
    assert await _count(ctx) == 0


async def test_post_listing__with_csrf_is_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    token = await csrf_of(client, "/post?category=ride")
    response = await client.post("/post", data={**_ride_form(), "csrf": token}, headers=HTML,
                                 allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/listings/")
    assert await _count(ctx) == 1


async def test_csrf__token_of_another_session_is_refused(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    bob_token = await csrf_of(client, "/post?category=ride")
    client.session.cookie_jar.clear()
    await login(client, "alice")
    response = await client.post("/post", data={**_ride_form(), "csrf": bob_token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 403
    assert await _count(ctx) == 0


@pytest.mark.parametrize("path", [
    "/login", "/logout", "/post", "/settings/profile", "/settings/password",
    "/admin/invitations", "/admin/settings", "/admin/members/bob",
])
async def test_every_form_endpoint__refuses_missing_csrf(
    client: TestClient, alice: base.TestMember, bob: base.TestMember, path: str
) -> None:
    await login(client, "alice")
    response = await client.post(path, data={"username": "alice"}, headers=HTML,
                                 allow_redirects=False)
    assert response.status == 403


async def test_login__cookie_is_httponly_samesite_lax_not_secure_on_http(
    client: TestClient, alice: base.TestMember
) -> None:
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login", data={"username": "alice", "password": base.PASSWORD, "csrf": token},
        headers=HTML, allow_redirects=False,
    )
    assert response.status == 303
    header = response.headers["Set-Cookie"]
    assert header.startswith("mn_session=")
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header


async def test_login__cookie_is_secure_when_public_url_is_https(
    aiohttp_client, tmp_path, clock: base.FakeClock  # type: ignore[no-untyped-def]
) -> None:
    from meshnode.app import create_app
    from meshnode.services import members
    from meshnode.web.appkeys import CONTEXT

    config = base.make_config(tmp_path / "tls", public_url="https://voisins.example")
    client = await aiohttp_client(create_app(config, clock=clock))
    await members.add_member(client.app[CONTEXT], username="alice", password=base.PASSWORD)
    response = await client.get("/login", headers=HTML)
    assert "Secure" in response.headers["Set-Cookie"]  # the anonymous CSRF cookie
    token = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    assert token
    login_response = await client.post(
        "/login", data={"username": "alice", "password": base.PASSWORD, "csrf": token.group(1)},
        headers=HTML, allow_redirects=False, cookies={"mn_csrf": token.group(1)},
    )
    assert login_response.status == 303
    assert "Secure" in login_response.headers["Set-Cookie"]


async def test_login__wrong_password_then_rate_limited_per_account(
    client: TestClient, alice: base.TestMember
) -> None:
    token = await csrf_of(client, "/login")
    for _ in range(5):
        wrong = await client.post("/login", data={"username": "alice", "password": "nope-nope",
                                                  "csrf": token}, headers=HTML)
        assert wrong.status == 401
    # Even the right password is refused while the account is throttled.
    right = await client.post("/login", data={"username": "alice", "password": base.PASSWORD,
                                              "csrf": token}, headers=HTML,
                              allow_redirects=False)
    assert right.status == 429
    assert int(right.headers["Retry-After"]) > 0
    assert "mn_session" not in right.cookies


async def test_login__throttle_lifts_after_the_window(
    client: TestClient, clock: base.FakeClock, alice: base.TestMember
) -> None:
    token = await csrf_of(client, "/login")
    for _ in range(5):
        await client.post("/login", data={"username": "alice", "password": "nope-nope",
                                          "csrf": token}, headers=HTML)
    clock.advance(minutes=16)
    right = await client.post("/login", data={"username": "alice", "password": base.PASSWORD,
                                               "csrf": token}, headers=HTML,
                              allow_redirects=False)
    assert right.status == 303


async def test_login__rate_limited_per_address_across_accounts(
    client: TestClient, alice: base.TestMember
) -> None:
    token = await csrf_of(client, "/login")
    for number in range(20):
        await client.post("/login", data={"username": f"user{number}", "password": "x" * 8,
                                          "csrf": token}, headers=HTML)
    response = await client.post("/login", data={"username": "alice",
                                                  "password": base.PASSWORD, "csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 429


async def test_logout__revokes_the_session_server_side(
    client: TestClient, alice: base.TestMember
) -> None:
    await login(client, "alice")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["mn_session"].value
    token = await csrf_of(client, "/settings")
    response = await client.post("/logout", data={"csrf": token}, headers=HTML,
                                 allow_redirects=False)
    assert response.status == 303
    # Replaying the old cookie no longer works: the session row is revoked.
    client.session.cookie_jar.clear()
    replay = await client.get("/settings", headers=HTML, cookies={"mn_session": cookie},
                              allow_redirects=False)
    assert replay.status == 303
    assert replay.headers["Location"].startswith("/login")


async def test_edit_someone_elses_listing__is_403_and_unchanged(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    listing_id = await make_ride(ctx, alice)
    await login(client, "bob")
    token = await csrf_of(client, "/")
    assert (await client.get(f"/listings/{listing_id}/edit", headers=HTML)).status == 403
    response = await client.post(f"/listings/{listing_id}/edit",
                                 data={**_ride_form(title="Hijacked"), "csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 403
    for action, data in (("status", {"status": "done"}), ("withdraw", {})):
        response = await client.post(f"/listings/{listing_id}/{action}",
                                     data={**data, "csrf": token}, headers=HTML,
                                     allow_redirects=False)
        assert response.status == 403
    view = await listing_service.get_listing(ctx, listing_id)
    assert view.row.title != "Hijacked"
    assert view.row.status == "active"
    assert view.row.version == 1


async def test_script_in_title__is_escaped_everywhere(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    evil = '<script>alert("x")</script> vélo'
    listing_id = await make_ride(ctx, alice, title=evil, description="<img src=x onerror=1>")
    for path in ["/", f"/listings/{listing_id}", "/search?q=velo", "/users/alice"]:
        text = await (await client.get(path, headers=HTML)).text()
        assert "<script>alert" not in text, path
        assert "<img src=x" not in text, path
        assert "&lt;script&gt;alert(" in text, path


async def test_security_headers__on_pages(client: TestClient) -> None:
    response = await client.get("/", headers=HTML)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_pages__no_external_assets(client: TestClient, ctx: NodeContext,
                                         alice: base.TestMember) -> None:
    listing_id = await make_ride(ctx, alice)
    for path in ["/", f"/listings/{listing_id}", "/login"]:
        text = await (await client.get(path, headers=HTML)).text()
        assert not re.search(r'(src|href)="(https?:)?//', text), path


async def test_login_next__refuses_open_redirect(client: TestClient,
                                                  alice: base.TestMember) -> None:
    token = await csrf_of(client, "/login")
    response = await client.post(
        "/login", data={"username": "alice", "password": base.PASSWORD, "csrf": token,
                        "next": "//evil.example/"}, headers=HTML, allow_redirects=False,
    )
    assert response.headers["Location"] == "/"


async def test_invitation__single_use(client: TestClient, ctx: NodeContext,
                                      alice: base.TestMember) -> None:
    link = await invitation_link(ctx, alice)
    token = await csrf_of(client, link)
    form = {"username": "carol", "password": "long enough pw", "password_again": "long enough pw",
            "csrf": token}
    first = await client.post(link, data=form, headers=HTML, allow_redirects=False)
    assert first.status == 303
    client.session.cookie_jar.clear()
    token = await csrf_of(client, "/login")
    second = await client.post(link, data={**form, "username": "dave", "csrf": token},
                               headers=HTML, allow_redirects=False)
    assert second.status == 404
    from meshnode.store import members as member_q
    assert await member_q.get_member_by_username(ctx.store.reader, "dave") is None
    assert (await client.get(link, headers=HTML)).status == 404


async def test_invitation__expired_link_refused(
    client: TestClient, ctx: NodeContext, clock: base.FakeClock, alice: base.TestMember
) -> None:
    link = await invitation_link(ctx, alice, days=1)
    token = await csrf_of(client, "/login")
    clock.advance(days=1, seconds=1)
    assert (await client.get(link, headers=HTML)).status == 404
    response = await client.post(link, data={"username": "carol", "password": "long enough pw",
                                             "password_again": "long enough pw", "csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 404
    from meshnode.store import members as member_q
    assert await member_q.get_member_by_username(ctx.store.reader, "carol") is None


async def test_invitation__bad_input_keeps_link_usable(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    link = await invitation_link(ctx, alice)
    token = await csrf_of(client, link)
    response = await client.post(link, data={"username": "Bad Name!", "password": "short",
                                             "password_again": "short", "csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 422
    text = await response.text()
    assert 'value="Bad Name!"' in text  # input preserved
    assert "at least 8 characters" in text
    assert (await client.get(link, headers=HTML)).status == 200


async def test_disabled_member__session_stops_working(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "bob")
    from meshnode.services import members
    await members.set_disabled(ctx, "bob", disabled=True)
    response = await client.get("/settings", headers=HTML, allow_redirects=False)
    assert response.status == 303


async def test_admin_pages__forbidden_to_members(client: TestClient, alice: base.TestMember,
                                                 bob: base.TestMember) -> None:
    await login(client, "bob")
    for path in ["/admin/members", "/admin/invitations", "/admin/reports", "/admin/settings"]:
        assert (await client.get(path, headers=HTML)).status == 403
