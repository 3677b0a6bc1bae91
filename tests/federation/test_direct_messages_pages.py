"""Pages in French: "Ça m'intéresse" on another community's listing, the conversation list
and the conversation with a member of another node. Two real nodes over real HTTP."""

from __future__ import annotations

import aiohttp

from meshnode.services import members
from tests.conftest import PASSWORD
from tests.federation.browser import CSRF_RE, browser, person
from tests.federation.conftest import NodeFactory, peer, settle

FR = {"Accept": "text/html", "Accept-Language": "fr"}


async def _get(session: aiohttp.ClientSession, path: str) -> str:
    async with session.get(path, headers=FR) as response:
        assert response.status == 200, path
        return await response.text()


async def _post(session: aiohttp.ClientSession, path: str, data: dict[str, str],
                token_from: str) -> tuple[int, str]:
    match = CSRF_RE.search(await _get(session, token_from))
    assert match, token_from
    async with session.post(path, data={**data, "csrf": match.group(1)}, headers=FR,
                            allow_redirects=False) as response:
        return response.status, response.headers.get("Location", "")


async def test_interested__french_member_writes_to_the_author_of_a_federated_ride(
    make_node: NodeFactory,
) -> None:
    # Given alice's ride on alpha, shown on beta (peered), and bob signed in on beta
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    await peer(alpha, beta)
    alice = await members.add_member(alpha.ctx, username="alice", password=PASSWORD,
                                     display_name="Alice Martin")
    await person(beta, "bob")
    view = await alpha.publish(alice)
    await settle(alpha, beta)
    remote = await beta.remote(view.row.object_id)
    assert remote is not None
    alice_handle = f"alice@{alpha.url.removeprefix('http://')}"
    bob_handle = f"bob@{beta.url.removeprefix('http://')}"
    async with browser(beta, "bob") as bob_session:
        # Then the federated listing has the "Ça m'intéresse" form
        page = await _get(bob_session, f"/listings/{remote.id}")
        assert "Ça m’intéresse" in page
        assert f"Message à Alice Martin · {alice_handle}" in page
        assert f'action="/listings/{remote.id}/interested"' in page
        # When bob sends it
        status, location = await _post(bob_session, f"/listings/{remote.id}/interested",
                                       {"body": "Il reste une place ?"}, f"/listings/{remote.id}")
        assert (status, location) == (303, f"/messages/with/{alice_handle}")
        thread = await _get(bob_session, location)
        assert "Conversation avec Alice Martin" in thread
        assert "Il reste une place ?" in thread
    await settle(alpha, beta)
    # Then alice sees one new conversation from bob, about her ride, and can answer
    async with browser(alpha, "alice") as alice_session:
        inbox = await _get(alice_session, "/messages")
        assert 'aria-label="1 message non lu"' in inbox  # the navigation counts it
        assert bob_handle in inbox
        assert "autre communauté" in inbox
        assert view.row.title in inbox
        status, _ = await _post(alice_session, f"/messages/with/{bob_handle}",
                                {"body": "Oui, une."}, f"/messages/with/{bob_handle}")
        assert status == 303
    await settle(alpha, beta)
    async with browser(beta, "bob") as bob_session:
        thread = await _get(bob_session, f"/messages/with/{alice_handle}")
        assert thread.index("Il reste une place ?") < thread.index("Oui, une.")
        assert '<p class="meta">Vous · <time' in thread  # bob's own, not "@bob"
        assert "@bob ·" not in thread
        # And when bob blocks alice, the page says so and offers no reply form
        status, _ = await _post(bob_session, f"/messages/with/{alice_handle}/block", {},
                                f"/messages/with/{alice_handle}")
        assert status == 303
        thread = await _get(bob_session, f"/messages/with/{alice_handle}")
        assert "Vous avez bloqué ce membre" in thread
        assert "Votre réponse" not in thread


async def test_remote_conversation__unknown_handle_is_404_and_resolves_nothing(
    make_node: NodeFactory,
) -> None:
    beta = await make_node("beta")
    await person(beta, "bob")
    async with browser(beta, "bob") as session, session.get(
            "/messages/with/eve@127.0.0.1:9", headers=FR) as response:
        assert response.status == 404
    assert await beta.count("SELECT count(*) FROM remote_actors") == 0


async def test_write_remote__french_member_starts_a_conversation_by_address(
    make_node: NodeFactory,
) -> None:
    # Given bob on beta and alice on alpha (not peers)
    alpha = await make_node("alpha")
    beta = await make_node("beta")
    await person(alpha, "alice")
    await person(beta, "bob")
    alice_handle = f"alice@{alpha.url.removeprefix('http://')}"
    async with browser(beta, "bob") as session:
        # When bob writes to an address of his own community, then to alice's
        status, _ = await _post(session, "/messages", {"to": f"carol@{beta.url[7:]}",
                                                       "text": "Salut"}, "/messages")
        assert status == 422
        async with session.post("/messages", data={
                "to": "bob@", "text": "x", "csrf": CSRF_RE.search(
                    await _get(session, "/messages")).group(1)},  # type: ignore[union-attr]
                headers=FR) as response:
            page = await response.text()
        assert response.status == 422
        assert "un nom d’utilisateur ou nom@hôte" in page
        assert 'value="bob@"' in page
        status, location = await _post(session, "/messages", {"to": alice_handle,
                                                              "text": "Bonjour"}, "/messages")
        # Then the first two are refused next to the form and the last one is sent
        assert (status, location) == (303, f"/messages/with/{alice_handle}")
    await settle(alpha, beta)
    assert await alpha.count("SELECT count(*) FROM direct_messages") == 1
    assert await beta.count("SELECT count(*) FROM direct_messages") == 1
