"""Account deletion (RGPD): ``DELETE /api/v1/me`` with the password, stepped to the end on one
node (the three-node and kill tests are in tests/federation/test_account_deletion_nodes.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.services import account_deletion, ledger, members
from meshnode.services import listings as listing_service
from meshnode.services.context import NodeContext
from meshnode.services.ledger.admin import verify_journal
from meshnode.web.appkeys import CONTEXT
from tests.conftest import PASSWORD, FakeClock, TestMember, ride_listing


@pytest.fixture
async def quiet(aiohttp_client, node_config: Config, clock: FakeClock) -> TestClient:  # type: ignore[no-untyped-def]
    """A node whose workers the test steps itself."""
    return await aiohttp_client(create_app(node_config, clock=clock, run_workers=False))


async def _member(ctx: NodeContext, username: str, admin: bool = False) -> TestMember:
    row = await members.add_member(ctx, username=username, password=PASSWORD, is_admin=admin)
    return TestMember(row=row, token=(await members.create_token(ctx, username)).secret)


def _rows(config: Config, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(Path(config.database_path)) as db:
        return list(db.execute(sql, params))


async def _finish(ctx: NodeContext) -> None:
    for _ in range(20):
        if not await account_deletion.step(ctx):
            return
    raise AssertionError("the deletion did not finish in 20 steps")


async def test_delete_me__wrong_password_is_403_and_nothing_changes(
    quiet: TestClient, node_config: Config
) -> None:
    # Given alice with a listing
    ctx = quiet.app[CONTEXT]
    alice = await _member(ctx, "alice")
    await listing_service.create_listing(ctx, alice.row, ride_listing())
    before = _rows(node_config, "SELECT * FROM members")
    # When she asks to delete her account with a wrong password, then without confirming
    wrong = await quiet.delete("/api/v1/me", headers=alice.headers,
                               json={"password": "not my password", "confirm": "DELETE"})
    unconfirmed = await quiet.delete("/api/v1/me", headers=alice.headers,
                                     json={"password": PASSWORD, "confirm": "yes"})
    # Then 403 and 422 with JSON errors, and nothing changed: her token still works
    assert wrong.status == 403
    assert (await wrong.json())["error"] == "forbidden"
    assert unconfirmed.status == 422
    assert "confirm" in (await unconfirmed.json())["fields"]
    assert _rows(node_config, "SELECT * FROM members") == before
    assert _rows(node_config, "SELECT count(*) FROM account_deletions") == [(0,)]
    assert (await quiet.get("/api/v1/me", headers=alice.headers)).status == 200


async def test_delete_me__account_is_emptied_ledger_kept_and_sums_to_zero(
    quiet: TestClient, node_config: Config
) -> None:
    # Given alice with two listings, a payment to bob, a message from bob and an open deal
    ctx = quiet.app[CONTEXT]
    alice, bob = await _member(ctx, "alice"), await _member(ctx, "bob")
    ride = await listing_service.create_listing(ctx, alice.row, ride_listing())
    await listing_service.create_listing(ctx, alice.row, ride_listing(title="Retour de Lyon"))
    paid = await quiet.post("/api/v1/transfers", headers=alice.headers,
                            json={"payee": "bob", "amount": "2", "memo": "essence"})
    assert paid.status in (200, 201), await paid.text()
    said = await quiet.post("/api/v1/messages", headers=bob.headers,
                            json={"to": "alice", "listing": ride.row.id, "text": "Une place ?"})
    assert said.status == 201
    booked = await quiet.post(f"/api/v1/listings/{ride.row.id}/deals",
                              json={"quantity": 1}, headers=bob.headers)
    assert booked.status == 201, await booked.text()
    # And a second booking she accepted, which made bob pay 4.50
    held = await quiet.post(f"/api/v1/listings/{ride.row.id}/deals",
                            json={"quantity": 1, "amount": "4.50"}, headers=bob.headers)
    assert held.status == 201, await held.text()
    accepted = await quiet.post(f"/api/v1/deals/{(await held.json())['id']}/accept",
                                headers=alice.headers)
    assert accepted.status == 200, await accepted.text()
    assert (await ledger.wallet_summary(ctx, bob.row)).position.balance == 200 - 450
    # And a saved search
    saved = await quiet.post("/api/v1/alerts", headers=alice.headers,
                             json={"q": "échelle", "kind": "offer"})
    assert saved.status == 201, await saved.text()
    # When she deletes her account and the worker runs to the end
    asked = await quiet.delete("/api/v1/me", headers=alice.headers,
                               json={"password": PASSWORD, "confirm": "DELETE"})
    assert asked.status == 202, await asked.text()
    assert (await quiet.get("/api/v1/me", headers=alice.headers)).status == 401
    await _finish(ctx)
    # Then her listings are signed Tombstones with no text left, the messages are gone
    listings = _rows(node_config, "SELECT status, title, description FROM listings"
                     " WHERE author_id = ?", alice.row.id)
    assert listings == [("withdrawn", "", "")] * 2
    versions = _rows(node_config, "SELECT v.signed_object FROM listing_versions v JOIN"
                     " listings l ON l.id = v.listing_id WHERE l.author_id = ?", alice.row.id)
    assert len(versions) == 2
    assert all('"Tombstone"' in str(v[0]) for v in versions)
    assert _rows(node_config, "SELECT count(*) FROM messages") == [(0,)]
    # And the request was declined, the accepted booking cancelled and refunded;
    # her sessions, tokens and notifications are gone
    assert sorted(_rows(node_config, "SELECT state FROM deals")) == [("cancelled",),
                                                                     ("declined",)]
    assert (await ledger.wallet_summary(ctx, bob.row)).position.balance == 200  # refunded
    for table in ("api_tokens", "web_sessions", "notifications", "alerts"):
        assert _rows(node_config, f"SELECT count(*) FROM {table} WHERE member_id = ?",
                     alice.row.id) == [(0,)]
    # And the account row holds no name, bio, password nor private key; the public key stays
    (name, bio, password, sealed, rsa, public), = _rows(
        node_config, "SELECT display_name, bio, password_hash, ed25519_sealed, rsa_sealed,"
        " ed25519_public FROM members WHERE id = ?", alice.row.id)
    assert str(name).startswith("deleted-")
    assert (bio, password, sealed, rsa) == ("", None, b"", b"")
    assert public == alice.row.ed25519_public
    # And the ledger keeps the entry; it still sums to zero and its chain verifies
    assert _rows(node_config, "SELECT sum(balance) FROM ledger_accounts") == [(0,)]
    assert len(_rows(node_config, "SELECT id FROM ledger_journal")) == 3  # pay, deal, refund
    assert (await verify_journal(ctx)).ok
    assert _rows(node_config, "SELECT state FROM account_deletions") == [("done",)]


async def test_delete_me__the_last_admin_is_refused_with_409(
    quiet: TestClient, node_config: Config
) -> None:
    # Given the only administrator
    ctx = quiet.app[CONTEXT]
    admin = await _member(ctx, "carole", admin=True)
    # When she asks to delete her account
    response = await quiet.delete("/api/v1/me", headers=admin.headers,
                                  json={"password": PASSWORD, "confirm": "DELETE"})
    # Then 409 and nothing is recorded
    assert response.status == 409
    assert _rows(node_config, "SELECT count(*) FROM account_deletions") == [(0,)]
