"""services/network_map: what a peer's following collection may add to the map, and the cap."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from meshnode.protocol.timefmt import format_utc
from meshnode.services import network_map as nm
from meshnode.services.context import NodeContext
from meshnode.store import federation as fq

PEER = "http://10.0.0.2:8080"


async def _peer(ctx: NodeContext, origin: str) -> None:
    now = format_utc(ctx.clock())
    async with ctx.store.transaction() as tx:
        await fq.insert_peer(tx, origin=origin, requested=origin, out_state="peered", now=now)
        await fq.update_peer(tx, origin, now, actor_id=f"{origin}/groups/p")


async def test_peer_links__hostile_following_items_are_dropped(ctx: NodeContext) -> None:
    # Given a peer whose following collection holds junk next to two real communities
    await _peer(ctx, PEER)
    items: list[object] = [
        "http://10.0.0.3:8080/groups/a", "http://10.0.0.3:8080/groups/other-actor-same-node",
        "https://c.example/groups/c", 42, None, {"id": "http://x"}, "javascript:alert(1)",
        "file:///etc/passwd", f"{PEER}/groups/itself", f"{ctx.config.base_url}/groups/us",
        "http://" + "a" * 3000, "not a url",
    ]
    # When the catch-up records it
    kept = await nm.record_peer_links(ctx, PEER, items)
    # Then only the two other origins are kept, once each
    assert kept == 2
    data = await nm.network_map(ctx, public=True)
    assert data.remote_links == ((PEER, "http://10.0.0.3:8080"), (PEER, "https://c.example"))
    assert {c.origin: c.kind for c in data.others} == {
        PEER: "peer", "http://10.0.0.3:8080": "heard", "https://c.example": "heard"}


async def test_peer_links__a_later_read_replaces_the_earlier_one(ctx: NodeContext) -> None:
    await _peer(ctx, PEER)
    await nm.record_peer_links(ctx, PEER, ["http://10.0.0.3:8080/groups/a"])
    await nm.record_peer_links(ctx, PEER, ["http://10.0.0.4:8080/groups/b"])
    data = await nm.network_map(ctx, public=False)
    assert data.remote_links == ((PEER, "http://10.0.0.4:8080"),)


async def test_network_map__draws_at_most_200_and_counts_the_rest(
    ctx: NodeContext, client: TestClient,
) -> None:
    # Given a peer that follows 499 communities (the read is capped at 500 items)
    await _peer(ctx, PEER)
    items: list[object] = [f"http://10.1.{i // 200}.{i % 200 + 1}:8080/g" for i in range(600)]
    assert await nm.record_peer_links(ctx, PEER, items) == nm.MAX_PEER_LINKS
    data = await nm.network_map(ctx, public=True)
    # Then 199 others are drawn next to us, and the table says how many more
    assert len(data.others) == nm.MAX_DRAWN - 1
    assert data.others[0].origin == PEER  # peers first
    assert data.more == nm.MAX_PEER_LINKS + 1 - (nm.MAX_DRAWN - 1)
    # And the public page draws 200 circles and says "and 302 more communities"
    page = await (await client.get("/network", headers={"Accept-Language": "en"})).text()
    assert page.count("<circle ") == nm.MAX_DRAWN
    assert f"and {data.more} more communities, not drawn" in page
