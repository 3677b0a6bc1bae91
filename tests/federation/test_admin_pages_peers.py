"""Peers page between real nodes: approval under ``peering_policy = "approve"``, status."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from meshnode.federation import peering
from meshnode.protocol.discovery import Advert
from meshnode.services import neighbours
from meshnode.services.neighbours import SeenAdvert
from tests.conftest import START, FakeClock, make_config
from tests.federation.browser import browser, page, person, submit
from tests.federation.conftest import Node, NodeFactory, bind_socket, peer, settle


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
        assert "<strong>Community alpha</strong>" in waiting
        assert f'<p class="small url">{a.url}</p>' in waiting
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
    sock = bind_socket()  # kept bound until beta serves on it (no race for the port)
    port = sock.getsockname()[1]
    config = make_config(tmp_path / "beta", handle="beta", public_url=f"http://127.0.0.1:{port}",
                         port=port)
    b = Node(config=config, clock=FakeClock(START + timedelta(hours=2)))
    await b.start(sock=sock)
    try:
        await person(a, "root", admin=True)
        await peering.add_peer(a.ctx, b.url)
        await settle(a, b)
        # Then alpha's admin reads that beta refused our requests for clock skew
        async with browser(a, "root") as session:
            text = await page(session, "/admin/peers")
    finally:
        await b.stop()
    assert "The node refused our requests because the two servers&#39; clocks differ." in text
    assert "clock_skew" not in text  # the raw refusal is in the log only
    assert "most common federation failure" in text


async def test_peers_page__a_dead_peer_is_not_answering_with_a_sentence_not_the_exception(
    make_node: NodeFactory, caplog: pytest.LogCaptureFixture,
) -> None:
    # Given alpha and beta peered, then beta's server goes away
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    await person(a, "root", admin=True)
    author = await a.member("camille")
    seen = SeenAdvert("Community beta (AAAA-BBBB)._meshnode._tcp.local.",
                      Advert(bytes(range(32)), "/groups/beta", "Community beta"),
                      ("127.0.0.1",), b.config.port)
    found = await neighbours.record_advert(a.ctx, seen, max_neighbours=10)
    assert found is not None
    await neighbours.record_verified(a.ctx, found.id, b.group)
    await b.stop()
    # When alpha publishes a listing, whose delivery to beta fails
    await a.publish(author)
    with caplog.at_level(logging.WARNING, logger="meshnode.federation.delivery"):
        await settle(a)
    async with browser(a, "root") as session:
        text = await page(session, "/admin/peers")
    # Then beta is named by its community name, its URL on a details line, and not answering
    assert "<strong>Community beta</strong>" in text
    assert f'<p class="small url">{b.url}</p>' in text
    assert "Not answering" in text
    assert "1 delivery failing since" in text
    assert "Next retry" in text
    # And the error is a sentence; the raw exception is only in the log
    assert "The node could not be reached: its server is off or its address changed." in text
    assert "ClientConnectorError" not in text
    assert "Connect call failed" not in text
    assert any("Connect call failed" in record.getMessage() for record in caplog.records)
    # And the Neighbours page says so too, next to its status
    async with browser(a, "root") as session:
        listed = await page(session, "/admin/neighbours")
    assert '<span class="tag tag-full">Not answering</span>' in listed
    assert "Last success: " in listed
