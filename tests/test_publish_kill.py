"""Publishes that share a transaction (``store.group``) survive a SIGKILL once answered.

Given a real ``meshnode run`` subprocess taking many concurrent publishes through the API,
When it is killed with SIGKILL while publishes are still in flight, Then every listing it
answered 201 is in the database with its checked first version and its Create in the
outbox, and no listing was stored without its Create (they commit together or not at all).
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from meshnode.config import LimitsConfig
from tests.conftest import make_config, ride_listing
from tests.nodeproc import free_port, member_tokens, start_quiet_node, wait_healthy

pytestmark = pytest.mark.slow
CLIENTS = 24  # concurrent publishes: batches of several listings a transaction
KILL_AFTER = 120  # answered publishes before the kill


class Publishing:
    """What the clients saw: the ids answered 201, and how many requests were in flight."""

    def __init__(self) -> None:
        self.answered: list[str] = []
        self.in_flight = 0
        self.enough = asyncio.Event()


async def _client(session: aiohttp.ClientSession, url: str, token: str, n: int,
                  seen: Publishing) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for k in range(10_000):
        seen.in_flight += 1
        try:
            async with session.post(f"{url}/api/v1/listings", headers=headers,
                                    json=ride_listing(title=f"Trajet {n}-{k}")) as response:
                if response.status != 201:
                    return
                seen.answered.append((await response.json())["id"])
        except aiohttp.ClientError:
            return  # the node is gone
        finally:
            seen.in_flight -= 1
        if len(seen.answered) >= KILL_AFTER:
            seen.enough.set()


def _rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_publish__sigkill_during_concurrent_publishes__every_answered_listing_kept(
        tmp_path: Path) -> None:
    port = free_port()
    config = make_config(tmp_path / "node", public_url=f"http://127.0.0.1:{port}", port=port,
                         limits=LimitsConfig(0, 0, 0))
    tokens = list((await member_tokens(config, ("alice", "bob", "carol", "dan"))).values())
    process: subprocess.Popen[bytes] = start_quiet_node(config)
    try:
        await wait_healthy(config.base_url, tries=1200)  # a starved machine starts slowly
        seen = Publishing()
        async with aiohttp.ClientSession() as session:
            clients = [asyncio.create_task(_client(session, config.base_url,
                                                   tokens[n % len(tokens)], n, seen))
                       for n in range(CLIENTS)]
            # When the node is killed while publishes are in flight
            await seen.enough.wait()
            in_flight = seen.in_flight
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            await asyncio.gather(*clients)
        assert in_flight > 0, "killed between publishes: nothing to prove"
    finally:
        process.kill()
        process.wait(timeout=10)
    # Then every answered listing is stored, with its checked version and its Create
    stored = {row[0] for row in _rows(config.database_path,
                                      "SELECT id FROM listings WHERE is_local = 1")}
    checked = {row[0] for row in _rows(config.database_path,
                                       "SELECT listing_id FROM listing_versions"
                                       " WHERE version = 1 AND verified = 1")}
    created = {str(row[0]).split("/listings/")[1].split("/")[0] for row in _rows(
        config.database_path, "SELECT object_id FROM outbox_activities WHERE type = 'Create'"
        " AND object_id LIKE '%/listings/%'")}
    answered = set(seen.answered)
    assert len(answered) >= KILL_AFTER
    assert answered <= stored
    # And nothing was stored without its version and its Create
    assert stored == checked == created
