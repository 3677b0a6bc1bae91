"""Settings page: download my data, delete my account in two steps (French and English)."""

from __future__ import annotations

import io
import zipfile

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from meshnode.services.context import NodeContext
from tests.conftest import PASSWORD, TestMember
from tests.web.pages.conftest import HTML, csrf_of, login, make_ride

FRENCH = {**HTML, "Accept-Language": "fr"}


async def _delete(client: TestClient, **data: str) -> ClientResponse:
    token = await csrf_of(client, "/settings/delete")
    return await client.post("/settings/delete", data={**data, "csrf": token}, headers=FRENCH,
                             allow_redirects=False)


async def test_settings__download_my_data_gives_my_archive(
    client: TestClient, ctx: NodeContext, alice: TestMember
) -> None:
    # Given alice signed in, with a listing
    await make_ride(ctx, alice)
    await login(client, "alice")
    # When she opens Settings and follows the download link
    page = await (await client.get("/settings", headers=HTML)).text()
    assert 'href="/settings/export"' in page
    response = await client.get("/settings/export", headers=HTML)
    # Then she gets her zip archive
    assert response.status == 200
    assert "attachment" in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert "README.txt" in archive.namelist()
    assert archive.read("listings.jsonl").count(b"\n") == 1


async def test_settings__delete_asks_twice_and_a_wrong_password_changes_nothing_in_french(
    client: TestClient, ctx: NodeContext, bob: TestMember
) -> None:
    # Given bob (not an administrator) signed in, reading French
    await login(client, "bob")
    first = await client.get("/settings/delete", headers=FRENCH)
    assert "Ce que fait la suppression" in await first.text()
    # When he submits a wrong password, then forgets to tick the box
    wrong = await _delete(client, password="nope nope", confirm="yes")
    unticked = await _delete(client, password=PASSWORD)
    # Then each is refused with a translated page and he is still signed in
    assert wrong.status == 403
    assert "mot de passe incorrect" in await wrong.text()
    assert unticked.status == 422
    assert "cochez la case" in await unticked.text()
    assert (await client.get("/settings", headers=HTML)).status == 200
    # And with the password and the box ticked, the account goes and the session ends
    done = await _delete(client, password=PASSWORD, confirm="yes")
    assert done.status == 200, await done.text()
    assert "Compte supprimé" in await done.text()
    again = await client.get("/settings", headers=HTML, allow_redirects=False)
    assert again.status == 303


async def test_admin_members_page__exports_a_member_and_refuses_members(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    # Given bob with a listing, and alice, an administrator, signed in
    await make_ride(ctx, bob)
    await login(client, "alice")
    # When she follows the export link of the Members page
    page = await (await client.get("/admin/members", headers=HTML)).text()
    assert 'href="/admin/members/bob/export"' in page
    response = await client.get("/admin/members/bob/export", headers=HTML)
    # Then she gets bob's archive
    assert response.status == 200
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert b'"username": "bob"' in archive.read("profile.jsonl")
    # And bob, signed in, cannot export alice's data
    await client.post("/logout", data={"csrf": await csrf_of(client, "/settings")},
                      headers=HTML, allow_redirects=False)
    await login(client, "bob")
    refused = await client.get("/admin/members/alice/export", headers=HTML)
    assert refused.status == 403
