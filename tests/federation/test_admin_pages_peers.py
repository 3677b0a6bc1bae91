"""Peers page between real nodes: approval under ``peering_policy = "approve"``, status."""

from __future__ import annotations

from tests.federation.browser import browser, page, person, submit
from tests.federation.conftest import NodeFactory, settle


async def test_peers_page__approve_a_request_then_both_show_peered(
    make_node: NodeFactory,
) -> None:
    # Given beta holds peering requests for approval and alpha's admin asks from its page
    a, b = await make_node("alpha"), await make_node("beta", peering_policy="approve")
    await person(a, "root", admin=True)
    await person(b, "root", admin=True)
    async with browser(a, "root") as session:
        status, location, _ = await submit(session, "/admin/peers", {"target": b.url},
                                           "/admin/peers")
        assert (status, location) == (303, "/admin/peers?done=add")
    await settle(a, b)
    async with browser(b, "root") as session:
        # Then beta's admin sees the request waiting, with an Approve button
        waiting = await page(session, "/admin/peers")
        assert a.group in waiting
        assert "Awaiting your approval" in waiting
        assert 'formaction="/admin/peers/approve"' in waiting
        status, _, _ = await submit(session, "/admin/peers/approve", {"peer": a.url},
                                    "/admin/peers")
        assert status == 303
        await settle(a, b)
        peered = await page(session, "/admin/peers")
        assert '<span class="tag tag-status">Peered</span>' in peered
        assert "Awaiting your approval" not in peered
    async with browser(a, "root") as session:
        mine = await page(session, "/admin/peers")
        assert '<span class="tag tag-status">Peered</span>' in mine
        assert "0 waiting," in mine
        assert "failed" in mine
