"""Real nodes on 127.0.0.1 for mDNS tests: aiohttp apps on real ports, one AsyncZeroconf each.

Multicast on the loopback: python-zeroconf bound with ``interfaces=["127.0.0.1"]`` sends and
receives mDNS over ``lo`` here even though ``ip link show lo`` lists no MULTICAST flag
(Linux loops multicast back to local sockets via IP_MULTICAST_LOOP). If a CI kernel
refuses, ``ip link set lo multicast on`` (as root) enables it; :func:`ensure_loopback_multicast`
does that when it can.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from meshnode.app import create_app
from meshnode.config import load_config
from meshnode.errors import NotFoundError
from meshnode.federation.discovery import DISCOVERY, DiscoveryRuntime
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.store import neighbours as nq
from meshnode.store.neighbours import NeighbourRow
from meshnode.web.appkeys import CONTEXT
from tests.conftest import PASSWORD, make_config
from tests.nodeproc import free_port


def ensure_loopback_multicast() -> None:
    """Best effort: turn MULTICAST on for ``lo`` when running as root (CI)."""
    if os.geteuid() == 0 and shutil.which("ip"):
        subprocess.run(["ip", "link", "set", "lo", "multicast", "on"], check=False,
                       capture_output=True)


@dataclass
class Node:
    """A running node: its app runner, port, URL and an admin token."""

    name: str
    data_dir: Path
    port: int
    runner: web.AppRunner
    admin_token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def ctx(self) -> NodeContext:
        return self.app[CONTEXT]

    @property
    def runtime(self) -> DiscoveryRuntime:
        return self.app[DISCOVERY]

    @property
    def actor(self) -> str:
        return f"{self.url}/groups/{self.ctx.config.handle}"

    async def neighbours(self) -> list[NeighbourRow]:
        return await nq.list_neighbours(self.ctx.store.reader)

    async def neighbour_for(self, other: Node) -> NeighbourRow | None:
        key = other.ctx.identity.ed25519_public
        rows = [row for row in await self.neighbours() if row.public_key == key]
        return rows[0] if rows else None

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_node(
    base: Path, name: str, *, policy: str = "auto", run_workers: bool = True,
    port: int | None = None, **overrides: Any,
) -> Node:
    """Create (or reopen) a node in ``base/name`` and serve it on a real 127.0.0.1 port."""
    data_dir = base / name
    port = port or free_port()
    if (data_dir / "config.toml").exists():
        config = load_config(data_dir)
    else:
        config = make_config(
            data_dir, name=f"Les Voisins {name}", handle=name.lower(),
            public_url=f"http://127.0.0.1:{port}", port=port, host="127.0.0.1",
            discovery_policy=policy, discovery_interfaces=("127.0.0.1",), **overrides,
        )
    runner = web.AppRunner(create_app(config, run_workers=run_workers), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    node = Node(name, data_dir, port, runner)
    ctx = node.ctx
    try:
        await members.get_member(ctx, "admin")
    except NotFoundError:
        await members.add_member(ctx, username="admin", password=PASSWORD, is_admin=True)
    node.admin_token = (await members.create_token(ctx, "admin")).secret
    return node


async def wait_until(
    check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05  # noqa: ASYNC109
) -> Any:
    """Poll an async ``check`` until it returns a truthy value (real network: no step())."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
