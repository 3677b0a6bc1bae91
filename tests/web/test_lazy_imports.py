"""What a started node has not imported yet (issue 17: idle memory on a Raspberry Pi).

A real app is started in a fresh interpreter on 127.0.0.1 and asked for ``/healthz``; its
``sys.modules`` is read then, and again after the first page. Libraries only some routes need
load on the first request that needs them, not at start-up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.memload import REPO

# Imported on first use only; each is a few hundred kB to a few MB of a node's memory.
NOT_AT_START = ("jinja2", "zipfile")

CHILD = r"""
import asyncio, json, socket, sys
from pathlib import Path
import aiohttp
from aiohttp import web
from meshnode.app import create_app
from meshnode.config import Config
from meshnode.services.node import init_node

async def main(data_dir, watched):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = init_node(Config(data_dir=Path(data_dir), name="Lazy", handle="lazy", port=port,
                              public_url=f"http://127.0.0.1:{port}", discovery_policy="off"))
    runner = web.AppRunner(create_app(config, run_workers=False))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    seen = {}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                seen["healthz"] = answer.status
            seen["at_start"] = [name for name in watched if name in sys.modules]
            async with http.get(f"http://127.0.0.1:{port}/") as answer:
                seen["home"] = answer.status
            seen["after_home"] = [name for name in watched if name in sys.modules]
    finally:
        await runner.cleanup()
    print(json.dumps(seen))

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


def _started_node(tmp_path: Path) -> dict[str, object]:
    """Start a node in a fresh interpreter; what it had imported at each step."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "node"),
                          json.dumps(NOT_AT_START)], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=120)
    seen: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return seen


def test_lazy_imports__page_libraries_load_with_the_first_page(tmp_path: Path) -> None:
    # Given a node started in a fresh interpreter that has answered /healthz
    seen = _started_node(tmp_path)
    # Then none of the on-demand libraries is loaded yet
    assert seen["healthz"] == 200
    assert seen["at_start"] == []
    # When the home page is served, Then the template engine has been loaded for it (and
    # only for it: the export's zipfile is still not)
    assert seen["home"] == 200
    assert seen["after_home"] == ["jinja2"]
