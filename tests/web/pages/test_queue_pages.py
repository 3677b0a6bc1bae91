"""The waiting list on a lent item's page, in French: join, my place, my turn, leave."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.services import deals
from meshnode.services import queue as queue_service
from meshnode.services.context import NodeContext
from tests.conftest import MakeMember, TestMember
from tests.web.pages.conftest import HTML, csrf_of, login
from tests.web.test_min_reputation import completed_loans
from tests.web.test_queue_api import lent_out

FR = {**HTML, "Accept-Language": "fr-FR,fr;q=0.9"}


async def _page(client: TestClient, path: str) -> str:
    response = await client.get(path, headers=FR)
    assert response.status == 200
    return await response.text()


async def _post(client: TestClient, path: str, page: str) -> int:
    token = await csrf_of(client, page)
    response = await client.post(path, data={"csrf": token}, headers=FR,
                                 allow_redirects=False)
    return response.status


async def test_queue_page__join_see_my_place_then_my_turn_in_french(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    listing_id, deal_id = await lent_out(ctx, alice, bob)
    await make_member("carol")
    page = f"/listings/{listing_id}"
    await login(client, "carol")
    # Given the drill is out: the page offers the waiting list
    text = await _page(client, page)
    assert "Cet objet est prêté en ce moment." in text
    assert "Rejoindre la file d’attente" in text
    # When Carol joins
    assert await _post(client, f"{page}/queue", page) == 303
    # Then she reads her place, and a button to leave
    text = await _page(client, page)
    assert "Vous êtes n° 1 dans la file d’attente." in text
    assert "Quitter la file d’attente" in text
    # When the drill is back, her turn is shown with the deadline in the community's time
    await deals.act(ctx, alice.row, deal_id, "complete")
    await queue_service.run_due(ctx)
    text = await _page(client, page)
    assert "C’est votre tour" in text
    assert "27 nov. 2026" in text
    # And the notifications page names it
    assert "C’est votre tour" in await _page(client, "/notifications")


async def test_queue_page__refused_join_is_the_listing_page_with_the_reason(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    await completed_loans(ctx, alice, bob, 1)
    listing_id, _ = await lent_out(ctx, alice, bob, min_reputation=1)
    carol = await make_member("carol")
    page = f"/listings/{listing_id}"
    await login(client, "carol")  # no exchange done yet
    token = await csrf_of(client, page)
    response = await client.post(f"{page}/queue", data={"csrf": token}, headers=FR)
    assert response.status == 403
    assert "le prêteur demande au moins 1 échanges terminés" in await response.text()
    assert (await queue_service.status(ctx, carol.row, listing_id)).length == 0


async def test_queue_page__the_lender_sees_how_many_wait(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    listing_id, _ = await lent_out(ctx, alice, bob)
    carol = await make_member("carol")
    await queue_service.join(ctx, carol.row, listing_id)
    await login(client, "alice")
    assert "1 membre en attente" in await _page(client, f"/listings/{listing_id}")
