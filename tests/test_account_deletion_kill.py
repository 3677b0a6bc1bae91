"""A node killed with SIGKILL in the middle of deleting an account finishes it after a
restart: every listing withdrawn exactly once, then the account erased.

Given a real ``meshnode run`` subprocess and alice with 200 listings, When she deletes her
account and the node is killed once some (not all) listings are withdrawn, Then after a
restart the deletion resumes from its row: all 200 are withdrawn, each with exactly one signed
Delete in the outbox, and the account is emptied.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from meshnode.config import Config, LimitsConfig
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from tests.conftest import PASSWORD, make_config, ride_listing
from tests.nodeproc import NodeProcess, free_port

pytestmark = pytest.mark.slow
LISTINGS = 200


async def _prepare(config: Config) -> str:
    ctx = await NodeContext.open(config)
    try:
        alice = await members.add_member(ctx, username="alice", password=PASSWORD)
        for index in range(LISTINGS):
            await listings.create_listing(ctx, alice, ride_listing(title=f"Trajet numéro {index}"))
        return (await members.create_token(ctx, "alice")).secret
    finally:
        await ctx.close()


def _one(database: Path, sql: str) -> object:
    with sqlite3.connect(database, timeout=5) as db:
        row = db.execute(sql).fetchone()
    return row[0] if row else None


async def _wait_for(database: Path, sql: str, wanted: object, deadline: float) -> None:
    """Poll another process's database (no step() to call there) until ``sql`` says so."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if _one(database, sql) == wanted:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{sql!r} never gave {wanted!r}")


async def test_account_deletion__sigkill_mid_way_resumes_after_restart(tmp_path: Path) -> None:
    # Given a node with alice and her 200 listings
    port = free_port()
    config = make_config(tmp_path / "node", port=port, public_url=f"http://127.0.0.1:{port}",
                         limits=LimitsConfig(listings_per_hour=0))
    token = await _prepare(config)
    database = config.database_path
    node = NodeProcess(config.data_dir, port).start()
    try:
        # When she deletes her account
        async with aiohttp.ClientSession() as session, session.delete(
                f"{node.url}/api/v1/me", json={"password": PASSWORD, "confirm": "DELETE"},
                headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 202, await response.text()
        # And the node is killed once the first listings are withdrawn
        await _wait_for(database, "SELECT count(*) >= 20 FROM listings"
                        " WHERE status = 'withdrawn'", 1, deadline=60)
        node.kill()
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.kill()
    withdrawn = _one(database, "SELECT count(*) FROM listings WHERE status = 'withdrawn'")
    assert isinstance(withdrawn, int)
    assert withdrawn < LISTINGS, "the node finished before the kill: nothing was resumed"
    assert _one(database, "SELECT state FROM account_deletions") == "listings"
    # Then after a restart it finishes from where it stopped
    node = NodeProcess(config.data_dir, port).start()
    try:
        await _wait_for(database, "SELECT state FROM account_deletions", "done", deadline=120)
    finally:
        node.stop()
    assert _one(database, "SELECT count(*) FROM listings WHERE status <> 'withdrawn'") == 0
    # And each listing got exactly one signed Delete, none twice
    assert _one(database, "SELECT count(*) FROM outbox_activities WHERE type = 'Delete'") == (
        LISTINGS)
    assert _one(database, "SELECT count(DISTINCT object_id) FROM outbox_activities"
                " WHERE type = 'Delete'") == LISTINGS
    # And the account is emptied, its private keys destroyed, its public key kept
    assert _one(database, "SELECT length(ed25519_sealed) FROM members") == 0
    assert _one(database, "SELECT length(ed25519_public) FROM members") == 32
    assert str(_one(database, "SELECT display_name FROM members")).startswith("deleted-")
