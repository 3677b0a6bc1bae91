"""Starter trust lines (issue 19): offered to neighbours, opened only when both agree."""

from __future__ import annotations

from meshnode.config import StarterLineConfig
from meshnode.services import iou as svc
from meshnode.store import iou as iq
from tests.federation.browser import browser, page, person, submit
from tests.federation.conftest import Node, NodeFactory, peer, settle

STARTER = StarterLineConfig(enabled=True, limit_out="15", limit_in="10", rate="1")


async def _line_of(node: Node) -> list[iq.LineRow]:
    return await iq.list_lines(node.ctx.store.reader)


async def _notices(node: Node, type_: str) -> int:
    return await node.count("SELECT count(*) FROM notifications WHERE type = ?", type_)


async def test_starter_line__offered_to_a_peer_and_accepted_from_the_notification(
    make_node: NodeFactory,
) -> None:
    # Given alpha offers starter lines, and beta's admin
    a = await make_node("alpha", starter=STARTER)
    b = await make_node("beta")
    await person(b, "root", admin=True)
    # When the two communities peer
    await peer(a, b)
    await settle(a, b)
    # Then beta's admin is told of an offer, and nothing is active on either side yet
    assert await _notices(b, "trustline_proposed") == 1
    (offered,) = await _line_of(b)
    assert offered.state == "pending"
    assert (await _line_of(a))[0].state == "proposed"
    assert await a.count("SELECT count(*) FROM ledger_accounts WHERE name LIKE 'node:%'") == 0
    # When beta's admin follows the notification to the trust lines page and accepts
    async with browser(b, "root") as session:
        notice = await b.count("SELECT id FROM notifications WHERE type = 'trustline_proposed'")
        assert "proposes a trust line" in await page(session, "/notifications")
        status, location, _ = await submit(session, f"/notifications/{notice}/open", {},
                                           "/notifications")
        assert (status, location) == (303, "/admin/trustlines")
        lines_page = await page(session, location)
        assert f'formaction="/admin/trustlines/{offered.id}/accept"' in lines_page
        assert "15.00\u00a0G" in lines_page
        status, _, _ = await submit(session, f"/admin/trustlines/{offered.id}/accept", {},
                                    "/admin/trustlines")
        assert status == 303
    await settle(a, b)
    # Then the line is active on both nodes with the configured limits (mirrored on beta)
    (mine,) = await _line_of(a)
    (theirs,) = await _line_of(b)
    assert (mine.state, theirs.state) == ("active", "active")
    assert (mine.limit_out, mine.limit_in) == (1500, 1000)
    assert (theirs.limit_out, theirs.limit_in) == (1000, 1500)
    # And it is never offered again, however often the worker runs
    await settle(a, b)
    assert len(await _line_of(a)) == 1
    # And alpha's network map marks it as a starter line, with its limits
    await person(a, "root", admin=True)
    async with browser(a, "root") as session:
        network = await page(session, "/admin/network")
    assert "Active (starter line)" in network
    assert "15.00\u00a0G / 10.00\u00a0G" in network


async def test_starter_line__declined_offer_is_remembered_and_never_repeated(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha", starter=STARTER)
    b = await make_node("beta")
    await person(b, "root", admin=True)
    await peer(a, b)
    await settle(a, b)
    (offered,) = await _line_of(b)
    # When beta's admin declines
    await svc.reject_line(b.ctx, None, offered.id)
    await settle(a, b)
    # Then nothing opened, alpha knows it was declined, and no new offer follows
    assert (await _line_of(a))[0].state == "rejected"
    for _ in range(3):
        await a.workers.iou.step()
        await settle(a, b)
    assert len(await _line_of(a)) == 1
    assert len(await _line_of(b)) == 1
    assert await _notices(b, "trustline_proposed") == 1
    assert await a.count("SELECT count(*) FROM starter_offers") == 1
    assert await b.count("SELECT count(*) FROM ledger_accounts WHERE name LIKE 'node:%'") == 0


async def test_starter_line__option_off_offers_nothing(make_node: NodeFactory) -> None:
    # Given two peered communities with the default config (starter lines off)
    a, b = await make_node("alpha"), await make_node("beta")
    await person(b, "root", admin=True)
    await peer(a, b)
    await settle(a, b)
    # Then no line and no notification exist anywhere
    assert await _line_of(a) == []
    assert await _line_of(b) == []
    assert await _notices(b, "trustline_proposed") == 0


async def test_starter_line__not_offered_where_the_admin_already_has_a_line(
    make_node: NodeFactory,
) -> None:
    # Given alpha's admin proposed a line to beta by hand before peering
    a = await make_node("alpha", starter=STARTER)
    b = await make_node("beta")
    await svc.propose_line(a.ctx, None, peer=b.url, limit_out="100", limit_in="100", rate="1")
    await settle(a, b)
    await peer(a, b)
    await settle(a, b)
    # Then only the admin's line exists
    lines = await _line_of(a)
    assert [line.limit_out for line in lines] == [10000]
    assert await a.count("SELECT count(*) FROM starter_offers") == 0


async def _verified_neighbour(a: Node, b: Node) -> None:
    """``b`` recorded on ``a`` as an mDNS neighbour that proved its key. The advert and the
    challenge are covered by tests/federation/test_discovery.py; here the row the verifier
    writes is made through the same services, without multicast."""
    from meshnode.services import neighbours
    from meshnode.store import neighbours as nq

    async with a.ctx.store.transaction() as tx:
        row_id = await nq.insert_neighbour(
            tx, instance_name="beta._meshnode._tcp.local.", fingerprint="z6Mk",
            public_key=b.ctx.identity.ed25519_public, community_name="Community beta",
            actor_path=f"/groups/{b.config.handle}", protocol_version=1,
            addresses=("127.0.0.1",), port=b.config.port, status="discovered", blocked=False,
            now="2026-11-26T10:00:00Z")
    await neighbours.record_verified(a.ctx, row_id, b.group)


async def test_starter_line__offered_to_a_neighbour_verified_over_mdns_before_any_peering(
    make_node: NodeFactory,
) -> None:
    # Given alpha offers starter lines to mDNS neighbours only, and verified beta on the LAN
    a = await make_node("alpha", starter=StarterLineConfig(enabled=True, neighbours=("mdns",)))
    b = await make_node("beta")
    await person(b, "root", admin=True)
    await _verified_neighbour(a, b)
    # When alpha's IOU worker runs
    await settle(a, b)
    # Then beta's admin has the offer (limits 20 both ways by default)
    assert await _notices(b, "trustline_proposed") == 1
    (offered,) = await _line_of(b)
    assert (offered.state, offered.limit_out, offered.limit_in) == ("pending", 2000, 2000)


async def test_starter_line__peers_only_skips_a_neighbour_merely_verified(
    make_node: NodeFactory,
) -> None:
    a = await make_node("alpha",
                        starter=StarterLineConfig(enabled=True, neighbours=("peered",)))
    b = await make_node("beta")
    await _verified_neighbour(a, b)
    await settle(a, b)
    assert await _line_of(a) == []
    assert await _line_of(b) == []
