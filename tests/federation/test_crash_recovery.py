"""A node killed with SIGKILL mid-delivery still delivers everything after restart.

Node alpha runs as a real ``meshnode run`` subprocess (real clock, background workers);
node beta runs in the test. Peering is requested with the CLI while alpha runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from meshnode.config import Config
from meshnode.services import members
from meshnode.services.context import NodeContext
from tests.conftest import FakeClock, make_config, ride_listing
from tests.federation.conftest import Node, bind_socket
from tests.nodeproc import wait_healthy

pytestmark = pytest.mark.slow
LISTINGS = 25


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "meshnode.cli", *args], env=env,
                          capture_output=True, text=True, check=True, timeout=60)


def _start(data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-m", "meshnode.cli", "--log-level", "WARNING",
                             "run", "--data-dir", str(data_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _until(predicate, beta: Node, limit: float = 40.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        beta.clock.now = datetime.now(UTC)
        await beta.workers.step_all()
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def _token(config: Config) -> str:
    ctx = await NodeContext.open(config)
    try:
        await members.add_member(ctx, username="alice", password=None, is_admin=True)
        return (await members.create_token(ctx, "alice")).secret
    finally:
        await ctx.close()


async def test_sigkill_mid_delivery__everything_delivered_after_restart(tmp_path: Path) -> None:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    probe = bind_socket()
    port_b = probe.getsockname()[1]
    probe.close()
    beta = Node(make_config(tmp_path / "beta", handle="beta",
                            public_url=f"http://127.0.0.1:{port_b}", port=port_b), clock)
    await beta.start()
    probe = bind_socket()
    port_a = probe.getsockname()[1]
    probe.close()
    alpha_cfg = make_config(tmp_path / "alpha", handle="alpha",
                            public_url=f"http://127.0.0.1:{port_a}", port=port_a)
    token = await _token(alpha_cfg)
    alpha = _start(alpha_cfg.data_dir)
    try:
        await wait_healthy(alpha_cfg.base_url)
        _cli("peer", "add", "--data-dir", str(alpha_cfg.data_dir), beta.url)

        async def peered() -> bool:
            return await beta.count("SELECT count(*) FROM followers WHERE state='accepted'") == 1
        await _until(peered, beta)
        # When alpha publishes many listings and is killed while delivering them
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession() as session:
            for n in range(LISTINGS):
                async with session.post(f"{alpha_cfg.base_url}/api/v1/listings", headers=headers,
                                        json=ride_listing(title=f"Trajet numéro {n}")) as resp:
                    assert resp.status == 201, await resp.text()
        alpha.send_signal(signal.SIGKILL)
        alpha.wait(timeout=10)
        received = await beta.count("SELECT count(*) FROM inbox_activities WHERE type='Create'")
        assert received < LISTINGS, "killed too late to prove anything"
        # Then after a restart, every listing reaches beta
        alpha = _start(alpha_cfg.data_dir)
        await wait_healthy(alpha_cfg.base_url)

        async def all_there() -> bool:
            return await beta.count("SELECT count(*) FROM listings WHERE is_local = 0") \
                == LISTINGS
        await _until(all_there, beta)
        listed = _cli("peer", "list", "--data-dir", str(alpha_cfg.data_dir)).stdout
        assert beta.url in listed
        assert "peered" in listed
    finally:
        alpha.kill()
        alpha.wait(timeout=10)
        await beta.stop()
