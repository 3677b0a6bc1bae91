"""Peers page between real nodes: approval under ``peering_policy = "approve"``, status."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from meshnode.federation import peering
from tests.conftest import START, FakeClock, make_config
from tests.federation.browser import browser, page, person, submit
from tests.federation.conftest import Node, NodeFactory, bind_socket, settle


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


async def test_peers_page__a_peer_refusing_our_clock_is_explained(
    make_node: NodeFactory, tmp_path: Path,
) -> None:
    # Given beta's clock is two hours ahead of alpha's
    a = await make_node("alpha")
    probe = bind_socket()
    port = probe.getsockname()[1]
    probe.close()
    config = make_config(tmp_path / "beta", handle="beta", public_url=f"http://127.0.0.1:{port}",
                         port=port)
    b = Node(config=config, clock=FakeClock(START + timedelta(hours=2)))
    await b.start()
    try:
        await person(a, "root", admin=True)
        await peering.add_peer(a.ctx, b.url)
        await settle(a, b)
        # Then alpha's admin reads that beta refused our requests for clock skew
        async with browser(a, "root") as session:
            text = await page(session, "/admin/peers")
    finally:
        await b.stop()
    assert "clock_skew" in text
    assert "most common federation failure" in text
