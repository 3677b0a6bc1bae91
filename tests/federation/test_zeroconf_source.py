"""zeroconf imported from its Python source (federation/zeroconf_source.py, issue 17).

The discovery behaviour itself (adverts, browsing, resolving, floods) is covered by
``test_mdns_discovery.py`` and ``test_mdns_spoofing.py``, which run on whichever build the
process loaded first; these tests check the loading in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.memload import REPO

CHILD = r"""
import asyncio, importlib.machinery, json, sys
from meshnode.federation.zeroconf_source import SourceFinder, load_zeroconf

load_zeroconf(compiled=sys.argv[1] == "compiled")
import zeroconf
from zeroconf import _cache, _dns
from zeroconf._services import browser
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

async def advertise_and_resolve():
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"])
    info = AsyncServiceInfo("_meshtest._tcp.local.", "node._meshtest._tcp.local.",
                            addresses=[bytes([127, 0, 0, 1])], port=8080,
                            properties={"v": "1"}, server="node.local.")
    try:
        await aiozc.async_register_service(info)
        found = AsyncServiceInfo("_meshtest._tcp.local.", "node._meshtest._tcp.local.")
        return await found.async_request(aiozc.zeroconf, 3000) and found.port
    finally:
        await aiozc.async_close()

built = importlib.machinery.PathFinder.find_spec("zeroconf._dns", zeroconf.__path__).origin
print(json.dumps({"files": [m.__file__ for m in (_cache, _dns, browser)], "built": built,
                  "finder_left": any(isinstance(f, SourceFinder) for f in sys.meta_path),
                  "resolved_port": asyncio.run(advertise_and_resolve())}))
"""


def _load(mode: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_load_zeroconf__from_source_and_it_works() -> None:
    # Given a fresh interpreter that loads zeroconf through load_zeroconf()
    seen = _load("source")
    # Then every zeroconf module came from its .py, the finder is gone again, and an advert
    # registered on 127.0.0.1 is resolved with its port
    assert all(str(name).endswith(".py") for name in seen["files"])  # type: ignore[union-attr]
    assert seen["finder_left"] is False
    assert seen["resolved_port"] == 8080


def test_load_zeroconf__compiled_on_request() -> None:
    # Given load_zeroconf(compiled=True), Then zeroconf is imported as Python finds it (the
    # Cython build where one is installed), and works
    seen = _load("compiled")
    assert seen["files"][1] == seen["built"]  # type: ignore[index]
    assert seen["resolved_port"] == 8080
