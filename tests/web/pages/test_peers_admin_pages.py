"""Admin peers page: list with status and delivery queue, add / approve / remove / block."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.federation import peering
from meshnode.federation.http import error_problem
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq
from meshnode.web.pages.peers_admin import is_clock_skew
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login

SKEW = ("HTTP 401 clock_skew: signature created is 7300 seconds in the past (allowed ±3600 s);"
        " one of the two servers' clocks is probably wrong")


async def _post(client: TestClient, path: str, data: dict[str, str]) -> object:
    token = await csrf_of(client, "/admin/peers")
    return await client.post(path, data={**data, "csrf": token}, headers=HTML,
                             allow_redirects=False)


async def _peers(ctx: NodeContext) -> dict[str, str]:
    return {peer.peer: peer.status for peer in await peering.list_peers(ctx)}


async def test_peers_page__lists_status_and_explains_clock_skew(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    # Given a peer whose last attempts were refused for clock skew
    origin = await peering.add_peer(ctx, "https://other.example")
    async with ctx.store.transaction() as tx:
        await fq.update_peer(tx, origin, "2026-12-01T10:00:00Z", last_error=SKEW)
    await login(client, "alice")
    response = await client.get("/admin/peers", headers=HTML)
    text = await response.text()
    assert response.status == 200
    assert "https://other.example" in text
    assert '<span class="tag tag-status">Pending</span>' in text
    assert "most common federation failure" in text
    assert "The node refused our requests because the two servers&#39; clocks differ." in text
    assert "7300 seconds in the past" not in text  # the raw refusal is for the log only


async def test_peers_page__no_skew_notice_for_other_errors(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    origin = await peering.add_peer(ctx, "https://other.example")
    async with ctx.store.transaction() as tx:
        await fq.update_peer(tx, origin, "2026-12-01T10:00:00Z", last_error="HTTP 500")
    await login(client, "alice")
    text = await (await client.get("/admin/peers", headers=HTML)).text()
    assert "The node had an error of its own." in text
    assert "HTTP 500" not in text
    assert "Clock skew" not in text


async def test_peers_page__in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await peering.add_peer(ctx, "https://other.example")
    await login(client, "alice")
    text = await (await client.get("/admin/peers", headers={
        "Accept": "text/html", "Accept-Language": "fr"})).text()
    assert "Nœuds connus" in text
    assert "En attente" in text
    assert "Dernière synchronisation" in text


async def test_add_peer__by_handle_then_block_with_preview_then_unblock_then_remove(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    key = "acct:canal@127.0.0.1:9999"
    await login(client, "alice")
    added = await _post(client, "/admin/peers", {"target": "canal@127.0.0.1:9999"})
    assert added.status == 303  # type: ignore[attr-defined]
    assert await _peers(ctx) == {key: "pending"}
    page = await (await client.get("/admin/peers?done=add", headers=HTML)).text()
    assert "Peering requested" in page
    # The handle-only row's Block button goes to the preview, as a URL row's does
    assert 'formaction="/admin/blocks/preview"' in page
    assert "/admin/peers/block" not in page
    preview = await _post(client, "/admin/blocks/preview", {"peer": key})
    assert preview.status == 200  # type: ignore[attr-defined]
    assert (f"Blocking {key} would do this; nothing changes until you confirm."
            in await preview.text())  # type: ignore[attr-defined]
    assert await _peers(ctx) == {key: "pending"}
    # The old immediate block is gone
    old = await _post(client, "/admin/peers/block", {"peer": key})
    assert old.status in (404, 405)  # type: ignore[attr-defined]
    assert await _peers(ctx) == {key: "pending"}
    done = await _post(client, "/admin/blocks", {"peer": key, "confirm": "1"})
    assert done.status == 200  # type: ignore[attr-defined]
    assert f"{key} is blocked." in await done.text()  # type: ignore[attr-defined]
    assert await _peers(ctx) == {key: "blocked"}
    unblocked = await _post(client, "/admin/blocks/undo", {"peer": key})
    assert unblocked.status == 303  # type: ignore[attr-defined]
    assert await _peers(ctx) == {key: "pending"}
    removed = await _post(client, "/admin/peers/remove", {"peer": key})
    assert removed.status == 303  # type: ignore[attr-defined]
    assert await _peers(ctx) == {}


async def test_add_peer__bad_handle_shown_next_to_field_and_nothing_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    for bad in ("not a handle", "", "x" * 400, "canal@bad host"):
        response = await _post(client, "/admin/peers", {"target": bad})
        assert response.status == 422  # type: ignore[attr-defined]
        text = await response.text()  # type: ignore[attr-defined]
        assert 'id="err-target"' in text
        assert 'aria-invalid="true"' in text
        if bad:
            assert f'value="{bad[:301]}"' in text
    assert await _peers(ctx) == {}


async def test_approve__without_pending_request_says_why(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await peering.add_peer(ctx, "https://other.example")
    await login(client, "alice")
    response = await _post(client, "/admin/peers/approve", {"peer": "https://other.example"})
    assert response.status == 409  # type: ignore[attr-defined]
    assert "has no pending request" in await response.text()  # type: ignore[attr-defined]


async def test_peers__members_get_403_and_csrf_less_posts_change_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    await login(client, "alice")
    no_token = await client.post("/admin/peers", data={"target": "https://other.example"},
                                 headers=HTML, allow_redirects=False)
    assert no_token.status == 403
    client.session.cookie_jar.clear()
    await login(client, "bob")
    assert (await client.get("/admin/peers", headers=HTML)).status == 403
    token = await csrf_of(client, "/wallet")
    member = await client.post("/admin/peers", data={
        "target": "https://other.example", "csrf": token}, headers=HTML, allow_redirects=False)
    assert member.status == 403
    assert await _peers(ctx) == {}


def test_is_clock_skew__recognises_the_refusal() -> None:
    assert is_clock_skew(SKEW)
    assert is_clock_skew("HTTP 401 clock_skew")
    assert not is_clock_skew("HTTP 401")
    assert not is_clock_skew(None)


def test_error_problem__code_and_message_of_a_json_error_body() -> None:
    assert error_problem(b'{"error": "clock_skew", "message": "too old"}') == \
        "clock_skew: too old"
    assert error_problem(b'{"error": "bad"}') == "bad"
    assert error_problem(b"<html>") is None
    assert error_problem(b"[1]") is None
