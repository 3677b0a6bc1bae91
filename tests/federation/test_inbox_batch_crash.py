"""A node killed with SIGKILL while its inbox worker processes batches loses nothing and
stores nothing twice: every accepted activity is processed exactly once after a restart.

Alpha, in the test, serves alice's actor document (beta fetches her key from it) and sends
signed Creates of distinct listings to beta's inbox as fast as beta answers. Beta first
accepts them with its workers not started (the real door: each Create stored durably before
the 202), so the whole backlog waits unprocessed whatever the machine's speed; then beta runs
as a real ``meshnode run`` subprocess (real clock, its workers running), which is killed as
soon as its inbox worker is seen committing the first batches of that backlog.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from meshnode.config import Config
from meshnode.protocol.activities import listing_activity
from meshnode.protocol.proofs import create_proof
from meshnode.protocol.signing import signed_post_headers
from meshnode.services import members
from tests.conftest import FakeClock, make_config
from tests.federation.conftest import Node
from tests.nodeproc import free_port, start_quiet_node, wait_healthy

pytestmark = pytest.mark.slow
LISTINGS = 1500
SENDERS = 16


def _count(database: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def _signed_creates(alpha: Node, inbox: str) -> list[tuple[bytes, dict[str, str]]]:
    """``LISTINGS`` Creates of distinct listings, each signed by alice (proof and request)."""
    alice = await alpha.member("alice")
    template = json.loads((await alpha.publish(alice)).row.signed_object)
    method = template.pop("proof")["verificationMethod"]
    identity = members.member_identity(alpha.ctx, alice)
    actor = f"{alpha.url}/users/alice"
    created = datetime.now(UTC).replace(microsecond=0)
    requests = []
    for n in range(LISTINGS):
        document = create_proof({**template, "id": f"{template['id']}-{n}",
                                 "name": f"Trajet numéro {n}"},
                                seed=identity.ed25519_seed, verification_method=method,
                                created=created)
        act = listing_activity("Create", document, actor=actor, version=1,
                               published="2026-11-26T10:00:00Z")
        body = json.dumps(act).encode()
        requests.append((body, signed_post_headers(
            "rfc9421-ed25519", inbox, body, key=identity.signing_key,
            key_id=f"{actor}#ed25519-key", now=int(time.time()))))
    return requests


async def _send_all(inbox: str, requests: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    statuses: list[int] = []
    queue = list(reversed(requests))

    async def sender(session: aiohttp.ClientSession) -> None:
        while queue:
            body, headers = queue.pop()
            async with session.post(inbox, data=body, headers=headers) as response:
                statuses.append(response.status)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(SENDERS)))
    return statuses


async def _accept_with_workers_held(beta: Config,
                                    requests: list[tuple[bytes, dict[str, str]]]) -> None:
    """Beta's door (in process, workers not started) accepts every Create; then it stops."""
    node = Node(beta, FakeClock(datetime.now(UTC).replace(microsecond=0)))
    await node.start(run_workers=False)
    try:
        assert await _send_all(f"{beta.base_url}/inbox", requests) == [202] * LISTINGS
    finally:
        await node.stop()


async def _kill_while_processing(process: Any, database: Path, limit: float = 120.0) -> int:
    """SIGKILL as soon as the worker is seen moving through the backlog; how many activities
    were processed (committed) at that moment."""
    unprocessed = "SELECT count(*) FROM inbox_activities WHERE processed_at IS NULL"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while _count(database, unprocessed) == LISTINGS:
        assert process.poll() is None, "the node exited before processing anything"
        assert loop.time() < deadline, "the node did not start processing its backlog"
        await asyncio.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    return _count(database, "SELECT count(*) FROM inbox_activities"
                            " WHERE processed_at IS NOT NULL")


async def _wait_all_processed(database: Path, limit: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        if _count(database, "SELECT count(*) FROM inbox_activities"
                            " WHERE processed_at IS NULL") == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the restarted node did not process its backlog")


def _peered(beta: Config, alpha_url: str) -> None:
    with sqlite3.connect(beta.database_path) as conn:  # beta follows alpha: a peer
        conn.execute("INSERT INTO peers (origin, requested, out_state, created_at, updated_at)"
                     " VALUES (?, ?, 'peered', '', '')", (alpha_url, alpha_url))


async def test_sigkill_during_batch_processing__restart_processes_every_accepted_item_once(
        tmp_path: Path) -> None:
    alpha_port, beta_port = free_port(), free_port()
    alpha = Node(make_config(tmp_path / "alpha", handle="alpha", port=alpha_port,
                             public_url=f"http://127.0.0.1:{alpha_port}"),
                 FakeClock(datetime.now(UTC).replace(microsecond=0)))
    await alpha.start()
    beta = make_config(tmp_path / "beta", handle="beta", port=beta_port,
                       public_url=f"http://127.0.0.1:{beta_port}")
    _peered(beta, alpha.url)
    database = beta.database_path
    process = None
    try:
        requests = await _signed_creates(alpha, f"{beta.base_url}/inbox")
        # Given beta accepted every Create (202: stored durably before the answer), none
        # processed yet
        await _accept_with_workers_held(beta, requests)
        assert _count(database, "SELECT count(*) FROM inbox_activities"
                                " WHERE processed_at IS NULL") == LISTINGS
        # When beta runs and is killed while its worker goes through the backlog
        process = start_quiet_node(beta)
        processed = await _kill_while_processing(process, database)
        assert 0 < processed < LISTINGS, "not killed mid-backlog"
        # Then nothing accepted was lost, and each listing is there iff its activity is
        # marked processed (effects and the mark commit together)
        assert _count(database, "SELECT count(*) FROM inbox_activities") == LISTINGS
        assert _count(database, "SELECT count(*) FROM listings WHERE is_local = 0") == \
            processed
        # And after a restart every accepted Create is processed exactly once
        process = start_quiet_node(beta)
        await wait_healthy(beta.base_url)
        await _wait_all_processed(database)
        assert _count(database, "SELECT count(*) FROM listings WHERE is_local = 0") == \
            LISTINGS
        assert _count(database, "SELECT count(DISTINCT object_id) FROM listings"
                                " WHERE is_local = 0") == LISTINGS
        assert _count(database, "SELECT count(*) FROM listing_versions v JOIN listings l"
                                " ON l.id = v.listing_id WHERE l.is_local = 0") == LISTINGS
        assert _count(database, "SELECT count(*) FROM outbox_activities"
                                " WHERE type = 'Announce'") == LISTINGS
        assert _count(database, "SELECT count(*) FROM inbox_activities WHERE outcome"
                                " IN ('stored', 'stored and relayed')") == LISTINGS
        assert _count(database, "SELECT count(*) FROM listings_fts WHERE listings_fts"
                                " MATCH 'numéro'") == LISTINGS
    finally:
        if process is not None:
            process.kill()
            process.wait(timeout=10)
        await alpha.stop()
