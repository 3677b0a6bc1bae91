"""Readable from Mastodon (issue 15): the Group sends Notes to microblog followers.

Mastodon itself cannot run here, so its part is played by a small aiohttp server written in
this file, on 127.0.0.1: it serves a real actor document (RSA ``publicKey``, shared inbox),
``/.well-known/nodeinfo`` and a NodeInfo 2.0 document saying ``mastodon`` (or whatever a test
makes it say), sends a Follow signed draft-cavage ``rsa-sha256`` as Mastodon does, and
records every POST it receives. A real meshnode peer runs beside it.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from PIL import Image

from meshnode.federation.readers import nodeinfo_href
from meshnode.protocol.httpsig.keys import load_public_pem
from meshnode.protocol.httpsig.verify import parse_signature, verify_parsed
from meshnode.protocol.notes import note_id_for
from meshnode.protocol.signing import signed_post_headers
from meshnode.protocol.vocab import PUBLIC
from meshnode.services import listings
from meshnode.store.members import MemberRow
from tests.federation.conftest import Node, NodeFactory, bind_socket, peer, settle

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Received:
    """One POST the fake server got: path, headers, raw body."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class FakeMastodon:
    """What the fake server serves and what it received."""

    url: str
    nodeinfo: bytes = b'{"version":"2.0","software":{"name":"mastodon","version":"4.3.2"}}'
    received: list[Received] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)
    # What its inbox answers: 202, or (tests/federation/test_left_to_catch_up.py) a 429
    # with this Retry-After.
    retry_after: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.url}/users/bob"

    def document(self) -> dict[str, Any]:
        pem = RSA_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return {
            "@context": ["https://www.w3.org/ns/activitystreams",
                         "https://w3id.org/security/v1",
                         {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers"}],
            "id": self.actor, "type": "Person", "preferredUsername": "bob", "name": "Bob",
            "inbox": f"{self.actor}/inbox", "outbox": f"{self.actor}/outbox",
            "followers": f"{self.actor}/followers",
            "endpoints": {"sharedInbox": f"{self.url}/inbox"},
            "publicKey": {"id": f"{self.actor}#main-key", "owner": self.actor,
                          "publicKeyPem": pem},
        }

    def of_type(self, activity_type: str) -> list[Received]:
        return [r for r in self.received if r.json.get("type") == activity_type]


@pytest.fixture
async def mastodon() -> AsyncIterator[FakeMastodon]:
    sock = bind_socket()
    fake = FakeMastodon(url=f"http://127.0.0.1:{sock.getsockname()[1]}")

    async def actor(request: web.Request) -> web.Response:
        fake.gets.append(request.path)
        return web.json_response(fake.document(), content_type="application/activity+json")

    async def well_known(request: web.Request) -> web.Response:
        fake.gets.append(request.path)
        return web.json_response({"links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
            "href": f"{fake.url}/nodeinfo/2.0"}]})

    async def nodeinfo(request: web.Request) -> web.Response:
        fake.gets.append(request.path)
        return web.Response(body=fake.nodeinfo, content_type="application/json")

    async def inbox(request: web.Request) -> web.Response:
        fake.received.append(Received(request.path, dict(request.headers),
                                      await request.read()))
        if fake.retry_after is not None:
            return web.Response(status=429, headers={"Retry-After": fake.retry_after})
        return web.Response(status=202)

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/users/bob", actor)
    app.router.add_get("/.well-known/nodeinfo", well_known)
    app.router.add_get("/nodeinfo/2.0", nodeinfo)
    app.router.add_post("/inbox", inbox)
    app.router.add_post("/users/bob/inbox", inbox)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield fake
    await runner.cleanup()


async def follow_group(fake: FakeMastodon, node: Node) -> None:
    """The fake server's user follows the node's Group, signed draft-cavage rsa-sha256."""
    follow = {"@context": "https://www.w3.org/ns/activitystreams",
              "id": f"{fake.url}/follows/1", "type": "Follow", "actor": fake.actor,
              "object": node.group}
    body = json.dumps(follow).encode()
    url = f"{node.url}/inbox"
    headers = signed_post_headers("cavage-rsa", url, body, key=RSA_KEY,
                                  key_id=f"{fake.actor}#main-key",
                                  now=int(node.clock().timestamp()))
    headers["Content-Type"] = "application/activity+json"
    async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=headers) as response:
        assert response.status == 202, await response.text()
    await settle(node)


async def reader_of(node: Node, actor: str) -> str:
    async with node.ctx.store.reader.execute(
            "SELECT reader FROM followers WHERE remote_actor = ?", (actor,)) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def assert_signed_by_group(node: Node, fake: FakeMastodon, got: Received) -> None:
    """Verify the delivery's HTTP signature with our own verifier and the Group's RSA key."""
    async with aiohttp.ClientSession() as session, session.get(
            node.group, headers={"Accept": "application/activity+json"}) as response:
        group = await response.json(content_type=None)
    parsed = parse_signature("POST", f"{fake.url}{got.path}", got.headers)
    assert parsed.key_id == group["publicKey"]["id"]
    assert parsed.scheme == "cavage"
    key = load_public_pem(group["publicKey"]["publicKeyPem"])
    verdict = verify_parsed(parsed, key, now=node.clock(), body=got.body)
    assert verdict.algorithm in ("rsa-sha256", "rsa-v1_5-sha256")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def community(make_node: NodeFactory, mastodon: FakeMastodon
                    ) -> tuple[Node, Node, MemberRow, FakeMastodon]:
    """alpha's Group followed by a meshnode peer (beta) and by the fake Mastodon user."""
    alpha, beta = await make_node("alpha"), await make_node("beta")
    await peer(beta, alpha)
    await follow_group(mastodon, alpha)
    return alpha, beta, await alpha.member("alice"), mastodon


async def test_group__mastodon_follower_gets_a_signed_public_note_and_the_peer_a_proposal(
    community: tuple[Node, Node, MemberRow, FakeMastodon],
) -> None:
    # Given a Mastodon-like follower (its NodeInfo says mastodon) and a meshnode peer
    alpha, beta, alice, fake = community
    assert await reader_of(alpha, fake.actor) == "note"
    assert len(fake.of_type("Accept")) == 1
    # When alice publishes a listing with an image
    view = await alpha.publish(alice)
    await listings.add_image(alpha.ctx, alice, view.row.id, png(), alt="La voiture")
    await settle(alpha, beta)
    # Then the follower gets Create(Note) from the Group, publicly addressed, signed
    creates = fake.of_type("Create")
    assert [c.json["object"]["type"] for c in creates] == ["Note"]
    assert not [r for r in fake.received if r.json.get("object", {}).get("type") == "Proposal"]
    activity = creates[0].json
    note = activity["object"]
    assert activity["actor"] == alpha.group
    assert note["attributedTo"] == alpha.group
    assert note["id"] == note_id_for(view.row.object_id)
    assert note["to"] == [PUBLIC]
    assert note["sensitive"] is False
    assert note["url"] == view.row.object_id
    assert view.row.object_id in note["content"]
    assert "Covoiturage vers Lyon" in note["content"]
    assert "Quai du Canal" in note["content"]
    assert "4.50 G" in note["content"]
    assert note["contentMap"] == {"fr": note["content"]}
    assert note["tag"] == [{"type": "Hashtag", "name": "#ride",
                            "href": f"{alpha.url}/search?category=ride"}]
    assert 'rel="tag"' in note["content"]
    await assert_signed_by_group(alpha, fake, creates[0])
    # And the meshnode peer received the signed Proposal (and no Note)
    assert await beta.remote(view.row.object_id) is not None
    # When the image is added (a new version) the follower got an Update with the attachment
    updates = fake.of_type("Update")
    assert updates, "adding an image publishes an Update"
    attachment = updates[-1].json["object"]["attachment"]
    assert attachment[0]["type"] == "Image"
    assert attachment[0]["name"] == "La voiture"
    assert attachment[0]["url"].startswith(f"{alpha.url}/media/")


async def test_group__mastodon_follower_gets_update_after_an_edit_and_delete_after_withdrawal(
    community: tuple[Node, Node, MemberRow, FakeMastodon],
) -> None:
    # Given a published listing the Mastodon-like follower has as a Note
    alpha, beta, alice, fake = community
    view = await alpha.publish(alice)
    await settle(alpha, beta)
    note_id = note_id_for(view.row.object_id)
    # When alice edits its title
    await listings.update_listing(alpha.ctx, alice, view.row.id, {"title": "Lyon, mardi"})
    await settle(alpha, beta)
    # Then an Update of the same Note carries the new title, signed by the Group
    update = fake.of_type("Update")[-1]
    assert update.json["object"]["id"] == note_id
    assert "Lyon, mardi" in update.json["object"]["content"]
    assert update.json["object"]["updated"]
    await assert_signed_by_group(alpha, fake, update)
    # When she withdraws it
    await listings.withdraw_listing(alpha.ctx, alice, view.row.id)
    await settle(alpha, beta)
    # Then a Delete of the Note arrives, and the peer has the listing withdrawn
    delete = fake.of_type("Delete")[-1]
    assert delete.json["object"] == {"id": note_id, "type": "Tombstone"}
    assert delete.json["actor"] == alpha.group
    await assert_signed_by_group(alpha, fake, delete)
    row = await beta.remote(view.row.object_id)
    assert row is not None
    assert row.status == "withdrawn"


async def test_follow__nodeinfo_lying_meshnode_gets_proposals_and_delivery_still_works(
    make_node: NodeFactory, mastodon: FakeMastodon,
) -> None:
    # Given a follower whose NodeInfo claims meshnode (its actor has no meshnode marker)
    alpha = await make_node("alpha")
    mastodon.nodeinfo = b'{"software":{"name":"meshnode","version":"9"}}'
    await follow_group(mastodon, alpha)
    # When a listing is published
    alice = await alpha.member("alice")
    await alpha.publish(alice)
    await settle(alpha)
    # Then the lie only chose which public document it gets: the Proposal, delivered
    assert await reader_of(alpha, mastodon.actor) == "proposal"
    assert [c.json["object"]["type"] for c in mastodon.of_type("Create")] == ["Proposal"]


@pytest.mark.parametrize("nodeinfo", [
    b'{"software":{"name":"' + b"x" * (1024 * 1024 + 10) + b'"}}',
    b"not json at all",
    b'{"software":"mastodon"}',
    b"[" * 100_000,
], ids=["oversized", "not-json", "malformed", "deeply-nested"])
async def test_follow__hostile_nodeinfo_does_not_break_follow_or_delivery(
    make_node: NodeFactory, mastodon: FakeMastodon, nodeinfo: bytes,
) -> None:
    # Given a follower whose NodeInfo is oversized, not JSON, malformed or too deep
    alpha = await make_node("alpha")
    mastodon.nodeinfo = nodeinfo
    await follow_group(mastodon, alpha)
    # When a listing is published
    alice = await alpha.member("alice")
    await alpha.publish(alice)
    await settle(alpha)
    # Then the follow was accepted, the unreadable NodeInfo counts as unknown software (the
    # historic Proposal), and the listing was delivered
    assert len(mastodon.of_type("Accept")) == 1
    assert "/nodeinfo/2.0" in mastodon.gets
    assert await reader_of(alpha, mastodon.actor) == "proposal"
    assert [c.json["object"]["type"] for c in mastodon.of_type("Create")] == ["Proposal"]


def test_nodeinfo_href__a_link_to_another_origin_is_ignored() -> None:
    # Given a NodeInfo index on one origin whose only 2.x link points at another origin
    links = {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                        "href": "http://127.0.0.1:9/nodeinfo/2.1"}]}
    # When the href is picked, Then none is (the other origin is never fetched)
    assert nodeinfo_href(links, "http://127.0.0.1:8") is None
    # And the same link on the right origin is taken
    assert nodeinfo_href(links, "http://127.0.0.1:9") == "http://127.0.0.1:9/nodeinfo/2.1"


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(
            url, headers={"Accept": "application/activity+json"}) as response:
        return response.status, await response.json(content_type=None)


async def test_note_id__dereferences_to_the_note_then_a_tombstone_and_not_for_remote_listings(
    community: tuple[Node, Node, MemberRow, FakeMastodon],
) -> None:
    # Given a listing whose Note the Mastodon-like follower received
    alpha, beta, alice, fake = community
    view = await alpha.publish(alice)
    await settle(alpha, beta)
    sent = fake.of_type("Create")[-1].json["object"]
    # When anyone fetches the Note's id, Then it is the Note that was sent
    status, note = await get_json(sent["id"])
    assert status == 200
    assert {k: v for k, v in note.items() if k != "@context"} == sent
    # And the peer's copy of the listing has no Note on the peer's host
    remote = await beta.remote(view.row.object_id)
    assert remote is not None
    status, _ = await get_json(f"{beta.url}/listings/{remote.id}/note")
    assert status == 404
    # When the listing is withdrawn, Then the Note's id answers 410 with a Tombstone
    await listings.withdraw_listing(alpha.ctx, alice, view.row.id)
    status, gone = await get_json(sent["id"])
    assert status == 410
    assert gone["type"] == "Tombstone"
    assert gone["id"] == sent["id"]


# --- followers recorded before readers existed (migration 0015) ------------------------------


async def make_legacy(node: Node) -> None:
    """Every follower as a row from before migration 0015 reads after the migrations:
    'proposal' by default, never classified (``reader_checked_at`` NULL)."""
    async with node.ctx.store.transaction() as tx:
        await tx.execute("UPDATE followers SET reader = 'proposal', reader_checked_at = NULL")


async def checked_at(node: Node, actor: str) -> str | None:
    async with node.ctx.store.reader.execute(
            "SELECT reader_checked_at FROM followers WHERE remote_actor = ?", (actor,)) as cur:
        row = await cur.fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


async def test_readers__legacy_mastodon_follower_is_classified_once_then_gets_notes(
    community: tuple[Node, Node, MemberRow, FakeMastodon],
) -> None:
    # Given the Mastodon-like follower and the meshnode peer recorded before readers existed
    alpha, beta, alice, fake = community
    await make_legacy(alpha)
    assert await reader_of(alpha, fake.actor) == "proposal"
    nodeinfo_reads = fake.gets.count("/nodeinfo/2.0")
    # When the reader worker runs (at start-up; here stepped)
    assert await alpha.workers.readers.step() == 2
    # Then the Mastodon follower reads Notes, the peer still Proposals, both stamped, and
    # NodeInfo was read once more, on the follower's own origin
    assert await reader_of(alpha, fake.actor) == "note"
    assert await reader_of(alpha, beta.group) == "proposal"
    assert await checked_at(alpha, fake.actor) is not None
    assert fake.gets.count("/nodeinfo/2.0") == nodeinfo_reads + 1
    # And only once: a second pass has nothing to do and fetches nothing
    assert await alpha.workers.readers.step() == 0
    assert fake.gets.count("/nodeinfo/2.0") == nodeinfo_reads + 1
    # When alice publishes a listing, Then the follower receives a Note, not the Proposal
    view = await alpha.publish(alice)
    await settle(alpha, beta)
    assert [c.json["object"]["type"] for c in fake.of_type("Create")] == ["Note"]
    assert fake.of_type("Create")[0].json["object"]["url"] == view.row.object_id
    assert await beta.remote(view.row.object_id) is not None


async def test_readers__legacy_follower_whose_nodeinfo_is_gone_keeps_proposals_once(
    make_node: NodeFactory, mastodon: FakeMastodon,
) -> None:
    # Given a legacy follower whose server no longer answers NodeInfo sensibly
    alpha = await make_node("alpha")
    await follow_group(mastodon, alpha)
    await make_legacy(alpha)
    mastodon.nodeinfo = b"not json at all"
    # When the reader worker runs, Then nothing is known: it keeps Proposals (the historic
    # behaviour), is stamped, and is not asked again
    assert await alpha.workers.readers.step() == 1
    assert await reader_of(alpha, mastodon.actor) == "proposal"
    assert await checked_at(alpha, mastodon.actor) is not None
    assert await alpha.workers.readers.step() == 0


async def test_readers__a_follow_accepted_now_is_stamped_and_never_reclassified(
    make_node: NodeFactory, mastodon: FakeMastodon,
) -> None:
    # Given a follower classified when its Follow arrived
    alpha = await make_node("alpha")
    await follow_group(mastodon, alpha)
    assert await checked_at(alpha, mastodon.actor) is not None
    reads = len(mastodon.gets)
    # Then the reader worker has nothing to do and fetches nothing
    assert await alpha.workers.readers.step() == 0
    assert len(mastodon.gets) == reads


async def test_readers__legacy_follower_is_classified_when_the_node_starts(
    make_node: NodeFactory, mastodon: FakeMastodon,
) -> None:
    # Given a node whose database has a Mastodon follower from before readers existed
    alpha = await make_node("alpha")
    await follow_group(mastodon, alpha)
    await make_legacy(alpha)
    await alpha.stop()
    # When the node starts with its background workers running (as `meshnode run` does)
    await alpha.start(run_workers=True)
    # Then, without anything else happening, the follower is classified (the loop's first
    # step runs at start; the bound below only keeps a broken build from hanging)
    for _ in range(400):
        if await checked_at(alpha, mastodon.actor) is not None:
            break
        await asyncio.sleep(0.05)
    assert await reader_of(alpha, mastodon.actor) == "note"
    assert await checked_at(alpha, mastodon.actor) is not None
