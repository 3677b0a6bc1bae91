"""Admin trust lines page on one node: propose, bad input, permissions, French."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from meshnode.services import iou
from meshnode.services.context import NodeContext
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login

GOOD = {"peer": "canal@127.0.0.1:9999", "limit_out": "100", "limit_in": "50,5", "rate": "1.5"}


async def _propose(client: TestClient, data: dict[str, str]) -> object:
    token = await csrf_of(client, "/admin/trustlines")
    return await client.post("/admin/trustlines", data={**data, "csrf": token}, headers=HTML,
                             allow_redirects=False)


async def test_propose__stored_and_listed_as_proposed(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await login(client, "alice")
    response = await _propose(client, GOOD)
    assert response.status == 303  # type: ignore[attr-defined]
    [line] = await iou.list_lines(ctx)
    assert (line.requested, line.limit_out, line.limit_in, line.rate, line.state) == (
        "canal@127.0.0.1:9999", 10000, 5050, "1.5", "proposed")
    text = await (await client.get("/admin/trustlines?done=propose", headers=HTML)).text()
    assert "Trust line proposed" in text
    assert '<span class="tag tag-status">Proposed</span>' in text
    assert "100.00\u00a0G" in text
    assert "50.50\u00a0G" in text
    assert "not signed yet" in text
    assert "1 G = 1.5 of their units" in text


@pytest.mark.parametrize(("name", "bad", "hint"), [
    ("peer", "not a handle", "a handle like name@host"),
    ("peer", "", "a handle like name@host"),
    ("peer", "canal@bad host", "a handle like name@host"),
    ("limit_out", "-5", "zero or more"),
    ("limit_in", "lots", "zero or more"),
    ("rate", "0", "positive decimal"),
    ("rate", "1e3", "positive decimal"),
    ("rate", "abc", "positive decimal"),
])
async def test_propose__bad_input_next_to_field_kept_and_nothing_stored(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, name: str, bad: str,
    hint: str,
) -> None:
    await login(client, "alice")
    response = await _propose(client, {**GOOD, name: bad})
    assert response.status == 422  # type: ignore[attr-defined]
    text = await response.text()  # type: ignore[attr-defined]
    assert f'id="err-{name}"' in text
    assert hint in text
    assert f'id="{name}" name="{name}" value="{bad}"' in text
    other = next(field for field in GOOD if field != name)
    assert f'value="{GOOD[other]}"' in text  # the rest of the input is kept too
    assert await iou.list_lines(ctx) == []


async def test_trustlines__in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await iou.propose_line(ctx, None, peer="canal@127.0.0.1:9999", limit_out="12.5",
                           limit_in="0", rate="2")
    await login(client, "alice")
    text = await (await client.get("/admin/trustlines", headers={
        "Accept": "text/html", "Accept-Language": "fr"})).text()
    assert "Proposer une ligne de confiance" in text
    assert "Proposée" in text
    assert "12,50\u00a0G" in text
    bad = await client.post("/admin/trustlines", headers={
        "Accept": "text/html", "Accept-Language": "fr"}, data={
        **GOOD, "rate": "x", "csrf": await csrf_of(client, "/admin/trustlines")})
    assert "Indiquez un nombre décimal positif" in await bad.text()


async def test_trustlines__members_get_403_and_csrf_less_posts_change_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    line = await iou.propose_line(ctx, None, peer="canal@127.0.0.1:9999", limit_out="1",
                                  limit_in="1", rate="1")
    await login(client, "alice")
    for path, data in (("/admin/trustlines", GOOD),
                       (f"/admin/trustlines/{line.id}/reject", {}),
                       (f"/admin/trustlines/{line.id}/limits", {"limit_out": "0"})):
        response = await client.post(path, data=data, headers=HTML, allow_redirects=False)
        assert response.status == 403, path
    client.session.cookie_jar.clear()
    await login(client, "bob")
    assert (await client.get("/admin/trustlines", headers=HTML)).status == 403
    token = await csrf_of(client, "/wallet")
    member = await client.post("/admin/trustlines", data={**GOOD, "csrf": token},
                               headers=HTML, allow_redirects=False)
    assert member.status == 403
    assert [(row.id, row.state, row.limit_out) for row in await iou.list_lines(ctx)] == [
        (line.id, "proposed", 100)]


async def test_action__on_a_line_in_the_wrong_state_says_why(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    line = await iou.propose_line(ctx, None, peer="canal@127.0.0.1:9999", limit_out="1",
                                  limit_in="1", rate="1")
    await login(client, "alice")
    token = await csrf_of(client, "/admin/trustlines")
    response = await client.post(f"/admin/trustlines/{line.id}/close", data={"csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 409
    assert f"trust line {line.id} is proposed" in await response.text()
    assert (await iou.get_line(ctx, line.id)).state == "proposed"
