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

async def main(data_dir, watched, paths):
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
            for path in paths:
                async with http.get(f"http://127.0.0.1:{port}{path}") as answer:
                    seen[path] = answer.status
                seen["after " + path] = [name for name in watched if name in sys.modules]
    finally:
        await runner.cleanup()
    print(json.dumps(seen))

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])))
"""


def _started_node(tmp_path: Path, watched: tuple[str, ...] = NOT_AT_START,
                  paths: tuple[str, ...] = ("/",)) -> dict[str, object]:
    """Start a node in a fresh interpreter, GET each of ``paths``; which of ``watched`` it
    had imported after /healthz and after each path, and each path's status."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "node"),
                          json.dumps(watched), json.dumps(paths)], cwd=REPO, capture_output=True,
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
    assert seen["/"] == 200
    assert seen["after /"] == ["jinja2"]


# Babel (its catalogue reader, dates and numbers), argon2 and the inbox's rarer handlers.
ON_FIRST_USE = ("babel.messages.pofile", "babel.dates", "babel.numbers", "argon2",
                "meshnode.federation.deals", "meshnode.federation.flags",
                "meshnode.federation.messaging", "meshnode.federation.queue")


def test_lazy_imports__babel_argon2_and_rare_inbox_handlers_wait_for_their_first_use(
    tmp_path: Path,
) -> None:
    # Given a node started in a fresh interpreter that has answered /healthz
    seen = _started_node(tmp_path, ON_FIRST_USE)
    # Then neither Babel, nor argon2, nor the handlers of deals, reports, direct messages and
    # waiting lists are imported
    assert seen["healthz"] == 200
    assert seen["at_start"] == []
    # When the home page is served, Then Babel is loaded for it (its language compiled and
    # formatted), and nothing else
    assert seen["/"] == 200
    assert seen["after /"] == ["babel.messages.pofile", "babel.dates", "babel.numbers"]


# Route modules (web/lazyroutes.py): registered at start, imported on their first request.
PAGE_MODULES = ("meshnode.web.pages.network_map", "meshnode.web.network_svg",
                "meshnode.web.pages.admin", "meshnode.web.pages.listings", "meshnode.web.api")


def test_lazy_routes__a_page_module_loads_on_its_first_request(tmp_path: Path) -> None:
    # Given a node started in a fresh interpreter that has answered /healthz
    seen = _started_node(tmp_path, PAGE_MODULES, ("/network", "/admin", "/api/v1/listings"))
    # Then no page or API module is imported yet
    assert seen["healthz"] == 200
    assert seen["at_start"] == []
    # When the public network map is asked for, Then it is served by its module, now
    # imported with the SVG drawing it uses, and nothing else
    assert seen["/network"] == 200
    assert seen["after /network"] == ["meshnode.web.pages.network_map",
                                      "meshnode.web.network_svg"]
    # When an anonymous visitor asks for /admin, Then the admin module answers (a redirect
    # to the login page, followed: 200) and is imported; the API still is not
    assert seen["/admin"] == 200
    assert "meshnode.web.pages.admin" in seen["after /admin"]  # type: ignore[operator]
    assert "meshnode.web.api" not in seen["after /admin"]  # type: ignore[operator]
    # When the API's listing search is asked for without a token, Then the API's module is
    # loaded and answers as it always did: 401
    assert seen["/api/v1/listings"] == 401
    assert "meshnode.web.api" in seen["after /api/v1/listings"]  # type: ignore[operator]
