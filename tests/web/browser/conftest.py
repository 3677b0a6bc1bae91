"""A real node on 127.0.0.1 and headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from meshnode.app import create_app
from meshnode.services import members
from meshnode.services.context import NodeContext
from meshnode.web.appkeys import CONTEXT
from tests.conftest import PASSWORD, make_config

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}


@dataclass(frozen=True)
class RunningNode:
    """A node serving on a real TCP port."""

    url: str
    ctx: NodeContext


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RunningNode]:
    port = _free_port()
    config = make_config(tmp_path / "node", public_url=f"http://127.0.0.1:{port}", port=port)
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    ctx = app[CONTEXT]
    await members.add_member(ctx, username="alice", password=PASSWORD, is_admin=True,
                             display_name="Alice")
    try:
        yield RunningNode(url=f"http://127.0.0.1:{port}", ctx=ctx)
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():  # noqa: ASYNC240
        # In CI scripts/test.sh installs it: a missing browser must fail there, not hide.
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()
