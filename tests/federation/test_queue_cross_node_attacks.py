"""Hostile or wrong waiting-list messages between real nodes: each is refused by name, with
nothing stored (forged proofs, another actor, replays, caps, refusals told back)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshnode.federation.ingest import run_effect
from meshnode.federation.queue import prepare_queue
from meshnode.protocol import queue_wire as wire
from meshnode.protocol.deals import DEAL_CONTEXT
from meshnode.protocol.errors import ProofError, ValidationError
from meshnode.services import listings, members
from meshnode.services import queue as queue_service
from meshnode.services.signing import sign_as_member
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.test_inbox_door import post
from tests.federation.test_inbox_hostile import _actor, sign
from tests.federation.test_queue_cross_node import _drill, lender_rows, lent_out, remote_copy


def _join(b: Node, member: MemberRow, listing: ListingRow, tag: str = "t1", *,
          leave: bool = False) -> dict[str, Any]:
    return wire.build_join(activity_id=f"{b.url}/queue/joins/{tag}",
                           actor=f"{b.url}/users/{member.username}", author=listing.author_uri,
                           listing_object=listing.object_id, when=b.clock(), leave=leave)


async def _apply(a: Node, document: dict[str, Any]) -> str:
    effect = await prepare_queue(a.fed, document)
    async with a.ctx.store.transaction() as tx:
        return await run_effect(tx, effect)


async def _setup(make_node: NodeFactory, **details: Any
                 ) -> tuple[Node, Node, MemberRow, MemberRow, ListingRow]:
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    alice, bob = await a.member("alice"), await b.member("bob")
    listing, _loan = await lent_out(a, alice, **details)
    await settle(a, b)
    return a, b, bob, await b.member("eve"), listing


async def test_queue_join__forged_proof_is_refused_nothing_stored(
    make_node: NodeFactory,
) -> None:
    a, b, bob, _eve, listing = await _setup(make_node)
    signed = sign_as_member(b.ctx, bob, _join(b, bob, listing), b.clock())
    signed["published"] = "2026-11-26T10:00:01Z"  # altered after signing
    with pytest.raises(ProofError):
        await _apply(a, signed)
    assert await lender_rows(a, listing) == []


async def test_queue_join__signed_by_another_actor_is_refused(
    make_node: NodeFactory,
) -> None:
    a, b, bob, eve, listing = await _setup(make_node)
    # eve signs a Join that says it is bob's
    with pytest.raises(ProofError):
        await _apply(a, sign_as_member(b.ctx, eve, _join(b, bob, listing), b.clock()))
    assert await lender_rows(a, listing) == []


async def test_queue_join__replayed_join_keeps_one_place(make_node: NodeFactory) -> None:
    a, b, bob, _eve, listing = await _setup(make_node)
    signed = sign_as_member(b.ctx, bob, _join(b, bob, listing), b.clock())
    assert await _apply(a, signed) == "joined"
    assert await _apply(a, signed) == "ignored: already in line"
    again = sign_as_member(b.ctx, bob, _join(b, bob, listing, "t2"), b.clock())
    assert await _apply(a, again) == "ignored: already in line"
    assert await lender_rows(a, listing) == [(f"{b.url}/users/bob", "waiting")]


async def test_queue_leave__from_another_actor_moves_nothing(make_node: NodeFactory) -> None:
    a, b, bob, eve, listing = await _setup(make_node)
    await _apply(a, sign_as_member(b.ctx, bob, _join(b, bob, listing), b.clock()))
    leave = sign_as_member(b.ctx, eve, _join(b, eve, listing, leave=True), b.clock())
    assert await _apply(a, leave) == "ignored: not in line"
    assert await lender_rows(a, listing) == [(f"{b.url}/users/bob", "waiting")]


async def test_queue_join__item_not_out_is_refused_with_the_reason_told_back(
    make_node: NodeFactory,
) -> None:
    # Given alice's drill is available (not lent out)
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    alice, bob = await a.member("alice"), await b.member("bob")
    view = await listings.create_listing(a.ctx, alice, _drill())
    await settle(a, b)
    here = await remote_copy(b, view.row)
    # When bob asks for a place from beta
    await queue_service.join(b.ctx, bob, here.id)
    await settle(a, b)
    # Then alpha stores nothing and beta shows the refusal with alpha's reason
    assert await lender_rows(a, view.row) == []
    mine = await queue_service.status(b.ctx, bob, here.id)
    assert mine.state == "refused"
    assert "not lent out now" in mine.reason


async def test_queue_join__not_a_loan_is_refused(make_node: NodeFactory) -> None:
    a, b, bob, _eve, _listing = await _setup(make_node)
    alice = await members.get_member(a.ctx, "alice")
    ride = await a.publish(alice)  # a ride, not a lent item
    outcome = await _apply(a, sign_as_member(b.ctx, bob, _join(b, bob, ride.row), b.clock()))
    assert outcome.startswith("rejected: only lent items")
    assert await lender_rows(a, ride.row) == []


async def test_queue_join__min_reputation_refuses_an_unknown_remote_member(
    make_node: NodeFactory,
) -> None:
    # Given the lender asks for one exchange once carol (who had one) has the drill
    a, b, bob, _eve, listing = await _setup(make_node)
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET details = json_set(details, '$.min_reputation',"
                         " 1) WHERE id = ?", (listing.id,))
    outcome = await _apply(a, sign_as_member(b.ctx, bob, _join(b, bob, listing), b.clock()))
    assert "at least 1 completed exchanges" in outcome
    assert await lender_rows(a, listing) == []


async def test_queue_join__one_community_holds_at_most_the_per_listing_cap(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire, "MAX_FROM_ORIGIN_PER_LISTING", 2)
    a, b, bob, eve, listing = await _setup(make_node)
    zoe = await b.member("zoe")
    for member in (bob, eve):
        await _apply(a, sign_as_member(b.ctx, member, _join(b, member, listing, member.username),
                                       b.clock()))
    outcome = await _apply(a, sign_as_member(b.ctx, zoe, _join(b, zoe, listing, "z"), b.clock()))
    assert outcome.startswith("rejected: this waiting list already holds 2 members")
    assert len(await lender_rows(a, listing)) == 2


async def test_queue_join__one_community_holds_at_most_the_overall_cap(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire, "MAX_FROM_ORIGIN", 1)
    a, b, bob, eve, listing = await _setup(make_node)
    await _apply(a, sign_as_member(b.ctx, bob, _join(b, bob, listing), b.clock()))
    outcome = await _apply(a, sign_as_member(b.ctx, eve, _join(b, eve, listing, "e"), b.clock()))
    assert outcome.startswith("rejected: members of your community already hold 1 places")


async def test_queue_place__an_update_not_from_the_lender_is_refused(
    make_node: NodeFactory,
) -> None:
    # Given bob@beta waits for alice's drill
    a, b, bob, _eve, listing = await _setup(make_node)
    here = await remote_copy(b, listing)
    await queue_service.join(b.ctx, bob, here.id)
    await settle(a, b)
    mine = await queue_service.queue_guest.place(b.ctx, bob, here)
    assert mine is not None
    join_id = mine.join_id
    # When carol, another member of alpha, tells bob it is his turn
    carol = await a.member("carol2")
    forged = wire.build_place_message(
        activity_id=f"{a.url}/queue/places/99/notified", actor=f"{a.url}/users/carol2",
        place=wire.QueuePlace(place_id=f"{a.url}/queue/places/99", join_id=join_id,
                         member=f"{b.url}/users/bob", listing_object=listing.object_id,
                         state="notified", position=1, confirm_by=b.clock()),
        when=b.clock())
    outcome = await _apply(b, sign_as_member(a.ctx, carol, forged, a.clock()))
    # Then beta changes nothing
    assert outcome.startswith("rejected: only the listing's author")
    assert (await queue_service.status(b.ctx, bob, here.id)).state == "waiting"


@pytest.mark.parametrize(("field", "value"), [
    ("position", 0), ("position", "1"), ("position", 51), ("queueState", "teleported"),
    ("joinActivity", None), ("confirmBy", "tomorrow"), ("reason", 7),
])
def test_queue_place__malformed_is_refused(field: str, value: object) -> None:
    place = wire.build_place(wire.QueuePlace(
        place_id="http://127.0.0.1:1/queue/places/1", join_id="http://127.0.0.1:2/j/1",
        member="http://127.0.0.1:2/users/bob", listing_object="http://127.0.0.1:1/l/1",
        state="waiting", position=1))
    place[field] = value
    with pytest.raises(ValidationError):
        wire.parse_place({"type": "Update", "object": place})


@pytest.mark.parametrize("document", [
    {"type": "Join", "id": "http://127.0.0.1:2/j/1", "actor": "http://127.0.0.1:2/users/b"},
    {"type": "Join", "id": "not a url", "actor": "http://127.0.0.1:2/users/b",
     "object": "http://127.0.0.1:1/l/1"},
    {"type": "Leave", "id": "http://127.0.0.1:2/j/1", "actor": 5,
     "object": "http://127.0.0.1:1/l/1"},
])
def test_queue_join__malformed_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        wire.parse_join(document)


async def _inbox_rows(node: Node) -> int:
    return await node.count("SELECT count(*) FROM inbox_activities")


@pytest.mark.parametrize("variant", ["foreign_listing", "no_object", "not_to_a_member"])
async def test_queue_join__unaddressed_or_malformed_at_the_door_is_403_nothing_stored(
    make_node: NodeFactory, variant: str,
) -> None:
    # Given beta (the lender's node) and a member of alpha, peers
    alpha, beta = await make_node("alpha"), await make_node("beta")
    await peer(alpha, beta)
    alice, lender = await alpha.member("alice"), await beta.member("lena")
    before = await _inbox_rows(beta)
    join: dict[str, Any] = {
        "@context": DEAL_CONTEXT, "id": f"{_actor(alpha, alice)}/joins/1", "type": "Join",
        "actor": _actor(alpha, alice), "to": [_actor(beta, lender)],
        "object": f"{beta.url}/listings/abc"}
    if variant == "foreign_listing":
        join["object"] = "http://127.0.0.1:9/listings/abc"
    elif variant == "no_object":
        del join["object"]
    else:
        join["to"] = [beta.group]
    body = json.dumps(join).encode()
    url = f"{beta.url}/inbox"
    status, payload, _ = await post(url, body, sign(alpha, alice, url, body))
    assert (status, payload["error"]) == (403, "forbidden")
    assert await _inbox_rows(beta) == before


async def test_queue_place__about_a_join_we_never_sent_is_403_at_the_door(
    make_node: NodeFactory,
) -> None:
    alpha, beta = await make_node("alpha"), await make_node("beta")
    await peer(alpha, beta)
    alice, bob = await alpha.member("alice"), await beta.member("bob")
    before = await _inbox_rows(beta)
    update = wire.build_place_message(
        activity_id=f"{alpha.url}/queue/places/1/notified", actor=_actor(alpha, alice),
        place=wire.QueuePlace(place_id=f"{alpha.url}/queue/places/1",
                         join_id="http://127.0.0.1:9/queue/joins/x",
                         member=_actor(beta, bob), listing_object=f"{alpha.url}/listings/1",
                         state="notified", position=1), when=alpha.clock())
    body = json.dumps(update).encode()
    url = f"{beta.url}/inbox"
    status, payload, _ = await post(url, body, sign(alpha, alice, url, body))
    assert (status, payload["error"]) == (403, "forbidden")
    assert await _inbox_rows(beta) == before
