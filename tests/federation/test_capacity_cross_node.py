"""Capacity that counts down on every node: the author's node counts the deals and publishes
what is left as FEP-0837 ``availableQuantity`` in a signed ``Update``; the other node shows
the same figure. Two real nodes on 127.0.0.1, workers stepped by hand."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from meshnode.errors import ConflictError
from meshnode.protocol.deals import CapacityError
from meshnode.protocol.proofs import verify_proof
from meshnode.services import capacity, deals, listings, members
from meshnode.store import deals as q
from meshnode.store.federation import insert_inbox
from meshnode.store.listings import ListingRow
from tests.conftest import ride_listing
from tests.federation.browser import browser, page, submit
from tests.federation.browser import person as browser_person
from tests.federation.conftest import Node, NodeFactory, peer, settle

FR = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}


def free_ride(**details: Any) -> dict[str, Any]:
    base = ride_listing()["details"]
    assert isinstance(base, dict)
    return ride_listing(price={"mode": "free"}, details={**base, **details})


async def _two_nodes(make_node: NodeFactory, listing: dict[str, Any]
                     ) -> tuple[Node, Node, Any, Any, ListingRow, ListingRow]:
    a = await make_node("alpha")
    b = await make_node("beta")
    await peer(a, b)
    alice = await browser_person(a, "alice")
    bob = await browser_person(b, "bob")
    view = await listings.create_listing(a.ctx, alice, listing)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    return a, b, alice, bob, view.row, remote


async def _left(node: Node, listing_id: str) -> int:
    row = (await listings.get_listing(node.ctx, listing_id)).row
    found = await capacity.remaining_of(node.ctx, row)
    assert found is not None
    return found.left


async def _french_page(node: Node, username: str, listing_id: str) -> str:
    async with browser(node, username) as session, session.get(
            f"/listings/{listing_id}", headers=FR) as response:
        assert response.status == 200
        return await response.text()


async def _api(node: Node, username: str, path: str) -> Any:
    token = (await members.create_token(node.ctx, username)).secret
    async with aiohttp.ClientSession() as session, session.get(
            f"{node.url}{path}", headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        return await response.json()


async def test_ride__a_seat_booked_from_another_node_counts_down_on_both_nodes(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha offers a ride with 3 seats, seen by beta
    a, b, alice, bob, mine, remote = await _two_nodes(make_node, free_ride())
    assert (await _left(a, mine.id), await _left(b, remote.id)) == (3, 3)
    # When bob@beta books one seat and alice accepts it
    deal = await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    theirs = await q.deal_by(a.ctx.store.reader, "agreement_id", deal.agreement_id)
    assert theirs is not None
    assert await _left(a, mine.id) == 3  # a request alone takes no seat
    await deals.act(a.ctx, alice, theirs.id, "accept")
    await settle(a, b)
    # Then both nodes say 2 of 3, in the API and on the French pages
    assert (await _left(a, mine.id), await _left(b, remote.id)) == (2, 2)
    for node, listing_id, user in ((a, mine.id, "alice"), (b, remote.id, "bob")):
        body = await _api(node, user, f"/api/v1/listings/{listing_id}")
        assert body["remaining"] == 2
        assert body["capacity"] == {"remaining": 2, "total": 3, "unit": "seat", "full": False}
        found = await _api(node, user, "/api/v1/listings?category=ride")
        assert [item["remaining"] for item in found["items"]] == [2]
        assert "2 places restantes sur 3" in await _french_page(node, user, listing_id)
    # and what beta shows is the author's signed word: alice's key verifies the stored version
    stored = json.loads((await listings.get_listing(b.ctx, remote.id)).row.signed_object)
    assert stored["publishes"]["availableQuantity"] == {"hasUnit": "seat",
                                                       "hasNumericalValue": "2"}
    verify_proof(stored, public_key=bytes(alice.ed25519_public))


async def test_ride__a_booking_is_not_shown_as_an_edit_but_the_authors_edit_is(
    make_node: NodeFactory,
) -> None:
    # Given alice@alpha's ride with 3 seats, seen by beta
    a, b, alice, bob, mine, remote = await _two_nodes(make_node, free_ride(auto_accept=True))
    # When bob@beta books a seat (accepted at once): a new signed version, 2 seats left
    await deals.book(b.ctx, bob, remote.id, {"quantity": 1})
    await settle(a, b)
    assert (await _left(a, mine.id), await _left(b, remote.id)) == (2, 2)
    assert (await listings.get_listing(b.ctx, remote.id)).row.version > 1
    # Then neither node says the listing was modified
    for node, listing_id, user in ((a, mine.id, "alice"), (b, remote.id, "bob")):
        assert "Modifiée le" not in await _french_page(node, user, listing_id)
    # When alice edits her ride's text
    await listings.update_listing(a.ctx, alice, mine.id, {"description": "Départ 8 h"})
    await settle(a, b)
    # Then both nodes say it was modified
    for node, listing_id, user in ((a, mine.id, "alice"), (b, remote.id, "bob")):
        assert "Modifiée le" in await _french_page(node, user, listing_id)


async def test_ride__the_last_seat_shows_complet_on_both_nodes_and_the_form_is_gone(
    make_node: NodeFactory,
) -> None:
    a, b, _alice, bob, mine, remote = await _two_nodes(make_node, free_ride(auto_accept=True))
    carol = await browser_person(a, "carol")
    # When bob@beta takes 2 seats and carol@alpha the last one (accepted at once)
    await deals.book(b.ctx, bob, remote.id, {"quantity": 2})
    await settle(a, b)
    await deals.book(a.ctx, carol, mine.id, {"quantity": 1})
    await settle(a, b)
    # Then both nodes show "Complet" and no booking form
    assert (await _left(a, mine.id), await _left(b, remote.id)) == (0, 0)
    for node, listing_id, user in ((a, mine.id, "alice"), (b, remote.id, "bob")):
        html = await _french_page(node, user, listing_id)
        assert "Complet" in html
        assert f'action="/listings/{listing_id}/book"' not in html
    # and a booking sent anyway from beta's page is refused there, nothing stored or sent
    deals_before = await b.count("SELECT count(*) FROM deals")
    outbox_before = await b.count("SELECT count(*) FROM outbox_activities")
    async with browser(b, "bob") as session:
        status, _location, text = await submit(session, f"/listings/{remote.id}/book",
                                               {"quantity": "1"}, f"/listings/{remote.id}")
        assert status == 409
        home = await page(session, "/")
    assert "Full" in home  # the card says so too (English page)
    assert "this listing is full" in text  # a page saying why, not a 5xx
    assert await b.count("SELECT count(*) FROM deals") == deals_before
    assert await b.count("SELECT count(*) FROM outbox_activities") == outbox_before
    with pytest.raises(ConflictError):
        await deals.book(b.ctx, bob, remote.id, {"quantity": 1})


async def test_ride__concurrent_bookings_from_both_nodes_never_oversell(
    make_node: NodeFactory,
) -> None:
    # Given a 3-seat ride accepted automatically, and nine people on two nodes
    a, b, _alice, _bob, mine, remote = await _two_nodes(make_node, free_ride(auto_accept=True))
    here = [await a.member(f"a{i}") for i in range(4)]
    there = [await b.member(f"b{i}") for i in range(5)]
    # When all of them ask for a seat at the same moment (the clock does not move: every
    # published version carries the same "now")
    results = await asyncio.gather(
        *(deals.book(a.ctx, m, mine.id, {"quantity": 1}) for m in here),
        *(deals.book(b.ctx, m, remote.id, {"quantity": 1}) for m in there),
        return_exceptions=True)
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, CapacityError) for r in refused), refused
    await settle(a, b)
    # Then exactly 3 seats are taken on the author's node, and both nodes say "full"
    assert await q.taken(a.ctx.store.reader, mine.id, ("accepted",)) == 3
    assert (await _left(a, mine.id), await _left(b, remote.id)) == (0, 0)
    accepted_on_b = await b.count("SELECT count(*) FROM deals WHERE state = 'accepted'")
    accepted_on_a_for_b = await a.count(
        "SELECT count(*) FROM deals WHERE state = 'accepted' AND booker_id IS NULL")
    assert accepted_on_b == accepted_on_a_for_b
    # every published version was kept by beta: its versions are strictly later each time
    versions = await b.count("SELECT count(*) FROM listing_versions WHERE listing_id = ?",
                             remote.id)
    assert versions == (await listings.get_listing(a.ctx, mine.id)).row.version


async def test_group_buy__the_same_progress_on_both_nodes_and_done_once_committed(
    make_node: NodeFactory, clock: Any,
) -> None:
    group_buy = ride_listing(category="group-buy", title="Commande de pommes",
                             price={"mode": "free"},
                             details={"target_quantity": "5", "threshold": "3", "unit": "kg",
                                      "deadline": "2026-11-30T18:00:00Z"})
    a, b, _alice, bob, mine, remote = await _two_nodes(make_node, group_buy)
    carol = await a.member("carol")
    # When bob@beta pledges 2 kg and carol@alpha 1 kg
    await deals.book(b.ctx, bob, remote.id, {"quantity": "2"})
    await deals.book(a.ctx, carol, mine.id, {"quantity": "1"})
    await settle(a, b)
    # Then both nodes count 3 of 5 kg (beta used to see only its own 2)
    here = await deals.progress(a.ctx, mine.id)
    there = await deals.progress(b.ctx, remote.id)
    assert (here.pledged, there.pledged) == (3000, 3000)
    assert (here.target, there.target) == (5000, 5000)
    html = await _french_page(b, "bob", remote.id)
    assert "3 sur 5\u00a0kg promis" in html
    # When the deadline passes with the threshold reached
    clock.advance(days=5)
    await settle(a, b)
    # Then the group buy is committed and closed on both nodes
    assert (await listings.get_listing(a.ctx, mine.id)).row.status == "done"
    assert (await listings.get_listing(b.ctx, remote.id)).row.status == "done"
    assert (await deals.progress(b.ctx, remote.id)).state == "committed"
    assert (await deals.progress(a.ctx, mine.id)).state == "committed"


async def test_ride__a_figure_altered_on_the_way_is_refused_and_the_seats_stay(
    make_node: NodeFactory,
) -> None:
    # Given beta shows alice's ride with 3 seats left, as alice signed it
    a, b, _alice, _bob, _mine, remote = await _two_nodes(make_node, free_ride())
    async with a.ctx.store.reader.execute(
            "SELECT body FROM outbox_activities WHERE type = 'Create'") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    # When someone replays it as an Update that says "0 left" (alice's proof kept as it was)
    forged = json.loads(row[0])
    forged.update(id=forged["id"] + "-forged", type="Update")
    forged["object"]["publishes"]["availableQuantity"]["hasNumericalValue"] = "0"
    forged["object"]["updated"] = "2026-11-27T10:00:00Z"
    async with b.ctx.store.transaction() as tx:
        await insert_inbox(tx, activity_id=forged["id"], actor=forged["actor"],
                           activity_type="Update", body=json.dumps(forged),
                           received_at="2026-11-26T10:00:00Z")
    await settle(a, b)
    # Then the proof fails and beta still shows 3 seats, at the first version
    async with b.ctx.store.reader.execute(
            "SELECT outcome FROM inbox_activities WHERE activity_id = ?",
            (forged["id"],)) as cursor:
        outcome = await cursor.fetchone()
    assert outcome is not None
    assert "proof" in str(outcome[0]).lower() or "signature" in str(outcome[0]).lower()
    assert await _left(b, remote.id) == 3
    assert (await listings.get_listing(b.ctx, remote.id)).row.version == 1


async def test_upgrade__an_offer_signed_before_capacity_was_published_gets_its_figure_at_start(
    make_node: NodeFactory,
) -> None:
    # Given a ride of alpha with one seat taken, stored as an older meshnode signed it
    # (no availableQuantity), and beta still showing 3 seats
    a, b, alice, _bob, mine, remote = await _two_nodes(make_node, free_ride(auto_accept=True))
    await deals.book(a.ctx, await a.member("carol"), mine.id, {"quantity": 1})
    old = json.loads((await listings.get_listing(a.ctx, mine.id)).row.signed_object)
    del old["publishes"]["availableQuantity"]
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET signed_object = ? WHERE id = ?",
                         (json.dumps(old), mine.id))
    async with b.ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET signed_object = ? WHERE id = ?",
                         (json.dumps(old), remote.id))
    assert await _left(b, remote.id) == 3
    version = (await listings.get_listing(a.ctx, mine.id)).row.version
    # When alpha restarts
    await a.stop()
    await a.start()
    await settle(a, b)
    # Then it signed a new version with what is left, and beta shows it
    row = (await listings.get_listing(a.ctx, mine.id)).row
    assert row.version == version + 1
    verify_proof(json.loads(row.signed_object), public_key=bytes(alice.ed25519_public))
    assert (await _left(a, mine.id), await _left(b, remote.id)) == (2, 2)
