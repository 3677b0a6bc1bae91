"""Admin Neighbours page: every status rendered, peer/block actions, admin-only, CSRF."""

from __future__ import annotations

import re
from dataclasses import replace

from aiohttp.test_utils import TestClient

from meshnode.protocol.discovery import Advert
from meshnode.protocol.timefmt import format_utc
from meshnode.services import neighbours
from meshnode.services.context import NodeContext
from meshnode.services.neighbours import SeenAdvert
from meshnode.store import federation as fq
from meshnode.store import neighbours as nq
from meshnode.store.neighbours import NeighbourRow
from tests import conftest as base
from tests.web.pages.conftest import HTML, csrf_of, login

# 127.0.0.N port 9 (discard) refuses connections at once: the peering worker fails fast.
PORT = 9


def _address(index: int) -> str:
    return f"127.0.0.{index}"


def _origin(index: int) -> str:
    return f"http://{_address(index)}:{PORT}"


def _seen(index: int, name: str) -> SeenAdvert:
    return SeenAdvert(f"{name} ({index:04d})._meshnode._tcp.local.",
                      Advert(bytes([index]) * 32, f"/groups/n{index}", name), (_address(index),),
                      PORT)


def _actor(index: int) -> str:
    return f"{_origin(index)}/groups/n{index}"


async def _neighbour(ctx: NodeContext, index: int, name: str) -> NeighbourRow:
    row = await neighbours.record_advert(ctx, _seen(index, name), max_neighbours=50)
    assert row is not None
    return row


async def _verified(ctx: NodeContext, index: int, name: str) -> NeighbourRow:
    row = await _neighbour(ctx, index, name)
    return await neighbours.record_verified(ctx, row.id, _actor(index))


def _row_html(text: str, row: NeighbourRow) -> str:
    match = re.search(rf'<tr id="neighbour-{row.id}">(.*?)</tr>', text, re.S)
    assert match, f"neighbour {row.id} not on the page"
    return match.group(1)


async def test_neighbours_page__renders_every_status(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    # Given neighbours in each state
    discovered = await _neighbour(ctx, 1, "Les Voisins du Canal")
    verified = await _verified(ctx, 2, "Jardins <Croix-Rousse>")
    peered = await _verified(ctx, 3, "Riverside Makers")
    async with ctx.store.transaction() as tx:
        await nq.update_neighbour(tx, peered.id, status="peering_requested")
        now = format_utc(ctx.clock())
        await fq.insert_peer(tx, origin=_origin(3), requested=_actor(3),
                             out_state="peered", now=now)
        await fq.update_peer(tx, _origin(3), now, actor_id=_actor(3),
                             last_sync_at="2026-11-20T08:30:00Z")
    offline = await _neighbour(ctx, 4, "Quartier Gare")
    await neighbours.record_goodbye(ctx, offline.instance_name)
    blocked = await _neighbour(ctx, 5, "Spammeur")
    await neighbours.block_neighbour(ctx, blocked.id)
    await login(client, "alice")
    # When the admin opens the Neighbours page
    response = await client.get("/admin/neighbours", headers=HTML)
    text = await response.text()
    # Then each neighbour shows its name, fingerprint, address, status, last sync, actions
    assert response.status == 200
    assert "Policy: discovery is off" in text  # the test node's policy
    shown = _row_html(text, discovered)
    assert "Les Voisins du Canal" in shown
    assert f"<code>{discovered.fingerprint}</code>" in shown
    assert f"{_address(1)}:{PORT}" in shown
    assert "status-discovered" in shown
    assert "never" in shown
    assert f'action="/admin/neighbours/{discovered.id}/approve"' in shown
    assert f'action="/admin/neighbours/{discovered.id}/block"' in shown
    shown = _row_html(text, verified)
    assert "status-verified" in shown
    assert "Jardins &lt;Croix-Rousse&gt;" in shown  # escaped, as every advert field
    assert f'href="{_actor(2)}"' in shown
    shown = _row_html(text, peered)
    assert "status-peered" in shown
    assert re.search(r'status-peered">\s*peered\s*</span>', shown)
    assert "11/20/26" in shown  # last sync, short date
    assert "/approve" not in shown  # already peered: nothing to approve
    shown = _row_html(text, offline)
    assert "status-offline" in shown
    shown = _row_html(text, blocked)
    assert "blocked" in shown
    assert "<form" not in shown


async def test_neighbours_page__in_french(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    await _verified(ctx, 2, "Jardins")
    await login(client, "alice")
    text = await (await client.get("/admin/neighbours", headers={
        "Accept": "text/html", "Accept-Language": "fr"})).text()
    assert "Empreinte de la clé" in text
    assert "vérifié" in text
    assert "Se relier" in text


async def test_neighbours_page__empty(client: TestClient, alice: base.TestMember) -> None:
    await login(client, "alice")
    text = await (await client.get("/admin/neighbours", headers=HTML)).text()
    assert "No neighbour found on the local network yet." in text
    assert 'href="/admin/neighbours" aria-current="page"' in text


async def test_neighbours_page__peer_hands_verified_neighbour_to_federation(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    row = await _verified(ctx, 2, "Jardins")
    await login(client, "alice")
    token = await csrf_of(client, "/admin/neighbours")
    response = await client.post(f"/admin/neighbours/{row.id}/approve", data={"csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 303
    after = await neighbours.get_neighbour(ctx, row.id)
    assert after.approved
    assert after.status == "peering_requested"
    assert await fq.get_peer(ctx.store.reader, _origin(2)) is not None


async def test_neighbours_page__block(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    row = await _neighbour(ctx, 1, "Spammeur")
    await login(client, "alice")
    token = await csrf_of(client, "/admin/neighbours")
    response = await client.post(f"/admin/neighbours/{row.id}/block", data={"csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 303
    assert (await neighbours.get_neighbour(ctx, row.id)).blocked
    # And approving a blocked neighbour is refused with a notice, nothing peered
    response = await client.post(f"/admin/neighbours/{row.id}/approve", data={"csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.headers["Location"] == "/admin/neighbours?error=blocked"
    assert not (await neighbours.get_neighbour(ctx, row.id)).approved


async def test_neighbours_page__post_without_csrf_is_403_and_changes_nothing(
    client: TestClient, ctx: NodeContext, alice: base.TestMember
) -> None:
    row = await _verified(ctx, 2, "Jardins")
    await login(client, "alice")
    for action in ("approve", "block"):
        response = await client.post(f"/admin/neighbours/{row.id}/{action}", data={},
                                     headers=HTML, allow_redirects=False)
        assert response.status == 403
    after = await neighbours.get_neighbour(ctx, row.id)
    assert replace(after, last_seen=row.last_seen) == row
    assert await fq.get_peer(ctx.store.reader, _origin(2)) is None


async def test_neighbours_page__members_get_403(
    client: TestClient, ctx: NodeContext, alice: base.TestMember, bob: base.TestMember
) -> None:
    row = await _verified(ctx, 2, "Jardins")
    await login(client, "bob")
    assert (await client.get("/admin/neighbours", headers=HTML)).status == 403
    token = await csrf_of(client, "/")
    for action in ("approve", "block"):
        response = await client.post(f"/admin/neighbours/{row.id}/{action}",
                                     data={"csrf": token}, headers=HTML, allow_redirects=False)
        assert response.status == 403
    assert await neighbours.get_neighbour(ctx, row.id) == row


async def test_neighbours_page__anonymous_sent_to_login_and_unknown_id_404(
    client: TestClient, alice: base.TestMember
) -> None:
    response = await client.get("/admin/neighbours", headers=HTML, allow_redirects=False)
    assert response.status in (302, 303)
    assert response.headers["Location"].startswith("/login")
    await login(client, "alice")
    token = await csrf_of(client, "/admin/neighbours")
    response = await client.post("/admin/neighbours/999/block", data={"csrf": token},
                                 headers=HTML, allow_redirects=False)
    assert response.status == 404
