"""Deliveries left to a rate-limited peer's own catch-up (issue 17, the 30-minute soak).

A meshnode peer that pulls our outbox and answers 429 with a Retry-After longer than its
catch-up period gets our public listings by that catch-up: the hub marks those deliveries
``left`` instead of keeping them for the hour and resending them into the same quota.
Real nodes on 127.0.0.1 (one shared clock moved by hand); the peer's 429 is its real inbox
quota (``inbox_peer_rows_per_hour``), the Mastodon-like server is the fake of
test_mastodon_readers.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from meshnode.config import InboxLimits
from meshnode.federation import messaging, peering
from meshnode.federation.delivery import CATCH_UP_HORIZON
from meshnode.federation.sync import SYNC_INTERVAL
from meshnode.protocol.inbox_policy import QUOTA_WINDOW_SECONDS
from meshnode.protocol.timefmt import format_utc
from meshnode.services import direct_messages as direct
from meshnode.services.publishing import queue_activity
from meshnode.store import outbox as oq
from tests.federation.browser import browser, page, person
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_mastodon_readers import (  # noqa: F401 (the fixture)
    FakeMastodon,
    follow_group,
    mastodon,
)

LISTINGS = 8


async def deliveries_to(node: Node, host: str) -> Counter[tuple[str, str]]:
    """(activity type, delivery state) counts of ``node``'s deliveries to ``host``."""
    async with node.ctx.store.reader.execute(
            "SELECT o.type, d.state FROM deliveries d JOIN outbox_activities o"
            " ON o.seq = d.outbox_seq WHERE d.host = ?", (host,)) as cursor:
        return Counter((row[0], row[1]) for row in await cursor.fetchall())


async def limited_pair(make_node: NodeFactory, rows: int = 4) -> tuple[Node, Node]:
    """A hub and a peer whose inbox takes ``rows`` rows an hour from one origin, peered."""
    hub = await make_node("hub")
    small = await make_node("small", inbox=InboxLimits(peer_rows_per_hour=rows))
    await peer(hub, small)
    # Only the hub's Follow met small's door as a stranger's (small followed the hub back
    # when it processed it); from the Accept on, the hub is a peer and the peer quota
    # applies, the Follow counted among its rows of the hour (test_peer_or_stranger.py)
    assert (await small.fed.senders.get(hub.url)).is_peer
    return hub, small


async def publish_many(hub: Node, count: int, *others: Node) -> list[str]:
    """``count`` listings published on ``hub`` and delivered one after another (the peer's
    quota is checked before a concurrent request is counted: one at a time, it bites)."""
    alice = await hub.member("alice")
    objects = []
    for n in range(count):
        objects.append((await hub.publish(alice, title=f"Trajet {n}")).row.object_id)
        await settle(hub, *others)
    return objects


async def test_delivery__a_peer_asking_to_wait_an_hour_gets_public_listings_by_catch_up(
    make_node: NodeFactory,
) -> None:
    # Given a peer whose hourly inbox quota for the hub runs out after a few activities
    hub, small = await limited_pair(make_node)
    # When the hub publishes more listings than that and delivers them
    objects = await publish_many(hub, LISTINGS, small)
    await settle(hub, small)
    # Then the peer refused some with 429, and the hub keeps none of them queued: those are
    # left to the peer's catch-up (no delivery pending for an hour, none given up)
    # (once: its first 429 paused it, and the later listings were never POSTed: pause22)
    assert await hub.count("SELECT count(*) FROM deliveries WHERE last_status = 429") == 1
    states = await deliveries_to(hub, small.url)
    assert states[("Create", "pending")] == 0
    assert states[("Create", "failed")] == 0
    assert 0 < states[("Create", "left")] < LISTINGS
    assert states[("Create", "done")] + states[("Create", "left")] == LISTINGS
    # And the admin's delivery summary counts them apart from delivered ones
    summary = {row["host"]: row for row in await oq.delivery_summary(hub.ctx.store.reader)}
    assert summary[small.url]["left_to_catch_up"] == states[("Create", "left")]
    assert summary[small.url]["pending"] == 0
    assert not summary[small.url]["failing"]
    await person(hub, "root", admin=True)
    async with browser(hub, "root") as session:
        shown = await page(session, "/admin/peers")
    assert "0 waiting, " in shown
    assert f"{states[('Create', 'left')]} left to its catch-up of our outbox" in shown
    # When the peer's periodic catch-up pulls the hub's outbox
    small.clock.advance(seconds=SYNC_INTERVAL.total_seconds() + 1)
    await small.workers.sync.step()
    # Then it holds every listing, before the hour the 429 asked for has passed
    assert all([await small.remote(obj) is not None for obj in objects])


async def test_delivery__a_direct_message_to_a_rate_limited_peer_stays_queued_and_arrives(
    make_node: NodeFactory,
) -> None:
    # Given a peer whose quota for the hub ran out on listings (those left to catch-up)
    hub, small = await limited_pair(make_node)
    await publish_many(hub, LISTINGS, small)
    await settle(hub, small)
    bob = await small.member("bob")
    author = await hub.member("carol")
    # When carol on the hub writes to bob on the peer, which answered 429 (an hour)
    to = await messaging.member_by_actor(hub.fed, f"{small.url}/users/bob")
    await direct.send_remote(hub.ctx, author, to=to, body="Une place ?")
    await settle(hub, small)
    # Then the message stays queued past the peer's pause (not even sent once: the peer is
    # paused, pause22), never left to a catch-up
    states = await deliveries_to(hub, small.url)
    assert states[("Create", "left")] > 0  # the listings
    async with hub.ctx.store.reader.execute(
            "SELECT d.state, d.last_status, d.next_attempt_at FROM deliveries d"
            " JOIN outbox_activities o ON o.seq = d.outbox_seq WHERE o.public = 0"
            " AND o.type = 'Create' AND d.host = ?", (small.url,)) as cursor:
        rows = [tuple(row) for row in await cursor.fetchall()]
    assert [(state, status) for state, status, _ in rows] == [("pending", None)]
    assert rows[0][2] > format_utc(hub.clock() + CATCH_UP_HORIZON)
    # When the hour has passed and the hub retries
    hub.clock.advance(seconds=QUOTA_WINDOW_SECONDS + 1)
    await settle(hub, small)
    # Then bob has the message
    found = await direct.conversations(small.ctx, bob)
    assert [c.unread for c in found] == [1]


async def test_delivery__a_short_retry_after_keeps_the_listings_queued(
    make_node: NodeFactory,
) -> None:
    # Given a peer whose quota for the hub ran out (the first listings left to catch-up)
    hub, small = await limited_pair(make_node)
    await publish_many(hub, LISTINGS, small)
    await settle(hub, small)
    assert (await deliveries_to(hub, small.url))[("Create", "left")] > 0
    # When, two minutes before its quota frees a row, the hub delivers a new listing
    hub.clock.advance(seconds=QUOTA_WINDOW_SECONDS - 120)
    alice = await hub.member("dave")
    late = (await hub.publish(alice, title="Trajet tardif")).row.object_id
    await settle(hub, small)
    # Then the peer's pause, two minutes from its end (under its catch-up horizon), keeps it
    # pending, not sent (pause22: it was POSTed and answered 429 before)
    async with hub.ctx.store.reader.execute(
            "SELECT d.state, d.last_status FROM deliveries d JOIN outbox_activities o"
            " ON o.seq = d.outbox_seq WHERE o.object_id = ? AND d.host = ?",
            (late, small.url)) as cursor:
        assert [tuple(row) for row in await cursor.fetchall()] == [("pending", None)]
    # And it is delivered once the Retry-After has passed
    hub.clock.advance(seconds=121)
    await settle(hub, small)
    assert await small.remote(late) is not None


async def test_delivery__a_mastodon_like_server_asking_to_wait_keeps_its_deliveries(
    make_node: NodeFactory, mastodon: FakeMastodon,  # noqa: F811 (the imported fixture)
) -> None:
    # Given a hub followed by a rate-limited meshnode peer and by a server that reads
    # Proposals but is no meshnode (it does not pull our outbox), which answers 429 for an
    # hour
    hub, small = await limited_pair(make_node)
    mastodon.nodeinfo = b'{"software":{"name":"meshnode","version":"9"}}'
    await follow_group(mastodon, hub)
    mastodon.retry_after = "3600"
    # When the hub publishes and delivers
    await publish_many(hub, LISTINGS, small)
    await settle(hub, small)
    # Then the peer's listings are left to its catch-up, the other server's all kept, and
    # sent to it once only: its first 429 paused it (pause22; each was POSTed before)
    assert (await deliveries_to(hub, small.url))[("Create", "left")] > 0
    kept = await deliveries_to(hub, mastodon.url)
    assert (kept[("Create", "pending")], kept[("Create", "left")]) == (LISTINGS, 0)
    assert len(mastodon.of_type("Create")) == 1


async def test_leave_to_catch_up__only_public_listings_to_an_unblocked_meshnode_follower(
    make_node: NodeFactory,
) -> None:
    # Given a hub peered with a meshnode node, and deliveries to it put off by two hours:
    # a public listing Create, a relayed Announce, a private Create (a direct message),
    # a Follow, an Accept, and one public Create put off by ten minutes only
    hub = await make_node("hub")
    other = await make_node("other")
    await peer(hub, other)
    now = hub.clock()
    stamp, later, soon = (format_utc(now), format_utc(now + timedelta(hours=2)),
                          format_utc(now + timedelta(minutes=10)))
    inbox = f"{other.url}/inbox"
    kinds = [("Create", True, later), ("Announce", True, later), ("Create", False, later),
             ("Follow", False, later), ("Accept", False, later), ("Update", True, soon)]
    async with hub.ctx.store.transaction() as tx:
        for n, (kind, public, _due) in enumerate(kinds):
            await queue_activity(tx, {"id": f"{hub.group}/activities/t{n}", "type": kind,
                                      "actor": hub.group, "object": f"{hub.url}/o/{n}"},
                                 public=public, inboxes=[inbox], now=stamp)
        for n, (_kind, _public, due) in enumerate(kinds):  # each put off as given
            await tx.execute("UPDATE deliveries SET next_attempt_at = ? WHERE outbox_seq ="
                             " (SELECT seq FROM outbox_activities WHERE activity_id = ?)",
                             (due, f"{hub.group}/activities/t{n}"))
    beyond = format_utc(now + CATCH_UP_HORIZON)

    async def leave() -> int:
        async with hub.ctx.store.transaction() as tx:
            return await oq.leave_to_catch_up(tx, other.url, hub.group, beyond=beyond,
                                              now=stamp)

    # When the peer is blocked, nothing is left to it
    async with hub.ctx.store.transaction() as tx:
        await tx.execute("UPDATE peers SET blocked = 1 WHERE origin = ?", (other.url,))
    assert await leave() == 0
    async with hub.ctx.store.transaction() as tx:
        await tx.execute("UPDATE peers SET blocked = 0 WHERE origin = ?", (other.url,))
    # Then, unblocked, only the public Create and Announce put off past the horizon are left
    assert await leave() == 2
    states = await deliveries_to(hub, other.url)
    assert states[("Create", "left")] == 1
    assert states[("Announce", "left")] == 1
    assert states[("Create", "pending")] == 1
    assert states[("Follow", "pending")] == 1
    assert states[("Accept", "pending")] == 1
    assert states[("Update", "pending")] == 1
    # And a second step finds nothing more (a row is pending or left, never both)
    assert await leave() == 0
    # And a node that is not peered with us (its Group does not follow ours) gets none left
    async with hub.ctx.store.transaction() as tx:
        await tx.execute("UPDATE deliveries SET state = 'pending' WHERE state = 'left'")
    await peering.remove_peer(hub.ctx, other.url)
    assert await leave() == 0
