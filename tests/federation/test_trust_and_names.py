"""Issue 14 between two real nodes: signature checks kept per version, shown with names;
re-verification on demand; key changes; remote names cached, refreshed and sanitised."""

from __future__ import annotations

from typing import Any

import aiohttp
import nacl.signing

from meshnode.federation.runtime import IOU_NETWORK
from meshnode.protocol.multikey import fingerprint
from meshnode.services import deals, iou, members
from meshnode.store.members import MemberRow
from tests.conftest import PASSWORD
from tests.federation.browser import browser, csrf, page, person
from tests.federation.conftest import Node, NodeFactory, peer, settle
from tests.federation.iou_helpers import handle, open_line

FR = {"Accept": "text/html", "Accept-Language": "fr-FR,fr;q=0.9"}


async def _api(node: Node, member: MemberRow, method: str, path: str) -> tuple[int, Any]:
    token = await members.create_token(node.ctx, member.username)
    headers = {"Authorization": f"Bearer {token.secret}"}
    async with aiohttp.ClientSession(base_url=node.url) as session, \
            session.request(method, path, headers=headers) as response:
        return response.status, await response.json()


async def _remote_copy(a: Node, b: Node, display_name: str = "Camille",
                       **overrides: Any) -> tuple[MemberRow, str]:
    """alpha's Camille publishes a ride; beta stores the verified copy; returns its beta id."""
    await peer(a, b)
    camille = await members.add_member(a.ctx, username="camille", password=PASSWORD,
                                       display_name=display_name)
    view = await a.publish(camille, **overrides)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    return camille, remote.id


def body_id(wallet_page: str) -> str:
    """The first transaction id linked from a wallet page."""
    marker = 'href="/wallet/transactions/'
    start = wallet_page.index(marker) + len(marker)
    return wallet_page[start:wallet_page.index('"', start)]


async def _rotate_key(node: Node, username: str) -> bytes:
    """The author's own node publishes a new Ed25519 key for ``username`` (key rotation)."""
    fresh = nacl.signing.SigningKey.generate()
    public = bytes(fresh.verify_key)
    async with node.ctx.store.transaction() as tx:
        await tx.execute("UPDATE members SET ed25519_public = ?, ed25519_sealed = ?"
                         " WHERE username = ?",
                         (public, node.ctx.vault.seal(bytes(fresh)), username))
    return public


async def test_remote_listing__check_made_on_arrival_is_kept_and_shown_in_api_and_page(
    make_node: NodeFactory,
) -> None:
    # Given alpha's Camille published a ride that beta received through federation
    a, b = await make_node("alpha"), await make_node("beta")
    camille, listing_id = await _remote_copy(a, b)
    reader = await person(b, "lea")
    # When a member of beta reads it through the API
    status, body = await _api(b, reader, "GET", f"/api/v1/listings/{listing_id}")
    # Then the proof checked on arrival is there: key, fingerprint, when, by which rule
    assert status == 200
    signature = body["signature"]
    assert signature["verified"] is True
    assert signature["key"] == f"{a.url}/users/camille#ed25519-key"
    assert signature["fingerprint"] == fingerprint(camille.ed25519_public)
    assert signature["rule"] == "eddsa-jcs-2022/fep-8b32"
    assert signature["checked_at"] == "2026-11-26T10:00:00Z"
    host_a = a.url.removeprefix("http://")
    assert body["author"]["name"] == "Camille"
    assert body["author"]["handle"] == f"camille@{host_a}"
    assert body["author"]["actor"] == f"{a.url}/users/camille"
    assert body["community"] == {"name": "Community alpha", "handle": f"alpha@{host_a}",
                                 "actor": a.group}
    # And the search lists carry the same objects
    status, found = await _api(b, reader, "GET", "/api/v1/listings?category=ride")
    assert [item["signature"]["verified"] for item in found["items"]] == [True]
    assert found["items"][0]["author"]["name"] == "Camille"
    # And the page, in French, names her and says verified, with the key's fingerprint
    async with browser(b, "lea") as session, session.get(f"/listings/{listing_id}",
                                                         headers=FR) as response:
        text = await response.text()
    assert f"Signé par Camille (camille@{host_a}), vérifié" in text
    assert fingerprint(camille.ed25519_public) in text
    assert "Community alpha · alpha@" in text
    assert "pas encore connue" not in text


async def test_cards__remote_listing_shows_author_and_community_names_not_urls(
    make_node: NodeFactory,
) -> None:
    # Given beta holds alpha's listing
    a, b = await make_node("alpha"), await make_node("beta")
    await _remote_copy(a, b)
    async with aiohttp.ClientSession(base_url=b.url) as session, \
            session.get("/", headers=FR) as response:
        home = await response.text()
    # Then its card names Camille and alpha's community, not their URLs
    host_a = a.url.removeprefix("http://")
    assert f"Camille · camille@{host_a}" in home
    assert f"depuis Community alpha · alpha@{host_a}" in home
    assert f"depuis {a.url}" not in home


async def test_reverify__author_key_rotated_shows_key_changed_plainly(
    make_node: NodeFactory,
) -> None:
    # Given beta verified Camille's listing, then alpha rotated Camille's key
    a, b = await make_node("alpha"), await make_node("beta")
    _, listing_id = await _remote_copy(a, b)
    await _rotate_key(a, "camille")
    await person(b, "lea")
    async with browser(b, "lea") as session:
        before = await page(session, f"/listings/{listing_id}")
        assert 'class="sig ok"' in before  # beta has not looked again yet
        # When a member asks beta to check again (a minute later: the document is re-fetched)
        b.clock.advance(minutes=2)
        token = await csrf(session, f"/listings/{listing_id}")
        async with session.post(f"/listings/{listing_id}/verify", data={"csrf": token},
                                headers=FR, allow_redirects=False) as response:
            assert response.status == 303
        async with session.get(f"/listings/{listing_id}", headers=FR) as response:
            after = await response.text()
    # Then the page says plainly that the author's key changed since
    assert "la clé de l’auteur a changé depuis" in after
    assert 'class="sig ok"' not in after
    status, body = await _api(b, await person(b, "max"), "GET",
                              f"/api/v1/listings/{listing_id}")
    assert status == 200
    assert body["signature"]["verified"] is False
    assert body["signature"]["key_changed"] is True


async def test_reverify_api__fresh_check_recorded_and_unreachable_author_keeps_earlier(
    make_node: NodeFactory,
) -> None:
    # Given beta holds a verified copy of alpha's listing
    a, b = await make_node("alpha"), await make_node("beta")
    _, listing_id = await _remote_copy(a, b)
    lea = await person(b, "lea")
    # When re-verified through the API an hour later
    b.clock.advance(hours=1)
    status, body = await _api(b, lea, "POST", f"/api/v1/listings/{listing_id}/verify")
    # Then the new check is kept with its time
    assert status == 200
    assert body["signature"]["verified"] is True
    assert body["signature"]["checked_at"] == "2026-11-26T11:00:00Z"
    # When alpha is down and it is asked again
    await a.stop()
    b.clock.advance(hours=1)
    status, body = await _api(b, lea, "POST", f"/api/v1/listings/{listing_id}/verify")
    # Then 503 with a clear error, and the earlier check stands
    assert status == 503
    assert body["error"] == "community_unreachable"
    status, body = await _api(b, lea, "GET", f"/api/v1/listings/{listing_id}")
    assert body["signature"]["verified"] is True
    assert body["signature"]["checked_at"] == "2026-11-26T11:00:00Z"


async def test_reverify__unknown_listing_404_no_token_401_no_csrf_403(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    _, listing_id = await _remote_copy(a, b)
    lea = await person(b, "lea")
    status, body = await _api(b, lea, "POST", "/api/v1/listings/0000000000000000/verify")
    assert (status, body["error"]) == (404, "not_found")
    async with aiohttp.ClientSession(base_url=b.url) as session, \
            session.post(f"/api/v1/listings/{listing_id}/verify") as response:
        assert response.status == 401
    b.clock.advance(hours=1)
    async with browser(b, "lea") as session, session.post(
            f"/listings/{listing_id}/verify", data={}, headers=FR,
            allow_redirects=False) as response:
        assert response.status == 403
    # Nothing was re-checked: the arrival check is still the one kept
    status, body = await _api(b, lea, "GET", f"/api/v1/listings/{listing_id}")
    assert body["signature"]["checked_at"] == "2026-11-26T10:00:00Z"


async def test_actor_refresh__worker_picks_up_a_new_name_and_a_new_key_after_a_day(
    make_node: NodeFactory,
) -> None:
    # Given beta cached Camille's actor when her listing arrived
    a, b = await make_node("alpha"), await make_node("beta")
    _, listing_id = await _remote_copy(a, b)
    lea = await person(b, "lea")
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE members SET display_name = 'Camille D.' WHERE username = ?",
                         ("camille",))
    await _rotate_key(a, "camille")
    # When less than a day passed, the worker has nothing to do
    b.clock.advance(hours=23)
    assert await b.workers.names.step() == 0
    # When more than a day passed, it re-fetches the cached actors it shows names of
    b.clock.advance(hours=2)
    assert await b.workers.names.step() >= 1
    assert await b.workers.names.step() == 0  # refreshed: not due again
    status, body = await _api(b, lea, "GET", f"/api/v1/listings/{listing_id}")
    assert status == 200
    assert body["author"]["name"] == "Camille D."
    assert body["signature"]["key_changed"] is True


async def test_actor_refresh__an_unreachable_actor_is_recorded_and_waits_its_turn(
    make_node: NodeFactory,
) -> None:
    a, b = await make_node("alpha"), await make_node("beta")
    await _remote_copy(a, b)
    await a.stop()
    b.clock.advance(hours=25)
    tried = await b.workers.names.step()
    assert tried >= 1
    assert await b.workers.names.step() == 0
    errors = await b.count("SELECT count(*) FROM remote_actors WHERE refresh_error IS NOT NULL")
    assert errors == tried


async def test_hostile_remote_name__cleaned_capped_and_escaped(make_node: NodeFactory) -> None:
    # Given alpha (a hostile peer) serves an author name with markup, bidi overrides,
    # control characters, newlines and 500 characters
    a, b = await make_node("alpha"), await make_node("beta")
    hostile = "<script>alert(1)</script>\u202eevil\x00\x07\nline" + "x" * 500
    await peer(a, b)
    camille = await members.add_member(a.ctx, username="camille", password=None)
    async with a.ctx.store.transaction() as tx:
        await tx.execute("UPDATE members SET display_name = ? WHERE username = 'camille'",
                         (hostile,))
    view = await a.publish(camille)
    await settle(a, b)
    remote = await b.remote(view.row.object_id)
    assert remote is not None
    lea = await person(b, "lea")
    status, body = await _api(b, lea, "GET", f"/api/v1/listings/{remote.id}")
    assert status == 200
    name = body["author"]["name"]
    # Then beta keeps a cleaned, capped name: no control or bidi characters, one line
    assert len(name) <= 80
    assert not any(ch in name for ch in "\u202e\x00\x07\n")
    assert name.startswith("<script>alert(1)</script>evil line")
    # And pages escape it
    async with aiohttp.ClientSession(base_url=b.url) as session, \
            session.get(f"/listings/{remote.id}", headers=FR) as response:
        text = await response.text()
    assert "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;evil line" in text


async def test_wallet_history__cross_node_payment_names_person_and_community_both_sides(
    make_node: NodeFactory,
) -> None:
    # Given a trust line between alpha and beta, and alpha's Camille paid beta's Bob
    a, b = await make_node("alpha"), await make_node("beta")
    await peer(a, b)
    await open_line(a, b)
    camille = await members.add_member(a.ctx, username="camille", password=PASSWORD,
                                       display_name="Camille")
    await members.add_member(b.ctx, username="bob", password=PASSWORD, display_name="Bob")
    await iou.pay_remote(a.ctx, camille, handle(b, "bob"), 1000,
                         "deal bab713e8c0ffee00: Covoiturage", network=a.app[IOU_NETWORK])
    await settle(a, b)
    host_a, host_b = a.url.removeprefix("http://"), b.url.removeprefix("http://")
    # And each node's names worker fetched the other side's actor (a peer's member)
    assert await a.workers.names.name_parties() == 1
    assert await b.workers.names.name_parties() == 1
    assert await a.workers.names.name_parties() == 0
    # When each opens their wallet, in French
    async with browser(a, "camille") as session, session.get("/wallet", headers=FR) as resp:
        payer_side = await resp.text()
    async with browser(b, "bob") as session, session.get("/wallet", headers=FR) as resp:
        payee_side = await resp.text()
    # Then each names the person and the community on the other side, never node:host
    assert f"Bob · bob@{host_b}" in payer_side
    assert f"(Community beta · beta@{host_b})" in payer_side
    assert f"Camille · camille@{host_a}" in payee_side
    assert f"(Community alpha · alpha@{host_a})" in payee_side
    assert "node:127.0.0.1" not in payer_side + payee_side
    # And the deal memo reads as a French sentence that links to the deal
    assert ('Réservation <a href="/deals/bab713e8c0ffee00">bab713e8…</a>\u202f: Covoiturage'
            in payer_side)
    # And the transaction's own page names both sides
    async with browser(a, "camille") as session:
        entry = await page(session, f"/wallet/transactions/{body_id(payer_side)}")
    assert f"Bob · bob@{host_b} (Community beta · beta@{host_b})" in entry
    assert f"Camille · camille@{host_a}" in entry
    # And the API's history says the same
    status, body = await _api(a, camille, "GET", "/api/v1/transactions")
    assert status == 200
    assert body["items"][0]["other_side"] == {
        "person": {"name": "Bob", "handle": f"bob@{host_b}", "actor": f"{b.url}/users/bob"},
        "community": {"name": "Community beta", "handle": f"beta@{host_b}", "actor": b.group}}


async def test_deal_lists__cross_node_booking_names_the_author_and_the_booker(
    make_node: NodeFactory,
) -> None:
    # Given beta's Lea booked a seat on alpha's Camille's ride
    a, b = await make_node("alpha"), await make_node("beta")
    _, listing_id = await _remote_copy(a, b, price={"mode": "free"})
    lea = await members.add_member(b.ctx, username="lea", password=PASSWORD,
                                   display_name="Léa")
    await deals.book(b.ctx, lea, listing_id, {"quantity": "1"})
    await settle(a, b)
    host_a, host_b = a.url.removeprefix("http://"), b.url.removeprefix("http://")
    # Then each side's deal list names the other person, not their actor URL
    async with browser(b, "lea") as session:
        booker_side = await page(session, "/my/deals")
    async with browser(a, "camille") as session:
        author_side = await page(session, "/my/deals")
    assert f"Camille · camille@{host_a}" in booker_side
    assert f"Léa · lea@{host_b}" in author_side
    assert f"{b.url}/users/lea" not in author_side
    # And the deals API carries both as {name, handle, actor}
    status, body = await _api(b, lea, "GET", "/api/v1/deals?role=booker")
    assert status == 200
    assert body["items"][0]["people"] == {
        "booker": {"name": "Léa", "handle": f"lea@{host_b}", "actor": f"{b.url}/users/lea"},
        "author": {"name": "Camille", "handle": f"camille@{host_a}",
                   "actor": f"{a.url}/users/camille"}}


async def test_backfill__versions_stored_before_checks_were_kept_are_checked_offline(
    make_node: NodeFactory,
) -> None:
    # Given beta holds alpha's listing and its own, stored without a kept check (as an
    # older meshnode did), and alpha is now down
    a, b = await make_node("alpha"), await make_node("beta")
    _, remote_id = await _remote_copy(a, b)
    local = await b.publish(await person(b, "lea"))
    async with b.ctx.store.transaction() as tx:
        await tx.execute("UPDATE listing_versions SET verified = NULL, checked_at = NULL")
    await a.stop()
    b.clock.advance(minutes=5)
    # When the names worker steps
    assert await b.workers.names.backfill_checks() == 2
    assert await b.workers.names.backfill_checks() == 0
    # Then both are verified with the cached keys, no network needed
    lea = await person(b, "max")
    for listing_id in (remote_id, local.row.id):
        status, body = await _api(b, lea, "GET", f"/api/v1/listings/{listing_id}")
        assert status == 200
        assert body["signature"]["verified"] is True
        assert body["signature"]["checked_at"] == "2026-11-26T10:05:00Z"


async def test_actor_refresh__an_actor_cached_for_a_signature_alone_is_never_refreshed(
    make_node: NodeFactory,
) -> None:
    # Given beta cached alpha's Zoe only to check a request's signature: she authored no
    # listing here, is no peer and has no deal or payment with us
    a, b = await make_node("alpha"), await make_node("beta")
    await _remote_copy(a, b)
    await members.add_member(a.ctx, username="zoe", password=None)
    zoe = f"{a.url}/users/zoe"
    await b.fed.directory.get_actor(zoe)
    fetched = "SELECT count(*) FROM remote_actors WHERE id = ? AND fetched_at = ?"
    assert await b.count(fetched, zoe, "2026-11-26T10:00:00Z") == 1
    # When days pass and the names worker runs
    b.clock.advance(days=3)
    await b.workers.names.step()
    await b.workers.names.step()
    # Then Zoe's document was not fetched again on anyone's say-so
    assert await b.count(fetched, zoe, "2026-11-26T10:00:00Z") == 1
    camille = f"{a.url}/users/camille"
    assert await b.count(fetched, camille, "2026-11-26T10:00:00Z") == 0  # an author: refreshed


async def test_reverify_page__unreachable_author_is_explained_in_french_and_nothing_changes(
    make_node: NodeFactory,
) -> None:
    # Given beta holds a verified copy of alpha's listing, and alpha is down
    a, b = await make_node("alpha"), await make_node("beta")
    _, listing_id = await _remote_copy(a, b)
    await person(b, "lea")
    await a.stop()
    b.clock.advance(hours=1)
    async with browser(b, "lea") as session:
        token = await csrf(session, f"/listings/{listing_id}")
        # When Léa asks for the signature to be checked again
        async with session.post(f"/listings/{listing_id}/verify", data={"csrf": token},
                                headers=FR, allow_redirects=False) as response:
            status, text = response.status, await response.text()
    # Then the page says, in French, that the author's community cannot be reached
    assert status == 503
    assert "la communauté de l’auteur est injoignable" in text
    # And the earlier verification still shows
    assert 'class="sig ok"' in text
