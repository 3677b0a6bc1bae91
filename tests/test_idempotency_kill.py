"""A client retries with its Idempotency-Key after the node was killed: one row, same answer.

Given a real ``meshnode run`` subprocess, When a listing and a payment are created with an
``Idempotency-Key`` and the node is killed with SIGKILL right after answering, Then after a
restart the same requests with the same keys get the same answers (replayed) and the
database holds exactly one listing and one payment.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from meshnode.config import Config
from tests.conftest import make_config, ride_listing
from tests.nodeproc import free_port, member_tokens, start_quiet_node

pytestmark = pytest.mark.slow
Answer = tuple[int, bytes, str | None]




async def _wait_ready(url: str, headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.get(f"{url}/api/v1/me", headers=headers) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # another process: no step() to call
    raise AssertionError("node did not start")


async def _post(url: str, path: str, body: dict[str, object], headers: dict[str, str],
                process: subprocess.Popen[bytes] | None = None) -> tuple[Answer, bool]:
    """POST; with ``process``, SIGKILL it the moment the answer is in. (answer, replayed)."""
    async with aiohttp.ClientSession() as session, session.post(
        f"{url}{path}", json=body, headers=headers
    ) as response:
        answer = (response.status, await response.read(), response.headers.get("Location"))
        replayed = response.headers.get("Idempotent-Replayed") == "true"
    if process is not None:
        process.send_signal(signal.SIGKILL)
    return answer, replayed


def _count(config: Config, table: str) -> int:
    conn = sqlite3.connect(config.database_path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


CASES = [
    ("/api/v1/listings", ride_listing(), "listings"),
    ("/api/v1/transfers", {"payee": "alice", "amount": "2.50"}, "ledger_journal"),
]


def test_idempotency__sigkill_after_the_answer_then_retry_gives_same_answer_one_row(
    tmp_path: Path,
) -> None:
    # Given a running node and a member
    port = free_port()
    config = make_config(tmp_path / "node", port=port, public_url=f"http://127.0.0.1:{port}")
    tokens = asyncio.run(member_tokens(config))
    url = f"http://127.0.0.1:{port}"
    for index, (path, body, table) in enumerate(CASES):
        headers = {"Authorization": f"Bearer {tokens['bob']}", "Idempotency-Key": f"k{index}"}
        process = start_quiet_node(config)
        try:
            asyncio.run(_wait_ready(url, headers))
            # When the node is killed right after answering the creating POST
            first, _ = asyncio.run(_post(url, path, body, headers, process))
            assert process.wait(timeout=10) == -signal.SIGKILL
            assert first[0] == 201, first
            # And the client, unsure, retries with the same key after the restart
            process = start_quiet_node(config)
            asyncio.run(_wait_ready(url, headers))
            again, replayed = asyncio.run(_post(url, path, body, headers))
        finally:
            process.terminate()
            process.wait(timeout=60)
        # Then it gets the same answer, replayed, and there is exactly one row
        assert replayed
        assert again == first
        assert _count(config, table) == 1
