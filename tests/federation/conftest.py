"""Real nodes on 127.0.0.1 ports, several per test, workers stepped by hand."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from meshnode.app import create_app
from meshnode.config import Config
from meshnode.federation.runtime import WORKERS, Workers
from meshnode.federation.state import FEDERATION, Federation
from meshnode.services import listings, members
from meshnode.services.context import NodeContext
from meshnode.store.listings import ListingRow
from meshnode.store.members import MemberRow
from meshnode.web.appkeys import CONTEXT
from tests.conftest import FakeClock, make_config, ride_listing


def bind_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.asynccontextmanager
async def serving_inbox(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A stand-in peer's ``POST /inbox`` served by ``handle`` on 127.0.0.1: its URL."""
    app = web.Application()
    app.router.add_post("/inbox", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = bind_socket()
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/inbox"
    finally:
        await runner.cleanup()


@dataclass
class Node:
    """One running node: its app served on a real port."""

    config: Config
    clock: FakeClock
    runner: web.AppRunner | None = None

    @property
    def app(self) -> web.Application:
        assert self.runner is not None
        return self.runner.app

    @property
    def url(self) -> str:
        return self.config.base_url

    @property
    def ctx(self) -> NodeContext:
        return self.app[CONTEXT]

    @property
    def fed(self) -> Federation:
        return self.app[FEDERATION]

    @property
    def workers(self) -> Workers:
        return self.app[WORKERS]

    @property
    def group(self) -> str:
        return f"{self.url}/groups/{self.config.handle}"

    async def start(self, *, run_workers: bool = False,
                    sock: socket.socket | None = None) -> None:
        """Serve on ``sock`` (already bound to ``config.port``), or bind that port now."""
        sock = sock or bind_socket(self.config.port)
        app = create_app(self.config, clock=self.clock, run_workers=run_workers)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def member(self, username: str = "alice") -> MemberRow:
        return await members.add_member(self.ctx, username=username, password=None)

    async def publish(self, author: MemberRow, **overrides: Any) -> listings.ListingView:
        return await listings.create_listing(self.ctx, author, ride_listing(**overrides))

    async def remote(self, object_id: str) -> ListingRow | None:
        from meshnode.store.listings import get_listing_by_object_id
        return await get_listing_by_object_id(self.ctx.store.reader, object_id)

    async def count(self, sql: str, *params: object) -> int:
        async with self.ctx.store.reader.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return int(row[0])


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(tmp_path: Path, clock: FakeClock) -> AsyncIterator[NodeFactory]:
    started: list[Node] = []

    async def factory(handle: str, *, run_workers: bool = False, **overrides: Any) -> Node:
        # The port's socket stays bound until the node serves on it: closed and bound again,
        # an outgoing connection of a parallel test could take it as its local port meanwhile
        # (listen() then fails: "Address already in use").
        sock = bind_socket()
        port = sock.getsockname()[1]
        config = make_config(tmp_path / handle, handle=handle, name=f"Community {handle}",
                             public_url=f"http://127.0.0.1:{port}", port=port, **overrides)
        node = Node(config=config, clock=clock)
        try:
            await node.start(run_workers=run_workers, sock=sock)
        except BaseException:
            sock.close()
            raise
        started.append(node)
        return node

    yield factory
    for node in started:
        await node.stop()


async def settle(*nodes: Node, rounds: int = 50) -> None:
    """Step every node's workers until no node has work left."""
    for _ in range(rounds):
        done = 0
        for node in nodes:
            if node.runner is not None:
                done += await node.workers.step_all()
        if not done:
            return
    raise AssertionError("federation did not settle")


async def peer(a: Node, b: Node, *others: Node) -> None:
    """``a`` asks to peer with ``b``; settle until both follow each other."""
    from meshnode.federation import peering
    await peering.add_peer(a.ctx, b.url)
    await settle(a, b, *others)
