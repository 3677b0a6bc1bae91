"""JSON API for listings: publish, edit, withdraw, search; signed documents end to end."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestClient

from meshnode.protocol.multikey import multikey_to_ed25519_public
from meshnode.protocol.proofs import verify_proof
from meshnode.services.context import NodeContext
from meshnode.store import listings as listing_store
from tests.conftest import FakeClock, MakeMember, TestMember, ride_listing


async def publish(client: TestClient, member: TestMember, **overrides: object) -> dict:
    response = await client.post(
        "/api/v1/listings", json=ride_listing(**overrides), headers=member.headers
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def member_key(client: TestClient, member: TestMember) -> bytes:
    me = await (await client.get("/api/v1/me", headers=member.headers)).json()
    return multikey_to_ed25519_public(me["public_keys"]["ed25519_multikey"])


async def test_create_listing__returns_signed_object_verifiable_with_author_key(
    client: TestClient, alice: TestMember
) -> None:
    listing = await publish(client, alice)
    signed = listing["signed_object"]
    verdict = verify_proof(signed, public_key=await member_key(client, alice))
    assert verdict.verification_method == "http://127.0.0.1:8080/users/alice#ed25519-key"
    assert signed["proof"]["created"] == "2026-11-26T10:00:00Z"
    assert listing["status"] == "active"
    assert listing["price"] == {"mode": "amount", "amount": "4.50", "period": None}


async def test_listing_object__served_byte_for_byte_as_stored(
    client: TestClient, alice: TestMember, ctx: NodeContext
) -> None:
    listing = await publish(client, alice)
    response = await client.get(
        f"/listings/{listing['id']}", headers={"Accept": "application/activity+json"}
    )
    assert response.status == 200
    assert response.content_type == "application/activity+json"
    row = await listing_store.get_listing(ctx.store.reader, listing["id"])
    assert row is not None
    assert await response.text() == row.signed_object


async def test_patch_listing__creates_new_signed_version(
    client: TestClient, alice: TestMember, ctx: NodeContext, clock: FakeClock
) -> None:
    listing = await publish(client, alice)
    clock.advance(minutes=5)
    response = await client.patch(
        f"/api/v1/listings/{listing['id']}",
        json={"title": "Covoiturage Lyon (2 places)", "details": {"seats": 2}},
        headers=alice.headers,
    )
    assert response.status == 200, await response.text()
    edited = await response.json()
    assert edited["version"] == 2
    assert edited["details"]["seats"] == 2
    assert edited["signed_object"]["updated"] == "2026-11-26T10:05:00Z"
    key = await member_key(client, alice)
    versions = await listing_store.list_versions(ctx.store.reader, listing["id"])
    assert [v for v, _ in versions] == [1, 2]
    for _, document in versions:
        verify_proof(json.loads(document), public_key=key)


async def test_patch_listing__status_only_works_after_departure(
    client: TestClient, alice: TestMember, clock: FakeClock
) -> None:
    listing = await publish(client, alice)
    clock.advance(days=20)  # departure (5 December) has passed
    response = await client.patch(
        f"/api/v1/listings/{listing['id']}", json={"status": "done"}, headers=alice.headers
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "done"


async def test_delete_listing__becomes_signed_tombstone_and_leaves_search(
    client: TestClient, alice: TestMember
) -> None:
    listing = await publish(client, alice)
    response = await client.delete(f"/api/v1/listings/{listing['id']}", headers=alice.headers)
    assert response.status == 200
    withdrawn = await response.json()
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["signed_object"]["type"] == "Tombstone"
    verify_proof(withdrawn["signed_object"], public_key=await member_key(client, alice))
    found = await (await client.get("/api/v1/listings", headers=alice.headers)).json()
    assert found["items"] == []
    again = await client.patch(
        f"/api/v1/listings/{listing['id']}", json={"title": "Revenu"}, headers=alice.headers
    )
    assert again.status == 409


async def test_search__accent_insensitive_both_ways(client: TestClient, alice: TestMember) -> None:
    await publish(client, alice, title="Prête mon vélo électrique")
    await publish(
        client,
        alice,
        title="Perceuse à prêter",
        category="lend",
        details={},
        description="Perceuse à percussion, avec mèches.",
    )
    for query in ("velo", "VÉLO", "vél", "electrique"):
        found = await (
            await client.get("/api/v1/listings", params={"q": query}, headers=alice.headers)
        ).json()
        assert [i["title"] for i in found["items"]] == ["Prête mon vélo électrique"], query
    found = await (
        await client.get("/api/v1/listings", params={"q": "pret"}, headers=alice.headers)
    ).json()
    assert len(found["items"]) == 2


async def test_search__hostile_fts_syntax_is_plain_text(
    client: TestClient, alice: TestMember
) -> None:
    await publish(client, alice)
    for query in ['"', "(*", "NEAR(a b)", "title:x OR", "a AND NOT", "*"]:
        response = await client.get("/api/v1/listings", params={"q": query}, headers=alice.headers)
        assert response.status == 200, query


async def test_search__filters_and_near(client: TestClient, alice: TestMember) -> None:
    await publish(client, alice, title="Trajet Lyon centre")
    await publish(
        client,
        alice,
        title="Trajet Paris",
        location={"name": "Paris", "lat": 48.8566, "lon": 2.3522},
    )
    await publish(
        client, alice, title="Je cherche un trajet", kind="request", price={"mode": "free"}
    )

    async def titles(**params: str) -> set[str]:
        response = await client.get("/api/v1/listings", params=params, headers=alice.headers)
        assert response.status == 200, await response.text()
        return {i["title"] for i in (await response.json())["items"]}

    assert await titles(near="45.76,4.84", radius_km="5") == {
        "Trajet Lyon centre",
        "Je cherche un trajet",
    }
    assert await titles(near="48.85,2.35", radius_km="5") == {"Trajet Paris"}
    assert await titles(kind="request") == {"Je cherche un trajet"}
    assert await titles(price="free") == {"Je cherche un trajet"}
    assert await titles(category="meal") == set()


async def test_search__cursor_pages_through_everything_once(
    client: TestClient, alice: TestMember, clock: FakeClock
) -> None:
    for number in range(25):
        await publish(client, alice, title=f"Annonce numéro {number}")
        if number % 3 == 0:
            clock.advance(seconds=1)  # several listings share a timestamp: ties broken by seq
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "10", **({"cursor": cursor} if cursor else {})}
        page = await (
            await client.get("/api/v1/listings", params=params, headers=alice.headers)
        ).json()
        seen += [item["title"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Annonce numéro {n}" for n in reversed(range(25))]


async def test_search__expired_listings_are_hidden_by_default(
    client: TestClient, alice: TestMember, clock: FakeClock
) -> None:
    await publish(client, alice, expires_at="2026-11-30T00:00:00Z")
    clock.advance(days=5)
    found = await (await client.get("/api/v1/listings", headers=alice.headers)).json()
    assert found["items"] == []


async def test_get_me__never_exposes_private_material(
    client: TestClient, alice: TestMember
) -> None:
    body = await (await client.get("/api/v1/me", headers=alice.headers)).text()
    assert "PRIVATE" not in body
    assert "password" not in body
    assert "sealed" not in body


async def test_create_member__admin_only_and_duplicate_is_409(
    client: TestClient, alice: TestMember, bob: TestMember, make_member: MakeMember
) -> None:
    new = {"username": "carol", "password": "une phrase longue"}
    refused = await client.post("/api/v1/members", json=new, headers=bob.headers)
    assert refused.status == 403
    created = await client.post("/api/v1/members", json=new, headers=alice.headers)
    assert created.status == 201
    duplicate = await client.post("/api/v1/members", json=new, headers=alice.headers)
    assert duplicate.status == 409
    assert (await duplicate.json())["fields"] == {"username": "already taken"}
    listed = await (await client.get("/api/v1/members", headers=alice.headers)).json()
    assert [m["username"] for m in listed["items"]] == ["alice", "bob", "carol"]


async def test_get_listing__signature_object_and_a_row_altered_after_its_check_is_not_verified(
    client: TestClient, ctx: NodeContext, alice: TestMember
) -> None:
    # Given a listing published here: its check is kept with the version
    created = await client.post("/api/v1/listings", json=ride_listing(), headers=alice.headers)
    listing = await created.json()
    assert listing["signature"]["verified"] is True
    assert listing["signature"]["rule"] == "eddsa-jcs-2022/local-member-key"
    assert listing["signature"]["key"] == "http://127.0.0.1:8080/users/alice#ed25519-key"
    assert listing["author"]["handle"] == "alice@127.0.0.1:8080"
    assert listing["community"] == {"name": "Les Voisins du Canal",
                                    "handle": "voisins@127.0.0.1:8080",
                                    "actor": "http://127.0.0.1:8080/groups/voisins"}
    # When someone alters the stored document in the database afterwards
    async with ctx.store.transaction() as tx:
        await tx.execute("UPDATE listings SET signed_object = replace(signed_object, 'Lyon',"
                         " 'Paris') WHERE id = ?", (listing["id"],))
    # Then reading it says it does not verify
    body = await (await client.get(f"/api/v1/listings/{listing['id']}",
                                   headers=alice.headers)).json()
    assert body["signature"]["verified"] is False
    assert body["signature"]["status"] == "invalid"
