"""Whom a node counts as a peer at its inbox door, in each way two nodes come to peer.

A *peer* is an origin whose Group we follow or ask to follow (``peers.out_state``
resolving / following / peered, not blocked: docs/federation.md, "Who may post what"); a
node that only follows us, even accepted, is a stranger. Real nodes on 127.0.0.1: alpha
posts signed activities to beta's inbox, and beta's door answers as its facts say.
"""

from __future__ import annotations

import json

import pytest

from meshnode.config import InboxLimits
from meshnode.errors import ConflictError
from meshnode.federation import blocking, blocklists, peering
from meshnode.services import members
from meshnode.store import federation as fq
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, settle
from tests.federation.test_inbox_hostile import create_activity, post, sign
from tests.federation.test_mastodon_readers import (  # noqa: F401 (the fixture)
    FakeMastodon,
    follow_group,
    mastodon,
)


async def status_of(node: Node, other: Node) -> tuple[str, str | None]:
    """``node``'s side of its peering with ``other`` and whether ``other`` follows it."""
    found = {p.peer: p for p in await peering.list_peers(node.ctx)}
    return found[other.url].ours, found[other.url].theirs


async def create_from(alpha: Node, alice: MemberRow, beta: Node) -> int:
    """alpha posts a Create of one of its own listings to beta's inbox: 202 from a peer,
    403 from a stranger (strangers may not post public content)."""
    url = f"{beta.url}/inbox"
    body = json.dumps(await create_activity(alpha, alice)).encode()
    return await post(url, body, sign(alpha, alice, url, body))


async def test_inbox__our_side_of_the_peering_alone_makes_a_peer_and_applies_at_once(
    make_node: NodeFactory,
) -> None:
    # Given alpha and beta peered both ways (beta approves requests: alpha asked, beta's
    # admin approved), so alpha is an accepted follower of beta's Group
    alpha = await make_node("alpha")
    beta = await make_node("beta", peering_policy="approve")
    await peering.add_peer(alpha.ctx, beta.url)
    await settle(alpha, beta)
    await peering.approve_peer(beta.ctx, alpha.url)
    await settle(alpha, beta)
    assert await status_of(beta, alpha) == ("peered", "accepted")
    alice = await alpha.member("alice")
    # When beta's side of the peering takes each state in turn (its own writes: the door's
    # cached facts must follow each one at once), alpha still following beta
    answers = {}
    for state in ("none", "following", "rejected", "resolving", "failed", "peered"):
        async with beta.ctx.store.transaction() as tx:
            await tx.execute("UPDATE peers SET out_state = ? WHERE origin = ?",
                             (state, alpha.url))
        answers[state] = await create_from(alpha, alice, beta)
    # Then alpha is a peer exactly while beta follows it or asks to: an accepted follower
    # we do not follow is a stranger
    assert answers == {"none": 403, "following": 202, "rejected": 403, "resolving": 202,
                       "failed": 403, "peered": 202}
    assert (await status_of(beta, alpha))[1] == "accepted"
    # And a block makes it a stranger at once, whatever our side's state
    async with beta.ctx.store.transaction() as tx:
        await fq.update_peer(tx, alpha.url, "2026-11-26T10:00:00Z", blocked=1)
    assert await create_from(alpha, alice, beta) == 403


async def test_inbox__a_follow_alone_never_makes_a_stranger_a_peer_under_approve(
    make_node: NodeFactory,
) -> None:
    # Given beta approves peering requests and takes 3 activities an hour from a stranger
    alpha = await make_node("alpha")
    beta = await make_node("beta", peering_policy="approve",
                           inbox=InboxLimits(stranger_rows_per_hour=3))
    # When alpha's Group follows beta's (alpha's admin asked) and beta processes the Follow
    await peering.add_peer(alpha.ctx, beta.url)
    await settle(alpha, beta)
    # Then alpha's request waits for beta's admin, and alpha stays a stranger at beta's
    # door: its public content is refused, and the stranger quota counts its Follow
    assert await status_of(beta, alpha) == ("none", "pending")
    assert not (await beta.fed.senders.get(alpha.url)).is_peer
    alice = await alpha.member("alice")
    assert await create_from(alpha, alice, beta) == 403
    # (while beta is a peer at alpha's door: alpha asked to follow it)
    assert (await alpha.fed.senders.get(beta.url)).is_peer


async def test_peering__under_auto_a_group_that_follows_ours_is_followed_back_and_a_peer(
    make_node: NodeFactory,
) -> None:
    # Given beta in the default policy "auto"
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    # When alpha's Group follows beta's (nobody on beta asked for it)
    await peering.add_peer(alpha.ctx, beta.url)
    await beta.workers.peering.step()
    await alpha.workers.peering.step()
    await alpha.workers.delivery.step()
    # Then alpha's Follow reached beta's door as a stranger's
    assert not (await beta.fed.senders.get(alpha.url)).is_peer
    # And once beta processed it, beta follows alpha back: alpha is a peer from then on
    # (this is what "auto" means: trust on first Follow, docs/federation.md "Peering")
    await beta.workers.inbox.step()
    assert await status_of(beta, alpha) == ("following", "accepted")
    alice = await alpha.member("alice")
    assert await create_from(alpha, alice, beta) == 202


async def test_peering__approving_a_persons_follow_leaves_its_server_a_stranger(
    make_node: NodeFactory, mastodon: FakeMastodon,  # noqa: F811 (the imported fixture)
) -> None:
    # Given a node that approves requests, and a Mastodon user following its Group
    hub = await make_node("hub", peering_policy="approve")
    await follow_group(mastodon, hub)
    # When the admin approves that request
    await peering.approve_peer(hub.ctx, mastodon.url)
    await settle(hub)
    # Then the user gets our Accept and follows us, but our Group does not follow it back
    # (as under "auto"): its server stays a stranger (before, its whole origin became a
    # peer: the peer quota for every user there, and public content accepted from them)
    assert [r.json["type"] for r in mastodon.received] == ["Accept"]
    async with hub.ctx.store.reader.execute(
            "SELECT state FROM followers WHERE remote_actor = ?", (mastodon.actor,)) as cursor:
        assert [row[0] for row in await cursor.fetchall()] == ["accepted"]
    assert not (await hub.fed.senders.get(mastodon.url)).is_peer
    # And, as under "auto", the server is not listed among the peers (nothing to approve)
    assert await peering.list_peers(hub.ctx) == []


@pytest.mark.parametrize("target", ["url", "handle"])
async def test_peering__an_admin_adding_a_node_whose_follow_awaits_approval_peers_both_ways(
    make_node: NodeFactory, target: str,
) -> None:
    # Given two nodes that approve peering requests, alpha's request waiting on beta
    alpha = await make_node("alpha", peering_policy="approve")
    beta = await make_node("beta", peering_policy="approve")
    await peering.add_peer(alpha.ctx, beta.url)
    await settle(alpha, beta)
    assert await status_of(beta, alpha) == ("none", "pending")
    # When beta's admin adds alpha (by URL or handle) instead of approving its request
    await peering.add_peer(beta.ctx, alpha.url if target == "url"
                           else f"alpha@{alpha.url.removeprefix('http://')}")
    await settle(alpha, beta)
    # Then asking answered alpha's request: both follow each other, both peered (before,
    # beta was peered and alpha stayed "following" for good, its request pending)
    assert await status_of(beta, alpha) == ("peered", "accepted")
    assert await status_of(alpha, beta) == ("peered", "accepted")
    # And beta's listings reach alpha
    bob = await beta.member("bob")
    view = await beta.publish(bob, title="Trajet depuis beta")
    await settle(alpha, beta)
    assert await alpha.remote(view.row.object_id) is not None


async def test_block__by_handle_before_the_node_is_known_blocks_its_host_at_the_door(
    make_node: NodeFactory,
) -> None:
    # Given beta's admin blocks alpha by a member's handle, before beta knows alpha's node
    # (peering auto: beta would follow back any community that follows it)
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    admin = await members.add_member(beta.ctx, username="root", password=None, is_admin=True)
    host = alpha.url.removeprefix("http://")
    await blocking.block_node(beta.ctx, admin, f"alice@{host}", confirm=True)
    alice = await alpha.member("alice")
    # When alpha asks to peer with beta, and posts one of its listings to beta's inbox
    await peering.add_peer(alpha.ctx, beta.url)
    await settle(alpha, beta)
    answer = await create_from(alpha, alice, beta)
    # Then beta's door refuses alpha's node under either scheme, beta never follows it
    # back, and stores none of its listings
    assert answer == 403
    assert await fq.blocked_origins(beta.ctx.store.reader) >= {
        f"http://{host}", f"https://{host}"}
    peers = {p.peer: p.status for p in await peering.list_peers(beta.ctx)}
    assert peers == {f"acct:alice@{host}": "blocked"}
    assert await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") == 0
    # And beta's admin cannot ask to peer with that node by its URL while the block stands
    with pytest.raises(ConflictError):
        await peering.add_peer(beta.ctx, alpha.url)
    # And beta's published block list names the node's origins (subscribers read origins)
    items = (await blocklists.published(beta.ctx))["orderedItems"]
    assert items == sorted({f"http://{host}", f"https://{host}"})
