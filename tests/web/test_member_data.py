"""Members' data rights (RGPD): the export archive (``GET /api/v1/me/export`` and the admin's
``GET /api/v1/admin/members/{name}/export``)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from meshnode.protocol.errors import ProofError
from meshnode.protocol.multikey import multikey_to_ed25519_public
from meshnode.protocol.proofs import proof_verification_method, verify_proof
from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from tests.conftest import MakeMember, TestMember, ride_listing


def _lines(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    text = archive.read(name).decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line]


async def _history(client: TestClient, ctx: NodeContext, alice: TestMember,
                   bob: TestMember) -> str:
    """Alice publishes and edits a ride, bob books it and pays, they write to each other."""
    view = await listing_service.create_listing(ctx, alice.row, ride_listing())
    listing_id = view.row.id
    edited = await client.patch(f"/api/v1/listings/{listing_id}", json={"title": "Vers Lyon"},
                                headers=alice.headers)
    assert edited.status == 200, await edited.text()
    paid = await client.post("/api/v1/transfers", headers=bob.headers,
                             json={"payee": "alice", "amount": "3", "memo": "merci"})
    assert paid.status in (200, 201), await paid.text()
    said = await client.post("/api/v1/messages", headers=bob.headers,
                             json={"to": "alice", "listing": listing_id, "text": "Une place ?"})
    assert said.status == 201, await said.text()
    booked = await client.post(f"/api/v1/listings/{listing_id}/deals",
                               json={"quantity": 1, "amount": "4.50"}, headers=bob.headers)
    assert booked.status == 201, await booked.text()
    deal = await booked.json()
    for action in ("accept", "done"):
        moved = await client.post(f"/api/v1/deals/{deal['id']}/{action}", headers=alice.headers)
        assert moved.status == 200, await moved.text()
    rated = await client.post(f"/api/v1/deals/{deal['id']}/feedback",
                              json={"rating": 5, "no_show": False}, headers=bob.headers)
    assert rated.status == 201, await rated.text()
    return listing_id


async def test_export__archive_holds_every_category_with_a_readme(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    # Given alice with a ride in two versions, a payment, a message, a deal and feedback
    listing_id = await _history(client, ctx, alice, bob)
    # And a saved search
    saved = await client.post("/api/v1/alerts", headers=alice.headers,
                              json={"q": "échelle", "kind": "offer"})
    assert saved.status == 201, await saved.text()
    # When she downloads her data
    response = await client.get("/api/v1/me/export", headers=alice.headers)
    # Then it is a zip attachment named for her, with a README in French and English
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "application/zip"
    assert 'filename="meshnode-voisins-alice-' in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    readme = archive.read("README.txt").decode("utf-8")
    assert "FRANÇAIS" in readme
    assert "ENGLISH" in readme
    assert "alice" in readme
    # And every category is there, about her
    assert _lines(archive, "profile.jsonl")[0]["username"] == "alice"
    assert [row["id"] for row in _lines(archive, "listings.jsonl")] == [listing_id]
    versions = [row["version"] for row in _lines(archive, "listing_versions.jsonl")]
    assert versions[:2] == [1, 2]  # published, edited (the deal's seat count may add more)
    assert _lines(archive, "messages_local.jsonl")[0]["body"] == "Une place ?"
    assert len(_lines(archive, "deals.jsonl")) == 1
    assert {e["to_state"] for e in _lines(archive, "deal_events.jsonl")} >= {"completed"}
    assert _lines(archive, "feedback.jsonl")[0]["rating"] == 5
    assert any(row["memo"] == "merci" for row in _lines(archive, "ledger_entries.jsonl"))
    assert _lines(archive, "notifications.jsonl")
    assert [row["q"] for row in _lines(archive, "alerts.jsonl")] == ["échelle"]
    for name in ("messages_remote.jsonl", "ious.jsonl", "receipts.jsonl",
                 "payment_requests.jsonl", "api_tokens.jsonl", "keys.json",
                 "waiting_lists.jsonl", "remote_waiting_lists.jsonl"):
        assert name in archive.namelist()
    # And no secret left the node
    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert b"argon2" not in everything
    assert b"sealed" not in everything
    assert alice.token.encode() not in everything


async def test_export__every_proof_verifies_from_the_archive_alone(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember
) -> None:
    # Given alice's archive
    await _history(client, ctx, alice, bob)
    response = await client.get("/api/v1/me/export", headers=alice.headers)
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    keys = json.loads(archive.read("keys.json"))
    # When each signed document is checked with keys.json only (no node, no network)
    documents = [json.loads(row["signed_object"])
                 for row in _lines(archive, "listing_versions.jsonl")]
    documents += [json.loads(row["document"]) for row in _lines(archive, "ledger_entries.jsonl")
                  if '"proof"' in row["document"]]
    documents += [json.loads(row["document"]) for row in _lines(archive, "feedback.jsonl")]
    # Then every one verifies, and a changed one does not
    assert len(documents) >= 4
    for document in documents:
        method = proof_verification_method(document)
        verify_proof(document, public_key=multikey_to_ed25519_public(keys[method]))
    tampered = {**documents[0], "name": "changé"}
    method = proof_verification_method(tampered)
    with pytest.raises(ProofError):
        verify_proof(tampered, public_key=multikey_to_ed25519_public(keys[method]))


async def test_export__admin_exports_a_member_and_a_member_gets_403(
    client: TestClient, ctx: NodeContext, alice: TestMember, bob: TestMember,
    make_member: MakeMember,
) -> None:
    # Given an admin and two members
    admin = await make_member("carole", admin=True)
    await listing_service.create_listing(ctx, alice.row, ride_listing())
    # When bob asks for alice's data, then the admin does
    refused = await client.get("/api/v1/admin/members/alice/export", headers=bob.headers)
    granted = await client.get("/api/v1/admin/members/alice/export", headers=admin.headers)
    missing = await client.get("/api/v1/admin/members/nobody/export", headers=admin.headers)
    # Then bob is refused with a JSON error, the admin gets alice's archive
    assert refused.status == 403
    assert (await refused.json())["error"]
    assert granted.status == 200
    archive = zipfile.ZipFile(io.BytesIO(await granted.read()))
    assert _lines(archive, "profile.jsonl")[0]["username"] == "alice"
    assert len(_lines(archive, "listings.jsonl")) == 1
    assert missing.status == 404
    anonymous = await client.get("/api/v1/me/export")
    assert anonymous.status == 401
