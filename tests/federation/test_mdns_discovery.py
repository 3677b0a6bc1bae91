"""Neighbours find and verify each other over real multicast on 127.0.0.1 (issue 6).

No URL is configured by hand anywhere: each node only knows its own port.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from meshnode.federation import peering
from meshnode.federation.discovery import DISCOVERY
from meshnode.services import listings as listing_service
from meshnode.services import members
from meshnode.store import listings as listing_store
from tests.conftest import ride_listing
from tests.federation.mdns_nodes import Node, ensure_loopback_multicast, start_node, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _multicast() -> None:
    ensure_loopback_multicast()


async def _status(node: Node, other: Node) -> str | None:
    row = await node.neighbour_for(other)
    return row.status if row is not None else None


async def test_discovery__two_nodes_find_and_verify_each_other(tmp_path: Path) -> None:
    # Given two nodes on 127.0.0.1 in policy "auto", each with its own AsyncZeroconf
    alpha = await start_node(tmp_path, "alpha")
    beta = await start_node(tmp_path, "beta")
    try:
        # When they advertise and browse, Then each verifies the other and asks to peer
        for node, other in ((alpha, beta), (beta, alpha)):
            await wait_until(lambda n=node, o=other: _is(n, o, "peering_requested"))
        row = await alpha.neighbour_for(beta)
        assert row is not None
        assert row.actor_url == beta.actor
        assert row.community_name == "Les Voisins beta"
        assert row.addresses == ("127.0.0.1",)
        assert row.port == beta.port
        assert row.verified_at is not None
        # And a node never lists itself
        assert await alpha.neighbour_for(alpha) is None
        assert alpha.runtime.discovery.registered_name is not None
    finally:
        await alpha.stop()
        await beta.stop()


async def _is(node: Node, other: Node, status: str) -> bool:
    return await _status(node, other) == status


async def test_discovery__approve_policy_waits_for_admin(tmp_path: Path) -> None:
    # Given two nodes whose policy is "approve" (with beta in "auto", beta would peer on its
    # own and alpha's federation policy would accept it: that is not what is tested here)
    alpha = await start_node(tmp_path, "alpha", policy="approve")
    beta = await start_node(tmp_path, "beta", policy="approve")
    try:
        # When it discovers a neighbour, Then it verifies it but does not ask to peer
        await wait_until(lambda: _is(alpha, beta, "verified"))
        headers = {"Authorization": f"Bearer {alpha.admin_token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{alpha.url}/api/v1/neighbours", headers=headers) as resp:
                assert resp.status == 200
                body = await resp.json()
            assert body["policy"] == "approve"
            listed = [n for n in body["neighbours"] if n["actor"] == beta.actor]
            assert listed[0]["status"] == "verified"
            assert listed[0]["address"] == "127.0.0.1"
            assert listed[0]["fingerprint"].count("-") == 3
            # When the admin approves, Then peering is requested
            url = f"{alpha.url}/api/v1/neighbours/{listed[0]['id']}/approve"
            async with http.post(url, headers=headers) as resp:
                assert resp.status == 200
                assert (await resp.json())["status"] == "peering_requested"
    finally:
        await alpha.stop()
        await beta.stop()


async def test_discovery__goodbye_marks_offline_and_restart_rediscovers(tmp_path: Path) -> None:
    # Given two nodes that verified each other
    alpha = await start_node(tmp_path, "alpha")
    beta = await start_node(tmp_path, "beta")
    try:
        await wait_until(lambda: _is(alpha, beta, "peering_requested"))
        beta_port = beta.port
        # When beta shuts down (unregister with goodbye, then close)
        await beta.stop()
        # Then alpha shows it offline
        await wait_until(lambda: _is(alpha, beta, "offline"), timeout=5)
        # When beta starts again (same data dir, same key), Then it is found and verified again
        beta = await start_node(tmp_path, "beta", port=beta_port)
        await wait_until(lambda: _is(alpha, beta, "peering_requested"))
        key = beta.ctx.identity.ed25519_public
        rows = [r for r in await alpha.neighbours() if r.public_key == key]
        assert len(rows) == 1  # the same row came back, not a duplicate
    finally:
        await alpha.stop()
        await beta.stop()


async def test_discovery__policy_off_neither_advertises_nor_browses(tmp_path: Path) -> None:
    # Given a node with discovery off between two with discovery on
    quiet = await start_node(tmp_path, "quiet", policy="off")
    alpha = await start_node(tmp_path, "alpha")
    beta = await start_node(tmp_path, "beta")
    try:
        # When the two others have found each other
        await wait_until(lambda: _is(alpha, beta, "peering_requested"))
        # Then nobody found the quiet node, and it recorded nobody
        assert await alpha.neighbour_for(quiet) is None
        assert await beta.neighbour_for(quiet) is None
        assert await quiet.neighbours() == []
        assert quiet.app.get(DISCOVERY) is None
    finally:
        for node in (quiet, alpha, beta):
            await node.stop()


async def test_discovery__neighbours_peer_and_share_listings_without_any_url(
    tmp_path: Path,
) -> None:
    # Given two nodes that only know their own port, in policy "auto"
    alpha = await start_node(tmp_path, "alpha")
    beta = await start_node(tmp_path, "beta")
    try:
        # When they discover and verify each other, Then federation peers them
        async def peered() -> bool:
            for node, other in ((alpha, beta), (beta, alpha)):
                peers = {p.peer: p.status for p in await peering.list_peers(node.ctx)}
                if peers.get(other.url) != "peered":
                    return False
            return True

        await wait_until(peered, timeout=20)
        # And a listing published on alpha reaches beta, signed by its author
        author = await members.get_member(alpha.ctx, "admin")
        view = await listing_service.create_listing(alpha.ctx, author, ride_listing(
            title="Vélo cargo à prêter, trouvé par mDNS"))

        async def arrived() -> bool:
            row = await listing_store.get_listing_by_object_id(beta.ctx.store.reader,
                                                               view.row.object_id)
            return row is not None and not row.is_local

        await wait_until(arrived, timeout=20)
        # And beta's admin API shows alpha as peered
        async with aiohttp.ClientSession() as session, session.get(
            f"{beta.url}/api/v1/neighbours",
            headers={"Authorization": f"Bearer {beta.admin_token}"},
        ) as resp:
            shown = (await resp.json())["neighbours"]
        assert [n["status"] for n in shown if n["actor"] == alpha.actor] == ["peered"]
    finally:
        await alpha.stop()
        await beta.stop()


async def test_discovery__neighbours_whose_peering_policy_is_approve_peer_both_ways(
    tmp_path: Path,
) -> None:
    # Given two LAN neighbours that peer with verified neighbours on their own (discovery
    # "auto") but leave Internet requests to their admin (peering_policy "approve")
    alpha = await start_node(tmp_path, "alpha", peering_policy="approve")
    beta = await start_node(tmp_path, "beta", peering_policy="approve")
    try:
        # When they discover each other (the first one's Follow reaches the other before that
        # one has verified it, and waits there for approval)
        async def both_ways() -> bool:
            for node, other in ((alpha, beta), (beta, alpha)):
                found = {p.peer: p for p in await peering.list_peers(node.ctx)}
                if other.url not in found or (found[other.url].ours,
                                              found[other.url].theirs) != ("peered", "accepted"):
                    return False
            return True

        # Then each one's own request to peer answers the other's: both follow each other
        # (before, the first stayed "following" for good and never got the other's
        # listings: 5 runs of 6 failed, the other one's Follow having arrived late enough)
        await wait_until(both_ways, timeout=20)  # raises if they never do
        assert await both_ways()
    finally:
        await alpha.stop()
        await beta.stop()
