"""A node killed with SIGKILL mid-burst restarts with a journal that verifies.

Given a real ``meshnode run`` subprocess receiving a burst of payments over HTTP, When it is
killed with SIGKILL while requests are in flight, Then after a restart the journal verifies,
every balance equals its entries, and every payment that was answered 201 is in the journal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from meshnode.config import Config
from tests.conftest import make_config
from tests.nodeproc import REPO, free_port, member_tokens, start_quiet_node

pytestmark = pytest.mark.slow





async def _wait_ready(url: str, token: str, deadline: float = 10.0) -> None:
    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - start < deadline:
            try:
                async with session.get(f"{url}/api/v1/wallet",
                                       headers={"Authorization": f"Bearer {token}"}) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # waiting for another process: no step() to call
    raise AssertionError("node did not start")


async def _burst(url: str, tokens: dict[str, str], process: subprocess.Popen[bytes]) -> set[str]:
    """Fire payments both ways; SIGKILL the node once 150 have been acknowledged."""
    acknowledged: set[str] = set()
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def pay(index: int) -> None:
            payer, payee = ("alice", "bob") if index % 2 else ("bob", "alice")
            try:
                async with session.post(
                    f"{url}/api/v1/transfers", json={"payee": payee, "amount": "0.10"},
                    headers={"Authorization": f"Bearer {tokens[payer]}"},
                ) as response:
                    if response.status == 201:
                        acknowledged.add((await response.json())["id"])
                        if len(acknowledged) == 150:
                            process.send_signal(signal.SIGKILL)
            except (TimeoutError, aiohttp.ClientError):
                pass  # in flight when the node died

        await asyncio.gather(*(pay(i) for i in range(1000)))
    return acknowledged


def _journal_ids(config: Config) -> set[str]:
    conn = sqlite3.connect(config.database_path)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM ledger_journal")}
    finally:
        conn.close()


def test_ledger__sigkill_mid_burst_restarts_intact(tmp_path: Path) -> None:
    port = free_port()
    config = make_config(tmp_path / "node", port=port, public_url=f"http://127.0.0.1:{port}")
    tokens = asyncio.run(member_tokens(config))
    url = f"http://127.0.0.1:{port}"
    process = start_quiet_node(config)
    try:
        asyncio.run(_wait_ready(url, tokens["alice"]))
        acknowledged = asyncio.run(_burst(url, tokens, process))
        assert process.wait(timeout=10) == -signal.SIGKILL
        assert len(acknowledged) >= 150
        process = start_quiet_node(config)
        asyncio.run(_wait_ready(url, tokens["alice"]))
    finally:
        process.terminate()
        process.wait(timeout=15)
    # every acknowledged payment survived, and the journal and balances verify
    assert acknowledged <= _journal_ids(config)
    result = subprocess.run(
        [sys.executable, "-m", "meshnode.cli", "ledger", "verify", "--data-dir",
         str(config.data_dir)], env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=REPO,
        capture_output=True, text=True, check=False, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "journal intact" in result.stdout
