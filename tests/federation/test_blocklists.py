"""Shared block lists: beta blocks gamma and publishes it, signed; alpha, a peer of beta,
subscribes to beta's list and reviews the proposed block, or applies it automatically.

Three real nodes on 127.0.0.1: alpha peers with beta and with gamma (so alpha shows one of
gamma's listings); workers stepped by hand.
"""

from __future__ import annotations

from functools import partial

import pytest

from meshnode.federation import blocklists, peering
from meshnode.federation.keycheck import verify_actor_proof
from meshnode.protocol.blocklists import parse_blocklist
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.protocol.proofs import verify_proof
from meshnode.services import members
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_flags import api

Three = tuple[Node, Node, Node, dict[str, str], dict[str, str]]


async def _admin(node: Node, name: str) -> dict[str, str]:
    await members.add_member(node.ctx, username=name, password=None, is_admin=True)
    token = await members.create_token(node.ctx, name)
    return {"Authorization": f"Bearer {token.secret}"}


@pytest.fixture
async def three(make_node: NodeFactory) -> Three:
    alpha, beta, gamma = [await make_node(h) for h in ("alpha", "beta", "gamma")]
    await peer(alpha, beta, gamma)
    await peer(beta, alpha, gamma)
    await peer(alpha, gamma, beta)
    await peer(gamma, alpha, beta)
    view = await gamma.publish(await gamma.member("gus"))
    await settle(alpha, beta, gamma)
    assert await alpha.remote(view.row.object_id) is not None
    ann, bea = await _admin(alpha, "ann"), await _admin(beta, "bea")
    status, _ = await api(beta, "POST", "/api/v1/blocks", bea, {"peer": gamma.url,
                                                                 "confirm": True})
    assert status == 200
    return alpha, beta, gamma, ann, bea


async def _visible(node: Node) -> int:
    return await node.count("SELECT count(*) FROM listings WHERE is_local = 0 AND hidden = 0")


async def _blocked(node: Node) -> list[str]:
    async with node.ctx.store.reader.execute(
            "SELECT origin FROM peers WHERE blocked = 1") as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def test_blocklist__published_signed_by_the_node_with_its_blocked_origins(
    three: Three,
) -> None:
    _alpha, beta, gamma, _ann, _bea = three
    status, document = await api(beta, "GET", "/blocklist", {})
    assert status == 200
    assert document["orderedItems"] == [gamma.url]
    assert document["attributedTo"] == beta.group
    assert document["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    verify_proof(document, public_key=beta.ctx.identity.ed25519_public)


async def test_blocklist__subscription_proposes_each_block_for_review_then_applies_it(
    three: Three,
) -> None:
    alpha, beta, gamma, ann, _bea = three
    # When alpha's admin subscribes to beta's list, reviewing each block
    status, got = await api(alpha, "POST", "/api/v1/blocklists", ann,
                            {"peer": beta.url, "auto_apply": False})
    assert status == 201, got
    # Then gamma is proposed, and nothing is blocked yet
    _, lists = await api(alpha, "GET", "/api/v1/blocklists", ann)
    [proposal] = lists["proposals"]
    assert (proposal["target"], proposal["state"], proposal["source"]) == (
        gamma.url, "proposed", beta.url)
    assert lists["subscriptions"][0]["items"] == 1
    assert await _blocked(alpha) == []
    assert await _visible(alpha) == 1
    # When the admin applies it
    status, decided = await api(alpha, "POST", f"/api/v1/blocklists/proposals/{proposal['id']}",
                                ann, {"decision": "apply"})
    assert (status, decided["state"]) == (200, "applied")
    # Then gamma is blocked with the explicit block's effects (its listing hidden)
    assert await _blocked(alpha) == [gamma.url]
    assert await _visible(alpha) == 0
    # and a refresh proposes nothing new
    assert await blocklists.refresh(alpha.fed, beta.url) == []


async def test_blocklist__ignored_proposal_blocks_nothing(three: Three) -> None:
    alpha, beta, _gamma, ann, _bea = three
    await api(alpha, "POST", "/api/v1/blocklists", ann, {"peer": beta.url})
    _, lists = await api(alpha, "GET", "/api/v1/blocklists", ann)
    pid = lists["proposals"][0]["id"]
    status, decided = await api(alpha, "POST", f"/api/v1/blocklists/proposals/{pid}", ann,
                                {"decision": "ignore"})
    assert (status, decided["state"]) == (200, "ignored")
    assert await _blocked(alpha) == []
    status, _ = await api(alpha, "POST", f"/api/v1/blocklists/proposals/{pid}", ann,
                          {"decision": "apply"})
    assert status == 409


async def test_blocklist__auto_apply_blocks_at_once_and_on_refresh(three: Three) -> None:
    alpha, beta, gamma, ann, bea = three
    status, _ = await api(alpha, "POST", "/api/v1/blocklists", ann,
                          {"peer": beta.url, "auto_apply": True})
    assert status == 201
    assert await _blocked(alpha) == [gamma.url]
    assert await _visible(alpha) == 0
    # When beta later blocks another node, alpha's periodic refresh applies that one too
    other = "http://127.0.0.1:9"
    await api(beta, "POST", "/api/v1/blocks", bea, {"peer": other, "confirm": True})
    assert await blocklists.refresh_all(alpha.fed) == 1
    assert sorted(await _blocked(alpha)) == sorted([gamma.url, other])


async def test_blocklist__only_a_peers_list_can_be_followed(three: Three,
                                                           make_node: NodeFactory) -> None:
    alpha, _beta, _gamma, ann, _bea = three
    stranger = await make_node("delta")
    status, error = await api(alpha, "POST", "/api/v1/blocklists", ann,
                              {"peer": stranger.url})
    assert status == 409, error
    status, _ = await api(alpha, "POST", "/api/v1/blocklists", ann, {"peer": alpha.url})
    assert status == 422
    assert await alpha.count("SELECT count(*) FROM blocklist_subscriptions") == 0


async def test_blocklist__a_list_not_attributed_to_the_peers_actor_proposes_nothing(
    three: Three,
) -> None:
    alpha, beta, _gamma, ann, _bea = three
    # Given alpha's record of beta's actor is someone else
    await api(alpha, "POST", "/api/v1/blocklists", ann, {"peer": beta.url})
    async with alpha.ctx.store.transaction() as tx:
        await tx.execute("DELETE FROM blocklist_proposals")
        await tx.execute("UPDATE blocklist_subscriptions SET actor = ?",
                         (f"{beta.url}/users/nobody",))
    # When it is refreshed, nothing is proposed and the error is recorded
    assert await blocklists.refresh(alpha.fed, beta.url) == []
    _, lists = await api(alpha, "GET", "/api/v1/blocklists", ann)
    assert lists["proposals"] == []
    assert "attributed" in lists["subscriptions"][0]["last_error"]


async def test_blocklist__a_changed_list_fails_the_proof_check_the_fetch_makes(
    three: Three,
) -> None:
    alpha, beta, _gamma, _ann, _bea = three
    document = await blocklists.published(beta.ctx)
    await verify_actor_proof(alpha.fed.directory, document, beta.group)  # as fetched: fine
    tampered = {**document, "orderedItems": [*document["orderedItems"], "http://x.test"]}
    with pytest.raises(ProofError):
        await verify_actor_proof(alpha.fed.directory, tampered, beta.group)


def test_parse_blocklist__caps_and_shapes_are_enforced() -> None:
    base = {"id": "http://b.test/blocklist", "type": "OrderedCollection",
            "attributedTo": "http://b.test/groups/b"}
    read = partial(parse_blocklist, expected_id="http://b.test/blocklist",
                   expected_actor="http://b.test/groups/b", here="http://a.test")
    # ours and the publisher's own origin are never proposed
    assert read({**base, "orderedItems": ["http://a.test", "http://b.test", "http://c.test"]}
                ) == ("http://c.test",)
    for items in (["http://c.test/users/x"], [7], [f"http://n{i}.test" for i in range(1001)]):
        with pytest.raises(ValidationError):
            read({**base, "orderedItems": items})
    with pytest.raises(ValidationError):
        read({**base, "id": "http://elsewhere.test/blocklist", "orderedItems": []})


async def test_blocklist__a_node_we_only_asked_to_peer_with_is_refused_not_a_crash(
    three: Three, make_node: NodeFactory,
) -> None:
    # Given alpha asked to peer with delta, which has not answered (alpha: "following")
    alpha, _beta, _gamma, ann, _bea = three
    delta = await make_node("delta", peering_policy="approve")
    await peering.add_peer(alpha.ctx, delta.url)
    await settle(alpha, delta)
    # When alpha's admin subscribes to delta's block list
    status, error = await api(alpha, "POST", "/api/v1/blocklists", ann, {"peer": delta.url})
    # Then it is refused as not a peer's (409), not a server error (500: the peer row was
    # asked for a column it does not have)
    assert status == 409, error
    # When delta's admin approves, and alpha's Follow of delta is then turned down, delta's
    # Group still following alpha's
    await peering.approve_peer(delta.ctx, alpha.url)
    await settle(alpha, delta)
    async with alpha.ctx.store.transaction() as tx:
        await tx.execute("UPDATE peers SET out_state = 'rejected' WHERE origin = ?",
                         (delta.url,))
    # Then delta's list may be followed: a node whose Group follows ours shows as peered
    status, error = await api(alpha, "POST", "/api/v1/blocklists", ann, {"peer": delta.url})
    assert status == 201, error
