"""The connection cap with the node's real server setup (``start_server``), on 127.0.0.1.

Requests are kept busy by holding the node's image decoder, so which connection the cap
closes is decided by state, not by timing.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from meshnode.app import create_app
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.web.appkeys import CONTEXT
from meshnode.web.connections import CONNECTIONS, start_server
from tests.conftest import PASSWORD, FakeClock, make_config, ride_listing
from tests.nodeproc import free_port
from tests.web.test_api_images import form, picture, wait_until

CAP = 8


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[web.Application, str]]:
    config = make_config(tmp_path / "node", max_connections=CAP, max_concurrent_uploads=CAP)
    app = create_app(config, clock=FakeClock(), run_workers=False)
    runner = web.AppRunner(app, keepalive_timeout=config.header_timeout)
    await runner.setup()
    port = free_port()
    listener = await start_server(runner, app[CONNECTIONS], "127.0.0.1", port)
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await runner.cleanup()


async def raw_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port), family=socket.AF_INET)


async def test_connection_cap__idle_connection_is_evicted_first_then_new_ones_get_503(
    served: tuple[web.Application, str],
) -> None:
    app, url = served
    ctx: NodeContext = app[CONTEXT]
    await members.add_member(ctx, username="alice", password=PASSWORD)
    headers = {"Authorization": f"Bearer {(await members.create_token(ctx, 'alice')).secret}"}
    async with aiohttp.ClientSession() as session, session.post(
            f"{url}/api/v1/listings", json=ride_listing(), headers=headers) as made:
        listing_id = (await made.json())["id"]
    await wait_until(lambda: app[CONNECTIONS].open_count == 0)
    # Given one idle connection (it sent nothing), then CAP uploads kept busy in the decoder
    idle_reader, idle_writer = await raw_connection(url)
    await ctx.images.gate.acquire()
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def upload() -> int:
            async with session.post(f"{url}/api/v1/listings/{listing_id}/images",
                                    data=form(picture()), headers=headers) as response:
                return response.status

        uploads = [asyncio.create_task(upload()) for _ in range(CAP)]
        await wait_until(lambda: ctx.images.waiting == CAP)
        # Then the idle connection was closed to make room, not a busy one
        async with asyncio.timeout(10):
            assert await idle_reader.read() == b""
        assert app[CONNECTIONS].open_count == CAP
        # When one more client connects while every connection is busy answering
        reader, writer = await raw_connection(url)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with asyncio.timeout(10):
            answer = await reader.read()
        # Then it gets a short 503 with Retry-After, and the busy requests go on
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 5" in answer
        ctx.images.gate.release()
        statuses = sorted([await task for task in uploads])
    assert statuses == [201] + [409] * (CAP - 1)
    for stream in (idle_writer, writer):
        stream.close()
